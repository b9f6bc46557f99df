//! Benchmark: how fast a subnet in one process converges through heartbeats.
//!
//! ```text
//! cargo run --release --example converge -- 20 50
//! ```
//!
//! For each size N, starts N nodes on loopback, each bootstrapped to the
//! first (a star: only heartbeats can tell a node about the others), with
//! peer exchange off and Kademlia off unless `--kademlia`, then measures the time until every
//! node's address book holds every other node, the process's resident
//! memory per node, and the heartbeat bytes each node publishes per second.

use std::time::{Duration, Instant};

use clap::Parser;
use subnet::{Node, PeerId, heartbeat};

#[derive(Parser)]
struct Args {
    /// Subnet sizes to measure.
    #[arg(default_values_t = [20, 50])]
    sizes: Vec<usize>,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Also run Kademlia (off by default: heartbeats alone).
    #[arg(long)]
    kademlia: bool,
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

async fn run(size: usize, interval: Duration, kademlia: bool) {
    let config = |id: u64| heartbeat::Config::new(1, id).with_epoch(interval * 4, 4);
    let builder = |id: u64| {
        Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .peer_exchange(false)
            .kademlia(kademlia)
            .heartbeat(config(id))
    };
    let before = resident_kib();
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
    let complete = |n: &Node| {
        ids.iter()
            .all(|id| *id == n.peer_id() || n.address_book().contains(id))
    };
    while !nodes.iter().all(complete) {
        if started.elapsed() > Duration::from_secs(120) {
            let done = nodes.iter().filter(|n| complete(n)).count();
            println!("| {size} | did not converge in 120 s ({done}/{size} complete) | | |");
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
    // Let the subnet run a few intervals more to measure steady-state bytes.
    let mut bytes_before = 0;
    for n in &nodes {
        bytes_before += n.heartbeat_stats().await.unwrap().published_bytes;
    }
    let window = interval * 5;
    tokio::time::sleep(window).await;
    let mut bytes_after = 0;
    for n in &nodes {
        bytes_after += n.heartbeat_stats().await.unwrap().published_bytes;
    }
    let per_node_per_s = (bytes_after - bytes_before) as f64 / size as f64 / window.as_secs_f64();
    println!(
        "| {size} | {:.2} s ({:.1} intervals) | {} KiB | {per_node_per_s:.0} B/s |",
        converged.as_secs_f64(),
        converged.as_secs_f64() / interval.as_secs_f64(),
        memory / size as u64,
    );
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let interval = Duration::from_millis(args.interval_ms);
    println!("heartbeat interval: {interval:?}");
    println!("| nodes | convergence | memory per node | heartbeat payload per node |");
    println!("|---|---|---|---|");
    for size in args.sizes {
        run(size, interval, args.kademlia).await;
    }
}
