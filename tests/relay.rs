//! A call through a relay, in one process over loopback: the handler is
//! told that the request came relayed.

mod common;

use std::time::Duration;

use common::eventually;
use subnet::{
    HandlerError, Multiaddr, Node, NodeBuilder, Protocol, ProtocolConfig, RequestContext,
    task::{TaskRequest, TaskResponse},
};

/// Answers "relayed" or "direct", as its context says.
struct Path;

impl Protocol for Path {
    const ID: &'static str = "/subnet/task_protocol/1.0.0";
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn handle(
        &self,
        ctx: RequestContext,
        _request: TaskRequest,
    ) -> Result<TaskResponse, HandlerError> {
        let path = if ctx.relayed { "relayed" } else { "direct" };
        Ok(TaskResponse {
            accepted: true,
            result: path.as_bytes().to_vec().into(),
            error: String::new(),
        })
    }
}

/// A relay (built by `relay` on a loopback port) and a server (built by
/// `server`) serving [`Path`] only through it; returns both and the
/// server's circuit address, once the reservation holds.
async fn served_through_relay(relay: NodeBuilder, server: NodeBuilder) -> (Node, Node, Multiaddr) {
    let relay = relay
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap();
    let relay_address = relay.addresses()[0].clone();
    let server = server.relay(relay_address.clone()).build().await.unwrap();
    server.register(Path).await.unwrap();
    // The reservation holds once the circuit address is among the server's.
    eventually(Duration::from_secs(20), || {
        let server = server.clone();
        async move {
            server
                .addresses()
                .iter()
                .any(|a| a.to_string().contains("/p2p-circuit"))
        }
    })
    .await;
    let circuit = format!("{relay_address}/p2p-circuit/p2p/{}", server.peer_id())
        .parse()
        .unwrap();
    (relay, server, circuit)
}

#[tokio::test]
async fn a_call_through_a_relay_is_relayed_in_the_handlers_context() {
    // The server listens only through the relay: hole punching has no
    // direct address to reach it at, so the call stays relayed.
    let (_relay, _server, circuit) =
        served_through_relay(Node::builder().relay_server(true), Node::builder()).await;
    let caller = Node::builder().build().await.unwrap();
    let client = caller
        .client::<Path>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(10)));
    let response = client.call(circuit, TaskRequest::default()).await.unwrap();
    assert_eq!(&response.result[..], b"relayed");

    // A server called at its own address says so.
    let (_direct, address) = common::server(Path).await;
    let response = client.call(&address, TaskRequest::default()).await.unwrap();
    assert_eq!(&response.result[..], b"direct");
}

#[tokio::test]
async fn a_call_cut_by_the_relays_data_limit_fails_naming_the_circuit() {
    // A relay that lets 64 KiB through per circuit.
    let limits = libp2p::relay::Config {
        max_circuit_bytes: 64 * 1024,
        ..subnet::swarm::relay_server_config()
    };
    let (_relay, _server, circuit) = served_through_relay(
        Node::builder().relay_server_with(limits),
        Node::builder().hole_punching(false),
    )
    .await;
    let caller = Node::builder().hole_punching(false).build().await.unwrap();
    let client = caller
        .client::<Path>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(10)));
    // A small call fits.
    let called = client
        .call_detailed(circuit.clone(), TaskRequest::default())
        .await
        .unwrap();
    assert!(called.relayed);
    // 256 KiB does not: the relay ends the circuit mid-call.
    let big = TaskRequest {
        task_id: "big".into(),
        payload: vec![7; 256 * 1024].into(),
    };
    let error = client.call(circuit, big).await.unwrap_err();
    assert!(
        matches!(error, subnet::CallError::CircuitClosed { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("relay closed the circuit"),
        "{error}"
    );
}
