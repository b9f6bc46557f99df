//! Two nodes on loopback: one serves [`Greeter`], the other calls it with
//! the crate's own messages, and a request its handler refuses comes back
//! to the caller as a refusal.

use own_messages::{GreetRequest, Greeter};
use subnet::{CallError, Node};

/// A node listening on a loopback TCP port chosen by the OS.
async fn node() -> Node {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .expect("node starts")
}

fn request(name: &str, times: &str) -> GreetRequest {
    GreetRequest {
        name: name.into(),
        times: times.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_on_its_own_messages_answers_and_fails_requests() {
    let server = node().await;
    server.register(Greeter).await.expect("protocol registers");
    let address = server.addresses()[0].to_string();
    let caller = node().await;
    let greeter = caller.client::<Greeter>();

    let response = greeter
        .call(&address, request("subnet", "2"))
        .await
        .expect("the call is answered");
    assert_eq!(response.greeting, "hello, subnet; hello, subnet");

    // The handler's errors, its own and one passed on with `?`: the wire
    // has no error frame, so the caller hears of a refusal.
    for refused in [request("", "1"), request("subnet", "twice")] {
        let error = greeter
            .call(&address, refused.clone())
            .await
            .expect_err("the handler fails the request");
        assert!(
            matches!(error, CallError::Refused { .. }),
            "{refused:?}: {error}"
        );
    }

    // The protocol keeps serving after its handler failed.
    let response = greeter
        .call(&address, request("again", "1"))
        .await
        .expect("the call is answered");
    assert_eq!(response.greeting, "hello, again");

    caller.shutdown().await;
    server.shutdown().await;
}
