//! The Python subnet template's heartbeat, so that a node can sit in a
//! subnet of Python nodes: compact JSON
//! `{"uid":"<32 hex>","epoch":N,"subnet_id":N,"subnet_node_id":N}` on the
//! plain GossipSub topic [`TOPIC`] (`heartbeat`), signed by the sender's
//! identity key, once per epoch (source: the template's
//! `examples/pubsub/heartbeat/publisher.py` and `validator.py`,
//! hayotensor/subnet-template 0b06068).
//!
//! It carries no address: the sender's addresses come from its connection
//! and identify. What it gives is liveness and the sender's subnet node id.
//! It is validated as the template does: the subnet id must be ours, the
//! node ids positive, the epoch the current one (exact, as the template
//! compares), the sender's node id the registry's when the registry lists
//! it.
//!
//! The template's epoch is chain time: `(block - slot) / epoch_length`,
//! with the block number from the chain, or, in its mock mode,
//! `block = unix seconds / 6` and slot 3, epoch length 20 blocks
//! (`subnet/hypertensor/mock/local_chain_functions.py`): [`Config::default`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::Rejection;

/// The template's heartbeat topic (a plain topic name, not hashed).
pub const TOPIC: &str = "heartbeat";

/// The template's peer-state topic: a node that subscribes to [`TOPIC`]
/// does not subscribe to it, so its messages are neither received nor
/// judged.
pub const PEER_STATE_TOPIC: &str = "peer_state";

/// Largest template heartbeat accepted: 1 KiB (one is about 90 bytes).
pub const MAX_SIZE: usize = 1024;

/// The template's epoch clock, and whether to publish its heartbeat too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The chain's block time: 6 s.
    pub block_time: Duration,
    /// The subnet's slot, in blocks (`Network.SubnetSlot`; the mock's 3).
    pub slot: u64,
    /// The epoch length, in blocks (`Network.EpochLength`; the mock's 20).
    pub epoch_length: u64,
    /// Publish this node's own template heartbeat with each of its
    /// heartbeats, so that Python nodes see it (they accept it if their
    /// registry lists this node's peer id with its node id).
    pub publish: bool,
}

impl Default for Config {
    /// The template's mock chain: 6 s blocks, slot 3, 20-block epochs;
    /// publishing on.
    fn default() -> Self {
        Self {
            block_time: Duration::from_secs(6),
            slot: 3,
            epoch_length: 20,
            publish: true,
        }
    }
}

impl Config {
    /// The template's epoch at `time`: `(block - slot) / epoch_length`,
    /// 0 before the slot.
    pub fn epoch_at(&self, time: SystemTime) -> u64 {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let block = (since.as_millis() / self.block_time.as_millis().max(1)) as u64;
        block.saturating_sub(self.slot) / self.epoch_length.max(1)
    }

    /// The length of one epoch.
    pub fn epoch_duration(&self) -> Duration {
        self.block_time * u32::try_from(self.epoch_length.max(1)).unwrap_or(u32::MAX)
    }
}

/// The template's heartbeat, as pydantic serializes it (keys in this
/// order, no spaces). Unknown keys are ignored, as pydantic does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateHeartbeat {
    /// A random id (32 hex digits), so that two heartbeats with the same
    /// content are two GossipSub messages.
    pub uid: String,
    /// The sender's epoch.
    pub epoch: u64,
    /// The subnet.
    pub subnet_id: u64,
    /// The sender's subnet node id.
    pub subnet_node_id: u64,
}

/// A template heartbeat that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The sender (the GossipSub message's verified author).
    pub peer: PeerId,
    /// Its subnet node id.
    pub subnet_node_id: u64,
    /// Its epoch.
    pub epoch: u64,
}

/// Validates a template heartbeat received on [`TOPIC`]. `signer` is the
/// GossipSub message's verified author; `registered` the node id the
/// registry gives that peer, if it lists it.
pub fn validate(
    config: &Config,
    subnet_id: u64,
    data: &[u8],
    signer: Option<PeerId>,
    registered: Option<u64>,
    now: SystemTime,
) -> Result<Accepted, Rejection> {
    if data.len() > MAX_SIZE {
        return Err(Rejection::Oversized);
    }
    let peer = signer.ok_or(Rejection::Forged)?;
    let heartbeat: TemplateHeartbeat =
        serde_json::from_slice(data).map_err(|_| Rejection::Malformed)?;
    if heartbeat.subnet_id == 0 || heartbeat.subnet_node_id == 0 {
        // The template's own model refuses both.
        return Err(Rejection::Malformed);
    }
    if heartbeat.subnet_id != subnet_id {
        return Err(Rejection::WrongSubnet);
    }
    if registered.is_some_and(|id| id != heartbeat.subnet_node_id) {
        return Err(Rejection::WrongNodeId);
    }
    if heartbeat.epoch != config.epoch_at(now) {
        return Err(Rejection::Stale);
    }
    Ok(Accepted {
        peer,
        subnet_node_id: heartbeat.subnet_node_id,
        epoch: heartbeat.epoch,
    })
}

/// This node's template heartbeat at `now`, serialized as the template
/// does; `uid` is 16 random bytes.
pub fn build(
    config: &Config,
    subnet_id: u64,
    subnet_node_id: u64,
    uid: [u8; 16],
    now: SystemTime,
) -> Vec<u8> {
    let heartbeat = TemplateHeartbeat {
        uid: uid.iter().map(|b| format!("{b:02x}")).collect(),
        epoch: config.epoch_at(now),
        subnet_id,
        subnet_node_id,
    };
    serde_json::to_vec(&heartbeat).expect("a struct of strings and integers serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn the_epoch_is_the_mock_chains() {
        let config = Config::default();
        // block = unix / 6; epoch = (block - 3) / 20 (the template's mock).
        let unix = 1_796_000_000;
        assert_eq!(config.epoch_at(at(unix)), (unix / 6 - 3) / 20);
        assert_eq!(config.epoch_at(at(0)), 0);
        assert_eq!(config.epoch_duration(), Duration::from_secs(120));
    }

    #[test]
    fn builds_what_pydantic_writes() {
        let config = Config::default();
        let now = at(1_796_000_000);
        let data = build(&config, 1, 2, [0xab; 16], now);
        let epoch = config.epoch_at(now);
        assert_eq!(
            String::from_utf8(data).unwrap(),
            format!(
                r#"{{"uid":"abababababababababababababababab","epoch":{epoch},"subnet_id":1,"subnet_node_id":2}}"#
            )
        );
    }

    #[test]
    fn accepts_a_good_one_and_rejects_each_bad_one() {
        let config = Config::default();
        let now = at(1_796_000_000);
        let epoch = config.epoch_at(now);
        let peer = PeerId::random();
        let json = |epoch: u64, subnet: u64, node: u64| {
            format!(
                r#"{{"uid":"9493686d0499105cebcae8544e3ab045","epoch":{epoch},"subnet_id":{subnet},"subnet_node_id":{node}}}"#
            )
            .into_bytes()
        };
        let check =
            |data: &[u8], signer, registered| validate(&config, 1, data, signer, registered, now);
        assert_eq!(
            check(&json(epoch, 1, 2), Some(peer), None),
            Ok(Accepted {
                peer,
                subnet_node_id: 2,
                epoch
            })
        );
        assert!(check(&json(epoch, 1, 2), Some(peer), Some(2)).is_ok());
        // Extra keys are ignored, as pydantic does (a peer_state message
        // has more).
        let extra = format!(
            r#"{{"uid":"x","epoch":{epoch},"subnet_id":1,"subnet_node_id":2,"state":2,"role":0}}"#
        );
        assert!(check(extra.as_bytes(), Some(peer), None).is_ok());
        assert_eq!(
            check(&json(epoch, 1, 2), None, None),
            Err(Rejection::Forged)
        );
        assert_eq!(
            check(&json(epoch, 2, 2), Some(peer), None),
            Err(Rejection::WrongSubnet)
        );
        assert_eq!(
            check(&json(epoch, 1, 2), Some(peer), Some(3)),
            Err(Rejection::WrongNodeId)
        );
        assert_eq!(
            check(&json(epoch - 1, 1, 2), Some(peer), None),
            Err(Rejection::Stale)
        );
        assert_eq!(
            check(&json(epoch + 1, 1, 2), Some(peer), None),
            Err(Rejection::Stale)
        );
        for bad in [
            &json(epoch, 0, 2)[..],
            &json(epoch, 1, 0)[..],
            br#"{"epoch":1,"subnet_id":1,"subnet_node_id":2}"#,
            b"not json",
            &[0u8; 10][..],
        ] {
            assert_eq!(check(bad, Some(peer), None), Err(Rejection::Malformed));
        }
        assert_eq!(
            check(&[b' '; MAX_SIZE + 1], Some(peer), None),
            Err(Rejection::Oversized)
        );
    }
}
