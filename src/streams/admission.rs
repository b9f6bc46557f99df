//! Inbound admission: a negotiated stream goes to its protocol's sink with a
//! permit of the protocol's capacity, or is refused (reset) and counted.
//!
//! The sink is whatever serves the protocol ([`InboundSink`]); in a node it is
//! the protocol's actor (`actors/protocol.rs`), but this layer does not name
//! it.

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shared;
use crate::{context::RequestId, metrics::RefusalReason};

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
    /// Released when the request ends.
    pub permit: OwnedSemaphorePermit,
}

/// Where a protocol's admitted inbound streams go.
pub(crate) trait InboundSink: Send + Sync + 'static {
    /// Takes `inbound`, or gives it back if the sink is gone (the stream is
    /// then refused).
    #[allow(clippy::result_large_err)]
    fn deliver(&self, inbound: InboundStream) -> Result<(), InboundStream>;
}

/// Where inbound streams of one protocol go.
pub(crate) struct Route {
    pub(crate) sink: Box<dyn InboundSink>,
    /// Streams admitted at once (running or waiting to run); more are refused.
    pub(crate) admitted: Arc<Semaphore>,
}

impl Shared {
    /// Hands an inbound stream to its protocol's sink, or refuses it.
    /// Called from the connection's task.
    pub(crate) fn deliver(
        &self,
        stream: Stream,
        protocol: StreamProtocol,
        peer: PeerId,
        remote: &Multiaddr,
    ) {
        let Some(route) = self.routes.get(&protocol) else {
            // Unregistered between negotiation and now: dropping resets it.
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
            return;
        };
        let id = self.next_request_id();
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
            permit,
        };
        if route.sink.deliver(inbound).is_err() {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
            tracing::debug!(request = %id, %peer, %protocol, "inbound stream refused: the protocol stopped");
        }
    }
}
