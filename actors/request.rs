//! `RequestActor<P>`: serves one inbound stream, then ends.
//!
//! It waits for a handler slot, reads exactly one request frame (bounded in
//! size and time), calls the handler under its deadline, writes the
//! response frame and closes the stream. Any failure — a bad frame, a
//! handler error, a panic, an overrun deadline — ends this actor alone: its
//! stream is dropped, which resets it, and its `ProtocolActor` counts the
//! failure and keeps serving. Each request carries the id admission gave it
//! (`RequestContext::id`), in its span and in every log line about it.

use std::{sync::Arc, time::Instant};

use futures::AsyncWriteExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    codec::{self, FrameError},
    context::RequestContext,
    error::ServeError,
    metrics::RequestMetrics,
    protocol::{Config, Protocol},
    streams::{
        admission::InboundStream,
        stall::{Stalling, stalled},
    },
    time::far_future,
};

/// A `RequestActor` takes no messages: it serves its stream and stops.
#[derive(Debug)]
pub enum RequestMessage {}

/// Serves one request of protocol `P`. Its fields are the actor's fixed
/// settings; its argument and state is the stream it serves.
pub struct RequestActor<P> {
    /// The user's handler.
    pub(crate) handler: Arc<P>,
    /// The protocol's limits and timeouts.
    pub(crate) config: Config,
    /// The protocol's inbound request metrics.
    pub(crate) metrics: RequestMetrics,
    /// Permits to run the handler; waited for before reading the request.
    pub(crate) running: Arc<Semaphore>,
}

impl<P> std::fmt::Debug for RequestActor<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestActor")
            .field("protocol", &std::any::type_name::<P>())
            .finish()
    }
}

impl<P: Protocol> Actor for RequestActor<P> {
    type Msg = RequestMessage;
    /// The stream, taken when served: its permits go back as soon as the
    /// request ends, not when ractor hands the ended actor's state to the
    /// protocol actor.
    type State = Option<InboundStream>;
    type Arguments = InboundStream;

    async fn pre_start(
        &self,
        _myself: ActorRef<RequestMessage>,
        inbound: InboundStream,
    ) -> Result<Option<InboundStream>, ActorProcessingErr> {
        Ok(Some(inbound))
    }

    async fn post_start(
        &self,
        myself: ActorRef<RequestMessage>,
        state: &mut Option<InboundStream>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(mut inbound) = state.take() else {
            return Ok(());
        };
        let inbound = &mut inbound;
        let started = Instant::now();
        let _in_flight = self.metrics.in_flight();
        let span = tracing::debug_span!("request", id = %inbound.id, protocol = P::ID, peer = %inbound.peer, outcome = tracing::field::Empty, duration_us = tracing::field::Empty);
        let result = self.serve(inbound).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(error) => error.outcome(),
        };
        span.record("outcome", outcome);
        span.record("duration_us", started.elapsed().as_micros() as u64);
        self.metrics.finished(outcome, started.elapsed());
        if inbound.relayed {
            self.metrics.relayed();
        }
        result?;
        myself.stop(None);
        Ok(())
    }
}

impl<P: Protocol> RequestActor<P> {
    async fn serve(&self, inbound: &mut InboundStream) -> Result<(), ServeError> {
        let id = inbound.id;
        let peer = inbound.peer;
        let config = &self.config;
        // The peer's own slots first, so that a peer waiting for its turn
        // holds none of the protocol's.
        let _peer_turn = inbound
            .share
            .running()
            .acquire()
            .await
            .map_err(|_| ServeError::Stopping { id, peer })?;
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|_| ServeError::Stopping { id, peer })?;
        // Time limits count from admission: a request that waited for its
        // turn past the call timeout has lost its caller, and one that
        // waited past the request timeout gets no more time to arrive.
        let admitted_at = inbound.admitted_at;
        let mut stream = Stalling::new(&mut inbound.stream, config.stall_timeout());
        let body = tokio::time::timeout_at(
            admitted_at
                .checked_add(config.request_timeout())
                .unwrap_or_else(far_future),
            codec::read_frame(&mut stream, config.max_request_frame()),
        )
        .await
        .map_err(|_| ServeError::RequestTimeout {
            id,
            peer,
            timeout: config.request_timeout(),
        })?
        .map_err(|source| match source {
            FrameError::Io(e) if stalled(&e).is_some() => ServeError::RequestStalled {
                id,
                peer,
                stall: config.stall_timeout(),
            },
            source => ServeError::Request { id, peer, source },
        })?;
        let waited = admitted_at.elapsed();
        if waited >= config.call_timeout() {
            return Err(ServeError::Expired {
                id,
                peer,
                waited,
                call_timeout: config.call_timeout(),
            });
        }
        let request_len = body.len();
        // Decoding from `Bytes` lets `bytes` fields share the frame's buffer
        // instead of copying out of it.
        let request = <P::Request as prost::Message>::decode(bytes::Bytes::from(body))
            .map_err(|source| ServeError::Decode { id, peer, source })?;
        let ctx = RequestContext {
            id,
            peer,
            protocol: inbound.protocol.clone(),
            remote_addr: Some(inbound.remote_addr.clone()),
            relayed: inbound.relayed,
        };
        let response =
            tokio::time::timeout(config.handler_deadline(), self.handler.handle(ctx, request))
                .await
                .map_err(|_| ServeError::HandlerDeadline {
                    id,
                    peer,
                    deadline: config.handler_deadline(),
                })?
                .map_err(|source| ServeError::Handler { id, peer, source })?;
        let len = prost::Message::encoded_len(&response);
        if len > config.max_frame() {
            return Err(ServeError::ResponseTooLarge {
                id,
                peer,
                len,
                max: config.max_frame(),
            });
        }
        let frame = codec::encode_frame(&response);
        self.metrics.frame_bytes(request_len, frame.len());
        // Cut when the caller stops reading for the stall timeout; a slow
        // but steady reader gets all of it, within the call timeout (its
        // caller waits no longer).
        // The handler's time was not the caller's stall.
        stream.resume();
        let write = async {
            codec::write_frame(&mut stream, &frame).await?;
            stream.close().await
        };
        let write_deadline = admitted_at
            .checked_add(config.call_timeout())
            .unwrap_or_else(far_future);
        tokio::time::timeout_at(write_deadline, write)
            .await
            .map_err(|_| ServeError::Respond {
                id,
                peer,
                source: std::io::ErrorKind::TimedOut.into(),
            })?
            .map_err(|source| match stalled(&source) {
                Some(stall) => ServeError::ResponseStalled { id, peer, stall },
                None => ServeError::Respond { id, peer, source },
            })
    }
}
