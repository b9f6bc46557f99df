//! The registry on chain: a subnet's nodes, identities and addresses as the
//! Hypertensor chain lists them.
//!
//! [`HypertensorRegistry`] asks a chain node over JSON-RPC 2.0 (HTTP or
//! WebSocket, one URL: `http://`, `https://`, `ws://` or `wss://`) with the
//! calls the Python subnet template makes (`subnet/hypertensor/chain_functions.py`):
//!
//! - `network_getSubnetNodesInfo [subnet_id]`: the SCALE encoding of the
//!   subnet's `Vec<SubnetNodeInfo>`, as a JSON array of integers; decoded
//!   with one of the supported [`Layout`]s, configured or detected;
//! - `network_getBootnodes [subnet_id]`: the SCALE encoding of
//!   `AllSubnetBootnodes` (peer id to multiaddr maps);
//! - `network_proofOfStake [subnet_id, peer_id, min_class]`: whether a peer
//!   id belongs to a node of at least that class (a JSON boolean).
//!
//! Peer ids travel as the bytes of their base58 text (`12D3KooW…`), as the
//! chain stores them; multiaddrs as binary multiaddrs (a multiaddr's text,
//! starting with `/`, is read too). Each node gives up to three members, its
//! main, bootnode and client identities, with its subnet node id; a node
//! below the configured minimum class gives none. An address the chain would
//! not accept (QUIC, say: the chain takes only `ip4`, `ip6`, `dns4`, `dns6`,
//! `dnsaddr`, `tcp`, `udp`, `ws`, `wss` and `p2p`) or that ends in another
//! peer's id is skipped and reported, not the member. A read that fails
//! (RPC error, timeout, undecodable bytes) is a [`ChainError`]; the address
//! book keeps what the last good read gave.
//!
//! With gating, a peer the node list does not list is refused; with
//! [`HypertensorConfig::proof_of_stake`], the chain is asked about it
//! (`network_proofOfStake`, which also admits overwatch nodes and official
//! bootnodes) while its first connection is refused, and the answer, kept
//! 5 min, decides its next attempts.
//!
//! Files: this one ([`HypertensorRegistry`], [`HypertensorConfig`],
//! [`ChainError`]), `rpc.rs` (the JSON-RPC client: HTTP or WebSocket, the
//! three calls, timeouts), `layout.rs` (the SCALE layouts), `members.rs`
//! (the answers decoded into a [`Snapshot`], the snapshot into members)
//! and `addresses.rs` (the chain's address policy: [`multiaddr`],
//! [`registration_multiaddr`], [`chain_accepts`]).

use std::{collections::HashSet, sync::Mutex, time::Duration};

use futures::future::BoxFuture;
use libp2p::PeerId;

use super::{Member, Registry, RegistryError};

mod addresses;
pub mod layout;
mod members;
mod rpc;

pub use addresses::{chain_accepts, multiaddr, registration_multiaddr};
pub use layout::{Bootnodes, Layout, LayoutError, NodeClass, NodeInfo, PeerInfo};
pub use members::{ChainNode, Identity, Role, Skipped, Snapshot, detect, snapshot};

/// The most nodes (and bootnodes) one read may list; a longer answer is an
/// error ([`ChainError::TooMany`]) and the last good read is kept.
pub const MAX_NODES: usize = 16_384;

/// The largest JSON-RPC answer read: 16 MiB (a `SubnetNodeInfo` of the
/// `coldkey` layout is ≈ 450 B of SCALE, ≈ 1.6 KB as a JSON array).
pub const MAX_RESPONSE_SIZE: u32 = 16 * 1024 * 1024;

/// Where and how to read the chain.
#[derive(Debug, Clone)]
pub struct HypertensorConfig {
    /// The chain node's JSON-RPC URL (`http://`, `https://`, `ws://`, `wss://`).
    pub url: String,
    /// The subnet.
    pub subnet_id: u32,
    /// The layout of `SubnetNodeInfo`; `None` detects it (the one layout
    /// that decodes the whole answer) and keeps it once found.
    pub layout: Option<Layout>,
    /// Nodes below this class are not members: [`NodeClass::Registered`]
    /// (every node, the template's gate) by default.
    pub min_class: NodeClass,
    /// Time one RPC call may take (connecting included): 8 s by default,
    /// below the address book's registry timeout (10 s), so that a slow
    /// chain's own error is what a failed read reports.
    pub timeout: Duration,
    /// With gating, ask `network_proofOfStake` about a peer the node list
    /// does not list (an overwatch node, say) instead of refusing it
    /// outright; off by default.
    pub proof_of_stake: bool,
}

impl HypertensorConfig {
    /// Reads subnet `subnet_id` at `url`, layout detected, every class, 8 s
    /// per call.
    pub fn new(url: impl Into<String>, subnet_id: u32) -> Self {
        Self {
            url: url.into(),
            subnet_id,
            layout: None,
            min_class: NodeClass::Registered,
            timeout: Duration::from_secs(8),
            proof_of_stake: false,
        }
    }
}

/// Why the chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The URL is not `http(s)://` or `ws(s)://`.
    #[error("unsupported chain RPC URL `{0}` (expected http://, https://, ws:// or wss://)")]
    Url(String),
    /// The chain node could not be reached.
    #[error("cannot reach the chain node at {url}: {reason}")]
    Connect {
        /// The URL.
        url: String,
        /// The transport's complaint.
        reason: String,
    },
    /// The call took longer than the configured timeout.
    #[error("{method} took longer than {after:?}")]
    Timeout {
        /// The RPC method.
        method: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The chain node answered with a JSON-RPC error, or not with the
    /// expected JSON.
    #[error("{method} failed: {reason}")]
    Rpc {
        /// The RPC method.
        method: &'static str,
        /// The error, as the node or the client put it.
        reason: String,
    },
    /// The answer does not decode as the configured layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// No supported layout decodes the whole answer.
    #[error("no supported layout decodes the {bytes}-byte node list: {}", summary(.tried))]
    UnknownLayout {
        /// Its size.
        bytes: usize,
        /// Each layout's failure.
        tried: Vec<LayoutError>,
    },
    /// Several layouts decode the answer, to different nodes: configure one.
    #[error("the node list decodes as several layouts ({}): set the layout", names(.layouts))]
    AmbiguousLayout {
        /// Those layouts.
        layouts: Vec<Layout>,
    },
    /// The bootnodes answer does not decode.
    #[error("not an AllSubnetBootnodes: {0}")]
    Bootnodes(String),
    /// The answer lists more nodes than [`MAX_NODES`].
    #[error("the chain lists {count} entries, more than the {max} read")]
    TooMany {
        /// How many.
        count: usize,
        /// The bound.
        max: usize,
    },
}

/// An error on one line (`error::one_line`), at most 300
/// characters: decoder and RPC complaints go into single log lines.
pub(crate) fn short(error: &impl std::fmt::Display) -> String {
    let mut line = crate::error::one_line(error);
    if line.len() > 300 {
        let mut end = 300;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

fn summary(tried: &[LayoutError]) -> String {
    tried
        .iter()
        .map(|e| format!("{}: {}", e.layout, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn names(layouts: &[Layout]) -> String {
    layouts
        .iter()
        .map(|l| l.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The registry on the Hypertensor chain (see the [module](self) docs).
pub struct HypertensorRegistry {
    config: HypertensorConfig,
    client: rpc::Client,
    /// The layout detected, kept while it decodes the answers.
    detected: Mutex<Option<Layout>>,
    /// Entries already warned about (skipped, or an empty subnet), so that
    /// each is logged once, not at every read; at most [`MAX_NODES`].
    warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for HypertensorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HypertensorRegistry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HypertensorRegistry {
    /// A registry reading the chain as `config` says; nothing is asked yet.
    pub fn new(config: HypertensorConfig) -> Result<Self, ChainError> {
        Ok(Self {
            client: rpc::Client::new(&config.url, config.timeout)?,
            config,
            detected: Mutex::new(None),
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &HypertensorConfig {
        &self.config
    }

    /// Reads the node list and the bootnodes.
    pub async fn read(&self) -> Result<Snapshot, ChainError> {
        let (nodes, bootnodes) = self.client.read(self.config.subnet_id).await?;
        let (layout, nodes) = self.decode_nodes(&nodes)?;
        let bootnodes = Bootnodes::from_scale(&bootnodes).map_err(ChainError::Bootnodes)?;
        snapshot(layout, nodes, bootnodes)
    }

    /// Decodes the node list with the configured layout, the one detected
    /// before, or the one layout that decodes it whole.
    fn decode_nodes(&self, bytes: &[u8]) -> Result<(Option<Layout>, Vec<NodeInfo>), ChainError> {
        if let Some(layout) = self.config.layout {
            return Ok((Some(layout), layout.decode_nodes(bytes)?));
        }
        let detected = *self.detected.lock().expect("layout lock poisoned");
        if let Some(layout) = detected {
            match layout.decode_nodes(bytes) {
                Ok(nodes) => return Ok((Some(layout), nodes)),
                // The chain's runtime was upgraded, say: detect again.
                Err(e) => tracing::warn!("{e}: detecting the layout again"),
            }
        }
        let (layout, nodes) = detect(bytes)?;
        if let Some(layout) = layout.filter(|l| Some(*l) != detected) {
            tracing::info!(%layout, "detected the chain's SubnetNodeInfo layout");
            *self.detected.lock().expect("layout lock poisoned") = Some(layout);
        }
        Ok((layout, nodes))
    }

    /// Whether the chain says `peer` is an identity of a node of at least
    /// `min_class` (with enough stake) in the subnet, an overwatch node or
    /// an official bootnode (`network_proofOfStake`).
    pub async fn proof_of_stake(
        &self,
        peer: &PeerId,
        min_class: NodeClass,
    ) -> Result<bool, ChainError> {
        self.client
            .proof_of_stake(self.config.subnet_id, peer, min_class)
            .await
    }
}

impl Registry for HypertensorRegistry {
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, RegistryError>> {
        Box::pin(async move {
            let snapshot = self.read().await.map_err(RegistryError::Chain)?;
            let mut warned = self.warned.lock().expect("warned lock poisoned");
            if warned.len() >= MAX_NODES {
                warned.clear();
            }
            if snapshot.nodes.is_empty()
                && snapshot.bootnodes.is_empty()
                && warned.insert("empty".to_owned())
            {
                tracing::warn!(
                    subnet = self.config.subnet_id,
                    "the chain lists no node and no bootnode for this subnet: is the subnet id right?"
                );
            }
            for skipped in &snapshot.skipped {
                let key = format!("{} {}", skipped.peer_id, skipped.reason);
                if warned.insert(key) {
                    tracing::warn!(
                        node = skipped.subnet_node_id,
                        peer = %skipped.peer_id,
                        "chain registry entry skipped: {}",
                        skipped.reason
                    );
                }
            }
            drop(warned);
            Ok(snapshot.members(self.config.min_class))
        })
    }

    fn checks_peers(&self) -> bool {
        self.config.proof_of_stake
    }

    fn check(&self, peer: PeerId) -> BoxFuture<'_, Result<bool, RegistryError>> {
        Box::pin(async move {
            self.proof_of_stake(&peer, self.config.min_class)
                .await
                .map_err(RegistryError::Chain)
        })
    }
}
