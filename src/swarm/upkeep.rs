//! Connection upkeep: which known peers to dial while a node has fewer
//! connections than it wants (`NodeBuilder::min_peers`).
//!
//! Candidates are picked at random among the eligible ones: unreachable
//! peers cannot hold every slot, and nodes that all know the same peers do
//! not all dial the same few (a fixed order, even a ring, leaves the peers
//! nobody reaches first with only their bootstrap connection); a peer whose dial failed waits before it
//! is tried again, twice as long after each failure (1 s up to 5 min), and
//! a peer being dialed is skipped. Data only, with the clock injected: the
//! swarm's event loop asks it each second and tells it how dials ended.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;
use rand::{rngs::StdRng, seq::SliceRandom};

/// Dials started per round at most, however many connections are missing.
/// A round starts each second, and again as soon as one of its dials
/// fails, so a run of unreachable peers is crossed quickly (50 refused
/// dials in well under a second on one host) without dialing more peers
/// at once than connections are missing.
pub(crate) const MAX_DIALS_PER_ROUND: usize = 8;

/// Dials upkeep starts in one second at most, rounds started by failed
/// dials included: a book full of unreachable peers is crossed at this
/// pace, never in a burst.
pub(crate) const MAX_DIALS_PER_SECOND: usize = 32;

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

/// The upkeep's memory: what is being dialed, which peers are waiting out
/// a failure, and the dials of the current second.
#[derive(Debug)]
pub(crate) struct Upkeep {
    rng: StdRng,
    /// Peers dialed by upkeep and not yet answered.
    dialing: HashMap<PeerId, Instant>,
    failed: HashMap<PeerId, Failed>,
    /// The second being counted, and the dials started in it.
    second: Option<(Instant, usize)>,
}

impl Upkeep {
    /// An upkeep with a random seed.
    pub(crate) fn new() -> Self {
        Self::with_rng(rand::make_rng())
    }

    /// An upkeep picking with `rng` (a seeded one in tests).
    pub(crate) fn with_rng(rng: StdRng) -> Self {
        Self {
            rng,
            dialing: HashMap::new(),
            failed: HashMap::new(),
            second: None,
        }
    }

    /// The peers to dial now, if `wanted` more connections are: up to
    /// `wanted` (at most [`MAX_DIALS_PER_ROUND`]) of `known` that `is_connected` says are not
    /// connected, are not being dialed and are not waiting out a failure,
    /// at random. They count as being dialed until [`Upkeep::connected`]
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
        let (since, started) = match self.second {
            Some((since, started)) if now.duration_since(since) < Duration::from_secs(1) => {
                (since, started)
            }
            _ => (now, 0),
        };
        let budget = MAX_DIALS_PER_SECOND.saturating_sub(started);
        if wanted == 0 || known.is_empty() || budget == 0 {
            return Vec::new();
        }
        known.retain(|p| {
            !is_connected(p)
                && !self.dialing.contains_key(p)
                && self.failed.get(p).is_none_or(|f| now >= f.retry_at)
        });
        known.shuffle(&mut self.rng);
        known.truncate(wanted.min(MAX_DIALS_PER_ROUND).min(budget));
        let chosen = known;
        self.second = Some((since, started + chosen.len()));
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
    /// time before upkeep tries it again. A failure while it already waits
    /// (another dial of it: a call, Kademlia) does not lengthen the wait.
    /// `true` if upkeep had dialed it (its slot is free for another peer
    /// now).
    pub(crate) fn failed(&mut self, peer: PeerId, now: Instant) -> bool {
        let ours = self.dialing.remove(&peer).is_some();
        if self.failed.get(&peer).is_some_and(|f| now < f.retry_at) {
            return ours;
        }
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
        ours
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn seeded(seed: u64) -> Upkeep {
        Upkeep::with_rng(StdRng::seed_from_u64(seed))
    }

    #[test]
    fn unreachable_peers_do_not_starve_a_live_one() {
        // Over many seeds: 50 peers that refuse and one that answers, 2
        // dials a round, each failure followed by another round at once
        // (as the swarm loop does), 32 dials a second at most.
        let mut worst = 0;
        for seed in 0..50 {
            let mut upkeep = seeded(seed);
            let known: Vec<PeerId> = (0..51).map(|_| PeerId::random()).collect();
            let live = known[7];
            let now = Instant::now();
            let reached = (0..40u32).find(|second| {
                let at = now + Duration::from_secs((*second).into());
                loop {
                    let chosen = upkeep.candidates(known.clone(), 2, |_| false, at);
                    if chosen.is_empty() {
                        return false;
                    }
                    if chosen.contains(&live) {
                        return true;
                    }
                    for peer in chosen {
                        upkeep.failed(peer, at);
                    }
                }
            });
            worst = worst.max(reached.expect("the live peer was dialed"));
        }
        // 32 dials a second: the 50 dead ones take two seconds at most.
        assert!(worst <= 2, "reached in second {worst}");
    }

    #[test]
    fn at_most_32_dials_start_in_a_second() {
        let mut upkeep = seeded(1);
        let known: Vec<PeerId> = (0..100).map(|_| PeerId::random()).collect();
        let now = Instant::now();
        let mut started = 0;
        for _ in 0..20 {
            for peer in upkeep.candidates(known.clone(), 2, |_| false, now) {
                upkeep.failed(peer, now);
                started += 1;
            }
        }
        assert_eq!(started, MAX_DIALS_PER_SECOND);
        let later = now + Duration::from_secs(1);
        assert_eq!(upkeep.candidates(known, 2, |_| false, later).len(), 2);
    }

    #[test]
    fn a_failed_peer_waits_twice_as_long_each_time_and_dialing_ones_are_skipped() {
        let mut upkeep = seeded(1);
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
        // Other dials failing meanwhile do not lengthen the wait.
        upkeep.failed(peer, at(3));
        upkeep.failed(peer, at(4));
        upkeep.failed(peer, at(5));
        assert!(
            upkeep
                .candidates(vec![peer], 8, |_| false, at(6))
                .is_empty()
        );
        assert_eq!(
            upkeep.candidates(vec![peer], 8, |_| false, at(7)),
            vec![peer]
        );
        upkeep.connected(&peer);
        assert_eq!(
            upkeep.candidates(vec![peer], 8, |_| false, at(7)),
            vec![peer]
        );
        // Connected peers are not candidates.
        upkeep.connected(&peer);
        assert!(upkeep.candidates(vec![peer], 8, |_| true, at(7)).is_empty());
    }

    #[test]
    fn a_round_dials_what_is_wanted_and_at_most_eight() {
        let mut upkeep = seeded(1);
        let known: Vec<PeerId> = (0..100).map(|_| PeerId::random()).collect();
        let now = Instant::now();
        assert_eq!(upkeep.candidates(known.clone(), 3, |_| false, now).len(), 3);
        let chosen = upkeep.candidates(known, 100, |_| false, now);
        assert_eq!(chosen.len(), MAX_DIALS_PER_ROUND);
    }

    #[test]
    fn nodes_that_know_the_same_peers_do_not_all_dial_the_same_first() {
        let everyone: Vec<PeerId> = (0..20).map(|_| PeerId::random()).collect();
        let now = Instant::now();
        let mut first_dialed = std::collections::HashSet::new();
        for (seed, me) in everyone.iter().enumerate() {
            let others: Vec<PeerId> = everyone.iter().filter(|p| *p != me).copied().collect();
            let chosen = seeded(seed as u64).candidates(others, 1, |_| false, now);
            first_dialed.insert(chosen[0]);
        }
        assert!(first_dialed.len() >= 8, "{} distinct", first_dialed.len());
    }
}
