//! Inbound admission: the registered protocols ([`Routes`]), offered to
//! every connection's inbound negotiation; a negotiated stream goes to its
//! protocol's sink with a permit of the protocol's capacity, or is refused
//! (reset) and counted.
//!
//! The sink is whatever serves the protocol ([`InboundSink`]); in a node it is
//! the protocol's actor (`actors/protocol.rs`), but this layer does not name
//! it.

use std::sync::{
    Arc, Mutex, RwLock,
    atomic::{AtomicU64, Ordering},
};

use dashmap::DashMap;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::peer_share::{PeerPermit, PeerShares};
use crate::{
    context::RequestId,
    metrics::{Metrics, RefusalReason},
    reputation::{Reputation, Violation},
};

/// An inbound stream handed to a protocol's sink, with the permit that
/// counts it against the protocol's capacity until the request ends.
#[derive(Debug)]
pub struct InboundStream {
    /// The request's id on this node, for logs and spans.
    pub id: RequestId,
    /// The negotiated stream.
    pub stream: Stream,
    /// The protocol negotiated on it.
    pub protocol: StreamProtocol,
    /// The remote peer.
    pub peer: PeerId,
    /// The remote address of the connection.
    pub remote_addr: Multiaddr,
    /// Whether the connection runs through a relay.
    pub relayed: bool,
    /// When the stream was admitted: the request's time limits count
    /// from here.
    pub admitted_at: tokio::time::Instant,
    /// Released when the request ends.
    pub permit: OwnedSemaphorePermit,
    /// Counts the stream against its connection's cap
    /// ([`MAX_INBOUND_STREAMS_PER_CONNECTION`]) until the request ends.
    pub connection_permit: OwnedSemaphorePermit,
    /// Counts the stream against its peer's share of the protocol.
    pub(crate) share: PeerPermit,
}

/// Inbound streams one connection may hold at once (admitted to any
/// protocol, running or waiting); more are refused one by one (reset,
/// counted `reason="connection_limit"`). Below yamux's 512 streams per
/// connection, which counts both directions and closes the whole
/// connection when exceeded: a flood of streams costs the flooder its
/// streams, never the connection.
pub const MAX_INBOUND_STREAMS_PER_CONNECTION: usize = 256;

/// Where a protocol's admitted inbound streams go.
pub(crate) trait InboundSink: Send + Sync + 'static {
    /// Takes `inbound`; `false` if the sink is gone (the stream, dropped
    /// with it, is reset: a refusal).
    fn deliver(&self, inbound: InboundStream) -> bool;
}

/// Where inbound streams of one protocol go.
pub(crate) struct Route {
    pub(crate) sink: Box<dyn InboundSink>,
    /// Streams admitted at once (running or waiting to run); more are
    /// refused. Also the route's identity.
    pub(crate) admitted: Arc<Semaphore>,
    /// Each peer's share of the protocol.
    pub(crate) shares: Arc<PeerShares>,
}

/// The registered protocols and their routes.
pub(crate) struct Routes {
    metrics: Metrics,
    /// Told of every request refused by a rate limit.
    reputation: Arc<Reputation>,
    routes: DashMap<StreamProtocol, Route>,
    /// The keys of `routes`, as the list offered to inbound negotiation.
    offered: RwLock<Arc<[StreamProtocol]>>,
    /// Serialises route changes, so that `offered` never lags `routes`.
    changes: Mutex<()>,
    /// The next inbound request's id.
    next_request: AtomicU64,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("offered", &self.offered())
            .finish()
    }
}

impl Routes {
    pub(crate) fn new(metrics: Metrics, reputation: Arc<Reputation>) -> Self {
        Self {
            metrics,
            reputation,
            routes: DashMap::new(),
            offered: RwLock::new(Arc::from(Vec::new())),
            changes: Mutex::new(()),
            next_request: AtomicU64::new(1),
        }
    }

    /// Starts routing inbound streams of `protocol` to `route`. Returns
    /// `false` if the protocol already has a route.
    pub(crate) fn add(&self, protocol: StreamProtocol, route: Route) -> bool {
        let _change = self.changes.lock().expect("route lock poisoned");
        match self.routes.entry(protocol) {
            dashmap::Entry::Occupied(_) => return false,
            dashmap::Entry::Vacant(v) => {
                v.insert(route);
            }
        }
        self.refresh_offered();
        true
    }

    /// Whether inbound streams of `protocol` have a route.
    pub(crate) fn contains(&self, protocol: &StreamProtocol) -> bool {
        self.routes.contains_key(protocol)
    }

    /// Stops routing `protocol` if its route is still the one admitting
    /// through `admitted` (not a later registration's); new streams for it
    /// then fail negotiation.
    pub(crate) fn remove(&self, protocol: &StreamProtocol, admitted: &Arc<Semaphore>) {
        let _change = self.changes.lock().expect("route lock poisoned");
        let removed = self
            .routes
            .remove_if(protocol, |_, route| Arc::ptr_eq(&route.admitted, admitted));
        if removed.is_some() {
            self.refresh_offered();
        }
    }

    fn refresh_offered(&self) {
        let offered: Arc<[StreamProtocol]> = self.routes.iter().map(|r| r.key().clone()).collect();
        *self.offered.write().expect("offered lock poisoned") = offered;
    }

    /// The protocols offered to inbound negotiation.
    pub(crate) fn offered(&self) -> Arc<[StreamProtocol]> {
        self.offered.read().expect("offered lock poisoned").clone()
    }

    /// Hands `stream` to its protocol's sink if its connection
    /// (`connection`: the connection's stream budget), its peer's share and
    /// the protocol all have room; resets and counts it otherwise. Called
    /// from the connection's task.
    pub(crate) fn deliver(
        &self,
        stream: Stream,
        protocol: StreamProtocol,
        peer: PeerId,
        remote: &Multiaddr,
        relayed: bool,
        connection: &Arc<Semaphore>,
    ) {
        if self.reputation.is_banned(&peer) {
            // Banned while the connection still closes: nothing more is
            // served on it.
            self.metrics
                .inbound_refused(&protocol, RefusalReason::Banned);
            tracing::debug!(%peer, %protocol, "inbound stream refused: banned");
            return;
        }
        let Ok(connection_permit) = connection.clone().try_acquire_owned() else {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::ConnectionLimit);
            tracing::debug!(%peer, %protocol, "inbound stream refused: its connection holds too many");
            return; // dropping the stream resets it
        };
        let Some(route) = self.routes.get(&protocol) else {
            // Unregistered between negotiation and now: dropping resets it.
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
            return;
        };
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        let share = match route.shares.admit(peer) {
            Ok(share) => share,
            Err(reason) => {
                self.metrics.inbound_refused(&protocol, reason);
                if reason == RefusalReason::RateLimited {
                    self.reputation.report(peer, Violation::RateLimitExceeded);
                }
                tracing::debug!(request = %id, %peer, %protocol, ?reason, "inbound stream refused: the peer is past its share");
                return;
            }
        };
        let Ok(permit) = route.admitted.clone().try_acquire_owned() else {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::OverCapacity);
            tracing::debug!(request = %id, %peer, %protocol, "inbound stream refused: protocol at capacity");
            return; // dropping the stream resets it: an explicit refusal
        };
        let inbound = InboundStream {
            id,
            stream,
            protocol: protocol.clone(),
            peer,
            remote_addr: remote.clone(),
            relayed,
            admitted_at: tokio::time::Instant::now(),
            permit,
            connection_permit,
            share,
        };
        if !route.sink.deliver(inbound) {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
            tracing::debug!(request = %id, %peer, %protocol, "inbound stream refused: the protocol stopped");
        }
    }
}
