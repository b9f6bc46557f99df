//! `RequestActor<P>`: serves one inbound stream, then ends.
//!
//! It reads exactly one request frame (bounded in size and time), calls the
//! handler under its deadline, writes the response frame and closes the
//! stream. Any failure — a bad frame, a handler error, a panic, an overrun
//! deadline — ends this actor alone: its stream is dropped, which resets it,
//! and its `ProtocolActor` counts the failure and keeps serving.

use std::{marker::PhantomData, sync::Arc, time::Instant};

use futures::AsyncWriteExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    Protocol, RequestContext, codec, error::ServeError, metrics::RequestMetrics, protocol::Config,
    streams::InboundStream,
};

/// A `RequestActor` takes no messages: it serves its stream and stops.
#[derive(Debug)]
pub enum RequestMessage {}

/// What a `RequestActor` starts with.
pub struct RequestArguments<P> {
    /// The user's handler.
    pub handler: Arc<P>,
    /// The protocol's limits and timeouts.
    pub config: Config,
    /// The protocol's inbound request metrics.
    pub metrics: RequestMetrics,
    /// Permits to run the handler; waited for before reading the request.
    pub running: Arc<Semaphore>,
    /// The stream to serve, with its capacity permit.
    pub inbound: InboundStream,
}

/// Serves one request of protocol `P`.
pub struct RequestActor<P>(PhantomData<fn() -> P>);

impl<P> Default for RequestActor<P> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<P: Protocol> Actor for RequestActor<P> {
    type Msg = RequestMessage;
    type State = RequestArguments<P>;
    type Arguments = RequestArguments<P>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RequestMessage>,
        args: RequestArguments<P>,
    ) -> Result<RequestArguments<P>, ActorProcessingErr> {
        Ok(args)
    }

    async fn post_start(
        &self,
        myself: ActorRef<RequestMessage>,
        state: &mut RequestArguments<P>,
    ) -> Result<(), ActorProcessingErr> {
        let started = Instant::now();
        let _in_flight = state.metrics.in_flight();
        let span = tracing::debug_span!("request", protocol = P::ID, peer = %state.inbound.peer, outcome = tracing::field::Empty, duration_us = tracing::field::Empty);
        let result = serve(state).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(()) => "ok",
            Err(error) => error.outcome(),
        };
        span.record("outcome", outcome);
        span.record("duration_us", started.elapsed().as_micros() as u64);
        state.metrics.finished(outcome, started.elapsed());
        result?;
        myself.stop(None);
        Ok(())
    }
}

async fn serve<P: Protocol>(state: &mut RequestArguments<P>) -> Result<(), ServeError> {
    let _turn = state
        .running
        .acquire()
        .await
        .map_err(|_| ServeError::Stopping)?;
    let config = &state.config;
    let inbound = &mut state.inbound;
    let body = tokio::time::timeout(
        config.request_timeout(),
        codec::read_frame(&mut inbound.stream, config.max_frame()),
    )
    .await
    .map_err(|_| ServeError::RequestTimeout(config.request_timeout()))?
    .map_err(ServeError::Request)?;
    let request_len = body.len();
    // Decoding from `Bytes` lets `bytes` fields share the frame's buffer
    // instead of copying out of it.
    let request = <P::Request as prost::Message>::decode(bytes::Bytes::from(body))
        .map_err(ServeError::Decode)?;
    let ctx = RequestContext {
        peer: inbound.peer,
        protocol: inbound.protocol.clone(),
        remote_addr: Some(inbound.remote_addr.clone()),
    };
    let response = tokio::time::timeout(
        config.handler_deadline(),
        state.handler.handle(ctx, request),
    )
    .await
    .map_err(|_| ServeError::HandlerDeadline(config.handler_deadline()))?
    .map_err(ServeError::Handler)?;
    let len = prost::Message::encoded_len(&response);
    if len > config.max_frame() {
        return Err(ServeError::ResponseTooLarge {
            len,
            max: config.max_frame(),
        });
    }
    let frame = codec::encode_frame(&response);
    state.metrics.frame_bytes(request_len, frame.len());
    let write = async {
        codec::write_frame(&mut inbound.stream, &frame).await?;
        inbound.stream.close().await
    };
    tokio::time::timeout(config.request_timeout(), write)
        .await
        .map_err(|_| ServeError::Respond(std::io::ErrorKind::TimedOut.into()))?
        .map_err(ServeError::Respond)
}
