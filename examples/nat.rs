//! Benchmark: calls to nodes behind NAT, on simulated hosts (network
//! namespaces on a bridge, hosts behind nftables NAT routers: the test bed
//! of `tests/common/netns.rs`). Needs root, iproute2 and nftables.
//!
//! ```text
//! cargo build --release --bin subnet --example nat
//! target/release/examples/nat                    # 5 starts, 20 tries
//! target/release/examples/nat --starts 3 --tries 10
//! ```
//!
//! Topology: relay R (`--relay-server`) and caller B on the bridge; node A
//! behind one NAT, bootstrapped to R, nothing else configured; callers C
//! behind another NAT. Every node runs the `subnet` binary built next to
//! this program, with the framework's defaults.
//!
//! 1. **Time to the first answered call to a NATed peer**: from starting
//!    A (a fresh key each time) until `subnet call <A's peer id>
//!    --bootstrap R` from B is first answered: AutoNAT finds A unreachable,
//!    A reserves a slot on R and advertises its circuit address, B's
//!    short-lived node finds it through R and calls through R. B retries
//!    as soon as a call fails.
//! 2. **Hole punching between two NATs**: each try is a new caller in C's
//!    NAT (`subnet call <A> --count 6 --interval-ms 500`, listening on a
//!    fixed port of its own): its first call goes through R; DCUtR then
//!    tries to make the connection direct. Reported: the share of tries
//!    whose later calls went direct, and of all later calls.
//! 3. **Latency, relayed and direct**: p50 and p99 of the warm calls (the
//!    first call of each caller is left out) that went direct in (2), and
//!    of those of callers with hole punching off (`--no-hole-punching`:
//!    every call relayed through R).

#[path = "../tests/common/netns.rs"]
#[allow(dead_code, unreachable_pub)]
mod netns;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use clap::Parser;
use netns::{Call, Host, first_address};

#[derive(Parser)]
struct Args {
    /// How many times to start a node behind NAT and time its first
    /// answered call.
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// How many callers behind the second NAT try hole punching.
    #[arg(long, default_value_t = 20)]
    tries: usize,
    /// How many callers with hole punching off measure relayed latency.
    #[arg(long, default_value_t = 5)]
    relayed_callers: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let bin = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("subnet"))
        .filter(|bin| bin.exists())
        .ok_or("no subnet binary next to this one: cargo build --release --bin subnet")?;
    let dir = std::env::temp_dir().join(format!("subnet-nat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = run(&args, &bin, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(args: &Args, bin: &Path, dir: &Path) -> Result<(), String> {
    let Some(mut bed) = netns::bridge(2) else {
        return Err("SUBNET_SKIP_NETNS=1: no simulated hosts".into());
    };
    let (relay_host, b_host) = (bed.hosts[0].clone(), bed.hosts[1].clone());
    let a_host = bed.behind_nat();
    let c_host = bed.behind_nat();
    let (key_r, id_r) = keygen(bin, dir, "r")?;
    let relay = format!("/ip4/{}/tcp/4001/p2p/{id_r}", relay_host.ip);
    let mut r = relay_host.spawn(
        bin.to_str().unwrap(),
        &[
            "node",
            "--key",
            &key_r,
            "--relay-server",
            "--listen",
            "/ip4/0.0.0.0/tcp/4001",
        ],
    );
    first_address(&mut r.0);

    // 1. Time to the first answered call.
    let mut firsts = Vec::new();
    let mut a = None;
    let mut id_a = String::new();
    for start in 0..args.starts {
        drop(a.take());
        let (key_a, id) = keygen(bin, dir, &format!("a{start}"))?;
        id_a = id;
        let started = Instant::now();
        let mut node = a_host.spawn(
            bin.to_str().unwrap(),
            &[
                "node",
                "--key",
                &key_a,
                "--listen",
                "/ip4/0.0.0.0/tcp/4001",
                "--bootstrap",
                &relay,
            ],
        );
        first_address(&mut node.0);
        a = Some(node);
        let mut attempts = 0;
        let mut last_error = String::new();
        loop {
            attempts += 1;
            let call = b_host
                .command(bin.to_str().unwrap())
                .args(["call", &id_a, "first", "--bootstrap", &relay])
                .output()
                .map_err(|e| e.to_string())?;
            if call.status.success() {
                let took = started.elapsed();
                println!(
                    "start {}: first answered call after {:.1} s ({attempts} calls; the last failure: {})",
                    start + 1,
                    took.as_secs_f64(),
                    last_error.trim()
                );
                firsts.push(took.as_secs_f64());
                break;
            }
            last_error = String::from_utf8_lossy(&call.stderr).into_owned();
            if started.elapsed() > Duration::from_secs(120) {
                println!("start {}: no answered call within 120 s", start + 1);
                break;
            }
        }
    }

    // 2. Hole punching between two NATs.
    let mut direct_tries = 0;
    let (mut later, mut later_direct) = (0, 0);
    let mut direct_ms = Vec::new();
    for attempt in 0..args.tries {
        // A port of its own each time: the last caller's connections may
        // still linger in TIME_WAIT on the same ports.
        let listen = format!("/ip4/0.0.0.0/tcp/{}", 5000 + attempt);
        let calls = calls(
            &c_host,
            bin,
            &[
                "call",
                &id_a,
                "punch",
                "--bootstrap",
                &relay,
                "--listen",
                &listen,
                "--count",
                "6",
                "--interval-ms",
                "500",
            ],
        );
        let warm = &calls[1.min(calls.len())..];
        let paths: Vec<&str> = calls
            .iter()
            .map(|c| if c.direct { "direct" } else { "relayed" })
            .collect();
        println!("try {}: {}", attempt + 1, paths.join(" "));
        if warm.last().is_some_and(|c| c.direct) {
            direct_tries += 1;
        }
        later += warm.len();
        later_direct += warm.iter().filter(|c| c.direct).count();
        direct_ms.extend(warm.iter().filter(|c| c.direct).map(|c| c.ms));
    }

    // 3. Relayed latency: hole punching off on the caller.
    let mut relayed_ms = Vec::new();
    for _ in 0..args.relayed_callers {
        let calls = calls(
            &c_host,
            bin,
            &[
                "call",
                &id_a,
                "relayed",
                "--bootstrap",
                &relay,
                "--no-hole-punching",
                "--count",
                "21",
                "--interval-ms",
                "50",
            ],
        );
        relayed_ms.extend(calls.iter().skip(1).filter(|c| !c.direct).map(|c| c.ms));
    }
    drop((a, r));

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| time to the first answered call to a NATed peer ({} starts) | median {:.1} s, min {:.1} s, max {:.1} s |",
        firsts.len(),
        percentile(&mut firsts.clone(), 0.5),
        firsts.iter().cloned().fold(f64::INFINITY, f64::min),
        firsts.iter().cloned().fold(0.0, f64::max),
    );
    println!(
        "| two NATs: tries whose later calls went direct after DCUtR | {direct_tries} of {} ({:.0} %) |",
        args.tries,
        100.0 * direct_tries as f64 / args.tries.max(1) as f64
    );
    println!(
        "| two NATs: later calls that went direct | {later_direct} of {later} ({:.0} %) |",
        100.0 * later_direct as f64 / later.max(1) as f64
    );
    println!(
        "| warm call latency, direct ({} calls) | p50 {:.3} ms, p99 {:.3} ms |",
        direct_ms.len(),
        percentile(&mut direct_ms.clone(), 0.5),
        percentile(&mut direct_ms, 0.99),
    );
    println!(
        "| warm call latency, relayed through R ({} calls) | p50 {:.3} ms, p99 {:.3} ms |",
        relayed_ms.len(),
        percentile(&mut relayed_ms.clone(), 0.5),
        percentile(&mut relayed_ms, 0.99),
    );
    Ok(())
}

/// Runs `subnet args` (with `--count`) on `host`; returns each answered
/// call (none if the caller failed, which is printed).
fn calls(host: &Host, bin: &Path, args: &[&str]) -> Vec<Call> {
    host.calls(bin.to_str().unwrap(), args)
        .unwrap_or_else(|failed| {
            println!("a caller failed: {}", failed.trim());
            Vec::new()
        })
}

/// Writes a key with `subnet keygen`; returns its file and peer id.
fn keygen(bin: &Path, dir: &Path, name: &str) -> Result<(String, String), String> {
    netns::keygen(bin.to_str().unwrap(), dir, name)
}

/// The `q` quantile of `values` (0 if empty).
fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
