//! Interoperability with py-libp2p 0.8.1 (the library the Python subnet
//! template builds on): a Python peer written for this test
//! (`tests/interop/peer.py`, py-libp2p's own host and stream API, its own
//! varint framing) calls our task protocol and answers our calls, under
//! Noise named `/noise` and `/pos-transport/1.0.0`.
//!
//! The Python environment is made on first use in `target/interop-venv`
//! (`pip install libp2p==0.8.1`), or taken from `SUBNET_INTEROP_PYTHON`.

mod common;

use common::{KillOnDrop, spawn_listening};
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use subnet::{
    Config, Node,
    security::{NOISE, POS_TRANSPORT},
    task::{TaskProtocol, TaskRequest},
};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/peer.py");
const CALLS: usize = 100;
const IN_FLIGHT: usize = 16;

/// A Python with py-libp2p 0.8.1, made once per test run.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(python) = std::env::var("SUBNET_INTEROP_PYTHON") {
            return PathBuf::from(python);
        }
        let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/interop-venv"));
        let python = venv.join("bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import libp2p"])
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            let made = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 runs");
            assert!(made.success(), "python3 -m venv failed");
            let installed = Command::new(&python)
                .args(["-m", "pip", "install", "-q", "libp2p==0.8.1"])
                .status()
                .expect("pip runs");
            assert!(installed.success(), "pip install libp2p==0.8.1 failed");
        }
        python
    })
}

/// Starts the Python task-protocol server; returns it and its address.
fn python_server(security: &str) -> (KillOnDrop, String) {
    let (child, address) = spawn_listening(
        Command::new(python())
            .args([PEER, "serve", security])
            .stderr(Stdio::null()),
    );
    (KillOnDrop(child), address)
}

/// Runs the Python peer to completion, off the async threads.
async fn run_python<const N: usize>(args: [String; N]) -> std::process::Output {
    let python = python().clone();
    tokio::task::spawn_blocking(move || Command::new(python).args(args).output())
        .await
        .unwrap()
        .expect("the Python peer runs")
}

async fn rust_node() -> Node {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .noise_protocol_names(vec![NOISE, POS_TRANSPORT])
        .build()
        .await
        .unwrap()
}

async fn rust_calls_python(security: &str) {
    let (_python, address) = python_server(security);
    let node = rust_node().await;
    let client = node
        .client::<TaskProtocol>()
        .with_config(Config::default().with_call_timeout(Duration::from_secs(30)));
    let started = Instant::now();
    let answered: Vec<bool> = stream::iter(0..CALLS)
        .map(|i| {
            let client = client.clone();
            let address = address.clone();
            async move {
                let payload = format!("rust {i}");
                let request = TaskRequest {
                    task_id: i.to_string(),
                    payload: payload.clone().into_bytes().into(),
                };
                let response = client.call(&address, request).await;
                response.is_ok_and(|r| r.accepted && r.result == payload.to_uppercase().as_bytes())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let rate = CALLS as f64 / started.elapsed().as_secs_f64();
    println!("rust -> python ({security}): {rate:.0} calls/s");
    assert_eq!(
        answered.iter().filter(|ok| **ok).count(),
        CALLS,
        "every call answered"
    );
    node.shutdown().await;
}

async fn python_calls_rust(security: &str) {
    let node = rust_node().await;
    node.register(TaskProtocol).await.unwrap();
    let address = node.addresses()[0].to_string();
    let args = [
        PEER.to_owned(),
        "call".into(),
        security.into(),
        address,
        CALLS.to_string(),
        IN_FLIGHT.to_string(),
    ];
    let output = run_python(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ok "))
        .unwrap_or_default();
    println!("python -> rust ({security}): {line}");
    assert!(line.starts_with(&format!("ok {CALLS} ")), "{stdout}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_call_each_other_under_noise() {
    rust_calls_python("noise").await;
    python_calls_rust("noise").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_call_each_other_under_pos_transport() {
    rust_calls_python("pos").await;
    python_calls_rust("pos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_see_each_others_gossip_on_meshsub_2() {
    let node = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .gossipsub_protocol("/meshsub/2.0.0")
        .heartbeat(subnet::heartbeat::Config::new(1, 1).with_epoch(Duration::from_secs(1), 4))
        .build()
        .await
        .unwrap();
    let address = node.addresses()[0].to_string();
    let args = [
        PEER.to_owned(),
        "gossip".into(),
        address,
        subnet::heartbeat::topic(1),
    ];
    let output = run_python(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("from rust"),
        "Python never got the Rust node's heartbeat: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Python's messages are not heartbeats: the node received and rejected them.
    common::eventually(Duration::from_secs(10), || async {
        let stats = node.heartbeat_stats().await.unwrap();
        stats.rejected.values().sum::<u64>() >= 1
    })
    .await;
    println!("rust stats: {:?}", node.heartbeat_stats().await);
    node.shutdown().await;
}
