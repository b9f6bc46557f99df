//! `SwarmActor`: the only owner of the libp2p `Swarm`.
//!
//! The swarm is polled by an event loop in a task the actor owns; the actor
//! forwards its typed messages to that loop through a bounded channel. The
//! loop never waits on another actor: it only casts (to the address book
//! and heartbeat actors) and answers reply ports. Stream bytes do not pass
//! through here: see `src/streams.rs` for how streams reach protocols and
//! callers directly.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, connection_limits,
    core::upgrade,
    gossipsub, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    ping,
    swarm::{
        DialError, NetworkBehaviour, SwarmEvent,
        behaviour::toggle::Toggle,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::{sync::mpsc, task::JoinHandle};

use super::heartbeat::MAX_PENDING_VALIDATIONS;
use super::{address_book::AddressBookMessage, heartbeat::HeartbeatMessage};
use crate::{
    StartError,
    address_book::{AddressBook, Source},
    registry::Gate,
    security::NamedNoise,
    streams,
    woken::Woken,
};

/// Messages queued for the event loop before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// Callers waiting on dials to one peer; more get an error at once.
const MAX_DIAL_WAITERS: usize = 4096;

/// Kademlia lookups under way at once; more are answered empty at once.
const MAX_LOOKUPS: usize = 256;

/// Identify protocol version announced by nodes.
const IDENTIFY_PROTOCOL: &str = "/subnet/1.0.0";

/// Largest GossipSub message: 64 KiB.
const MAX_GOSSIP_SIZE: usize = 64 * 1024;

/// The libp2p behaviours of a node.
#[derive(NetworkBehaviour)]
#[allow(missing_docs)]
pub(crate) struct Behaviour {
    /// First, so that a connection over a limit is denied before any other
    /// behaviour sets up state for it.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) streams: streams::Behaviour,
    // The others are polled only when woken (see `src/woken.rs`): most of a
    // connection's wake-ups are for its request streams.
    pub(crate) identify: Woken<identify::Behaviour>,
    pub(crate) ping: Woken<ping::Behaviour>,
    pub(crate) gossipsub: Woken<gossipsub::Behaviour>,
    pub(crate) kademlia: Woken<Toggle<kad::Behaviour<MemoryStore>>>,
}

/// How to build a node's swarm.
pub(crate) struct SwarmOptions {
    pub(crate) keypair: Keypair,
    pub(crate) shared: Arc<streams::Shared>,
    pub(crate) address_book: AddressBook,
    pub(crate) gate: Gate,
    pub(crate) idle_connection_timeout: Duration,
    /// The subnet's id: names the Kademlia protocol.
    pub(crate) subnet_id: u64,
    pub(crate) kademlia: bool,
    /// GossipSub's own heartbeat (mesh maintenance).
    pub(crate) gossip_heartbeat: Duration,
    /// Topics to subscribe to.
    pub(crate) topics: Vec<String>,
    /// Names Noise is offered under.
    pub(crate) noise_names: Vec<&'static str>,
    /// GossipSub's protocol id, if not libp2p's default (`/meshsub/1.x`).
    pub(crate) gossipsub_protocol: Option<String>,
    /// Established inbound connections accepted at most.
    pub(crate) max_inbound_connections: u32,
    /// Multistream-select V1-lazy for outbound streams.
    pub(crate) lazy_negotiation: bool,
}

/// Connections being set up from remote peers at once.
const MAX_PENDING_INBOUND: u32 = 64;
/// Established connections to one peer at most.
const MAX_CONNECTIONS_PER_PEER: u32 = 4;

/// Builds a swarm: TCP + Noise + yamux and QUIC, with identify, ping,
/// GossipSub (signed, strict, application-validated) and, if asked,
/// Kademlia in server mode under the subnet's own protocol name.
pub(crate) fn build(options: SwarmOptions) -> Result<Swarm<Behaviour>, StartError> {
    let transport = |e: &dyn std::fmt::Display| StartError::Transport(e.to_string().into());
    // Keep messages cached for at least 5 s whatever the mesh heartbeat, so
    // that a validation verdict never arrives after its message was evicted.
    let history = (5_000 / options.gossip_heartbeat.as_millis().max(1)).max(5) as usize;
    let mut gossip_config = gossipsub::ConfigBuilder::default();
    if let Some(protocol) = &options.gossipsub_protocol {
        gossip_config.protocol_id(protocol.clone(), gossipsub::Version::V1_1);
    }
    let gossip_config = gossip_config
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .heartbeat_interval(options.gossip_heartbeat)
        .history_length(history)
        .max_transmit_size(MAX_GOSSIP_SIZE)
        .build()
        .map_err(|e| transport(&e))?;
    let mut swarm = SwarmBuilder::with_existing_identity(options.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            |key: &Keypair| NamedNoise::new(key, options.noise_names.clone()),
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_behaviour(|key| {
            let peer = key.public().to_peer_id();
            let kademlia = options.kademlia.then(|| {
                let protocol = format!("/subnet/{}/kad/1.0.0", options.subnet_id);
                let protocol = StreamProtocol::try_from_owned(protocol).expect("starts with /");
                let mut kad = kad::Behaviour::with_config(
                    peer,
                    MemoryStore::new(peer),
                    kad::Config::new(protocol),
                );
                kad.set_mode(Some(kad::Mode::Server));
                kad
            });
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
                .with_max_established_incoming(Some(options.max_inbound_connections))
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                streams: streams::Behaviour::new(
                    options.shared.clone(),
                    options.address_book.clone(),
                    options.gate.clone(),
                ),
                identify: Woken::new(identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_PROTOCOL.into(),
                    key.public(),
                ))),
                ping: Woken::new(ping::Behaviour::default()),
                gossipsub: Woken::new(gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?),
                kademlia: Woken::new(kademlia.into()),
            })
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| {
            let c = c.with_idle_connection_timeout(options.idle_connection_timeout);
            if options.lazy_negotiation {
                // Outbound streams send their first bytes with the protocol
                // proposal; a refusal surfaces at the first read (see
                // `codec::is_unsupported`).
                c.with_substream_upgrade_protocol_override(upgrade::Version::V1Lazy)
            } else {
                c
            }
        })
        .build();
    for topic in &options.topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| transport(&e))?;
    }
    Ok(swarm)
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
    /// Connect to bootstrap peers and, with Kademlia, bootstrap the DHT.
    Bootstrap {
        /// Addresses ending in `/p2p/<peer id>`.
        peers: Vec<(PeerId, Multiaddr)>,
    },
    /// Look `peer` up in the DHT.
    FindPeer {
        /// The peer sought.
        peer: PeerId,
        /// Answered with its addresses (empty if not found or no Kademlia).
        reply: RpcReplyPort<Vec<Multiaddr>>,
    },
    /// Publish `data` on a GossipSub topic.
    Publish {
        /// The topic.
        topic: String,
        /// The message.
        data: Vec<u8>,
        /// If no peer has subscribed to the topic yet, keep the message
        /// (the last one only) and publish it when one does, instead of
        /// dropping it. For heartbeats, whose receivers check freshness.
        retain: bool,
    },
    /// Report the application's verdict on a GossipSub message.
    ReportValidation {
        /// The message.
        message_id: gossipsub::MessageId,
        /// The peer that forwarded it.
        propagation_source: PeerId,
        /// The verdict.
        acceptance: gossipsub::MessageAcceptance,
    },
    /// Forward messages of `topic` to `actor` for validation.
    RouteHeartbeats {
        /// The heartbeat topic.
        topic: String,
        /// The heartbeat actor.
        actor: ActorRef<HeartbeatMessage>,
        /// Validations the actor has not finished; bounded by the loop.
        pending: Arc<AtomicUsize>,
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
    /// Where learned addresses and dial outcomes go.
    pub(crate) address_book: ActorRef<AddressBookMessage>,
    /// The address book's read view, to pick peers to connect to.
    pub(crate) book: AddressBook,
    /// Connections the node keeps at least, dialing known peers (0: off).
    pub(crate) min_peers: usize,
    /// The node's metrics.
    pub(crate) metrics: crate::metrics::Metrics,
}

/// How often the loop checks that it has `min_peers` connections.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

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
            lookups: HashMap::new(),
            heartbeats: None,
            book: args.book,
            min_peers: args.min_peers,
            metrics: args.metrics,
            unsent: None,
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

struct HeartbeatRoute {
    topic: gossipsub::TopicHash,
    actor: ActorRef<HeartbeatMessage>,
    pending: Arc<AtomicUsize>,
}

/// The task that polls the swarm and applies commands.
struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<SwarmMessage>,
    address_book: ActorRef<AddressBookMessage>,
    dials: HashMap<PeerId, Vec<RpcReplyPort<DialResult>>>,
    lookups: HashMap<kad::QueryId, (PeerId, RpcReplyPort<Vec<Multiaddr>>)>,
    heartbeats: Option<HeartbeatRoute>,
    book: AddressBook,
    min_peers: usize,
    metrics: crate::metrics::Metrics,
    /// The last retained message that could not be published because no
    /// peer had subscribed to its topic yet (a node's first heartbeat):
    /// published as soon as one does, not a whole interval later.
    unsent: Option<(gossipsub::TopicHash, Vec<u8>)>,
}

impl EventLoop {
    async fn run(mut self) {
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = maintenance.tick() => self.keep_connected(),
            }
        }
    }

    /// Dials known, unconnected peers while the node has fewer than
    /// `min_peers` connections, so that GossipSub has a mesh to work with
    /// even when every node bootstrapped to the same one.
    fn keep_connected(&mut self) {
        let connected = self.swarm.connected_peers().count();
        if connected >= self.min_peers {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let wanted = self.min_peers - connected;
        let candidates: Vec<PeerId> = self
            .book
            .peers()
            .into_iter()
            .filter(|p| *p != local && !self.swarm.is_connected(p))
            .take(wanted)
            .collect();
        for peer in candidates {
            let opts = DialOpts::peer_id(peer)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }

    fn publish(&mut self, topic: gossipsub::TopicHash, data: Vec<u8>, retain: bool) {
        // Only a message that may be retained is copied (GossipSub takes it).
        let kept = retain.then(|| data.clone());
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        match gossipsub.publish(topic.clone(), data) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) if kept.is_some() => {
                tracing::debug!(%topic, "no peer subscribed yet: publishing when one does");
                self.unsent = kept.map(|data| (topic, data));
            }
            Err(error) => tracing::debug!("publishing failed: {error}"),
        }
    }

    fn on_command(&mut self, command: SwarmMessage) {
        match command {
            SwarmMessage::Dial {
                peer,
                addresses,
                reply,
            } => self.dial(peer, addresses, reply),
            SwarmMessage::Bootstrap { peers } => self.bootstrap(peers),
            SwarmMessage::FindPeer { peer, reply } => self.find_peer(peer, reply),
            SwarmMessage::Publish {
                topic,
                data,
                retain,
            } => {
                let topic = gossipsub::IdentTopic::new(topic).hash();
                self.publish(topic, data, retain);
            }
            SwarmMessage::ReportValidation {
                message_id,
                propagation_source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            SwarmMessage::RouteHeartbeats {
                topic,
                actor,
                pending,
            } => {
                self.heartbeats = Some(HeartbeatRoute {
                    topic: gossipsub::IdentTopic::new(topic).hash(),
                    actor,
                    pending,
                });
            }
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
        match self.swarm.dial(opts) {
            // Another dial to the peer is under way (the connection upkeep,
            // a bootstrap): its outcome answers these waiters too.
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(error) => self.finish_dials(peer, Err(Arc::new(error))),
        }
    }

    fn finish_dials(&mut self, peer: PeerId, result: DialResult) {
        for waiter in self.dials.remove(&peer).unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }

    fn bootstrap(&mut self, peers: Vec<(PeerId, Multiaddr)>) {
        for (peer, address) in peers {
            if let Some(kad) = self.swarm.behaviour_mut().kademlia.as_mut() {
                kad.add_address(&peer, address.clone());
            }
            let _ = self.address_book.cast(AddressBookMessage::Add {
                peer,
                addresses: vec![address.clone()],
                source: Source::Manual,
                subnet_node_id: None,
            });
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![address.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                tracing::warn!(%peer, "cannot dial bootstrap peer {address}: {error}");
            }
        }
        if let Some(kad) = self.swarm.behaviour_mut().kademlia.as_mut() {
            let _ = kad.bootstrap();
        }
    }

    fn find_peer(&mut self, peer: PeerId, reply: RpcReplyPort<Vec<Multiaddr>>) {
        let Some(kad) = self.swarm.behaviour_mut().kademlia.as_mut() else {
            let _ = reply.send(Vec::new());
            return;
        };
        if self.lookups.len() >= MAX_LOOKUPS {
            let _ = reply.send(Vec::new());
            return;
        }
        let query = kad.get_closest_peers(peer);
        self.lookups.insert(query, (peer, reply));
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if let Some(kad) = self.swarm.behaviour_mut().kademlia.as_mut() {
                    for address in &info.listen_addrs {
                        kad.add_address(&peer_id, address.clone());
                    }
                }
                let _ = self.address_book.cast(AddressBookMessage::Add {
                    peer: peer_id,
                    addresses: info.listen_addrs,
                    source: Source::Identify,
                    subnet_node_id: None,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic,
                ..
            })) if self.unsent.as_ref().is_some_and(|(t, _)| *t == topic) => {
                let (topic, data) = self.unsent.take().expect("checked");
                self.publish(topic, data, true);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(
                kad::Event::OutboundQueryProgressed {
                    id,
                    result: kad::QueryResult::GetClosestPeers(result),
                    step,
                    ..
                },
            )) => self.on_lookup(id, result, step.last),
            SwarmEvent::NewListenAddr { address, .. } => {
                let peer = *self.swarm.local_peer_id();
                tracing::info!("listening on {address}/p2p/{peer}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connected");
                self.metrics.connection(
                    endpoint.is_dialer(),
                    transport(endpoint.get_remote_address()),
                );
                self.metrics
                    .connected_peers(self.swarm.connected_peers().count());
                if endpoint.is_dialer() {
                    let _ = self.address_book.cast(AddressBookMessage::Confirmed {
                        peer: peer_id,
                        address: endpoint.get_remote_address().clone(),
                    });
                }
                self.finish_dials(peer_id, Ok(()));
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, "dial failed: {error}");
                if let DialError::Transport(failed) = &error {
                    let addresses = failed.iter().map(|(a, _)| a.clone()).collect();
                    let _ = self
                        .address_book
                        .cast(AddressBookMessage::DialFailed { peer, addresses });
                }
                if !self.swarm.is_connected(&peer) {
                    self.finish_dials(peer, Err(Arc::new(error)));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.metrics
                    .connected_peers(self.swarm.connected_peers().count());
            }
            _ => {}
        }
    }

    fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let routed = self.heartbeats.as_ref().and_then(|route| {
            if route.topic != message.topic {
                return None;
            }
            // Bound the validations in flight: beyond, ignore unread.
            if route.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_VALIDATIONS {
                route.pending.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            let sent = route.actor.cast(HeartbeatMessage::Received {
                message_id: message_id.clone(),
                propagation_source,
                signer: message.source,
                data: message.data,
            });
            if sent.is_err() {
                route.pending.fetch_sub(1, Ordering::Relaxed);
            }
            sent.ok()
        });
        if routed.is_none() {
            // No one validates this topic here (or too many wait): ignore it.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
        }
    }

    fn on_lookup(&mut self, id: kad::QueryId, result: kad::GetClosestPeersResult, last: bool) {
        let Some((target, _)) = self.lookups.get(&id) else {
            return;
        };
        let target = *target;
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let found: Vec<Multiaddr> = peers
            .into_iter()
            .filter(|p| p.peer_id == target)
            .flat_map(|p| p.addrs)
            .collect();
        if !found.is_empty() || last {
            if let Some((_, reply)) = self.lookups.remove(&id) {
                self.metrics.kademlia_lookup(!found.is_empty());
                if !found.is_empty() {
                    let _ = self.address_book.cast(AddressBookMessage::Add {
                        peer: target,
                        addresses: found.clone(),
                        source: Source::Kademlia,
                        subnet_node_id: None,
                    });
                }
                let _ = reply.send(found);
            }
            if let Some(mut query) = self
                .swarm
                .behaviour_mut()
                .kademlia
                .as_mut()
                .and_then(|kad| kad.query_mut(&id))
            {
                query.finish();
            }
        }
    }
}

/// The transport of a connection, for metrics.
fn transport(address: &Multiaddr) -> &'static str {
    use libp2p::multiaddr::Protocol;
    if address.iter().any(|p| matches!(p, Protocol::QuicV1)) {
        "quic"
    } else if address.iter().any(|p| matches!(p, Protocol::Tcp(_))) {
        "tcp"
    } else {
        "other"
    }
}
