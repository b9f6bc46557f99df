//! Supervision's small parts, independent of which actors they supervise:
//! a restart budget (at most so many restarts of a child within a sliding
//! window: kameo's `restart_limit(restarts, within)`), how a child ended,
//! and a guard that stops the children a failed start left running.

use std::{
    collections::VecDeque,
    fmt,
    time::{Duration, Instant},
};

use ractor::{ActorCell, ActorRef};

/// Restarts counted in a sliding window.
#[derive(Debug)]
pub(crate) struct Restarts {
    max: usize,
    window: Duration,
    /// When the child was restarted, within the last window.
    at: VecDeque<Instant>,
}

impl Restarts {
    /// At most `max` restarts within `window`.
    pub(crate) fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            at: VecDeque::new(),
        }
    }

    /// Whether one more restart, `now`, is within the budget; if so, it is
    /// counted.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        while self
            .at
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.window)
        {
            self.at.pop_front();
        }
        if self.at.len() >= self.max {
            return false;
        }
        self.at.push_back(now);
        true
    }
}

/// Stops the children a failed or abandoned start left running.
pub(crate) struct StopChildren(pub(crate) Vec<ActorCell>);

impl Drop for StopChildren {
    fn drop(&mut self) {
        for child in self.0.drain(..) {
            child.stop(Some("the node's start failed".into()));
        }
    }
}

/// How a child ended.
pub(crate) enum Ended {
    /// It failed (an error or a panic).
    Failed(String),
    /// It stopped, perhaps saying why.
    Stopped(Option<String>),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Failed(error) => write!(f, "failed: {error}"),
            Ended::Stopped(Some(reason)) => write!(f, "stopped: {reason}"),
            Ended::Stopped(None) => f.write_str("stopped"),
        }
    }
}

/// Whether `cell` is `actor`.
pub(crate) fn is<M: ractor::Message>(cell: &ActorCell, actor: &ActorRef<M>) -> bool {
    cell.get_id() == actor.get_id()
}

/// Stops `supervisor`'s children in order: every child but the `core`
/// ones first, all at once, within `grace`; then each `core` child in
/// turn, within `timeout`. The first are drained, not stopped: what is in
/// their mailboxes (streams, say) is taken, and refused if no slot is left
/// for it, instead of holding its permits until the grace runs out.
pub(crate) async fn stop_in_order(
    supervisor: ActorCell,
    core: &[ActorCell],
    grace: Duration,
    timeout: Duration,
) {
    let others: Vec<ActorCell> = supervisor
        .get_children()
        .into_iter()
        .filter(|child| !core.iter().any(|c| c.get_id() == child.get_id()))
        .collect();
    futures::future::join_all(others.iter().map(|child| child.drain_and_wait(Some(grace)))).await;
    for cell in core {
        let _ = cell.stop_and_wait(None, Some(timeout)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_beyond_the_budget_are_refused_until_the_window_moves_on() {
        let window = Duration::from_secs(60);
        let mut restarts = Restarts::new(2, window);
        let start = Instant::now();
        assert!(restarts.allow(start));
        assert!(restarts.allow(start + Duration::from_secs(1)));
        assert!(!restarts.allow(start + Duration::from_secs(2)));
        assert!(restarts.allow(start + window + Duration::from_secs(1)));
    }
}
