//! Interoperability with py-libp2p, in two releases: 0.6.0 (what the newest
//! Python subnet template pins) and 0.8.1 (the newest). A Python peer
//! written for this test (`tests/interop/peer.py`) calls our task protocol
//! and answers our calls, under Noise named `/noise` and
//! `/pos-transport/1.0.0`, with py-libp2p's host and stream API and its own
//! varint framing, and (0.8.1) with py-libp2p's request/response helper
//! (`libp2p.request_response`, from 0.7.0); it gossips on `/meshsub/2.0.0`
//! and publishes the template's JSON heartbeat.
//!
//! Each release's Python environment is made on first use in
//! `target/interop-venv-<version>` (`pip install libp2p==<version>`); a
//! release that cannot be installed fails its tests with one line.

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
    Node, ProtocolConfig,
    security::{NOISE, POS_TRANSPORT},
    task::{TaskProtocol, TaskRequest},
    template_heartbeat,
};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/peer.py");
const CALLS: usize = 100;
const IN_FLIGHT: usize = 16;

/// The py-libp2p release the newest Python subnet template pins.
const PINNED: &str = "0.6.0";
/// The newest py-libp2p release.
const NEWEST: &str = "0.8.1";

/// A Python with py-libp2p `version` (`PINNED` or `NEWEST`), made once per
/// test run.
fn python(version: &'static str) -> &'static PathBuf {
    static PINNED_PYTHON: OnceLock<PathBuf> = OnceLock::new();
    static NEWEST_PYTHON: OnceLock<PathBuf> = OnceLock::new();
    let cell = if version == PINNED {
        &PINNED_PYTHON
    } else {
        &NEWEST_PYTHON
    };
    cell.get_or_init(|| {
        let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target"))
            .join(format!("interop-venv-{version}"));
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
            assert!(made.success(), "python3 -m venv {} failed", venv.display());
            let installed = Command::new(&python)
                .args(["-m", "pip", "install", "-q"])
                .arg(format!("libp2p=={version}"))
                .status()
                .expect("pip runs");
            assert!(installed.success(), "pip install libp2p=={version} failed");
        }
        python
    })
}

/// Starts a Python task-protocol server (`mode`: `serve <security>` on
/// py-libp2p's streams, `helper-serve <security> <size>` on its
/// request/response helper); returns it and its address.
fn python_server(version: &'static str, mode: &[&str]) -> (KillOnDrop, String) {
    let (child, address) = spawn_listening(
        Command::new(python(version))
            .arg(PEER)
            .args(mode)
            .stderr(Stdio::null()),
    );
    (KillOnDrop(child), address)
}

/// Runs the Python peer to completion, off the async threads.
async fn run_python<const N: usize>(
    version: &'static str,
    args: [String; N],
) -> std::process::Output {
    let python = python(version).clone();
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

/// The Rust node calls a Python server `calls` times (`in_flight` at
/// once) with `size`-byte payloads; returns the calls answered correctly
/// and the rate.
async fn rust_calls_python(
    version: &'static str,
    mode: &[&str],
    (calls, in_flight): (usize, usize),
    size: usize,
) -> (usize, f64) {
    let (_python, address) = python_server(version, mode);
    let node = rust_node().await;
    let client = node
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_call_timeout(Duration::from_secs(60)));
    let started = Instant::now();
    let answered: Vec<bool> = stream::iter(0..calls)
        .map(|i| {
            let client = client.clone();
            let address = address.clone();
            async move {
                let mut payload = format!("rust {i} ").into_bytes();
                payload.resize(size.max(payload.len()), b'x');
                let expected = payload.to_ascii_uppercase();
                let request = TaskRequest {
                    task_id: i.to_string(),
                    payload: payload.into(),
                };
                let response = client.call(&address, request).await;
                response.is_ok_and(|r| r.accepted && r.result == expected)
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    node.shutdown().await;
    (answered.iter().filter(|ok| **ok).count(), rate)
}

/// A Python client (`mode`: `call` or `helper-call`) calls the Rust node
/// `calls` times (`in_flight` at once); returns its "ok <answered>
/// <calls/s>" line and its output.
async fn python_calls_rust(
    version: &'static str,
    mode: &str,
    security: &str,
    (calls, in_flight): (usize, usize),
    size: usize,
) -> (String, String) {
    let node = rust_node().await;
    node.register_with(
        TaskProtocol,
        ProtocolConfig::default().with_max_frame(BIG + 1024),
    )
    .await
    .unwrap();
    let address = node.addresses()[0].to_string();
    let mut args = vec![
        PEER.to_owned(),
        mode.into(),
        security.into(),
        address,
        calls.to_string(),
        in_flight.to_string(),
    ];
    if mode == "helper-call" {
        args.push(size.to_string());
    }
    let python = python(version).clone();
    let output = tokio::task::spawn_blocking(move || Command::new(python).args(args).output())
        .await
        .unwrap()
        .expect("the Python peer runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{all}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ok "))
        .unwrap_or_default()
        .to_owned();
    node.shutdown().await;
    (line, all)
}

/// Both directions of the task protocol under `security` (`noise` or
/// `pos`), on py-libp2p's streams.
async fn both_ways(version: &'static str, security: &str) {
    let (answered, rate) =
        rust_calls_python(version, &["serve", security], (CALLS, IN_FLIGHT), 0).await;
    println!("py-libp2p {version}: rust -> python ({security}): {rate:.0} calls/s");
    assert_eq!(answered, CALLS, "every call answered");
    let (line, all) = python_calls_rust(version, "call", security, (CALLS, IN_FLIGHT), 0).await;
    println!("py-libp2p {version}: python -> rust ({security}): {line}");
    assert!(line.starts_with(&format!("ok {CALLS} ")), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_release_calls_both_ways_under_noise() {
    both_ways(PINNED, "noise").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_release_calls_both_ways_under_pos_transport() {
    both_ways(PINNED, "pos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_release_calls_both_ways_under_noise() {
    both_ways(NEWEST, "noise").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_release_calls_both_ways_under_pos_transport() {
    both_ways(NEWEST, "pos").await;
}

/// The largest payload tested through py-libp2p's helper: 1 MB, one call
/// at a time. Larger ones fail from somewhere between 1 and 2.5 MB: the
/// helper (0.8.1) gives up reading after 101 reads, and each read returns
/// what yamux delivered since the last, less when the machine is busy or
/// several streams share the connection (README, "Joining a Python
/// subnet").
const BIG: usize = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_response_helper_calls_and_serves_both_ways() {
    for security in ["noise", "pos"] {
        let size = 64;
        let serve = ["helper-serve", security, "1024"];
        let (answered, rate) = rust_calls_python(NEWEST, &serve, (CALLS, IN_FLIGHT), size).await;
        println!("helper {NEWEST}: rust -> python ({security}, {size} B): {rate:.0} calls/s");
        assert_eq!(answered, CALLS, "every call answered");
        let (line, all) =
            python_calls_rust(NEWEST, "helper-call", security, (CALLS, IN_FLIGHT), size).await;
        println!("helper {NEWEST}: python -> rust ({security}, {size} B): {line}");
        assert!(line.starts_with(&format!("ok {CALLS} ")), "{all}");
    }
}

/// The Rust node and a Python peer on `/meshsub/2.0.0` see each other's
/// messages on the heartbeat topic.
async fn gossip_both_ways(version: &'static str) {
    common::logs();
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
    let output = run_python(version, args).await;
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
    println!(
        "py-libp2p {version}: gossip both ways; rust stats: {:?}",
        node.heartbeat_stats().await
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_release_and_rust_see_each_others_gossip_on_meshsub_2() {
    gossip_both_ways(PINNED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_release_and_rust_see_each_others_gossip_on_meshsub_2() {
    gossip_both_ways(NEWEST).await;
}

/// A Python peer publishing the template's heartbeat and `peer_state` is
/// listed with its node id, and receives the Rust node's template
/// heartbeat as the template writes it.
async fn template_heartbeats_both_ways(version: &'static str) {
    let node = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .gossipsub_protocol("/meshsub/2.0.0")
        .heartbeat(
            subnet::heartbeat::Config::new(1, 7)
                .with_epoch(Duration::from_secs(1), 1)
                .with_template(template_heartbeat::Config::default()),
        )
        .build()
        .await
        .unwrap();
    let address = node.addresses()[0].to_string();
    let args = [PEER.to_owned(), "template".into(), address, "5".into()];
    let output = run_python(version, args).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Python got ours, as the template writes it.
    let got = stdout
        .lines()
        .find_map(|l| l.strip_prefix("got template heartbeat "))
        .unwrap_or_else(|| panic!("no template heartbeat reached Python: {stdout}"));
    let got: serde_json::Value = serde_json::from_str(got).unwrap();
    assert_eq!(got["subnet_id"], 1);
    assert_eq!(got["subnet_node_id"], 7);
    assert_eq!(got["uid"].as_str().unwrap().len(), 32);
    // Ours has Python's: in the book with its node id, not penalised (its
    // peer_state messages are on a topic the node does not read).
    let python: subnet::PeerId = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peer "))
        .unwrap()
        .parse()
        .unwrap();
    common::eventually(Duration::from_secs(10), || async {
        node.address_book()
            .lookup(&python)
            .is_some_and(|r| r.subnet_node_id == Some(5))
    })
    .await;
    let stats = node.heartbeat_stats().await.unwrap();
    println!("py-libp2p {version}: template heartbeats both ways; rust stats: {stats:?}");
    assert!(stats.template_accepted >= 1);
    assert!(stats.template_published >= 1);
    assert!(node.reputation(&python) >= 0.0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_release_template_node_and_rust_see_each_others_template_heartbeats() {
    template_heartbeats_both_ways(PINNED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_release_template_node_and_rust_see_each_others_template_heartbeats() {
    template_heartbeats_both_ways(NEWEST).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_response_helper_takes_1_mb_both_ways() {
    let size = BIG.to_string();
    let serve = ["helper-serve", "noise", &size];
    let (answered, rate) = rust_calls_python(NEWEST, &serve, (4, 1), BIG).await;
    println!("helper {NEWEST}: rust -> python (noise, {BIG} B): {rate:.1} calls/s");
    assert_eq!(answered, 4, "every 1 MB call answered");
    let (line, all) = python_calls_rust(NEWEST, "helper-call", "noise", (4, 1), BIG).await;
    println!("helper {NEWEST}: python -> rust (noise, {BIG} B): {line}");
    assert!(line.starts_with("ok 4 "), "{all}");
}

/// The README's "Joining a Python subnet" example: on simulated hosts, a
/// template-like Python node is the bootnode, reached by name
/// (`/dns4/bootnode/...`, as the template's docker-compose does); a Rust
/// `subnet node` with the template's GossipSub name, `/pos-transport` and
/// the template heartbeat joins it and lists it with its node id.
#[test]
fn a_rust_node_joins_a_python_bootnode_by_dns_name() {
    use common::netns::{bridge, first_address};
    const BIN: &str = env!("CARGO_BIN_EXE_subnet");
    let Some(bed) = bridge(2) else { return };
    let dir = common::temp_dir("interop-dns");
    let (key, rust_id) = common::netns::keygen(BIN, &dir, "rust").unwrap();
    let python = python(NEWEST).to_str().unwrap().to_owned();
    let mut bootnode = bed.hosts[0].spawn(
        &python,
        &[PEER, "template-node", "/ip4/0.0.0.0/tcp/38960", "5"],
    );
    let listening = first_address(&mut bootnode.0);
    let python_id = listening.rsplit('/').next().unwrap().to_owned();
    let joiner = &bed.hosts[1];
    joiner.resolve("bootnode", &bed.hosts[0].ip);
    let bootstrap = format!("/dns4/bootnode/tcp/38960/p2p/{python_id}");
    let _node = joiner.spawn(
        BIN,
        &[
            "node",
            "--key",
            &key,
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
            "--subnet-id",
            "1",
            "--subnet-node-id",
            "7",
            "--gossipsub-protocol",
            "/meshsub/2.0.0",
            "--pos-transport",
            "--template-heartbeat",
            "--heartbeat-interval",
            "1",
            "--bootstrap",
            &bootstrap,
        ],
    );
    let local = format!("/ip4/127.0.0.1/tcp/4001/p2p/{rust_id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = joiner.run(BIN, &["peers", &local]);
        let book = String::from_utf8_lossy(&output.stdout).into_owned();
        // The Python node's row: its peer id, then its node id.
        let listed = book.lines().any(|line| {
            let mut columns = line.split_whitespace();
            columns.next() == Some(python_id.as_str()) && columns.next() == Some("5")
        });
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Python bootnode never listed with node id 5: {book}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(bootnode);
    drop(bed);
}
