//! Benchmark: how fast a subnet in one process converges.
//!
//! ```text
//! cargo run --release --example converge                  # 25, 50, 100 nodes, defaults
//! cargo run --release --example converge -- 100 --interval-ms 1000 --heartbeats-only
//! ```
//!
//! For each size N, starts N nodes on loopback, each bootstrapped to the
//! first (a star), with the framework's defaults (heartbeat every 15 s,
//! Kademlia and peer exchange on) unless told otherwise, then measures the
//! time until every node's address book holds every other node (in seconds
//! and in heartbeat intervals), the process's resident memory per node, the
//! heartbeat payload each node publishes per second and, over two
//! intervals (at least 10 s) after one more (at least 10 s) to settle, every
//! byte on the loopback interface per node per second
//! (heartbeats with GossipSub's envelope, forwarding and control traffic,
//! identify, ping, Kademlia).

use std::time::{Duration, Instant};

use clap::Parser;
use subnet::{Node, PeerId, heartbeat};

#[derive(Parser)]
struct Args {
    /// Subnet sizes to measure.
    #[arg(default_values_t = [25, 50, 100])]
    sizes: Vec<usize>,
    /// Heartbeat interval in milliseconds (default: the framework's).
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Kademlia and peer exchange off: only heartbeats spread addresses.
    #[arg(long)]
    heartbeats_only: bool,
    /// Kademlia off (peer exchange stays on unless `--heartbeats-only`).
    #[arg(long)]
    no_kademlia: bool,
}

/// Bytes received on the loopback interface so far (each byte sent on
/// loopback is received once).
fn loopback_bytes() -> u64 {
    std::fs::read_to_string("/proc/net/dev")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.trim_start().starts_with("lo:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run(size: usize, interval: Duration, heartbeats_only: bool, kademlia: bool) {
    let config = |id: u64| heartbeat::Config::new(1, id).with_epoch(interval * 4, 4);
    let builder = |id: u64| {
        Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .peer_exchange(!heartbeats_only)
            .kademlia(kademlia && !heartbeats_only)
            .heartbeat(config(id))
    };
    let before = resident_kib();
    let first = match builder(1).build().await {
        Ok(node) => node,
        Err(error) => return println!("| {size} | could not start: {error} | | | |"),
    };
    let mut nodes = vec![first.clone()];
    for i in 1..size {
        let started = builder(i as u64 + 1)
            .bootstrap(first.addresses()[0].clone())
            .build()
            .await;
        match started {
            Ok(node) => nodes.push(node),
            // Out of file descriptors, typically: say so and stop there.
            Err(error) => {
                println!(
                    "| {size} | node {} of {size} could not start: {error} | | | |",
                    i + 1
                );
                for node in nodes {
                    node.shutdown().await;
                }
                return;
            }
        }
    }
    let started = Instant::now();
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.peer_id()).collect();
    let complete = |n: &Node| {
        ids.iter()
            .all(|id| *id == n.peer_id() || n.address_book().contains(id))
    };
    let limit = (interval * 10).max(Duration::from_secs(120));
    while !nodes.iter().all(complete) {
        if started.elapsed() > limit {
            let done = nodes.iter().filter(|n| complete(n)).count();
            println!("| {size} | did not converge in {limit:?} ({done}/{size} complete) | | | |");
            for (i, n) in nodes.iter().enumerate().filter(|(_, n)| !complete(n)) {
                let missing: Vec<usize> = ids
                    .iter()
                    .enumerate()
                    .filter(|(_, id)| **id != n.peer_id() && !n.address_book().contains(id))
                    .map(|(j, _)| j)
                    .collect();
                let connected = n.connected_peers().await.map(|p| p.len()).unwrap_or(0);
                let stats = n.heartbeat_stats().await;
                eprintln!("node {i}: missing {missing:?}, {connected} connections, {stats:?}");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let converged = started.elapsed();
    let memory = resident_kib().saturating_sub(before);
    // Let the subnet settle (Kademlia's bootstrap queries, set off by every
    // new peer, die down), then measure steady-state bytes.
    tokio::time::sleep(interval.max(Duration::from_secs(10))).await;
    // Each node's counter is read through its actor's mailbox, which a
    // saturated process serves late: time each node's own reads.
    let mut payload_before = Vec::new();
    for n in &nodes {
        let bytes = n.heartbeat_stats().await.unwrap().published_bytes;
        payload_before.push((bytes, Instant::now()));
    }
    let wire_before = loopback_bytes();
    let window = (interval * 2).max(Duration::from_secs(10));
    tokio::time::sleep(window).await;
    let wire = loopback_bytes() - wire_before;
    let mut payload = 0.0;
    for (n, (before, at)) in nodes.iter().zip(payload_before) {
        let bytes = n.heartbeat_stats().await.unwrap().published_bytes;
        payload += (bytes - before) as f64 / at.elapsed().as_secs_f64();
    }
    let per_node_per_s = |bytes: u64| bytes as f64 / size as f64 / window.as_secs_f64();
    println!(
        "| {size} | {:.2} s ({:.2} intervals) | {} KiB | {:.1} B/s | {:.0} B/s |",
        converged.as_secs_f64(),
        converged.as_secs_f64() / interval.as_secs_f64(),
        memory / size as u64,
        payload / size as f64,
        per_node_per_s(wire),
    );
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let interval = args
        .interval_ms
        .map(Duration::from_millis)
        .unwrap_or_else(|| heartbeat::Config::new(1, 1).interval());
    let sources = match (args.heartbeats_only, args.no_kademlia) {
        (true, _) => "heartbeats only",
        (false, true) => "heartbeats, peer exchange",
        (false, false) => "heartbeats, peer exchange, Kademlia",
    };
    println!("heartbeat interval {interval:?}; {sources}");
    println!(
        "| nodes | every book complete after | memory per node | heartbeat payload per node | loopback bytes per node |"
    );
    println!("|---|---|---|---|---|");
    for size in args.sizes {
        run(size, interval, args.heartbeats_only, !args.no_kademlia).await;
    }
}
