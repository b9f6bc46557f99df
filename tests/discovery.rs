//! Finding peers: each address source alone lets a node call a peer it is
//! not connected to, by bare peer id; gating keeps non-members out.

mod common;

use std::time::Duration;

use common::{eventually, registry_file, task};
use subnet::{
    Node, NodeBuilder, address_book::Source, heartbeat, registry::Member, task::TaskProtocol,
};

const WAIT: Duration = Duration::from_secs(20);

/// A builder with every source off, on loopback.
fn bare() -> NodeBuilder {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .peer_exchange(false)
        .kademlia(false)
}

fn fast_heartbeat(node_id: u64) -> heartbeat::Config {
    heartbeat::Config::new(1, node_id).with_epoch(Duration::from_secs(1), 5)
}

/// A line A–B–C: B first, then C bootstrapped to B, then A bootstrapped to B.
/// `with` adds the source under test to each builder.
async fn line(with: impl Fn(NodeBuilder, u64) -> NodeBuilder) -> (Node, Node, Node) {
    let b = with(bare(), 2).build().await.unwrap();
    let c = with(bare(), 3)
        .bootstrap(b.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    c.register(TaskProtocol).await.unwrap();
    let a = with(bare(), 1)
        .bootstrap(b.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    (a, b, c)
}

async fn a_calls_c(a: &Node, c: &Node) {
    let response = a
        .client::<TaskProtocol>()
        .call(c.peer_id(), task("found"))
        .await
        .expect("A reaches C by peer id");
    assert_eq!(&response.result[..], b"FOUND");
}

fn sources_of(node: &Node, peer: &Node) -> Vec<Source> {
    node.address_book()
        .lookup(&peer.peer_id())
        .map(|r| r.addresses.iter().map(|e| e.source).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_alone_finds_a_peer() {
    let c = bare().build().await.unwrap();
    c.register(TaskProtocol).await.unwrap();
    let (_dir, registry) = registry_file("registry-alone");
    registry
        .write(&[Member {
            peer_id: c.peer_id(),
            subnet_node_id: 3,
            addresses: vec![c.addresses()[0].clone()],
        }])
        .unwrap();
    let a = bare().registry(registry).build().await.unwrap();
    eventually(WAIT, || async { a.address_book().contains(&c.peer_id()) }).await;
    assert_eq!(sources_of(&a, &c), vec![Source::Registry]);
    let record = a.address_book().lookup(&c.peer_id()).unwrap();
    assert_eq!(record.subnet_node_id, Some(3));
    a_calls_c(&a, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_alone_find_a_peer() {
    let (a, _b, c) = line(|builder, id| builder.heartbeat(fast_heartbeat(id))).await;
    eventually(WAIT, || async { a.address_book().contains(&c.peer_id()) }).await;
    assert_eq!(sources_of(&a, &c), vec![Source::Heartbeat]);
    assert_eq!(
        a.address_book()
            .lookup(&c.peer_id())
            .unwrap()
            .subnet_node_id,
        Some(3)
    );
    a_calls_c(&a, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_exchange_alone_finds_a_peer() {
    let (a, b, c) = line(|builder, _| builder.peer_exchange(true)).await;
    // B knows C (from identify on their connection); A is connected to B.
    eventually(WAIT, || async { b.address_book().contains(&c.peer_id()) }).await;
    eventually(WAIT, || async {
        a.connected_peers().await.unwrap().contains(&b.peer_id())
    })
    .await;
    assert!(!a.address_book().contains(&c.peer_id()));
    a_calls_c(&a, &c).await;
    assert!(sources_of(&a, &c).contains(&Source::PeerExchange));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kademlia_alone_finds_a_peer() {
    let (a, b, c) = line(|builder, _| builder.kademlia(true)).await;
    eventually(WAIT, || async { b.address_book().contains(&c.peer_id()) }).await;
    eventually(WAIT, || async {
        a.connected_peers().await.unwrap().contains(&b.peer_id())
    })
    .await;
    a_calls_c(&a, &c).await;
    // Either A's lookup of C answered, or Kademlia's own bootstrap query
    // already connected A to C (and identify on that connection told where
    // C listens): Kademlia is the only source on, so it found C either way
    // (`with_no_source_a_peer_is_not_found` is the control).
    let sources = sources_of(&a, &c);
    assert!(
        sources.contains(&Source::Kademlia) || sources.contains(&Source::Identify),
        "{sources:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_source_a_peer_is_not_found() {
    let (a, _b, c) = line(|builder, _| builder).await;
    let error = a
        .client::<TaskProtocol>()
        .call(c.peer_id(), task("lost"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, subnet::CallError::NoAddress { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gating_admits_members_only() {
    let member = subnet::Keypair::generate_ed25519();
    let outsider = subnet::Keypair::generate_ed25519();
    let (_dir, registry) = registry_file("gating");
    let guard = bare().registry(registry.clone()).gating(true);
    // The guarded node lists the member (no address needed to be admitted).
    registry
        .write(&[Member {
            peer_id: member.public().to_peer_id(),
            subnet_node_id: 1,
            addresses: vec![],
        }])
        .unwrap();
    let guarded = guard.build().await.unwrap();
    guarded.register(TaskProtocol).await.unwrap();
    let address = guarded.addresses()[0].clone();
    let member = bare().keypair(member).build().await.unwrap();
    let outsider = bare().keypair(outsider).build().await.unwrap();

    // The registry is read at start; poll until the member is admitted.
    eventually(WAIT, || async {
        member
            .client::<TaskProtocol>()
            .call(address.clone(), task("member"))
            .await
            .is_ok()
    })
    .await;
    let error = outsider
        .client::<TaskProtocol>()
        .call(address.clone(), task("outsider"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            subnet::CallError::DialFailed { .. } | subnet::CallError::Open { .. }
        ),
        "{error}"
    );
    assert!(
        !guarded
            .connected_peers()
            .await
            .unwrap()
            .contains(&outsider.peer_id())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_unreachable_peers_do_not_keep_upkeep_from_a_live_one() {
    let live = bare().build().await.unwrap();
    let node = bare().min_peers(2).build().await.unwrap();
    // Fifty peers nobody listens for, then the live one: a fixed order
    // with no backoff would redial the first ones every second.
    for port in 1..=50u16 {
        node.add_address(
            subnet::PeerId::random(),
            format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
        );
    }
    node.add_address(live.peer_id(), live.addresses()[0].clone());
    let started = std::time::Instant::now();
    let live_id = live.peer_id();
    eventually(Duration::from_secs(30), || {
        let node = node.clone();
        async move { node.connected_peers().await.unwrap().contains(&live_id) }
    })
    .await;
    println!("the live peer connected after {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_answers_with_another_peer_id_is_forgotten() {
    let poisoner = bare().build().await.unwrap();
    let mut own = poisoner.addresses()[0].clone();
    own.pop(); // without its /p2p part: any peer id may be claimed there
    // Its peer exchange answers every question with its own address: a
    // dial there reaches the wrong identity.
    poisoner
        .register(common::FixedAnswer(vec![own.clone()]))
        .await
        .unwrap();
    let target = bare().build().await.unwrap();
    target.register(TaskProtocol).await.unwrap();
    let victim = bare()
        .peer_exchange(true)
        .bootstrap(poisoner.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    let poisoner_id = poisoner.peer_id();
    eventually(WAIT, || {
        let victim = victim.clone();
        async move {
            victim
                .connected_peers()
                .await
                .unwrap()
                .contains(&poisoner_id)
        }
    })
    .await;
    // The poisoned answer sends the call to the poisoner's address.
    let error = victim
        .client::<TaskProtocol>()
        .call(target.peer_id(), task("poisoned"))
        .await
        .unwrap_err();
    println!("first call: {error}");
    assert!(
        victim.reputation(&poisoner.peer_id()) < 0.0,
        "the poisoned answer counts against the peer that gave it"
    );
    assert!(
        !victim
            .address_book()
            .addresses(&target.peer_id())
            .contains(&own),
        "the poisoned address is forgotten"
    );
    // Given the true address, every call goes through.
    victim.add_address(target.peer_id(), target.addresses()[0].clone());
    let target_id = target.peer_id();
    eventually(WAIT, || {
        let victim = victim.clone();
        async move { !victim.address_book().addresses(&target_id).is_empty() }
    })
    .await;
    for i in 0..5 {
        victim
            .client::<TaskProtocol>()
            .call(target.peer_id(), task(&format!("call {i}")))
            .await
            .unwrap();
    }
    // A book with the poisoned and the true address: whichever handshake
    // wins the race, the call goes through (rust-libp2p fails the whole dial
    // when the wrong peer answers first; it is made again without it).
    for round in 0..5 {
        // No upkeep: the call is the first dial.
        let fresh = bare().min_peers(0).build().await.unwrap();
        fresh.add_address(target.peer_id(), own.clone());
        fresh.add_address(target.peer_id(), target.addresses()[0].clone());
        eventually(WAIT, || {
            let fresh = fresh.clone();
            async move { fresh.address_book().addresses(&target_id).len() == 2 }
        })
        .await;
        let result = fresh
            .client::<TaskProtocol>()
            .call(target.peer_id(), task("both"))
            .await;
        assert!(result.is_ok(), "round {round}: {result:?}");
        fresh.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kademlia_stores_no_record_a_peer_puts() {
    use futures::StreamExt;
    use libp2p::{
        kad,
        swarm::{StreamProtocol, SwarmEvent},
    };
    let node = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .subnet(1)
        .build()
        .await
        .unwrap();
    let mut swarm = common::bare_swarm(|key| {
        let peer = key.public().to_peer_id();
        let config = kad::Config::new(StreamProtocol::new("/subnet/1/kad/1.0.0"));
        kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), config)
    });
    swarm.behaviour_mut().set_mode(Some(kad::Mode::Client));
    let mut address = node.addresses()[0].clone();
    address.pop();
    swarm.behaviour_mut().add_address(&node.peer_id(), address);
    let key = kad::RecordKey::new(&"not the subnet's business");
    let record = kad::Record::new(key.clone(), vec![0x42; 1024]);
    swarm
        .behaviour_mut()
        .put_record(record, kad::Quorum::One)
        .unwrap();
    let mut put_done = false;
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                result, step, ..
            }) = swarm.select_next_some().await
            {
                match result {
                    kad::QueryResult::PutRecord(result) => {
                        println!("put: {result:?}");
                        put_done = true;
                        // Only the node's answer counts, not our own copy.
                        swarm.behaviour_mut().remove_record(&key);
                        swarm.behaviour_mut().get_record(key.clone());
                    }
                    kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) => {
                        return Some(found.peer);
                    }
                    kad::QueryResult::GetRecord(_) if step.last => return None,
                    _ => {}
                }
            }
        }
    })
    .await
    .expect("the queries end");
    assert!(put_done);
    assert_eq!(
        found, None,
        "the node served back a record it should not keep"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dropped_from_the_registry_is_disconnected() {
    let member = subnet::Keypair::generate_ed25519();
    let member_id = member.public().to_peer_id();
    let (_dir, registry) = registry_file("revoked");
    let listing = |peer| Member {
        peer_id: peer,
        subnet_node_id: 1,
        addresses: vec![],
    };
    registry.write(&[listing(member_id)]).unwrap();
    let guarded = bare()
        .registry(registry.clone())
        .gating(true)
        .address_book(
            subnet::address_book::Config::default()
                .with_registry_refresh(Duration::from_millis(200)),
        )
        .build()
        .await
        .unwrap();
    guarded.register(TaskProtocol).await.unwrap();
    let address = guarded.addresses()[0].clone();
    let member = bare().keypair(member).build().await.unwrap();
    eventually(WAIT, || async {
        member
            .client::<TaskProtocol>()
            .call(address.clone(), task("member"))
            .await
            .is_ok()
    })
    .await;
    // The registry stops listing it: its connection is closed, and it is
    // refused from then on.
    registry
        .write(&[listing(subnet::PeerId::random())])
        .unwrap();
    eventually(WAIT, || async {
        !guarded
            .connected_peers()
            .await
            .unwrap()
            .contains(&member_id)
    })
    .await;
    assert!(
        member
            .client::<TaskProtocol>()
            .call(address.clone(), task("no longer"))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_multiaddr_is_noted_only_once_it_connected() {
    let node = bare().min_peers(0).build().await.unwrap();
    let server = bare().build().await.unwrap();
    server.register(TaskProtocol).await.unwrap();
    // Nobody listens there: the call fails and the address is not kept.
    let dead = subnet::PeerId::random();
    let error = node
        .client::<TaskProtocol>()
        .call(
            format!("/ip4/127.0.0.1/tcp/1/p2p/{dead}").as_str(),
            task("x"),
        )
        .await
        .unwrap_err();
    println!("{error}");
    assert!(!node.address_book().contains(&dead));
    // A live one is kept.
    node.client::<TaskProtocol>()
        .call(server.addresses()[0].clone(), task("x"))
        .await
        .unwrap();
    let server_id = server.peer_id();
    eventually(WAIT, || {
        let node = node.clone();
        async move { node.address_book().contains(&server_id) }
    })
    .await;
}
