//! `subnet demo`: a local subnet in one process, shown finding itself.
//!
//! N nodes start on loopback, each bootstrapped to the first, with fast
//! heartbeats: the first node learns of the others as they connect
//! (identify), the others learn of each other from heartbeats. The demo prints each discovery as it happens, then has every
//! node call every other node directly by peer id through the task
//! protocol, and prints who found whom, through which source, and each
//! call's latency. It exits 0 only if every call succeeded.

use std::time::{Duration, Instant};

use subnet::{
    Node, PeerId,
    address_book::Event,
    heartbeat,
    task::{TaskProtocol, TaskRequest},
};

/// The demo's heartbeat: 4 per 1 s epoch.
const EPOCH: Duration = Duration::from_secs(1);
/// Time allowed for every node to find every other.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(size: usize) -> Result<(), String> {
    if !(2..=64).contains(&size) {
        return Err(format!("--nodes must be between 2 and 64, not {size}"));
    }
    println!("starting a subnet of {size} nodes on 127.0.0.1");
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..size {
        // Kademlia off: its bootstrap would connect every node to every
        // other at once, and the demo would only show identify at work.
        let mut builder = Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().expect("valid"))
            .kademlia(false)
            .heartbeat(heartbeat::Config::new(1, i as u64 + 1).with_epoch(EPOCH, 4));
        if let Some(first) = nodes.first() {
            builder = builder.bootstrap(first.addresses()[0].clone());
        }
        let node = builder.build().await.map_err(|e| e.to_string())?;
        node.register(TaskProtocol)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "  node {} is {} at {}",
            i + 1,
            node.peer_id(),
            node.addresses()[0]
        );
        nodes.push(node);
    }
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.peer_id()).collect();
    let name = |peer: &PeerId| {
        ids.iter()
            .position(|id| id == peer)
            .map(|i| format!("node {}", i + 1))
            .unwrap_or_else(|| peer.to_string())
    };

    println!("discovering");
    let started = Instant::now();
    let mut events = Vec::new();
    for node in &nodes {
        events.push(
            node.address_book_events()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    // Peers found before subscribing are reported from the book itself.
    let mut seen = vec![Vec::<PeerId>::new(); size];
    let complete = |nodes: &[Node]| {
        nodes.iter().all(|n| {
            ids.iter()
                .all(|id| *id == n.peer_id() || n.address_book().contains(id))
        })
    };
    loop {
        for (i, node) in nodes.iter().enumerate() {
            while let Ok(event) = events[i].try_recv() {
                if let Event::PeerAdded { peer, source } = event
                    && ids.contains(&peer)
                    && !seen[i].contains(&peer)
                {
                    seen[i].push(peer);
                    println!("  node {} found {} via {source}", i + 1, name(&peer));
                }
            }
            for peer in node.address_book().peers() {
                if ids.contains(&peer) && !seen[i].contains(&peer) {
                    seen[i].push(peer);
                    let via = node.address_book().lookup(&peer).map(|r| r.found_via);
                    if let Some(via) = via {
                        println!("  node {} found {} via {via}", i + 1, name(&peer));
                    }
                }
            }
        }
        if complete(&nodes) {
            break;
        }
        if started.elapsed() > DISCOVERY_TIMEOUT {
            shutdown(&nodes).await;
            return Err(format!(
                "the subnet did not converge within {DISCOVERY_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "every node knows every other after {:.2} s",
        started.elapsed().as_secs_f64()
    );

    println!("calling every node from every node, by peer id");
    let mut rows = Vec::new();
    for (i, caller) in nodes.iter().enumerate() {
        let client = caller.client::<TaskProtocol>();
        for (j, callee) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let via = caller
                .address_book()
                .lookup(callee)
                .map(|r| r.found_via.name())
                .unwrap_or("-");
            let payload = format!("hello node {} from node {}", j + 1, i + 1);
            let request = TaskRequest {
                task_id: format!("{i}->{j}"),
                payload: payload.clone().into_bytes().into(),
            };
            let t = Instant::now();
            let outcome = match client.call(*callee, request).await {
                Ok(r) if r.result == payload.to_ascii_uppercase().as_bytes() => Ok(t.elapsed()),
                Ok(_) => Err("wrong answer".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            rows.push((i + 1, j + 1, via, outcome));
        }
    }
    println!();
    println!("| caller | callee | found via | call latency | result |");
    println!("|---|---|---|---|---|");
    let mut failed = 0;
    for (from, to, via, outcome) in &rows {
        match outcome {
            Ok(latency) => println!(
                "| node {from} | node {to} | {via} | {:.2} ms | ok |",
                latency.as_secs_f64() * 1e3
            ),
            Err(e) => {
                failed += 1;
                println!("| node {from} | node {to} | {via} | - | failed: {e} |");
            }
        }
    }
    println!();
    shutdown(&nodes).await;
    if failed > 0 {
        return Err(format!("{failed} of {} calls failed", rows.len()));
    }
    println!("all {} calls succeeded", rows.len());
    Ok(())
}

async fn shutdown(nodes: &[Node]) {
    for node in nodes {
        node.shutdown().await;
    }
}
