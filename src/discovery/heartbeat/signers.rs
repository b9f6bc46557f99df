//! The signers a node remembers heartbeats from: when each one's last
//! heartbeat was accepted (one per signer per gap gets through), and what
//! the kind of heartbeat keeps of it (a signed heartbeat's sequence and
//! what it last gave the book). Bounded, for every kind alike: a full table
//! forgets the signers not heard from within a window first (their old
//! heartbeats are stale anyway), else the one heard from longest ago.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// Signers remembered at most, per kind of heartbeat (for the replay and
/// frequency checks).
pub const MAX_TRACKED_PEERS: usize = 10_000;

/// The signers of one kind of heartbeat, each with what is kept of its
/// last accepted one (`T`).
#[derive(Debug)]
pub(crate) struct Signers<T> {
    seen: HashMap<PeerId, Seen<T>>,
    capacity: usize,
}

/// A signer's last accepted heartbeat.
#[derive(Debug)]
struct Seen<T> {
    /// When it was accepted.
    at: Instant,
    /// What its kind keeps of it.
    kept: T,
}

impl<T: Default> Signers<T> {
    /// An empty table of at most `capacity` signers.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// What is kept of `peer`'s last accepted heartbeat, if it is
    /// remembered.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<&T> {
        self.seen.get(peer).map(|seen| &seen.kept)
    }

    /// Whether `peer`'s last heartbeat was accepted less than `gap` before
    /// `now`.
    pub(crate) fn heard_within(&self, peer: &PeerId, gap: Duration, now: Instant) -> bool {
        self.seen
            .get(peer)
            .is_some_and(|seen| now.duration_since(seen.at) < gap)
    }

    /// Notes that a heartbeat of `peer` was accepted at `now`, and returns
    /// what is kept of it, for the caller to update. A newcomer to a full
    /// table makes room: the signers not heard from within `window` are
    /// forgotten, else the one heard from longest ago.
    pub(crate) fn note(&mut self, peer: PeerId, now: Instant, window: Duration) -> &mut T {
        if self.seen.len() >= self.capacity && !self.seen.contains_key(&peer) {
            self.seen
                .retain(|_, seen| now.duration_since(seen.at) < window);
            if self.seen.len() >= self.capacity
                && let Some(oldest) = self
                    .seen
                    .iter()
                    .min_by_key(|(_, seen)| seen.at)
                    .map(|(peer, _)| *peer)
            {
                self.seen.remove(&oldest);
            }
        }
        let seen = self.seen.entry(peer).or_insert_with(|| Seen {
            at: now,
            kept: T::default(),
        });
        seen.at = now;
        &mut seen.kept
    }

    /// The number of signers remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_signer_is_heard_within_the_gap_after_its_last_heartbeat_only() {
        let mut signers = Signers::<u64>::new(4);
        let (peer, start) = (PeerId::random(), Instant::now());
        assert!(!signers.heard_within(&peer, SECOND, start));
        *signers.note(peer, start, SECOND) = 7;
        assert_eq!(signers.get(&peer), Some(&7));
        assert!(signers.heard_within(&peer, SECOND, start + SECOND / 2));
        assert!(!signers.heard_within(&peer, SECOND, start + SECOND));
        // A new heartbeat restarts the gap and keeps what was kept.
        assert_eq!(*signers.note(peer, start + SECOND, SECOND), 7);
        assert!(signers.heard_within(&peer, SECOND, start + SECOND * 3 / 2));
    }

    #[test]
    fn a_full_table_forgets_the_signers_outside_the_window_first() {
        let mut signers = Signers::<()>::new(3);
        let start = Instant::now();
        let old = PeerId::random();
        signers.note(old, start, SECOND);
        let recent = [PeerId::random(), PeerId::random()];
        for peer in recent {
            signers.note(peer, start + SECOND * 10, SECOND * 5);
        }
        // Re-noting a remembered signer makes no room.
        signers.note(recent[0], start + SECOND * 11, SECOND * 5);
        assert_eq!(signers.len(), 3);
        let newcomer = PeerId::random();
        signers.note(newcomer, start + SECOND * 12, SECOND * 5);
        assert_eq!(signers.len(), 3);
        assert!(signers.get(&old).is_none(), "outside the window");
        assert!(recent.iter().all(|peer| signers.get(peer).is_some()));
        assert!(signers.get(&newcomer).is_some());
    }

    #[test]
    fn a_full_table_of_recent_signers_forgets_the_one_heard_from_longest_ago() {
        let mut signers = Signers::<()>::new(3);
        let start = Instant::now();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for (i, peer) in peers.iter().enumerate() {
            signers.note(*peer, start + SECOND * i as u32, SECOND * 60);
        }
        let newcomer = PeerId::random();
        signers.note(newcomer, start + SECOND * 3, SECOND * 60);
        assert_eq!(signers.len(), 3);
        assert!(signers.get(&peers[0]).is_none(), "the oldest goes");
        assert!(signers.get(&peers[1]).is_some() && signers.get(&peers[2]).is_some());
        assert!(signers.get(&newcomer).is_some());
    }
}
