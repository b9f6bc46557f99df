//! `NodeBuilder`: a node's settings. Starting it (`builder/start.rs`): the
//! swarm built and listening, then the actors under their supervisor.

use std::{sync::Arc, time::Duration};

use libp2p::{Multiaddr, identity::Keypair};
use ractor::ActorCell;

use super::handle::Node;
use crate::{
    discovery::{address_book, heartbeat, registry::Registry},
    error::StartError,
    reputation, swarm,
};

mod start;

/// Builds a [`Node`].
pub struct NodeBuilder {
    keypair: Option<Keypair>,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    subnet_id: u64,
    heartbeat: Option<heartbeat::Config>,
    registry: Option<Arc<dyn Registry>>,
    gating: bool,
    gating_fail_open: bool,
    peer_exchange: bool,
    address_book: address_book::Config,
    discovery_timeout: Duration,
    metrics_label: String,
    shutdown_grace: Duration,
    reputation: reputation::Config,
    /// The swarm's settings, handed whole to the swarm and its loop.
    swarm: swarm::Config,
    /// The relay server's limits, if the node relays for others.
    relay_server: Option<libp2p::relay::Config>,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            keypair: None,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            subnet_id: 0,
            heartbeat: None,
            registry: None,
            gating: false,
            gating_fail_open: false,
            peer_exchange: true,
            address_book: address_book::Config::default(),
            discovery_timeout: Self::DEFAULT_DISCOVERY_TIMEOUT,
            metrics_label: "0".into(),
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            reputation: reputation::Config::default(),
            swarm: swarm::Config::default(),
            relay_server: None,
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
            .field("swarm", &self.swarm)
            .finish()
    }
}

impl Node {
    /// A builder with the default settings.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }
}

impl NodeBuilder {
    /// How long an idle connection is kept: 60 s.
    pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration =
        swarm::Config::DEFAULT_IDLE_CONNECTION_TIMEOUT;
    /// Time a call by peer id spends asking peers and the DHT: 5 s.
    pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Connections a node keeps at least, dialing peers from its address
    /// book: 8.
    pub const DEFAULT_MIN_PEERS: usize = swarm::Config::DEFAULT_MIN_PEERS;
    /// Peers a node stays connected to at most before it closes the least
    /// recently used: 64.
    pub const DEFAULT_MAX_PEERS: usize = swarm::Config::DEFAULT_MAX_PEERS;
    /// GossipSub messages waiting to be sent to one peer at most: 32
    /// (rust-libp2p's default is 5,000).
    pub const DEFAULT_GOSSIP_QUEUE: usize = swarm::Config::DEFAULT_GOSSIP_QUEUE;
    /// How long trimming spares a peer that connected or was used: 60 s.
    pub const DEFAULT_TRIM_GRACE: Duration = swarm::Config::DEFAULT_TRIM_GRACE;
    /// Established inbound connections a node accepts at most: 512. Beyond,
    /// connections are denied (and at most 64 may be setting up at once,
    /// and 4 established per peer).
    pub const DEFAULT_MAX_INBOUND_CONNECTIONS: u32 = swarm::Config::DEFAULT_MAX_INBOUND_CONNECTIONS;
    /// Time `build` waits for each listener to report its first address: 10 s.
    pub const LISTEN_TIMEOUT: Duration = swarm::listen::LISTEN_TIMEOUT;
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
        self.swarm.kademlia = on;
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
        self.swarm.noise_names = names;
        self
    }

    /// Speaks GossipSub under `protocol` only, e.g. `/meshsub/2.0.0` as the
    /// Python subnet template does (default: libp2p's `/meshsub/1.1.0` and
    /// `/meshsub/1.0.0`).
    pub fn gossipsub_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.swarm.gossipsub_protocol = Some(protocol.into());
        self
    }

    /// Sets how many established inbound connections the node accepts.
    pub fn max_inbound_connections(mut self, connections: u32) -> Self {
        self.swarm.max_inbound_connections = connections;
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
        self.swarm.lazy_negotiation = lazy;
        self
    }

    /// Sets how many connections the node keeps at least, dialing known
    /// peers when it has fewer (0: never dials on its own).
    pub fn min_peers(mut self, peers: usize) -> Self {
        self.swarm.min_peers = peers;
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
        self.swarm.max_peers = peers;
        self
    }

    /// Sets how long a peer that connected, or was called or called this
    /// node, is spared when connections are trimmed (see
    /// [`NodeBuilder::max_peers`]).
    pub fn trim_grace(mut self, grace: Duration) -> Self {
        self.swarm.trim_grace = grace;
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
        self.swarm.gossip_queue = messages;
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
        self.swarm.relays.push(address);
        self
    }

    /// Adds an address other hosts reach this node at that its listeners
    /// cannot know: a public IP in front of it, a forwarded port, a DNS
    /// name. It is advertised first (heartbeats, identify,
    /// [`Node::addresses`]). Repeatable.
    pub fn external_address(mut self, address: Multiaddr) -> Self {
        self.swarm.external.push(address);
        self
    }

    /// Whether to upgrade a relayed connection to a direct one by hole
    /// punching (DCUtR; on by default). Both sides must have it on.
    pub fn hole_punching(mut self, on: bool) -> Self {
        self.swarm.hole_punching = on;
        self
    }

    /// Checks that every relay address names its relay's peer id.
    fn check_relays(&self) -> Result<(), StartError> {
        match self
            .swarm
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
        self.swarm.idle_connection_timeout = timeout;
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
}
