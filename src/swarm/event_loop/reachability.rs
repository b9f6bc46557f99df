//! How others reach this node: its listen addresses as the swarm reports
//! them, those AutoNAT v2 confirmed, what it advertises (its external
//! addresses, which identify tells peers), the relays it holds
//! reservations on when unreachable, the peers holding one on it, and how
//! hole punching went.

use std::collections::{HashMap, HashSet};

use libp2p::{
    Multiaddr, PeerId, Swarm, autonat,
    core::{ConnectedPoint, transport::ListenerId},
    dcutr,
    multiaddr::Protocol,
    relay,
    swarm::{ConnectionId, SwarmEvent},
};

use crate::{
    metrics::Metrics,
    multiaddr::{is_circuit, is_local},
    swarm::{
        addresses::{ListenAddresses, Reachability, Tested},
        build::{Behaviour, BehaviourEvent},
        relays::{Closed, Relays},
    },
};

/// The loop's reachability part.
pub(super) struct Reach {
    listen_addrs: ListenAddresses,
    /// The relays the node holds reservations on, and those it may choose.
    relays: Relays,
    /// What AutoNAT v2 found about the node's addresses.
    tested: Tested,
    /// Peers holding a relay reservation on this node: their connection
    /// is their address, never trimmed.
    reserving: HashSet<PeerId>,
    /// The listen addresses this loop made external addresses (what
    /// identify tells peers); others (an operator's) are left alone.
    advertised: Vec<Multiaddr>,
    /// The address each direct outbound connection was dialed at: where a
    /// relay server found on it is reached.
    dialed: HashMap<ConnectionId, Multiaddr>,
    metrics: Metrics,
}

impl Reach {
    pub(super) fn new(
        listen_addrs: ListenAddresses,
        relays: &[Multiaddr],
        metrics: Metrics,
    ) -> Self {
        Self {
            listen_addrs,
            relays: Relays::new(relays, tokio::time::Instant::now()),
            tested: Tested::default(),
            reserving: HashSet::new(),
            advertised: Vec::new(),
            dialed: HashMap::new(),
            metrics,
        }
    }

    /// The node's listen addresses (whether it is on one machine with all
    /// its peers: `ListenAddresses::one_machine`).
    pub(super) fn listen_addrs(&self) -> &ListenAddresses {
        &self.listen_addrs
    }

    fn one_machine(&self) -> bool {
        self.listen_addrs.one_machine()
    }

    /// Whether `peer` is a relay either way: serving a reservation to this
    /// node, or holding one on it. Trimming spares it.
    pub(super) fn relays_either_way(&self) -> impl Fn(&PeerId) -> bool + '_ {
        let serving: HashSet<PeerId> = self.relays.reserved_peers().collect();
        move |peer| serving.contains(peer) || self.reserving.contains(peer)
    }

    /// Bootstrap peers are the first relays chosen.
    pub(super) fn bootstrap(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.relays.bootstrap(peers);
    }

    /// The swarm's address events: listen addresses come and go, external
    /// ones are confirmed or expire; what the node advertises follows.
    pub(super) fn on_swarm_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: SwarmEvent<BehaviourEvent>,
    ) {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                self.relays.reserved(listener_id);
                let peer = *swarm.local_peer_id();
                // A circuit address ends in the node's own peer id already.
                let full = address.clone().with_p2p(peer).unwrap_or_else(|a| a);
                tracing::info!("listening on {full}");
                self.listen_addrs.add(address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                // A closed listener's addresses go with it (libp2p reports
                // them here, not as expired addresses).
                for address in &addresses {
                    self.listen_addrs.remove(address);
                }
                self.advertise(swarm);
                self.listener_closed(listener_id, reason.err());
                return;
            }
            // A relay reservation confirms its circuit address too: that
            // one is a listen address already.
            SwarmEvent::ExternalAddrConfirmed { address } if !is_circuit(&address) => {
                tracing::info!("reachable from other hosts at {address} (AutoNAT)");
                self.listen_addrs.confirm(address);
            }
            SwarmEvent::ExternalAddrExpired { address } => self.listen_addrs.unconfirm(&address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!("no longer listening on {address}");
                self.listen_addrs.remove(&address);
            }
            _ => return,
        }
        self.advertise(swarm);
    }

    /// A connection came up: where a direct outbound one was dialed is
    /// where a relay server found on it is reached.
    pub(super) fn on_established(&mut self, connection: ConnectionId, endpoint: &ConnectedPoint) {
        if endpoint.is_dialer() && !is_circuit(endpoint.get_remote_address()) {
            let address = endpoint.get_remote_address().clone();
            self.dialed.insert(connection, address);
        }
    }

    /// A connection closed (`remaining`: the peer's connections left).
    pub(super) fn on_closed(&mut self, peer: &PeerId, connection: ConnectionId, remaining: u32) {
        self.dialed.remove(&connection);
        if remaining == 0 {
            self.reserving.remove(peer);
        }
    }

    /// A peer's identify: if it is a relay server, it is one the node may
    /// choose, reached where it was dialed or at the first direct address
    /// it advertises.
    pub(super) fn on_identify(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        protocols: &[libp2p::StreamProtocol],
        addresses: &[Multiaddr],
    ) {
        if !protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            return;
        }
        let at = self
            .dialed
            .get(&connection)
            .cloned()
            .or_else(|| addresses.iter().find(|a| !is_circuit(a)).cloned());
        if let Some(address) = at {
            self.relays.offered(peer, address);
        }
    }

    /// What AutoNAT v2 found of one address: the node's reachability
    /// follows (logged when it changes); relays are chosen or released at
    /// once.
    pub(super) fn on_autonat(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: autonat::v2::client::Event,
        closing: bool,
    ) {
        let autonat::v2::client::Event {
            tested_addr: address,
            server,
            result,
            ..
        } = event;
        if let Err(error) = &result {
            tracing::debug!(%server, "AutoNAT: not reachable at {address}: {error}");
        }
        // A circuit address says nothing of the node's own reachability; a
        // loopback or link-local one (a listener's, translated) nothing
        // about other hosts, except on a node that has only those.
        if is_circuit(&address) || (is_local(&address) && !self.one_machine()) {
            return;
        }
        let before = self.listen_addrs.reachability();
        let now = self.tested.record(address, result.is_ok());
        if now != before {
            match now {
                Reachability::Private => tracing::warn!(
                    "AutoNAT: other hosts cannot reach this node (behind NAT or a firewall); \
                     it will be reached through relays"
                ),
                Reachability::Public => tracing::info!("AutoNAT: reachable from other hosts"),
                Reachability::Unknown => {}
            }
            self.listen_addrs.set_reachability(now);
            self.reserve(swarm, closing);
        }
    }

    /// Who holds a reservation on this node (as a relay server).
    pub(super) fn on_relay_server(&mut self, event: relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                self.reserving.insert(src_peer_id);
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                self.reserving.remove(&src_peer_id);
            }
            _ => {}
        }
    }

    /// How hole punching went: logged and counted.
    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        let dcutr::Event {
            remote_peer_id,
            result,
        } = event;
        match &result {
            Ok(_) => {
                tracing::info!(peer = %remote_peer_id, "hole punching made a direct connection")
            }
            Err(error) => tracing::info!(peer = %remote_peer_id, "hole punching failed: {error}"),
        }
        self.metrics.hole_punch(result.is_ok());
    }

    /// Chooses or releases relays as the node's reachability asks, then
    /// listens through each relay without a reservation whose retry time
    /// has come (the relay client dials the relay and reserves a slot; it
    /// renews the reservation while the listener lives). Not on a node
    /// that is stopping.
    pub(super) fn reserve(&mut self, swarm: &mut Swarm<Behaviour>, closing: bool) {
        if closing {
            return;
        }
        let now = tokio::time::Instant::now();
        let reachability = self.listen_addrs.reachability();
        for released in self.relays.choose(reachability, now) {
            swarm.remove_listener(released);
        }
        for relay in self.relays.due(now) {
            let circuit = relay.address.clone().with(Protocol::P2pCircuit);
            match swarm.listen_on(circuit) {
                Ok(id) => relay.listener = Some(id),
                Err(error) => {
                    tracing::warn!("cannot listen through relay {}: {error}", relay.address);
                    relay.failed(now);
                }
            }
        }
    }

    /// A listener closed: if it held (or was making) a relay reservation,
    /// a configured relay is tried again after a backoff; a chosen one
    /// makes way for another.
    fn listener_closed(&mut self, id: ListenerId, error: Option<std::io::Error>) {
        let reason = error
            .as_ref()
            .map_or("it ended".to_owned(), ToString::to_string);
        match self.relays.closed(id, tokio::time::Instant::now()) {
            Closed::NotARelay => {}
            Closed::Retry(address, wait) => tracing::warn!(
                "no reservation on relay {address} ({reason}); trying again in {wait:?}"
            ),
            Closed::Dropped(address) => {
                tracing::info!("no reservation on relay {address} ({reason}); choosing another")
            }
        }
    }

    /// Makes what the node advertises (see `ListenAddresses::advertised`)
    /// its external addresses, which identify tells peers.
    pub(super) fn advertise(&mut self, swarm: &mut Swarm<Behaviour>) {
        // The operator's external addresses are advertised even on a node
        // that otherwise has only loopback ones.
        let mut wanted = self.listen_addrs.advertised();
        for external in self.listen_addrs.external() {
            if !wanted.contains(external) {
                wanted.insert(0, external.clone());
            }
        }
        for stale in self.advertised.iter().filter(|a| !wanted.contains(a)) {
            swarm.remove_external_address(stale);
        }
        for address in wanted.iter().filter(|a| !self.advertised.contains(a)) {
            swarm.add_external_address(address.clone());
        }
        if wanted != self.advertised {
            // Connected peers hear of it now (a new circuit address, say),
            // not at their next identify.
            let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
            swarm.behaviour_mut().identify.push(peers);
        }
        self.advertised = wanted;
    }
}
