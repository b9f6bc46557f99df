//! `SwarmActor`: the only owner of the libp2p `Swarm`.
//!
//! The swarm is polled by an event loop in a task the actor owns; the actor
//! forwards its typed messages to that loop through a bounded channel and
//! never waits on another actor. Stream bytes do not pass through here: see
//! [`crate::streams`] for how streams reach protocols and callers directly.

use std::{collections::HashMap, sync::Arc};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, identify, ping,
    swarm::{
        DialError, NetworkBehaviour, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    address_book::{AddressBook, Source},
    streams,
};

/// Messages queued for the event loop before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// Callers waiting on dials to one peer; more get an error at once.
const MAX_DIAL_WAITERS: usize = 4096;

/// The libp2p behaviours of a node.
#[derive(NetworkBehaviour)]
#[allow(missing_docs)]
pub(crate) struct Behaviour {
    pub(crate) streams: streams::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

/// The result of a dial request.
pub type DialResult = Result<(), Arc<DialError>>;

/// What the `SwarmActor` does.
#[derive(Debug)]
pub enum SwarmMessage {
    /// Connect to `peer` unless already connected; answers once a connection
    /// is established or every address failed.
    Dial {
        /// The peer to connect to.
        peer: PeerId,
        /// Addresses to try besides those the address book knows.
        addresses: Vec<Multiaddr>,
        /// Answered with the outcome.
        reply: RpcReplyPort<DialResult>,
    },
    /// The addresses the node listens on.
    ListenAddrs {
        /// Answered with the current listen addresses.
        reply: RpcReplyPort<Vec<Multiaddr>>,
    },
    /// The peers with an established connection.
    ConnectedPeers {
        /// Answered with the connected peers.
        reply: RpcReplyPort<Vec<PeerId>>,
    },
}

/// What the `SwarmActor` starts with.
pub struct SwarmArguments {
    /// A built swarm whose listeners are already bound.
    pub(crate) swarm: Swarm<Behaviour>,
    /// The address book's shared view, fed with connection endpoints.
    pub(crate) address_book: AddressBook,
}

/// The actor's state: the loop's command channel and task.
pub struct SwarmState {
    commands: mpsc::Sender<SwarmMessage>,
    event_loop: JoinHandle<()>,
}

/// Owns the swarm.
pub struct SwarmActor;

impl Actor for SwarmActor {
    type Msg = SwarmMessage;
    type State = SwarmState;
    type Arguments = SwarmArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<SwarmMessage>,
        args: SwarmArguments,
    ) -> Result<SwarmState, ActorProcessingErr> {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let event_loop = EventLoop {
            swarm: args.swarm,
            commands: receiver,
            address_book: args.address_book,
            dials: HashMap::new(),
        };
        let event_loop = tokio::spawn(async move {
            event_loop.run().await;
            // The loop only ends when the swarm does: fail the actor.
            myself.stop(Some("the swarm event loop ended".into()));
        });
        Ok(SwarmState {
            commands,
            event_loop,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SwarmMessage>,
        message: SwarmMessage,
        state: &mut SwarmState,
    ) -> Result<(), ActorProcessingErr> {
        state
            .commands
            .send(message)
            .await
            .map_err(|_| "the swarm event loop has stopped")?;
        Ok(())
    }
}

impl Drop for SwarmState {
    /// However the actor ends (stopped, killed, failed), the swarm goes too.
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}

/// The task that polls the swarm and applies commands.
struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<SwarmMessage>,
    address_book: AddressBook,
    dials: HashMap<PeerId, Vec<RpcReplyPort<DialResult>>>,
}

impl EventLoop {
    async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    fn on_command(&mut self, command: SwarmMessage) {
        match command {
            SwarmMessage::Dial {
                peer,
                addresses,
                reply,
            } => self.dial(peer, addresses, reply),
            SwarmMessage::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            SwarmMessage::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
        }
    }

    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, reply: RpcReplyPort<DialResult>) {
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let waiters = self.dials.entry(peer).or_default();
        if waiters.len() >= MAX_DIAL_WAITERS {
            let _ = reply.send(Err(Arc::new(DialError::Aborted)));
            return;
        }
        waiters.push(reply);
        if waiters.len() > 1 {
            return; // a dial to this peer is already under way
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(addresses)
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(error) = self.swarm.dial(opts) {
            self.finish_dials(peer, Err(Arc::new(error)));
        }
    }

    fn finish_dials(&mut self, peer: PeerId, result: DialResult) {
        for waiter in self.dials.remove(&peer).unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let peer = *self.swarm.local_peer_id();
                tracing::info!("listening on {address}/p2p/{peer}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connected");
                if endpoint.is_dialer() {
                    self.address_book.add(
                        peer_id,
                        endpoint.get_remote_address().clone(),
                        Source::Connection,
                    );
                }
                self.finish_dials(peer_id, Ok(()));
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, "dial failed: {error}");
                if !self.swarm.is_connected(&peer) {
                    self.finish_dials(peer, Err(Arc::new(error)));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
            }
            _ => {}
        }
    }
}
