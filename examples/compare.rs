//! Benchmark: `subnet` against raw rust-libp2p `request_response` and plain
//! tokio TCP, side by side in one run, with the same varint + protobuf
//! frames and the same task (upper-case the payload).
//!
//! ```text
//! cargo run --release --example compare            # full run
//! cargo run --release --example compare -- --quick # a tenth of the calls
//! ```
//!
//! 1. `subnet`: node to node through the task protocol (actors, supervision,
//!    metrics recorded by the Prometheus recorder), with the default negotiation
//!    and with `NodeBuilder::lazy_negotiation(true)` ("subnet lazy");
//! 2. raw `request_response` with an equivalent varint codec (TCP + Noise +
//!    yamux, and QUIC); also "request_response + GossipSub, identify, ping":
//!    the same beside the behaviours a subnet node runs for heartbeats and
//!    addresses, as a raw rust-libp2p node doing `subnet`'s job would;
//! 3. plain tokio TCP, one connection per request in flight (the physical
//!    reference: no encryption, no multiplexing).
//!
//! Ratios are to (2) on the same transport. Callers run on the runtime's
//! worker threads (a task), as in a service.
//!
//! ```text
//! cargo run --release --example compare -- --profile 5000 [--lazy | --raw [--full]] [--in-flight 64] [--payload 1048576]
//! ```
//! runs only `subnet` (or raw `request_response`, `--raw`, with `--full`
//! beside GossipSub, identify and ping) over TCP, for a profiler, and
//!
//! ```text
//! cargo run --release --example compare -- --rounds 5 [--lazy] [--calls 10000] [--in-flight 64] [--payload 1048576]
//! ```
//! alternates `subnet` and `request_response` on one process, round by
//! round.

use std::{
    io,
    time::{Duration, Instant},
};

use clap::Parser;
use futures::{AsyncRead, AsyncWrite, StreamExt, stream};
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, SwarmBuilder, identify,
    identity::Keypair,
    noise, ping, request_response,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use libp2p_gossipsub as gossipsub;
use subnet::{
    Node, ProtocolConfig, codec,
    task::{TaskProtocol, TaskRequest, TaskResponse},
};
use tokio::sync::{mpsc, oneshot};

#[derive(Parser)]
struct Args {
    /// Run a tenth of the calls.
    #[arg(long)]
    quick: bool,
    /// Only run `subnet` (or, with `--raw`, `request_response`) over TCP,
    /// this many calls (for profiling).
    #[arg(long)]
    profile: Option<usize>,
    /// With `--profile`: lazy protocol negotiation on.
    #[arg(long)]
    lazy: bool,
    /// With `--profile`: run raw `request_response` instead of `subnet`.
    #[arg(long)]
    raw: bool,
    /// With `--profile --raw`: `request_response` with GossipSub, identify
    /// and ping beside it, as a subnet node runs them.
    #[arg(long)]
    full: bool,
    /// Alternate `subnet` and `request_response` over TCP on one process,
    /// this many rounds of `--calls` calls each, and print every round:
    /// steady-state figures that a slow first round cannot skew.
    #[arg(long)]
    rounds: Option<usize>,
    /// With `--rounds`: calls per round and stack.
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// With `--profile`: requests in flight.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// With `--profile`: payload bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Run without a metrics recorder (metrics calls do nothing).
    #[arg(long)]
    no_recorder: bool,
}

const MAX_FRAME: usize = 4 << 20;

fn request(payload: usize) -> TaskRequest {
    TaskRequest {
        task_id: "bench".into(),
        payload: vec![b'a'; payload].into(),
    }
}

fn answer(request: TaskRequest) -> TaskResponse {
    TaskResponse {
        accepted: true,
        result: request.payload.to_ascii_uppercase().into(),
        error: String::new(),
    }
}

/// Something that answers task requests.
trait Caller: Clone + Send + Sync + 'static {
    fn call(&self, request: TaskRequest) -> impl Future<Output = TaskResponse> + Send;
}

// ---- (1) subnet ----

#[derive(Clone)]
struct SubnetCaller {
    client: subnet::Client<TaskProtocol>,
    address: Multiaddr,
}

impl Caller for SubnetCaller {
    async fn call(&self, request: TaskRequest) -> TaskResponse {
        self.client
            .call(self.address.clone(), request)
            .await
            .expect("subnet call")
    }
}

async fn subnet_pair(listen: &str, lazy: bool) -> (SubnetCaller, Vec<Node>) {
    let builder = || Node::builder().lazy_negotiation(lazy);
    let server = builder()
        .listen(listen.parse().unwrap())
        .build()
        .await
        .unwrap();
    server.register(TaskProtocol).await.unwrap();
    let caller = builder().build().await.unwrap();
    let client = caller
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_max_frame(MAX_FRAME));
    let address = server.addresses()[0].clone();
    (SubnetCaller { client, address }, vec![server, caller])
}

// ---- (2) raw request_response ----

#[derive(Clone, Default)]
struct VarintCodec;

impl request_response::Codec for VarintCodec {
    type Protocol = StreamProtocol;
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<TaskRequest> {
        let body = codec::read_frame(io, MAX_FRAME)
            .await
            .map_err(io::Error::other)?;
        prost::Message::decode(&body[..]).map_err(io::Error::other)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<TaskResponse> {
        let body = codec::read_frame(io, MAX_FRAME)
            .await
            .map_err(io::Error::other)?;
        prost::Message::decode(&body[..]).map_err(io::Error::other)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: TaskRequest,
    ) -> io::Result<()> {
        codec::write_frame(io, &codec::encode_frame(&request)).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: TaskResponse,
    ) -> io::Result<()> {
        codec::write_frame(io, &codec::encode_frame(&response)).await
    }
}

type RrEvent = request_response::Event<TaskRequest, TaskResponse>;
type Bare = request_response::Behaviour<VarintCodec>;

/// A swarm around raw `request_response`.
trait RawStack: NetworkBehaviour + Send + 'static {
    fn new(key: &Keypair) -> Self;
    fn rr(&mut self) -> &mut Bare;
    /// The `request_response` event in one of this behaviour's events.
    fn rr_event(event: Self::ToSwarm) -> Option<RrEvent>;
}

fn rr_behaviour() -> Bare {
    request_response::Behaviour::new(
        [(
            StreamProtocol::new("/bench/task/1.0.0"),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(60))
            .with_max_concurrent_streams(1024),
    )
}

/// (2): `request_response` alone.
impl RawStack for Bare {
    fn new(_: &Keypair) -> Self {
        rr_behaviour()
    }
    fn rr(&mut self) -> &mut Bare {
        self
    }
    fn rr_event(event: RrEvent) -> Option<RrEvent> {
        Some(event)
    }
}

/// `request_response` with what a subnet node also runs for heartbeats and
/// addresses: GossipSub (subscribed to one topic), identify and ping.
#[derive(NetworkBehaviour)]
struct WithGossip {
    rr: Bare,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

impl RawStack for WithGossip {
    fn new(key: &Keypair) -> Self {
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossipsub::Config::default(),
        )
        .expect("gossipsub config");
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new("bench"))
            .expect("subscribes");
        Self {
            rr: rr_behaviour(),
            gossipsub,
            identify: identify::Behaviour::new(identify::Config::new(
                "/bench/1.0.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        }
    }
    fn rr(&mut self) -> &mut Bare {
        &mut self.rr
    }
    fn rr_event(event: WithGossipEvent) -> Option<RrEvent> {
        match event {
            WithGossipEvent::Rr(event) => Some(event),
            _ => None,
        }
    }
}

fn raw_swarm<B: RawStack>() -> Swarm<B> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_quic()
        .with_behaviour(|key| B::new(key))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

type Pending = (TaskRequest, oneshot::Sender<TaskResponse>);

#[derive(Clone)]
struct RawCaller {
    requests: mpsc::Sender<Pending>,
}

impl Caller for RawCaller {
    async fn call(&self, request: TaskRequest) -> TaskResponse {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((request, reply))
            .await
            .expect("client loop");
        answer.await.expect("raw call")
    }
}

/// A `request_response` pair, with GossipSub, identify and ping if `full`.
async fn raw_pair_of(listen: &str, full: bool) -> (RawCaller, Vec<tokio::task::JoinHandle<()>>) {
    if full {
        raw_pair::<WithGossip>(listen).await
    } else {
        raw_pair::<Bare>(listen).await
    }
}

async fn raw_pair<B: RawStack>(listen: &str) -> (RawCaller, Vec<tokio::task::JoinHandle<()>>) {
    let mut server = raw_swarm::<B>();
    server.listen_on(listen.parse().unwrap()).unwrap();
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    let server_task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(event) = server.select_next_some().await
                && let Some(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                }) = B::rr_event(event)
            {
                let _ = server
                    .behaviour_mut()
                    .rr()
                    .send_response(channel, answer(request));
            }
        }
    });
    let mut client = raw_swarm::<B>();
    client.add_peer_address(server_id, address);
    let (requests, mut incoming) = mpsc::channel::<Pending>(1024);
    let client_task = tokio::spawn(async move {
        let mut waiting = std::collections::HashMap::new();
        loop {
            tokio::select! {
                Some((request, reply)) = incoming.recv() => {
                    let id = client.behaviour_mut().rr().send_request(&server_id, request);
                    waiting.insert(id, reply);
                }
                event = client.select_next_some() => {
                    let SwarmEvent::Behaviour(event) = event else { continue };
                    match B::rr_event(event) {
                        Some(request_response::Event::Message {
                            message: request_response::Message::Response { request_id, response },
                            ..
                        }) => {
                            if let Some(reply) = waiting.remove(&request_id) {
                                let _ = reply.send(response);
                            }
                        }
                        Some(request_response::Event::OutboundFailure { error, .. }) => {
                            panic!("raw request failed: {error}");
                        }
                        _ => {}
                    }
                }
            }
        }
    });
    (RawCaller { requests }, vec![server_task, client_task])
}

// ---- (3) plain TCP ----

#[derive(Clone)]
struct TcpCaller {
    connections: std::sync::Arc<tokio::sync::Mutex<Vec<tokio_util_compat::Compat>>>,
}

mod tokio_util_compat {
    //! A plain TCP connection speaking the same frames.
    pub(crate) type Compat = futures::io::BufReader<Connection>;

    pub(crate) struct Connection(pub(crate) tokio::net::TcpStream);

    impl futures::AsyncRead for Connection {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut read = tokio::io::ReadBuf::new(buf);
            match tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut self.0), cx, &mut read) {
                std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(read.filled().len())),
                std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        }
    }

    impl futures::AsyncWrite for Connection {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.0), cx, buf)
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.0), cx)
        }

        fn poll_close(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut self.0), cx)
        }
    }
}

impl Caller for TcpCaller {
    async fn call(&self, request: TaskRequest) -> TaskResponse {
        let mut connection = self
            .connections
            .lock()
            .await
            .pop()
            .expect("a free connection");
        codec::write_frame(connection.get_mut(), &codec::encode_frame(&request))
            .await
            .unwrap();
        let body = codec::read_frame(&mut connection, MAX_FRAME).await.unwrap();
        self.connections.lock().await.push(connection);
        prost::Message::decode(&body[..]).unwrap()
    }
}

async fn tcp_pair(connections: usize) -> (TcpCaller, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut connection =
                    futures::io::BufReader::new(tokio_util_compat::Connection(socket));
                while let Ok(body) = codec::read_frame(&mut connection, MAX_FRAME).await {
                    let request: TaskRequest = prost::Message::decode(&body[..]).unwrap();
                    let frame = codec::encode_frame(&answer(request));
                    if codec::write_frame(connection.get_mut(), &frame)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let mut pool = Vec::new();
    for _ in 0..connections {
        let socket = tokio::net::TcpStream::connect(address).await.unwrap();
        socket.set_nodelay(true).unwrap();
        pool.push(futures::io::BufReader::new(tokio_util_compat::Connection(
            socket,
        )));
    }
    let caller = TcpCaller {
        connections: std::sync::Arc::new(tokio::sync::Mutex::new(pool)),
    };
    (caller, server)
}

// ---- measurement ----

struct Measured {
    rps: f64,
    p50: Duration,
    p99: Duration,
    mib_s: f64,
}

async fn measure<C: Caller>(
    caller: &C,
    calls: usize,
    in_flight: usize,
    payload: usize,
) -> Measured {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = stream::iter(0..calls)
        .map(|_| async {
            let t = Instant::now();
            let response = caller.call(request(payload)).await;
            assert_eq!(response.result.len(), payload);
            t.elapsed()
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Measured {
        rps: calls as f64 / elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
        mib_s: (calls * payload) as f64 / elapsed / (1024.0 * 1024.0),
    }
}

/// How long a process warms up before it measures anything.
const WARM_UP: Duration = Duration::from_secs(1);

/// Calls sequentially for `time`. On this VM the first second or so of a
/// process runs slow: a sequential call takes up to twice as long, for
/// whichever stack runs first (seen with `subnet` and `request_response`
/// alternating on one process). Measurements start after it.
async fn warm_up<C: Caller>(caller: &C, time: Duration) {
    let until = Instant::now() + time;
    while Instant::now() < until {
        caller.call(request(64)).await;
    }
}

const SCENARIOS: [(&str, usize, usize, usize); 3] = [
    ("64 B sequential", 5_000, 1, 64),
    ("64 B, 64 in flight", 50_000, 64, 64),
    ("1 MiB sequential", 200, 1, 1 << 20),
];

async fn run_all<C: Caller>(caller: &C, scale: usize) -> Vec<Measured> {
    warm_up(caller, WARM_UP).await;
    let mut results = Vec::new();
    for (_, calls, in_flight, payload) in SCENARIOS {
        results.push(measure(caller, calls / scale, in_flight, payload).await);
    }
    results
}

#[tokio::main]
async fn main() {
    // Callers run on the runtime's workers, as in a service, not on the
    // thread that blocks on `main`.
    tokio::spawn(run(Args::parse())).await.unwrap();
}

async fn run(args: Args) {
    let scale = if args.quick { 10 } else { 1 };
    if !args.no_recorder {
        // Metrics on, as a monitored node runs: the Prometheus recorder,
        // serving on a loopback port nobody scrapes.
        subnet::metrics::serve_prometheus("127.0.0.1:0".parse().unwrap())
            .expect("metrics recorder installs");
    }
    if let Some(rounds) = args.rounds {
        let listen = "/ip4/127.0.0.1/tcp/0";
        let (subnet, _nodes) = subnet_pair(listen, args.lazy).await;
        let (raw, _tasks) = raw_pair_of(listen, false).await;
        let stack = if args.lazy { "subnet lazy" } else { "subnet" };
        println!(
            "| round | {stack} p50 µs | request_response p50 µs | p50 ratio | {stack} requests/s | request_response requests/s |"
        );
        println!("|---|---|---|---|---|---|");
        for round in 1..=rounds {
            let a = measure(&subnet, args.calls, args.in_flight, args.payload).await;
            let b = measure(&raw, args.calls, args.in_flight, args.payload).await;
            println!(
                "| {round} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} |",
                a.p50.as_secs_f64() * 1e6,
                b.p50.as_secs_f64() * 1e6,
                a.p50.as_secs_f64() / b.p50.as_secs_f64(),
                a.rps,
                b.rps,
            );
        }
        return;
    }
    if let Some(calls) = args.profile {
        let listen = "/ip4/127.0.0.1/tcp/0";
        let m = if args.raw {
            let (caller, _tasks) = raw_pair_of(listen, args.full).await;
            warm_up(&caller, WARM_UP).await;
            measure(&caller, calls, args.in_flight, args.payload).await
        } else {
            let (caller, _nodes) = subnet_pair(listen, args.lazy).await;
            warm_up(&caller, WARM_UP).await;
            measure(&caller, calls, args.in_flight, args.payload).await
        };
        println!(
            "{:.0} requests/s, p50 {:?}, {:.1} MiB/s",
            m.rps, m.p50, m.mib_s
        );
        return;
    }
    let mut table: Vec<(String, Vec<Measured>)> = Vec::new();
    for (name, listen) in [
        ("tcp", "/ip4/127.0.0.1/tcp/0"),
        ("quic", "/ip4/127.0.0.1/udp/0/quic-v1"),
    ] {
        for (lazy, stack) in [(false, "subnet"), (true, "subnet lazy")] {
            let (caller, nodes) = subnet_pair(listen, lazy).await;
            table.push((format!("{stack}, {name}"), run_all(&caller, scale).await));
            for node in nodes {
                node.shutdown().await;
            }
        }
        for (full, stack) in [
            (false, "request_response"),
            (true, "request_response + GossipSub, identify, ping"),
        ] {
            let (caller, tasks) = raw_pair_of(listen, full).await;
            table.push((format!("{stack}, {name}"), run_all(&caller, scale).await));
            for task in tasks {
                task.abort();
            }
        }
    }
    let (caller, server) = tcp_pair(64).await;
    table.push(("plain tokio TCP".into(), run_all(&caller, scale).await));
    server.abort();

    println!(
        "| scenario | stack | requests/s | p50 µs | p99 µs | MiB/s | throughput vs request_response | p50 vs request_response |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, (scenario, ..)) in SCENARIOS.iter().enumerate() {
        for (stack, results) in &table {
            let reference = if stack.contains("quic") {
                "request_response, quic"
            } else {
                "request_response, tcp"
            };
            let base = &table.iter().find(|(s, _)| s == reference).unwrap().1[i];
            let m = &results[i];
            println!(
                "| {scenario} | {stack} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2}× | {:.2}× |",
                m.rps,
                m.p50.as_secs_f64() * 1e6,
                m.p99.as_secs_f64() * 1e6,
                m.mib_s,
                m.rps / base.rps,
                m.p50.as_secs_f64() / base.p50.as_secs_f64(),
            );
        }
    }
}
