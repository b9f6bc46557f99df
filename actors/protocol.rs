//! `ProtocolActor<P>`: serves one registered protocol.
//!
//! Connection handlers cast it each inbound stream that won a permit of the
//! protocol's capacity (see `src/streams.rs`); it spawns one linked
//! [`RequestActor`] per stream and survives their failures, counting them.

use std::{marker::PhantomData, sync::Arc};

use libp2p::StreamProtocol;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::Semaphore;

use super::request::{RequestActor, RequestArguments};
use crate::{
    Protocol,
    error::ServeError,
    metrics::{Direction, RequestMetrics},
    protocol::Config,
    streams::{InboundStream, Route, Shared},
};

/// What a `ProtocolActor` does.
#[derive(Debug)]
pub enum ProtocolMessage {
    /// Serve an inbound stream: spawn a request actor for it.
    Inbound(InboundStream),
}

/// What a `ProtocolActor` starts with.
pub struct ProtocolArguments<P> {
    /// The user's handler.
    pub handler: Arc<P>,
    /// The protocol's limits and timeouts.
    pub config: Config,
    /// Where the actor registers its route for inbound streams.
    pub(crate) shared: Arc<Shared>,
}

/// The state of a `ProtocolActor`.
pub struct ProtocolState<P> {
    handler: Arc<P>,
    /// Handlers running at once; admitted requests wait here for a turn.
    running: Arc<Semaphore>,
    config: Config,
    shared: Arc<Shared>,
    protocol: StreamProtocol,
    metrics: RequestMetrics,
}

/// Serves protocol `P`.
pub struct ProtocolActor<P>(PhantomData<fn() -> P>);

impl<P> Default for ProtocolActor<P> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<P: Protocol> Actor for ProtocolActor<P> {
    type Msg = ProtocolMessage;
    type State = ProtocolState<P>;
    type Arguments = ProtocolArguments<P>;

    async fn pre_start(
        &self,
        myself: ActorRef<ProtocolMessage>,
        args: ProtocolArguments<P>,
    ) -> Result<ProtocolState<P>, ActorProcessingErr> {
        let protocol = StreamProtocol::new(P::ID);
        let config = &args.config;
        let route = Route {
            actor: myself,
            admitted: Arc::new(Semaphore::new(
                config.max_concurrent() + config.max_pending(),
            )),
        };
        if !args.shared.add_route(protocol.clone(), route) {
            return Err(format!("protocol {protocol} is already registered").into());
        }
        tracing::info!(%protocol, "serving protocol");
        Ok(ProtocolState {
            metrics: args.shared.metrics().requests(P::ID, Direction::Inbound),
            running: Arc::new(Semaphore::new(args.config.max_concurrent())),
            handler: args.handler,
            config: args.config,
            shared: args.shared,
            protocol,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProtocolMessage>,
        message: ProtocolMessage,
        state: &mut ProtocolState<P>,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProtocolMessage::Inbound(inbound) => {
                let args = RequestArguments {
                    handler: state.handler.clone(),
                    config: state.config.clone(),
                    metrics: state.metrics.clone(),
                    running: state.running.clone(),
                    inbound,
                };
                // The permit in `inbound` bounds how many of these exist at once.
                if let Err(error) =
                    Actor::spawn_linked(None, RequestActor::<P>::default(), args, myself.get_cell())
                        .await
                {
                    state.shared.metrics().actor_failed("request");
                    tracing::warn!(protocol = %state.protocol, "request actor failed to start: {error}");
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ProtocolMessage>,
        event: SupervisionEvent,
        state: &mut ProtocolState<P>,
    ) -> Result<(), ActorProcessingErr> {
        // A request actor's end never stops the protocol: that is the point.
        if let SupervisionEvent::ActorFailed(_, error) = event {
            state.shared.metrics().actor_failed("request");
            let panicked;
            let error = match error.downcast_ref::<ServeError>() {
                Some(error) => error,
                None => {
                    // Not a typed failure: the actor panicked.
                    state.metrics.outcome("panic");
                    panicked = ServeError::Panicked {
                        message: error.to_string(),
                    };
                    &panicked
                }
            };
            match error {
                ServeError::Handler(_)
                | ServeError::HandlerDeadline(_)
                | ServeError::Panicked { .. } => {
                    tracing::warn!(protocol = %state.protocol, "request failed: {error}");
                }
                _ => tracing::debug!(protocol = %state.protocol, "request failed: {error}"),
            }
            state.handler.on_failure(error);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ProtocolMessage>,
        state: &mut ProtocolState<P>,
    ) -> Result<(), ActorProcessingErr> {
        state.shared.remove_route(&state.protocol);
        tracing::info!(protocol = %state.protocol, "stopped serving protocol");
        Ok(())
    }
}
