//! The swarm, built: transports (TCP + Noise + yamux, and QUIC, both
//! through DNS resolution, and circuits through relays) and behaviours
//! (connection limits, the direct protocols' streams, identify, ping,
//! GossipSub, Kademlia, AutoNAT v2, relay v2 and DCUtR), with their limits.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use libp2p::{
    PeerId, StreamProtocol, Swarm, SwarmBuilder, autonat, connection_limits,
    core::upgrade,
    dcutr, identify,
    identity::Keypair,
    kad::{self, store::MemoryStore},
    ping, relay,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
    tcp, yamux,
};

use super::{
    addresses, config::Config, dial_back::DialBackGuard, security::NamedNoise, woken::Woken,
};
use crate::{
    error::StartError,
    streams::{self, Shared, gate::Gate},
};
use libp2p_gossipsub as gossipsub;

/// Identify protocol version announced by nodes.
const IDENTIFY_PROTOCOL: &str = "/subnet/1.0.0";

/// Largest GossipSub message: 64 KiB.
const MAX_GOSSIP_SIZE: usize = 64 * 1024;

/// Connections being set up from remote peers at once.
const MAX_PENDING_INBOUND: u32 = 64;

/// Time to set up a connection (dial, security, multiplexing) before it
/// fails: 7 s, below libp2p's default of 10 s because an AutoNAT v2 server
/// answers within 10 s: its dial back to an address that drops packets (a
/// NAT) must fail before that, or the asking node never learns that it is
/// unreachable.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(7);

/// How often AutoNAT v2 looks for untested candidate addresses (libp2p's
/// default: 5 s). Each address is tested once, so a short interval costs
/// nothing once they are; it makes a node behind NAT find out sooner.
const AUTONAT_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Largest Kademlia message: 16 KiB (rust-libp2p's default, said here on
/// purpose): 20 peers of a FIND_NODE answer with a few addresses each.
const KADEMLIA_MAX_PACKET: usize = 16 * 1024;

/// Established connections to one peer at most.
const MAX_CONNECTIONS_PER_PEER: u32 = 4;

/// The libp2p behaviours of a node.
#[derive(NetworkBehaviour)]
#[allow(missing_docs, missing_debug_implementations)]
pub(crate) struct Behaviour {
    /// First, so that a connection over a limit is denied before any other
    /// behaviour sets up state for it.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) streams: streams::behaviour::Behaviour,
    // The others are polled only when woken (see `woken.rs`): most of a
    // connection's wake-ups are for its request streams.
    pub(crate) identify: Woken<identify::Behaviour>,
    pub(crate) ping: Woken<ping::Behaviour>,
    pub(crate) gossipsub: Woken<gossipsub::Behaviour>,
    pub(crate) kademlia: Woken<Toggle<kad::Behaviour<MemoryStore>>>,
    /// Reservations on relays and relayed connections through them.
    pub(crate) relay_client: relay::client::Behaviour,
    /// Relaying for others, if the node is a relay server.
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    /// Hole punching (DCUtR): upgrades a relayed connection to a direct
    /// one; off if the node was built without it.
    pub(crate) dcutr: Toggle<dcutr::Behaviour>,
    /// AutoNAT v2, asking side: has peers dial the node's candidate
    /// external addresses back, which confirms them or finds the node
    /// unreachable (see `Reachability`).
    pub(crate) autonat_client: autonat::v2::client::Behaviour,
    /// AutoNAT v2, answering side: dials a peer back at an address it
    /// asks about (none on this host, no name: see `dial_back`).
    pub(crate) autonat_server: DialBackGuard,
}

/// A relay server's limits: circuits long and large enough for the
/// framework's largest call (a 4 MiB request and a 4 MiB response), a
/// bounded number of reservations and circuits, and rate limits (token
/// buckets) for many peers behind one IP address, as in a data centre or
/// behind a carrier's NAT:
///
/// | limit | value | libp2p's default |
/// |---|---|---|
/// | reservations | 128, 4 per peer | the same |
/// | circuits | 64, 8 per peer | 16, 4 per peer |
/// | circuit duration, data | 10 min, 64 MiB each way | 2 min, 128 KiB |
/// | reservations per peer | 30, then 1 per 2 min | the same |
/// | reservations per IP address | 600, then 1 per s | 60, then 1 per min |
/// | circuits per source peer | 30, then 1 per 10 s | 30, then 1 per 2 min |
/// | circuits per source IP address | 600, then 10 per s | 60, then 1 per min |
///
/// A circuit over a limit is refused: the caller's dial fails with the
/// relay's "resource limit exceeded".
pub fn relay_server_config() -> relay::Config {
    let per = |limit: u32| NonZeroU32::new(limit).expect("not zero");
    relay::Config {
        max_reservations: 128,
        max_reservations_per_peer: 4,
        max_circuits: 64,
        max_circuits_per_peer: 8,
        max_circuit_duration: Duration::from_secs(10 * 60),
        max_circuit_bytes: 64 * 1024 * 1024,
        reservation_rate_limiters: Vec::new(),
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    }
    .reservation_rate_per_peer(per(30), Duration::from_secs(120))
    .reservation_rate_per_ip(per(600), Duration::from_secs(1))
    .circuit_src_per_peer(per(30), Duration::from_secs(10))
    .circuit_src_per_ip(per(600), Duration::from_millis(100))
}

/// A node's swarm, built and with its listeners bound: the argument of the
/// actor that owns it. Opaque outside the crate.
pub struct Built(pub(crate) Swarm<Behaviour>, pub(crate) Libp2pMetrics);

/// rust-libp2p's metrics of one node: the recorder of its swarm's events,
/// and the registry (labelled with the node's label) they are kept in,
/// rendered by the metrics server while this lives.
pub(crate) struct Libp2pMetrics {
    pub(crate) recorder: libp2p::metrics::Metrics,
    /// GossipSub messages received (`libp2p_gossipsub_messages_total`, as
    /// libp2p-metrics counts them when GossipSub comes through libp2p; here
    /// it comes directly, the fixed copy).
    pub(crate) gossip_messages: prometheus_client::metrics::counter::Counter,
    _registry: crate::metrics::libp2p_metrics::NodeRegistry,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("local_peer_id", self.0.local_peer_id())
            .finish()
    }
}

/// How to build a node's swarm.
#[derive(Debug)]
pub(crate) struct SwarmOptions<'a> {
    /// The swarm's settings.
    pub(crate) config: &'a Config,
    /// The node's addresses (the AutoNAT server asks whether they are all
    /// local).
    pub(crate) listen_addrs: addresses::ListenAddresses,
    pub(crate) keypair: Keypair,
    pub(crate) shared: Arc<Shared>,
    pub(crate) gate: Gate,
    /// The subnet's id: names the Kademlia protocol.
    pub(crate) subnet_id: u64,
    /// GossipSub's own heartbeat (mesh maintenance).
    pub(crate) gossip_heartbeat: Duration,
    /// Topics to subscribe to.
    pub(crate) topics: Vec<String>,
    /// Relaying for others, with these limits (consumed by the build).
    pub(crate) relay_server: Option<relay::Config>,
}

/// A GossipSub message's id: its source's peer id bytes, then its sequence
/// number (8 bytes, big-endian, as on the wire). This is go-libp2p's
/// default (`DefaultMsgIdFn`, go-libp2p-pubsub's `pubsub.go`) and
/// py-libp2p's (`get_peer_and_seqno_msg_id`, `pubsub.py`, 0.8.1; 0.6.0 put
/// the sequence number first), so that their IHAVEs and IWANTs name the
/// same messages as ours. rust-libp2p's default (the peer id in base58,
/// then the number in decimal) names them differently, and costs a base58
/// encoding for every copy received.
pub(crate) fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut id = message.source.map(PeerId::to_bytes).unwrap_or_default();
    if let Some(sequence_number) = message.sequence_number {
        id.extend_from_slice(&sequence_number.to_be_bytes());
    }
    gossipsub::MessageId::new(&id)
}

/// Builds a swarm: TCP + Noise + yamux and QUIC, with identify, ping,
/// GossipSub (signed, strict, application-validated) and, if asked,
/// Kademlia in server mode under the subnet's own protocol name.
pub(crate) fn build(
    mut options: SwarmOptions<'_>,
) -> Result<(Swarm<Behaviour>, Libp2pMetrics), StartError> {
    let transport = |e: &(dyn std::error::Error + 'static)| {
        if crate::error::is_out_of_descriptors(e) {
            StartError::out_of_descriptors(None)
        } else {
            StartError::Transport(e.to_string().into())
        }
    };
    // Keep messages cached for at least 5 s whatever the mesh heartbeat, so
    // that a validation verdict never arrives after its message was evicted.
    let history = (5_000 / options.gossip_heartbeat.as_millis().max(1)).max(5) as usize;
    let mut gossip_config = gossipsub::ConfigBuilder::default();
    if let Some(protocol) = &options.config.gossipsub_protocol {
        gossip_config.protocol_id(protocol.clone(), gossipsub::Version::V1_1);
    }
    let gossip_config = gossip_config
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .heartbeat_interval(options.gossip_heartbeat)
        .history_length(history)
        .max_transmit_size(MAX_GOSSIP_SIZE)
        .message_id_fn(message_id)
        .connection_handler_queue_len(options.config.gossip_queue.max(1))
        .build()
        .map_err(|e| transport(&e))?;
    let registry = crate::metrics::libp2p_metrics::node_registry(options.shared.metrics().label());
    let mut libp2p_registry = registry.lock().expect("registry lock poisoned");
    let mut swarm = SwarmBuilder::with_existing_identity(options.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            |key: &Keypair| NamedNoise::new(key, options.config.noise_names.clone()),
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        .with_quic()
        // `/dns`, `/dns4` and `/dns6` addresses resolve through the system's
        // resolver (its hosts file first), for calls, bootstrap peers and
        // registry entries alike.
        .with_dns()
        .map_err(|e| transport(&e))?
        .with_relay_client(
            |key: &Keypair| NamedNoise::new(key, options.config.noise_names.clone()),
            yamux::Config::default,
        )
        .map_err(|e| transport(&e))?
        // Bytes in and out per protocol stack (libp2p_bandwidth_bytes).
        .with_bandwidth_metrics(&mut libp2p_registry)
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            let kademlia = options.config.kademlia.then(|| {
                let protocol = format!("/subnet/{}/kad/1.0.0", options.subnet_id);
                let protocol = StreamProtocol::try_from_owned(protocol).expect("starts with /");
                // Kademlia serves peer lookups only: records and provider
                // records others put are not stored (filtered, then
                // dropped), none are replicated or republished, and the
                // store holds nothing.
                let mut config = kad::Config::new(protocol);
                config
                    .set_record_filtering(kad::StoreInserts::FilterBoth)
                    .set_replication_interval(None)
                    .set_publication_interval(None)
                    .set_provider_publication_interval(None)
                    .set_max_packet_size(KADEMLIA_MAX_PACKET);
                let store = MemoryStore::with_config(
                    peer,
                    kad::store::MemoryStoreConfig {
                        max_records: 0,
                        max_value_bytes: 0,
                        max_providers_per_key: 0,
                        max_provided_keys: 0,
                    },
                );
                let mut kad = kad::Behaviour::with_config(peer, store, config);
                kad.set_mode(Some(kad::Mode::Server));
                kad
            });
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
                .with_max_established_incoming(Some(options.config.max_inbound_connections))
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                streams: streams::behaviour::Behaviour::new(
                    options.shared.clone(),
                    options.gate.clone(),
                ),
                // Identify tells peers the node's external addresses only:
                // the swarm actor keeps them to what the node advertises
                // (no loopback address to another host).
                identify: Woken::new(identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                        .with_hide_listen_addrs(true),
                )),
                ping: Woken::new(ping::Behaviour::default()),
                // GossipSub's own metrics (`libp2p_gossipsub_*`): the
                // queues to each peer and the messages dropped from them,
                // the mesh, duplicates received.
                gossipsub: Woken::new(
                    gossipsub::Behaviour::new(
                        gossipsub::MessageAuthenticity::Signed(key.clone()),
                        gossip_config,
                    )?
                    .with_metrics(
                        libp2p_registry.sub_registry_with_prefix("libp2p_gossipsub"),
                        Default::default(),
                    ),
                ),
                kademlia: Woken::new(kademlia.into()),
                relay_client,
                relay_server: options
                    .relay_server
                    .take()
                    .map(|config| relay::Behaviour::new(peer, config))
                    .into(),
                dcutr: options
                    .config
                    .hole_punching
                    .then(|| dcutr::Behaviour::new(peer))
                    .into(),
                autonat_client: autonat::v2::client::Behaviour::new(
                    rand::make_rng::<rand::rngs::StdRng>(),
                    autonat::v2::client::Config::default()
                        .with_probe_interval(AUTONAT_PROBE_INTERVAL),
                ),
                autonat_server: DialBackGuard::new(options.listen_addrs.clone()),
            })
        })
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| {
            let c = c.with_idle_connection_timeout(options.config.idle_connection_timeout);
            if options.config.lazy_negotiation {
                // Outbound streams send their first bytes with the protocol
                // proposal; a refusal surfaces at the first read (see
                // `codec::is_unsupported`).
                c.with_substream_upgrade_protocol_override(upgrade::Version::V1Lazy)
            } else {
                c
            }
        })
        .with_connection_timeout(CONNECTION_TIMEOUT)
        .build();
    for topic in &options.topics {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|e| transport(&e))?;
    }
    let recorder = libp2p::metrics::Metrics::new(&mut libp2p_registry);
    let gossip_messages = crate::metrics::libp2p_metrics::gossip_messages(&mut libp2p_registry);
    drop(libp2p_registry);
    Ok((
        swarm,
        Libp2pMetrics {
            recorder,
            gossip_messages,
            _registry: registry,
        },
    ))
}
