//! The SCALE layouts of what Hypertensor's `network_*` RPC methods return.
//!
//! `network_getSubnetNodesInfo` answers with the SCALE encoding of a
//! `Vec<SubnetNodeInfo>`, whose fields changed between chain versions; each
//! supported version is one [`Layout`]. The field lists below are the
//! chain's (hayotensor/hypertensor-blockchain,
//! `pallets/network/src/rpc_info/info.rs`), in their SCALE order; the
//! `coldkey` one is also the Python subnet template's own type registry
//! (`subnet/hypertensor/chain_data.py`, `custom_rpc_type_registry`).
//! A blob is decoded whole: bytes left over are an error, never ignored.

use std::{collections::BTreeMap, fmt, str::FromStr};

use parity_scale_codec::{Decode, DecodeAll, Encode};

/// A version of the chain's `SubnetNodeInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// With coldkey, delegate account, identity and coldkey reputation,
    /// `subnet_node_reputation: u128` (22 fields): the chain from
    /// 2026-01-21 (56a4cb2) to 2026-04-22, and the template's type registry.
    Coldkey,
    /// As [`Layout::Coldkey`] with `subnet_node_reputation: Option<u128>`:
    /// the chain from 2026-04-22 (b8764c2) to 2026-06-03.
    ColdkeyOptionalReputation,
    /// `validator_id: Option<u32>` first, the delegate, identity and
    /// coldkey reputation fields gone (16 fields): the chain's main branch
    /// from 2026-06-03 (7c0b990; e9620fe).
    Validator,
    /// As [`Layout::Validator`] with `peer_info: Option<PeerInfo>`: the
    /// chain's stake-weight branch (4238cb6, 2026-06-27).
    ValidatorOptionalPeer,
}

impl Layout {
    /// Every supported layout, in the order detection tries them.
    pub const ALL: [Layout; 4] = [
        Layout::Coldkey,
        Layout::ColdkeyOptionalReputation,
        Layout::Validator,
        Layout::ValidatorOptionalPeer,
    ];

    /// Its name in configuration (`--chain-layout`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Coldkey => "coldkey",
            Layout::ColdkeyOptionalReputation => "coldkey-optional-reputation",
            Layout::Validator => "validator",
            Layout::ValidatorOptionalPeer => "validator-optional-peer",
        }
    }

    /// Decodes a whole `Vec<SubnetNodeInfo>` of this layout.
    pub fn decode_nodes(self, bytes: &[u8]) -> Result<Vec<NodeInfo>, LayoutError> {
        fn all<T: Decode>(layout: Layout, bytes: &[u8]) -> Result<Vec<T>, LayoutError> {
            decode_whole(bytes).map_err(|reason| LayoutError { layout, reason })
        }
        Ok(match self {
            Layout::Coldkey => all::<ColdkeyNode<u128>>(self, bytes)?
                .into_iter()
                .map(ColdkeyNode::into_info)
                .collect(),
            Layout::ColdkeyOptionalReputation => all::<ColdkeyNode<Option<u128>>>(self, bytes)?
                .into_iter()
                .map(ColdkeyNode::into_info)
                .collect(),
            Layout::Validator => all::<ValidatorNode<PeerInfo>>(self, bytes)?
                .into_iter()
                .map(|n| n.into_info(Some))
                .collect(),
            Layout::ValidatorOptionalPeer => all::<ValidatorNode<Option<PeerInfo>>>(self, bytes)?
                .into_iter()
                .map(|n| n.into_info(|p| p))
                .collect(),
        })
    }
}

impl Layout {
    /// Encodes `nodes` as this layout's `Vec<SubnetNodeInfo>`, as a chain
    /// node would answer `network_getSubnetNodesInfo` (for tests and mock
    /// chains). Fields [`NodeInfo`] does not hold are zero or empty; a node
    /// without a main identity gets an empty one, except in
    /// [`Layout::ValidatorOptionalPeer`].
    pub fn encode_nodes(self, nodes: &[NodeInfo]) -> Vec<u8> {
        let main = |n: &NodeInfo| {
            n.peer_info.clone().unwrap_or(PeerInfo {
                peer_id: Vec::new(),
                multiaddr: None,
            })
        };
        match self {
            Layout::Coldkey => nodes
                .iter()
                .map(|n| ColdkeyNode::from_info(n, main(n), 0u128))
                .collect::<Vec<_>>()
                .encode(),
            Layout::ColdkeyOptionalReputation => nodes
                .iter()
                .map(|n| ColdkeyNode::from_info(n, main(n), None::<u128>))
                .collect::<Vec<_>>()
                .encode(),
            Layout::Validator => nodes
                .iter()
                .map(|n| ValidatorNode::from_info(n, main(n)))
                .collect::<Vec<_>>()
                .encode(),
            Layout::ValidatorOptionalPeer => nodes
                .iter()
                .map(|n| ValidatorNode::from_info(n, n.peer_info.clone()))
                .collect::<Vec<_>>()
                .encode(),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(&Layout::ALL, Layout::name, s, "layout")
    }
}

/// A blob that does not decode as a layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Vec<SubnetNodeInfo> of the `{layout}` layout: {reason}")]
pub struct LayoutError {
    /// The layout tried.
    pub layout: Layout,
    /// What went wrong: the decoder's complaint, or bytes left over.
    pub reason: String,
}

/// Decodes `bytes` as one `T`, with nothing left over.
fn decode_whole<T: Decode>(bytes: &[u8]) -> Result<T, String> {
    let mut input = bytes;
    let value = T::decode(&mut input)
        .map_err(|e| format!("{} (of {} bytes)", super::short(&e), bytes.len()))?;
    if !input.is_empty() {
        return Err(format!(
            "{} bytes left over after {} bytes",
            input.len(),
            bytes.len() - input.len()
        ));
    }
    // `decode_all` is the same check; `decode_whole` says how many bytes.
    debug_assert!(T::decode_all(&mut &bytes[..]).is_ok());
    Ok(value)
}

/// One identity of a node: a peer id and, if registered, its multiaddr.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PeerInfo {
    /// The bytes of the peer id's base58 text (`12D3KooW…`), as the chain
    /// stores it (`OpaquePeerId`).
    pub peer_id: Vec<u8>,
    /// The binary multiaddr, if one was registered.
    pub multiaddr: Option<Vec<u8>>,
}

/// A node's class (`SubnetNodeClass`), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum NodeClass {
    /// Registered, in the queue.
    Registered,
    /// Active, not yet included in consensus.
    Idle,
    /// Included in consensus.
    Included,
    /// May be elected validator.
    Validator,
}

impl NodeClass {
    /// Every class, lowest first.
    pub const ALL: [NodeClass; 4] = [
        NodeClass::Registered,
        NodeClass::Idle,
        NodeClass::Included,
        NodeClass::Validator,
    ];

    /// Its name, lower case (`--chain-min-class`).
    pub fn name(self) -> &'static str {
        match self {
            NodeClass::Registered => "registered",
            NodeClass::Idle => "idle",
            NodeClass::Included => "included",
            NodeClass::Validator => "validator",
        }
    }
}

impl fmt::Display for NodeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for NodeClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(&NodeClass::ALL, NodeClass::name, s, "node class")
    }
}

/// The one of `all` named `text` (any case), for configuration; else an
/// error naming them all.
fn by_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    text: &str,
    what: &str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
            format!("unknown {what} `{text}` (one of: {})", names.join(", "))
        })
}

/// `SubnetNodeClassification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Classification {
    /// The class.
    pub node_class: NodeClass,
    /// The subnet epoch from which the class holds.
    pub start_epoch: u32,
}

/// What every layout says of a node that the registry uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The subnet.
    pub subnet_id: u32,
    /// The node's id in the subnet.
    pub subnet_node_id: u32,
    /// Its validator id ([`Layout::Validator`] and later).
    pub validator_id: Option<u32>,
    /// Its hotkey (an EVM account, 20 bytes).
    pub hotkey: [u8; 20],
    /// Its main identity (absent only in [`Layout::ValidatorOptionalPeer`]).
    pub peer_info: Option<PeerInfo>,
    /// Its bootnode identity.
    pub bootnode_peer_info: Option<PeerInfo>,
    /// Its client identity.
    pub client_peer_info: Option<PeerInfo>,
    /// Its class.
    pub classification: Classification,
    /// Its stake.
    pub stake_balance: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct DelegateAccount {
    pub(crate) account_id: [u8; 20],
    pub(crate) rate: u128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Identity {
    pub(crate) name: Vec<u8>,
    pub(crate) url: Vec<u8>,
    pub(crate) image: Vec<u8>,
    pub(crate) discord: Vec<u8>,
    pub(crate) x: Vec<u8>,
    pub(crate) telegram: Vec<u8>,
    pub(crate) github: Vec<u8>,
    pub(crate) hugging_face: Vec<u8>,
    pub(crate) description: Vec<u8>,
    pub(crate) misc: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub(crate) struct Reputation {
    pub(crate) start_epoch: u32,
    pub(crate) score: u128,
    pub(crate) lifetime_node_count: u32,
    pub(crate) total_active_nodes: u32,
    pub(crate) total_increases: u32,
    pub(crate) total_decreases: u32,
    pub(crate) average_attestation: u128,
    pub(crate) last_validator_epoch: u32,
    pub(crate) ow_score: u128,
}

/// `SubnetNodeInfo` of [`Layout::Coldkey`] (`R = u128`) and
/// [`Layout::ColdkeyOptionalReputation`] (`R = Option<u128>`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct ColdkeyNode<R> {
    pub(crate) subnet_id: u32,
    pub(crate) subnet_node_id: u32,
    pub(crate) coldkey: [u8; 20],
    pub(crate) hotkey: [u8; 20],
    pub(crate) peer_info: PeerInfo,
    pub(crate) bootnode_peer_info: Option<PeerInfo>,
    pub(crate) client_peer_info: Option<PeerInfo>,
    pub(crate) delegate_account: Option<DelegateAccount>,
    pub(crate) identity: Identity,
    pub(crate) classification: Classification,
    pub(crate) delegate_reward_rate: u128,
    pub(crate) last_delegate_reward_rate_update: u32,
    pub(crate) unique: Option<Vec<u8>>,
    pub(crate) non_unique: Option<Vec<u8>>,
    pub(crate) stake_balance: u128,
    pub(crate) total_node_delegate_stake_shares: u128,
    pub(crate) node_delegate_stake_balance: u128,
    pub(crate) coldkey_reputation: Reputation,
    pub(crate) subnet_node_reputation: R,
    pub(crate) node_slot_index: Option<u32>,
    pub(crate) consecutive_idle_epochs: u32,
    pub(crate) consecutive_included_epochs: u32,
}

impl<R> ColdkeyNode<R> {
    fn from_info(n: &NodeInfo, peer_info: PeerInfo, subnet_node_reputation: R) -> Self {
        Self {
            subnet_id: n.subnet_id,
            subnet_node_id: n.subnet_node_id,
            coldkey: [0; 20],
            hotkey: n.hotkey,
            peer_info,
            bootnode_peer_info: n.bootnode_peer_info.clone(),
            client_peer_info: n.client_peer_info.clone(),
            delegate_account: None,
            identity: Identity::default(),
            classification: n.classification,
            delegate_reward_rate: 0,
            last_delegate_reward_rate_update: 0,
            unique: None,
            non_unique: None,
            stake_balance: n.stake_balance,
            total_node_delegate_stake_shares: 0,
            node_delegate_stake_balance: 0,
            coldkey_reputation: Reputation::default(),
            subnet_node_reputation,
            node_slot_index: None,
            consecutive_idle_epochs: 0,
            consecutive_included_epochs: 0,
        }
    }

    fn into_info(self) -> NodeInfo {
        NodeInfo {
            subnet_id: self.subnet_id,
            subnet_node_id: self.subnet_node_id,
            validator_id: None,
            hotkey: self.hotkey,
            peer_info: Some(self.peer_info),
            bootnode_peer_info: self.bootnode_peer_info,
            client_peer_info: self.client_peer_info,
            classification: self.classification,
            stake_balance: self.stake_balance,
        }
    }
}

/// `SubnetNodeInfo` of [`Layout::Validator`] (`P = PeerInfo`) and
/// [`Layout::ValidatorOptionalPeer`] (`P = Option<PeerInfo>`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub(crate) struct ValidatorNode<P> {
    pub(crate) validator_id: Option<u32>,
    pub(crate) subnet_id: u32,
    pub(crate) subnet_node_id: u32,
    pub(crate) coldkey: [u8; 20],
    pub(crate) hotkey: [u8; 20],
    pub(crate) peer_info: P,
    pub(crate) bootnode_peer_info: Option<PeerInfo>,
    pub(crate) client_peer_info: Option<PeerInfo>,
    pub(crate) classification: Classification,
    pub(crate) unique: Option<Vec<u8>>,
    pub(crate) non_unique: Option<Vec<u8>>,
    pub(crate) stake_balance: u128,
    pub(crate) subnet_node_reputation: Option<u128>,
    pub(crate) node_slot_index: Option<u32>,
    pub(crate) consecutive_idle_epochs: u32,
    pub(crate) consecutive_included_epochs: u32,
}

impl<P> ValidatorNode<P> {
    fn from_info(n: &NodeInfo, peer_info: P) -> Self {
        Self {
            validator_id: n.validator_id,
            subnet_id: n.subnet_id,
            subnet_node_id: n.subnet_node_id,
            coldkey: [0; 20],
            hotkey: n.hotkey,
            peer_info,
            bootnode_peer_info: n.bootnode_peer_info.clone(),
            client_peer_info: n.client_peer_info.clone(),
            classification: n.classification,
            unique: None,
            non_unique: None,
            stake_balance: n.stake_balance,
            subnet_node_reputation: None,
            node_slot_index: None,
            consecutive_idle_epochs: 0,
            consecutive_included_epochs: 0,
        }
    }

    fn into_info(self, peer: impl FnOnce(P) -> Option<PeerInfo>) -> NodeInfo {
        NodeInfo {
            subnet_id: self.subnet_id,
            subnet_node_id: self.subnet_node_id,
            validator_id: self.validator_id,
            hotkey: self.hotkey,
            peer_info: peer(self.peer_info),
            bootnode_peer_info: self.bootnode_peer_info,
            client_peer_info: self.client_peer_info,
            classification: self.classification,
            stake_balance: self.stake_balance,
        }
    }
}

/// `AllSubnetBootnodes`, what `network_getBootnodes` returns: peer id
/// (base58 text bytes) to multiaddr, for the subnet's official bootnodes,
/// the bootnode identities of its nodes, and those of its registered
/// (queued) nodes. Maps encode as their entries in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Bootnodes {
    /// The subnet's official bootnodes.
    pub subnet_bootnodes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Its nodes' bootnode identities.
    pub node_bootnodes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Its registered (queued) nodes' bootnode identities.
    pub registered_bootnodes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Bootnodes {
    /// Decodes a whole `AllSubnetBootnodes`.
    pub fn from_scale(bytes: &[u8]) -> Result<Self, String> {
        decode_whole(bytes)
    }

    /// Its SCALE encoding, as `network_getBootnodes` answers it.
    pub fn to_scale(&self) -> Vec<u8> {
        self.encode()
    }
}
