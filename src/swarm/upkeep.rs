//! Connection upkeep: which known peers to dial while a node has fewer
//! connections than it wants (`NodeBuilder::min_peers`).
//!
//! Candidates are taken round-robin over the book, ordered by peer id as a
//! ring that starts just after the node's own id and resumes after the
//! last one tried: unreachable peers early in the order cannot hold every
//! slot, and nodes that all know the same peers do not all dial the same
//! few first (each starts at its own place in the ring); a peer whose dial failed waits before it
//! is tried again, twice as long after each failure (1 s up to 5 min), and
//! a peer being dialed is skipped. Data only, with the clock injected: the
//! swarm's event loop asks it each second and tells it how dials ended.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// Dials started per round while connections are missing, however few:
/// enough to get past a run of unreachable peers quickly (50 in 7 rounds),
/// few enough that upkeep never floods the network. A node may so end a
/// round with a few more connections than it wanted; idle ones close.
pub(crate) const MAX_DIALS_PER_ROUND: usize = 8;

/// The first wait after a failed dial.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait after failed dials.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Peers whose failures are remembered at most (the book's bound).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failed {
    failures: u32,
    retry_at: Instant,
}

/// The upkeep's memory: where the round-robin stands, what is being
/// dialed, and which peers are waiting out a failure.
#[derive(Debug)]
pub(crate) struct Upkeep {
    /// The last peer a round took (at first, the node itself).
    cursor: PeerId,
    /// Peers dialed by upkeep and not yet answered.
    dialing: HashMap<PeerId, Instant>,
    failed: HashMap<PeerId, Failed>,
}

impl Upkeep {
    /// The upkeep of node `local`.
    pub(crate) fn new(local: PeerId) -> Self {
        Self {
            cursor: local,
            dialing: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    /// The peers to dial now, if `wanted` more connections are: up to
    /// [`MAX_DIALS_PER_ROUND`] of `known` that `is_connected` says are not
    /// connected, are not being dialed and are not waiting out a failure,
    /// round-robin. They count as being dialed until [`Upkeep::connected`]
    /// or [`Upkeep::failed`].
    pub(crate) fn candidates(
        &mut self,
        mut known: Vec<PeerId>,
        wanted: usize,
        is_connected: impl Fn(&PeerId) -> bool,
        now: Instant,
    ) -> Vec<PeerId> {
        // A dial that never reported back (its peer left the book) is
        // forgotten after the longest backoff.
        self.dialing
            .retain(|_, started| now.duration_since(*started) < MAX_BACKOFF);
        if wanted == 0 || known.is_empty() {
            return Vec::new();
        }
        known.sort_unstable();
        let start = known.partition_point(|p| *p <= self.cursor);
        let (after, before) = known.split_at(start);
        let chosen: Vec<PeerId> = before
            .iter()
            .chain(after)
            .filter(|p| {
                !is_connected(p)
                    && !self.dialing.contains_key(p)
                    && self.failed.get(p).is_none_or(|f| now >= f.retry_at)
            })
            .take(MAX_DIALS_PER_ROUND)
            .copied()
            .collect();
        if let Some(last) = chosen.last() {
            self.cursor = *last;
        }
        for peer in &chosen {
            self.dialing.insert(*peer, now);
        }
        chosen
    }

    /// A connection to `peer` is established: it starts afresh.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        self.dialing.remove(peer);
        self.failed.remove(peer);
    }

    /// A dial of `peer` failed at `now`: it waits twice as long as last
    /// time before upkeep tries it again.
    pub(crate) fn failed(&mut self, peer: PeerId, now: Instant) {
        self.dialing.remove(&peer);
        if !self.failed.contains_key(&peer) && self.failed.len() >= MAX_REMEMBERED {
            // Forget the one due soonest: at worst it is tried early.
            if let Some(soonest) = self
                .failed
                .iter()
                .min_by_key(|(_, f)| f.retry_at)
                .map(|(p, _)| *p)
            {
                self.failed.remove(&soonest);
            }
        }
        let failures = self.failed.get(&peer).map_or(0, |f| f.failures) + 1;
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.failed.insert(
            peer,
            Failed {
                failures,
                retry_at: now + wait,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_peers_early_in_the_order_do_not_starve_a_live_one() {
        let mut known: Vec<PeerId> = (0..51).map(|_| PeerId::random()).collect();
        known.sort_unstable();
        // The ring starts after the first peer; the live one is the last
        // it reaches.
        let mut upkeep = Upkeep::new(known[1]);
        let live = known[1];
        let now = Instant::now();
        let reached = (0..40u32).find(|round| {
            let at = now + Duration::from_secs((*round).into());
            let mut found = false;
            for peer in upkeep.candidates(known.clone(), 2, |_| false, at) {
                if peer == live {
                    found = true;
                } else {
                    upkeep.failed(peer, at);
                }
            }
            found
        });
        // 49 dead peers at 8 a round: reached once the round-robin gets
        // there (round 6); backoff keeps the dead out meanwhile.
        let reached = reached.expect("the live peer was dialed");
        assert!(reached <= 6, "reached in round {reached}");
    }

    #[test]
    fn a_failed_peer_waits_twice_as_long_each_time_and_dialing_ones_are_skipped() {
        let mut upkeep = Upkeep::new(PeerId::random());
        let peer = PeerId::random();
        let now = Instant::now();
        assert_eq!(upkeep.candidates(vec![peer], 8, |_| false, now), vec![peer]);
        // Being dialed: not again.
        assert!(upkeep.candidates(vec![peer], 8, |_| false, now).is_empty());
        upkeep.failed(peer, now);
        let at = |secs| now + Duration::from_secs(secs);
        assert!(
            upkeep
                .candidates(vec![peer], 8, |_| false, at(0))
                .is_empty()
        );
        assert_eq!(
            upkeep.candidates(vec![peer], 8, |_| false, at(1)),
            vec![peer]
        );
        upkeep.failed(peer, at(1));
        assert!(
            upkeep
                .candidates(vec![peer], 8, |_| false, at(2))
                .is_empty()
        );
        assert_eq!(
            upkeep.candidates(vec![peer], 8, |_| false, at(3)),
            vec![peer]
        );
        upkeep.connected(&peer);
        assert_eq!(
            upkeep.candidates(vec![peer], 8, |_| false, at(3)),
            vec![peer]
        );
        // Connected peers are not candidates.
        upkeep.connected(&peer);
        assert!(upkeep.candidates(vec![peer], 8, |_| true, at(3)).is_empty());
    }

    #[test]
    fn a_round_dials_at_most_eight() {
        let mut upkeep = Upkeep::new(PeerId::random());
        let known: Vec<PeerId> = (0..100).map(|_| PeerId::random()).collect();
        let chosen = upkeep.candidates(known, 1, |_| false, Instant::now());
        assert_eq!(chosen.len(), MAX_DIALS_PER_ROUND);
    }

    #[test]
    fn nodes_that_know_the_same_peers_start_at_different_places() {
        let mut everyone: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
        everyone.sort_unstable();
        let now = Instant::now();
        let mut first_dialed = std::collections::HashSet::new();
        for me in &everyone {
            let others: Vec<PeerId> = everyone.iter().filter(|p| *p != me).copied().collect();
            let chosen = Upkeep::new(*me).candidates(others, 1, |_| false, now);
            first_dialed.insert(chosen[0]);
        }
        assert_eq!(
            first_dialed.len(),
            20,
            "each node begins with its successor"
        );
    }
}
