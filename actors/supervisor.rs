//! `NodeSupervisor`: the root of a node's actors.
//!
//! Supervision (who restarts whom):
//!
//! ```text
//! NodeSupervisor                 actors/supervisor.rs; root, or a child of the user's own supervisor
//! ├── AddressBookActor           actors/address_book.rs; the one writer of the book; reads the registry
//! ├── SwarmActor                 actors/swarm.rs; owns the libp2p Swarm (src/swarm/) and its event loop
//! ├── HeartbeatActor             actors/heartbeat.rs; publishes and validates signed heartbeats (if enabled)
//! └── ProtocolActor<P>           actors/protocol.rs; one per registered protocol (peer exchange is one)
//!     └── RequestActor<P>        actors/request.rs; one per inbound stream; ends after one request
//! ```
//!
//! Data (where a request's bytes go), none of it through the swarm's event loop:
//!
//! ```text
//! inbound:  connection task: src/streams/handler.rs → src/streams/admission.rs (permit or reset)
//!           → ProtocolActor mailbox → RequestActor (turns, span, metrics: actors/request.rs)
//!           → src/streams/serve.rs: read, handler, write
//! outbound: src/call/client.rs → src/call/connect.rs (discovery, dial via SwarmActor if needed)
//!           → src/streams/outbound.rs → connection task: src/streams/exchange.rs (write, read)
//! gossip:   the swarm's event loop (src/swarm/event_loop/) → GossipPort (OutputPort)
//!           → HeartbeatActor (src/discovery/heartbeat/receiver.rs decides) → verdict back
//! ```
//!
//! Failure policy, decided here and in `ProtocolActor`:
//! - a `RequestActor` failing (handler error, panic, deadline, bad input)
//!   resets its stream and is counted; its `ProtocolActor` keeps serving;
//! - a `ProtocolActor` ending in any way removes its route (the protocol is
//!   no longer offered and can be registered again); a failure is counted;
//! - the `HeartbeatActor` ending is counted and it is restarted, at most
//!   [`MAX_RESTARTS`] times within [`RESTART_WINDOW`]; beyond, the node fails;
//! - the `SwarmActor` or the `AddressBookActor` ending means the node can no
//!   longer work: the supervisor fails, so that an embedding supervisor
//!   receives `SupervisionEvent::ActorFailed` and can restart the node.
//!
//! On a graceful stop ([`crate::Node::shutdown`]) the protocols stop first
//! (no new requests; running handlers get the shutdown grace period), then
//! the heartbeat, the swarm and the address book. Stopping or killing the
//! supervisor's parent instead kills the node without that order: call
//! `Node::shutdown` first.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use libp2p::{Multiaddr, PeerId};
use libp2p_gossipsub::IdentTopic;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::{
    ActorsCell, NodeActors,
    address_book::AddressBookActor,
    heartbeat::{HeartbeatActor, HeartbeatMessage},
    swarm::SwarmActor,
};
use crate::{
    discovery::{
        address_book::{self, AddressBook},
        heartbeat,
        registry::Registry,
    },
    metrics::Metrics,
    streams::{gate::Gate, shared::Shared},
    supervision::{Ended, Restarts, StopChildren, is, stop_in_order},
    swarm::{self, Built, Command, GossipPort, addresses::ListenAddresses, event_loop::Handles},
};

/// Time allowed to each core child to stop on a graceful shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Restarts of the heartbeat actor allowed within [`RESTART_WINDOW`];
/// one more fails the node.
pub const MAX_RESTARTS: usize = 5;

/// The window [`MAX_RESTARTS`] counts in: 60 s.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// The `NodeSupervisor` takes no messages: its children and the shared
/// actors cell are its whole interface.
#[derive(Debug)]
pub enum NodeMessage {}

/// The root of a node's actors. Its fields are the actor's fixed settings;
/// its argument is the built, listening swarm.
pub struct NodeSupervisor {
    pub(crate) local_peer: PeerId,
    pub(crate) listen_addrs: ListenAddresses,
    pub(crate) book: AddressBook,
    pub(crate) book_config: address_book::Config,
    pub(crate) registry: Option<Arc<dyn Registry>>,
    pub(crate) gate: Gate,
    pub(crate) heartbeat: Option<heartbeat::Config>,
    pub(crate) bootstrap: Vec<(PeerId, Multiaddr)>,
    /// The swarm's settings, handed whole to the swarm actor.
    pub(crate) swarm: swarm::Config,
    pub(crate) metrics: Metrics,
    /// Where the swarm publishes received GossipSub messages.
    pub(crate) gossip: GossipPort,
    /// What the streams layer shares (its connections).
    pub(crate) shared: Arc<Shared>,
    /// How long protocols let running handlers finish on shutdown.
    pub(crate) shutdown_grace: Duration,
    /// Written here, read by the node's handles.
    pub(crate) actors: ActorsCell,
}

impl std::fmt::Debug for NodeSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSupervisor")
            .field("local_peer", &self.local_peer)
            .finish()
    }
}

/// The state of the supervisor: what changes.
#[derive(Debug)]
pub struct NodeState {
    actors: NodeActors,
    /// The heartbeat actor's restarts within the last window.
    restarts: Restarts,
    /// Emptied when the state goes, however the supervisor ends (ractor
    /// skips `post_stop` when it fails).
    published: ActorsCell,
}

impl Drop for NodeState {
    fn drop(&mut self) {
        *self.published.write().expect("actors lock poisoned") = None;
    }
}

impl Actor for NodeSupervisor {
    type Msg = NodeMessage;
    type State = NodeState;
    type Arguments = Built;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMessage>,
        swarm: Built,
    ) -> Result<NodeState, ActorProcessingErr> {
        let book = AddressBookActor {
            book: self.book.clone(),
            config: self.book_config.clone(),
            registry: self.registry.clone(),
            gate: self.gate.clone(),
            local_peer: self.local_peer,
            metrics: self.metrics.clone(),
        };
        // Should the start fail or be abandoned (its future dropped) past
        // this point, the children already started are stopped.
        let mut started = StopChildren(Vec::new());
        let (address_book, _) = Actor::spawn_linked(None, book, (), myself.get_cell()).await?;
        started.0.push(address_book.get_cell());
        let metrics = self.metrics.clone();
        let handles = Handles {
            book: self.book.clone(),
            updates: address_book.get_derived(),
            gossip: self.gossip.clone(),
            overloaded: Box::new(move || {
                metrics.heartbeat_rejected(heartbeat::Rejection::Overloaded.name())
            }),
            listen_addrs: self.listen_addrs.clone(),
            shared: self.shared.clone(),
            metrics: self.metrics.clone(),
        };
        let config = self.swarm.clone();
        let swarm = SwarmActor::spawn_linked(config, swarm, handles, myself.get_cell()).await?;
        started.0.push(swarm.get_cell());
        let mut state = NodeState {
            actors: NodeActors {
                swarm,
                address_book,
                heartbeat: None,
            },
            restarts: Restarts::new(MAX_RESTARTS, RESTART_WINDOW),
            published: self.actors.clone(),
        };
        self.start_heartbeat(&myself, &mut state).await?;
        if !self.bootstrap.is_empty() {
            state.actors.swarm.cast(Command::Bootstrap {
                peers: self.bootstrap.clone(),
            })?;
        }
        started.0.clear();
        Ok(state)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<NodeMessage>,
        event: SupervisionEvent,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, ended) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, Ended::Failed(error.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, Ended::Stopped(reason)),
            _ => return Ok(()),
        };
        let actors = &state.actors;
        if is(&cell, &actors.swarm) || is(&cell, &actors.address_book) {
            let which = if is(&cell, &actors.swarm) {
                "swarm"
            } else {
                "address_book"
            };
            self.metrics.actor_failed(which);
            tracing::error!(actor = which, "a core actor {ended}: the node fails");
            // An error here fails the supervisor: its own supervisor gets
            // `ActorFailed`, not a normal termination.
            return Err(format!("the {which} actor {ended}").into());
        }
        if actors.heartbeat.as_ref().is_some_and(|h| is(&cell, h)) {
            state.actors.heartbeat = None;
            self.publish_actors(&state.actors);
            self.metrics.actor_failed("heartbeat");
            if !state.restarts.allow(Instant::now()) {
                tracing::error!(
                    "the heartbeat actor {ended}, past its restart budget: the node fails"
                );
                return Err(format!(
                    "the heartbeat actor {ended}, after {MAX_RESTARTS} restarts within {RESTART_WINDOW:?}"
                )
                .into());
            }
            tracing::warn!("the heartbeat actor {ended}; restarting it");
            self.start_heartbeat(&myself, state).await?;
            self.metrics.actor_restarted("heartbeat");
            return Ok(());
        }
        // A protocol actor: its route went with it.
        if let Ended::Failed(error) = ended {
            self.metrics.actor_failed("protocol");
            tracing::error!("a protocol actor failed; its protocol is no longer served: {error}");
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<NodeMessage>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        *self.actors.write().expect("actors lock poisoned") = None;
        // Protocols first, so no request starts on a node going down; each
        // lets its running handlers finish within the grace period.
        let core = [
            state.actors.heartbeat.as_ref().map(|h| h.get_cell()),
            Some(state.actors.swarm.get_cell()),
            Some(state.actors.address_book.get_cell()),
        ];
        let core: Vec<ActorCell> = core.into_iter().flatten().collect();
        let grace = self.shutdown_grace + STOP_TIMEOUT;
        stop_in_order(myself.get_cell(), &core, grace, STOP_TIMEOUT).await;
        tracing::info!(peer = %self.local_peer, "node stopped");
        Ok(())
    }
}

impl NodeSupervisor {
    /// Starts the heartbeat actor, if heartbeats are on, and subscribes it
    /// to the heartbeat topic's gossip.
    async fn start_heartbeat(
        &self,
        myself: &ActorRef<NodeMessage>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(config) = &self.heartbeat {
            let actor = HeartbeatActor {
                config: config.clone(),
                local_peer: self.local_peer,
                addresses: self.listen_addrs.clone(),
                swarm: state.actors.swarm.clone(),
                address_book: state.actors.address_book.clone(),
                book: self.book.clone(),
                metrics: self.metrics.clone(),
                gate: self.gate.clone(),
                reputation: self.shared.reputation.clone(),
            };
            let (heartbeat, _) = Actor::spawn_linked(None, actor, (), myself.get_cell()).await?;
            let topic = IdentTopic::new(heartbeat::topic(config.subnet_id())).hash();
            let template = config
                .template()
                .map(|_| IdentTopic::new(heartbeat::template::TOPIC).hash());
            self.gossip.subscribe(heartbeat.clone(), move |message| {
                (message.topic == topic || Some(&message.topic) == template.as_ref())
                    .then(|| HeartbeatMessage::Received(Box::new(message)))
            });
            state.actors.heartbeat = Some(heartbeat);
        }
        self.publish_actors(&state.actors);
        Ok(())
    }

    fn publish_actors(&self, actors: &NodeActors) {
        *self.actors.write().expect("actors lock poisoned") = Some(actors.clone());
    }
}
