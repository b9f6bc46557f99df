//! `RequestActor<P>`: serves one inbound stream, then ends.
//!
//! It waits for a handler slot, then has `src/streams/serve.rs` read
//! exactly one request frame (bounded in size and time), call the handler
//! under its deadline, write the response frame and close the stream; it
//! keeps the slot, the request's span and its metrics. Any failure — a bad frame, a
//! handler error, a panic, an overrun deadline — ends this actor alone: its
//! stream is dropped, which resets it, and its `ProtocolActor` counts the
//! failure and keeps serving. Each request carries the id admission gave it
//! (`RequestContext::id`), in its span and in every log line about it.

use std::{sync::Arc, time::Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::{
    error::ServeError,
    metrics::RequestMetrics,
    protocol::{Config, Protocol},
    streams::{admission::InboundStream, serve},
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
    /// Waits for a turn to run the handler, then serves the stream
    /// (`src/streams/serve.rs`: read, handle, write).
    async fn serve(&self, inbound: &mut InboundStream) -> Result<(), ServeError> {
        let (id, peer) = (inbound.id, inbound.peer);
        // The peer's own slots first, so that a peer waiting for its turn
        // holds none of the protocol's. (Its own handle: the stream is
        // lent whole to `serve` while the turn is held.)
        let peer_running = inbound.share.running().clone();
        let _peer_turn = peer_running
            .acquire()
            .await
            .map_err(|_| ServeError::Stopping { id, peer })?;
        let _turn = self
            .running
            .acquire()
            .await
            .map_err(|_| ServeError::Stopping { id, peer })?;
        serve::serve(
            &*self.handler,
            &self.config,
            inbound,
            |request, response| self.metrics.frame_bytes(request, response),
        )
        .await
    }
}
