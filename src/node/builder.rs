//! `NodeBuilder`: a node's settings, and starting it: the swarm built and
//! listening, then the actors under their supervisor.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, TransportError, identity::Keypair, swarm::SwarmEvent};
use ractor::{Actor, ActorCell, ActorRef, OutputPort};

use super::{Inner, Node};
use crate::{
    actors::supervisor::{NodeActors, NodeMessage, NodeSupervisor},
    call::connect::Connector,
    destination::Destination,
    discovery::{
        address_book::{self, AddressBook},
        heartbeat,
        lookup::Lookup,
        peer_exchange::PeerExchange,
        registry::Registry,
        template_heartbeat,
    },
    error::StartError,
    metrics::Metrics,
    reputation,
    streams::{gate::Gate, shared::Shared},
    swarm::{
        self, SwarmOptions,
        addresses::{ListenAddresses, is_local},
    },
};

/// Builds a [`Node`].
pub struct NodeBuilder {
    keypair: Option<Keypair>,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    idle_connection_timeout: Duration,
    subnet_id: u64,
    heartbeat: Option<heartbeat::Config>,
    registry: Option<Arc<dyn Registry>>,
    gating: bool,
    gating_fail_open: bool,
    peer_exchange: bool,
    kademlia: bool,
    address_book: address_book::Config,
    discovery_timeout: Duration,
    min_peers: usize,
    max_peers: usize,
    trim_grace: Duration,
    gossip_queue: usize,
    metrics_label: String,
    noise_names: Vec<&'static str>,
    gossipsub_protocol: Option<String>,
    max_inbound_connections: u32,
    lazy_negotiation: bool,
    shutdown_grace: Duration,
    relay_server: Option<libp2p::relay::Config>,
    relays: Vec<Multiaddr>,
    external: Vec<Multiaddr>,
    hole_punching: bool,
    reputation: reputation::Config,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            keypair: None,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            idle_connection_timeout: Self::DEFAULT_IDLE_CONNECTION_TIMEOUT,
            subnet_id: 0,
            heartbeat: None,
            registry: None,
            gating: false,
            gating_fail_open: false,
            peer_exchange: true,
            kademlia: true,
            address_book: address_book::Config::default(),
            discovery_timeout: Self::DEFAULT_DISCOVERY_TIMEOUT,
            min_peers: Self::DEFAULT_MIN_PEERS,
            max_peers: Self::DEFAULT_MAX_PEERS,
            trim_grace: Self::DEFAULT_TRIM_GRACE,
            gossip_queue: Self::DEFAULT_GOSSIP_QUEUE,
            metrics_label: "0".into(),
            noise_names: vec![crate::swarm::security::NOISE],
            gossipsub_protocol: None,
            max_inbound_connections: Self::DEFAULT_MAX_INBOUND_CONNECTIONS,
            lazy_negotiation: false,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            relay_server: None,
            relays: Vec::new(),
            external: Vec::new(),
            hole_punching: true,
            reputation: reputation::Config::default(),
        }
    }
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("subnet_id", &self.subnet_id)
            .field("heartbeat", &self.heartbeat)
            .field("registry", &self.registry.is_some())
            .field("gating", &self.gating)
            .field("gating_fail_open", &self.gating_fail_open)
            .field("peer_exchange", &self.peer_exchange)
            .field("kademlia", &self.kademlia)
            .finish()
    }
}

impl NodeBuilder {
    /// How long an idle connection is kept: 60 s.
    pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
    /// Time a call by peer id spends asking peers and the DHT: 5 s.
    pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Connections a node keeps at least, dialing peers from its address
    /// book: 8.
    pub const DEFAULT_MIN_PEERS: usize = 8;
    /// Peers a node stays connected to at most before it closes the least
    /// recently used: 64.
    pub const DEFAULT_MAX_PEERS: usize = 64;
    /// GossipSub messages waiting to be sent to one peer at most: 32
    /// (rust-libp2p's default is 5,000).
    pub const DEFAULT_GOSSIP_QUEUE: usize = 32;
    /// How long trimming spares a peer that connected or was used: 60 s.
    pub const DEFAULT_TRIM_GRACE: Duration = Duration::from_secs(60);
    /// Established inbound connections a node accepts at most: 512. Beyond,
    /// connections are denied (and at most 64 may be setting up at once,
    /// and 4 established per peer).
    pub const DEFAULT_MAX_INBOUND_CONNECTIONS: u32 = 512;
    /// Time `build` waits for each listener to report its first address: 10 s.
    pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
    /// Time a wildcard listener that reported only loopback or link-local
    /// addresses is given to report one other hosts can reach: 250 ms.
    const SETTLE: Duration = Duration::from_millis(250);
    /// Time a graceful shutdown lets running handlers finish: 10 s.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

    /// Uses `keypair` as the node's identity (default: a new Ed25519 key).
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Adds a listen address, e.g. `/ip4/127.0.0.1/tcp/0` or
    /// `/ip4/127.0.0.1/udp/0/quic-v1`.
    pub fn listen(mut self, address: Multiaddr) -> Self {
        self.listen.push(address);
        self
    }

    /// Adds a bootstrap peer: an address ending in `/p2p/<peer id>`. The
    /// node connects to it at start and, with Kademlia, joins the DHT there.
    pub fn bootstrap(mut self, address: Multiaddr) -> Self {
        self.bootstrap.push(address);
        self
    }

    /// Sets the subnet's id (default 0): it names the heartbeat topic and
    /// the Kademlia protocol.
    pub fn subnet(mut self, subnet_id: u64) -> Self {
        self.subnet_id = subnet_id;
        self
    }

    /// Publishes and validates heartbeats with `config` (off by default).
    /// Its subnet id also becomes the node's.
    pub fn heartbeat(mut self, config: heartbeat::Config) -> Self {
        self.subnet_id = config.subnet_id();
        self.heartbeat = Some(config);
        self
    }

    /// Reads the subnet's members from `registry` into the address book.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Refuses connections from peers outside the registry (off by default).
    pub fn gating(mut self, on: bool) -> Self {
        self.gating = on;
        self
    }

    /// With gating: admit every peer until the registry is first read, and
    /// a peer the registry could not be asked about ([`Registry::check`]
    /// failed): fail open. Off by default: fail closed, nobody before the
    /// first good read, and a failed question refuses the peer.
    pub fn gating_fail_open(mut self, on: bool) -> Self {
        self.gating_fail_open = on;
        self
    }

    /// Serves and uses peer exchange (on by default).
    pub fn peer_exchange(mut self, on: bool) -> Self {
        self.peer_exchange = on;
        self
    }

    /// Runs Kademlia and uses it as the last resort to find a peer (on by default).
    pub fn kademlia(mut self, on: bool) -> Self {
        self.kademlia = on;
        self
    }

    /// Sets the address book's limits and time-to-lives.
    pub fn address_book(mut self, config: address_book::Config) -> Self {
        self.address_book = config;
        self
    }

    /// Sets the value of the `node` label on this node's metrics (default
    /// `"0"`). The metrics recorder is process-wide: give each node of a
    /// process its own label, from a small, fixed set (never a peer id).
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.metrics_label = label.into();
        self
    }

    /// Offers and accepts Noise under these names, in order of preference
    /// (default `["/noise"]`). To join Python subnet-template nodes whatever
    /// their proof-of-stake setting: `[security::NOISE, security::POS_TRANSPORT]`.
    pub fn noise_protocol_names(mut self, names: Vec<&'static str>) -> Self {
        self.noise_names = names;
        self
    }

    /// Speaks GossipSub under `protocol` only, e.g. `/meshsub/2.0.0` as the
    /// Python subnet template does (default: libp2p's `/meshsub/1.1.0` and
    /// `/meshsub/1.0.0`).
    pub fn gossipsub_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.gossipsub_protocol = Some(protocol.into());
        self
    }

    /// Sets how many established inbound connections the node accepts.
    pub fn max_inbound_connections(mut self, connections: u32) -> Self {
        self.max_inbound_connections = connections;
        self
    }

    /// Sends a stream's first bytes together with its protocol proposal
    /// instead of waiting a round trip for the remote to confirm the
    /// protocol (multistream-select "V1-lazy"; default: off). A call then
    /// costs one round trip instead of two; a remote that does not speak the
    /// protocol is still reported as [`CallError::Unsupported`](crate::call::CallError::Unsupported).
    ///
    /// It applies to every protocol the node dials (identify, ping, GossipSub,
    /// Kademlia too). rust-libp2p peers handle it; py-libp2p 0.8 does not:
    /// data after a protocol it refuses breaks its stream handling, so leave
    /// it off in subnets with Python nodes.
    pub fn lazy_negotiation(mut self, lazy: bool) -> Self {
        self.lazy_negotiation = lazy;
        self
    }

    /// Sets how many connections the node keeps at least, dialing known
    /// peers when it has fewer (0: never dials on its own).
    pub fn min_peers(mut self, peers: usize) -> Self {
        self.min_peers = peers;
        self
    }

    /// Sets how many peers the node stays connected to at most. Above it,
    /// each second, the least recently used peers are disconnected until
    /// three quarters of it are left, sparing peers connected or used (a
    /// call either way) within [`NodeBuilder::trim_grace`], peers in a GossipSub mesh, peers
    /// with a stream of a registered protocol open and relays either way.
    /// Without it every peer a node ever reached stays connected (GossipSub
    /// keeps each connection busy): a full mesh (docs/PERFORMANCE.md, "Connections").
    /// Counted in `subnet_connections_trimmed_total`. At least `min_peers`
    /// ([`StartError::MaxPeersBelowMinPeers`] otherwise).
    pub fn max_peers(mut self, peers: usize) -> Self {
        self.max_peers = peers;
        self
    }

    /// Sets how long a peer that connected, or was called or called this
    /// node, is spared when connections are trimmed (see
    /// [`NodeBuilder::max_peers`]).
    pub fn trim_grace(mut self, grace: Duration) -> Self {
        self.trim_grace = grace;
        self
    }

    /// Sets how many GossipSub messages (publishes, forwards, IHAVE/IWANT
    /// gossip) may wait to be sent to one peer. Beyond, GossipSub drops the
    /// new message for that peer and counts it
    /// (`libp2p_gossipsub_failed_messages`); a forward waiting more than
    /// 1 s, a publish more than 5 s, is dropped when its turn comes anyway.
    /// Under overload these queues are what grows (docs/PERFORMANCE.md,
    /// "Memory under overload"), ≈ 1 KB a message. Raise it for topics
    /// published in bursts (a burst longer than this reaches a peer only
    /// through others' forwards).
    pub fn gossip_queue(mut self, messages: usize) -> Self {
        self.gossip_queue = messages;
        self
    }

    /// Sets how long a call by peer id may spend asking peers and the DHT.
    pub fn discovery_timeout(mut self, timeout: Duration) -> Self {
        self.discovery_timeout = timeout;
        self
    }

    /// Relays for other peers (off by default): a peer that cannot be
    /// reached directly (behind NAT) may reserve a slot here and be called
    /// through it. Limits: [`crate::swarm::relay_server_config`] (128
    /// reservations, 64 circuits, each up to 10 min and 64 MiB).
    pub fn relay_server(mut self, on: bool) -> Self {
        self.relay_server = on.then(crate::swarm::relay_server_config);
        self
    }

    /// Relays for other peers with limits of one's own (rust-libp2p's
    /// `relay::Config`). A call over a circuit that reaches one (its
    /// duration or data) fails with [`CallError::CircuitClosed`].
    ///
    /// [`CallError::CircuitClosed`]: crate::CallError::CircuitClosed
    pub fn relay_server_with(mut self, config: libp2p::relay::Config) -> Self {
        self.relay_server = Some(config);
        self
    }

    /// Reserves a slot on the relay at `address` (ending in
    /// `/p2p/<peer id>`) and advertises the circuit address through it
    /// (`<address>/p2p-circuit/p2p/<own id>`), renewing the reservation,
    /// whatever AutoNAT finds. Repeatable. Without it, a node that AutoNAT
    /// finds unreachable picks relays itself among the relay servers it is
    /// connected to, bootstrap peers first (see [`Reachability`]).
    ///
    /// [`Reachability`]: crate::swarm::addresses::Reachability
    pub fn relay(mut self, address: Multiaddr) -> Self {
        self.relays.push(address);
        self
    }

    /// Adds an address other hosts reach this node at that its listeners
    /// cannot know: a public IP in front of it, a forwarded port, a DNS
    /// name. It is advertised first (heartbeats, identify,
    /// [`Node::addresses`]). Repeatable.
    pub fn external_address(mut self, address: Multiaddr) -> Self {
        self.external.push(address);
        self
    }

    /// Whether to upgrade a relayed connection to a direct one by hole
    /// punching (DCUtR; on by default). Both sides must have it on.
    pub fn hole_punching(mut self, on: bool) -> Self {
        self.hole_punching = on;
        self
    }

    /// Checks that every relay address names its relay's peer id.
    fn check_relays(&self) -> Result<(), StartError> {
        match self
            .relays
            .iter()
            .find(|a| !matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))))
        {
            Some(address) => Err(StartError::Relay {
                address: address.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Sets how long [`Node::shutdown`] lets running handlers finish before
    /// resetting their streams.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Sets how peers' violations are scored and how long a misbehaving
    /// peer is banned (see [`reputation`]).
    pub fn reputation(mut self, config: reputation::Config) -> Self {
        self.reputation = config;
        self
    }

    /// Sets how long a connection without streams is kept open.
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = timeout;
        self
    }

    /// Starts the node with its own root supervisor: returns once every
    /// listener reported its address and the actors run.
    ///
    /// Cancel-safe: dropped before it returns, it stops whatever it started.
    pub async fn build(self) -> Result<Node, StartError> {
        self.start(None).await
    }

    /// Starts the node as a child of `supervisor`, an actor of the caller's
    /// own system: if the node fails, that supervisor receives
    /// `SupervisionEvent::ActorFailed`.
    ///
    /// Cancel-safe, as [`NodeBuilder::build`].
    pub async fn spawn_linked(self, supervisor: ActorCell) -> Result<Node, StartError> {
        self.start(Some(supervisor)).await
    }

    async fn start(mut self, parent: Option<ActorCell>) -> Result<Node, StartError> {
        self.check_relays()?;
        if self.gating && self.registry.is_none() {
            return Err(StartError::GatingWithoutRegistry);
        }
        if self.max_peers < self.min_peers {
            return Err(StartError::MaxPeersBelowMinPeers {
                max: self.max_peers,
                min: self.min_peers,
            });
        }
        raise_open_file_limit();
        let keypair = self.keypair.unwrap_or_else(Keypair::generate_ed25519);
        let peer_id = keypair.public().to_peer_id();
        let bootstrap = self
            .bootstrap
            .iter()
            .map(|address| match Destination::try_from(address.clone()) {
                Ok(Destination::Address { peer, address }) => Ok((peer, address)),
                _ => Err(StartError::Bootstrap {
                    address: address.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bootstrap_peers: Vec<PeerId> = bootstrap
            .iter()
            .map(|(peer, _)| *peer)
            .filter(|peer| *peer != peer_id)
            .collect();
        let metrics = Metrics::new(&self.metrics_label);
        metrics.preregister();
        metrics
            .preregister_book_sources(&address_book::Source::ALL.map(address_book::Source::name));
        metrics.preregister_rejections(&heartbeat::Rejection::ALL.map(heartbeat::Rejection::name));
        let shared = Arc::new(Shared::new(metrics.clone(), self.reputation.clone()));
        let book = AddressBook::default();
        let gate = match &self.registry {
            Some(registry) if self.gating && registry.checks_peers() => {
                Gate::closed(self.gating_fail_open).with_checks(registry.clone())
            }
            _ if self.gating => Gate::closed(self.gating_fail_open),
            _ => Gate::default(),
        };
        // GossipSub's mesh upkeep runs at least twice per heartbeat.
        let gossip_heartbeat = self
            .heartbeat
            .as_ref()
            .map(|h| (h.interval() / 2).clamp(Duration::from_millis(50), Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(1));
        let listen_addrs = ListenAddresses::with_external(self.external.clone());
        let (mut swarm, libp2p_metrics) = swarm::build(SwarmOptions {
            listen_addrs: listen_addrs.clone(),
            keypair,
            shared: shared.clone(),
            gate: gate.clone(),
            idle_connection_timeout: self.idle_connection_timeout,
            subnet_id: self.subnet_id,
            kademlia: self.kademlia,
            gossip_heartbeat,
            gossip_queue: self.gossip_queue,
            noise_names: self.noise_names.clone(),
            gossipsub_protocol: self.gossipsub_protocol.clone(),
            max_inbound_connections: self.max_inbound_connections,
            lazy_negotiation: self.lazy_negotiation,
            relay_server: self.relay_server.take(),
            hole_punching: self.hole_punching,
            topics: self
                .heartbeat
                .iter()
                .flat_map(|h| {
                    let template = h.template().map(|_| template_heartbeat::TOPIC.to_owned());
                    std::iter::once(heartbeat::topic(h.subnet_id())).chain(template)
                })
                .collect(),
        })?;
        let mut listeners = HashMap::new();
        for address in &self.listen {
            let id = swarm
                .listen_on(address.clone())
                .map_err(|source| match &source {
                    TransportError::Other(e) if crate::error::is_out_of_descriptors(e) => {
                        StartError::out_of_descriptors(Some(address.clone()))
                    }
                    _ => StartError::Listen {
                        address: address.clone(),
                        source,
                    },
                })?;
            listeners.insert(id, address.clone());
        }
        // Wait until every listener reports an address (port 0 resolved),
        // so that the node's addresses are known when `build` returns. A
        // wildcard listener reports one address per interface: it is done
        // once it reported one other hosts can reach, or, on a machine that
        // has only loopback, shortly after its first (the swarm actor
        // records any later ones).
        let deadline = tokio::time::Instant::now() + Self::LISTEN_TIMEOUT;
        let mut settled: Option<tokio::time::Instant> = None;
        let mut reported = HashSet::new();
        loop {
            if listeners.is_empty() {
                break;
            }
            if settled.is_some_and(|at| tokio::time::Instant::now() >= at)
                && listeners.keys().all(|id| reported.contains(id))
            {
                break;
            }
            let now = tokio::time::Instant::now();
            let wait = settled
                .filter(|at| *at > now)
                .map_or(deadline, |at| at.min(deadline));
            let Ok(event) =
                tokio::time::timeout_at(wait, StreamExt::select_next_some(&mut swarm)).await
            else {
                if settled.is_some() && tokio::time::Instant::now() < deadline {
                    continue;
                }
                if listeners.keys().all(|id| reported.contains(id)) {
                    break;
                }
                let (_, silent) = listeners
                    .iter()
                    .find(|(id, _)| !reported.contains(*id))
                    .expect("one has not reported");
                return Err(StartError::ListenerFailed {
                    address: silent.clone(),
                    reason: format!("no address reported within {:?}", Self::LISTEN_TIMEOUT),
                });
            };
            match event {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    tracing::info!("listening on {address}/p2p/{peer_id}");
                    let reachable = !is_local(&address);
                    listen_addrs.add(address);
                    reported.insert(listener_id);
                    let wildcard = listeners.get(&listener_id).is_some_and(is_unspecified);
                    if reachable || !wildcard {
                        listeners.remove(&listener_id);
                    } else {
                        settled.get_or_insert(tokio::time::Instant::now() + Self::SETTLE);
                    }
                }
                SwarmEvent::ListenerError { listener_id, error }
                    if listeners.contains_key(&listener_id) =>
                {
                    return Err(StartError::ListenerFailed {
                        address: listeners
                            .remove(&listener_id)
                            .unwrap_or_else(Multiaddr::empty),
                        reason: error.to_string(),
                    });
                }
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } if listeners.contains_key(&listener_id) => {
                    return Err(StartError::ListenerFailed {
                        address: listeners
                            .remove(&listener_id)
                            .unwrap_or_else(Multiaddr::empty),
                        reason: match reason {
                            Ok(()) => "the listener closed".to_owned(),
                            Err(error) => error.to_string(),
                        },
                    });
                }
                SwarmEvent::ListenerClosed { addresses, .. } => {
                    for address in &addresses {
                        listen_addrs.remove(address);
                    }
                }
                _ => {}
            }
        }
        let actors = NodeActors::cell();
        let supervisor = NodeSupervisor {
            local_peer: peer_id,
            listen_addrs: listen_addrs.clone(),
            book: book.clone(),
            book_config: self.address_book,
            registry: self.registry,
            gate,
            heartbeat: self.heartbeat,
            bootstrap,
            min_peers: self.min_peers,
            max_peers: self.max_peers,
            trim_grace: self.trim_grace,
            metrics: metrics.clone(),
            gossip: Arc::new(OutputPort::default()),
            relays: self.relays,
            shared: shared.clone(),
            shutdown_grace: self.shutdown_grace,
            actors: actors.clone(),
        };
        let (supervisor, _) = match parent {
            Some(parent) => {
                Actor::spawn_linked(
                    None,
                    supervisor,
                    swarm::Built(swarm, libp2p_metrics),
                    parent,
                )
                .await?
            }
            None => Actor::spawn(None, supervisor, swarm::Built(swarm, libp2p_metrics)).await?,
        };
        // Dropped before the node is handed over (the caller gave up), the
        // guard stops the actors just started.
        let started = StopOnDrop(Some(supervisor.clone()));
        let current = actors.read().expect("actors lock poisoned").clone();
        let Some(current) = current else {
            return Err(StartError::Transport(
                "the node's actors did not start".into(),
            ));
        };
        let lookup = Lookup {
            book: book.clone(),
            shared: shared.clone(),
            swarm: current.swarm.clone(),
            address_book: current.address_book.clone(),
            metrics: metrics.clone(),
            peer_exchange: self.peer_exchange,
            timeout: self.discovery_timeout,
        };
        let connector = Arc::new(Connector {
            shared: shared.clone(),
            swarm: current.swarm.clone(),
            lookup,
        });
        let node = Node {
            inner: Arc::new(Inner {
                peer_id,
                listen_addrs,
                supervisor,
                actors,
                shared,
                book: book.clone(),
                connector,
                metrics: metrics.clone(),
                shutdown_grace: self.shutdown_grace,
                listens: !self.listen.is_empty(),
                bootstrap: bootstrap_peers.into(),
            }),
        };
        if self.peer_exchange {
            node.register(PeerExchange::new(book, metrics)).await?;
        }
        started.disarm();
        tracing::info!(peer = %peer_id, "node started");
        Ok(node)
    }
}

/// Raises the process's soft open-file limit to its hard limit, once: each
/// connection, listener and dial holds a descriptor, and distributions
/// start processes at a soft limit of 1,024 (hard: often 524,288), which a
/// busy node, or many nodes in one process, runs out of.
fn raise_open_file_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!("open-file limit: {limit}"),
        Err(error) => tracing::warn!("cannot raise the open-file limit: {error}"),
    });
}

/// Stops a just-started node's supervisor unless disarmed.
struct StopOnDrop(Option<ActorRef<NodeMessage>>);

impl StopOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(supervisor) = self.0.take() {
            supervisor.stop(Some("the node's start was abandoned".into()));
        }
    }
}

/// Whether a listen address is a wildcard (`0.0.0.0`, `::`).
fn is_unspecified(address: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}
