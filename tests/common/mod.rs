//! Helpers shared by the integration tests: nodes on loopback, port 0.

#![allow(dead_code, unreachable_pub)]

pub mod netns;

use std::{future::Future, time::Duration};

use subnet::{Node, Protocol};

/// A node listening on a loopback TCP port chosen by the OS.
pub async fn node() -> Node {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .expect("node starts")
}

/// A node serving `protocol`, and its dialable address.
pub async fn server<P: Protocol>(protocol: P) -> (Node, String) {
    let node = node().await;
    node.register(protocol).await.expect("protocol registers");
    let address = node.addresses()[0].to_string();
    (node, address)
}

/// A node serving `probe` with the probe's config, and its dialable address.
pub async fn probe_server(probe: Probe) -> (Node, String) {
    let node = node().await;
    let config = probe.config();
    node.register_with(probe, config)
        .await
        .expect("protocol registers");
    let address = node.addresses()[0].to_string();
    (node, address)
}

/// A peer-exchange server answering every question with the same
/// addresses, whoever is sought: a hostile neighbour.
pub struct FixedAnswer(pub Vec<subnet::Multiaddr>);

impl FixedAnswer {
    /// `count` addresses on loopback ports 1.. (closed: every dial is
    /// refused).
    pub fn closed_ports(count: u16) -> Self {
        Self(
            (1..=count)
                .map(|port| format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap())
                .collect(),
        )
    }
}

impl subnet::Protocol for FixedAnswer {
    const ID: &'static str = "/subnet/peer_exchange/1.0.0";
    type Request = subnet::peer_exchange::PeerExchangeRequest;
    type Response = subnet::peer_exchange::PeerExchangeResponse;

    async fn handle(
        &self,
        _ctx: subnet::RequestContext,
        _request: Self::Request,
    ) -> Result<Self::Response, subnet::HandlerError> {
        Ok(subnet::peer_exchange::PeerExchangeResponse {
            addresses: self.0.iter().map(|a| a.to_vec()).collect(),
            subnet_node_id: 0,
        })
    }
}

/// A registry file of its own for the test `name`, in a directory of its
/// own that is removed when the returned [`TestDir`] is dropped.
pub fn registry_file(name: &str) -> (TestDir, subnet::registry::FileRegistry) {
    let dir = temp_dir(name);
    let registry = subnet::registry::FileRegistry::new(dir.join("registry.toml"));
    (dir, registry)
}

/// The sum of the series of `family` whose labels contain every one of
/// `labels` (each `key="value"`), scraped from the metrics server on
/// `port` (`subnet::metrics::serve_prometheus`).
pub async fn scrape_sum(port: u16, family: &str, labels: &[&str]) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let prefix = format!("{family}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `check` until it holds, failing the test after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

use std::time::Duration as StdDuration;

use subnet::{
    HandlerError, ProtocolConfig, RequestContext, ServeError,
    task::{TaskRequest, TaskResponse},
};
use tokio::sync::mpsc;

/// A task-protocol server whose behaviour the request's payload chooses:
/// `panic`, `error`, `sleep:<ms>`, `big:<bytes>`, else the payload
/// upper-cased. Every serving failure is reported, as its `Debug` text, on
/// the channel `failures` returns.
pub struct Probe {
    config: ProtocolConfig,
    failures: mpsc::Sender<String>,
}

impl Probe {
    /// The limits the probe is served with.
    pub fn config(&self) -> ProtocolConfig {
        self.config.clone()
    }

    /// A probe with `config`, and the receiver of its failures.
    pub fn new(config: ProtocolConfig) -> (Self, mpsc::Receiver<String>) {
        let (failures, receiver) = mpsc::channel(4096);
        (Self { config, failures }, receiver)
    }
}

impl Protocol for Probe {
    const ID: &'static str = "/subnet/task_protocol/1.0.0";
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn handle(
        &self,
        _ctx: RequestContext,
        request: TaskRequest,
    ) -> Result<TaskResponse, HandlerError> {
        let payload = String::from_utf8_lossy(&request.payload).into_owned();
        let result = match payload.split_once(':') {
            _ if payload == "panic" => panic!("deliberate panic in a test handler"),
            _ if payload == "error" => return Err(HandlerError::new("deliberate handler error")),
            Some(("sleep", ms)) => {
                tokio::time::sleep(StdDuration::from_millis(ms.parse().unwrap())).await;
                payload.to_ascii_uppercase().into_bytes()
            }
            Some(("big", bytes)) => vec![b'x'; bytes.parse().unwrap()],
            _ => payload.to_ascii_uppercase().into_bytes(),
        };
        Ok(TaskResponse {
            accepted: true,
            result: result.into(),
            error: String::new(),
        })
    }

    fn on_failure(&self, error: &ServeError) {
        let _ = self.failures.try_send(kind(error));
    }
}

/// A serving failure without its request id and peer, e.g.
/// `Request(VarintTooLong)` or `RequestTimeout(300ms)`.
pub fn kind(error: &ServeError) -> String {
    match error {
        ServeError::Request { source, .. } => format!("Request({source:?})"),
        ServeError::RequestTimeout { timeout, .. } => format!("RequestTimeout({timeout:?})"),
        ServeError::Decode { source, .. } => format!("Decode({source:?})"),
        ServeError::Handler { source, .. } => format!("Handler({source:?})"),
        ServeError::HandlerDeadline { deadline, .. } => format!("HandlerDeadline({deadline:?})"),
        ServeError::ResponseTooLarge { len, max, .. } => {
            format!("ResponseTooLarge {{ len: {len}, max: {max} }}")
        }
        ServeError::Respond { source, .. } => format!("Respond({source:?})"),
        ServeError::Panicked { message, .. } => format!("Panicked {{ message: {message:?} }}"),
        ServeError::Stopping { .. } => "Stopping".to_owned(),
        ServeError::RequestStalled { stall, .. } => format!("RequestStalled({stall:?})"),
        ServeError::ResponseStalled { stall, .. } => format!("ResponseStalled({stall:?})"),
        ServeError::Expired { .. } => "Expired".to_owned(),
    }
}

/// A task request carrying `payload`.
pub fn task(payload: &str) -> TaskRequest {
    TaskRequest {
        task_id: payload.to_owned(),
        payload: payload.as_bytes().to_vec().into(),
    }
}

/// Waits for the next failure a probe reports.
pub async fn next_failure(failures: &mut mpsc::Receiver<String>) -> String {
    tokio::time::timeout(StdDuration::from_secs(10), failures.recv())
        .await
        .expect("a failure is reported in time")
        .expect("the probe is alive")
}

/// Prints the nodes' logs as `RUST_LOG` asks (nothing if unset).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// An empty directory of a test's own in the temp directory, removed
/// with what it holds when dropped (`tempfile::TempDir`); it reads as a
/// [`std::path::Path`].
pub struct TestDir(tempfile::TempDir);

impl std::ops::Deref for TestDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

/// A [`TestDir`] whose name starts with `subnet-<name>-`.
pub fn temp_dir(name: &str) -> TestDir {
    TestDir(
        tempfile::Builder::new()
            .prefix(&format!("subnet-{name}-"))
            .tempdir()
            .unwrap(),
    )
}

/// A bare rust-libp2p swarm (TCP, Noise, yamux) with `behaviour`, for a
/// test that plays a peer by hand; its connections stay up 60 s idle.
pub fn bare_swarm<B: libp2p::swarm::NetworkBehaviour>(
    behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A loopback TCP port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns a program that prints `listening on <multiaddr>` as its first
/// line; returns the child and that multiaddr.
pub fn spawn_listening(command: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the program runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, address)
}

#[allow(unused_imports)]
pub use netns::KillOnDrop;
