//! `SwarmActor`: the only owner of the libp2p `Swarm` (built in
//! `src/swarm/`).
//!
//! The swarm is polled by an event loop in a task the actor owns; the actor
//! forwards its typed messages to that loop through a bounded channel. The
//! loop never waits on another actor: it only casts to the address book,
//! answers reply ports, and publishes each GossipSub message it receives on
//! an output port ([`GossipMessage`]) that consumers, such as the heartbeat
//! actor, subscribe to; it does not know them. Stream bytes do not pass
//! through here: see `src/streams/` for how streams reach protocols and
//! callers directly.

use std::{
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm, autonat,
    core::transport::ListenerId,
    dcutr, gossipsub, identify, kad,
    multiaddr::Protocol,
    relay,
    swarm::{
        ConnectionId, DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use ractor::{Actor, ActorProcessingErr, ActorRef, OutputPort, RpcReplyPort};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    task::JoinHandle,
};

use super::address_book::AddressBookMessage;
use crate::{
    discovery::{
        address_book::{AddressBook, Source, without_peer_id},
        heartbeat::Rejection,
        peer_exchange::MAX_ANSWER_ADDRESSES,
    },
    metrics::Metrics,
    streams::shared::Shared,
    swarm::{
        Behaviour, BehaviourEvent, Built, Libp2pMetrics,
        addresses::{ListenAddresses, Reachability, Tested, is_believable, is_circuit, is_local},
        relays::{Closed, Relays},
        trim::{self, Trim},
        upkeep::Upkeep,
    },
    warnings::Warnings,
};

/// Messages queued for the event loop before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// Addresses callers gave for a peer that wait for a dial already under
/// way to it to end; more are not kept.
const MAX_UNTRIED_ADDRESSES: usize = 16;

/// Callers waiting on dials to one peer; more get an error at once.
const MAX_DIAL_WAITERS: usize = 4096;

/// Kademlia lookups under way at once; more are answered empty at once.
const MAX_LOOKUPS: usize = 256;

/// GossipSub messages awaiting a verdict at once; more are ignored unread
/// (and counted as `overloaded` heartbeat rejections).
pub const MAX_PENDING_GOSSIP: usize = 1024;

/// A GossipSub message received on a subscribed topic, published on the
/// swarm's output port. Whoever validates its topic reports a verdict with
/// [`GossipMessage::report`]; a message whose every copy is dropped without
/// one (no subscriber, a validator that failed) is reported `Ignore`, so
/// GossipSub gets a verdict for every message it handed over.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it was published on.
    pub topic: gossipsub::TopicHash,
    /// The peer that forwarded it.
    pub propagation_source: PeerId,
    /// The verified signer, if any.
    pub signer: Option<PeerId>,
    /// The message's data.
    pub data: Bytes,
    /// Whether it came over a loopback or link-local connection: only then
    /// may loopback or link-local addresses in it be believed.
    pub local: bool,
    verdict: Arc<Verdict>,
}

impl GossipMessage {
    /// Reports the application's verdict to GossipSub (the first report of
    /// a message counts; later ones are ignored).
    pub fn report(&self, acceptance: gossipsub::MessageAcceptance) {
        self.verdict.report(acceptance);
    }
}

/// A message's verdict, owed to GossipSub: sent once, with the permit that
/// counts the message against [`MAX_PENDING_GOSSIP`] until the swarm's loop
/// has applied it.
#[derive(Debug)]
struct Verdict {
    message_id: gossipsub::MessageId,
    propagation_source: PeerId,
    pending: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
    verdicts: mpsc::Sender<Reported>,
}

/// A verdict on its way to the swarm's loop.
#[derive(Debug)]
struct Reported {
    message_id: gossipsub::MessageId,
    propagation_source: PeerId,
    acceptance: gossipsub::MessageAcceptance,
    _pending: OwnedSemaphorePermit,
}

impl Verdict {
    fn report(&self, acceptance: gossipsub::MessageAcceptance) {
        let Some(pending) = self.pending.lock().expect("verdict lock poisoned").take() else {
            return;
        };
        // Never full: the channel holds MAX_PENDING_GOSSIP verdicts, and
        // each holds one of the MAX_PENDING_GOSSIP permits.
        let _ = self.verdicts.try_send(Reported {
            message_id: self.message_id.clone(),
            propagation_source: self.propagation_source,
            acceptance,
            _pending: pending,
        });
    }
}

impl Drop for Verdict {
    fn drop(&mut self) {
        self.report(gossipsub::MessageAcceptance::Ignore);
    }
}

/// The port the swarm publishes received GossipSub messages on.
pub type GossipPort = Arc<OutputPort<GossipMessage>>;

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
    /// Close every connection gracefully, so that what was written on
    /// them (a response, say) is flushed; from then on, refuse dials and
    /// close every connection that comes up.
    CloseConnections {
        /// Answered once no connection is left.
        reply: RpcReplyPort<()>,
    },
}

/// Time a stopping swarm actor gives its connections to close gracefully.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the loop checks that it has `min_peers` connections.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

/// Owns the swarm. Its fields are the actor's fixed settings; the swarm
/// itself is its argument.
#[derive(Debug)]
pub struct SwarmActor {
    /// Where learned addresses and dial outcomes go.
    pub(crate) address_book: ActorRef<AddressBookMessage>,
    /// The address book's read view, to pick peers to connect to.
    pub(crate) book: AddressBook,
    /// Connections the node keeps at least, dialing known peers (0: off).
    pub(crate) min_peers: usize,
    /// Connected peers above which the least recently used are closed
    /// (`NodeBuilder::max_peers`).
    pub(crate) max_peers: usize,
    /// How long trimming spares a peer that connected or was used.
    pub(crate) trim_grace: Duration,
    /// Where received GossipSub messages are published.
    pub(crate) gossip: GossipPort,
    /// The node's listen addresses, kept current here.
    pub(crate) listen_addrs: ListenAddresses,
    /// The connections, as the streams layer registered them.
    pub(crate) shared: Arc<Shared>,
    /// Relays to hold a reservation on.
    pub(crate) relays: Vec<Multiaddr>,
    /// The node's metrics.
    pub(crate) metrics: Metrics,
}

/// The actor's state: the loop's command channel and task.
#[derive(Debug)]
pub struct SwarmState {
    commands: mpsc::Sender<SwarmMessage>,
    event_loop: JoinHandle<()>,
}

impl Actor for SwarmActor {
    type Msg = SwarmMessage;
    type State = SwarmState;
    /// A built swarm whose listeners are already bound.
    type Arguments = Built;

    async fn pre_start(
        &self,
        myself: ActorRef<SwarmMessage>,
        swarm: Built,
    ) -> Result<SwarmState, ActorProcessingErr> {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let (verdicts, reported) = mpsc::channel(MAX_PENDING_GOSSIP);
        let Built(swarm, libp2p_metrics) = swarm;
        let event_loop = EventLoop {
            swarm,
            libp2p_metrics,
            commands: receiver,
            address_book: self.address_book.clone(),
            dials: HashMap::new(),
            upkeep: Upkeep::new(),
            trim: Trim::new(self.trim_grace),
            reserving: HashSet::new(),
            descriptors_warnings: Warnings::every(Duration::from_secs(10)),
            lookups: HashMap::new(),
            gossip: self.gossip.clone(),
            pending_gossip: Arc::new(Semaphore::new(MAX_PENDING_GOSSIP)),
            verdicts,
            reported,
            book: self.book.clone(),
            min_peers: self.min_peers,
            max_peers: self.max_peers,
            listen_addrs: self.listen_addrs.clone(),
            relays: Relays::new(&self.relays, tokio::time::Instant::now()),
            tested: Tested::default(),
            dialed: HashMap::new(),
            shared: self.shared.clone(),
            advertised: Vec::new(),
            metrics: self.metrics.clone(),
            unsent: None,
            closing: None,
        };
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

    /// A graceful stop closes the connections first, so that responses
    /// already written reach their callers; the swarm goes when the state
    /// is dropped.
    async fn post_stop(
        &self,
        _myself: ActorRef<SwarmMessage>,
        state: &mut SwarmState,
    ) -> Result<(), ActorProcessingErr> {
        Self::close_connections(state).await;
        Ok(())
    }
}

impl SwarmActor {
    /// Closes the connections gracefully, within [`CLOSE_TIMEOUT`].
    async fn close_connections(state: &SwarmState) {
        let (reply, closed) = tokio::sync::oneshot::channel();
        let asked = state.commands.send(SwarmMessage::CloseConnections {
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

/// Callers waiting for a connection to one peer, and the addresses they
/// gave that no dial has tried yet: given while another dial to the peer
/// (Kademlia's, say, with other addresses) was under way, they are tried
/// when it fails.
#[derive(Debug, Default)]
struct PendingDial {
    waiters: Vec<RpcReplyPort<DialResult>>,
    untried: Vec<Multiaddr>,
}

/// The task that polls the swarm and applies commands.
struct EventLoop {
    swarm: Swarm<Behaviour>,
    /// rust-libp2p's metrics of the swarm's events.
    libp2p_metrics: Libp2pMetrics,
    commands: mpsc::Receiver<SwarmMessage>,
    address_book: ActorRef<AddressBookMessage>,
    dials: HashMap<PeerId, PendingDial>,
    /// Which known peers the connection upkeep dials next.
    upkeep: Upkeep,
    /// Which connections to close above `max_peers`.
    trim: Trim,
    /// Peers holding a relay reservation on this node: their connection
    /// is their address, never trimmed.
    reserving: HashSet<PeerId>,
    /// Running out of file descriptors, said at most every 10 s.
    descriptors_warnings: Warnings,
    lookups: HashMap<kad::QueryId, (PeerId, RpcReplyPort<Vec<Multiaddr>>)>,
    gossip: GossipPort,
    /// Permits of GossipSub messages awaiting a verdict.
    pending_gossip: Arc<Semaphore>,
    /// Where verdicts on published messages come back.
    verdicts: mpsc::Sender<Reported>,
    reported: mpsc::Receiver<Reported>,
    book: AddressBook,
    min_peers: usize,
    max_peers: usize,
    listen_addrs: ListenAddresses,
    /// The relays the node holds reservations on, and those it may choose.
    relays: Relays,
    /// What AutoNAT v2 found about the node's addresses.
    tested: Tested,
    /// The address each direct outbound connection was dialed at: where a
    /// relay server found on it is reached.
    dialed: HashMap<ConnectionId, Multiaddr>,
    /// The connections (which are over loopback: only such a peer may give
    /// us loopback addresses).
    shared: Arc<Shared>,
    /// The listen addresses this loop made external addresses (what
    /// identify tells peers); others (an operator's) are left alone.
    advertised: Vec<Multiaddr>,
    metrics: Metrics,
    /// The last retained message that could not be published because no
    /// peer had subscribed to its topic yet (a node's first heartbeat):
    /// published as soon as one does, not a whole interval later.
    unsent: Option<(gossipsub::TopicHash, Vec<u8>)>,
    /// Set once the node is stopping: who waits for the last connection to close.
    closing: Option<Vec<RpcReplyPort<()>>>,
}

impl EventLoop {
    async fn run(mut self) {
        self.advertise();
        self.reserve();
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                Some(verdict) = self.reported.recv() => self.on_verdict(verdict),
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = maintenance.tick() => {
                    self.keep_connected();
                    self.trim_connections();
                    self.reserve();
                }
            }
        }
    }

    /// Dials known, unconnected peers while the node has fewer than
    /// `min_peers` connections, so that GossipSub has a mesh to work with
    /// even when every node bootstrapped to the same one.
    fn keep_connected(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let connected = self.swarm.connected_peers().count();
        if connected >= self.min_peers {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let wanted = self.min_peers - connected;
        let known: Vec<PeerId> = self
            .book
            .peers()
            .into_iter()
            .filter(|p| *p != local)
            .collect();
        let swarm = &self.swarm;
        let candidates =
            self.upkeep
                .candidates(known, wanted, |p| swarm.is_connected(p), Instant::now());
        for peer in candidates {
            let opts = DialOpts::peer_id(peer)
                .addresses(self.book.addresses(&peer))
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if self.swarm.dial(opts).is_err() {
                // Not started (another dial is under way, or no address):
                // no event will say how it ended.
                self.upkeep.failed(peer, Instant::now());
            }
        }
    }

    /// Closes the least recently used connections while more than
    /// `max_peers` peers are connected (see [`trim`]), sparing peers in a
    /// GossipSub mesh, with a stream of ours open, holding a relay
    /// reservation here or serving one to us.
    fn trim_connections(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let now = Instant::now();
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in &connected {
            if self.shared.connections.in_use(peer) {
                self.trim.used(*peer, now);
            }
        }
        self.metrics.connections_idle(self.trim.idle(now));
        if connected.len() <= self.max_peers {
            return;
        }
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .collect();
        let relays: HashSet<PeerId> = self.relays.reserved_peers().collect();
        let excess = self.trim.excess(
            connected.len(),
            self.max_peers,
            trim::low_watermark(self.max_peers),
            |p| mesh.contains(p) || relays.contains(p) || self.reserving.contains(p),
            now,
        );
        if excess.is_empty() {
            return;
        }
        tracing::debug!(
            connected = connected.len(),
            closing = excess.len(),
            "over max_peers: closing the least recently used connections"
        );
        for peer in excess {
            // Not asked again: it is forgotten when its connections close.
            self.trim.disconnected(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
            self.metrics.connection_trimmed();
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
            SwarmMessage::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            SwarmMessage::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            SwarmMessage::CloseConnections { reply } => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                self.closing.get_or_insert_default().push(reply);
                self.answer_closing();
            }
        }
    }

    /// Answers those waiting for the connections to close, once none is left.
    fn answer_closing(&mut self) {
        if self.swarm.connected_peers().next().is_none() {
            for reply in self.closing.iter_mut().flat_map(std::mem::take) {
                let _ = reply.send(());
            }
        }
    }

    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, reply: RpcReplyPort<DialResult>) {
        if self.closing.is_some() {
            // The node is stopping: no new connection.
            let _ = reply.send(Err(Arc::new(DialError::Aborted)));
            return;
        }
        if self.swarm.is_connected(&peer) {
            self.trim.used(peer, Instant::now());
            let _ = reply.send(Ok(()));
            return;
        }
        let pending = self.dials.entry(peer).or_default();
        if pending.waiters.len() >= MAX_DIAL_WAITERS {
            let _ = reply.send(Err(Arc::new(DialError::Aborted)));
            return;
        }
        pending.waiters.push(reply);
        for address in addresses {
            if pending.untried.len() < MAX_UNTRIED_ADDRESSES && !pending.untried.contains(&address)
            {
                pending.untried.push(address);
            }
        }
        self.start_dial(peer);
    }

    /// Dials `peer` at the addresses its waiters gave (and those the
    /// behaviours know), unless a dial to it is under way: then they are
    /// tried if that one fails.
    fn start_dial(&mut self, peer: PeerId) {
        let untried = self
            .dials
            .get_mut(&peer)
            .map(|p| std::mem::take(&mut p.untried))
            .unwrap_or_default();
        let opts = DialOpts::peer_id(peer)
            .addresses(untried.clone())
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {}
            // Another dial to the peer is under way (the connection upkeep,
            // a bootstrap, Kademlia): its success answers these waiters
            // too; if it fails, these addresses are tried.
            Err(DialError::DialPeerConditionFalse(_)) => {
                if let Some(pending) = self.dials.get_mut(&peer) {
                    pending.untried = untried;
                }
            }
            Err(error) => self.finish_dials(peer, Err(Arc::new(error))),
        }
    }

    fn finish_dials(&mut self, peer: PeerId, result: DialResult) {
        for waiter in self.dials.remove(&peer).unwrap_or_default().waiters {
            let _ = waiter.send(result.clone());
        }
    }

    fn bootstrap(&mut self, peers: Vec<(PeerId, Multiaddr)>) {
        let local = *self.swarm.local_peer_id();
        self.relays.bootstrap(peers.iter().map(|(p, _)| *p));
        // One list serves the whole subnet: a node skips its own entry.
        for (peer, address) in peers.into_iter().filter(|(p, _)| *p != local) {
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
        self.record(&event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            })) => {
                // A peer on another host cannot be reached at its loopback
                // or link-local addresses (and on ours they are another
                // node's): keep those only from a peer connected over one.
                let mut addresses = info.listen_addrs;
                let local = self
                    .shared
                    .connections
                    .is_local_connection(&peer_id, connection_id);
                addresses.retain(|a| is_believable(a, local));
                // A peer may list any number: the first few are enough.
                addresses.truncate(MAX_ANSWER_ADDRESSES);
                if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    // A relay server: reached where it was dialed, or at
                    // the first direct address it advertises.
                    let at = self
                        .dialed
                        .get(&connection_id)
                        .cloned()
                        .or_else(|| addresses.iter().find(|a| !is_circuit(a)).cloned());
                    if let Some(address) = at {
                        self.relays.offered(peer_id, address);
                    }
                }
                if let Some(kad) = self.swarm.behaviour_mut().kademlia.as_mut()
                    && info
                        .protocols
                        .iter()
                        .any(|p| kad.protocol_names().contains(p))
                {
                    replace_kademlia_addresses(kad, &peer_id, &addresses);
                }
                let _ = self.address_book.cast(AddressBookMessage::Add {
                    peer: peer_id,
                    addresses,
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
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                self.relays.reserved(listener_id);
                let peer = *self.swarm.local_peer_id();
                // A circuit address ends in the node's own peer id already.
                let full = address.clone().with_p2p(peer).unwrap_or_else(|a| a);
                tracing::info!("listening on {full}");
                self.listen_addrs.add(address);
                self.advertise();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                // A closed listener's addresses go with it (libp2p reports
                // them here, not as expired addresses).
                for address in &addresses {
                    self.listen_addrs.remove(address);
                }
                self.advertise();
                self.listener_closed(listener_id, reason.err());
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(autonat::v2::client::Event {
                tested_addr,
                server,
                result,
                ..
            })) => self.on_autonat(tested_addr, server, result.map_err(|e| e.to_string())),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => match event {
                relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                    self.reserving.insert(src_peer_id);
                }
                relay::Event::ReservationClosed { src_peer_id }
                | relay::Event::ReservationTimedOut { src_peer_id } => {
                    self.reserving.remove(&src_peer_id);
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => {
                match &result {
                    Ok(_) => {
                        tracing::info!(peer = %remote_peer_id, "hole punching made a direct connection")
                    }
                    Err(error) => {
                        tracing::info!(peer = %remote_peer_id, "hole punching failed: {error}")
                    }
                }
                self.metrics.hole_punch(result.is_ok());
            }
            // A relay reservation confirms its circuit address too: that
            // one is a listen address already.
            SwarmEvent::ExternalAddrConfirmed { address } if !is_circuit(&address) => {
                tracing::info!("reachable from other hosts at {address} (AutoNAT)");
                self.listen_addrs.confirm(address);
                self.advertise();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.listen_addrs.unconfirm(&address);
                self.advertise();
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!("no longer listening on {address}");
                self.listen_addrs.remove(&address);
                self.advertise();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } if self.closing.is_some() => {
                // The node is stopping: a connection that comes up now (an
                // inbound one, a dial already under way) is closed too.
                self.swarm.close_connection(connection_id);
                self.finish_dials(peer_id, Err(Arc::new(DialError::Aborted)));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if endpoint.is_dialer() && !is_circuit(endpoint.get_remote_address()) {
                    let address = endpoint.get_remote_address().clone();
                    self.dialed.insert(connection_id, address);
                }
                self.upkeep.connected(&peer_id);
                self.trim.used(peer_id, Instant::now());
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
                let upkeeps = self.upkeep.failed(peer, Instant::now());
                // An address that answered with another identity (or our
                // own) is not the peer's: forget it, whoever told of it.
                let mut forgot = false;
                if let DialError::WrongPeerId { address, .. } | DialError::LocalPeerId { address } =
                    &error
                {
                    forgot = self.book.forget(&peer, address);
                    self.shared.reputation.wrong_peer_id(peer, address);
                    tracing::debug!(%peer, %address, "forgot an address that answered with another peer id");
                }
                if let DialError::Transport(failed) = &error {
                    let addresses = failed.iter().map(|(a, _)| a.clone()).collect();
                    let _ = self
                        .address_book
                        .cast(AddressBookMessage::DialFailed { peer, addresses });
                }
                if !self.swarm.is_connected(&peer) {
                    // Addresses a caller gave while this dial was under way
                    // (those it did not try) get their own dial.
                    let tried: Vec<Multiaddr> = match &error {
                        DialError::Transport(failed) => failed
                            .iter()
                            .map(|(a, _)| without_peer_id(a.clone()))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let untried = self.dials.get_mut(&peer).map(|p| {
                        p.untried
                            .retain(|a| !tried.contains(&without_peer_id(a.clone())));
                        !p.untried.is_empty()
                    });
                    let others: Vec<Multiaddr> = if forgot {
                        self.book.addresses(&peer)
                    } else {
                        Vec::new()
                    };
                    let retry = !others.is_empty() && self.dials.contains_key(&peer);
                    if retry && let Some(pending) = self.dials.get_mut(&peer) {
                        pending
                            .untried
                            .extend(others.into_iter().take(MAX_ANSWER_ADDRESSES));
                        pending.untried.truncate(MAX_ANSWER_ADDRESSES);
                    }
                    if untried == Some(true) || retry {
                        // The one dial a poisoned address failed (rust-libp2p
                        // fails the whole dial on a wrong peer id) is made
                        // again without it.
                        self.start_dial(peer);
                    } else {
                        self.finish_dials(peer, Err(Arc::new(error)));
                    }
                }
                // A failed upkeep dial frees its slot: the next peer is dialed at
                // once, not a second later (refused dials fail in microseconds).
                if upkeeps {
                    self.keep_connected();
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                // Accepting failed; the listener goes on. Out of file
                // descriptors is said plainly, at most every 10 s.
                if crate::error::is_out_of_descriptors(&error) {
                    if let Some(suppressed) = self.descriptors_warnings.allow(Instant::now()) {
                        let limit = rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft);
                        tracing::warn!(
                            limit,
                            suppressed,
                            "accepting connections fails: the process is out of file descriptors; raise the open-file limit or run fewer nodes per process"
                        );
                    }
                } else {
                    tracing::debug!("accepting a connection failed: {error}");
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                num_established,
                ..
            } => {
                self.dialed.remove(&connection_id);
                if num_established == 0 {
                    self.trim.disconnected(&peer_id);
                    self.reserving.remove(&peer_id);
                }
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.metrics
                    .connected_peers(self.swarm.connected_peers().count());
                if self.closing.is_some() {
                    self.answer_closing();
                }
            }
            _ => {}
        }
    }

    /// Has rust-libp2p's metrics count `event`.
    fn record(&self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        let metrics = &self.libp2p_metrics.recorder;
        metrics.record(event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => metrics.record(e),
            _ => {}
        }
    }

    /// Publishes a received message on the gossip port, or, with too many
    /// awaiting a verdict already, ignores it unread.
    fn on_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let Ok(permit) = self.pending_gossip.clone().try_acquire_owned() else {
            self.metrics
                .heartbeat_rejected(Rejection::Overloaded.name());
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
            return;
        };
        // Loopback addresses in it are believed only over a loopback
        // connection, and from its own sender unless this node is on one
        // machine with all its peers (its mesh forwards their heartbeats).
        let local = self.shared.connections.is_local(&propagation_source)
            && (message.source == Some(propagation_source) || self.listen_addrs.one_machine());
        self.gossip.send(GossipMessage {
            topic: message.topic,
            local,
            propagation_source,
            signer: message.source,
            data: Bytes::from(message.data),
            verdict: Arc::new(Verdict {
                message_id,
                propagation_source,
                pending: std::sync::Mutex::new(Some(permit)),
                verdicts: self.verdicts.clone(),
            }),
        });
    }

    /// What AutoNAT v2 found of one address: the node's reachability
    /// follows (logged when it changes); relays are chosen or released on
    /// the next upkeep.
    fn on_autonat(&mut self, address: Multiaddr, server: PeerId, result: Result<(), String>) {
        if let Err(error) = &result {
            tracing::debug!(%server, "AutoNAT: not reachable at {address}: {error}");
        }
        // A circuit address says nothing of the node's own reachability; a
        // loopback or link-local one (a listener's, translated) nothing
        // about other hosts, except on a node that has only those.
        if is_circuit(&address) || (is_local(&address) && !self.listen_addrs.one_machine()) {
            return;
        }
        let before = self.listen_addrs.reachability();
        let now = self.tested.record(address, result.is_ok());
        if now != before {
            match now {
                Reachability::Private => tracing::warn!(
                    "AutoNAT: other hosts cannot reach this node (behind NAT or a firewall); \
                     it will be reached through relays"
                ),
                Reachability::Public => tracing::info!("AutoNAT: reachable from other hosts"),
                Reachability::Unknown => {}
            }
            self.listen_addrs.set_reachability(now);
            self.reserve();
        }
    }

    /// Chooses or releases relays as the node's reachability asks, then
    /// listens through each relay without a reservation whose retry time
    /// has come (the relay client dials the relay and reserves a slot; it
    /// renews the reservation while the listener lives).
    fn reserve(&mut self) {
        if self.closing.is_some() {
            return;
        }
        let now = tokio::time::Instant::now();
        let reachability = self.listen_addrs.reachability();
        for released in self.relays.choose(reachability, now) {
            self.swarm.remove_listener(released);
        }
        for relay in self.relays.due(now) {
            let circuit = relay.address.clone().with(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit) {
                Ok(id) => relay.listener = Some(id),
                Err(error) => {
                    tracing::warn!("cannot listen through relay {}: {error}", relay.address);
                    relay.failed(now);
                }
            }
        }
    }

    /// A listener closed: if it held (or was making) a relay reservation,
    /// a configured relay is tried again after a backoff; a chosen one
    /// makes way for another.
    fn listener_closed(&mut self, id: ListenerId, error: Option<std::io::Error>) {
        let reason = error
            .as_ref()
            .map_or("it ended".to_owned(), ToString::to_string);
        match self.relays.closed(id, tokio::time::Instant::now()) {
            Closed::NotARelay => {}
            Closed::Retry(address, wait) => tracing::warn!(
                "no reservation on relay {address} ({reason}); trying again in {wait:?}"
            ),
            Closed::Dropped(address) => {
                tracing::info!("no reservation on relay {address} ({reason}); choosing another")
            }
        }
    }

    /// Makes what the node advertises (see `ListenAddresses::advertised`)
    /// its external addresses, which identify tells peers.
    fn advertise(&mut self) {
        // The operator's external addresses are advertised even on a node
        // that otherwise has only loopback ones.
        let mut wanted = self.listen_addrs.advertised();
        for external in self.listen_addrs.external() {
            if !wanted.contains(external) {
                wanted.insert(0, external.clone());
            }
        }
        for stale in self.advertised.iter().filter(|a| !wanted.contains(a)) {
            self.swarm.remove_external_address(stale);
        }
        for address in wanted.iter().filter(|a| !self.advertised.contains(a)) {
            self.swarm.add_external_address(address.clone());
        }
        if wanted != self.advertised {
            // Connected peers hear of it now (a new circuit address, say),
            // not at their next identify.
            let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
            self.swarm.behaviour_mut().identify.push(peers);
        }
        self.advertised = wanted;
    }

    /// Applies a verdict; its permit goes back with it.
    fn on_verdict(&mut self, verdict: Reported) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                &verdict.message_id,
                &verdict.propagation_source,
                verdict.acceptance,
            );
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
        // Loopback or link-local addresses from the DHT are believed only
        // on a node that has nothing else (a subnet on one machine).
        let one_machine = self.listen_addrs.one_machine();
        let found: Vec<Multiaddr> = peers
            .into_iter()
            .filter(|p| p.peer_id == target)
            .flat_map(|p| p.addrs)
            .filter(|a| is_believable(a, one_machine))
            .take(MAX_ANSWER_ADDRESSES)
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
    if is_circuit(address) {
        "relay"
    } else if address.iter().any(|p| matches!(p, Protocol::QuicV1)) {
        "quic"
    } else if address.iter().any(|p| matches!(p, Protocol::Tcp(_))) {
        "tcp"
    } else {
        "other"
    }
}

/// Sets `peer`'s addresses in Kademlia's routing table to `addresses` (at
/// most [`MAX_ANSWER_ADDRESSES`]): what a previous identify listed and this
/// one does not is removed, so a peer that reconnects with new addresses
/// each time cannot grow its entry (which Kademlia serves to others).
fn replace_kademlia_addresses(
    kad: &mut libp2p::kad::Behaviour<libp2p::kad::store::MemoryStore>,
    peer: &PeerId,
    addresses: &[Multiaddr],
) {
    for address in addresses {
        kad.add_address(peer, address.clone());
    }
    let key = libp2p::kad::KBucketKey::from(*peer);
    let stale: Vec<Multiaddr> = kad
        .kbucket(*peer)
        .map(|bucket| {
            bucket
                .iter()
                .filter(|entry| *entry.node.key == key)
                .flat_map(|entry| entry.node.value.iter().cloned().collect::<Vec<_>>())
                .filter(|a| !addresses.contains(&without_peer_id(a.clone())))
                .collect()
        })
        .unwrap_or_default();
    for address in stale {
        kad.remove_address(peer, &address);
    }
}

#[cfg(test)]
mod tests {
    use gossipsub::MessageAcceptance;

    use super::*;

    fn verdict(permits: &Arc<Semaphore>, verdicts: &mpsc::Sender<Reported>) -> Verdict {
        Verdict {
            message_id: gossipsub::MessageId::new(b"m"),
            propagation_source: PeerId::random(),
            pending: std::sync::Mutex::new(Some(permits.clone().try_acquire_owned().unwrap())),
            verdicts: verdicts.clone(),
        }
    }

    #[test]
    fn a_message_gets_exactly_one_verdict_and_its_permit_returns_with_it() {
        let permits = Arc::new(Semaphore::new(1));
        let (verdicts, mut reported) = mpsc::channel(MAX_PENDING_GOSSIP);

        // Reported once: later reports and the drop add nothing.
        let first = verdict(&permits, &verdicts);
        first.report(MessageAcceptance::Accept);
        first.report(MessageAcceptance::Reject);
        drop(first);
        let got = reported.try_recv().unwrap();
        assert!(matches!(got.acceptance, MessageAcceptance::Accept));
        assert!(reported.try_recv().is_err());
        assert_eq!(permits.available_permits(), 0, "held until applied");
        drop(got);
        assert_eq!(permits.available_permits(), 1);

        // Dropped without a verdict (no validator): reported `Ignore`.
        drop(verdict(&permits, &verdicts));
        let got = reported.try_recv().unwrap();
        assert!(matches!(got.acceptance, MessageAcceptance::Ignore));
    }
}
