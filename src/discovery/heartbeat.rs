//! Heartbeats: the signed "I am here" each node gossips on its subnet's topic.
//!
//! A node publishes a protobuf [`Heartbeat`] on the GossipSub topic
//! [`topic`] (`subnet/<subnet id>/heartbeat`) a configured number of times
//! per epoch. GossipSub runs with signed messages and strict validation; on
//! receipt, [`validate`] checks that the message's signer is the heartbeat's
//! peer id, the subnet matches, the timestamp is inside the window, the
//! sequence is newer than the last one seen from that peer, and the
//! addresses parse and are few enough. Each verdict is reported back to
//! GossipSub (so peer scoring works); accepted heartbeats feed the address
//! book with source `heartbeat`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId, gossipsub::MessageAcceptance};

include!(concat!(env!("OUT_DIR"), "/subnet.heartbeat.rs"));

/// The GossipSub topic of a subnet's heartbeats.
pub fn topic(subnet_id: u64) -> String {
    format!("subnet/{subnet_id}/heartbeat")
}

/// Heartbeat settings.
#[derive(Debug, Clone)]
pub struct Config {
    subnet_id: u64,
    subnet_node_id: u64,
    epoch_length: Duration,
    per_epoch: u32,
    window: Duration,
    max_addresses: usize,
    max_size: usize,
    template: Option<super::template_heartbeat::Config>,
}

impl Config {
    /// The length of an epoch: 60 s.
    pub const DEFAULT_EPOCH_LENGTH: Duration = Duration::from_secs(60);
    /// Heartbeats per epoch: 4 (one every 15 s with the default epoch).
    pub const DEFAULT_PER_EPOCH: u32 = 4;
    /// How far a heartbeat's timestamp may be from the receiver's clock: 60 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// Addresses a heartbeat may carry: 16.
    pub const DEFAULT_MAX_ADDRESSES: usize = 16;
    /// Largest heartbeat accepted, in bytes: 4 KiB.
    pub const DEFAULT_MAX_SIZE: usize = 4096;

    /// Heartbeats of subnet `subnet_id`, sent as subnet node `subnet_node_id`.
    pub fn new(subnet_id: u64, subnet_node_id: u64) -> Self {
        Self {
            subnet_id,
            subnet_node_id,
            epoch_length: Self::DEFAULT_EPOCH_LENGTH,
            per_epoch: Self::DEFAULT_PER_EPOCH,
            window: Self::DEFAULT_WINDOW,
            max_addresses: Self::DEFAULT_MAX_ADDRESSES,
            max_size: Self::DEFAULT_MAX_SIZE,
            template: None,
        }
    }

    /// Also reads (and, if `template.publish`, publishes) the Python
    /// subnet template's JSON heartbeat on the topic `heartbeat`
    /// ([`template_heartbeat`](super::template_heartbeat)), so that the
    /// node learns the node ids of Python nodes and they see it.
    pub fn with_template(mut self, template: super::template_heartbeat::Config) -> Self {
        self.template = Some(template);
        self
    }

    /// The template heartbeat's settings, if it is on.
    pub fn template(&self) -> Option<&super::template_heartbeat::Config> {
        self.template.as_ref()
    }

    /// Sets the epoch length and how many heartbeats are sent per epoch.
    pub fn with_epoch(mut self, length: Duration, per_epoch: u32) -> Self {
        self.epoch_length = length.max(Duration::from_millis(1));
        self.per_epoch = per_epoch.max(1);
        self
    }

    /// Sets how far a timestamp may be from the receiver's clock.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The subnet id.
    pub fn subnet_id(&self) -> u64 {
        self.subnet_id
    }

    /// This node's subnet node id.
    pub fn subnet_node_id(&self) -> u64 {
        self.subnet_node_id
    }

    /// The time between two heartbeats: epoch length / heartbeats per epoch.
    pub fn interval(&self) -> Duration {
        self.epoch_length / self.per_epoch
    }

    /// The epoch at `time`.
    pub fn epoch_at(&self, time: SystemTime) -> u64 {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        (since.as_millis() / self.epoch_length.as_millis().max(1)) as u64
    }

    /// The largest heartbeat accepted, in bytes.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// How far a heartbeat's timestamp may be from now.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The most addresses a heartbeat may carry.
    pub fn max_addresses(&self) -> usize {
        self.max_addresses
    }
}

/// Why a heartbeat was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// Larger than the maximum size.
    Oversized,
    /// Not a protobuf `Heartbeat`.
    Malformed,
    /// Not signed, or its peer id is not its signer's.
    Forged,
    /// From another subnet.
    WrongSubnet,
    /// Its timestamp is outside the window.
    Stale,
    /// Its sequence is not newer than the last one seen from that peer.
    Replayed,
    /// Its addresses do not parse, or there are too many.
    BadAddresses,
    /// Dropped unread: too many heartbeats awaited validation.
    Overloaded,
    /// Its signer is not a member of the subnet (membership gating is on).
    NotMember,
    /// Its signer is not listed and the registry has not been asked about
    /// it yet (gating with per-peer checks, the chain's proof of stake):
    /// ignored, not forwarded, nobody penalised; a heartbeat never makes
    /// the node ask the registry.
    Unverified,
    /// Its signer's previous heartbeat was accepted less than half an
    /// interval ago: the excess is dropped before GossipSub forwards it.
    TooFrequent,
    /// A template heartbeat whose node id is not the one the registry
    /// gives its sender: ignored, nobody penalised (registry views lag).
    WrongNodeId,
}

impl Rejection {
    /// Every reason.
    pub const ALL: [Rejection; 12] = [
        Rejection::Oversized,
        Rejection::Malformed,
        Rejection::Forged,
        Rejection::WrongSubnet,
        Rejection::Stale,
        Rejection::Replayed,
        Rejection::BadAddresses,
        Rejection::Overloaded,
        Rejection::NotMember,
        Rejection::Unverified,
        Rejection::TooFrequent,
        Rejection::WrongNodeId,
    ];

    /// A short lowercase name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Oversized => "oversized",
            Rejection::Malformed => "malformed",
            Rejection::Forged => "forged",
            Rejection::WrongSubnet => "wrong_subnet",
            Rejection::Stale => "stale",
            Rejection::Replayed => "replayed",
            Rejection::BadAddresses => "bad_addresses",
            Rejection::Overloaded => "overloaded",
            Rejection::NotMember => "not_member",
            Rejection::Unverified => "unverified",
            Rejection::TooFrequent => "too_frequent",
            Rejection::WrongNodeId => "wrong_node_id",
        }
    }

    /// The verdict reported to GossipSub: what may be an honest delay or
    /// duplicate is ignored, the rest is rejected (and penalises the sender).
    pub fn acceptance(self) -> MessageAcceptance {
        match self {
            Rejection::Stale
            | Rejection::Replayed
            | Rejection::Overloaded
            | Rejection::Unverified
            | Rejection::TooFrequent
            | Rejection::WrongNodeId => MessageAcceptance::Ignore,
            _ => MessageAcceptance::Reject,
        }
    }
}

/// A heartbeat that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The sender.
    pub peer: PeerId,
    /// Its subnet node id.
    pub subnet_node_id: u64,
    /// Its epoch.
    pub epoch: u64,
    /// Its addresses.
    pub addresses: Vec<Multiaddr>,
    /// Its sequence number.
    pub sequence: u64,
}

/// Validates a received heartbeat. `signer` is the GossipSub message's
/// verified author; `last_sequence` the highest sequence accepted from it.
pub fn validate(
    config: &Config,
    data: &[u8],
    signer: Option<PeerId>,
    now: SystemTime,
    last_sequence: Option<u64>,
) -> Result<Accepted, Rejection> {
    if data.len() > config.max_size {
        return Err(Rejection::Oversized);
    }
    let heartbeat =
        <Heartbeat as prost::Message>::decode(data).map_err(|_| Rejection::Malformed)?;
    let peer = PeerId::from_bytes(&heartbeat.peer_id).map_err(|_| Rejection::Malformed)?;
    if signer != Some(peer) {
        return Err(Rejection::Forged);
    }
    if heartbeat.subnet_id != config.subnet_id {
        return Err(Rejection::WrongSubnet);
    }
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    if now_ms.abs_diff(heartbeat.timestamp_ms) > config.window.as_millis() as u64 {
        return Err(Rejection::Stale);
    }
    if last_sequence.is_some_and(|last| heartbeat.sequence <= last) {
        return Err(Rejection::Replayed);
    }
    if heartbeat.addresses.len() > config.max_addresses {
        return Err(Rejection::BadAddresses);
    }
    let addresses = heartbeat
        .addresses
        .into_iter()
        .map(Multiaddr::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Rejection::BadAddresses)?;
    Ok(Accepted {
        peer,
        subnet_node_id: heartbeat.subnet_node_id,
        epoch: heartbeat.epoch,
        addresses,
        sequence: heartbeat.sequence,
    })
}

/// Builds this node's heartbeat. Addresses that are not loopback come first.
pub fn build(
    config: &Config,
    peer: PeerId,
    addresses: &[Multiaddr],
    sequence: u64,
    now: SystemTime,
) -> Heartbeat {
    let mut ordered: Vec<&Multiaddr> = addresses.iter().collect();
    ordered.sort_by_key(|a| crate::multiaddr::is_loopback(a));
    Heartbeat {
        peer_id: peer.to_bytes(),
        subnet_id: config.subnet_id,
        subnet_node_id: config.subnet_node_id,
        epoch: config.epoch_at(now),
        addresses: ordered
            .into_iter()
            .take(config.max_addresses)
            .map(|a| a.to_vec())
            .collect(),
        timestamp_ms: now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        sequence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(heartbeat: &Heartbeat) -> Vec<u8> {
        prost::Message::encode_to_vec(heartbeat)
    }

    #[test]
    fn accepts_a_good_heartbeat_and_rejects_each_bad_one() {
        let config = Config::new(7, 1);
        let peer = PeerId::random();
        let now = SystemTime::now();
        let addresses = [
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            "/ip4/10.0.0.1/tcp/1".parse().unwrap(),
        ];
        let good = build(&config, peer, &addresses, 5, now);
        let accepted = validate(&config, &encoded(&good), Some(peer), now, Some(4)).unwrap();
        assert_eq!(
            accepted.addresses[0].to_string(),
            "/ip4/10.0.0.1/tcp/1",
            "reachable first"
        );

        let check =
            |data: Vec<u8>, signer, last| validate(&config, &data, signer, now, last).unwrap_err();
        assert_eq!(
            check(encoded(&good), Some(PeerId::random()), None),
            Rejection::Forged
        );
        assert_eq!(check(encoded(&good), None, None), Rejection::Forged);
        let other_subnet = Heartbeat {
            subnet_id: 8,
            ..good.clone()
        };
        assert_eq!(
            check(encoded(&other_subnet), Some(peer), None),
            Rejection::WrongSubnet
        );
        let stale = Heartbeat {
            timestamp_ms: good.timestamp_ms - 120_000,
            ..good.clone()
        };
        assert_eq!(check(encoded(&stale), Some(peer), None), Rejection::Stale);
        assert_eq!(
            check(encoded(&good), Some(peer), Some(5)),
            Rejection::Replayed
        );
        assert_eq!(
            check(vec![0xff; 5000], Some(peer), None),
            Rejection::Oversized
        );
        assert_eq!(
            check(vec![0x0f, 0x00], Some(peer), None),
            Rejection::Malformed
        );
        let too_many = Heartbeat {
            addresses: vec![addresses[0].to_vec(); 17],
            ..good.clone()
        };
        assert_eq!(
            check(encoded(&too_many), Some(peer), None),
            Rejection::BadAddresses
        );
        let garbage = Heartbeat {
            addresses: vec![vec![0xff, 0xff]],
            ..good
        };
        assert_eq!(
            check(encoded(&garbage), Some(peer), None),
            Rejection::BadAddresses
        );
    }
}
