//! The relays a node holds reservations on (relay v2): those the operator
//! configured (`NodeBuilder::relay`), always, and, while AutoNAT finds the
//! node unreachable, relays it chooses itself among the relay servers it is
//! connected to, bootstrap peers first. The swarm actor's loop asks this
//! list what to do and does it (listen through a relay, close a listener).

use std::time::Duration;

use libp2p::{Multiaddr, PeerId, core::transport::ListenerId, multiaddr::Protocol};
use tokio::time::Instant;

use super::addresses::Reachability;

/// Relays an unreachable node holds reservations on, counting the
/// configured ones: with two, a call still reaches it while one relay is
/// gone or renewing.
pub(crate) const CHOSEN_RELAYS: usize = 2;

/// Relay servers remembered as candidates at most.
const MAX_CANDIDATES: usize = 16;

/// First wait before trying a relay again after a failure: 1 s, doubling
/// up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a relay: 5 min.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// A relay the node holds (or wants) a reservation on.
#[derive(Debug)]
pub(crate) struct Relay {
    /// Its address, ending in `/p2p/<relay's peer id>`.
    pub(crate) address: Multiaddr,
    peer: Option<PeerId>,
    /// The listener holding the reservation; `None`: to be made.
    pub(crate) listener: Option<ListenerId>,
    next: Instant,
    backoff: Duration,
    /// Chosen by the node (not configured): released once the node is
    /// reachable, dropped when it fails.
    chosen: bool,
}

/// What to do about a relay listener that closed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Not a relay listener.
    NotARelay,
    /// A configured relay: tried again after this wait.
    Retry(Multiaddr, Duration),
    /// A chosen relay: dropped (another candidate may be chosen).
    Dropped(Multiaddr),
}

/// The relays, and the relay servers the node could choose from.
#[derive(Debug)]
pub(crate) struct Relays {
    relays: Vec<Relay>,
    /// Connected peers that serve relay v2 (`/libp2p/circuit/relay/0.2.0/hop`
    /// in identify), with an address to reach them at.
    candidates: Vec<(PeerId, Multiaddr)>,
    /// The bootstrap peers: chosen first.
    bootstrap: Vec<PeerId>,
}

impl Relays {
    /// The operator's relays (each ending in `/p2p/<peer id>`).
    pub(crate) fn new(configured: &[Multiaddr], now: Instant) -> Self {
        Self {
            relays: configured
                .iter()
                .map(|address| Relay {
                    address: address.clone(),
                    peer: peer_of(address),
                    listener: None,
                    next: now,
                    backoff: RETRY_MIN,
                    chosen: false,
                })
                .collect(),
            candidates: Vec::new(),
            bootstrap: Vec::new(),
        }
    }

    /// The relays holding (or making) a reservation for the node.
    pub(crate) fn reserved_peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.relays
            .iter()
            .filter(|r| r.listener.is_some())
            .filter_map(|r| r.peer)
    }

    /// Notes the bootstrap peers, preferred as relays.
    pub(crate) fn bootstrap(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        for peer in peers {
            if !self.bootstrap.contains(&peer) {
                self.bootstrap.push(peer);
            }
        }
    }

    /// A connected peer serves relay v2 at `address`.
    pub(crate) fn offered(&mut self, peer: PeerId, address: Multiaddr) {
        let address = if peer_of(&address).is_some() {
            address
        } else {
            address.with(Protocol::P2p(peer))
        };
        self.candidates.retain(|(p, _)| *p != peer);
        if self.candidates.len() >= MAX_CANDIDATES {
            self.candidates.remove(0);
        }
        self.candidates.push((peer, address));
    }

    /// Chooses relays while the node is unreachable, up to
    /// [`CHOSEN_RELAYS`] with the configured ones; releases the chosen
    /// ones once it is reachable. Returns the listeners to close.
    pub(crate) fn choose(&mut self, reachability: Reachability, now: Instant) -> Vec<ListenerId> {
        match reachability {
            Reachability::Unknown => Vec::new(),
            Reachability::Public => {
                let released = self
                    .relays
                    .iter()
                    .filter(|r| r.chosen)
                    .filter_map(|r| r.listener)
                    .collect();
                self.relays.retain(|r| !r.chosen);
                released
            }
            Reachability::Private => {
                let bootstrap = &self.bootstrap;
                let mut candidates: Vec<&(PeerId, Multiaddr)> = self.candidates.iter().collect();
                candidates.sort_by_key(|(peer, _)| !bootstrap.contains(peer));
                let mut chosen = Vec::new();
                for (peer, address) in candidates {
                    if self.relays.len() + chosen.len() >= CHOSEN_RELAYS {
                        break;
                    }
                    if self.relays.iter().any(|r| r.peer == Some(*peer)) {
                        continue;
                    }
                    tracing::info!(
                        "unreachable from other hosts: reserving a slot on relay {address}"
                    );
                    chosen.push(Relay {
                        address: address.clone(),
                        peer: Some(*peer),
                        listener: None,
                        next: now,
                        backoff: RETRY_MIN,
                        chosen: true,
                    });
                }
                self.relays.extend(chosen);
                Vec::new()
            }
        }
    }

    /// The relays without a reservation whose retry time has come.
    pub(crate) fn due(&mut self, now: Instant) -> impl Iterator<Item = &mut Relay> {
        self.relays
            .iter_mut()
            .filter(move |r| r.listener.is_none() && r.next <= now)
    }

    /// A relay listener reported its circuit address: the reservation
    /// holds.
    pub(crate) fn reserved(&mut self, id: ListenerId) {
        for relay in self.relays.iter_mut().filter(|r| r.listener == Some(id)) {
            relay.backoff = RETRY_MIN;
        }
    }

    /// A listener closed: a configured relay is tried again after a
    /// backoff that doubles with each failure; a chosen one is dropped,
    /// and no longer a candidate until it says again that it relays.
    pub(crate) fn closed(&mut self, id: ListenerId, now: Instant) -> Closed {
        let Some(index) = self.relays.iter().position(|r| r.listener == Some(id)) else {
            return Closed::NotARelay;
        };
        let relay = &mut self.relays[index];
        if relay.chosen {
            let relay = self.relays.remove(index);
            self.candidates.retain(|(p, _)| Some(*p) != relay.peer);
            return Closed::Dropped(relay.address);
        }
        relay.listener = None;
        let wait = relay.backoff;
        relay.failed(now);
        Closed::Retry(relay.address.clone(), wait)
    }
}

impl Relay {
    /// Listening through it failed: try again after the backoff.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.next = now + self.backoff;
        self.backoff = (self.backoff * 2).min(RETRY_MAX);
    }
}

/// The peer id an address ends with.
fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    match address.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u8) -> Multiaddr {
        format!("/ip4/10.201.0.{i}/tcp/4001").parse().unwrap()
    }

    #[test]
    fn an_unreachable_node_chooses_bootstrap_relays_first_and_releases_them_when_reachable() {
        let now = Instant::now();
        let mut relays = Relays::new(&[], now);
        let (r1, r2, r3) = (PeerId::random(), PeerId::random(), PeerId::random());
        relays.offered(r1, address(2));
        relays.offered(r2, address(3));
        relays.offered(r3, address(4));
        relays.bootstrap([r3]);
        assert!(relays.choose(Reachability::Unknown, now).is_empty());
        assert_eq!(relays.due(now).count(), 0, "nothing chosen while unknown");

        relays.choose(Reachability::Private, now);
        let chosen: Vec<Multiaddr> = relays.due(now).map(|r| r.address.clone()).collect();
        assert_eq!(
            chosen,
            vec![
                address(4).with(Protocol::P2p(r3)),
                address(2).with(Protocol::P2p(r1))
            ]
        );
        // Choosing again adds none: two is enough.
        relays.choose(Reachability::Private, now);
        assert_eq!(relays.due(now).count(), CHOSEN_RELAYS);

        // A chosen relay that fails is dropped and another one chosen.
        let id = ListenerId::next();
        relays.due(now).next().unwrap().listener = Some(id);
        assert_eq!(
            relays.closed(id, now),
            Closed::Dropped(address(4).with(Protocol::P2p(r3)))
        );
        relays.choose(Reachability::Private, now);
        assert_eq!(relays.due(now).count(), CHOSEN_RELAYS);

        // Reachable: the chosen ones go, their listeners closed.
        let id = ListenerId::next();
        relays.due(now).next().unwrap().listener = Some(id);
        assert_eq!(relays.choose(Reachability::Public, now), vec![id]);
        assert_eq!(relays.due(now).count(), 0);
    }

    #[test]
    fn a_configured_relay_stays_and_backs_off() {
        let now = Instant::now();
        let configured = address(2).with(Protocol::P2p(PeerId::random()));
        let mut relays = Relays::new(std::slice::from_ref(&configured), now);
        relays.offered(PeerId::random(), address(3));
        assert!(relays.choose(Reachability::Public, now).is_empty());
        let id = ListenerId::next();
        relays.due(now).next().unwrap().listener = Some(id);
        assert_eq!(
            relays.closed(id, now),
            Closed::Retry(configured.clone(), RETRY_MIN)
        );
        assert_eq!(relays.due(now).count(), 0, "waits");
        assert_eq!(relays.due(now + RETRY_MIN).count(), 1);
        // Unreachable: one more is chosen besides it.
        relays.choose(Reachability::Private, now);
        assert_eq!(relays.due(now + RETRY_MIN).count(), CHOSEN_RELAYS);
    }
}
