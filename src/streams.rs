//! The network behaviour that carries the direct protocols' streams.
//!
//! It replaces `libp2p-stream`, whose inbound hand-over is a zero-capacity
//! channel that drops streams when the acceptor is busy. Here each connection
//! handler delivers an inbound stream *itself*, from the connection's task:
//! it takes a permit from the protocol's semaphore and casts the stream to the
//! protocol's actor, or, when the protocol is at capacity, resets the stream
//! and counts the refusal. Outbound streams are requested straight from a
//! connection's handler through a bounded channel; for a call, the handler
//! also writes the request and reads the response itself, in the
//! connection's task, and hands the caller the response bytes (as
//! `request_response` does: no task switch per read or write). Neither
//! direction passes request bytes, or even stream hand-overs, through the
//! swarm's event loop.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::{Ready, ready},
    io,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use dashmap::DashMap;
use futures::{
    FutureExt, StreamExt,
    channel::{mpsc, oneshot},
    future::{BoxFuture, Either},
    stream::FuturesUnordered,
};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol,
    core::{
        Endpoint, UpgradeInfo,
        transport::PortUse,
        upgrade::{InboundUpgrade, OutboundUpgrade, ReadyUpgrade},
    },
    swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
        handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound},
    },
};
use ractor::ActorRef;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    actors::protocol::ProtocolMessage,
    address_book::AddressBook,
    codec::{self, FrameError},
    error::Phase,
    metrics::{Metrics, RefusalReason},
    registry::Gate,
};

/// Outbound stream requests a connection handler queues before callers wait.
const OPEN_QUEUE: usize = 64;

/// Outbound streams open at once on one connection; more callers wait.
///
/// yamux closes a whole connection when a side opens more streams than the
/// other accepts (512 by default, counting both directions), so callers stay
/// well below that and leave room for the remote's own streams.
pub const MAX_OUTBOUND_STREAMS_PER_CONNECTION: usize = 128;

/// An inbound stream handed to a protocol's actor, with the permit that
/// counts it against the protocol's capacity until the request ends.
#[derive(Debug)]
pub struct InboundStream {
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

/// Where inbound streams of one protocol go.
pub(crate) struct Route {
    pub(crate) actor: ActorRef<ProtocolMessage>,
    /// Streams admitted at once (running or waiting to run); more are refused.
    pub(crate) admitted: Arc<Semaphore>,
}

/// An outbound stream, counted against its connection's stream budget until
/// it is dropped. Dereferences to the libp2p [`Stream`].
#[derive(Debug)]
pub struct OutboundStream {
    stream: Stream,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for OutboundStream {
    type Target = Stream;

    fn deref(&self) -> &Stream {
        &self.stream
    }
}

impl std::ops::DerefMut for OutboundStream {
    fn deref_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

/// The handle of one connection's handler, as callers see it.
struct Connection {
    requests: mpsc::Sender<OpenRequest>,
    outbound: Arc<Semaphore>,
}

/// Why an outbound stream could not be opened on a connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("the remote does not support the protocol")]
    Unsupported,
    #[error("protocol negotiation timed out")]
    Timeout,
    #[error("the connection closed")]
    ConnectionClosed,
    #[error(transparent)]
    Io(io::Error),
}

struct OpenRequest {
    protocol: StreamProtocol,
    outbound: Outbound,
}

/// What a connection handler does with an outbound stream once it is open.
pub(crate) enum Outbound {
    /// Hands the stream to the caller.
    Stream(oneshot::Sender<Result<Stream, OpenError>>),
    /// Writes one request frame and reads one response frame on it, in the
    /// connection's task, and hands the caller the response.
    Exchange(Exchange),
}

impl Outbound {
    fn fail(self, error: OpenError) {
        match self {
            Outbound::Stream(reply) => {
                let _ = reply.send(Err(error));
            }
            Outbound::Exchange(exchange) => {
                let _ = exchange.reply.send(Err(error));
            }
        }
    }
}

/// How far an exchange got: what a caller that runs out of time was waiting for.
#[derive(Debug, Default)]
pub(crate) struct Progress(AtomicU8);

impl Progress {
    fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    /// The phase the exchange is in: [`Phase::Open`] until the stream is open.
    pub(crate) fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            x if x == Phase::Write as u8 => Phase::Write,
            x if x == Phase::Read as u8 => Phase::Read,
            _ => Phase::Open,
        }
    }
}

/// Why an exchange failed after its stream was open.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// Writing the request failed.
    Write(io::Error),
    /// Reading the response failed.
    Read(FrameError),
    /// The connection closed during the exchange.
    ConnectionClosed,
}

type ExchangeResult = Result<Result<Vec<u8>, ExchangeError>, OpenError>;

/// One request and its response, run by a connection handler.
pub(crate) struct Exchange {
    frame: Bytes,
    max: usize,
    progress: Arc<Progress>,
    reply: oneshot::Sender<ExchangeResult>,
}

impl Exchange {
    async fn run(self, mut stream: Stream) {
        let Exchange {
            frame,
            max,
            progress,
            mut reply,
        } = self;
        let result = {
            let exchange = async {
                progress.set(Phase::Write);
                codec::write_frame(&mut stream, &frame)
                    .await
                    .map_err(ExchangeError::Write)?;
                progress.set(Phase::Read);
                codec::read_frame(&mut stream, max)
                    .await
                    .map_err(ExchangeError::Read)
            };
            futures::pin_mut!(exchange);
            match futures::future::select(exchange, reply.cancellation()).await {
                Either::Left((result, _)) => result,
                // The caller gave up: dropping the stream resets it.
                Either::Right(_) => return,
            }
        };
        let _ = reply.send(Ok(result));
        // Dropping the stream closes it: yamux sends FIN once the server's
        // FIN arrived (it closes right after its response), RST otherwise.
    }
}

/// State shared by the behaviour, every connection handler and the callers.
pub(crate) struct Shared {
    metrics: Metrics,
    routes: DashMap<StreamProtocol, Route>,
    /// The keys of `routes`, as the list offered to inbound negotiation.
    offered: RwLock<Arc<[StreamProtocol]>>,
    connections: DashMap<PeerId, HashMap<ConnectionId, Connection>>,
}

impl Shared {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            routes: DashMap::new(),
            offered: RwLock::new(Arc::from(Vec::new())),
            connections: DashMap::new(),
        }
    }

    /// The node's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts routing inbound streams of `protocol` to `route`. Returns
    /// `false` if the protocol already has a route.
    pub(crate) fn add_route(&self, protocol: StreamProtocol, route: Route) -> bool {
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
        self.routes.remove(protocol);
        self.refresh_offered();
    }

    fn refresh_offered(&self) {
        let offered: Arc<[StreamProtocol]> = self.routes.iter().map(|r| r.key().clone()).collect();
        *self.offered.write().expect("offered lock poisoned") = offered;
    }

    /// The peers with an established connection.
    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.connections
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| *c.key())
            .collect()
    }

    /// Opens an outbound stream on an established connection to `peer`.
    /// `None` if there is no usable connection.
    pub(crate) async fn open(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Option<Result<OutboundStream, OpenError>> {
        let (answer, permit) = self.submit(peer, &protocol, Outbound::Stream).await?;
        let opened = answer.unwrap_or(Err(OpenError::ConnectionClosed));
        Some(opened.map(|stream| OutboundStream {
            stream,
            _permit: permit,
        }))
    }

    /// Sends `frame` on a new stream of `protocol` to `peer` and returns the
    /// response frame's body, the I/O done by the connection's handler.
    /// `None` if there is no usable connection; `Some(Err(_))` if the stream
    /// could not be opened (nothing was sent).
    pub(crate) async fn exchange(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
        frame: &Bytes,
        max: usize,
        progress: &Arc<Progress>,
    ) -> Option<ExchangeResult> {
        let (answer, _permit) = self
            .submit(peer, &protocol, |reply| {
                Outbound::Exchange(Exchange {
                    frame: frame.clone(),
                    max,
                    progress: progress.clone(),
                    reply,
                })
            })
            .await?;
        Some(match answer {
            Ok(result) => result,
            // The handler went away with the connection.
            Err(oneshot::Canceled) => match progress.get() {
                Phase::Open | Phase::Dial => Err(OpenError::ConnectionClosed),
                Phase::Write | Phase::Read => Ok(Err(ExchangeError::ConnectionClosed)),
            },
        })
    }

    /// Asks a connection to `peer` to open a stream of `protocol` and waits
    /// for its answer; the permit counts the stream against the connection's
    /// budget. `None` if there is no usable connection.
    async fn submit<T>(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        mut make: impl FnMut(oneshot::Sender<T>) -> Outbound,
    ) -> Option<(Result<T, oneshot::Canceled>, OwnedSemaphorePermit)> {
        loop {
            let (id, mut sender, outbound) = {
                let conns = self.connections.get(&peer)?;
                let (id, conn) = conns.iter().find(|(_, c)| !c.requests.is_closed())?;
                (*id, conn.requests.clone(), conn.outbound.clone())
            };
            let Ok(permit) = outbound.acquire_owned().await else {
                continue; // closed: the connection is gone
            };
            let (reply, answer) = oneshot::channel();
            let request = OpenRequest {
                protocol: protocol.clone(),
                outbound: make(reply),
            };
            if futures::SinkExt::send(&mut sender, request).await.is_err() {
                // That connection closed meanwhile: forget it and try another.
                if let Some(mut conns) = self.connections.get_mut(&peer) {
                    conns.remove(&id);
                }
                continue;
            }
            return Some((answer.await, permit));
        }
    }

    /// Hands an inbound stream to its protocol's actor, or refuses it.
    fn deliver(&self, stream: Stream, protocol: StreamProtocol, peer: PeerId, remote: &Multiaddr) {
        let Some(route) = self.routes.get(&protocol) else {
            // Unregistered between negotiation and now: dropping resets it.
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
            return;
        };
        let Ok(permit) = route.admitted.clone().try_acquire_owned() else {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::OverCapacity);
            tracing::debug!(%peer, %protocol, "inbound stream refused: protocol at capacity");
            return; // dropping the stream resets it: an explicit refusal
        };
        let inbound = InboundStream {
            stream,
            protocol: protocol.clone(),
            peer,
            remote_addr: remote.clone(),
            permit,
        };
        if route.actor.cast(ProtocolMessage::Inbound(inbound)).is_err() {
            self.metrics
                .inbound_refused(&protocol, RefusalReason::NotRegistered);
        }
    }
}

/// The behaviour: registers each connection's handler in [`Shared`] and
/// resolves the addresses of a dialed peer through the address book.
pub(crate) struct Behaviour {
    shared: Arc<Shared>,
    address_book: AddressBook,
    gate: Gate,
}

/// Why a connection was refused: membership gating is on and the peer is
/// not in the registry.
#[derive(Debug, thiserror::Error)]
#[error("peer {0} is not a member of the subnet")]
pub struct NotMember(pub PeerId);

impl Behaviour {
    pub(crate) fn new(shared: Arc<Shared>, address_book: AddressBook, gate: Gate) -> Self {
        Self {
            shared,
            address_book,
            gate,
        }
    }

    fn handler(
        &self,
        id: ConnectionId,
        peer: PeerId,
        remote: Multiaddr,
    ) -> Result<Handler, ConnectionDenied> {
        if !self.gate.admits(&peer) {
            tracing::debug!(%peer, "connection refused: not a member");
            return Err(ConnectionDenied::new(NotMember(peer)));
        }
        let (sender, requests) = mpsc::channel(OPEN_QUEUE);
        let connection = Connection {
            requests: sender,
            outbound: Arc::new(Semaphore::new(MAX_OUTBOUND_STREAMS_PER_CONNECTION)),
        };
        self.shared
            .connections
            .entry(peer)
            .or_default()
            .insert(id, connection);
        Ok(Handler {
            shared: self.shared.clone(),
            peer,
            remote,
            requests,
            exchanges: FuturesUnordered::new(),
        })
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(id, peer, remote_addr.clone())
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(id, peer, addr.clone())
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(peer
            .map(|peer| self.address_book.addresses(&peer))
            .unwrap_or_default())
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(closed) = event {
            let now_empty = self
                .shared
                .connections
                .get_mut(&closed.peer_id)
                .map(|mut conns| {
                    if let Some(conn) = conns.remove(&closed.connection_id) {
                        conn.outbound.close();
                    }
                    conns.is_empty()
                })
                .unwrap_or(false);
            if now_empty {
                self.shared
                    .connections
                    .remove_if(&closed.peer_id, |_, conns| conns.is_empty());
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// One connection's handler: accepts the registered protocols inbound and
/// opens requested streams outbound.
pub(crate) struct Handler {
    shared: Arc<Shared>,
    peer: PeerId,
    remote: Multiaddr,
    requests: mpsc::Receiver<OpenRequest>,
    /// Exchanges under way; at most `MAX_OUTBOUND_STREAMS_PER_CONNECTION`,
    /// as each holds a stream permit of its caller.
    exchanges: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Offered;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Outbound;

    fn listen_protocol(&self) -> SubstreamProtocol<Offered, ()> {
        let offered = self
            .shared
            .offered
            .read()
            .expect("offered lock poisoned")
            .clone();
        SubstreamProtocol::new(Offered(offered), ())
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
            }) => self
                .shared
                .deliver(stream, protocol, self.peer, &self.remote),
            ConnectionEvent::FullyNegotiatedOutbound(negotiated) => match negotiated.info {
                Outbound::Stream(reply) => {
                    let _ = reply.send(Ok(negotiated.protocol));
                }
                Outbound::Exchange(exchange) => {
                    self.exchanges
                        .push(exchange.run(negotiated.protocol).boxed());
                }
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

impl OutboundUpgrade<Stream> for Offered {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}
