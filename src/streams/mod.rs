//! The network behaviour that carries the direct protocols' streams.
//!
//! It replaces `libp2p-stream`, whose inbound hand-over is a zero-capacity
//! channel that drops streams when the acceptor is busy. Here each connection
//! handler delivers an inbound stream *itself*, from the connection's task:
//! it takes a permit from the protocol's semaphore and hands the stream to the
//! protocol's [`InboundSink`], or, when the protocol is at capacity, resets the
//! stream and counts the refusal ([`admission`]). Outbound streams are
//! requested straight from a connection's handler through a bounded channel
//! ([`outbound`]); for a call, the handler also writes the request and reads
//! the response itself, in the connection's task, and hands the caller the
//! response bytes ([`exchange`], as `request_response` does: no task switch
//! per read or write). Neither direction passes request bytes, or even stream
//! hand-overs, through the swarm's event loop.
//!
//! - [`behaviour`]: the `NetworkBehaviour`; registers each connection's handler here.
//! - [`handler`]: the `ConnectionHandler`; negotiates streams both ways.
//! - [`admission`]: inbound streams to their protocol's sink, or refused.
//! - [`outbound`]: callers' stream requests to a connection, bounded per connection.
//! - [`exchange`]: one request frame out, one response frame in, in the connection's task.
//! - [`gate`]: membership gating, checked when a connection is established.

pub(crate) mod admission;
pub(crate) mod behaviour;
pub(crate) mod exchange;
pub(crate) mod gate;
pub(crate) mod handler;
pub(crate) mod outbound;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use dashmap::DashMap;
use libp2p::{PeerId, StreamProtocol, swarm::ConnectionId};

pub use self::{
    admission::InboundStream,
    behaviour::NotMember,
    outbound::{MAX_OUTBOUND_STREAMS_PER_CONNECTION, OutboundStream},
};
use self::{admission::Route, outbound::Connection};
use crate::{context::RequestId, metrics::Metrics};

/// State shared by the behaviour, every connection handler and the callers.
pub(crate) struct Shared {
    metrics: Metrics,
    routes: DashMap<StreamProtocol, Route>,
    /// The keys of `routes`, as the list offered to inbound negotiation.
    offered: RwLock<Arc<[StreamProtocol]>>,
    /// Serialises route changes, so that `offered` never lags `routes`.
    route_changes: Mutex<()>,
    connections: DashMap<PeerId, HashMap<ConnectionId, Connection>>,
    /// The next inbound request's id.
    next_request: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("routes", &self.routes.len())
            .field("connected_peers", &self.connections.len())
            .finish()
    }
}

impl Shared {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            routes: DashMap::new(),
            offered: RwLock::new(Arc::from(Vec::new())),
            route_changes: Mutex::new(()),
            connections: DashMap::new(),
            next_request: AtomicU64::new(1),
        }
    }

    /// The node's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts routing inbound streams of `protocol` to `route`. Returns
    /// `false` if the protocol already has a route.
    pub(crate) fn add_route(&self, protocol: StreamProtocol, route: Route) -> bool {
        let _change = self.route_changes.lock().expect("route lock poisoned");
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
    pub(crate) fn has_route(&self, protocol: &StreamProtocol) -> bool {
        self.routes.contains_key(protocol)
    }

    /// Stops routing `protocol`; new streams for it fail negotiation.
    pub(crate) fn remove_route(&self, protocol: &StreamProtocol) {
        let _change = self.route_changes.lock().expect("route lock poisoned");
        if self.routes.remove(protocol).is_some() {
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

    /// The peers with an established connection.
    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.connections
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| *c.key())
            .collect()
    }

    /// A new inbound request's id, unique on this node.
    pub(crate) fn next_request_id(&self) -> RequestId {
        RequestId(self.next_request.fetch_add(1, Ordering::Relaxed))
    }
}
