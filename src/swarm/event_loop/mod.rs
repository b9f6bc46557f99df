//! The swarm's event loop: a task that polls the swarm and applies the
//! [`Command`]s its actor (`actors/swarm.rs`) forwards. It never waits on
//! another actor: it sends the address book [`Update`]s, answers reply
//! ports and publishes received gossip on a port.
//!
//! The loop dispatches; each concern is a part that owns its fields, takes
//! the swarm as an argument and is fed the events it cares about
//! (rust-libp2p's `on_swarm_event` habit):
//!
//! - `dials`: dials callers asked for, their waiters, failed dials;
//! - `gossip`: received messages out on a port, verdicts back, publishing;
//! - `kademlia`: peer lookups and routing-table entries;
//! - `reachability`: listen and external addresses, AutoNAT, relays, DCUtR;
//! - `connections`: upkeep, trimming, accept failures, the stop.

mod connections;
mod dials;
mod gossip;
mod kademlia;
mod reachability;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::ConnectedPoint,
    identify,
    swarm::{ConnectionError, ConnectionId, DialError, SwarmEvent},
};
use libp2p_gossipsub as gossipsub;
use ractor::RpcReplyPort;
use tokio::sync::mpsc;

use self::{
    connections::ConnectionPolicy, dials::Dials, gossip::Gossip, kademlia::Lookups,
    reachability::Reach,
};
pub use self::{
    dials::DialResult,
    gossip::{GossipMessage, GossipPort, MAX_PENDING_GOSSIP, Overloaded},
};
use crate::{
    discovery::{
        address_book::{AddressBook, Source, Update, Updates},
        peer_exchange::MAX_ANSWER_ADDRESSES,
    },
    metrics::Metrics,
    multiaddr::is_believable,
    streams::shared::Shared,
    swarm::{
        addresses::ListenAddresses,
        build::{Behaviour, BehaviourEvent, Built, Libp2pMetrics},
        config::Config,
    },
};

/// Commands queued for the event loop before senders wait.
const COMMAND_QUEUE: usize = 1024;

/// How often the loop checks its connections and relays.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);

/// What the swarm is asked to do (the swarm actor's messages).
#[derive(Debug)]
pub enum Command {
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

/// What the loop works with besides the swarm and its settings.
pub struct Handles {
    /// The address book's read view, to pick and resolve peers.
    pub(crate) book: AddressBook,
    /// Where learned addresses and dial outcomes go.
    pub(crate) updates: Updates,
    /// Where received GossipSub messages are published.
    pub(crate) gossip: GossipPort,
    /// Counts a GossipSub message ignored for overload.
    pub(crate) overloaded: Overloaded,
    /// The node's listen addresses, kept current here.
    pub(crate) listen_addrs: ListenAddresses,
    /// The connections, as the streams layer registered them.
    pub(crate) shared: Arc<Shared>,
    /// The node's metrics.
    pub(crate) metrics: Metrics,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

/// The task that polls the swarm and applies commands.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    /// rust-libp2p's metrics of the swarm's events.
    libp2p_metrics: Libp2pMetrics,
    commands: mpsc::Receiver<Command>,
    book: AddressBook,
    updates: Updates,
    shared: Arc<Shared>,
    metrics: Metrics,
    dials: Dials,
    gossip: Gossip,
    lookups: Lookups,
    reach: Reach,
    connections: ConnectionPolicy,
}

impl EventLoop {
    /// The loop of a built swarm, and where its commands go.
    pub(crate) fn new(
        built: Built,
        config: &Config,
        handles: Handles,
    ) -> (Self, mpsc::Sender<Command>) {
        let Built(swarm, libp2p_metrics) = built;
        let (sender, commands) = mpsc::channel(COMMAND_QUEUE);
        let Handles {
            book,
            updates,
            gossip,
            overloaded,
            listen_addrs,
            shared,
            metrics,
        } = handles;
        let event_loop = Self {
            swarm,
            libp2p_metrics,
            commands,
            book,
            updates,
            shared,
            dials: Dials::default(),
            gossip: Gossip::new(gossip, overloaded),
            lookups: Lookups::default(),
            reach: Reach::new(listen_addrs, &config.relays, metrics.clone()),
            connections: ConnectionPolicy::new(config, metrics.clone()),
            metrics,
        };
        (event_loop, sender)
    }

    /// Runs until the command channel closes (the actor is gone).
    pub(crate) async fn run(mut self) {
        self.reach.advertise(&mut self.swarm);
        self.reach.reserve(&mut self.swarm, false);
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                Some(verdict) = self.gossip.reported.recv() => Gossip::on_verdict(&mut self.swarm, verdict),
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = maintenance.tick() => self.maintain(),
            }
        }
    }

    /// Each second: enough connections, not too many, relays as needed.
    fn maintain(&mut self) {
        let swarm = &mut self.swarm;
        self.connections.keep_connected(swarm, &self.book);
        self.connections
            .trim(swarm, &self.shared, self.reach.relays_either_way());
        let closing = self.connections.closing();
        self.reach.reserve(swarm, closing);
    }

    fn on_command(&mut self, command: Command) {
        let swarm = &mut self.swarm;
        match command {
            Command::Dial {
                peer,
                addresses,
                reply,
            } => self.dial(peer, addresses, reply),
            Command::Bootstrap { peers } => self.bootstrap(peers),
            Command::FindPeer { peer, reply } => self.lookups.find_peer(swarm, peer, reply),
            Command::Publish {
                topic,
                data,
                retain,
            } => {
                let topic = gossipsub::IdentTopic::new(topic).hash();
                self.gossip.publish(swarm, topic, data, retain);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(swarm.listeners().cloned().collect());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(swarm.connected_peers().copied().collect());
            }
            Command::CloseConnections { reply } => self.connections.close_all(swarm, reply),
        }
    }

    /// One line per event source, each handing the event to one part.
    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.record(&event);
        let swarm = &mut self.swarm;
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_established(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                num_established,
                ..
            } => self.on_closed(peer_id, connection_id, num_established, cause),
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => self.on_dial_failed(peer, error),
            SwarmEvent::ListenerError { error, .. } => self.connections.on_listener_error(&error),
            event => self.reach.on_swarm_event(swarm, event),
        }
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        let swarm = &mut self.swarm;
        match event {
            BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                connection_id,
                info,
            }) => self.on_identify(peer_id, connection_id, info),
            BehaviourEvent::Gossipsub(event) => {
                let addresses = self.reach.listen_addrs();
                self.gossip.on_event(swarm, event, &self.shared, addresses)
            }
            BehaviourEvent::Kademlia(event) => {
                let ports = (&self.updates, &self.metrics);
                let addresses = self.reach.listen_addrs();
                self.lookups.on_event(swarm, event, ports, addresses)
            }
            BehaviourEvent::AutonatClient(event) => {
                let closing = self.connections.closing();
                self.reach.on_autonat(swarm, event, closing)
            }
            BehaviourEvent::RelayServer(event) => self.reach.on_relay_server(event),
            BehaviourEvent::Dcutr(event) => self.reach.on_dcutr(event),
            _ => {}
        }
    }

    /// A peer's identify feeds three parts: reachability (is it a relay?),
    /// Kademlia (its routing-table entry) and the book.
    fn on_identify(&mut self, peer: PeerId, connection: ConnectionId, info: identify::Info) {
        // A peer on another host cannot be reached at its loopback or
        // link-local addresses (and on ours they are another node's): keep
        // those only from a peer connected over one.
        let mut addresses = info.listen_addrs;
        let local = self
            .shared
            .connections
            .is_local_connection(&peer, connection);
        addresses.retain(|a| is_believable(a, local));
        // A peer may list any number: the first few are enough.
        addresses.truncate(MAX_ANSWER_ADDRESSES);
        self.reach
            .on_identify(peer, connection, &info.protocols, &addresses);
        kademlia::on_identify(&mut self.swarm, &peer, &info.protocols, &addresses);
        let _ = self
            .updates
            .send_message(Update::learned(peer, addresses, Source::Identify));
    }

    fn on_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        if self.connections.closing() {
            self.connections.refuse(&mut self.swarm, connection);
            self.dials.finish(peer, Err(Arc::new(DialError::Aborted)));
            return;
        }
        self.reach.on_established(connection, endpoint);
        self.connections.on_established(&self.swarm, peer, endpoint);
        if endpoint.is_dialer() {
            let address = endpoint.get_remote_address().clone();
            let _ = self
                .updates
                .send_message(Update::Confirmed { peer, address });
        }
        self.dials.finish(peer, Ok(()));
    }

    fn on_closed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        remaining: u32,
        cause: Option<ConnectionError>,
    ) {
        self.reach.on_closed(&peer, connection, remaining);
        let cause = cause.as_ref();
        self.connections
            .on_closed(&self.swarm, peer, remaining, cause);
    }

    fn on_dial_failed(&mut self, peer: PeerId, error: DialError) {
        let upkeep = self.connections.dial_failed(peer);
        let book = (&self.book, &self.updates);
        let reputation = &self.shared.reputation;
        self.dials
            .on_failed(&mut self.swarm, book, reputation, peer, error);
        // A failed upkeep dial frees its slot: the next peer is dialed at
        // once, not a second later (refused dials fail in microseconds).
        if upkeep {
            self.connections.keep_connected(&mut self.swarm, &self.book);
        }
    }

    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, reply: RpcReplyPort<DialResult>) {
        if self.connections.closing() {
            // The node is stopping: no new connection.
            let _ = reply.send(Err(Arc::new(DialError::Aborted)));
        } else if self.swarm.is_connected(&peer) {
            self.connections.used(peer);
            let _ = reply.send(Ok(()));
        } else {
            self.dials.dial(&mut self.swarm, peer, addresses, reply);
        }
    }

    /// Bootstrap peers: the first relays to choose, in Kademlia's routing
    /// table and the book (`manual`), and dialed; then the DHT is joined.
    fn bootstrap(&mut self, peers: Vec<(PeerId, Multiaddr)>) {
        let local = *self.swarm.local_peer_id();
        self.reach.bootstrap(peers.iter().map(|(p, _)| *p));
        // One list serves the whole subnet: a node skips its own entry.
        for (peer, address) in peers.into_iter().filter(|(p, _)| *p != local) {
            kademlia::add_bootstrap(&mut self.swarm, &peer, &address);
            let update = Update::learned(peer, vec![address.clone()], Source::Manual);
            let _ = self.updates.send_message(update);
            if let Err(error) = dials::dial_bootstrap(&mut self.swarm, peer, &address) {
                tracing::warn!(%peer, "cannot dial bootstrap peer {address}: {error}");
            }
        }
        kademlia::bootstrap(&mut self.swarm);
    }

    /// Has rust-libp2p's metrics count `event`.
    fn record(&self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        let metrics = &self.libp2p_metrics.recorder;
        metrics.record(event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                ..
            })) => {
                self.libp2p_metrics.gossip_messages.inc();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(e)) => metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => metrics.record(e),
            _ => {}
        }
    }
}
