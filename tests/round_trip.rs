//! The task protocol between real nodes on loopback, under concurrency.

mod common;

use futures::future::join_all;
use subnet::{
    Node,
    task::{TaskProtocol, TaskRequest},
};

fn request(i: usize) -> TaskRequest {
    TaskRequest {
        task_id: i.to_string(),
        payload: format!("payload {i}").into_bytes().into(),
    }
}

#[tokio::test]
async fn a_call_returns_the_payload_upper_cased() {
    let (_server, address) = common::server(TaskProtocol).await;
    let caller = common::node().await;
    let task = caller.client::<TaskProtocol>();
    let response = task.call(&address, request(7)).await.unwrap();
    assert!(response.accepted);
    assert_eq!(&response.result[..], b"PAYLOAD 7");

    // The peer is now known: a bare peer id reaches it too.
    let by_peer = task.call(_server.peer_id(), request(8)).await.unwrap();
    assert_eq!(&by_peer.result[..], b"PAYLOAD 8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_from_one_peer_are_all_answered() {
    let (_server, address) = common::server(TaskProtocol).await;
    let caller = common::node().await;
    let task = caller.client::<TaskProtocol>();
    let calls = (0..1000).map(|i| {
        let task = task.clone();
        let address = address.clone();
        async move { (i, task.call(&address, request(i)).await) }
    });
    for (i, result) in join_all(calls).await {
        let response = result.unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert_eq!(response.result, format!("PAYLOAD {i}").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_from_ten_peers_are_all_answered() {
    let (_server, address) = common::server(TaskProtocol).await;
    let mut callers: Vec<Node> = Vec::new();
    for _ in 0..10 {
        callers.push(common::node().await);
    }
    let calls = (0..1000).map(|i| {
        let task = callers[i % 10].client::<TaskProtocol>();
        let address = address.clone();
        async move { (i, task.call(&address, request(i)).await) }
    });
    for (i, result) in join_all(calls).await {
        let response = result.unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert_eq!(response.result, format!("PAYLOAD {i}").into_bytes());
    }
}
