//! Connection trimming: which connections to close when a node holds more
//! than it wants (`NodeBuilder::max_peers`).
//!
//! Connections do not end by themselves in a subnet: GossipSub keeps a
//! stream open to every peer that shares a topic, and an open stream keeps
//! a connection alive past rust-libp2p's idle timeout. Every peer a node
//! ever reached (a Kademlia walk, a call, a peer that dialed it) stays
//! connected, so a subnet of a few hundred nodes becomes a full mesh, each
//! connection holding its buffers and taking its share of gossip
//! (docs/PERFORMANCE.md, "Connections").
//! Like go-libp2p's connection manager (high and low watermarks, a grace
//! period, protected peers), the swarm's loop asks this each second: above
//! `max_peers` connected peers, the least recently used ones that are not
//! protected are closed until `low` are left. Protected: peers connected
//! or used within the grace period, and whatever the caller says (peers in
//! a GossipSub mesh, with a stream of ours open, relays).
//!
//! Data only, with the clock injected.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// When each connected peer connected or was last used.
#[derive(Debug)]
pub(crate) struct Trim {
    /// How long a peer is kept after it connected or was last used (a
    /// call, a dial asked for), whatever the count.
    grace: Duration,
    used: HashMap<PeerId, Instant>,
}

impl Trim {
    /// A trim sparing peers for `grace` after they connected or were used.
    pub(crate) fn new(grace: Duration) -> Self {
        Self {
            grace,
            used: HashMap::new(),
        }
    }

    /// `peer` connected, or was used, at `now`.
    pub(crate) fn used(&mut self, peer: PeerId, now: Instant) {
        self.used.insert(peer, now);
    }

    /// `peer`'s last connection closed.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.used.remove(peer);
    }

    /// The peers to disconnect now: none while at most `high` are
    /// connected; otherwise the least recently used of those not
    /// `protected` and idle for the grace period, down to `low` connected
    /// peers (fewer if too many are protected).
    pub(crate) fn excess(
        &self,
        connected: usize,
        high: usize,
        low: usize,
        protected: impl Fn(&PeerId) -> bool,
        now: Instant,
    ) -> Vec<PeerId> {
        if connected <= high {
            return Vec::new();
        }
        let mut idle: Vec<(Instant, PeerId)> = self
            .used
            .iter()
            .filter(|(peer, used)| now.duration_since(**used) >= self.grace && !protected(peer))
            .map(|(peer, used)| (*used, *peer))
            .collect();
        idle.sort_unstable();
        idle.into_iter()
            .take(connected.saturating_sub(low))
            .map(|(_, peer)| peer)
            .collect()
    }

    /// How many connected peers were not used for the grace period at
    /// `now`: those trimming closes first, unless protected.
    pub(crate) fn idle(&self, now: Instant) -> usize {
        self.used
            .values()
            .filter(|used| now.duration_since(**used) >= self.grace)
            .count()
    }

    /// The peers known as connected (the size of what is kept here).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.used.len()
    }
}

/// The low watermark for `high`: a quarter below it, so that a node
/// trimmed back is not at the limit again with its next connection.
pub(crate) fn low_watermark(high: usize) -> usize {
    high - high / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(60);

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn nothing_is_closed_at_or_below_the_limit() {
        let mut trim = Trim::new(GRACE);
        let start = Instant::now();
        let all = peers(10);
        for peer in &all {
            trim.used(*peer, start);
        }
        let later = start + GRACE * 2;
        assert_eq!(trim.idle(start), 0);
        assert_eq!(trim.idle(later), 10);
        assert!(trim.excess(10, 10, 7, |_| false, later).is_empty());
        assert_eq!(trim.excess(11, 10, 7, |_| false, later).len(), 4);
    }

    #[test]
    fn the_least_recently_used_go_first_down_to_the_low_watermark() {
        let mut trim = Trim::new(GRACE);
        let start = Instant::now();
        let all = peers(12);
        for (i, peer) in all.iter().enumerate() {
            trim.used(*peer, start + Duration::from_secs(i as u64));
        }
        let now = start + GRACE * 3;
        let closed = trim.excess(12, 8, 6, |_| false, now);
        assert_eq!(closed, all[..6].to_vec());
        // Using a peer again moves it to the back.
        trim.used(all[0], start + Duration::from_secs(100));
        let closed = trim.excess(12, 8, 6, |_| false, now);
        assert_eq!(closed, all[1..7].to_vec());
    }

    #[test]
    fn peers_in_their_grace_period_and_protected_peers_stay() {
        let mut trim = Trim::new(GRACE);
        let start = Instant::now();
        let old = peers(6);
        let new = peers(6);
        for peer in &old {
            trim.used(*peer, start);
        }
        let now = start + GRACE;
        for peer in &new {
            trim.used(*peer, now - Duration::from_secs(1));
        }
        let protected = old[0];
        let closed = trim.excess(12, 4, 3, |p| *p == protected, now);
        // Nine would have to go; only the five old, unprotected ones may.
        assert_eq!(closed.len(), 5);
        assert!(closed.iter().all(|p| old.contains(p) && *p != protected));
    }

    #[test]
    fn a_disconnected_peer_is_forgotten() {
        let mut trim = Trim::new(GRACE);
        let start = Instant::now();
        let all = peers(3);
        for peer in &all {
            trim.used(*peer, start);
        }
        trim.disconnected(&all[1]);
        assert_eq!(trim.len(), 2);
        let closed = trim.excess(3, 1, 0, |_| false, start + GRACE);
        assert!(!closed.contains(&all[1]));
    }

    #[test]
    fn the_low_watermark_is_a_quarter_below() {
        assert_eq!(low_watermark(64), 48);
        assert_eq!(low_watermark(8), 6);
        assert_eq!(low_watermark(1), 1);
        assert_eq!(low_watermark(0), 0);
    }
}
