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

use std::{
    collections::{BTreeMap, btree_map},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use jsonrpsee::{
    core::{ClientError, client::ClientT, params::ArrayParams},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
    ws_client::{WsClient, WsClientBuilder},
};
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use serde::de::DeserializeOwned;

use super::{Member, Registry, RegistryError};

pub mod layout;

pub use layout::{Bootnodes, Layout, LayoutError, NodeClass, NodeInfo, PeerInfo};

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

/// An error on one line (`call::error::one_line`), at most 300
/// characters: decoder and RPC complaints go into single log lines.
pub(crate) fn short(error: &impl std::fmt::Display) -> String {
    let mut line = crate::call::error::one_line(error);
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

/// An entry of the chain's answer left out of the members, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The subnet node id, if the entry is a node's (0 for a bootnode).
    pub subnet_node_id: u32,
    /// The peer id's text, or the bytes' debug form if they are not text.
    pub peer_id: String,
    /// Why.
    pub reason: String,
}

/// One identity of a node as the chain lists it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The peer id.
    pub peer_id: PeerId,
    /// Which of the node's identities it is.
    pub role: Role,
    /// Its registered multiaddr, without its `/p2p` suffix, if any was
    /// registered and usable.
    pub address: Option<Multiaddr>,
}

/// Which identity of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its main identity (`peer_info`).
    Main,
    /// Its bootnode identity (`bootnode_peer_info`).
    Bootnode,
    /// Its client identity (`client_peer_info`).
    Client,
    /// One of the subnet's official bootnodes (`network_getBootnodes`).
    SubnetBootnode,
}

impl Role {
    /// Its name in `subnet registry`'s output.
    pub fn name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Bootnode => "bootnode",
            Role::Client => "client",
            Role::SubnetBootnode => "subnet-bootnode",
        }
    }
}

/// One node as the chain lists it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainNode {
    /// Its subnet node id.
    pub subnet_node_id: u32,
    /// Its class and the epoch it holds from.
    pub classification: layout::Classification,
    /// Its stake.
    pub stake_balance: u128,
    /// Its usable identities (main, bootnode, client).
    pub identities: Vec<Identity>,
}

/// What one read of the chain gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The layout the node list was decoded with (`None`: the list was empty).
    pub layout: Option<Layout>,
    /// Every node listed, whatever its class.
    pub nodes: Vec<ChainNode>,
    /// The subnet's official bootnodes.
    pub bootnodes: Vec<Identity>,
    /// Entries left out, and why.
    pub skipped: Vec<Skipped>,
}

impl Snapshot {
    /// The members: every identity of the nodes of at least `min_class`
    /// (with their node id), and the subnet's official bootnodes (node id
    /// 0: unknown), one member per peer id, its addresses merged.
    pub fn members(&self, min_class: NodeClass) -> Vec<Member> {
        let mut members: BTreeMap<PeerId, Member> = BTreeMap::new();
        let nodes = self
            .nodes
            .iter()
            .filter(|n| n.classification.node_class >= min_class)
            .flat_map(|n| {
                n.identities
                    .iter()
                    .map(|i| (u64::from(n.subnet_node_id), i))
            });
        let bootnodes = self.bootnodes.iter().map(|i| (0, i));
        for (subnet_node_id, identity) in nodes.chain(bootnodes) {
            let member = match members.entry(identity.peer_id) {
                btree_map::Entry::Vacant(e) => e.insert(Member {
                    peer_id: identity.peer_id,
                    subnet_node_id,
                    addresses: Vec::new(),
                }),
                btree_map::Entry::Occupied(e) => e.into_mut(),
            };
            if member.subnet_node_id == 0 {
                member.subnet_node_id = subnet_node_id;
            }
            if let Some(address) = &identity.address
                && !member.addresses.contains(address)
            {
                member.addresses.push(address.clone());
            }
        }
        members.into_values().collect()
    }
}

/// The registry on the Hypertensor chain (see the [module](self) docs).
pub struct HypertensorRegistry {
    config: HypertensorConfig,
    http: Option<HttpClient>,
    /// The WebSocket client, connected on first use and again after it
    /// disconnected.
    ws: tokio::sync::Mutex<Option<Arc<WsClient>>>,
    /// The layout detected, kept while it decodes the answers.
    detected: Mutex<Option<Layout>>,
    /// Entries already warned about (skipped, or an empty subnet), so that
    /// each is logged once, not at every read; at most [`MAX_NODES`].
    warned: Mutex<std::collections::HashSet<String>>,
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
        let url = config.url.as_str();
        let http = if url.starts_with("http://") || url.starts_with("https://") {
            Some(
                HttpClientBuilder::default()
                    .request_timeout(config.timeout)
                    .max_response_size(MAX_RESPONSE_SIZE)
                    .build(url)
                    .map_err(|e| ChainError::Connect {
                        url: url.to_owned(),
                        reason: e.to_string(),
                    })?,
            )
        } else if url.starts_with("ws://") || url.starts_with("wss://") {
            None
        } else {
            return Err(ChainError::Url(config.url.clone()));
        };
        Ok(Self {
            config,
            http,
            ws: tokio::sync::Mutex::new(None),
            detected: Mutex::new(None),
            warned: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &HypertensorConfig {
        &self.config
    }

    /// One JSON-RPC call, within the configured timeout.
    async fn call<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: ArrayParams,
    ) -> Result<R, ChainError> {
        let after = self.config.timeout;
        let call = async {
            let answer = match &self.http {
                Some(http) => http.request(method, params).await,
                None => self.websocket().await?.request(method, params).await,
            };
            answer.map_err(|e| match e {
                ClientError::RequestTimeout => ChainError::Timeout { method, after },
                ClientError::Transport(e) => ChainError::Connect {
                    url: self.config.url.clone(),
                    reason: e.to_string(),
                },
                ClientError::RestartNeeded(e) => ChainError::Connect {
                    url: self.config.url.clone(),
                    reason: e.to_string(),
                },
                e => ChainError::Rpc {
                    method,
                    reason: short(&e),
                },
            })
        };
        tokio::time::timeout(after, call)
            .await
            .unwrap_or(Err(ChainError::Timeout { method, after }))
    }

    /// The WebSocket client, connecting (again) if it is not connected.
    async fn websocket(&self) -> Result<Arc<WsClient>, ChainError> {
        let mut ws = self.ws.lock().await;
        if let Some(client) = ws.as_ref().filter(|c| c.is_connected()) {
            return Ok(client.clone());
        }
        let client = WsClientBuilder::default()
            .request_timeout(self.config.timeout)
            .connection_timeout(self.config.timeout)
            .max_response_size(MAX_RESPONSE_SIZE)
            .build(&self.config.url)
            .await
            .map_err(|e| ChainError::Connect {
                url: self.config.url.clone(),
                reason: e.to_string(),
            })?;
        let client = Arc::new(client);
        *ws = Some(client.clone());
        Ok(client)
    }

    /// Reads the node list and the bootnodes.
    pub async fn read(&self) -> Result<Snapshot, ChainError> {
        let subnet = self.config.subnet_id;
        // Both at once: a read takes one call's time, within the address
        // book's registry timeout.
        let (nodes, bootnodes): (Vec<u8>, Vec<u8>) = futures::try_join!(
            self.call("network_getSubnetNodesInfo", rpc_params![subnet]),
            self.call("network_getBootnodes", rpc_params![subnet]),
        )?;
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
        let peer_id = peer.to_base58().into_bytes();
        self.call(
            "network_proofOfStake",
            rpc_params![self.config.subnet_id, peer_id, min_class as u8],
        )
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

/// The one layout that decodes `bytes` whole; `None` for an empty list
/// (which every layout decodes).
pub fn detect(bytes: &[u8]) -> Result<(Option<Layout>, Vec<NodeInfo>), ChainError> {
    let mut decoded: Vec<(Layout, Vec<NodeInfo>)> = Vec::new();
    let mut tried = Vec::new();
    for layout in Layout::ALL {
        match layout.decode_nodes(bytes) {
            Ok(nodes) => decoded.push((layout, nodes)),
            Err(e) => tried.push(e),
        }
    }
    match decoded.len() {
        0 => Err(ChainError::UnknownLayout {
            bytes: bytes.len(),
            tried,
        }),
        _ if decoded[0].1.is_empty() => Ok((None, Vec::new())),
        1 => {
            let (layout, nodes) = decoded.remove(0);
            Ok((Some(layout), nodes))
        }
        _ => Err(ChainError::AmbiguousLayout {
            layouts: decoded.into_iter().map(|(l, _)| l).collect(),
        }),
    }
}

/// Turns decoded answers into a snapshot: peer ids and addresses parsed,
/// unusable entries skipped with a reason.
pub fn snapshot(
    layout: Option<Layout>,
    nodes: Vec<NodeInfo>,
    bootnodes: Bootnodes,
) -> Result<Snapshot, ChainError> {
    let count = nodes.len() + bootnodes.subnet_bootnodes.len();
    if count > MAX_NODES {
        return Err(ChainError::TooMany {
            count,
            max: MAX_NODES,
        });
    }
    let mut out = Snapshot {
        layout,
        ..Snapshot::default()
    };
    let mut seen: BTreeMap<PeerId, u32> = BTreeMap::new();
    for node in nodes {
        let id = node.subnet_node_id;
        let infos = [
            (Role::Main, node.peer_info),
            (Role::Bootnode, node.bootnode_peer_info),
            (Role::Client, node.client_peer_info),
        ];
        let identities = infos
            .into_iter()
            .filter_map(|(role, info)| {
                let info = info?;
                let identity = identity(
                    id,
                    role,
                    &info.peer_id,
                    info.multiaddr.as_deref(),
                    &mut out.skipped,
                )?;
                match seen.get(&identity.peer_id) {
                    Some(first) if *first != id => {
                        out.skipped.push(Skipped {
                            subnet_node_id: id,
                            peer_id: identity.peer_id.to_string(),
                            reason: format!(
                                "{} identity: already an identity of node {first}",
                                role.name()
                            ),
                        });
                        None
                    }
                    _ => {
                        seen.insert(identity.peer_id, id);
                        Some(identity)
                    }
                }
            })
            .collect();
        out.nodes.push(ChainNode {
            subnet_node_id: id,
            classification: node.classification,
            stake_balance: node.stake_balance,
            identities,
        });
    }
    for (peer_id, address) in &bootnodes.subnet_bootnodes {
        if let Some(identity) = identity(
            0,
            Role::SubnetBootnode,
            peer_id,
            Some(address),
            &mut out.skipped,
        ) {
            out.bootnodes.push(identity);
        }
    }
    // The nodes' bootnode identities are in the node list already, with the
    // same address (the chain builds this map from it).
    Ok(out)
}

/// Parses one identity; `None` (and a [`Skipped`]) if its peer id is not
/// one. An unusable address is skipped, the identity kept.
fn identity(
    subnet_node_id: u32,
    role: Role,
    peer_id: &[u8],
    address: Option<&[u8]>,
    skipped: &mut Vec<Skipped>,
) -> Option<Identity> {
    let text = String::from_utf8_lossy(peer_id).into_owned();
    let mut skip = |reason: String| {
        skipped.push(Skipped {
            subnet_node_id,
            peer_id: text.clone(),
            reason,
        })
    };
    let Ok(peer) = std::str::from_utf8(peer_id)
        .map_err(|_| ())
        .and_then(|t| t.parse::<PeerId>().map_err(|_| ()))
    else {
        skip(format!("{} identity: not a peer id", role.name()));
        return None;
    };
    let address = match address.map(|bytes| multiaddr(bytes, &peer)) {
        None => None,
        Some(Ok(address)) => Some(address),
        Some(Err(reason)) => {
            skip(format!("{} identity's address: {reason}", role.name()));
            None
        }
    };
    Some(Identity {
        peer_id: peer,
        role,
        address,
    })
}

/// Parses a registered multiaddr (binary, or text starting with `/`) of
/// `peer`: only the chain's protocols, a `/p2p` suffix (if any) naming
/// `peer`, which is removed.
pub fn multiaddr(bytes: &[u8], peer: &PeerId) -> Result<Multiaddr, String> {
    let mut address = if bytes.first() == Some(&b'/') {
        std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8 text".to_owned())?
            .parse::<Multiaddr>()
            .map_err(|e| format!("not a multiaddr: {e}"))?
    } else {
        Multiaddr::try_from(bytes.to_vec()).map_err(|e| format!("not a binary multiaddr: {e}"))?
    };
    check_protocols(&address)?;
    check_dialable(&address)?;
    if let Some(Protocol::P2p(named)) = address.iter().last() {
        if named != *peer {
            return Err(format!("`{address}` names another peer"));
        }
        address.pop();
    }
    Ok(address)
}

/// The multiaddr `peer` registers on chain to be reached at `address`: only
/// protocols the chain accepts, ending in `/p2p/<peer>` (appended if
/// absent), as the chain requires. Its binary form is `to_vec()`.
pub fn registration_multiaddr(address: &Multiaddr, peer: &PeerId) -> Result<Multiaddr, String> {
    check_protocols(address)?;
    check_dialable(address)?;
    match address.iter().last() {
        None => Err("empty multiaddr".to_owned()),
        Some(Protocol::P2p(named)) if named != *peer => {
            Err(format!("`{address}` ends in another peer's id, not {peer}"))
        }
        Some(Protocol::P2p(_)) => Ok(address.clone()),
        Some(_) => Ok(address.clone().with(Protocol::P2p(*peer))),
    }
}

/// Refuses an address no other node could dial: none, an unspecified IP
/// (`0.0.0.0`, `::`), port 0, or no TCP port (a bare UDP port is nothing
/// the chain's protocols can run over; `/dnsaddr` needs none).
fn check_dialable(address: &Multiaddr) -> Result<(), String> {
    if address.iter().next().is_none() {
        return Err("empty multiaddr".to_owned());
    }
    for protocol in address.iter() {
        match protocol {
            Protocol::Ip4(ip) if ip.is_unspecified() => {
                return Err(format!(
                    "`{address}`: {ip} is no host another node can reach"
                ));
            }
            Protocol::Ip6(ip) if ip.is_unspecified() => {
                return Err(format!(
                    "`{address}`: {ip} is no host another node can reach"
                ));
            }
            Protocol::Tcp(0) => {
                return Err(format!(
                    "`{address}`: port 0 is no port another node can reach"
                ));
            }
            Protocol::Tcp(_) | Protocol::Dnsaddr(_) => return Ok(()),
            _ => {}
        }
    }
    Err(format!("`{address}` has no TCP port"))
}

/// Refuses a multiaddr with a protocol the chain does not accept.
fn check_protocols(address: &Multiaddr) -> Result<(), String> {
    match address.iter().find(|p| !chain_accepts(p)) {
        Some(other) => Err(format!(
            "`{address}`: the chain does not accept {} (only ip4, ip6, dns4, dns6, dnsaddr, tcp, udp, ws, wss, p2p)",
            other.tag()
        )),
        None => Ok(()),
    }
}

/// Whether the chain's multiaddr check takes this protocol
/// (hypertensor-blockchain `utilities/multiaddr.rs`).
pub fn chain_accepts(protocol: &Protocol<'_>) -> bool {
    matches!(
        protocol,
        Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_)
            | Protocol::Dnsaddr(_)
            | Protocol::Tcp(_)
            | Protocol::Udp(_)
            | Protocol::Ws(_)
            | Protocol::Wss(_)
            | Protocol::P2p(_)
    )
}
