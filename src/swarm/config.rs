//! The swarm's settings, handed whole from `NodeBuilder` through the
//! supervisor to the swarm's build and its event loop: transports and
//! limits, the connections kept (upkeep, trimming), relays and external
//! addresses. `NodeBuilder`'s setters document each one for users.

use std::time::Duration;

use libp2p::Multiaddr;

/// How the node's swarm is built and run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// How long a connection without streams is kept open.
    pub(crate) idle_connection_timeout: Duration,
    /// Whether to run Kademlia (and use it to find peers).
    pub(crate) kademlia: bool,
    /// GossipSub messages waiting to be sent to one peer at most.
    pub(crate) gossip_queue: usize,
    /// Names Noise is offered and accepted under, in order of preference.
    pub(crate) noise_names: Vec<&'static str>,
    /// GossipSub's protocol id, if not libp2p's default (`/meshsub/1.x`).
    pub(crate) gossipsub_protocol: Option<String>,
    /// Established inbound connections accepted at most.
    pub(crate) max_inbound_connections: u32,
    /// Multistream-select V1-lazy for outbound streams.
    pub(crate) lazy_negotiation: bool,
    /// Whether to upgrade relayed connections by hole punching (DCUtR).
    pub(crate) hole_punching: bool,
    /// Connections kept at least, dialing known peers (0: off).
    pub(crate) min_peers: usize,
    /// Connected peers above which the least recently used are closed.
    pub(crate) max_peers: usize,
    /// How long trimming spares a peer that connected or was used.
    pub(crate) trim_grace: Duration,
    /// Relays to hold a reservation on, whatever AutoNAT finds.
    pub(crate) relays: Vec<Multiaddr>,
    /// Addresses other hosts reach the node at that its listeners cannot
    /// know (advertised first).
    pub(crate) external: Vec<Multiaddr>,
}

impl Config {
    /// How long an idle connection is kept: 60 s.
    pub(crate) const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
    /// Connections kept at least: 8.
    pub(crate) const DEFAULT_MIN_PEERS: usize = 8;
    /// Peers connected at most before the least recently used are closed: 64.
    pub(crate) const DEFAULT_MAX_PEERS: usize = 64;
    /// GossipSub messages waiting for one peer at most: 32 (rust-libp2p's
    /// default is 5,000).
    pub(crate) const DEFAULT_GOSSIP_QUEUE: usize = 32;
    /// How long trimming spares a peer that connected or was used: 60 s.
    pub(crate) const DEFAULT_TRIM_GRACE: Duration = Duration::from_secs(60);
    /// Established inbound connections accepted at most: 512.
    pub(crate) const DEFAULT_MAX_INBOUND_CONNECTIONS: u32 = 512;
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_connection_timeout: Self::DEFAULT_IDLE_CONNECTION_TIMEOUT,
            kademlia: true,
            gossip_queue: Self::DEFAULT_GOSSIP_QUEUE,
            noise_names: vec![super::security::NOISE],
            gossipsub_protocol: None,
            max_inbound_connections: Self::DEFAULT_MAX_INBOUND_CONNECTIONS,
            lazy_negotiation: false,
            hole_punching: true,
            min_peers: Self::DEFAULT_MIN_PEERS,
            max_peers: Self::DEFAULT_MAX_PEERS,
            trim_grace: Self::DEFAULT_TRIM_GRACE,
            relays: Vec::new(),
            external: Vec::new(),
        }
    }
}
