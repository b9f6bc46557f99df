//! Outbound streams: a caller asks an established connection's handler to
//! open a stream, through that connection's bounded request channel, and
//! holds a permit of the connection's stream budget while the stream lives.
//!
//! What happens on the stream once it is open is either the caller's (a raw
//! [`OutboundStream`]) or a job the handler runs in the connection's task
//! ([`OutboundJob`], such as a call's exchange in [`super::exchange`]).

use std::{io, sync::Arc};

use futures::{
    channel::{mpsc, oneshot},
    future::BoxFuture,
};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shared;

/// Outbound stream requests a connection handler queues before callers wait.
pub(crate) const OPEN_QUEUE: usize = 64;

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

/// The handle of one connection's handler, as callers see it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) requests: mpsc::Sender<OpenRequest>,
    pub(crate) outbound: Arc<Semaphore>,
}

impl Connection {
    /// A connection's handle and the receiving end its handler polls.
    pub(crate) fn new() -> (Self, mpsc::Receiver<OpenRequest>) {
        let (requests, receiver) = mpsc::channel(OPEN_QUEUE);
        let connection = Connection {
            requests,
            outbound: Arc::new(Semaphore::new(MAX_OUTBOUND_STREAMS_PER_CONNECTION)),
        };
        (connection, receiver)
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

/// A request to open a stream, queued for a connection's handler.
#[derive(Debug)]
pub(crate) struct OpenRequest {
    pub(crate) protocol: StreamProtocol,
    pub(crate) outbound: Outbound,
}

/// Work a connection handler runs on an outbound stream once it is open, in
/// the connection's task.
pub(crate) trait OutboundJob: Send + 'static {
    /// Runs on the negotiated stream.
    fn run(self: Box<Self>, stream: Stream) -> BoxFuture<'static, ()>;
    /// The stream could not be opened.
    fn fail(self: Box<Self>, error: OpenError);
}

/// What a connection handler does with an outbound stream once it is open.
pub(crate) enum Outbound {
    /// Hands the stream to the caller.
    Stream(oneshot::Sender<Result<Stream, OpenError>>),
    /// Runs a job on it.
    Job(Box<dyn OutboundJob>),
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outbound::Stream(_) => "Outbound::Stream",
            Outbound::Job(_) => "Outbound::Job",
        })
    }
}

impl Outbound {
    /// The stream could not be opened: tell whoever waits.
    pub(crate) fn fail(self, error: OpenError) {
        match self {
            Outbound::Stream(reply) => {
                let _ = reply.send(Err(error));
            }
            Outbound::Job(job) => job.fail(error),
        }
    }
}

impl Shared {
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

    /// Asks a connection to `peer` to open a stream of `protocol` and waits
    /// for its answer; the permit counts the stream against the connection's
    /// budget. `None` if there is no usable connection.
    pub(crate) async fn submit<T>(
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
}
