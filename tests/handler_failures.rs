//! Handlers that panic, fail or overrun their deadline end only their own
//! request: the caller gets a typed error and the node keeps serving.

mod common;

use std::time::Duration;

use common::{Probe, next_failure, task};
use futures::future::join_all;
use subnet::{CallError, Phase, ProtocolConfig, task::TaskProtocol};

/// Silences the panic messages of the deliberate panics (only those), so
/// that a thousand of them do not flood the test output.
fn quiet_deliberate_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("deliberate"));
        if !deliberate {
            default(info);
        }
    }));
}

fn config() -> ProtocolConfig {
    ProtocolConfig::default().with_handler_deadline(Duration::from_millis(200))
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_request() {
    quiet_deliberate_panics();
    let (probe, mut failures) = Probe::new(config());
    let (_server, address) = common::probe_server(probe).await;
    let caller = common::node().await.client::<TaskProtocol>();
    let error = caller.call(&address, task("panic")).await.unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");
    let failure = next_failure(&mut failures).await;
    assert!(failure.starts_with("Panicked"), "{failure}");
    assert!(failure.contains("deliberate panic"), "{failure}");
    let ok = caller.call(&address, task("next")).await.unwrap();
    assert_eq!(&ok.result[..], b"NEXT");
}

#[tokio::test]
async fn a_handler_error_fails_only_its_request() {
    let (probe, mut failures) = Probe::new(config());
    let (_server, address) = common::probe_server(probe).await;
    let caller = common::node().await.client::<TaskProtocol>();
    let error = caller.call(&address, task("error")).await.unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");
    let failure = next_failure(&mut failures).await;
    assert!(failure.starts_with("Handler("), "{failure}");
    assert!(failure.contains("deliberate handler error"), "{failure}");
    assert!(caller.call(&address, task("next")).await.is_ok());
}

#[tokio::test]
async fn a_handler_past_its_deadline_fails_only_its_request() {
    let (probe, mut failures) = Probe::new(config());
    let (_server, address) = common::probe_server(probe).await;
    let caller = common::node().await.client::<TaskProtocol>();
    let error = caller.call(&address, task("sleep:5000")).await.unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");
    assert_eq!(next_failure(&mut failures).await, "HandlerDeadline(200ms)");
    assert!(caller.call(&address, task("next")).await.is_ok());
}

#[tokio::test]
async fn a_caller_times_out_waiting_for_a_slow_handler() {
    let (probe, _failures) = Probe::new(ProtocolConfig::default());
    let (_server, address) = common::probe_server(probe).await;
    let caller = common::node()
        .await
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_millis(300)));
    let error = caller.call(&address, task("sleep:3000")).await.unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Timeout {
                phase: Phase::Read,
                ..
            }
        ),
        "{error}"
    );
    assert!(caller.call(&address, task("next")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_panics_in_a_row_leave_the_node_healthy() {
    quiet_deliberate_panics();
    let (probe, mut failures) = Probe::new(config());
    let (server, address) = common::probe_server(probe).await;
    let caller = common::node().await.client::<TaskProtocol>();
    for i in 0..1000 {
        let error = caller.call(&address, task("panic")).await.unwrap_err();
        assert!(
            matches!(error, CallError::Refused { .. }),
            "panic {i}: {error}"
        );
    }
    for _ in 0..1000 {
        assert!(next_failure(&mut failures).await.starts_with("Panicked"));
    }
    // Healthy: concurrent good requests are all served.
    let calls = (0..100).map(|i| {
        let caller = caller.clone();
        let address = address.clone();
        async move { caller.call(&address, task(&format!("ok {i}"))).await }
    });
    for (i, result) in join_all(calls).await.into_iter().enumerate() {
        assert_eq!(result.unwrap().result, format!("OK {i}").into_bytes());
    }
    // No request actor is left behind.
    let children = server.supervisor().get_children();
    common::eventually(Duration::from_secs(5), || async {
        children.iter().all(|child| child.get_children().is_empty())
    })
    .await;
}
