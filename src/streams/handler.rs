//! One connection's `ConnectionHandler`: accepts the registered protocols
//! inbound (handing each stream to admission) and opens requested streams
//! outbound, running callers' exchanges in the connection's task.

use std::{
    convert::Infallible,
    future::{Ready, ready},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use futures::{FutureExt, StreamExt, channel::mpsc, future::BoxFuture, stream::FuturesUnordered};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol,
    core::{
        UpgradeInfo,
        upgrade::{InboundUpgrade, ReadyUpgrade},
    },
    swarm::{
        ConnectionHandler, ConnectionHandlerEvent, StreamUpgradeError, SubstreamProtocol,
        handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound},
    },
};

use super::{
    exchange,
    outbound::{OpenError, OpenRequest, Outbound},
    shared::Shared,
};

/// How long exchanges may run on once their connection has ended.
const OUTLIVE_CONNECTION: std::time::Duration = std::time::Duration::from_secs(2);

/// One connection's handler.
pub(crate) struct Handler {
    shared: Arc<Shared>,
    peer: PeerId,
    remote: Multiaddr,
    /// Through a relay.
    relayed: bool,
    requests: mpsc::Receiver<OpenRequest>,
    /// Exchanges under way; at most `MAX_OUTBOUND_STREAMS_PER_CONNECTION`,
    /// as each holds a stream permit of its caller.
    exchanges: FuturesUnordered<BoxFuture<'static, ()>>,
    /// Set when the handler goes with its connection.
    closed: Arc<AtomicBool>,
    /// The connection's inbound stream budget
    /// ([`MAX_INBOUND_STREAMS_PER_CONNECTION`](super::admission::MAX_INBOUND_STREAMS_PER_CONNECTION)).
    inbound: Arc<tokio::sync::Semaphore>,
}

impl Drop for Handler {
    /// The connection ended: exchanges still under way finish in a task of
    /// their own, reading what their streams still hold (see `exchange.rs`).
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        let exchanges = std::mem::take(&mut self.exchanges);
        if exchanges.is_empty() {
            return;
        }
        // Bounded: a stream that never reports its end gives up, and its
        // caller then hears of the lost connection.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(tokio::time::timeout(
                OUTLIVE_CONNECTION,
                exchanges.collect::<()>(),
            ));
        }
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("peer", &self.peer)
            .field("remote", &self.remote)
            .field("exchanges", &self.exchanges.len())
            .finish()
    }
}

impl Handler {
    pub(crate) fn new(
        shared: Arc<Shared>,
        peer: PeerId,
        remote: Multiaddr,
        relayed: bool,
        requests: mpsc::Receiver<OpenRequest>,
        inbound: Arc<tokio::sync::Semaphore>,
    ) -> Self {
        Self {
            shared,
            peer,
            remote,
            relayed,
            requests,
            exchanges: FuturesUnordered::new(),
            closed: Arc::new(AtomicBool::new(false)),
            inbound,
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Offered;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Outbound;

    fn listen_protocol(&self) -> SubstreamProtocol<Offered, ()> {
        SubstreamProtocol::new(Offered(self.shared.routes.offered()), ())
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Outbound, Infallible>> {
        while let Poll::Ready(Some(())) = self.exchanges.poll_next_unpin(cx) {}
        match self.requests.poll_next_unpin(cx) {
            Poll::Ready(Some(OpenRequest { protocol, outbound })) => {
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(ReadyUpgrade::new(protocol), outbound),
                })
            }
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<'_, Offered, Self::OutboundProtocol, (), Outbound>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => self.shared.routes.deliver(
                stream,
                protocol,
                self.peer,
                &self.remote,
                self.relayed,
                &self.inbound,
            ),
            ConnectionEvent::FullyNegotiatedOutbound(negotiated) => match negotiated.info {
                Outbound::Stream(reply) => {
                    let _ = reply.send(Ok(negotiated.protocol));
                }
                Outbound::Exchange(request) => self
                    .exchanges
                    .push(exchange::run(request, negotiated.protocol, self.closed.clone()).boxed()),
            },
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported,
                    StreamUpgradeError::Timeout => OpenError::Timeout,
                    StreamUpgradeError::Io(e) => OpenError::Io(e),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                info.fail(error);
            }
            ConnectionEvent::AddressChange(change) => self.remote = change.new_address.clone(),
            _ => {}
        }
    }
}

/// The inbound upgrade: offers every registered protocol and yields the
/// stream with the protocol the remote chose.
#[derive(Debug, Clone)]
pub(crate) struct Offered(Arc<[StreamProtocol]>);

impl UpgradeInfo for Offered {
    type Info = StreamProtocol;
    type InfoIter = OfferedIter;

    fn protocol_info(&self) -> OfferedIter {
        OfferedIter {
            list: self.0.clone(),
            next: 0,
        }
    }
}

/// Iterates the offered protocols without copying the list: the swarm asks
/// for it every time a connection goes idle.
#[derive(Debug)]
pub(crate) struct OfferedIter {
    list: Arc<[StreamProtocol]>,
    next: usize,
}

impl Iterator for OfferedIter {
    type Item = StreamProtocol;

    fn next(&mut self) -> Option<StreamProtocol> {
        let item = self.list.get(self.next)?.clone();
        self.next += 1;
        Some(item)
    }
}

impl InboundUpgrade<Stream> for Offered {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
