//! `NodeSupervisor`: the root of a node's actors.
//!
//! ```text
//! NodeSupervisor                 root; or a child of the user's own supervisor
//! ├── AddressBookActor           the one writer of the address book; reads the registry
//! ├── SwarmActor                 owns the libp2p Swarm (its event loop is a task it owns)
//! ├── HeartbeatActor             publishes and validates signed heartbeats (if enabled)
//! └── ProtocolActor<P>           one per registered protocol (peer exchange is one)
//!     └── RequestActor<P>        one per inbound stream; ends after one request
//! ```
//!
//! Failure policy, decided here and in `ProtocolActor`:
//! - a `RequestActor` failing (handler error, panic, deadline, bad input)
//!   resets its stream and is counted; its `ProtocolActor` keeps serving;
//! - a `ProtocolActor` failing unregisters that protocol and is counted; the
//!   node keeps serving the others;
//! - the `HeartbeatActor` failing is counted and it is restarted;
//! - the `SwarmActor` or the `AddressBookActor` ending means the node can no
//!   longer work: the supervisor stops, so that an embedding supervisor sees
//!   the node fail and can restart it.
//!
//! On a graceful stop the protocols stop first (no new requests are
//! accepted), then the heartbeat, the swarm and the address book.

use std::{
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use libp2p::{Multiaddr, PeerId, Swarm};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::{
    address_book::{AddressBookActor, AddressBookArguments, AddressBookMessage},
    heartbeat::{HeartbeatActor, HeartbeatArguments, HeartbeatMessage},
    swarm::{Behaviour, SwarmActor, SwarmArguments, SwarmMessage},
};
use crate::{
    address_book::{self, AddressBook},
    heartbeat,
    metrics::Metrics,
    registry::{Gate, Registry},
};

/// Time allowed to each child to stop on a graceful shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's long-lived actors.
#[derive(Debug, Clone)]
pub struct NodeActors {
    /// Owns the swarm.
    pub swarm: ActorRef<SwarmMessage>,
    /// Writes the address book.
    pub address_book: ActorRef<AddressBookMessage>,
    /// Publishes and validates heartbeats, if enabled.
    pub heartbeat: Option<ActorRef<HeartbeatMessage>>,
}

/// What the `NodeSupervisor` answers.
#[derive(Debug)]
pub enum NodeMessage {
    /// The node's long-lived actors.
    Actors {
        /// Answered with their references.
        reply: RpcReplyPort<NodeActors>,
    },
}

/// What the `NodeSupervisor` starts with.
pub struct NodeArguments {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) local_peer: PeerId,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) book: AddressBook,
    pub(crate) book_config: address_book::Config,
    pub(crate) registry: Option<Arc<dyn Registry>>,
    pub(crate) gate: Gate,
    pub(crate) heartbeat: Option<heartbeat::Config>,
    pub(crate) bootstrap: Vec<(PeerId, Multiaddr)>,
    pub(crate) min_peers: usize,
    pub(crate) metrics: Metrics,
}

/// The state of the supervisor.
pub struct NodeState {
    actors: NodeActors,
    heartbeat_args: Option<(heartbeat::Config, Vec<Multiaddr>)>,
    local_peer: PeerId,
    metrics: Metrics,
}

/// The root of a node's actors.
pub struct NodeSupervisor;

impl Actor for NodeSupervisor {
    type Msg = NodeMessage;
    type State = NodeState;
    type Arguments = NodeArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMessage>,
        args: NodeArguments,
    ) -> Result<NodeState, ActorProcessingErr> {
        let book = AddressBookArguments {
            book: args.book.clone(),
            config: args.book_config,
            registry: args.registry,
            gate: args.gate,
            local_peer: args.local_peer,
            metrics: args.metrics.clone(),
        };
        let (address_book, _) =
            Actor::spawn_linked(None, AddressBookActor, book, myself.get_cell()).await?;
        let swarm_args = SwarmArguments {
            swarm: args.swarm,
            address_book: address_book.clone(),
            book: args.book.clone(),
            min_peers: args.min_peers,
            metrics: args.metrics.clone(),
        };
        let (swarm, _) =
            Actor::spawn_linked(None, SwarmActor, swarm_args, myself.get_cell()).await?;
        let mut state = NodeState {
            actors: NodeActors {
                swarm,
                address_book,
                heartbeat: None,
            },
            heartbeat_args: args.heartbeat.map(|c| (c, args.listen_addrs)),
            local_peer: args.local_peer,
            metrics: args.metrics,
        };
        state.start_heartbeat(&myself).await?;
        if !args.bootstrap.is_empty() {
            state.actors.swarm.cast(SwarmMessage::Bootstrap {
                peers: args.bootstrap,
            })?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<NodeMessage>,
        message: NodeMessage,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMessage::Actors { reply } => {
                let _ = reply.send(state.actors.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<NodeMessage>,
        event: SupervisionEvent,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, Some(error.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        let actors = &state.actors;
        if is(&cell, &actors.swarm) || is(&cell, &actors.address_book) {
            let which = if is(&cell, &actors.swarm) {
                "swarm"
            } else {
                "address_book"
            };
            if failure.is_some() {
                state.metrics.actor_failed(which);
            }
            tracing::error!(
                actor = which,
                ?failure,
                "a core actor ended, stopping the node"
            );
            myself.stop(Some(format!("the {which} actor ended")));
        } else if actors.heartbeat.as_ref().is_some_and(|h| is(&cell, h)) {
            state.actors.heartbeat = None;
            if let Some(error) = failure {
                state.metrics.actor_failed("heartbeat");
                tracing::warn!("the heartbeat actor failed, restarting it: {error}");
                state.start_heartbeat(&myself).await?;
                state.metrics.actor_restarted("heartbeat");
            }
        } else if let Some(error) = failure {
            state.metrics.actor_failed("protocol");
            tracing::error!("a protocol actor failed; its protocol is no longer served: {error}");
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<NodeMessage>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        // Protocols first, so no request starts on a node going down.
        let core = [
            state.actors.heartbeat.as_ref().map(|h| h.get_cell()),
            Some(state.actors.swarm.get_cell()),
            Some(state.actors.address_book.get_cell()),
        ];
        for child in myself.get_children() {
            if !core.iter().flatten().any(|c| c.get_id() == child.get_id()) {
                let _ = child.stop_and_wait(None, Some(STOP_TIMEOUT)).await;
            }
        }
        for cell in core.into_iter().flatten() {
            let _ = cell.stop_and_wait(None, Some(STOP_TIMEOUT)).await;
        }
        tracing::info!(peer = %state.local_peer, "node stopped");
        Ok(())
    }
}

impl NodeState {
    async fn start_heartbeat(
        &mut self,
        myself: &ActorRef<NodeMessage>,
    ) -> Result<(), ActorProcessingErr> {
        let Some((config, addresses)) = &self.heartbeat_args else {
            return Ok(());
        };
        let pending = Arc::new(AtomicUsize::new(0));
        let args = HeartbeatArguments {
            config: config.clone(),
            local_peer: self.local_peer,
            addresses: addresses.clone(),
            swarm: self.actors.swarm.clone(),
            address_book: self.actors.address_book.clone(),
            pending: pending.clone(),
            metrics: self.metrics.clone(),
        };
        let (heartbeat, _) =
            Actor::spawn_linked(None, HeartbeatActor, args, myself.get_cell()).await?;
        self.actors.swarm.cast(SwarmMessage::RouteHeartbeats {
            topic: heartbeat::topic(config.subnet_id()),
            actor: heartbeat.clone(),
            pending,
        })?;
        self.actors.heartbeat = Some(heartbeat);
        Ok(())
    }
}

fn is<M: ractor::Message>(cell: &ActorCell, actor: &ActorRef<M>) -> bool {
    cell.get_id() == actor.get_id()
}
