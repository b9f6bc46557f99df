//! `ProtocolActor<P>`: serves one registered protocol.
//!
//! Connection handlers hand it each inbound stream that won a permit of the
//! protocol's capacity (`src/streams/admission.rs`, through this actor's
//! `InboundSink`); it spawns one linked [`RequestActor`] per stream and
//! survives their failures, counting them and telling the user's
//! [`Protocol::on_failure`].
//!
//! However the actor ends, its route goes with it (a drop guard in its
//! state: ractor skips `post_stop` when an actor fails or is killed), so the
//! protocol is no longer offered and can be registered again. On a graceful
//! stop it first stops admitting, refuses the requests still waiting for a
//! handler slot, and lets running handlers finish for up to its grace
//! period; ractor then kills what is left, which resets those streams.

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use libp2p::{PeerId, StreamProtocol};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::Semaphore;

use super::request::RequestActor;
use crate::{
    context::RequestId,
    error::ServeError,
    metrics::RequestMetrics,
    protocol::{Config, Protocol},
    streams::{
        admission::{InboundSink, InboundStream, Route},
        peer_share::PeerShares,
        serve::violation,
        shared::Shared,
    },
    warnings::Warnings,
};

/// What a `ProtocolActor` does.
#[derive(Debug)]
pub enum ProtocolMessage {
    /// Serve an inbound stream: spawn a request actor for it.
    Inbound(InboundStream),
}

/// Serves protocol `P`. Its fields are the actor's fixed settings.
pub struct ProtocolActor<P> {
    /// The user's handler.
    pub(crate) handler: Arc<P>,
    /// The protocol's limits and timeouts.
    pub(crate) config: Config,
    /// Where the actor registers its route for inbound streams.
    pub(crate) shared: Arc<Shared>,
    /// How long a graceful stop waits for running handlers.
    pub(crate) grace: Duration,
    /// The protocol's inbound request metrics.
    pub(crate) metrics: RequestMetrics,
}

impl<P> std::fmt::Debug for ProtocolActor<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolActor")
            .field("protocol", &std::any::type_name::<P>())
            .field("config", &self.config)
            .finish()
    }
}

/// The state of a `ProtocolActor`.
#[derive(Debug)]
pub struct ProtocolState {
    /// Removes the route when the state is dropped, however the actor ends.
    route: RouteGuard,
    /// Handlers running at once; admitted requests wait here for a turn.
    running: Arc<Semaphore>,
    /// The request each running request actor serves, to name it when the
    /// actor panics; bounded by admission.
    requests: HashMap<ActorId, (RequestId, PeerId)>,
    /// Each peer's share: closed with `running` when the protocol stops.
    shares: Arc<PeerShares>,
    /// Failure warnings, one a second at most.
    warnings: Warnings,
}

/// The protocol's route, removed on drop.
#[derive(Debug)]
struct RouteGuard {
    shared: Arc<Shared>,
    protocol: StreamProtocol,
    /// The route's admission permits: all back means no request is left.
    admitted: Arc<Semaphore>,
    capacity: usize,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        // Only this registration's route: the protocol may have been
        // registered again since this actor stopped.
        self.shared.routes.remove(&self.protocol, &self.admitted);
    }
}

/// Delivers inbound streams into the actor's mailbox.
struct Mailbox(ActorRef<ProtocolMessage>);

impl InboundSink for Mailbox {
    fn deliver(&self, inbound: InboundStream) -> bool {
        self.0.cast(ProtocolMessage::Inbound(inbound)).is_ok()
    }
}

impl<P: Protocol> Actor for ProtocolActor<P> {
    type Msg = ProtocolMessage;
    type State = ProtocolState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ProtocolMessage>,
        (): (),
    ) -> Result<ProtocolState, ActorProcessingErr> {
        let protocol = StreamProtocol::new(P::ID);
        let capacity = self
            .config
            .max_concurrent()
            .saturating_add(self.config.max_pending())
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize); // drained with one `acquire_many(u32)`
        let admitted = Arc::new(Semaphore::new(capacity));
        let shares = PeerShares::new(&self.config);
        let route = Route {
            sink: Box::new(Mailbox(myself)),
            admitted: admitted.clone(),
            shares: shares.clone(),
        };
        if !self.shared.routes.add(protocol.clone(), route) {
            return Err(format!("protocol {protocol} is already registered").into());
        }
        tracing::info!(%protocol, "serving protocol");
        Ok(ProtocolState {
            route: RouteGuard {
                shared: self.shared.clone(),
                protocol,
                admitted,
                capacity,
            },
            running: Arc::new(Semaphore::new(
                self.config.max_concurrent().min(Semaphore::MAX_PERMITS),
            )),
            requests: HashMap::new(),
            shares,
            warnings: Warnings::every(Duration::from_secs(1)),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProtocolMessage>,
        message: ProtocolMessage,
        state: &mut ProtocolState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ProtocolMessage::Inbound(inbound) => {
                let request = RequestActor {
                    handler: self.handler.clone(),
                    config: self.config.clone(),
                    metrics: self.metrics.clone(),
                    running: state.running.clone(),
                };
                let (id, peer) = (inbound.id, inbound.peer);
                // The permit in `inbound` bounds how many of these exist at once.
                match Actor::spawn_linked(None, request, inbound, myself.get_cell()).await {
                    Ok((actor, _)) => {
                        state.requests.insert(actor.get_id(), (id, peer));
                    }
                    Err(error) => {
                        self.shared.metrics().actor_failed("request");
                        tracing::warn!(request = %id, protocol = P::ID, "request actor failed to start: {error}");
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ProtocolMessage>,
        event: SupervisionEvent,
        state: &mut ProtocolState,
    ) -> Result<(), ActorProcessingErr> {
        // A request actor's end never stops the protocol: that is the point.
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error),
            SupervisionEvent::ActorTerminated(cell, ..) => {
                state.requests.remove(&cell.get_id());
                return Ok(());
            }
            _ => return Ok(()),
        };
        let request = state.requests.remove(&cell.get_id());
        self.shared.metrics().actor_failed("request");
        let error = match error.downcast::<ServeError>() {
            Ok(error) => *error,
            Err(error) => {
                // Not a typed failure: the actor panicked.
                self.metrics.outcome("panic");
                let Some((id, peer)) = request else {
                    // Every request actor is noted when spawned; should one
                    // not be, its failure is still logged and counted.
                    tracing::warn!(protocol = P::ID, "a request actor panicked: {error}");
                    return Ok(());
                };
                ServeError::Panicked {
                    id,
                    peer,
                    message: error.to_string(),
                }
            }
        };
        if let Some(violation) = violation(&error) {
            self.shared.reputation.report(error.peer(), violation);
        }
        match error {
            // A remote peer can cause these at will (a bad request its
            // handler refuses): one warning a second at most, the rest at
            // debug and counted in the next warning.
            ServeError::Handler { .. }
            | ServeError::HandlerDeadline { .. }
            | ServeError::Panicked { .. } => match state.warnings.allow(Instant::now()) {
                Some(0) => tracing::warn!(protocol = P::ID, "{error}"),
                Some(suppressed) => {
                    tracing::warn!(
                        protocol = P::ID,
                        suppressed,
                        "{error} (and {suppressed} more failures at debug level since the last warning)"
                    )
                }
                None => tracing::debug!(protocol = P::ID, "{error}"),
            },
            _ => tracing::debug!(protocol = P::ID, "{error}"),
        }
        // The user's hook: a panic in it ends this actor (and its route)
        // with a typed reason, never the node.
        let hook = std::panic::catch_unwind(AssertUnwindSafe(|| self.handler.on_failure(&error)));
        if hook.is_err() {
            return Err(format!("the on_failure hook of protocol {} panicked", P::ID).into());
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ProtocolMessage>,
        state: &mut ProtocolState,
    ) -> Result<(), ActorProcessingErr> {
        // No new streams; the requests still waiting for a slot are refused.
        self.shared
            .routes
            .remove(&state.route.protocol, &state.route.admitted);
        state.running.close();
        state.shares.close();
        let started = Instant::now();
        let drained = tokio::time::timeout(
            self.grace,
            state
                .route
                .admitted
                .acquire_many(state.route.capacity as u32),
        )
        .await;
        match drained {
            Ok(_) => {
                tracing::info!(protocol = P::ID, waited = ?started.elapsed(), "stopped serving protocol")
            }
            Err(_) => tracing::warn!(
                protocol = P::ID,
                grace = ?self.grace,
                "stopped serving protocol; handlers still running past the grace period are cut off"
            ),
        }
        Ok(())
    }
}
