//! Far more concurrent requests than a protocol admits: every call ends as a
//! response or an explicit refusal, and the counts add up.

mod common;

use std::time::Duration;

use common::{Probe, task};
use futures::future::join_all;
use subnet::{CallError, Node, ProtocolConfig, task::TaskProtocol};

const SENT: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_answered_or_refused() {
    // 4 handlers run at once, 4 more requests may wait: 8 admitted.
    let config = ProtocolConfig::default()
        .with_max_concurrent(4)
        .with_max_pending(4);
    let (probe, _failures) = Probe::new(config);
    let (_server, address) = common::probe_server(probe).await;
    let mut callers: Vec<Node> = Vec::new();
    for _ in 0..6 {
        callers.push(common::node().await);
    }
    let calls = (0..SENT).map(|i| {
        let client = callers[i % callers.len()]
            .client::<TaskProtocol>()
            .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(60)));
        let address = address.clone();
        async move { client.call(&address, task("sleep:50")).await }
    });
    let (mut answered, mut refused) = (0, 0);
    for result in join_all(calls).await {
        match result {
            Ok(response) => {
                assert_eq!(&response.result[..], b"SLEEP:50");
                answered += 1;
            }
            Err(CallError::Refused { .. }) => refused += 1,
            Err(other) => panic!("neither answered nor refused: {other}"),
        }
    }
    println!("{SENT} sent: {answered} answered, {refused} refused");
    assert_eq!(answered + refused, SENT);
    assert!(answered >= 8, "at least the admitted requests are answered");
    assert!(refused > 0, "over capacity, requests are refused");
}
