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
    codec,
    context::RequestContext,
    error::ServeError,
    metrics::RequestMetrics,
    protocol::{Config, Protocol},
    streams::admission::InboundStream,
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
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|_| ServeError::Stopping { id, peer })?;
        let config = &self.config;
        let body = tokio::time::timeout(
            config.request_timeout(),
            codec::read_frame(&mut inbound.stream, config.max_frame()),
        )
        .await
        .map_err(|_| ServeError::RequestTimeout {
            id,
            peer,
            timeout: config.request_timeout(),
        })?
        .map_err(|source| ServeError::Request { id, peer, source })?;
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
        let write = async {
            codec::write_frame(&mut inbound.stream, &frame).await?;
            inbound.stream.close().await
        };
        tokio::time::timeout(config.request_timeout(), write)
            .await
            .map_err(|_| ServeError::Respond {
                id,
                peer,
                source: std::io::ErrorKind::TimedOut.into(),
            })?
            .map_err(|source| ServeError::Respond { id, peer, source })
    }
}
