//! Helpers shared by the integration tests: nodes on loopback, port 0.

#![allow(dead_code, unreachable_pub)]

use std::{future::Future, time::Duration};

use subnet::{Node, Protocol};

/// A node listening on a loopback TCP port chosen by the OS.
pub async fn node() -> Node {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .expect("node starts")
}

/// A node serving `protocol`, and its dialable address.
pub async fn server<P: Protocol>(protocol: P) -> (Node, String) {
    let node = node().await;
    node.register(protocol).await.expect("protocol registers");
    let address = node.addresses()[0].to_string();
    (node, address)
}

/// Polls `check` until it holds, failing the test after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
