//! Every metric the framework records, each name written once.
//!
//! Metrics go through the `metrics` facade; install a recorder to collect
//! them — [`prometheus_builder`] gives a `metrics-exporter-prometheus`
//! builder with this crate's histogram buckets and descriptions. The
//! recorder is process-wide, so every metric carries a `node` label whose
//! value the application chooses (`NodeBuilder::metrics_label`, default
//! `"0"`): give each node of a process its own. Other labels carry bounded
//! values only: ids of registered protocols, directions, outcomes, reasons,
//! sources — never a peer id or an address.
//!
//! Every family and every label set known in advance exists from a node's
//! start (counters at 0, gauges at their value): the node's own at
//! `NodeBuilder::build`, a protocol's when it is registered, a client's
//! when it is made. A dashboard panel on a quiet node shows 0, not "No
//! data", and `rate()` sees the first increment. Install the recorder
//! before building nodes.
//!
//! Label sets that other modules own are passed in as lists of names at
//! preregistration (reputation's violations by `Reputation::new`, the
//! address book's sources and the heartbeat's rejections by the node
//! builder): this module names no type above it.
//!
//! Files: `mod.rs` (every name, their descriptions, [`Metrics`]: one
//! node's recordings), `requests.rs` ([`RequestMetrics`]: one protocol's
//! requests in one direction, handles kept per recorder), `server.rs`
//! ([`serve_prometheus`]: installs the recorder and serves `/metrics`,
//! `/healthz` and `/readyz`), `libp2p_metrics.rs` (rust-libp2p's own
//! metrics, in the same exposition).

pub mod libp2p_metrics;
mod requests;
mod server;

pub use self::{
    requests::{Direction, RefusalReason, RequestMetrics},
    server::{MetricsServer, Probe, ServeMetricsError, serve_prometheus},
};

use metrics::{SharedString, counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Requests by protocol, direction and outcome.
pub const REQUESTS: &str = "subnet_requests_total";
/// Request latency in seconds by protocol and direction.
pub const REQUEST_DURATION: &str = "subnet_request_duration_seconds";
/// Requests currently being served or awaited, by protocol and direction.
pub const REQUESTS_IN_FLIGHT: &str = "subnet_requests_in_flight";
/// Bytes of request frames, by protocol and direction.
pub const REQUEST_BYTES: &str = "subnet_request_bytes_total";
/// Bytes of response frames, by protocol and direction.
pub const RESPONSE_BYTES: &str = "subnet_response_bytes_total";
/// Inbound streams refused before reaching a handler, by protocol and reason.
pub const INBOUND_REFUSED: &str = "subnet_inbound_refused_total";
/// Connections established, by direction and transport.
pub const CONNECTIONS: &str = "subnet_connections_total";
/// Peers with at least one established connection.
pub const CONNECTED_PEERS: &str = "subnet_connected_peers";
/// Counter: connections closed because the node held more than
/// `max_peers` (the least recently used first).
pub const CONNECTIONS_TRIMMED: &str = "subnet_connections_trimmed_total";
/// Gauge: connected peers unused for the trim grace, those trimming
/// closes first above `max_peers` (unless protected); set each second.
pub const CONNECTIONS_IDLE: &str = "subnet_connections_idle";
/// Peers in the address book, by the source of their best address.
pub const ADDRESS_BOOK_PEERS: &str = "subnet_address_book_peers";
/// Address book lookups by a call, by result (hit, miss).
pub const ADDRESS_BOOK_LOOKUPS: &str = "subnet_address_book_lookups_total";
/// Peers that left the address book (expired or evicted).
pub const ADDRESS_BOOK_EXPIRED: &str = "subnet_address_book_expired_total";
/// Reads of the registry, by outcome (`ok`, `failed`; a failed read keeps
/// what the last good one gave).
pub const REGISTRY_READS: &str = "subnet_registry_reads_total";
/// Members the last good registry read listed.
pub const REGISTRY_MEMBERS: &str = "subnet_registry_members";
/// Heartbeats this node published.
pub const HEARTBEATS_PUBLISHED: &str = "subnet_heartbeats_published_total";
/// Heartbeats received and validated.
pub const HEARTBEATS_RECEIVED: &str = "subnet_heartbeats_received_total";
/// Heartbeats rejected or ignored, by reason.
pub const HEARTBEATS_REJECTED: &str = "subnet_heartbeats_rejected_total";
/// Heartbeats that did not update the address book, by reason: `unchanged`
/// (the same addresses given less than a refresh period ago) or `busy`
/// (256 updates already waiting).
pub const BOOK_UPDATES_COALESCED: &str = "subnet_address_book_updates_coalesced_total";
/// Peer-exchange questions, by role (asked, answered) and result (found, empty).
pub const PEER_EXCHANGE: &str = "subnet_peer_exchange_total";
/// Kademlia lookups of a peer, by result (found, not_found).
pub const KADEMLIA_LOOKUPS: &str = "subnet_kademlia_lookups_total";
/// Hole punching (DCUtR) attempts on relayed connections, by result
/// (direct, failed).
pub const HOLE_PUNCHES: &str = "subnet_hole_punches_total";
/// Requests over a relayed connection, by protocol and direction (a part
/// of `subnet_requests_total`; the rest went direct).
pub const REQUESTS_RELAYED: &str = "subnet_requests_relayed_total";
/// Protocol violations reported against peers, by violation.
pub const PEER_VIOLATIONS: &str = "subnet_peer_violations_total";
/// Peers banned, by reason (misbehaved, operator).
pub const PEERS_BANNED: &str = "subnet_peers_banned_total";
/// Peers banned now.
pub const BANNED_PEERS: &str = "subnet_banned_peers";
/// Actors that failed (error or panic), by actor kind.
pub const ACTOR_FAILURES: &str = "subnet_actor_failures_total";
/// Actors restarted by their supervisor, by actor kind.
pub const ACTOR_RESTARTS: &str = "subnet_actor_restarts_total";
/// Always 1, labelled with the framework's version.
pub const BUILD_INFO: &str = "subnet_build_info";

/// The kinds of actor `subnet_actor_failures_total` and
/// `subnet_actor_restarts_total` name.
const ACTOR_KINDS: [&str; 5] = ["swarm", "address_book", "heartbeat", "protocol", "request"];
/// Transports of `subnet_connections_total`.
const TRANSPORTS: [&str; 4] = ["tcp", "quic", "relay", "other"];

/// Buckets of [`REQUEST_DURATION`]: 100 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A Prometheus exporter builder with this crate's histogram buckets.
pub fn prometheus_builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &LATENCY_BUCKETS)
        .expect("buckets are not empty")
}

/// Describes every metric (HELP and unit) to the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "Requests by protocol, direction and outcome");
    describe_histogram!(REQUEST_DURATION, metrics::Unit::Seconds, "Request latency");
    describe_gauge!(REQUESTS_IN_FLIGHT, "Requests being served or awaited");
    describe_counter!(
        REQUEST_BYTES,
        metrics::Unit::Bytes,
        "Bytes of request frames"
    );
    describe_counter!(
        RESPONSE_BYTES,
        metrics::Unit::Bytes,
        "Bytes of response frames"
    );
    describe_counter!(
        INBOUND_REFUSED,
        "Inbound streams refused before a handler, by reason"
    );
    describe_counter!(
        CONNECTIONS,
        "Connections established, by direction and transport"
    );
    describe_gauge!(CONNECTED_PEERS, "Peers with an established connection");
    describe_counter!(
        CONNECTIONS_TRIMMED,
        "Peers disconnected because more than max_peers were connected"
    );
    describe_gauge!(
        CONNECTIONS_IDLE,
        "Connected peers unused for the trim grace"
    );
    describe_gauge!(ADDRESS_BOOK_PEERS, "Peers in the address book, by source");
    describe_counter!(
        ADDRESS_BOOK_LOOKUPS,
        "Address book lookups by calls, by result"
    );
    describe_counter!(ADDRESS_BOOK_EXPIRED, "Peers that left the address book");
    describe_counter!(REGISTRY_READS, "Registry reads, by outcome");
    describe_gauge!(
        REGISTRY_MEMBERS,
        "Members the last good registry read listed"
    );
    describe_counter!(HEARTBEATS_PUBLISHED, "Heartbeats published");
    describe_counter!(HEARTBEATS_RECEIVED, "Heartbeats received and validated");
    describe_counter!(
        HEARTBEATS_REJECTED,
        "Heartbeats rejected or ignored, by reason"
    );
    describe_counter!(
        BOOK_UPDATES_COALESCED,
        "Heartbeats that did not update the address book, by reason"
    );
    describe_counter!(PEER_EXCHANGE, "Peer-exchange questions, by role and result");
    describe_counter!(KADEMLIA_LOOKUPS, "Kademlia lookups of a peer, by result");
    describe_counter!(HOLE_PUNCHES, "Hole punching attempts, by result");
    describe_counter!(
        REQUESTS_RELAYED,
        "Requests over a relayed connection, by protocol and direction"
    );
    describe_counter!(
        PEER_VIOLATIONS,
        "Protocol violations reported against peers, by violation"
    );
    describe_counter!(PEERS_BANNED, "Peers banned, by reason");
    describe_gauge!(BANNED_PEERS, "Peers banned now");
    describe_counter!(ACTOR_FAILURES, "Actors that failed, by kind");
    describe_counter!(ACTOR_RESTARTS, "Actors restarted, by kind");
    describe_gauge!(BUILD_INFO, "Always 1; the version label says which");
}

/// One node's metrics: every recording carries its `node` label.
#[derive(Debug, Clone)]
pub struct Metrics {
    node: SharedString,
}

impl Metrics {
    /// Metrics labelled `node = label`.
    pub fn new(label: &str) -> Self {
        Self {
            node: SharedString::from_shared(std::sync::Arc::from(label)),
        }
    }

    /// The node label.
    pub fn label(&self) -> &str {
        &self.node
    }

    /// Registers every series of the node known in advance, at 0 (gauges
    /// at their value), and `subnet_build_info`.
    pub(crate) fn preregister(&self) {
        let node = &self.node;
        gauge!(BUILD_INFO, "node" => node.clone(), "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        for direction in ["inbound", "outbound"] {
            for transport in TRANSPORTS {
                counter!(CONNECTIONS, "node" => node.clone(), "direction" => direction, "transport" => transport).increment(0);
            }
        }
        gauge!(CONNECTED_PEERS, "node" => node.clone()).increment(0.0);
        counter!(CONNECTIONS_TRIMMED, "node" => node.clone()).increment(0);
        gauge!(CONNECTIONS_IDLE, "node" => node.clone()).increment(0.0);
        for result in ["hit", "miss"] {
            counter!(ADDRESS_BOOK_LOOKUPS, "node" => node.clone(), "result" => result).increment(0);
        }
        counter!(ADDRESS_BOOK_EXPIRED, "node" => node.clone()).increment(0);
        for reason in ["unchanged", "busy"] {
            counter!(BOOK_UPDATES_COALESCED, "node" => node.clone(), "reason" => reason)
                .increment(0);
        }
        for outcome in ["ok", "failed"] {
            counter!(REGISTRY_READS, "node" => node.clone(), "outcome" => outcome).increment(0);
        }
        counter!(HEARTBEATS_PUBLISHED, "node" => node.clone()).increment(0);
        counter!(HEARTBEATS_RECEIVED, "node" => node.clone()).increment(0);
        for role in ["asked", "answered"] {
            for result in ["found", "empty"] {
                counter!(PEER_EXCHANGE, "node" => node.clone(), "role" => role, "result" => result)
                    .increment(0);
            }
        }
        for result in ["found", "not_found"] {
            counter!(KADEMLIA_LOOKUPS, "node" => node.clone(), "result" => result).increment(0);
        }
        for result in ["direct", "failed"] {
            counter!(HOLE_PUNCHES, "node" => node.clone(), "result" => result).increment(0);
        }
        for actor in ACTOR_KINDS {
            counter!(ACTOR_FAILURES, "node" => node.clone(), "actor" => actor).increment(0);
            counter!(ACTOR_RESTARTS, "node" => node.clone(), "actor" => actor).increment(0);
        }
    }

    /// Registers the address book's peers by each of `sources` (the names
    /// of `address_book::Source`), at 0.
    pub(crate) fn preregister_book_sources(&self, sources: &[&'static str]) {
        for source in sources {
            gauge!(ADDRESS_BOOK_PEERS, "node" => self.node.clone(), "source" => *source)
                .increment(0.0);
        }
    }

    /// Registers the heartbeats rejected for each of `reasons` (the names
    /// of `heartbeat::Rejection`), at 0.
    pub(crate) fn preregister_rejections(&self, reasons: &[&'static str]) {
        for reason in reasons {
            counter!(HEARTBEATS_REJECTED, "node" => self.node.clone(), "reason" => *reason)
                .increment(0);
        }
    }

    /// Registers the refusals of a newly registered protocol, at 0.
    pub(crate) fn preregister_refusals(&self, protocol: &str) {
        for reason in [
            RefusalReason::OverCapacity,
            RefusalReason::NotRegistered,
            RefusalReason::ConnectionLimit,
            RefusalReason::PeerLimit,
            RefusalReason::RateLimited,
        ] {
            counter!(INBOUND_REFUSED, "node" => self.node.clone(), "protocol" => protocol.to_owned(), "reason" => reason.label())
                .increment(0);
        }
    }

    pub(crate) fn inbound_refused(&self, protocol: &impl AsRef<str>, reason: RefusalReason) {
        counter!(INBOUND_REFUSED, "node" => self.node.clone(), "protocol" => protocol.as_ref().to_owned(), "reason" => reason.label())
            .increment(1);
    }

    /// The request metrics of `protocol` in `direction`.
    pub(crate) fn requests(&self, protocol: &'static str, direction: Direction) -> RequestMetrics {
        RequestMetrics::new(self.node.clone(), protocol, direction)
    }

    pub(crate) fn connection(&self, dialer: bool, transport: &'static str) {
        let direction = if dialer { "outbound" } else { "inbound" };
        counter!(CONNECTIONS, "node" => self.node.clone(), "direction" => direction, "transport" => transport)
            .increment(1);
    }

    pub(crate) fn connected_peers(&self, peers: usize) {
        gauge!(CONNECTED_PEERS, "node" => self.node.clone()).set(peers as f64);
    }

    pub(crate) fn connections_idle(&self, peers: usize) {
        gauge!(CONNECTIONS_IDLE, "node" => self.node.clone()).set(peers as f64);
    }

    pub(crate) fn connection_trimmed(&self) {
        counter!(CONNECTIONS_TRIMMED, "node" => self.node.clone()).increment(1);
    }

    pub(crate) fn address_book_peers(&self, source: &'static str, peers: usize) {
        gauge!(ADDRESS_BOOK_PEERS, "node" => self.node.clone(), "source" => source)
            .set(peers as f64);
    }

    pub(crate) fn address_book_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        counter!(ADDRESS_BOOK_LOOKUPS, "node" => self.node.clone(), "result" => result)
            .increment(1);
    }

    pub(crate) fn address_book_expired(&self, peers: usize) {
        counter!(ADDRESS_BOOK_EXPIRED, "node" => self.node.clone()).increment(peers as u64);
    }

    pub(crate) fn registry_read(&self, members: Option<usize>) {
        let outcome = if members.is_some() { "ok" } else { "failed" };
        counter!(REGISTRY_READS, "node" => self.node.clone(), "outcome" => outcome).increment(1);
        if let Some(members) = members {
            gauge!(REGISTRY_MEMBERS, "node" => self.node.clone()).set(members as f64);
        }
    }

    pub(crate) fn heartbeat_published(&self) {
        counter!(HEARTBEATS_PUBLISHED, "node" => self.node.clone()).increment(1);
    }

    pub(crate) fn heartbeat_received(&self) {
        counter!(HEARTBEATS_RECEIVED, "node" => self.node.clone()).increment(1);
    }

    pub(crate) fn book_update_coalesced(&self, reason: &'static str) {
        counter!(BOOK_UPDATES_COALESCED, "node" => self.node.clone(), "reason" => reason)
            .increment(1);
    }

    pub(crate) fn heartbeat_rejected(&self, reason: &'static str) {
        counter!(HEARTBEATS_REJECTED, "node" => self.node.clone(), "reason" => reason).increment(1);
    }

    pub(crate) fn peer_exchange(&self, asked: bool, found: bool) {
        let role = if asked { "asked" } else { "answered" };
        let result = if found { "found" } else { "empty" };
        counter!(PEER_EXCHANGE, "node" => self.node.clone(), "role" => role, "result" => result)
            .increment(1);
    }

    pub(crate) fn kademlia_lookup(&self, found: bool) {
        let result = if found { "found" } else { "not_found" };
        counter!(KADEMLIA_LOOKUPS, "node" => self.node.clone(), "result" => result).increment(1);
    }

    /// Counts a hole punching attempt.
    pub(crate) fn hole_punch(&self, direct: bool) {
        let result = if direct { "direct" } else { "failed" };
        counter!(HOLE_PUNCHES, "node" => self.node.clone(), "result" => result).increment(1);
    }

    /// Registers the reputation families at 0, with each of `violations`
    /// (the labels of `reputation::Violation`).
    pub(crate) fn preregister_reputation(&self, violations: &[&'static str]) {
        for violation in violations {
            counter!(PEER_VIOLATIONS, "node" => self.node.clone(), "violation" => *violation)
                .increment(0);
        }
        for reason in ["misbehaved", "operator"] {
            counter!(PEERS_BANNED, "node" => self.node.clone(), "reason" => reason).increment(0);
        }
        self.bans_now(0);
    }

    /// Counts a protocol violation.
    pub(crate) fn violation(&self, violation: &'static str) {
        counter!(PEER_VIOLATIONS, "node" => self.node.clone(), "violation" => violation)
            .increment(1);
    }

    /// Counts a ban; `now` peers are banned.
    pub(crate) fn banned(&self, reason: &'static str, now: usize) {
        counter!(PEERS_BANNED, "node" => self.node.clone(), "reason" => reason).increment(1);
        self.bans_now(now);
    }

    /// Sets the number of peers banned now.
    pub(crate) fn bans_now(&self, now: usize) {
        gauge!(BANNED_PEERS, "node" => self.node.clone()).set(now as f64);
    }

    /// Counts a failed actor.
    pub(crate) fn actor_failed(&self, actor: &'static str) {
        counter!(ACTOR_FAILURES, "node" => self.node.clone(), "actor" => actor).increment(1);
    }

    /// Counts a restarted actor.
    pub(crate) fn actor_restarted(&self, actor: &'static str) {
        counter!(ACTOR_RESTARTS, "node" => self.node.clone(), "actor" => actor).increment(1);
    }
}
