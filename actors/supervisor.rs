//! `NodeSupervisor`: the root of a node's actors.
//!
//! ```text
//! NodeSupervisor                 root; or a child of the user's own supervisor
//! ├── SwarmActor                 owns the libp2p Swarm (its event loop is a task it owns)
//! └── ProtocolActor<P>           one per registered protocol
//!     └── RequestActor<P>        one per inbound stream; ends after one request
//! ```
//!
//! Failure policy, decided here and in `ProtocolActor`:
//! - a `RequestActor` failing (handler error, panic, deadline, bad input)
//!   resets its stream and is counted; its `ProtocolActor` keeps serving;
//! - a `ProtocolActor` failing unregisters that protocol and is counted; the
//!   node keeps serving the others;
//! - the `SwarmActor` ending means the node has no network: the supervisor
//!   stops, so that an embedding supervisor sees the node fail and can
//!   restart it.
//!
//! On a graceful stop the protocols stop first (no new requests are
//! accepted), then the swarm.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::swarm::{SwarmActor, SwarmArguments, SwarmMessage};
use crate::metrics;

/// Time allowed to each child to stop on a graceful shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the `NodeSupervisor` answers.
#[derive(Debug)]
pub enum NodeMessage {
    /// The node's `SwarmActor`.
    Swarm {
        /// Answered with the swarm actor's reference.
        reply: RpcReplyPort<ActorRef<SwarmMessage>>,
    },
}

/// The state of the supervisor.
pub struct NodeState {
    swarm: ActorRef<SwarmMessage>,
}

/// The root of a node's actors.
pub struct NodeSupervisor;

impl Actor for NodeSupervisor {
    type Msg = NodeMessage;
    type State = NodeState;
    type Arguments = SwarmArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMessage>,
        swarm: SwarmArguments,
    ) -> Result<NodeState, ActorProcessingErr> {
        let (swarm, _) = Actor::spawn_linked(None, SwarmActor, swarm, myself.get_cell()).await?;
        Ok(NodeState { swarm })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NodeMessage>,
        message: NodeMessage,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMessage::Swarm { reply } => {
                let _ = reply.send(state.swarm.clone());
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
        match event {
            SupervisionEvent::ActorFailed(cell, error) if is(&cell, &state.swarm) => {
                metrics::actor_failed("swarm");
                tracing::error!("the swarm failed, stopping the node: {error}");
                myself.stop(Some(format!("the swarm failed: {error}")));
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) if is(&cell, &state.swarm) => {
                tracing::error!(?reason, "the swarm stopped, stopping the node");
                myself.stop(Some("the swarm stopped".into()));
            }
            SupervisionEvent::ActorFailed(_, error) => {
                metrics::actor_failed("protocol");
                tracing::error!(
                    "a protocol actor failed; its protocol is no longer served: {error}"
                );
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<NodeMessage>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        // Protocols first, so no request starts on a node without a swarm.
        for child in myself.get_children() {
            if child.get_id() != state.swarm.get_id() {
                let _ = child.stop_and_wait(None, Some(STOP_TIMEOUT)).await;
            }
        }
        let _ = state.swarm.stop_and_wait(None, Some(STOP_TIMEOUT)).await;
        Ok(())
    }
}

fn is(cell: &ActorCell, swarm: &ActorRef<SwarmMessage>) -> bool {
    cell.get_id() == swarm.get_id()
}
