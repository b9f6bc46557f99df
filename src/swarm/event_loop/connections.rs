//! The connections the node keeps: at least `min_peers` (dialing known
//! peers, see `swarm/upkeep.rs`), at most `max_peers` (closing the least
//! recently used, see `swarm/trim.rs`), counted as they come and go;
//! accept failures for want of file descriptors said plainly; and, once
//! the node is stopping, none (every connection closed, those waiting told
//! when the last one is).

use std::{collections::HashSet, time::Instant};

use libp2p::{
    PeerId, Swarm,
    core::ConnectedPoint,
    swarm::{
        ConnectionError, ConnectionId,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use ractor::RpcReplyPort;

use crate::{
    discovery::address_book::AddressBook,
    metrics::Metrics,
    multiaddr::transport,
    streams::shared::Shared,
    swarm::{
        build::Behaviour,
        config::Config,
        trim::{self, Trim},
        upkeep::Upkeep,
    },
    warnings::Warnings,
};

/// The loop's connection policy.
pub(super) struct ConnectionPolicy {
    min_peers: usize,
    max_peers: usize,
    /// Which known peers the connection upkeep dials next.
    upkeep: Upkeep,
    /// Which connections to close above `max_peers`.
    trim: Trim,
    /// Running out of file descriptors, said at most every 10 s.
    descriptors_warnings: Warnings,
    /// Set once the node is stopping: who waits for the last connection to close.
    closing: Option<Vec<RpcReplyPort<()>>>,
    metrics: Metrics,
}

impl ConnectionPolicy {
    pub(super) fn new(config: &Config, metrics: Metrics) -> Self {
        Self {
            min_peers: config.min_peers,
            max_peers: config.max_peers,
            upkeep: Upkeep::new(),
            trim: Trim::new(config.trim_grace),
            descriptors_warnings: Warnings::every(std::time::Duration::from_secs(10)),
            closing: None,
            metrics,
        }
    }

    /// Whether the node is stopping: no new connection, none kept.
    pub(super) fn closing(&self) -> bool {
        self.closing.is_some()
    }

    /// `peer` is used (a dial asked for it while connected): trimming
    /// spares it a while.
    pub(super) fn used(&mut self, peer: PeerId) {
        self.trim.used(peer, Instant::now());
    }

    /// Dials known, unconnected peers while the node has fewer than
    /// `min_peers` connections, so that GossipSub has a mesh to work with
    /// even when every node bootstrapped to the same one.
    pub(super) fn keep_connected(&mut self, swarm: &mut Swarm<Behaviour>, book: &AddressBook) {
        if self.closing() {
            return;
        }
        let connected = swarm.connected_peers().count();
        if connected >= self.min_peers {
            return;
        }
        let local = *swarm.local_peer_id();
        let wanted = self.min_peers - connected;
        let known: Vec<PeerId> = book.peers().into_iter().filter(|p| *p != local).collect();
        let candidates =
            self.upkeep
                .candidates(known, wanted, |p| swarm.is_connected(p), Instant::now());
        for peer in candidates {
            let opts = DialOpts::peer_id(peer)
                .addresses(book.addresses(&peer))
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if swarm.dial(opts).is_err() {
                // Not started (another dial is under way, or no address):
                // no event will say how it ended.
                self.upkeep.failed(peer, Instant::now());
            }
        }
    }

    /// Closes the least recently used connections while more than
    /// `max_peers` peers are connected (see [`trim`]), sparing peers in a
    /// GossipSub mesh, with a stream of ours open, and those `spared` says
    /// (relays either way).
    pub(super) fn trim(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        shared: &Shared,
        spared: impl Fn(&PeerId) -> bool,
    ) {
        if self.closing() {
            return;
        }
        let now = Instant::now();
        let connected: Vec<PeerId> = swarm.connected_peers().copied().collect();
        for peer in &connected {
            if shared.connections.in_use(peer) {
                self.trim.used(*peer, now);
            }
        }
        self.metrics.connections_idle(self.trim.idle(now));
        if connected.len() <= self.max_peers {
            return;
        }
        let mesh: HashSet<PeerId> = swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .collect();
        let excess = self.trim.excess(
            connected.len(),
            self.max_peers,
            trim::low_watermark(self.max_peers),
            |p| mesh.contains(p) || spared(p),
            now,
        );
        if excess.is_empty() {
            return;
        }
        tracing::debug!(
            connected = connected.len(),
            closing = excess.len(),
            "over max_peers: closing the least recently used connections"
        );
        for peer in excess {
            // Not asked again: it is forgotten when its connections close.
            self.trim.disconnected(&peer);
            let _ = swarm.disconnect_peer_id(peer);
            self.metrics.connection_trimmed();
        }
    }

    /// A connection came up (not while stopping): counted, and its peer
    /// spared by trimming a while.
    pub(super) fn on_established(
        &mut self,
        swarm: &Swarm<Behaviour>,
        peer: PeerId,
        endpoint: &ConnectedPoint,
    ) {
        self.upkeep.connected(&peer);
        self.trim.used(peer, Instant::now());
        let address = endpoint.get_remote_address();
        tracing::debug!(peer = %peer, %address, "connected");
        self.metrics
            .connection(endpoint.is_dialer(), transport(address));
        self.metrics
            .connected_peers(swarm.connected_peers().count());
    }

    /// A dial to `peer` failed: whether it was one of the upkeep's (then
    /// the next peer is dialed at once, not a second later: refused dials
    /// fail in microseconds).
    pub(super) fn dial_failed(&mut self, peer: PeerId) -> bool {
        self.upkeep.failed(peer, Instant::now())
    }

    /// A connection closed (`remaining`: the peer's connections left).
    pub(super) fn on_closed(
        &mut self,
        swarm: &Swarm<Behaviour>,
        peer: PeerId,
        remaining: u32,
        cause: Option<&ConnectionError>,
    ) {
        if remaining == 0 {
            self.trim.disconnected(&peer);
        }
        tracing::debug!(peer = %peer, ?cause, "connection closed");
        self.metrics
            .connected_peers(swarm.connected_peers().count());
        self.answer_closing(swarm);
    }

    /// Accepting a connection failed; the listener goes on. Out of file
    /// descriptors is said plainly, at most every 10 s.
    pub(super) fn on_listener_error(&mut self, error: &std::io::Error) {
        if !crate::error::is_out_of_descriptors(error) {
            tracing::debug!("accepting a connection failed: {error}");
            return;
        }
        if let Some(suppressed) = self.descriptors_warnings.allow(Instant::now()) {
            let limit = rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
            tracing::warn!(
                limit,
                suppressed,
                "accepting connections fails: the process is out of file descriptors; raise the open-file limit or run fewer nodes per process"
            );
        }
    }

    /// The node is stopping: every connection is closed, and `reply`
    /// answered once none is left; from now on dials are refused and
    /// connections that come up are closed.
    pub(super) fn close_all(&mut self, swarm: &mut Swarm<Behaviour>, reply: RpcReplyPort<()>) {
        let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = swarm.disconnect_peer_id(peer);
        }
        self.closing.get_or_insert_default().push(reply);
        self.answer_closing(swarm);
    }

    /// A connection came up while stopping: it is closed too (an inbound
    /// one, a dial already under way).
    pub(super) fn refuse(&self, swarm: &mut Swarm<Behaviour>, connection: ConnectionId) {
        swarm.close_connection(connection);
    }

    /// Answers those waiting for the connections to close, once none is left.
    fn answer_closing(&mut self, swarm: &Swarm<Behaviour>) {
        if swarm.connected_peers().next().is_none() {
            for reply in self.closing.iter_mut().flat_map(std::mem::take) {
                let _ = reply.send(());
            }
        }
    }
}
