//! Warnings a remote peer (or a lasting condition) could repeat at will,
//! let through at most once per interval; the others are counted and the
//! count goes with the next warning that gets through.

use std::time::{Duration, Instant};

/// One warning per `interval` at most; the others are counted.
#[derive(Debug)]
pub(crate) struct Warnings {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Warnings {
    /// At most one warning per `interval`.
    pub(crate) fn every(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last one)` if a warning may be logged at
    /// `now`, `None` if it is to be suppressed (and counted).
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_warnings_gets_one_through_a_second_and_counts_the_rest() {
        let mut warnings = Warnings::every(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(warnings.allow(start), Some(0));
        for i in 1..=100u32 {
            assert_eq!(
                warnings.allow(start + Duration::from_millis(i.into())),
                None
            );
        }
        assert_eq!(warnings.allow(start + Duration::from_secs(1)), Some(100));
        assert_eq!(warnings.allow(start + Duration::from_secs(3)), Some(0));
    }
}
