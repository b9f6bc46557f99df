//! The signed heartbeat: this node's protobuf [`Heartbeat`] built, and a
//! received one validated (its signer is its peer id, the subnet matches,
//! the timestamp is inside the window, the sequence is newer than the last
//! one seen from that peer, the addresses parse and are few enough).

use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId};

use super::{Config, Rejection};

include!(concat!(env!("OUT_DIR"), "/subnet.heartbeat.rs"));

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
