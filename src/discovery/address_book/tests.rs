use std::time::Duration;

use super::*;

fn address(port: u16) -> Multiaddr {
    format!("/ip4/10.201.0.1/tcp/{port}").parse().unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn addresses_expire_after_their_source_ttl_and_confirmation_renews_them() {
    let config = Config::default().with_ttl(Source::Heartbeat, Some(10 * SECOND));
    let book = AddressBook::default();
    let (peer, start) = (PeerId::random(), Instant::now());
    let events = book.merge(
        peer,
        vec![address(1)],
        Source::Heartbeat,
        Some(7),
        &config,
        start,
    );
    assert!(matches!(
        events[0],
        Event::PeerAdded {
            source: Source::Heartbeat,
            ..
        }
    ));
    assert_eq!(book.lookup(&peer).unwrap().subnet_node_id, Some(7));

    // Confirmed at 8 s: still there at 15 s, gone at 18 s.
    book.confirm(&peer, &address(1), start + 8 * SECOND);
    assert!(book.expire(&config, start + 15 * SECOND).is_empty());
    assert_eq!(book.addresses(&peer), vec![address(1)]);
    let gone = book.expire(&config, start + 18 * SECOND);
    assert!(matches!(gone[..], [Event::PeerExpired { peer: p }] if p == peer));
    assert!(!book.contains(&peer));
}

#[test]
fn registry_and_manual_addresses_never_expire_and_keep_their_longer_ttl() {
    let config = Config::default();
    let book = AddressBook::default();
    let (peer, start) = (PeerId::random(), Instant::now());
    book.merge(
        peer,
        vec![address(1)],
        Source::Registry,
        None,
        &config,
        start,
    );
    // Heard again through a heartbeat: the address keeps the registry's TTL.
    book.merge(
        peer,
        vec![address(1)],
        Source::Heartbeat,
        None,
        &config,
        start,
    );
    let later = start + 365 * 24 * 3600 * SECOND;
    assert!(book.expire(&config, later).is_empty());
    assert_eq!(
        book.lookup(&peer).unwrap().addresses[0].source,
        Source::Registry
    );
}

#[test]
fn failed_and_stale_addresses_sort_last() {
    let config = Config::default();
    let book = AddressBook::default();
    let (peer, start) = (PeerId::random(), Instant::now());
    book.merge(
        peer,
        vec![address(1)],
        Source::Identify,
        None,
        &config,
        start,
    );
    book.merge(
        peer,
        vec![address(2)],
        Source::Identify,
        None,
        &config,
        start + SECOND,
    );
    assert_eq!(
        book.addresses(&peer),
        vec![address(2), address(1)],
        "newest first"
    );
    book.demote(&peer, &[address(2)]);
    assert_eq!(
        book.addresses(&peer),
        vec![address(1), address(2)],
        "failed last"
    );
}

#[test]
fn a_full_book_evicts_the_least_recently_confirmed_peers() {
    let config = Config::default().with_max_peers(64);
    let book = AddressBook::default();
    let start = Instant::now();
    let peers: Vec<PeerId> = (0..64).map(|_| PeerId::random()).collect();
    for (i, peer) in peers.iter().enumerate() {
        let at = start + (i as u32) * SECOND;
        book.merge(*peer, vec![address(1)], Source::Identify, None, &config, at);
    }
    let newcomer = PeerId::random();
    let events = book.merge(
        newcomer,
        vec![address(1)],
        Source::Identify,
        None,
        &config,
        start + 100 * SECOND,
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::PeerExpired { peer } if *peer == peers[0]))
    );
    assert!(!book.contains(&peers[0]), "the oldest went");
    assert!(book.contains(&newcomer) && book.contains(&peers[63]));
    assert!(book.len() <= 64);
}

#[test]
fn learned_peers_never_evict_registry_members() {
    let config = Config::default().with_max_peers(8);
    let book = AddressBook::default();
    let now = Instant::now();
    let members: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
    for member in &members {
        book.merge(
            *member,
            vec![address(1)],
            Source::Registry,
            None,
            &config,
            now,
        );
    }
    // A flood of throwaway identities learned from heartbeats.
    for i in 0..1_000u32 {
        book.merge(
            PeerId::random(),
            vec![address(2)],
            Source::Heartbeat,
            None,
            &config,
            now + i * SECOND,
        );
    }
    assert!(members.iter().all(|m| book.contains(m)), "members stay");
    assert_eq!(book.len(), 8, "and nobody else got in");
}

#[test]
fn learned_peers_never_evict_the_operators_and_the_operators_evict_learned_first() {
    let config = Config::default().with_max_peers(8);
    let book = AddressBook::default();
    let now = Instant::now();
    let bootstrap: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
    for peer in &bootstrap {
        book.merge(*peer, vec![address(1)], Source::Manual, None, &config, now);
    }
    for i in 0..1_000u32 {
        book.merge(
            PeerId::random(),
            vec![address(2)],
            Source::Heartbeat,
            None,
            &config,
            now + i * SECOND,
        );
    }
    assert!(bootstrap.iter().all(|p| book.contains(p)), "manual stay");
    // More of the operator's own: the learned go first, then the
    // operator's oldest.
    let later: Vec<PeerId> = (0..6).map(|_| PeerId::random()).collect();
    for (i, peer) in later.iter().enumerate() {
        let at = now + (2_000 + i as u32) * SECOND;
        book.merge(*peer, vec![address(3)], Source::Manual, None, &config, at);
    }
    assert!(later.iter().all(|p| book.contains(p)));
    assert!(book.len() <= 8);
    let peers = book.peers();
    assert!(
        peers
            .iter()
            .all(|p| book.lookup(p).unwrap().addresses[0].source == Source::Manual),
        "no learned peer is left before a manual one goes"
    );
}

#[test]
fn a_zero_or_a_third_partys_node_id_never_overwrites() {
    let config = Config::default();
    let book = AddressBook::default();
    let now = Instant::now();
    let peer = PeerId::random();
    let merge = |source, id| {
        book.merge(peer, vec![address(1)], source, Some(id), &config, now);
        book.lookup(&peer).unwrap().subnet_node_id
    };
    assert_eq!(merge(Source::Heartbeat, 3), Some(3));
    assert_eq!(merge(Source::Heartbeat, 0), Some(3), "0 is unknown");
    assert_eq!(merge(Source::PeerExchange, 9), Some(3), "hearsay");
    assert_eq!(merge(Source::Heartbeat, 4), Some(4), "its own word");
}

#[test]
fn the_registrys_node_id_wins_over_a_peers_claim() {
    let config = Config::default();
    let book = AddressBook::default();
    let now = Instant::now();
    let peer = PeerId::random();
    book.merge(
        peer,
        vec![address(1)],
        Source::Registry,
        Some(7),
        &config,
        now,
    );
    book.merge(
        peer,
        vec![address(2)],
        Source::Heartbeat,
        Some(99),
        &config,
        now,
    );
    assert_eq!(book.lookup(&peer).unwrap().subnet_node_id, Some(7));
    // A peer the registry does not know may say who it is.
    let other = PeerId::random();
    book.merge(
        other,
        vec![address(3)],
        Source::Heartbeat,
        Some(5),
        &config,
        now,
    );
    assert_eq!(book.lookup(&other).unwrap().subnet_node_id, Some(5));
}
