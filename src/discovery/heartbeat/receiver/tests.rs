use std::time::Duration;

use libp2p::Multiaddr;

use super::*;
use crate::discovery::{address_book, heartbeat::build};

/// One heartbeat a second: a signer gets one through per half second.
fn config() -> Config {
    Config::new(1, 1)
        .with_epoch(Duration::from_secs(4), 4)
        .with_book_refresh(Duration::from_secs(10))
}

fn signed_heartbeat(peer: PeerId, addresses: &[&str], sequence: u64) -> Vec<u8> {
    let addresses: Vec<Multiaddr> = addresses.iter().map(|a| a.parse().unwrap()).collect();
    let heartbeat = build(&config(), peer, &addresses, sequence, SystemTime::now());
    prost::Message::encode_to_vec(&heartbeat)
}

fn from(peer: PeerId, data: &[u8]) -> Gossip<'_> {
    Gossip {
        data,
        signer: Some(peer),
        local: false,
    }
}

fn rejection(verdict: Verdict) -> Rejection {
    match verdict {
        Verdict::Rejected(rejection) => rejection,
        Verdict::Accepted(_) => panic!("accepted"),
    }
}

/// What the book learns from an accepted heartbeat, holding its slot.
struct Learned {
    peer: PeerId,
    addresses: Vec<Multiaddr>,
    source: Source,
    subnet_node_id: Option<u64>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

fn update(verdict: Verdict) -> Learned {
    match verdict {
        Verdict::Accepted(Ok(BookUpdate {
            update:
                Update::Learned {
                    peer,
                    addresses,
                    source,
                    subnet_node_id,
                },
            slot,
        })) => Learned {
            peer,
            addresses,
            source,
            subnet_node_id,
            _slot: slot,
        },
        other => panic!("no book update: {other:?}"),
    }
}

fn coalesced(verdict: Verdict) -> Coalesced {
    match verdict {
        Verdict::Accepted(Err(coalesced)) => coalesced,
        other => panic!("not coalesced: {other:?}"),
    }
}

#[test]
fn a_signed_heartbeat_gives_the_book_its_believable_addresses_once_per_refresh() {
    let mut receiver = Receiver::new(config(), Gate::default(), AddressBook::default());
    let (peer, start, wall) = (PeerId::random(), Instant::now(), SystemTime::now());
    let addresses = ["/ip4/10.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/1"];
    let first = update(receiver.signed(
        from(peer, &signed_heartbeat(peer, &addresses, 1)),
        start,
        wall,
    ));
    assert_eq!(first.peer, peer);
    assert_eq!(first.source, Source::Heartbeat);
    assert_eq!(first.subnet_node_id, Some(1));
    let reachable: Multiaddr = addresses[0].parse().unwrap();
    assert_eq!(
        first.addresses,
        [reachable],
        "loopback from another host dropped"
    );

    // Within half an interval: too frequent, even with a newer sequence.
    let second = signed_heartbeat(peer, &addresses, 2);
    let soon = start + Duration::from_millis(400);
    assert_eq!(
        rejection(receiver.signed(from(peer, &second), soon, wall)),
        Rejection::TooFrequent
    );
    // After it, the same addresses within the refresh: accepted, nothing
    // for the book; an old sequence is a replay.
    let later = start + Duration::from_secs(1);
    let verdict = receiver.signed(from(peer, &second), later, wall);
    assert_eq!(verdict.acceptance(), MessageAcceptance::Accept);
    assert_eq!(coalesced(verdict), Coalesced::Unchanged);
    let replayed = signed_heartbeat(peer, &addresses, 2);
    let after = start + Duration::from_secs(2);
    assert_eq!(
        rejection(receiver.signed(from(peer, &replayed), after, wall)),
        Rejection::Replayed
    );
    // New addresses go to the book at once; the same ones after the refresh.
    let moved = signed_heartbeat(peer, &["/ip4/10.0.0.2/tcp/1"], 3);
    assert_eq!(
        update(receiver.signed(from(peer, &moved), after, wall))
            .addresses
            .len(),
        1
    );
    let same = signed_heartbeat(peer, &["/ip4/10.0.0.2/tcp/1"], 4);
    let refreshed = after + Duration::from_secs(10);
    update(receiver.signed(from(peer, &same), refreshed, wall));
}

#[test]
fn loopback_addresses_are_believed_over_a_local_connection() {
    let mut receiver = Receiver::new(config(), Gate::default(), AddressBook::default());
    let peer = PeerId::random();
    let data = signed_heartbeat(peer, &["/ip4/127.0.0.1/tcp/1"], 1);
    let gossip = Gossip {
        local: true,
        ..from(peer, &data)
    };
    let update = update(receiver.signed(gossip, Instant::now(), SystemTime::now()));
    assert_eq!(update.addresses.len(), 1);
}

#[test]
fn invalid_and_outsiders_heartbeats_are_rejected_with_their_reason() {
    let mut receiver = Receiver::new(config(), Gate::closed(false), AddressBook::default());
    let (peer, now, wall) = (PeerId::random(), Instant::now(), SystemTime::now());
    let data = signed_heartbeat(peer, &[], 1);
    let forged = Gossip {
        signer: Some(PeerId::random()),
        ..from(peer, &data)
    };
    assert_eq!(
        rejection(receiver.signed(forged, now, wall)),
        Rejection::Forged
    );
    let verdict = receiver.signed(from(peer, &data), now, wall);
    assert_eq!(verdict.acceptance(), MessageAcceptance::Reject);
    assert_eq!(rejection(verdict), Rejection::NotMember);
    assert!(!Rejection::NotMember.blames_forwarder());
    assert!(Rejection::Forged.blames_forwarder());
    assert!(
        !Rejection::TooFrequent.blames_forwarder(),
        "ignored, not rejected"
    );
}

#[test]
fn the_book_s_mailbox_takes_a_bounded_number_of_updates() {
    let mut receiver = Receiver::new(config(), Gate::default(), AddressBook::default());
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut held = Vec::new();
    for _ in 0..MAX_PENDING_BOOK_UPDATES {
        let peer = PeerId::random();
        let data = signed_heartbeat(peer, &[], 1);
        held.push(update(receiver.signed(from(peer, &data), now, wall)));
    }
    let peer = PeerId::random();
    let data = signed_heartbeat(peer, &[], 1);
    assert_eq!(
        coalesced(receiver.signed(from(peer, &data), now, wall)),
        Coalesced::Busy
    );
    // A busy book was given nothing: the signer's next heartbeat brings it.
    held.pop();
    let next = signed_heartbeat(peer, &[], 2);
    update(receiver.signed(from(peer, &next), now + Duration::from_secs(1), wall));
}

fn template_heartbeat(node: u64, wall: SystemTime) -> Vec<u8> {
    let template = template::Config::default();
    template::build(&template, 1, node, [7; 16], wall)
}

#[test]
fn a_template_heartbeat_is_unread_when_template_heartbeats_are_off() {
    let mut receiver = Receiver::new(config(), Gate::default(), AddressBook::default());
    let (peer, wall) = (PeerId::random(), SystemTime::now());
    let data = template_heartbeat(2, wall);
    assert!(
        receiver
            .template(from(peer, &data), Instant::now(), wall)
            .is_none()
    );
}

#[test]
fn a_template_heartbeat_gives_the_book_its_node_id_once_per_quarter_epoch() {
    let book = AddressBook::default();
    let config = config().with_template(template::Config::default());
    let mut receiver = Receiver::new(config, Gate::default(), book.clone());
    let (peer, start, wall) = (PeerId::random(), Instant::now(), SystemTime::now());
    let data = template_heartbeat(2, wall);
    let first = update(receiver.template(from(peer, &data), start, wall).unwrap());
    assert_eq!((first.peer, first.subnet_node_id), (peer, Some(2)));
    assert!(
        first.addresses.is_empty(),
        "its addresses come from identify"
    );
    // The book does not know the sender yet: its next one is not held back.
    update(receiver.template(from(peer, &data), start, wall).unwrap());

    // The registry lists it as node 2: a node id it contradicts is ignored.
    let address = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
    let book_config = address_book::Config::default();
    book.merge(
        peer,
        vec![address],
        Source::Registry,
        Some(2),
        &book_config,
        start,
    );
    let wrong = template_heartbeat(3, wall);
    let verdict = receiver.template(from(peer, &wrong), start, wall).unwrap();
    assert_eq!(verdict.acceptance(), MessageAcceptance::Ignore);
    assert_eq!(rejection(verdict), Rejection::WrongNodeId);
    update(receiver.template(from(peer, &data), start, wall).unwrap());
    // A quarter epoch (30 s) apart at least.
    let soon = start + Duration::from_secs(29);
    let verdict = receiver.template(from(peer, &data), soon, wall).unwrap();
    assert_eq!(rejection(verdict), Rejection::TooFrequent);
    let later = start + Duration::from_secs(30);
    update(receiver.template(from(peer, &data), later, wall).unwrap());
}
