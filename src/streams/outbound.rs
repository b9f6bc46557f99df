//! Outbound streams, the callers' side: the registry of established
//! connections ([`Connections`]), and what a caller asks of one: a raw
//! stream, or an exchange (one request frame out, one response frame in)
//! that the connection's handler runs in the connection's task
//! (`exchange.rs`). Requests go through each connection's bounded channel,
//! and a caller holds a permit of the connection's stream budget while its
//! stream lives.

use std::{
    collections::HashMap,
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use dashmap::DashMap;
use futures::channel::{mpsc, oneshot};
use libp2p::{PeerId, Stream, StreamProtocol, swarm::ConnectionId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::admission::MAX_INBOUND_STREAMS_PER_CONNECTION;
use crate::codec::FrameError;

/// Outbound stream requests a connection handler queues before callers wait.
const OPEN_QUEUE: usize = 64;

/// Outbound streams open at once on one connection; more callers wait.
///
/// yamux closes a whole connection when a side opens more streams than the
/// other accepts (512 by default, counting both directions), so callers stay
/// well below that and leave room for the remote's own streams.
pub const MAX_OUTBOUND_STREAMS_PER_CONNECTION: usize = 128;

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

/// How far an exchange got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    /// Opening the stream and negotiating the protocol: nothing sent yet.
    Open,
    /// Writing the request.
    Write,
    /// Waiting for and reading the response.
    Read,
}

/// How far an exchange got, shared by the caller and the connection's task:
/// what a caller that runs out of time was waiting for; and whether the
/// connection it runs on is relayed.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    step: AtomicU8,
    relayed: AtomicBool,
}

impl Progress {
    pub(crate) fn set(&self, step: Step) {
        self.step.store(step as u8, Ordering::Relaxed);
    }

    /// Whether the exchange was handed to a relayed connection.
    pub(crate) fn relayed(&self) -> bool {
        self.relayed.load(Ordering::Relaxed)
    }

    /// The step the exchange is in: [`Step::Open`] until the stream is open.
    pub(crate) fn get(&self) -> Step {
        match self.step.load(Ordering::Relaxed) {
            x if x == Step::Write as u8 => Step::Write,
            x if x == Step::Read as u8 => Step::Read,
            _ => Step::Open,
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
    /// The connection closed during the exchange, in this step.
    ConnectionLost(Step),
    /// The exchange failed in this step after its connection had ended.
    AfterClose(Step, Box<ExchangeError>),
}

/// The outcome of an exchange: the stream did not open, or it did and the
/// exchange answered or failed.
pub(crate) type ExchangeResult = Result<Result<Vec<u8>, ExchangeError>, OpenError>;

/// The bounds of one exchange's transfer: the largest response accepted
/// (bytes), and how long the request write or the response read may go
/// without progress (waiting for the response's first byte is not a stall:
/// the handler is working).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub(crate) max: usize,
    pub(crate) stall: Duration,
}

/// An exchange a caller asks of a connection: the request frame, the
/// largest response accepted, and where the answer goes.
#[derive(Debug)]
pub(crate) struct ExchangeRequest {
    pub(crate) frame: Bytes,
    pub(crate) transfer: Transfer,
    pub(crate) progress: Arc<Progress>,
    pub(crate) reply: oneshot::Sender<ExchangeResult>,
}

/// What a connection handler does with an outbound stream once it is open.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Hands the stream to the caller.
    Stream(oneshot::Sender<Result<Stream, OpenError>>),
    /// Runs an exchange on it, in the connection's task.
    Exchange(ExchangeRequest),
}

impl Outbound {
    /// The stream could not be opened: tell whoever waits.
    pub(crate) fn fail(self, error: OpenError) {
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

/// A request to open a stream, queued for a connection's handler.
#[derive(Debug)]
pub(crate) struct OpenRequest {
    pub(crate) protocol: StreamProtocol,
    pub(crate) outbound: Outbound,
}

/// The handle of one connection's handler, as callers see it.
#[derive(Debug)]
struct Connection {
    requests: mpsc::Sender<OpenRequest>,
    outbound: Arc<Semaphore>,
    /// The handler's inbound stream budget: permits out are inbound
    /// streams being served.
    inbound: Arc<Semaphore>,
    /// Over a loopback or link-local address.
    local: bool,
    /// Through a relay.
    relayed: bool,
}

/// The established connections, by peer: where callers' stream requests go.
#[derive(Debug, Default)]
pub(crate) struct Connections(DashMap<PeerId, HashMap<ConnectionId, Connection>>);

impl Connections {
    /// Registers a new connection (`local`: over a loopback or link-local
    /// address; `relayed`: through a relay; `inbound`: its handler's
    /// inbound stream budget); its handler polls the returned receiver.
    pub(crate) fn insert(
        &self,
        peer: PeerId,
        id: ConnectionId,
        local: bool,
        relayed: bool,
        inbound: Arc<Semaphore>,
    ) -> mpsc::Receiver<OpenRequest> {
        let (requests, receiver) = mpsc::channel(OPEN_QUEUE);
        let connection = Connection {
            requests,
            outbound: Arc::new(Semaphore::new(MAX_OUTBOUND_STREAMS_PER_CONNECTION)),
            inbound,
            local,
            relayed,
        };
        self.0.entry(peer).or_default().insert(id, connection);
        receiver
    }

    /// Forgets a closed connection; callers waiting for its stream budget
    /// move on.
    pub(crate) fn remove(&self, peer: &PeerId, id: ConnectionId) {
        let now_empty = self
            .0
            .get_mut(peer)
            .map(|mut conns| {
                if let Some(conn) = conns.remove(&id) {
                    conn.outbound.close();
                }
                conns.is_empty()
            })
            .unwrap_or(false);
        if now_empty {
            self.0.remove_if(peer, |_, conns| conns.is_empty());
        }
    }

    /// Whether connection `id` to `peer` is over a loopback or link-local
    /// address.
    pub(crate) fn is_local_connection(&self, peer: &PeerId, id: ConnectionId) -> bool {
        self.0
            .get(peer)
            .is_some_and(|conns| conns.get(&id).is_some_and(|c| c.local))
    }

    /// Whether `peer` is connected over a loopback or link-local address.
    pub(crate) fn is_local(&self, peer: &PeerId) -> bool {
        self.0
            .get(peer)
            .is_some_and(|conns| conns.values().any(|c| c.local))
    }

    /// Whether a stream of a registered protocol to or from `peer` is
    /// open: a call under way, or a request being served.
    pub(crate) fn in_use(&self, peer: &PeerId) -> bool {
        self.0.get(peer).is_some_and(|conns| {
            conns.values().any(|c| {
                c.outbound.available_permits() < MAX_OUTBOUND_STREAMS_PER_CONNECTION
                    || c.inbound.available_permits() < MAX_INBOUND_STREAMS_PER_CONNECTION
            })
        })
    }

    /// The peers with an established connection.
    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.0
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
        protocol: &StreamProtocol,
    ) -> Option<Result<OutboundStream, OpenError>> {
        let (answer, permit, _) = self.submit(peer, protocol, Outbound::Stream).await?;
        let opened = answer.unwrap_or(Err(OpenError::ConnectionClosed));
        Some(opened.map(|stream| OutboundStream {
            stream,
            _permit: permit,
        }))
    }

    /// Has a connection to `peer` send `frame` on a new stream of `protocol`
    /// and read the response frame (within `transfer`'s bounds), in its task.
    /// `None` if there is no usable connection; `Some(Err(_))` if the stream
    /// could not be opened (nothing was sent).
    pub(crate) async fn exchange(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        frame: &Bytes,
        transfer: Transfer,
        progress: &Arc<Progress>,
    ) -> Option<ExchangeResult> {
        let (answer, _permit, relayed) = self
            .submit(peer, protocol, |reply| {
                Outbound::Exchange(ExchangeRequest {
                    frame: frame.clone(),
                    transfer,
                    progress: progress.clone(),
                    reply,
                })
            })
            .await?;
        progress.relayed.store(relayed, Ordering::Relaxed);
        Some(match answer {
            Ok(result) => result,
            // The handler went away with the connection.
            Err(oneshot::Canceled) => match progress.get() {
                Step::Open => Err(OpenError::ConnectionClosed),
                step => Ok(Err(ExchangeError::ConnectionLost(step))),
            },
        })
    }

    /// Asks a connection to `peer` to open a stream of `protocol` and waits
    /// for its answer; the permit counts the stream against the connection's
    /// budget; the flag says whether the connection is relayed. `None` if
    /// there is no usable connection.
    async fn submit<T>(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        mut make: impl FnMut(oneshot::Sender<T>) -> Outbound,
    ) -> Option<(Result<T, oneshot::Canceled>, OwnedSemaphorePermit, bool)> {
        loop {
            let (id, mut sender, outbound, relayed) = {
                let conns = self.0.get(&peer)?;
                // A direct connection first (one hole punching made, say),
                // a relayed one if there is nothing else.
                let (id, conn) = conns
                    .iter()
                    .filter(|(_, c)| !c.requests.is_closed())
                    .min_by_key(|(_, c)| c.relayed)?;
                (
                    *id,
                    conn.requests.clone(),
                    conn.outbound.clone(),
                    conn.relayed,
                )
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
                if let Some(mut conns) = self.0.get_mut(&peer) {
                    conns.remove(&id);
                }
                continue;
            }
            return Some((answer.await, permit, relayed));
        }
    }
}
