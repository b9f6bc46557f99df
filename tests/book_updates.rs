//! Heartbeats that repeat what a signer already told the address book are
//! coalesced before the book's mailbox: a peer heartbeating ten times a
//! second costs the book one update per refresh period, not ten a second,
//! and stays in the book. Counted by the metrics server of this process.

mod common;

use std::time::Duration;

use common::{eventually, scrape_sum};
use subnet::{Node, heartbeat};

fn builder(node_id: u64) -> subnet::NodeBuilder {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .peer_exchange(false)
        .kademlia(false)
        .metrics_label(node_id.to_string())
        .heartbeat(heartbeat::Config::new(1, node_id).with_epoch(Duration::from_secs(1), 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_heartbeats_are_coalesced_before_the_address_book() {
    let server = subnet::metrics::serve_prometheus("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = server.local_addr().port();
    let receiver = builder(1).build().await.unwrap();
    let sender = builder(2)
        .bootstrap(receiver.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    let received = || scrape_sum(port, "subnet_heartbeats_received_total", &["node=\"1\""]);
    eventually(Duration::from_secs(30), || async {
        received().await >= 20.0
    })
    .await;
    let accepted = received().await;
    let coalesced = scrape_sum(
        port,
        "subnet_address_book_updates_coalesced_total",
        &["node=\"1\"", "reason=\"unchanged\""],
    )
    .await;
    println!("{accepted} heartbeats accepted, {coalesced} coalesced");
    // The first went to the book; a later one may have, if the sender's
    // advertised addresses changed; the refresh period (15 s) did not pass.
    assert!(
        coalesced >= accepted - 3.0,
        "{coalesced} of {accepted} coalesced"
    );
    let record = receiver
        .address_book()
        .lookup(&sender.peer_id())
        .expect("the sender is in the book");
    // Its node id comes from its heartbeats only.
    assert_eq!(record.subnet_node_id, Some(2), "{record:?}");
    for node in [sender, receiver] {
        node.shutdown().await;
    }
}
