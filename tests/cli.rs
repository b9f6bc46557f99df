//! The `subnet` binary driven as a user would.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

mod common;

use common::{KillOnDrop, free_port, spawn_listening};

const BIN: &str = env!("CARGO_BIN_EXE_subnet");

fn subnet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A `subnet node` process, killed if the test fails.
struct NodeProcess {
    child: KillOnDrop,
    address: String,
}

impl NodeProcess {
    fn start(args: &[&str]) -> Self {
        let (child, address) = spawn_listening(
            Command::new(BIN)
                .arg("node")
                .args(args)
                .stderr(Stdio::null()),
        );
        Self {
            child: KillOnDrop(child),
            address,
        }
    }

    /// Sends SIGTERM and returns the exit status and the rest of stdout.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let mut rest = String::new();
        for line in BufReader::new(self.child.0.stdout.take().unwrap()).lines() {
            rest.push_str(&line.unwrap());
            rest.push('\n');
        }
        (self.child.0.wait().unwrap(), rest)
    }
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let output = subnet(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap().len(), 36);
    (path, stdout(&output))
}

#[test]
fn keygen_two_nodes_call_peers_and_sigterm() {
    let dir = common::temp_dir("cli-flow");
    let (key_a, id_a) = keygen(&dir, "a.key");
    let (key_b, id_b) = keygen(&dir, "b.key");
    let a = NodeProcess::start(&[
        "--key",
        key_a.to_str().unwrap(),
        "--heartbeat-interval",
        "0.2",
    ]);
    assert!(
        a.address.ends_with(&format!("/p2p/{id_a}")),
        "{}",
        a.address
    );
    let b = NodeProcess::start(&[
        "--key",
        key_b.to_str().unwrap(),
        "--bootstrap",
        &a.address,
        "--heartbeat-interval",
        "0.2",
    ]);
    assert!(b.address.ends_with(&format!("/p2p/{id_b}")));

    let call = subnet(&["call", &a.address, "hello"]);
    assert!(
        call.status.success(),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert_eq!(stdout(&call), "HELLO");

    // A knows B: it connected and heartbeats flow. Poll until it shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let peers = subnet(&["peers", &a.address]);
        assert!(
            peers.status.success(),
            "{}",
            String::from_utf8_lossy(&peers.stderr)
        );
        if stdout(&peers).contains(&id_b) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "A never listed B: {}",
            stdout(&peers)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A reader that stops reading (`subnet peers | head -1`) is no error:
    // here it never reads at all.
    let mut closed = Command::new(BIN)
        .args(["peers", &a.address])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let closed = closed.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(closed.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    for node in [b, a] {
        let (status, rest) = node.terminate();
        assert!(status.success(), "{status:?}");
        assert!(rest.contains("stopped"), "{rest}");
    }
}

/// The RFC 8032 test key 1: its seed and public key.
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_key_file_maps_to_its_known_peer_id() {
    // The peer id, computed from the spec's encoding alone: the identity
    // multihash (0x00, length 0x24) of the PublicKey protobuf
    // (08 01 12 20 <public key>), in base58btc.
    let mut multihash = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    multihash.extend(hex(PUBLIC));
    let expected = bs58::encode(multihash).into_string();

    let mut file = vec![0x08, 0x01, 0x12, 0x20];
    file.extend(hex(SEED));
    let dir = common::temp_dir("cli-vector");
    let path = dir.join("python.key");
    std::fs::write(&path, &file).unwrap();
    let keypair = subnet::keys::read(&path).unwrap();
    assert_eq!(keypair.public().to_peer_id().to_string(), expected);

    // A node started with it announces that peer id.
    let node = NodeProcess::start(&["--key", path.to_str().unwrap()]);
    assert!(node.address.ends_with(&expected), "{}", node.address);
}

fn fails_with_one_line(args: &[&str], expected: &str) {
    let output = subnet(args);
    assert!(!output.status.success(), "{args:?} succeeded");
    // A node that got as far as starting has logged its story on stderr;
    // the problem itself is one line, the last.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line for {args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().last(), Some(errors[0]), "{stderr}");
    assert!(errors[0].contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn user_errors_get_one_line_and_a_failure_code() {
    let dir = common::temp_dir("cli-errors");
    let short = dir.join("short.key");
    std::fs::write(&short, [0x08, 0x01, 0x12, 0x20, 1, 2, 3]).unwrap();
    fails_with_one_line(&["node", "--key", short.to_str().unwrap()], "is 7 bytes");
    let secp = dir.join("secp.key");
    let mut bytes = vec![0x08, 0x02, 0x12, 0x20];
    bytes.extend([1u8; 32]);
    std::fs::write(&secp, bytes).unwrap();
    fails_with_one_line(&["node", "--key", secp.to_str().unwrap()], "not an Ed25519");
    fails_with_one_line(
        &["node", "--key", "/nonexistent/x.key"],
        "cannot access key file",
    );

    let config = dir.join("node.toml");
    std::fs::write(&config, "subnet_id = 1\ncolour = \"blue\"\n").unwrap();
    fails_with_one_line(
        &["node", "--config", config.to_str().unwrap()],
        "unknown field `colour`",
    );

    fails_with_one_line(
        &["node", "--listen", "/ip4/127.0.0.1/tcp/nope"],
        "not a multiaddr",
    );
    fails_with_one_line(&["call", "/ip4/127.0.0.1/tcp/1", "hi"], "/p2p/");
    fails_with_one_line(
        &[
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--relay",
            "/ip4/10.201.0.9/tcp/1",
        ],
        "relay address /ip4/10.201.0.9/tcp/1 has no /p2p/<peer id> part",
    );
    let someone = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    fails_with_one_line(&["call", someone, "hi"], "needs --bootstrap");
    fails_with_one_line(
        &["call", someone, "hi", "--bootstrap", "/ip4/127.0.0.1/tcp/x"],
        "is not a multiaddr",
    );

    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // held: the port is in use
    let port = taken.local_addr().unwrap().port();
    fails_with_one_line(
        &["node", "--listen", &format!("/ip4/127.0.0.1/tcp/{port}")],
        "cannot listen",
    );

    // A port another node listens on: libp2p listens with SO_REUSEPORT, so
    // a second node would share the port with the first (the kernel then
    // splits the first one's callers between the two) if it were not caught.
    let first = NodeProcess::start(&["--listen", "/ip4/127.0.0.1/tcp/0"]);
    let held = first.address.split("/p2p/").next().unwrap().to_owned();
    let mut second = KillOnDrop(
        Command::new(BIN)
            .args(["node", "--listen", &held])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while second.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "a second node started on {held}, which the first holds"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(second);
    fails_with_one_line(&["node", "--listen", &held], "is in use");
    drop(first);

    // An unreachable bootstrap peer.
    let closed = free_port();
    let unreachable = format!(
        "/ip4/127.0.0.1/tcp/{closed}/p2p/12D3KooWGjRqcG9qKTRVbBsFPBVGwDmQ9yyhjRkTuxBqiLbk8oKY"
    );
    fails_with_one_line(
        &["node", "--bootstrap", &unreachable],
        "cannot reach bootstrap peer",
    );

    fails_with_one_line(
        &["node", "--template-heartbeat", "--no-heartbeat"],
        "template_heartbeat needs heartbeats",
    );
    fails_with_one_line(
        &[
            "node",
            "--template-heartbeat",
            "--template-epoch-length",
            "0",
        ],
        "template_epoch_length must be at least 1 block",
    );
    fails_with_one_line(
        &["node", "--max-peers", "4"],
        "max_peers (4) is below min_peers (8)",
    );

    let key = dir.join("exists.key");
    std::fs::write(&key, [0u8; 36]).unwrap();
    fails_with_one_line(
        &["keygen", "--out", key.to_str().unwrap()],
        "already exists",
    );
}

#[test]
fn the_demo_succeeds() {
    let output = subnet(&["demo"]);
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("all 12 calls succeeded"), "{out}");
}

/// A task-protocol server in this process whose answer the payload
/// chooses: `refuse` (accepted = false, with a reason), `empty` (an empty
/// result), `hang` (tells `started`, then never answers).
#[derive(Clone, Default)]
struct Answers {
    started: std::sync::Arc<tokio::sync::Notify>,
}

impl subnet::Protocol for Answers {
    const ID: &'static str = "/subnet/task_protocol/1.0.0";
    type Request = subnet::task::TaskRequest;
    type Response = subnet::task::TaskResponse;

    async fn handle(
        &self,
        _ctx: subnet::RequestContext,
        request: subnet::task::TaskRequest,
    ) -> Result<subnet::task::TaskResponse, subnet::HandlerError> {
        let (accepted, result, error) = match &request.payload[..] {
            b"refuse" => (false, "", "no capacity for tasks"),
            b"empty" => (true, "", ""),
            _ => {
                self.started.notify_one();
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        Ok(subnet::task::TaskResponse {
            accepted,
            result: result.as_bytes().to_vec().into(),
            error: error.to_owned(),
        })
    }
}

async fn call_through_the_binary(address: &str, payload: &str) -> Output {
    tokio::process::Command::new(BIN)
        .args(["call", address, payload])
        .output()
        .await
        .expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_fails_with_the_remote_reason_when_the_task_is_not_accepted() {
    let (_server, address) = common::server(Answers::default()).await;
    let output = call_through_the_binary(&address, "refuse").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not accept the task: no capacity for tasks"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_says_so_when_the_result_is_empty() {
    let (_server, address) = common::server(Answers::default()).await;
    let output = call_through_the_binary(&address, "empty").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the response's result is empty"),
        "{stderr}"
    );
}

/// Not a test on its own: the server process of the next test, run by it
/// as `<this test binary> --ignored --exact hanging_server_process` with
/// `SUBNET_HANGING_SERVER=1`. It prints its address, then `started` when a
/// call reaches its handler, which never answers.
#[tokio::test]
#[ignore = "run by call_says_the_connection_was_lost_when_the_server_dies_mid_call"]
async fn hanging_server_process() {
    if std::env::var_os("SUBNET_HANGING_SERVER").is_none() {
        return;
    }
    let answers = Answers::default();
    let started = answers.started.clone();
    let (_server, address) = common::server(answers).await;
    println!("listening on {address}");
    started.notified().await;
    println!("started");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_says_the_connection_was_lost_when_the_server_dies_mid_call() {
    use tokio::io::AsyncBufReadExt;
    let mut server = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "hanging_server_process",
            "--nocapture",
        ])
        .env("SUBNET_HANGING_SERVER", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the server process speaks in time")
            .unwrap()
            .expect("the server process runs")
    };
    let address = loop {
        if let Some(address) = next_line().await.strip_prefix("listening on ") {
            break address.to_owned();
        }
    };
    let call = tokio::spawn(async move { call_through_the_binary(&address, "hang").await });
    while next_line().await != "started" {}
    // The server process dies with the call waiting for its response.
    server.kill().await.unwrap();
    let output = call.await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was lost while waiting for the response"),
        "{stderr}"
    );
}

#[test]
fn call_resolves_a_dns_name() {
    let node = NodeProcess::start(&["--listen", "/ip4/127.0.0.1/tcp/0"]);
    let by_name = node.address.replace("/ip4/127.0.0.1/", "/dns4/localhost/");
    assert!(by_name.starts_with("/dns4/localhost/tcp/"), "{by_name}");
    let call = subnet(&["call", &by_name, "by name"]);
    assert!(
        call.status.success(),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert_eq!(stdout(&call), "BY NAME");
}

#[test]
fn a_node_logs_json_lines_when_asked_by_flag_or_config() {
    let dir = common::temp_dir("cli-json-logs");
    let config = dir.join("node.toml");
    std::fs::write(&config, "log_format = \"json\"\n").unwrap();
    for args in [
        vec!["--log-format", "json"],
        vec!["--config", config.to_str().unwrap()],
    ] {
        let mut child = KillOnDrop(
            Command::new(BIN)
                .arg("node")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(child.0.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{args:?}: {e}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
    }
    let bad = subnet(&["node", "--log-format", "xml"]);
    assert!(!bad.status.success());
}
