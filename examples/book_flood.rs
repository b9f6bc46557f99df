//! Benchmark: a flood of distinct peers into a full address book.
//!
//! ```text
//! cargo run --release --example book_flood
//! ```
//!
//! Adds 50,000 distinct peers to a node whose book keeps 10,000 (the
//! default), through the address book actor as any source would, and
//! prints how long the actor took: the cost of merging plus eviction.

use std::time::Instant;

use subnet::{Node, PeerId};

#[tokio::main]
async fn main() {
    let node = Node::builder().build().await.unwrap();
    let flood: Vec<PeerId> = (0..50_000).map(|_| PeerId::random()).collect();
    let started = Instant::now();
    for (i, peer) in flood.iter().enumerate() {
        let address = format!(
            "/ip4/10.{}.{}.{}/tcp/4001",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        );
        node.add_address(*peer, address.parse().unwrap());
    }
    let last = *flood.last().unwrap();
    while !node.address_book().contains(&last) {
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed();
    println!(
        "50000 peers into a 10000-peer book: {:.2} s ({:.1} µs per peer), {} peers kept",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / 50_000.0,
        node.address_book().len()
    );
    node.shutdown().await;
}
