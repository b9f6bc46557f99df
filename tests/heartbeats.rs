//! Heartbeats over real GossipSub: bad ones are rejected and counted by
//! reason and never reach the book; silent peers expire; the book stays
//! bounded; a 20-node subnet converges.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{eventually, registry_file};
use subnet::{
    Node, PeerId,
    address_book::{self, Event, Source},
    heartbeat::{self, Heartbeat, Rejection},
};

const WAIT: Duration = Duration::from_secs(30);

fn fast_heartbeat(node_id: u64) -> heartbeat::Config {
    heartbeat::Config::new(1, node_id).with_epoch(Duration::from_secs(1), 5)
}

fn builder(node_id: u64) -> subnet::NodeBuilder {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .peer_exchange(false)
        .kademlia(false)
        .heartbeat(fast_heartbeat(node_id))
}

/// A receiver (node id 1) and a sender (node id 2) bootstrapped to it,
/// once one of the sender's own heartbeats was accepted.
async fn receiver_and_sender() -> (Node, Node) {
    let receiver = builder(1).build().await.unwrap();
    let sender = builder(2)
        .bootstrap(receiver.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    eventually(WAIT, || async {
        receiver.heartbeat_stats().await.unwrap().accepted >= 1
    })
    .await;
    (receiver, sender)
}

fn encode(heartbeat: &Heartbeat) -> Vec<u8> {
    prost::Message::encode_to_vec(heartbeat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_heartbeats_are_rejected_by_reason_and_never_reach_the_book() {
    // The attacker's honest heartbeats get through first.
    let (receiver, attacker) = receiver_and_sender().await;

    let victim = PeerId::random();
    let topic = heartbeat::topic(1);
    let config = fast_heartbeat(2);
    let honest = |peer: PeerId| {
        heartbeat::build(
            &config,
            peer,
            &["/ip4/127.0.0.1/tcp/9".parse().unwrap()],
            u64::MAX - 1,
            SystemTime::now(),
        )
    };
    let forged = honest(victim);
    let other_subnet = Heartbeat {
        subnet_id: 2,
        ..honest(attacker.peer_id())
    };
    let stale = Heartbeat {
        timestamp_ms: honest(attacker.peer_id()).timestamp_ms - 3_600_000,
        ..honest(attacker.peer_id())
    };
    let replayed = Heartbeat {
        sequence: 1,
        ..honest(attacker.peer_id())
    };
    let bad_address = Heartbeat {
        addresses: vec![vec![0xff, 0xff, 0xff]],
        ..honest(attacker.peer_id())
    };
    for data in [
        encode(&forged),
        encode(&other_subnet),
        encode(&stale),
        encode(&replayed),
        encode(&bad_address),
        vec![0x0a; 5000],
        b"not a protobuf at all".to_vec(),
    ] {
        attacker.publish(topic.clone(), data).unwrap();
    }
    let expected = [
        Rejection::Forged,
        Rejection::WrongSubnet,
        Rejection::Stale,
        Rejection::Replayed,
        Rejection::BadAddresses,
        Rejection::Oversized,
        Rejection::Malformed,
    ];
    eventually(WAIT, || async {
        let stats = receiver.heartbeat_stats().await.unwrap();
        expected
            .iter()
            .all(|r| stats.rejected.get(r).is_some_and(|n| *n >= 1))
    })
    .await;
    let stats = receiver.heartbeat_stats().await.unwrap();
    println!("receiver stats: {stats:?}");
    assert!(
        !receiver.address_book().contains(&victim),
        "forged never in the book"
    );
    let attacker_addresses = receiver.address_book().addresses(&attacker.peer_id());
    assert!(
        !attacker_addresses.contains(&"/ip4/127.0.0.1/tcp/9".parse().unwrap()),
        "rejected heartbeats add no address: {attacker_addresses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_leaves_the_book_after_its_ttl() {
    let ttl = Some(Duration::from_millis(1500));
    let book = address_book::Config::default()
        .with_ttl(Source::Heartbeat, ttl)
        .with_ttl(Source::Identify, ttl)
        .with_ttl(Source::Manual, ttl)
        .with_expiry_interval(Duration::from_millis(100));
    let watcher = builder(1).address_book(book).build().await.unwrap();
    let mut events = watcher.address_book_events().await.unwrap();
    let silent = builder(2)
        .bootstrap(watcher.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    let silent_id = silent.peer_id();
    eventually(WAIT, || async {
        watcher.address_book().contains(&silent_id)
            && watcher.heartbeat_stats().await.unwrap().accepted >= 1
    })
    .await;
    silent.shutdown().await;
    let stopped = Instant::now();
    eventually(WAIT, || async {
        !watcher.address_book().contains(&silent_id)
    })
    .await;
    assert!(
        stopped.elapsed() >= Duration::from_millis(1000),
        "not before its TTL"
    );
    let expired = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::PeerExpired { peer }) = events.recv().await
                && peer == silent_id
            {
                return;
            }
        }
    })
    .await;
    assert!(expired.is_ok(), "a PeerExpired event is published");
}

#[tokio::test]
async fn the_book_stays_within_its_bound_under_a_flood_of_peers() {
    let node = Node::builder()
        .address_book(address_book::Config::default().with_max_peers(50))
        .build()
        .await
        .unwrap();
    let flood: Vec<PeerId> = (0..2000).map(|_| PeerId::random()).collect();
    for (i, peer) in flood.iter().enumerate() {
        node.add_address(
            *peer,
            format!("/ip4/127.0.0.1/tcp/{}", 1000 + i).parse().unwrap(),
        );
    }
    let last = *flood.last().unwrap();
    eventually(WAIT, || async { node.address_book().contains(&last) }).await;
    let len = node.address_book().len();
    assert!((1..=50).contains(&len), "{len} peers kept, the bound is 50");
}

/// Nodes in a star (each bootstrapped to the first) until every book holds
/// every other node. Returns the time it took.
async fn converge(size: usize) -> Duration {
    let first = builder(1).build().await.unwrap();
    let mut nodes = vec![first.clone()];
    for i in 1..size {
        let node = builder(i as u64 + 1)
            .bootstrap(first.addresses()[0].clone())
            .build()
            .await
            .unwrap();
        nodes.push(node);
    }
    let started = Instant::now();
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.peer_id()).collect();
    eventually(Duration::from_secs(60), || async {
        nodes.iter().all(|n| {
            ids.iter()
                .all(|id| *id == n.peer_id() || n.address_book().contains(id))
        })
    })
    .await;
    let elapsed = started.elapsed();
    for node in &nodes {
        node.shutdown().await;
    }
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_node_subnet_converges_within_a_few_heartbeats() {
    let elapsed = converge(20).await;
    let interval = fast_heartbeat(1).interval();
    println!("20 nodes converged in {elapsed:?} ({interval:?} heartbeat interval)");
    assert!(
        elapsed < interval * 25,
        "20 nodes took {elapsed:?} with a {interval:?} interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_heartbeat_without_listeners_goes_out_when_a_peer_subscribes() {
    // One heartbeat an hour: the first goes out at start, when nobody has
    // subscribed yet. It must not wait an hour for the next one.
    let hourly = |id| heartbeat::Config::new(1, id).with_epoch(Duration::from_secs(3600), 1);
    let first = builder(1).heartbeat(hourly(1)).build().await.unwrap();
    eventually(WAIT, || async {
        first.heartbeat_stats().await.unwrap().published >= 1
    })
    .await;
    let second = builder(2)
        .heartbeat(hourly(2))
        .bootstrap(first.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    eventually(WAIT, || async {
        second.heartbeat_stats().await.unwrap().accepted >= 1
    })
    .await;
    // Only a heartbeat carries the subnet node id (there is no registry).
    let record = second.address_book().lookup(&first.peer_id()).unwrap();
    assert_eq!(record.subnet_node_id, Some(1), "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_throwaway_key_heartbeats_never_evicts_registry_or_bootstrap_entries() {
    use subnet::registry::Member;
    let member = PeerId::random();
    let (_dir, registry) = registry_file("throwaway-flood");
    registry
        .write(&[Member {
            peer_id: member,
            subnet_node_id: 7,
            addresses: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
        }])
        .unwrap();
    // A bootstrap peer that is down: its entry is never confirmed again, so
    // it is the oldest in the book, the first an age-only eviction takes.
    let bootstrap = PeerId::random();
    let target = builder(1)
        .registry(registry)
        .address_book(address_book::Config::default().with_max_peers(8))
        .bootstrap(
            format!("/ip4/127.0.0.1/tcp/1/p2p/{bootstrap}")
                .parse()
                .unwrap(),
        )
        .build()
        .await
        .unwrap();
    eventually(WAIT, || async {
        target.address_book().contains(&member) && target.address_book().contains(&bootstrap)
    })
    .await;
    // Twelve fresh identities, each heartbeating: more than the book holds.
    let mut flood = Vec::new();
    for i in 0..12 {
        let node = builder(100 + i)
            .bootstrap(target.addresses()[0].clone())
            .build()
            .await
            .unwrap();
        flood.push(node);
    }
    eventually(WAIT, || async {
        target.heartbeat_stats().await.unwrap().accepted >= 40
    })
    .await;
    let book = target.address_book();
    let learned = flood.iter().filter(|n| book.contains(&n.peer_id())).count();
    println!(
        "book of {} (bound 8): {learned} of 12 flooders, registry member and bootstrap kept",
        book.len()
    );
    assert!(book.contains(&member), "the registry member stays");
    assert!(book.contains(&bootstrap), "the bootstrap peer stays");
    assert_eq!(book.lookup(&member).unwrap().subnet_node_id, Some(7));
    assert!(book.len() <= 8, "{}", book.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_heartbeating_too_often_has_the_excess_dropped() {
    let (receiver, chatty) = receiver_and_sender().await;
    let before = receiver.heartbeat_stats().await.unwrap().accepted;
    // Twenty valid heartbeats at once; the interval is 200 ms, so one in
    // 100 ms gets through.
    let config = fast_heartbeat(2);
    for sequence in 0..20u64 {
        let heartbeat = heartbeat::build(
            &config,
            chatty.peer_id(),
            &chatty.addresses(),
            u64::MAX / 2 + sequence,
            SystemTime::now(),
        );
        chatty
            .publish(heartbeat::topic(1), encode(&heartbeat))
            .unwrap();
    }
    eventually(WAIT, || async {
        let stats = receiver.heartbeat_stats().await.unwrap();
        stats
            .rejected
            .get(&Rejection::TooFrequent)
            .copied()
            .unwrap_or(0)
            >= 15
    })
    .await;
    let stats = receiver.heartbeat_stats().await.unwrap();
    println!("receiver stats: {stats:?}");
    assert!(stats.accepted - before <= 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_gating_a_non_members_heartbeat_is_rejected() {
    use subnet::registry::Member;
    let member_key = subnet::Keypair::generate_ed25519();
    let (_dir, registry) = registry_file("gated-heartbeats");
    registry
        .write(&[Member {
            peer_id: member_key.public().to_peer_id(),
            subnet_node_id: 2,
            addresses: vec![],
        }])
        .unwrap();
    let guarded = builder(1)
        .registry(registry)
        .gating(true)
        .build()
        .await
        .unwrap();
    let member = builder(2)
        .keypair(member_key)
        .bootstrap(guarded.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    // The outsider reaches the guarded node only through the member, which
    // does not gate and forwards its heartbeats.
    let outsider = builder(3)
        .bootstrap(member.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    eventually(WAIT, || async {
        let stats = guarded.heartbeat_stats().await.unwrap();
        stats
            .rejected
            .get(&Rejection::NotMember)
            .copied()
            .unwrap_or(0)
            >= 1
            && stats.accepted >= 1
    })
    .await;
    assert!(guarded.address_book().contains(&member.peer_id()));
    assert!(!guarded.address_book().contains(&outsider.peer_id()));
    assert!(
        !guarded.is_banned(&member.peer_id()),
        "forwarding is no fault"
    );
}
