//! Invalid destinations fail quickly, each with its own typed error.

mod common;

use std::time::Duration;

use common::task;
use subnet::{CallError, DestinationError, PeerId, ProtocolConfig, task::TaskProtocol};

fn client(node: &subnet::Node) -> subnet::Client<TaskProtocol> {
    node.client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(10)))
}

#[tokio::test]
async fn an_address_without_a_peer_id_is_invalid() {
    let node = common::node().await;
    let error = client(&node)
        .call("/ip4/127.0.0.1/tcp/4001", task("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::InvalidDestination(DestinationError::MissingPeerId { .. })
        ),
        "{error}"
    );
    let error = client(&node)
        .call("no such thing", task("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::InvalidDestination(DestinationError::Malformed { .. })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_peer_id_has_no_address() {
    let node = common::node().await;
    let peer = PeerId::random();
    let error = client(&node).call(peer, task("x")).await.unwrap_err();
    assert!(
        matches!(error, CallError::NoAddress { peer: p } if p == peer),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_address_fails_to_dial_quickly() {
    // A loopback port that nobody listens on.
    let port = common::free_port();
    let node = common::node().await;
    let address = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", PeerId::random());
    let started = std::time::Instant::now();
    let error = client(&node).call(&address, task("x")).await.unwrap_err();
    assert!(matches!(error, CallError::DialFailed { .. }), "{error}");
    assert!(
        error.to_string().contains(&port.to_string()),
        "names the address: {error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_peer_without_the_protocol_says_so() {
    let server = common::node().await;
    let address = server.addresses()[0].clone();
    let node = common::node().await;
    let error = client(&node).call(address, task("x")).await.unwrap_err();
    assert!(matches!(error, CallError::Unsupported { .. }), "{error}");
}

#[tokio::test]
async fn a_call_works_over_quic() {
    let server = subnet::Node::builder()
        .listen("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .build()
        .await
        .unwrap();
    server.register(TaskProtocol).await.unwrap();
    let address = server.addresses()[0].clone();
    assert!(address.to_string().contains("quic-v1"));
    let node = common::node().await;
    let response = client(&node).call(address, task("quic")).await.unwrap();
    assert_eq!(&response.result[..], b"QUIC");
}

#[tokio::test]
async fn registering_a_protocol_twice_is_refused() {
    let node = common::node().await;
    node.register(TaskProtocol).await.unwrap();
    let error = node.register(TaskProtocol).await.unwrap_err();
    assert!(
        matches!(error, subnet::RegisterError::AlreadyRegistered(_)),
        "{error}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_denied() {
    let server = subnet::Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .max_inbound_connections(2)
        .build()
        .await
        .unwrap();
    server.register(TaskProtocol).await.unwrap();
    let address = server.addresses()[0].clone();
    let mut callers = Vec::new();
    for _ in 0..2 {
        let caller = common::node().await;
        client(&caller)
            .call(address.clone(), task("in"))
            .await
            .unwrap();
        callers.push(caller);
    }
    let third = common::node().await;
    let error = client(&third)
        .call(address.clone(), task("out"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::DialFailed { .. } | CallError::Open { .. }),
        "{error}"
    );
    // The first two still get through.
    client(&callers[0])
        .call(address, task("again"))
        .await
        .unwrap();
}
