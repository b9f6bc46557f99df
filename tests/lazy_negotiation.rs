//! With lazy protocol negotiation the request travels with the protocol
//! proposal: every outcome must still reach the caller with its own type.

mod common;

use std::time::Duration;

use common::{Probe, task};
use subnet::{CallError, Node, ProtocolConfig, task::TaskProtocol};

async fn lazy_node(builder: subnet::NodeBuilder) -> Node {
    builder
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .lazy_negotiation(true)
        .build()
        .await
        .expect("node starts")
}

fn client(node: &Node) -> subnet::Client<TaskProtocol> {
    node.client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(10)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_answered_failed_and_refused_as_without_it() {
    let config = ProtocolConfig::default()
        .with_max_concurrent(1)
        .with_max_pending(0);
    let (probe, _failures) = Probe::new(config);
    let server = lazy_node(Node::builder()).await;
    {
        let config = probe.config();
        server.register_with(probe, config)
    }
    .await
    .unwrap();
    let address = server.addresses()[0].to_string();
    let caller = lazy_node(Node::builder()).await;
    let client = client(&caller);

    let response = client.call(&address, task("hello")).await.unwrap();
    assert_eq!(&response.result[..], b"HELLO");

    let error = client.call(&address, task("error")).await.unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");

    // One handler slot, no waiting room: of calls sent together while the
    // first sleeps, the others are refused.
    let calls = (0..8).map(|_| client.call(&address, task("sleep:300")));
    let (mut answered, mut refused) = (0, 0);
    for result in futures::future::join_all(calls).await {
        match result {
            Ok(response) => {
                assert_eq!(&response.result[..], b"SLEEP:300");
                answered += 1;
            }
            Err(CallError::Refused { .. }) => refused += 1,
            Err(other) => panic!("neither answered nor refused: {other}"),
        }
    }
    assert!(
        answered >= 1 && refused >= 1,
        "{answered} answered, {refused} refused"
    );
}

#[tokio::test]
async fn a_peer_without_the_protocol_says_so() {
    let server = lazy_node(Node::builder()).await;
    let address = server.addresses()[0].clone();
    let caller = lazy_node(Node::builder()).await;
    let error = client(&caller).call(address, task("x")).await.unwrap_err();
    assert!(matches!(error, CallError::Unsupported { .. }), "{error}");
}

#[tokio::test]
async fn a_denied_connection_fails_to_open() {
    let server = lazy_node(Node::builder().max_inbound_connections(0)).await;
    server.register(TaskProtocol).await.unwrap();
    let address = server.addresses()[0].clone();
    let caller = lazy_node(Node::builder()).await;
    let error = client(&caller).call(address, task("x")).await.unwrap_err();
    // The request left with the proposal, but the remote never confirmed
    // the protocol: the stream did not open (or the dial failed outright).
    assert!(
        matches!(
            error,
            CallError::DialFailed { .. } | CallError::Open { .. } | CallError::Refused { .. }
        ),
        "{error}"
    );
}
