//! The node's configuration: a TOML file, overridden by flags.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// What `subnet node` runs with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeConfig {
    /// Key file (Python template format); a new key is generated if absent.
    pub(crate) key: Option<PathBuf>,
    /// Listen multiaddrs.
    #[serde(default)]
    pub(crate) listen: Vec<String>,
    /// Bootstrap peers: multiaddrs ending in /p2p/<peer id>.
    #[serde(default)]
    pub(crate) bootstrap: Vec<String>,
    /// The subnet's id.
    pub(crate) subnet_id: Option<u64>,
    /// This node's subnet node id.
    pub(crate) subnet_node_id: Option<u64>,
    /// A registry file shared by the subnet's nodes.
    pub(crate) registry: Option<PathBuf>,
    /// The Hypertensor chain's JSON-RPC URL, to read the registry from.
    #[cfg(feature = "chain")]
    pub(crate) chain_rpc: Option<String>,
    /// The chain's SubnetNodeInfo layout (default: detected).
    #[cfg(feature = "chain")]
    #[serde(default, deserialize_with = "from_text")]
    pub(crate) chain_layout: Option<subnet::registry::hypertensor::Layout>,
    /// The lowest class of a member node (default: registered).
    #[cfg(feature = "chain")]
    #[serde(default, deserialize_with = "from_text")]
    pub(crate) chain_min_class: Option<subnet::registry::hypertensor::NodeClass>,
    /// Ask the chain about a peer its node list does not list.
    #[cfg(feature = "chain")]
    pub(crate) chain_proof_of_stake: Option<bool>,
    /// Admit everyone until the registry is first read (default: nobody).
    pub(crate) gating_fail_open: Option<bool>,
    /// Seconds between two heartbeats.
    pub(crate) heartbeat_interval: Option<f64>,
    /// Peers to stay connected to at most (default 64).
    pub(crate) max_peers: Option<usize>,
    /// Where to serve Prometheus metrics, e.g. 127.0.0.1:9100.
    pub(crate) metrics: Option<SocketAddr>,
    /// Refuse connections from peers outside the registry.
    pub(crate) gating: Option<bool>,
    /// Relay for other peers (those behind NAT).
    pub(crate) relay_server: Option<bool>,
    /// Relays to reserve a slot on and be called through: multiaddrs ending
    /// in /p2p/<peer id>.
    #[serde(default)]
    pub(crate) relays: Vec<String>,
    /// Addresses other hosts reach this node at that its listeners cannot
    /// know (a public IP, a forwarded port).
    #[serde(default)]
    pub(crate) external_addresses: Vec<String>,
    /// Publish and read signed heartbeats (default true).
    pub(crate) heartbeat: Option<bool>,
    /// Also read and publish the Python template's JSON heartbeat.
    pub(crate) template_heartbeat: Option<bool>,
    /// The template's subnet slot, in blocks (default 3).
    pub(crate) template_slot: Option<u64>,
    /// The template's epoch length, in blocks (default 20).
    pub(crate) template_epoch_length: Option<u64>,
    /// The one GossipSub protocol id to speak, e.g. /meshsub/2.0.0.
    pub(crate) gossipsub_protocol: Option<String>,
    /// Offer Noise under /pos-transport/1.0.0 too.
    pub(crate) pos_transport: Option<bool>,
    /// Serve and use peer exchange (default true).
    pub(crate) peer_exchange: Option<bool>,
    /// Run Kademlia (default true).
    pub(crate) kademlia: Option<bool>,
    /// Upgrade relayed connections by hole punching, DCUtR (default true).
    pub(crate) hole_punching: Option<bool>,
    /// `"text"` (default) or `"json"`: how log lines are written.
    pub(crate) log_format: Option<super::LogFormat>,
}

/// Reads a value from its text form (`FromStr`).
#[cfg(feature = "chain")]
fn from_text<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl NodeConfig {
    /// Reads a config file; the error is one line naming the problem.
    pub(crate) fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1))
                .map(|line| format!(" (line {line})"))
                .unwrap_or_default();
            format!(
                "config file {}: {}{line}",
                path.display(),
                e.message().replace('\n', " ")
            )
        })
    }

    /// The heartbeat interval, if set and sane.
    pub(crate) fn heartbeat_interval(&self) -> Result<Option<Duration>, String> {
        match self.heartbeat_interval {
            None => Ok(None),
            Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
            Some(s) => Err(format!(
                "heartbeat_interval must be a positive number of seconds, not {s}"
            )),
        }
    }
}
