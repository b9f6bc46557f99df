//! Connection trimming (`NodeBuilder::max_peers`): a node holding more
//! connected peers than it wants closes the least recently used idle ones,
//! down to three quarters of the limit, and spares a peer whose call it is
//! serving. Its passes are watched on the metrics server of this process.

mod common;

use std::time::Duration;

use common::{Probe, eventually, scrape_sum, task};
use subnet::{Node, NodeBuilder, ProtocolConfig, StartError, task::TaskProtocol};

const HOUR: Duration = Duration::from_secs(3600);

/// A node on loopback that never dials on its own and keeps idle
/// connections for an hour: only trimming closes them.
fn builder() -> NodeBuilder {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .min_peers(0)
        .idle_connection_timeout(HOUR)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_max_peers_closes_idle_connections_and_spares_a_call_in_progress() {
    let server = subnet::metrics::serve_prometheus("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = server.local_addr().port();
    let hub = builder()
        .metrics_label("hub")
        .max_peers(4)
        .trim_grace(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let (probe, _failures) = Probe::new(ProtocolConfig::default());
    let config = probe.config();
    hub.register_with(probe, config).await.unwrap();
    let address = hub.addresses()[0].clone();

    // The first leaf to connect (the least recently connected) calls at
    // once, for longer than the grace; then eight more connect.
    let first = builder().build().await.unwrap();
    first
        .connect(address.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    let caller = first.peer_id();
    let client = first
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(30)));
    let call = {
        let address = address.to_string();
        tokio::spawn(async move { client.call(&address, task("sleep:6000")).await })
    };
    let mut leaves = vec![first];
    for _ in 0..8 {
        let leaf = builder().build().await.unwrap();
        leaf.connect(address.clone(), Duration::from_secs(10))
            .await
            .unwrap();
        leaves.push(leaf);
    }

    // Down to the low watermark (3 of max 4), the caller among them.
    eventually(Duration::from_secs(10), || async {
        hub.connected_peers().await.unwrap().len() <= 3
    })
    .await;
    let mut kept = hub.connected_peers().await.unwrap();
    kept.sort();
    assert_eq!(kept.len(), 3, "trimmed to three quarters: {kept:?}");
    assert!(kept.contains(&caller), "the caller's connection was closed");
    let answer = call
        .await
        .unwrap()
        .expect("the call in progress is answered");
    assert_eq!(&answer.result[..], b"SLEEP:6000");

    // Nothing below the limit is closed, however idle: a trimming pass
    // found all three unused for the grace, and closed none of them.
    let idle = || scrape_sum(port, "subnet_connections_idle", &["node=\"hub\""]);
    let trimmed = || scrape_sum(port, "subnet_connections_trimmed_total", &["node=\"hub\""]);
    let closed = trimmed().await;
    eventually(Duration::from_secs(10), || async { idle().await == 3.0 }).await;
    let mut still = hub.connected_peers().await.unwrap();
    still.sort();
    assert_eq!(still, kept, "a peer below the limit was disconnected");
    assert_eq!(
        trimmed().await,
        closed,
        "a peer below the limit was trimmed"
    );

    for leaf in leaves {
        leaf.shutdown().await;
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn max_peers_below_min_peers_is_refused() {
    let refused = Node::builder().min_peers(8).max_peers(4).build().await;
    assert!(
        matches!(
            refused,
            Err(StartError::MaxPeersBelowMinPeers { max: 4, min: 8 })
        ),
        "{refused:?}"
    );
}
