//! A call's exchange: one request frame written and one response frame read
//! on a new outbound stream, run by the connection's handler in the
//! connection's task. The caller gets the response body, or what went
//! wrong and how far the exchange got; `src/call/error.rs` says what that
//! means to the caller.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use bytes::Bytes;
use futures::{
    FutureExt,
    channel::oneshot,
    future::{BoxFuture, Either},
};
use libp2p::{PeerId, Stream, StreamProtocol};

use super::{
    Shared,
    outbound::{OpenError, Outbound, OutboundJob},
};
use crate::codec::{self, FrameError};

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

/// How far an exchange got, shared with its caller: what a caller that runs
/// out of time was waiting for.
#[derive(Debug, Default)]
pub(crate) struct Progress(AtomicU8);

impl Progress {
    fn set(&self, step: Step) {
        self.0.store(step as u8, Ordering::Relaxed);
    }

    /// The step the exchange is in: [`Step::Open`] until the stream is open.
    pub(crate) fn get(&self) -> Step {
        match self.0.load(Ordering::Relaxed) {
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
}

/// The outcome of an exchange: the stream did not open, or it did and the
/// exchange answered or failed.
pub(crate) type ExchangeResult = Result<Result<Vec<u8>, ExchangeError>, OpenError>;

/// One request and its response, run by a connection handler.
struct Exchange {
    frame: Bytes,
    max: usize,
    progress: Arc<Progress>,
    reply: oneshot::Sender<ExchangeResult>,
}

impl OutboundJob for Exchange {
    fn run(self: Box<Self>, stream: Stream) -> BoxFuture<'static, ()> {
        self.exchange(stream).boxed()
    }

    fn fail(self: Box<Self>, error: OpenError) {
        let _ = self.reply.send(Err(error));
    }
}

impl Exchange {
    async fn exchange(self: Box<Self>, mut stream: Stream) {
        let Exchange {
            frame,
            max,
            progress,
            mut reply,
        } = *self;
        if reply.is_canceled() {
            return; // the caller gave up while the stream opened: send nothing
        }
        let result = {
            let exchange = async {
                progress.set(Step::Write);
                codec::write_frame(&mut stream, &frame)
                    .await
                    .map_err(ExchangeError::Write)?;
                progress.set(Step::Read);
                codec::read_frame(&mut stream, max)
                    .await
                    .map_err(ExchangeError::Read)
            };
            futures::pin_mut!(exchange);
            // The caller's cancellation first: a caller that gave up gets no
            // more bytes written on its behalf.
            match futures::future::select(reply.cancellation(), exchange).await {
                Either::Right((result, _)) => result,
                // The caller gave up: dropping the stream resets it.
                Either::Left(_) => return,
            }
        };
        let _ = reply.send(Ok(result));
        // Dropping the stream closes it: yamux sends FIN once the server's
        // FIN arrived (it closes right after its response), RST otherwise.
    }
}

impl Shared {
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
                Outbound::Job(Box::new(Exchange {
                    frame: frame.clone(),
                    max,
                    progress: progress.clone(),
                    reply,
                }))
            })
            .await?;
        Some(match answer {
            Ok(result) => result,
            // The handler went away with the connection.
            Err(oneshot::Canceled) => match progress.get() {
                Step::Open => Err(OpenError::ConnectionClosed),
                step => Ok(Err(ExchangeError::ConnectionLost(step))),
            },
        })
    }
}
