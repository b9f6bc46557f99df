//! `subnet scale`: a subnet of N node processes on this machine, measured.
//!
//! Starts N `subnet node` processes of this very binary on 127.0.0.1: node
//! 1 first, then every other one at once, bootstrapped to node 1 (a burst
//! of joins). Each heartbeats at the given interval and serves Prometheus
//! metrics on a free port. Then, for `--duration` seconds, it measures:
//!
//! - the time until every node's address book holds every other node, asked
//!   over the admin protocol as `subnet peers` does (every second, of the
//!   nodes not yet complete);
//! - each process's resident memory (`VmRSS` of `/proc/<pid>/status`, and
//!   its private part `RssAnon`) every `--sample` seconds on the dot, read
//!   apart from the slower asks below so that a mark such as 1 min is read
//!   at 1 min; and its CPU time (`utime + stime` of `/proc/<pid>/stat`) at
//!   each round of asks;
//! - each node's traffic (`libp2p_bandwidth_bytes_total`, both directions)
//!   and heartbeats received (`subnet_heartbeats_received_total`), scraped
//!   from its `/metrics`;
//! - whether each node stays answerable: every sample asks each node's
//!   admin protocol and `/metrics`, within 10 s, and counts failures.
//!
//! The report is a table, or one JSON object with `--json`. The command
//! fails (exit 1, after the report) if a node died or a book was still
//! incomplete at the end.
//!
//! Every process is stopped on every exit path: SIGTERM at the end, on an
//! error and on Ctrl-C or SIGTERM (SIGKILL for those still running 10 s
//! later), SIGKILL if this command panics (each child is killed when
//! dropped).

use std::{
    collections::HashSet,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use serde_json::json;
use subnet::{
    Multiaddr, Node, PeerId,
    admin::{Admin, PeersRequest},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// Time a node has to start and print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Time an admin call or a `/metrics` scrape has to answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Nodes asked at once.
const CONCURRENT_ASKS: usize = 32;
/// How often the books of incomplete nodes are asked for.
const BOOK_POLL: Duration = Duration::from_secs(1);
/// The times at which memory is reported (if the run is that long).
const MEMORY_MARKS: [u64; 5] = [30, 60, 120, 300, 600];

/// `subnet scale`'s flags.
#[derive(clap::Args)]
pub(crate) struct ScaleArgs {
    /// Node processes to run.
    #[arg(long, default_value_t = 50)]
    nodes: usize,
    /// Seconds between two heartbeats of each node.
    #[arg(long, default_value_t = 15.0)]
    heartbeat_interval: f64,
    /// Seconds to measure for, from the moment nodes 2..N are started.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Seconds between two readings of memory (on the dot), and between
    /// two rounds of CPU, traffic and answers (later if a round is slow).
    #[arg(long, default_value_t = 10)]
    sample: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Write each node's log (its stderr) to DIR/node-<i>.log.
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Run node 2 under this command, split at spaces: a profiler, e.g.
    /// `--wrap "heaptrack -o /tmp/node2"`. Node 2's memory and CPU are
    /// then left out of the figures (they would be the profiler's).
    #[arg(long)]
    wrap: Option<String>,
    /// More flags for every `subnet node`, after `--` (e.g. `-- --no-kademlia`).
    #[arg(last = true)]
    node_args: Vec<String>,
}

/// One running node process.
struct Process {
    child: Child,
    pid: u32,
    peer: PeerId,
    address: Multiaddr,
    metrics_port: u16,
    /// Kept open: the node prints to it when it stops.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// What one sample saw of one node.
#[derive(Clone, Debug, Default)]
struct Seen {
    alive: bool,
    /// Not a wrapped node (`--wrap`): its memory and CPU count.
    measured: bool,
    cpu_ticks: u64,
    bytes: f64,
    heartbeats: f64,
    peers: f64,
    gossip_dropped: f64,
    admin_ms: Option<f64>,
    scrape_ms: Option<f64>,
}

struct Sample {
    at: Duration,
    nodes: Vec<Seen>,
}

/// Every node's memory at one moment.
struct Reading {
    at: Duration,
    /// By node; `None` once the process is gone (or a zombie).
    nodes: Vec<Option<Memory>>,
}

/// A process's resident memory, KiB.
#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    /// The resident set's private part: the node's heap and stacks, not the
    /// binary's pages that every node process shares.
    anon_kib: u64,
}

/// Reads every process's memory each `every`, on the dot, from `start`
/// until `duration` has passed.
async fn read_memory(
    pids: Vec<u32>,
    start: Instant,
    every: Duration,
    duration: Duration,
) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut ticks = tokio::time::interval_at(start.into(), every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let at = start.elapsed();
        let nodes = pids.iter().map(|&pid| memory(pid)).collect();
        readings.push(Reading { at, nodes });
        if at >= duration {
            return readings;
        }
    }
}

pub(crate) async fn run(args: ScaleArgs) -> Result<(), String> {
    if !(2..=1000).contains(&args.nodes) {
        return Err(format!(
            "--nodes must be between 2 and 1000, not {}",
            args.nodes
        ));
    }
    if !(args.heartbeat_interval.is_finite() && args.heartbeat_interval >= 0.01) {
        return Err("--heartbeat-interval must be at least 0.01 s".into());
    }
    if args.sample == 0 {
        return Err("--sample must be at least 1 s".into());
    }
    if let Some(dir) = &args.logs {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut processes = Vec::with_capacity(args.nodes);
    let outcome = tokio::select! {
        outcome = measure(&args, &exe, &mut processes) => outcome,
        _ = crate::wait_for_signal() => Err("interrupted".into()),
    };
    stop(&mut processes).await;
    let (report, failure) = outcome?;
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Starts the processes (into `processes`, so that they are stopped
/// whatever happens) and measures them. Returns the report, and what
/// failed if something did.
async fn measure(
    args: &ScaleArgs,
    exe: &std::path::Path,
    processes: &mut Vec<Process>,
) -> Result<(serde_json::Value, Option<String>), String> {
    let spawn = |index: usize, bootstrap: Option<&Multiaddr>| {
        let wrapper: Vec<&str> = match (&args.wrap, index) {
            (Some(wrap), 2) => wrap.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg("node")
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--subnet-node-id", &index.to_string()])
            .args(["--heartbeat-interval", &args.heartbeat_interval.to_string()])
            .args(["--metrics", "127.0.0.1:0"]);
        if let Some(bootstrap) = bootstrap {
            command.args(["--bootstrap", &bootstrap.to_string()]);
        }
        command.args(&args.node_args);
        let stderr = match &args.logs {
            Some(dir) => std::fs::File::create(dir.join(format!("node-{index}.log")))
                .map(Stdio::from)
                .map_err(|e| format!("cannot create node {index}'s log: {e}"))?,
            None => Stdio::null(),
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node {index}: {e}"))
    };
    let first = started(1, spawn(1, None)?).await?;
    let bootstrap = first.address.clone();
    eprintln!("node 1 at {bootstrap}");
    processes.push(first);
    let mut children = Vec::with_capacity(args.nodes - 1);
    for index in 2..=args.nodes {
        children.push((index, spawn(index, Some(&bootstrap))?));
    }
    // Time zero: node 1 is up and every other node has just been started.
    let start = Instant::now();
    // Read every node's first lines at once; keep each child as soon as
    // it is known, so that it is stopped whatever happens next.
    let mut starting = stream::iter(children)
        .map(|(index, child)| started(index, child))
        .buffered(CONCURRENT_ASKS);
    while let Some(process) = starting.next().await {
        processes.push(process?);
    }
    drop(starting);
    let started_in = start.elapsed();

    let observer = Node::builder()
        .kademlia(false)
        .peer_exchange(false)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let client = observer
        .client::<Admin>()
        .with_config(subnet::ProtocolConfig::default().with_call_timeout(ASK_TIMEOUT));
    // Base58 once, not for every book of every poll.
    let peers: Vec<String> = processes.iter().map(|p| p.peer.to_string()).collect();
    let complete = |index: usize, book: &[subnet::admin::Peer]| {
        let known: HashSet<&str> = book.iter().map(|p| p.peer_id.as_str()).collect();
        peers
            .iter()
            .enumerate()
            .all(|(i, peer)| i == index || known.contains(peer.as_str()))
    };
    let addresses: Vec<Multiaddr> = processes.iter().map(|p| p.address.clone()).collect();
    let ask = |index: usize| {
        let client = client.clone();
        let address = addresses[index].clone();
        async move {
            let asked = Instant::now();
            let answer = client.call(address, PeersRequest {}).await;
            (index, asked.elapsed(), answer)
        }
    };

    let clock_tick = clock_ticks_per_second().await;
    let n = processes.len();
    let duration = Duration::from_secs(args.duration);
    let every = Duration::from_secs(args.sample);
    let reader = read_memory(
        processes.iter().map(|p| p.pid).collect(),
        start,
        every,
        duration,
    );
    let mut complete_at: Vec<Option<Duration>> = vec![None; n];
    let mut samples: Vec<Sample> = Vec::new();
    let asks = async {
        let mut next_sample = start;
        loop {
            let now = Instant::now();
            if now >= next_sample {
                let mut nodes: Vec<Seen> = Vec::with_capacity(n);
                for (i, process) in processes.iter_mut().enumerate() {
                    let alive = matches!(process.child.try_wait(), Ok(None));
                    let measured = !(args.wrap.is_some() && i == 1);
                    let cpu_ticks = if alive { cpu_ticks(process.pid) } else { 0 };
                    nodes.push(Seen {
                        alive,
                        measured,
                        cpu_ticks,
                        ..Seen::default()
                    });
                }
                let ports: Vec<u16> = processes.iter().map(|p| p.metrics_port).collect();
                let scraped: Vec<_> = stream::iter(ports.into_iter().enumerate())
                    .map(|(i, port)| async move { (i, scrape(port).await) })
                    .buffer_unordered(CONCURRENT_ASKS)
                    .collect()
                    .await;
                for (i, scraped) in scraped {
                    if let Some(scraped) = scraped {
                        nodes[i].scrape_ms = Some(scraped.ms);
                        nodes[i].bytes = scraped.sum("libp2p_bandwidth_bytes_total");
                        nodes[i].heartbeats = scraped.sum("subnet_heartbeats_received_total");
                        nodes[i].peers = scraped.sum("subnet_connected_peers");
                        nodes[i].gossip_dropped =
                            scraped.sum("libp2p_gossipsub_failed_messages_sum");
                    }
                }
                let answers: Vec<_> = stream::iter(0..n)
                    .map(ask)
                    .buffer_unordered(CONCURRENT_ASKS)
                    .collect()
                    .await;
                let at = start.elapsed();
                for (i, took, answer) in answers {
                    if let Ok(answer) = answer {
                        nodes[i].admin_ms = Some(took.as_secs_f64() * 1000.0);
                        if complete_at[i].is_none() && complete(i, &answer.peers) {
                            complete_at[i] = Some(at);
                        }
                    }
                }
                samples.push(Sample { at, nodes });
                while next_sample <= Instant::now() {
                    next_sample += every;
                }
            }
            if start.elapsed() >= duration {
                break;
            }
            let incomplete: Vec<usize> = (0..n).filter(|&i| complete_at[i].is_none()).collect();
            if !incomplete.is_empty() {
                // Until the next sample is due: slow answers must not delay it.
                let mut answers = stream::iter(incomplete)
                    .map(ask)
                    .buffer_unordered(CONCURRENT_ASKS);
                let due = tokio::time::sleep_until(next_sample.into());
                tokio::pin!(due);
                loop {
                    tokio::select! {
                        answer = answers.next() => {
                            let Some((i, _, answer)) = answer else { break };
                            if let Ok(answer) = answer
                                && complete(i, &answer.peers)
                            {
                                complete_at[i] = Some(start.elapsed());
                            }
                        }
                        _ = &mut due => break,
                    }
                }
            }
            let wake = next_sample.min(Instant::now() + BOOK_POLL);
            tokio::time::sleep_until(wake.into()).await;
        }
    };
    let (readings, ()) = tokio::join!(reader, asks);
    observer.shutdown().await;
    Ok(report(
        args,
        started_in,
        &complete_at,
        &samples,
        &readings,
        clock_tick,
    ))
}

/// Waits for a node to print its addresses and its metrics address.
async fn started(index: usize, mut child: Child) -> Result<Process, String> {
    let pid = child.id().ok_or(format!("node {index} exited at once"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut address: Option<Multiaddr> = None;
    let read = async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            if let Some(text) = line.strip_prefix("listening on ") {
                address.get_or_insert(text.parse().map_err(|e| format!("{text}: {e}"))?);
            } else if let Some(text) = line.strip_prefix("metrics on http://") {
                let port = text
                    .split('/')
                    .next()
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    .map(|a| a.port())
                    .ok_or(format!("unexpected line: {line}"))?;
                return Ok(port);
            }
        }
        Err("it exited".to_string())
    };
    let metrics_port = tokio::time::timeout(START_TIMEOUT, read)
        .await
        .map_err(|_| format!("node {index} did not start within {START_TIMEOUT:?}"))?
        .map_err(|e| format!("node {index} did not start: {e}"))?;
    let address = address.ok_or(format!("node {index} printed no address"))?;
    let peer = address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
            _ => None,
        })
        .ok_or(format!("node {index}'s address has no /p2p: {address}"))?;
    Ok(Process {
        child,
        pid,
        peer,
        address,
        metrics_port,
        _stdout: lines,
    })
}

/// Stops every process: SIGTERM, then SIGKILL for those still running
/// 10 s later.
async fn stop(processes: &mut [Process]) {
    let mut pids: Vec<String> = Vec::new();
    for process in processes.iter_mut() {
        if matches!(process.child.try_wait(), Ok(None)) {
            pids.push(process.pid.to_string());
        }
    }
    if !pids.is_empty() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .args(&pids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for process in processes.iter_mut() {
        if tokio::time::timeout_at(deadline, process.child.wait())
            .await
            .is_err()
        {
            let _ = process.child.kill().await;
        }
    }
}

// `/proc` is read with blocking calls on purpose: the kernel writes these
// files as they are read, so a read never waits on a disk, while each read
// through tokio's blocking pool costs two thread wake-ups, and with
// hundreds of runnable threads on 2 cores 400 of them took over a minute.

/// A process's resident memory (`VmRSS` and `RssAnon` of
/// `/proc/<pid>/status`, proc(5)); `None` once it is gone or a zombie.
fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some(Memory {
        rss_kib: kib("VmRSS:")?,
        anon_kib: kib("RssAnon:")?,
    })
}

/// A process's CPU time, clock ticks: `utime + stime` of `/proc/<pid>/stat`
/// (proc(5)); 0 if it cannot be read.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 14th and 15th fields of the line.
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            field(11).unwrap_or(0) + field(12).unwrap_or(0)
        })
        .unwrap_or(0)
}

async fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .await
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A node's `/metrics`, and the time it took to answer.
struct Scraped {
    ms: f64,
    text: String,
}

impl Scraped {
    /// The sum of the series of `family`.
    fn sum(&self, family: &str) -> f64 {
        let prefix = format!("{family}{{");
        self.text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Scrapes a node's `/metrics`; `None` if it did not answer within
/// `ASK_TIMEOUT`.
async fn scrape(port: u16) -> Option<Scraped> {
    let asked = Instant::now();
    let text = tokio::time::timeout(ASK_TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        Some(text)
    })
    .await
    .ok()??;
    Some(Scraped {
        ms: asked.elapsed().as_secs_f64() * 1000.0,
        text,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

fn max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}

const MIB: f64 = 1024.0;

/// A reading's resident memory per live node, MiB, at `at_s`: the mean
/// and the largest of all of it and of its private part, and how many
/// nodes were alive. Node 2 is left out if it is `wrapped` (`--wrap`).
fn memory_fields(reading: &Reading, wrapped: bool) -> serde_json::Map<String, serde_json::Value> {
    let alive = || {
        let measured = reading.nodes.iter().enumerate();
        measured.filter_map(move |(i, m)| if wrapped && i == 1 { None } else { *m })
    };
    let mut fields = serde_json::Map::new();
    fields.insert("at_s".into(), json!(round(reading.at.as_secs_f64(), 1)));
    fields.insert("alive".into(), json!(alive().count()));
    let mut part = |name: &str, kib: fn(&Memory) -> u64| {
        let mib = || alive().map(|m| kib(&m) as f64 / MIB);
        fields.insert(format!("{name}_mean_mib"), json!(round(mean(mib()), 1)));
        fields.insert(format!("{name}_max_mib"), json!(round(max(mib()), 1)));
    };
    part("rss", |m| m.rss_kib);
    part("anon", |m| m.anon_kib);
    fields
}

/// The report, and what failed if something did.
fn report(
    args: &ScaleArgs,
    started_in: Duration,
    complete_at: &[Option<Duration>],
    samples: &[Sample],
    readings: &[Reading],
    clock_tick: f64,
) -> (serde_json::Value, Option<String>) {
    let n = complete_at.len();
    let incomplete = complete_at.iter().filter(|c| c.is_none()).count();
    let last = samples.last().expect("one sample at least");
    let dead = last.nodes.iter().filter(|s| !s.alive).count();
    let all_complete = (incomplete == 0).then(|| {
        complete_at
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or_default()
    });
    let sample_at = |mark: Duration| samples.iter().find(|s| s.at >= mark);
    let wrapped = args.wrap.is_some();
    // A mark's reading: the first at or after it (read on the dot, so
    // within milliseconds of it unless the machine stalls the reader).
    let reading_at = |mark: Duration| readings.iter().find(|r| r.at >= mark);
    // The reading's own time as `read_at_s`, the mark's as `at_s`.
    let mark = |at_s: serde_json::Value, reading: &Reading| {
        let mut fields = memory_fields(reading, wrapped);
        let read_at = fields.insert("at_s".into(), at_s);
        fields.insert("read_at_s".into(), read_at.into());
        serde_json::Value::Object(fields)
    };
    let memory: Vec<serde_json::Value> = MEMORY_MARKS
        .iter()
        .filter_map(|&s| Some(mark(json!(s), reading_at(Duration::from_secs(s))?)))
        .collect();
    // Once every node has joined: the first reading after the last book
    // completed, where growth from joining ends.
    let joined =
        all_complete.and_then(|at| Some(mark(json!(round(at.as_secs_f64(), 1)), reading_at(at)?)));
    let series: Vec<serde_json::Value> = readings
        .iter()
        .map(|reading| serde_json::Value::Object(memory_fields(reading, wrapped)))
        .collect();
    // Steady state: from 1 min on if the run is at least 2 min long,
    // else from the first sample.
    let from = if args.duration >= 120 {
        sample_at(Duration::from_secs(60)).unwrap_or(&samples[0])
    } else {
        &samples[0]
    };
    let window = last.at.saturating_sub(from.at).as_secs_f64();
    let pairs = || {
        from.nodes
            .iter()
            .zip(&last.nodes)
            .filter(|(a, b)| a.alive && b.alive && b.measured)
    };
    let (cpu_core_percent, cpu_ms_per_heartbeat, bytes_per_s, heartbeats_per_s) = if window > 0.0 {
        let cpu_s: Vec<f64> = pairs()
            .map(|(a, b)| b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / clock_tick)
            .collect();
        let heartbeats: f64 = pairs()
            .map(|(a, b)| (b.heartbeats - a.heartbeats).max(0.0))
            .sum();
        let cpu_total: f64 = cpu_s.iter().sum();
        (
            mean(cpu_s.iter().map(|s| 100.0 * s / window)),
            (heartbeats > 0.0).then(|| 1000.0 * cpu_total / heartbeats),
            mean(pairs().map(|(a, b)| (b.bytes - a.bytes).max(0.0) / window)),
            mean(pairs().map(|(a, b)| (b.heartbeats - a.heartbeats).max(0.0) / window)),
        )
    } else {
        (0.0, None, 0.0, 0.0)
    };
    let gossip_dropped_per_s = if window > 0.0 {
        mean(pairs().map(|(a, b)| (b.gossip_dropped - a.gossip_dropped).max(0.0) / window))
    } else {
        0.0
    };
    let answered = |f: fn(&Seen) -> Option<f64>| {
        let asked = samples.iter().map(|s| s.nodes.len()).sum::<usize>();
        let latencies: Vec<f64> = samples
            .iter()
            .flat_map(|s| s.nodes.iter().filter_map(f))
            .collect();
        json!({
            "asked": asked,
            "failed": asked - latencies.len(),
            "max_ms": round(max(latencies.iter().copied()), 1),
        })
    };
    let report = json!({
        "nodes": n,
        "heartbeat_interval_s": args.heartbeat_interval,
        "duration_s": args.duration,
        "cores": std::thread::available_parallelism().map_or(1, |c| c.get()),
        "node_args": args.node_args,
        "started_in_s": round(started_in.as_secs_f64(), 1),
        "books_complete_s": all_complete.map(|d| round(d.as_secs_f64(), 1)),
        "books_incomplete": incomplete,
        "dead": dead,
        "memory": memory,
        "memory_when_books_complete": joined,
        "samples": series,
        "steady_window_s": round(window, 1),
        "cpu_core_percent_mean": round(cpu_core_percent, 1),
        "cpu_ms_per_heartbeat_received": cpu_ms_per_heartbeat.map(|v| round(v, 3)),
        "heartbeats_received_per_node_s": round(heartbeats_per_s, 1),
        "bytes_per_node_s": round(bytes_per_s, 0),
        "gossip_dropped_per_node_s": round(gossip_dropped_per_s, 1),
        "connected_peers_mean": round(mean(last.nodes.iter().filter(|s| s.alive).map(|s| s.peers)), 1),
        "admin": answered(|s| s.admin_ms),
        "metrics": answered(|s| s.scrape_ms),
    });
    let failure = if dead > 0 {
        Some(format!("{dead} of {n} nodes died"))
    } else if incomplete > 0 {
        Some(format!(
            "{incomplete} of {n} address books still incomplete after {} s",
            args.duration
        ))
    } else {
        None
    };
    (report, failure)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn print_table(report: &serde_json::Value) {
    let field = |key: &str| report[key].to_string();
    println!(
        "{} nodes, heartbeat every {} s, {} cores, measured for {} s",
        field("nodes"),
        field("heartbeat_interval_s"),
        field("cores"),
        field("duration_s")
    );
    println!("  all started in {} s", field("started_in_s"));
    match report["books_complete_s"].as_f64() {
        Some(s) => println!("  every address book complete after {s} s"),
        None => println!(
            "  address books still incomplete at the end: {}",
            field("books_incomplete")
        ),
    }
    println!("  dead nodes: {}", field("dead"));
    println!("  resident memory per node (MiB), all / private (anonymous):");
    // The marks, and the reading after the last book completed, in time.
    let mut lines: Vec<(f64, String, &serde_json::Value)> = report["memory"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["read_at_s"].as_f64().unwrap_or(0.0), String::new(), m))
        .collect();
    let joined = &report["memory_when_books_complete"];
    if let Some(read_at) = joined["read_at_s"].as_f64() {
        let label = format!(" (books complete at {} s)", joined["at_s"]);
        lines.push((read_at, label, joined));
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (read_at, label, mark) in lines {
        println!(
            "    at {read_at:>5} s: mean {:>6} / {:>6}, max {:>6} / {:>6}{label}",
            mark["rss_mean_mib"], mark["anon_mean_mib"], mark["rss_max_mib"], mark["anon_max_mib"]
        );
    }
    println!(
        "  steady state (last {} s): CPU {} % of a core per node, {} ms per heartbeat received, {} heartbeats/s and {} bytes/s per node",
        field("steady_window_s"),
        field("cpu_core_percent_mean"),
        field("cpu_ms_per_heartbeat_received"),
        field("heartbeats_received_per_node_s"),
        field("bytes_per_node_s")
    );
    println!(
        "  connected peers per node at the end: {}; GossipSub messages dropped (queue full or late): {} per node per s",
        field("connected_peers_mean"),
        field("gossip_dropped_per_node_s")
    );
    for kind in ["admin", "metrics"] {
        println!(
            "  {kind}: {} asked, {} failed, slowest {} ms",
            report[kind]["asked"], report[kind]["failed"], report[kind]["max_ms"]
        );
    }
}
