//! `SwarmActor`: the only owner of the libp2p `Swarm` (built in
//! `src/swarm/`).
//!
//! The swarm is polled by an event loop (`src/swarm/event_loop/`) in a task
//! the actor owns; the actor forwards its messages, the loop's
//! [`Command`]s, to that loop through a bounded channel. The loop never
//! waits on another actor: it sends the address book updates, answers
//! reply ports, and publishes each GossipSub message it receives on an
//! output port ([`GossipMessage`](crate::swarm::GossipMessage)) that
//! consumers, such as the heartbeat actor, subscribe to; it does not know
//! them. Stream bytes do not pass through here: see `src/streams/` for how
//! streams reach protocols and callers directly.

use std::{panic::AssertUnwindSafe, time::Duration};

use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::swarm::{
    Built, Command, Config,
    event_loop::{EventLoop, Handles},
};

/// Time a stopping swarm actor gives its connections to close gracefully.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Owns the swarm. Its field is the actor's fixed settings; the swarm
/// itself, and what its loop works with, are its arguments.
#[derive(Debug)]
pub struct SwarmActor {
    /// The swarm's settings (peers kept, trimming, relays).
    pub(crate) config: Config,
}

/// The actor's state: the loop's command channel and task.
#[derive(Debug)]
pub struct SwarmState {
    commands: mpsc::Sender<Command>,
    event_loop: JoinHandle<()>,
}

impl Actor for SwarmActor {
    type Msg = Command;
    type State = SwarmState;
    /// A built swarm whose listeners are already bound, and what its loop
    /// works with (the book, the gossip port, the connections, the metrics).
    type Arguments = (Built, Handles);

    async fn pre_start(
        &self,
        myself: ActorRef<Command>,
        (swarm, handles): (Built, Handles),
    ) -> Result<SwarmState, ActorProcessingErr> {
        let (event_loop, commands) = EventLoop::new(swarm, &self.config, handles);
        let event_loop = tokio::spawn(async move {
            let ended = AssertUnwindSafe(event_loop.run()).catch_unwind().await;
            // The loop only ends when the swarm does, or panics: either way
            // the actor ends, and its supervisor treats that as a failure.
            let reason = match ended {
                Ok(()) => "the swarm event loop ended".to_owned(),
                Err(_) => "the swarm event loop panicked".to_owned(),
            };
            myself.stop(Some(reason));
        });
        Ok(SwarmState {
            commands,
            event_loop,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Command>,
        message: Command,
        state: &mut SwarmState,
    ) -> Result<(), ActorProcessingErr> {
        state
            .commands
            .send(message)
            .await
            .map_err(|_| "the swarm event loop has stopped")?;
        Ok(())
    }

    /// A graceful stop closes the connections first, so that responses
    /// already written reach their callers; the swarm goes when the state
    /// is dropped.
    async fn post_stop(
        &self,
        _myself: ActorRef<Command>,
        state: &mut SwarmState,
    ) -> Result<(), ActorProcessingErr> {
        Self::close_connections(state).await;
        Ok(())
    }
}

impl SwarmActor {
    /// Starts the actor for `swarm` under `supervisor`.
    pub(crate) async fn spawn_linked(
        config: Config,
        swarm: Built,
        handles: Handles,
        supervisor: ActorCell,
    ) -> Result<ActorRef<Command>, SpawnErr> {
        let actor = Self { config };
        let (actor, _) = Actor::spawn_linked(None, actor, (swarm, handles), supervisor).await?;
        Ok(actor)
    }

    /// Closes the connections gracefully, within [`CLOSE_TIMEOUT`].
    async fn close_connections(state: &SwarmState) {
        let (reply, closed) = tokio::sync::oneshot::channel();
        let asked = state.commands.send(Command::CloseConnections {
            reply: reply.into(),
        });
        if asked.await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, closed).await;
        }
    }
}

impl Drop for SwarmState {
    /// However the actor ends (stopped, killed, failed), the swarm goes too.
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}
