//! Nodes on three simulated hosts (network namespaces on a bridge,
//! `tests/common/netns.rs`), each listening on wildcard TCP and QUIC
//! addresses, found through the address sources and called across hosts.

mod common;

use std::time::Duration;

use common::netns::{Host, bridge, first_address};

const BIN: &str = env!("CARGO_BIN_EXE_subnet");

/// Writes a key and returns its file and peer id.
fn key(dir: &std::path::Path, name: &str) -> (String, String) {
    common::netns::keygen(BIN, dir, name).unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `check` every 200 ms until it holds, failing after `timeout`
/// with the last thing it saw.
fn poll(timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return,
            Err(seen) if std::time::Instant::now() > deadline => {
                panic!("not within {timeout:?}: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `subnet peers` of the node on `host`, asked from the host itself.
fn peers(host: &Host, id: &str) -> String {
    text(&host.run(
        BIN,
        &["peers", &format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}")],
    ))
}

#[test]
fn nodes_on_three_hosts_find_and_call_each_other_by_peer_id() {
    let Some(bed) = bridge(3) else { return };
    let dir = common::temp_dir("hosts-three");
    let keys: Vec<(String, String)> = ["a", "b", "c"].iter().map(|n| key(&dir, n)).collect();
    let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
    // The others bootstrap to the first by name, as a docker-compose
    // subnet does (`/dns4/bootnode/...`), resolved inside each host.
    let first = format!("/dns4/bootnode/tcp/4001/p2p/{}", ids[0]);
    for host in &bed.hosts {
        host.resolve("bootnode", &bed.hosts[0].ip);
    }
    let mut nodes = Vec::new();
    for (i, host) in bed.hosts.iter().enumerate() {
        let mut args = vec![
            "node",
            "--key",
            &keys[i].0,
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--listen",
            "/ip4/0.0.0.0/udp/4001/quic-v1",
            "--heartbeat-interval",
            "1",
        ];
        // One bootstrap list for the whole subnet, the first node included.
        args.extend(["--bootstrap", &first]);
        let mut node = host.spawn(BIN, &args);
        // The first address a node prints is one other hosts can reach.
        let address = first_address(&mut node.0);
        assert!(
            address.starts_with(&format!("/ip4/{}/", host.ip)),
            "{address}"
        );
        nodes.push(node);
    }

    // Every book lists the two other nodes, and no other host's loopback
    // address: a node on one host never learns another's 127.0.0.1.
    for (i, host) in bed.hosts.iter().enumerate() {
        poll(Duration::from_secs(60), || {
            let book = peers(host, ids[i]);
            let others = (0..3).filter(|j| *j != i);
            if !others.clone().all(|j| book.contains(ids[j])) {
                return Err(book);
            }
            assert!(
                !book.contains("/ip4/127."),
                "a loopback address from another host: {book}"
            );
            for j in others {
                let ip = &bed.hosts[j].ip;
                if !(book.contains(&format!("/ip4/{ip}/tcp/4001"))
                    && book.contains(&format!("/ip4/{ip}/udp/4001/quic-v1")))
                {
                    return Err(book);
                }
            }
            Ok(())
        });
    }

    // From each host, a short-lived node that knows only its host's node
    // calls each other node by peer id: the address it finds must be the
    // right one (a loopback address would reach the wrong node).
    for (i, host) in bed.hosts.iter().enumerate() {
        let local = format!("/ip4/{}/tcp/4001/p2p/{}", host.ip, ids[i]);
        for j in (0..3).filter(|j| *j != i) {
            let payload = format!("from-{i}-to-{j}");
            let call = host.run(BIN, &["call", ids[j], &payload, "--bootstrap", &local]);
            assert!(call.status.success(), "{}", text(&call));
            assert_eq!(
                String::from_utf8_lossy(&call.stdout).trim(),
                payload.to_uppercase()
            );
        }
    }

    // Over QUIC, across hosts, by multiaddr.
    let quic = format!("/ip4/{}/udp/4001/quic-v1/p2p/{}", bed.hosts[2].ip, ids[2]);
    let call = bed.hosts[0].run(BIN, &["call", &quic, "quic"]);
    assert!(call.status.success(), "{}", text(&call));
    assert_eq!(String::from_utf8_lossy(&call.stdout).trim(), "QUIC");

    drop(nodes);
    drop(bed);
}

#[test]
fn a_node_behind_nat_calls_out_but_cannot_be_called_directly() {
    let Some(mut bed) = bridge(1) else { return };
    let dir = common::temp_dir("hosts-nat");
    let (key_b, id_b) = key(&dir, "b");
    let (key_a, _) = key(&dir, "a");
    let mut b = bed.hosts[0].spawn(
        BIN,
        &["node", "--key", &key_b, "--listen", "/ip4/0.0.0.0/tcp/4001"],
    );
    first_address(&mut b.0);
    let b_address = format!("/ip4/{}/tcp/4001/p2p/{id_b}", bed.hosts[0].ip);
    let natted = bed.behind_nat();
    let mut a = natted.spawn(
        BIN,
        &["node", "--key", &key_a, "--listen", "/ip4/0.0.0.0/tcp/4001"],
    );
    let a_address = first_address(&mut a.0);
    assert!(
        a_address.starts_with(&format!("/ip4/{}/", natted.ip)),
        "{a_address}"
    );

    // Out through the NAT: A's host reaches B.
    let out = natted.run(BIN, &["call", &b_address, "out"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OUT");

    // In: B's host cannot reach A at its private address, nor at its
    // router's: the router forwards nothing it was not asked for.
    for address in [
        a_address.clone(),
        a_address.replace(&natted.ip, "10.201.0.100"),
    ] {
        let call = bed.hosts[0].run(BIN, &["call", &address, "in"]);
        assert!(!call.status.success(), "{address}: {}", text(&call));
    }
    drop((a, b));
}

#[test]
fn a_node_behind_nat_finds_itself_unreachable_and_is_called_by_peer_id_through_a_relay() {
    let Some(mut bed) = bridge(2) else { return };
    let dir = common::temp_dir("hosts-relay");
    let [(key_r, id_r), (key_b, id_b), (key_a, id_a)] = ["r", "b", "a"].map(|n| key(&dir, n));
    let relay = format!("/ip4/{}/tcp/4001/p2p/{id_r}", bed.hosts[0].ip);
    let common = [
        "--listen",
        "/ip4/0.0.0.0/tcp/4001",
        "--heartbeat-interval",
        "1",
    ];
    let mut r = bed.hosts[0].spawn(
        BIN,
        &[&["node", "--key", &key_r, "--relay-server"][..], &common].concat(),
    );
    first_address(&mut r.0);
    let mut b = bed.hosts[1].spawn(
        BIN,
        &[
            &["node", "--key", &key_b, "--bootstrap", &relay][..],
            &common,
        ]
        .concat(),
    );
    first_address(&mut b.0);
    let natted = bed.behind_nat();
    let mut a = natted.spawn(
        BIN,
        &[
            &["node", "--key", &key_a, "--bootstrap", &relay][..],
            &common,
        ]
        .concat(),
    );
    let a_private = first_address(&mut a.0);

    // AutoNAT finds A unreachable (R cannot dial it back); A reserves a
    // slot on R, its bootstrap peer and a relay server, by itself, and
    // advertises the circuit: B's book learns it from A's heartbeats.
    let b_host = &bed.hosts[1];
    poll(Duration::from_secs(60), || {
        let book = peers(b_host, &id_b);
        if book.contains(&id_a) && book.contains("/p2p-circuit") {
            Ok(())
        } else {
            Err(book)
        }
    });

    // B's side calls A by peer id: through the relay (or a connection
    // hole punching made from it).
    // Polled: a new circuit may still be settling (one run in about
    // twenty needed a second call).
    let b_local = format!("/ip4/{}/tcp/4001/p2p/{id_b}", b_host.ip);
    let called = |host: &Host, args: &[&str], expected: &str| {
        poll(Duration::from_secs(30), || {
            let call = host.run(BIN, args);
            let answer = String::from_utf8_lossy(&call.stdout).trim().to_owned();
            if call.status.success() && answer == expected {
                Ok(())
            } else {
                Err(text(&call))
            }
        })
    };
    called(
        b_host,
        &["call", &id_a, "through", "--bootstrap", &b_local],
        "THROUGH",
    );

    // And A calls B by peer id, out through its NAT.
    called(
        &natted,
        &["call", &id_b, "out", "--bootstrap", &a_private],
        "OUT",
    );
    drop((a, b, r));
}

#[test]
fn an_external_address_is_advertised_first() {
    let Some(bed) = bridge(2) else { return };
    let dir = common::temp_dir("hosts-external");
    let [(key_a, id_a), (key_b, id_b)] = ["a", "b"].map(|n| key(&dir, n));
    // As if a router in front of A forwarded 10.201.0.200:4001 to it.
    let external = "/ip4/10.201.0.200/tcp/4001";
    let mut a = bed.hosts[0].spawn(
        BIN,
        &[
            "node",
            "--key",
            &key_a,
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--external-address",
            external,
            "--heartbeat-interval",
            "1",
        ],
    );
    assert_eq!(first_address(&mut a.0), format!("{external}/p2p/{id_a}"));
    let a_address = format!("/ip4/{}/tcp/4001/p2p/{id_a}", bed.hosts[0].ip);
    let mut b = bed.hosts[1].spawn(
        BIN,
        &[
            "node",
            "--key",
            &key_b,
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--bootstrap",
            &a_address,
            "--heartbeat-interval",
            "1",
        ],
    );
    first_address(&mut b.0);
    poll(Duration::from_secs(30), || {
        let book = peers(&bed.hosts[1], &id_b);
        if book.contains(external) {
            Ok(())
        } else {
            Err(book)
        }
    });
    drop((a, b));
}

/// Starts a node on each host, all bootstrapped to the first (by name),
/// with `extra` flags; returns them and their peer ids.
fn start_on(
    bed: &common::netns::Bridge,
    dir: &std::path::Path,
    extra: &[&str],
) -> (Vec<common::KillOnDrop>, Vec<String>) {
    let keys: Vec<(String, String)> = (0..bed.hosts.len())
        .map(|i| key(dir, &format!("k{i}")))
        .collect();
    let first = format!("/ip4/{}/tcp/4001/p2p/{}", bed.hosts[0].ip, keys[0].1);
    let nodes = bed
        .hosts
        .iter()
        .zip(&keys)
        .map(|(host, (key, _))| {
            let mut args = vec![
                "node",
                "--key",
                key,
                "--listen",
                "/ip4/0.0.0.0/tcp/4001",
                "--bootstrap",
                &first,
                "--heartbeat-interval",
                "1",
            ];
            args.extend(extra);
            let mut node = host.spawn(BIN, &args);
            first_address(&mut node.0);
            node
        })
        .collect();
    (nodes, keys.into_iter().map(|(_, id)| id).collect())
}

/// From host `i`, a short-lived node bootstrapped to `via` calls node `j`
/// by peer id.
fn call_by_peer_id(bed: &common::netns::Bridge, ids: &[String], i: usize, via: usize, j: usize) {
    let bootstrap = format!("/ip4/{}/tcp/4001/p2p/{}", bed.hosts[via].ip, ids[via]);
    let payload = format!("from-{i}-to-{j}");
    let call = bed.hosts[i].run(BIN, &["call", &ids[j], &payload, "--bootstrap", &bootstrap]);
    assert!(call.status.success(), "{}", text(&call));
    assert_eq!(
        String::from_utf8_lossy(&call.stdout).trim(),
        payload.to_uppercase()
    );
}

#[test]
fn heartbeats_alone_spread_bridge_addresses() {
    let Some(bed) = bridge(3) else { return };
    let dir = common::temp_dir("hosts-heartbeat-only");
    let (_nodes, ids) = start_on(&bed, &dir, &["--no-kademlia", "--no-peer-exchange"]);
    // Hosts 1 and 2 never dialed each other: only a heartbeat can tell
    // one where the other lives.
    for (i, j) in [(1, 2), (2, 1)] {
        poll(Duration::from_secs(60), || {
            let book = peers(&bed.hosts[i], &ids[i]);
            assert!(!book.contains("/ip4/127."), "{book}");
            let found = book.contains(&ids[j])
                && book.contains(&format!("/ip4/{}/tcp/4001", bed.hosts[j].ip));
            if found { Ok(()) } else { Err(book) }
        });
    }
}

#[test]
fn kademlia_alone_finds_a_peer_on_another_host() {
    let Some(bed) = bridge(3) else { return };
    let dir = common::temp_dir("hosts-kademlia-only");
    let (_nodes, ids) = start_on(&bed, &dir, &["--no-heartbeat", "--no-peer-exchange"]);
    // No heartbeat, and no peer exchange served: the caller's lookup falls
    // through to the DHT, bootstrapped at its own host's node.
    for (i, j) in [(1, 2), (2, 1), (1, 0)] {
        call_by_peer_id(&bed, &ids, i, i, j);
    }
}

#[test]
fn peer_exchange_alone_finds_a_peer_on_another_host() {
    let Some(bed) = bridge(3) else { return };
    let dir = common::temp_dir("hosts-peer-exchange-only");
    let (_nodes, ids) = start_on(&bed, &dir, &["--no-heartbeat", "--no-kademlia"]);
    // The first node knows the others (they dialed it): asked by a caller
    // on host 1, it tells where host 2's node lives, and vice versa.
    poll(Duration::from_secs(30), || {
        let book = peers(&bed.hosts[0], &ids[0]);
        if book.contains(&ids[1]) && book.contains(&ids[2]) {
            Ok(())
        } else {
            Err(book)
        }
    });
    for (i, j) in [(1, 2), (2, 1)] {
        call_by_peer_id(&bed, &ids, i, 0, j);
    }
}

/// Calls from `host` with `subnet call ... --count`; returns each call's
/// path ("direct" or "relayed") as it printed them.
fn call_paths(host: &Host, args: &[&str]) -> Result<Vec<&'static str>, String> {
    let calls = host.calls(BIN, args)?;
    Ok(calls
        .iter()
        .map(|c| if c.direct { "direct" } else { "relayed" })
        .collect())
}

#[test]
fn two_nodes_behind_their_own_nats_call_through_a_relay_and_try_hole_punching() {
    let Some(mut bed) = bridge(1) else { return };
    let dir = common::temp_dir("hosts-two-nats");
    let [(key_r, id_r), (key_a, id_a)] = ["r", "a"].map(|n| key(&dir, n));
    let relay = format!("/ip4/{}/tcp/4001/p2p/{id_r}", bed.hosts[0].ip);
    let mut r = bed.hosts[0].spawn(
        BIN,
        &[
            "node",
            "--key",
            &key_r,
            "--relay-server",
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--heartbeat-interval",
            "1",
        ],
    );
    first_address(&mut r.0);
    let a_host = bed.behind_nat();
    let c_host = bed.behind_nat();
    let mut a = a_host.spawn(
        BIN,
        &[
            "node",
            "--key",
            &key_a,
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--bootstrap",
            &relay,
            "--heartbeat-interval",
            "1",
        ],
    );
    first_address(&mut a.0);
    // C, behind the other NAT, calls A by peer id: first through R (A's
    // circuit address, once A found itself unreachable and reserved a
    // slot), then, if hole punching made a direct connection, directly.
    // C listens on a fixed port, as hole punching through its NAT needs.
    let mut paths = Vec::new();
    poll(Duration::from_secs(60), || {
        paths = call_paths(
            &c_host,
            &[
                "call",
                &id_a,
                "punch",
                "--bootstrap",
                &relay,
                "--listen",
                "/ip4/0.0.0.0/tcp/4001",
                "--count",
                "3",
                "--interval-ms",
                "1500",
            ],
        )?;
        Ok(())
    });
    assert_eq!(paths.len(), 3, "every call answered: {paths:?}");
    assert_eq!(paths[0], "relayed", "the first call goes through R");
    eprintln!(
        "two NATs: calls went {paths:?}; hole punching {}",
        if paths.last() == Some(&"direct") {
            "made a direct connection"
        } else {
            "did not succeed"
        }
    );
    // Without hole punching on the caller, every call stays relayed.
    let relayed = call_paths(
        &c_host,
        &[
            "call",
            &id_a,
            "stay",
            "--bootstrap",
            &relay,
            "--no-hole-punching",
            "--count",
            "2",
            "--interval-ms",
            "1500",
        ],
    )
    .unwrap();
    assert_eq!(relayed, ["relayed", "relayed"]);
    drop((a, r));
}
