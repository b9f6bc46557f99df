//! However an actor of a node ends, the node says so and goes on as its
//! supervision policy says: routes removed with their protocol, a core
//! failure seen as `ActorFailed` by an embedding supervisor, the heartbeat
//! actor restarted within a budget, running handlers drained on shutdown.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{eventually, task};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use subnet::{
    CallError, HandlerError, Node, Protocol, ProtocolConfig, RequestContext, ServeError, heartbeat,
    task::{TaskRequest, TaskResponse},
};
use tokio::sync::{Notify, mpsc};

const WAIT: Duration = Duration::from_secs(20);

fn client(node: &Node) -> subnet::Client<Fragile> {
    node.client::<Fragile>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(10)))
}

/// Answers with the payload upper-cased, fails on `error`, sleeps on
/// `sleep:<ms>` (telling `started` first); its `on_failure` hook panics.
#[derive(Clone, Default)]
struct Fragile {
    started: Arc<Notify>,
}

impl Protocol for Fragile {
    const ID: &'static str = "/subnet/task_protocol/1.0.0";
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn handle(
        &self,
        ctx: RequestContext,
        request: TaskRequest,
    ) -> Result<TaskResponse, HandlerError> {
        let payload = String::from_utf8_lossy(&request.payload).into_owned();
        if payload == "error" {
            return Err(HandlerError::new("deliberate handler error"));
        }
        if let Some(ms) = payload.strip_prefix("sleep:") {
            self.started.notify_one();
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        }
        assert!(ctx.id.get() > 0, "every request has an id");
        Ok(TaskResponse {
            accepted: true,
            result: payload.to_ascii_uppercase().into_bytes().into(),
            error: String::new(),
        })
    }

    fn on_failure(&self, _error: &ServeError) {
        panic!("deliberate panic in on_failure");
    }
}

#[tokio::test]
async fn a_protocol_whose_failure_hook_panics_is_withdrawn_and_can_be_registered_again() {
    let server = common::node().await;
    server.register(Fragile::default()).await.unwrap();
    let address = server.addresses()[0].clone();
    let caller = common::node().await;
    let client = client(&caller);

    let error = client
        .call(address.clone(), task("error"))
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");

    // The hook's panic ended the protocol's actor, and its route with it:
    // the protocol is no longer offered (not refused by a dead actor).
    let unsupported = || {
        let (client, address) = (client.clone(), address.clone());
        async move {
            matches!(
                client.call(address, task("hello")).await,
                Err(CallError::Unsupported { .. })
            )
        }
    };
    eventually(WAIT, unsupported).await;

    server.register(Fragile::default()).await.unwrap();
    let response = client.call(address, task("hello")).await.unwrap();
    assert_eq!(&response.result[..], b"HELLO");
}

/// An application actor that reports its children's supervision events.
struct App(mpsc::Sender<String>);

impl Actor for App {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let text = match event {
            SupervisionEvent::ActorFailed(_, error) => format!("failed: {error}"),
            SupervisionEvent::ActorTerminated(_, _, reason) => format!("terminated: {reason:?}"),
            _ => return Ok(()),
        };
        let _ = self.0.try_send(text);
        Ok(())
    }
}

async fn supervised(builder: subnet::NodeBuilder) -> (Node, mpsc::Receiver<String>) {
    // `try_send`: the application never waits on the test.
    let (events, received) = mpsc::channel(64);
    let (app, _) = Actor::spawn(None, App(events), ()).await.unwrap();
    let node = builder.spawn_linked(app.get_cell()).await.unwrap();
    (node, received)
}

async fn next_event(events: &mut mpsc::Receiver<String>) -> String {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("the application hears of the node in time")
        .expect("the application runs")
}

#[tokio::test]
async fn an_embedding_supervisor_sees_the_node_fail_when_its_swarm_actor_dies() {
    let (node, mut events) = supervised(Node::builder()).await;
    node.actors().unwrap().swarm.kill();
    let event = next_event(&mut events).await;
    assert!(event.starts_with("failed: the swarm actor"), "{event}");
    assert!(node.actors().is_none(), "the node says it stopped");
    let error = client(&node)
        .call(common::node().await.addresses()[0].clone(), task("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CallError::NodeStopped | CallError::Timeout { .. } | CallError::DialFailed { .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_heartbeat_actor_restarts_within_its_budget_then_the_node_fails() {
    let builder = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .heartbeat(heartbeat::Config::new(1, 1).with_epoch(Duration::from_secs(1), 5));
    let (node, mut events) = supervised(builder).await;
    for _ in 0..subnet::actors::supervisor::MAX_RESTARTS {
        let before = node.actors().unwrap().heartbeat.unwrap();
        before.kill();
        // A new actor, and the node's handles use it.
        eventually(WAIT, || {
            let node = node.clone();
            let before = before.get_id();
            async move {
                node.actors()
                    .and_then(|a| a.heartbeat)
                    .is_some_and(|h| h.get_id() != before)
                    && node.heartbeat_stats().await.is_some()
            }
        })
        .await;
        // Publishing goes on: the new actor's stats count its heartbeats.
        eventually(WAIT, || {
            let node = node.clone();
            async move {
                node.heartbeat_stats()
                    .await
                    .is_some_and(|s| s.published > 0)
            }
        })
        .await;
    }
    assert!(events.try_recv().is_err(), "the node has not failed yet");
    node.actors().unwrap().heartbeat.unwrap().kill();
    let event = next_event(&mut events).await;
    assert!(
        event.starts_with("failed: the heartbeat actor") && event.contains("restarts"),
        "{event}"
    );
}

#[tokio::test]
async fn shutdown_lets_a_running_handler_finish() {
    let protocol = Fragile::default();
    let started = protocol.started.clone();
    let server = common::node().await;
    server.register(protocol).await.unwrap();
    let address = server.addresses()[0].clone();
    let caller = common::node().await;
    let call = tokio::spawn({
        let client = client(&caller);
        async move { client.call(address, task("sleep:500")).await }
    });
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();
    let stopping = std::time::Instant::now();
    server.shutdown().await;
    // It waited for the handler (500 ms), not for its whole grace (10 s).
    assert!(
        stopping.elapsed() < subnet::NodeBuilder::DEFAULT_SHUTDOWN_GRACE / 2,
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let response = call.await.unwrap().expect("the running call is answered");
    assert_eq!(&response.result[..], b"SLEEP:500");
}

#[tokio::test]
async fn shutdown_cuts_off_a_handler_running_past_the_grace_period() {
    let protocol = Fragile::default();
    let started = protocol.started.clone();
    let server = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .shutdown_grace(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    server.register(protocol).await.unwrap();
    let address = server.addresses()[0].clone();
    let caller = common::node().await;
    let call = tokio::spawn({
        let client = client(&caller);
        async move { client.call(address, task("sleep:60000")).await }
    });
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown does not wait for the handler");
    let error = call.await.unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Refused { .. } | CallError::ConnectionLost { .. }
        ),
        "{error}"
    );
}

/// A registry that answers with `first`, then hangs once (or, with
/// `panics`, panics before returning its future), then answers with
/// `later` for good.
struct Hanging {
    panics: bool,
    reads: AtomicUsize,
    first: Vec<subnet::registry::Member>,
    later: Vec<subnet::registry::Member>,
}

impl subnet::registry::Registry for Hanging {
    fn members(
        &self,
    ) -> futures::future::BoxFuture<
        '_,
        Result<Vec<subnet::registry::Member>, subnet::registry::RegistryError>,
    > {
        let read = self.reads.fetch_add(1, Ordering::Relaxed);
        if read == 1 && self.panics {
            panic!("deliberate panic in a registry backend");
        }
        Box::pin(async move {
            match read {
                0 => Ok(self.first.clone()),
                1 => futures::future::pending().await,
                _ => Ok(self.later.clone()),
            }
        })
    }
}

#[tokio::test]
async fn a_hung_registry_read_times_out_and_the_next_read_is_taken() {
    registry_recovers(false).await;
}

#[tokio::test]
async fn a_panicking_registry_read_fails_and_the_next_read_is_taken() {
    registry_recovers(true).await;
}

async fn registry_recovers(panics: bool) {
    let member = |n: u64| subnet::registry::Member {
        peer_id: subnet::PeerId::random(),
        subnet_node_id: n,
        addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 1000 + n).parse().unwrap()],
    };
    let (a, b) = (member(1), member(2));
    let registry = Hanging {
        panics,
        reads: AtomicUsize::new(0),
        first: vec![a.clone()],
        later: vec![a.clone(), b.clone()],
    };
    let node = Node::builder()
        .registry(registry)
        .address_book(
            subnet::address_book::Config::default()
                .with_registry_refresh(Duration::from_millis(100))
                .with_registry_timeout(Duration::from_millis(300)),
        )
        .build()
        .await
        .unwrap();
    eventually(WAIT, || {
        let node = node.clone();
        async move { node.address_book().contains(&a.peer_id) }
    })
    .await;
    // The second read hangs; the third, after its timeout, brings B.
    eventually(WAIT, || {
        let node = node.clone();
        async move { node.address_book().contains(&b.peer_id) }
    })
    .await;
}
