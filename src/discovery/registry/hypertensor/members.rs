//! What one read of the chain gives: the decoded node list and bootnodes
//! turned into a [`Snapshot`] (nodes, their identities, entries skipped and
//! why), and the snapshot turned into the registry's [`Member`]s.
//!
//! A peer id travels as the bytes of its base58 text; an identity whose
//! bytes are no peer id is skipped, one whose address is unusable
//! (`addresses.rs` decides) keeps its peer id without the address.

use std::collections::{BTreeMap, btree_map};

use libp2p::{Multiaddr, PeerId};

use super::{
    ChainError, MAX_NODES,
    addresses::multiaddr,
    layout::{self, Bootnodes, Layout, NodeClass, NodeInfo},
};
use crate::discovery::registry::Member;

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
