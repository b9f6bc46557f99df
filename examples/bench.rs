//! Benchmark: the task protocol between two nodes on loopback.
//!
//! ```text
//! cargo run --release --example bench            # TCP and QUIC
//! cargo run --release --example bench -- --quick # fewer calls
//! ```
//!
//! For each transport it measures, through the full path (actors,
//! supervision, metrics calls): sequential calls with a 64-byte payload,
//! 64 calls in flight with a 64-byte payload (requests/s, p50 and p99
//! latency), and sequential calls with a 1 MiB payload (MiB/s of payload;
//! each call carries 1 MiB there and 1 MiB back).

use std::time::{Duration, Instant};

use clap::Parser;
use futures::{StreamExt, stream};
use subnet::{
    Client, Config, Node,
    task::{TaskProtocol, TaskRequest},
};

#[derive(Parser)]
struct Args {
    /// Run a tenth of the calls.
    #[arg(long)]
    quick: bool,
    /// Only this transport: `tcp` or `quic`.
    #[arg(long)]
    transport: Option<String>,
}

struct Row {
    transport: &'static str,
    scenario: &'static str,
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    payload: usize,
}

impl Row {
    fn print(&mut self) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            self.latencies[i.min(self.latencies.len() - 1)]
        };
        let secs = self.elapsed.as_secs_f64();
        let mib_s = (self.calls * self.payload) as f64 / secs / (1024.0 * 1024.0);
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
            self.transport,
            self.scenario,
            self.calls,
            self.calls as f64 / secs,
            pct(0.50).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            mib_s
        );
    }
}

fn request(payload: usize) -> TaskRequest {
    TaskRequest {
        task_id: "bench".into(),
        payload: vec![b'a'; payload].into(),
    }
}

async fn run(
    client: &Client<TaskProtocol>,
    address: &str,
    calls: usize,
    in_flight: usize,
    payload: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let latencies: Vec<Duration> = stream::iter(0..calls)
        .map(|_| async {
            let t = Instant::now();
            let response = client.call(address, request(payload)).await.expect("call");
            assert_eq!(response.result.len(), payload);
            t.elapsed()
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    (started.elapsed(), latencies)
}

async fn bench(transport: &'static str, listen: &str, scale: usize) -> Vec<Row> {
    let server = Node::builder()
        .listen(listen.parse().unwrap())
        .build()
        .await
        .unwrap();
    server.register(TaskProtocol).await.unwrap();
    let address = server.addresses()[0].to_string();
    let caller = Node::builder().build().await.unwrap();
    let client = caller
        .client::<TaskProtocol>()
        .with_config(Config::default().with_max_frame(4 << 20));
    run(&client, &address, 200, 1, 64).await; // warm up: connect, allocate

    let mut rows = Vec::new();
    for (scenario, calls, in_flight, payload) in [
        ("64 B sequential", 5_000 / scale, 1, 64),
        ("64 B, 64 in flight", 50_000 / scale, 64, 64),
        ("1 MiB sequential", 200 / scale, 1, 1 << 20),
    ] {
        let (elapsed, latencies) = run(&client, &address, calls, in_flight, payload).await;
        rows.push(Row {
            transport,
            scenario,
            calls,
            elapsed,
            latencies,
            payload,
        });
    }
    caller.shutdown().await;
    server.shutdown().await;
    rows
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let scale = if args.quick { 10 } else { 1 };
    println!("| transport | scenario | calls | requests/s | p50 µs | p99 µs | MiB/s |");
    println!("|---|---|---|---|---|---|---|");
    let want = |t: &str| args.transport.as_deref().is_none_or(|w| w == t);
    if want("tcp") {
        for mut row in bench("tcp", "/ip4/127.0.0.1/tcp/0", scale).await {
            row.print();
        }
    }
    if want("quic") {
        for mut row in bench("quic", "/ip4/127.0.0.1/udp/0/quic-v1", scale).await {
            row.print();
        }
    }
}
