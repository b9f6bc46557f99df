//! `subnet`: run and inspect the nodes of a subnet.
//!
//! ```text
//! subnet keygen --out node.key
//! subnet node --config node.toml [flags]
//! subnet call <multiaddr | peer id> <payload> [--key member.key]
//! subnet peers <node multiaddr> [--key member.key]
//! subnet registry --chain-rpc <url> --subnet-id <n>
//! subnet registration --key node.key [--address <multiaddr>]
//! subnet demo [--nodes 4]
//! subnet scale [--nodes 50] [--heartbeat-interval 15] [--duration 300]
//! ```
//!
//! Every user error prints one line naming the problem and exits with 1.

mod config;
mod demo;
#[cfg(feature = "chain")]
mod registry;
mod scale;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use config::NodeConfig;
use libp2p::multiaddr::Protocol;
#[cfg(feature = "chain")]
use subnet::registry::hypertensor as chain;
use subnet::{
    Multiaddr, Node, NodeBuilder,
    admin::{Admin, PeersRequest},
    heartbeat, keys,
    registry::FileRegistry,
    task::{TaskProtocol, TaskRequest},
};

#[derive(Parser)]
#[command(
    name = "subnet",
    version,
    about = "Run and inspect the nodes of a subnet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new Ed25519 key file (Python template format) and print its peer id.
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a node until Ctrl-C or SIGTERM.
    Node(Box<NodeArgs>),
    /// Call the task protocol on a node and print the result.
    Call {
        /// The node: a multiaddr ending in /p2p/<peer id>, or a peer id to
        /// find through the --bootstrap peers.
        destination: Option<String>,
        /// The payload.
        payload: Option<String>,
        /// A peer to connect to first and ask where a peer id lives: a
        /// multiaddr ending in /p2p/<peer id> (repeatable).
        #[arg(long)]
        bootstrap: Vec<String>,
        /// The subnet's id, for its DHT (as `subnet node`'s; default 1).
        #[arg(long, default_value_t = 1)]
        subnet_id: u64,
        /// Call this many times, one after another, on the same
        /// connection; each call's time and path (direct or relayed) go
        /// to stderr.
        #[arg(long)]
        count: Option<u32>,
        /// Wait this many milliseconds between two calls of --count.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Never upgrade a relayed connection by hole punching (DCUtR).
        #[arg(long)]
        no_hole_punching: bool,
        /// Listen here while calling (repeatable): with a fixed port,
        /// hole punching through this host's NAT can reach the caller.
        #[arg(long)]
        listen: Vec<String>,
        /// Call as this identity (a key file), e.g. a registered member's,
        /// which a gated node admits; default: a new identity.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Show what a running node's address book holds.
    Peers {
        /// The node: a multiaddr ending in /p2p/<peer id> (on this machine).
        node: Option<String>,
        /// Ask as this identity (a key file), e.g. a registered member's,
        /// which a gated node admits; default: a new identity.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print what the chain lists for a subnet: nodes, classes, identities,
    /// addresses, bootnodes, and the entries a node would skip.
    #[cfg(feature = "chain")]
    Registry {
        /// The chain node's JSON-RPC URL (http://, https://, ws://, wss://).
        #[arg(long)]
        chain_rpc: String,
        /// The subnet's id.
        #[arg(long)]
        subnet_id: u32,
        /// The chain's SubnetNodeInfo layout (default: detected).
        #[arg(long)]
        chain_layout: Option<chain::Layout>,
    },
    /// Print what a node registers on chain: its peer id as the chain
    /// stores it and its multiaddr in binary form.
    #[cfg(feature = "chain")]
    Registration {
        /// The node's key file.
        #[arg(long)]
        key: PathBuf,
        /// The address other nodes reach it at (one the chain accepts: TCP
        /// or WebSocket over ip4, ip6 or dns; no QUIC).
        #[arg(long)]
        address: Option<String>,
    },
    /// Run a local subnet in this process and show its nodes find and call each other.
    Demo {
        /// How many nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
    },
    /// Run a subnet of N node processes on this machine and measure it:
    /// time until every address book is complete, memory, CPU and traffic
    /// per node, and whether every node stays answerable.
    Scale(scale::ScaleArgs),
}

#[derive(clap::Args)]
struct NodeArgs {
    /// A TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Key file (created by `subnet keygen`).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Listen multiaddr (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    /// Bootstrap peer multiaddr, ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    bootstrap: Vec<String>,
    /// The subnet's id.
    #[arg(long)]
    subnet_id: Option<u64>,
    /// This node's subnet node id.
    #[arg(long)]
    subnet_node_id: Option<u64>,
    /// Registry file shared by the subnet's nodes.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Seconds between two heartbeats.
    #[arg(long)]
    heartbeat_interval: Option<f64>,
    /// Peers to stay connected to at most; above it the least recently
    /// used are disconnected (default 64).
    #[arg(long)]
    max_peers: Option<usize>,
    /// Serve Prometheus metrics at this address, e.g. 127.0.0.1:9100.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Read the registry from the Hypertensor chain at this JSON-RPC URL
    /// (http://, https://, ws://, wss://), for the subnet of --subnet-id.
    #[cfg(feature = "chain")]
    #[arg(long)]
    chain_rpc: Option<String>,
    /// The chain's SubnetNodeInfo layout: coldkey,
    /// coldkey-optional-reputation, validator, validator-optional-peer
    /// (default: detected from the first answer).
    #[cfg(feature = "chain")]
    #[arg(long)]
    chain_layout: Option<chain::Layout>,
    /// Nodes below this class are not members: registered (default), idle,
    /// included, validator.
    #[cfg(feature = "chain")]
    #[arg(long)]
    chain_min_class: Option<chain::NodeClass>,
    /// With gating, ask the chain (network_proofOfStake) about a peer its
    /// node list does not list, instead of refusing it outright.
    #[cfg(feature = "chain")]
    #[arg(long)]
    chain_proof_of_stake: bool,
    /// Refuse connections from peers outside the registry.
    #[arg(long)]
    gating: bool,
    /// With gating, admit everyone until the registry is first read, and a
    /// peer the chain could not be asked about (default: refuse them).
    #[arg(long)]
    gating_fail_open: bool,
    /// Relay for other peers (those behind NAT).
    #[arg(long)]
    relay_server: bool,
    /// A relay to reserve a slot on and be called through, for a node
    /// behind NAT: a multiaddr ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    relay: Vec<String>,
    /// An address other hosts reach this node at that its listeners cannot
    /// know: a public IP in front of it, a forwarded port (repeatable).
    #[arg(long)]
    external_address: Vec<String>,
    /// Neither publish nor read heartbeats.
    #[arg(long)]
    no_heartbeat: bool,
    /// Also read and publish the Python subnet template's JSON heartbeat
    /// (topic "heartbeat", once per epoch), to sit among Python nodes.
    #[arg(long)]
    template_heartbeat: bool,
    /// The template's epoch: the subnet's slot, in blocks (default 3, the
    /// template's mock chain).
    #[arg(long)]
    template_slot: Option<u64>,
    /// The template's epoch length, in 6 s blocks (default 20).
    #[arg(long)]
    template_epoch_length: Option<u64>,
    /// Speak GossipSub under this protocol id only, e.g. /meshsub/2.0.0 as
    /// the Python subnet template does.
    #[arg(long)]
    gossipsub_protocol: Option<String>,
    /// Offer Noise under /pos-transport/1.0.0 too, as Python template
    /// nodes with proof of stake require.
    #[arg(long)]
    pos_transport: bool,
    /// Neither serve nor use peer exchange.
    #[arg(long)]
    no_peer_exchange: bool,
    /// Run no Kademlia.
    #[arg(long)]
    no_kademlia: bool,
    /// Never upgrade relayed connections by hole punching (DCUtR).
    #[arg(long)]
    no_hole_punching: bool,
    /// Log lines as text (default) or as JSON objects, one per line, for
    /// log shippers.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// How log lines are written (stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line: timestamp, level, target, fields, spans.
    Json,
}

/// Writes `text` to stdout. A reader that stopped reading (`subnet peers |
/// head`) is not an error: what it did not read is dropped; any other
/// write error is one.
fn print_out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// How long `call` and `peers` wait for an answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line: clap's first line names the problem.
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = if matches!(cli.command, Command::Node(_)) {
            "subnet=info,warn,libp2p_kad=error"
        } else {
            "warn"
        };
        level.into()
    });
    // The flag, else the config file's `log_format` (read again, and any
    // error in it reported, when the node starts).
    let log_format = match &cli.command {
        Command::Node(args) => args.log_format.or_else(|| {
            args.config
                .as_deref()
                .and_then(|path| NodeConfig::read(path).ok())
                .and_then(|config| config.log_format)
        }),
        _ => None,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if log_format == Some(LogFormat::Json) {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { out } => {
            let keypair = keys::generate(&out).map_err(|e| e.to_string())?;
            println!("{}", keypair.public().to_peer_id());
            Ok(())
        }
        Command::Node(args) => node(*args).await,
        Command::Call {
            destination,
            payload,
            bootstrap,
            subnet_id,
            count,
            interval_ms,
            no_hole_punching,
            listen,
            key,
        } => {
            let destination = destination.ok_or(
                "missing destination: give the node's multiaddr ending in /p2p/<peer id>, or its peer id",
            )?;
            let payload = payload.ok_or("missing payload: give the text to send")?;
            let mut builder = with_key(Node::builder(), key.as_deref())?
                .subnet(subnet_id)
                .hole_punching(!no_hole_punching);
            for address in &listen {
                builder = builder.listen(parse_multiaddr(address, "listen")?);
            }
            let mut bootstrap_addresses = Vec::new();
            for address in &bootstrap {
                let address: Multiaddr = address
                    .parse()
                    .map_err(|e| format!("bootstrap `{address}` is not a multiaddr: {e}"))?;
                builder = builder.bootstrap(address.clone());
                bootstrap_addresses.push(address);
            }
            if destination.parse::<subnet::PeerId>().is_ok() && bootstrap_addresses.is_empty() {
                return Err(
                    "a peer id alone needs --bootstrap <multiaddr>: a peer to ask where it lives"
                        .into(),
                );
            }
            let node = builder.build().await.map_err(|e| e.to_string())?;
            // Connected to the bootstrap peers first, so that a peer id can
            // be asked of them.
            let mut reached = bootstrap_addresses.is_empty();
            for address in bootstrap_addresses {
                match node.connect(address.clone(), CLIENT_TIMEOUT).await {
                    Ok(()) => reached = true,
                    Err(error) => eprintln!("warning: bootstrap {address}: {error}"),
                }
            }
            if !reached {
                node.shutdown().await;
                return Err("no bootstrap peer could be reached".into());
            }
            let request = TaskRequest {
                task_id: "cli".into(),
                payload: payload.into_bytes().into(),
            };
            let client = node
                .client::<TaskProtocol>()
                .with_config(subnet::ProtocolConfig::default().with_call_timeout(CLIENT_TIMEOUT));
            let calls = count.unwrap_or(1).max(1);
            let mut answered = Ok(());
            for i in 1..=calls {
                if i > 1 {
                    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
                }
                let called = client.call_detailed(&destination, request.clone()).await;
                answered = called.map_err(|e| e.to_string()).and_then(|called| {
                    if count.is_some() {
                        let path = if called.relayed { "relayed" } else { "direct" };
                        eprintln!(
                            "call {i}/{calls}: {:.3} ms {path}",
                            called.elapsed.as_secs_f64() * 1e3
                        );
                    }
                    let result = called.response.outcome().map_err(|e| e.to_string())?;
                    if result.is_empty() {
                        eprintln!("note: the response's result is empty");
                    }
                    println!("{}", String::from_utf8_lossy(&result));
                    Ok(())
                });
                if answered.is_err() {
                    break;
                }
            }
            node.shutdown().await;
            answered
        }
        Command::Peers { node: target, key } => {
            let target =
                target.ok_or("missing node: give the node's multiaddr ending in /p2p/<peer id>")?;
            let node = with_key(Node::builder(), key.as_deref())?
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let client = node
                .client::<Admin>()
                .with_config(subnet::ProtocolConfig::default().with_call_timeout(CLIENT_TIMEOUT));
            let answer = client.call(&target, PeersRequest {}).await;
            node.shutdown().await;
            let answer = answer.map_err(|e| e.to_string())?;
            use std::fmt::Write as _;
            let mut table = format!(
                "address book of {} ({} peers)\n{:<54} {:>7} {:<13} {:<40} {:>8}\n",
                answer.peer_id,
                answer.peers.len(),
                "peer",
                "node id",
                "source",
                "address",
                "age"
            );
            for peer in answer.peers {
                for (i, address) in peer.addresses.iter().enumerate() {
                    let (id, node_id) = if i == 0 {
                        (peer.peer_id.as_str(), peer.subnet_node_id.to_string())
                    } else {
                        ("", String::new())
                    };
                    let _ = writeln!(
                        table,
                        "{:<54} {:>7} {:<13} {:<40} {:>7.1}s",
                        id,
                        node_id,
                        address.source,
                        address.address,
                        address.age_ms as f64 / 1000.0
                    );
                }
            }
            print_out(&table)
        }
        #[cfg(feature = "chain")]
        Command::Registry {
            chain_rpc,
            subnet_id,
            chain_layout,
        } => registry::print(chain_rpc, subnet_id, chain_layout).await,
        #[cfg(feature = "chain")]
        Command::Registration { key, address } => registry::registration(&key, address.as_deref()),
        Command::Demo { nodes } => demo::run(nodes).await,
        Command::Scale(args) => scale::run(args).await,
    }
}

async fn node(args: NodeArgs) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => NodeConfig::read(path)?,
        None => NodeConfig::default(),
    };
    let config = NodeConfig {
        key: args.key.or(file.key),
        listen: if args.listen.is_empty() {
            file.listen
        } else {
            args.listen
        },
        bootstrap: if args.bootstrap.is_empty() {
            file.bootstrap
        } else {
            args.bootstrap
        },
        subnet_id: args.subnet_id.or(file.subnet_id),
        subnet_node_id: args.subnet_node_id.or(file.subnet_node_id),
        registry: args.registry.or(file.registry),
        #[cfg(feature = "chain")]
        chain_rpc: args.chain_rpc.or(file.chain_rpc),
        #[cfg(feature = "chain")]
        chain_layout: args.chain_layout.or(file.chain_layout),
        #[cfg(feature = "chain")]
        chain_min_class: args.chain_min_class.or(file.chain_min_class),
        #[cfg(feature = "chain")]
        chain_proof_of_stake: Some(
            args.chain_proof_of_stake || file.chain_proof_of_stake.unwrap_or(false),
        ),
        gating_fail_open: Some(args.gating_fail_open || file.gating_fail_open.unwrap_or(false)),
        heartbeat_interval: args.heartbeat_interval.or(file.heartbeat_interval),
        max_peers: args.max_peers.or(file.max_peers),
        metrics: args.metrics.or(file.metrics),
        gating: Some(args.gating || file.gating.unwrap_or(false)),
        relay_server: Some(args.relay_server || file.relay_server.unwrap_or(false)),
        relays: if args.relay.is_empty() {
            file.relays
        } else {
            args.relay
        },
        external_addresses: if args.external_address.is_empty() {
            file.external_addresses
        } else {
            args.external_address
        },
        heartbeat: Some(!args.no_heartbeat && file.heartbeat.unwrap_or(true)),
        template_heartbeat: Some(
            args.template_heartbeat || file.template_heartbeat.unwrap_or(false),
        ),
        template_slot: args.template_slot.or(file.template_slot),
        template_epoch_length: args.template_epoch_length.or(file.template_epoch_length),
        gossipsub_protocol: args.gossipsub_protocol.or(file.gossipsub_protocol),
        pos_transport: Some(args.pos_transport || file.pos_transport.unwrap_or(false)),
        peer_exchange: Some(!args.no_peer_exchange && file.peer_exchange.unwrap_or(true)),
        kademlia: Some(!args.no_kademlia && file.kademlia.unwrap_or(true)),
        hole_punching: Some(!args.no_hole_punching && file.hole_punching.unwrap_or(true)),
        log_format: args.log_format.or(file.log_format),
    };
    let mut builder = Node::builder();
    if let Some(path) = &config.key {
        builder = builder.keypair(keys::read(path).map_err(|e| e.to_string())?);
    }
    let listen = if config.listen.is_empty() {
        vec!["/ip4/127.0.0.1/tcp/0".to_owned()]
    } else {
        config.listen.clone()
    };
    for address in &listen {
        builder = builder.listen(parse_multiaddr(address, "listen")?);
    }
    let mut bootstrap = Vec::new();
    for address in &config.bootstrap {
        let address = parse_multiaddr(address, "bootstrap")?;
        builder = builder.bootstrap(address.clone());
        bootstrap.push(address);
    }
    let subnet_id = config.subnet_id.unwrap_or(1);
    let subnet_node_id = config.subnet_node_id.unwrap_or(0);
    builder = builder.metrics_label(subnet_node_id.to_string());
    let mut beat = heartbeat::Config::new(subnet_id, subnet_node_id);
    if let Some(interval) = config.heartbeat_interval()? {
        beat = beat.with_epoch(interval * 4, 4);
    }
    if config.template_heartbeat == Some(true) {
        if config.heartbeat == Some(false) {
            return Err("template_heartbeat needs heartbeats: drop --no-heartbeat".into());
        }
        let mut template = subnet::template_heartbeat::Config::default();
        if let Some(slot) = config.template_slot {
            template.slot = slot;
        }
        if let Some(length) = config.template_epoch_length {
            if length == 0 {
                return Err("template_epoch_length must be at least 1 block".into());
            }
            template.epoch_length = length;
        }
        beat = beat.with_template(template);
    }
    if let Some(protocol) = &config.gossipsub_protocol {
        builder = builder.gossipsub_protocol(protocol.clone());
    }
    if config.pos_transport == Some(true) {
        builder = builder.noise_protocol_names(vec![
            subnet::security::NOISE,
            subnet::security::POS_TRANSPORT,
        ]);
    }
    if config.heartbeat != Some(false) {
        builder = builder.heartbeat(beat);
    } else {
        builder = builder.subnet(subnet_id);
    }
    if let Some(peers) = config.max_peers {
        builder = builder.max_peers(peers);
    }
    builder = builder
        .peer_exchange(config.peer_exchange != Some(false))
        .kademlia(config.kademlia != Some(false));
    #[cfg(feature = "chain")]
    if config.chain_rpc.is_some() && config.registry.is_some() {
        return Err("give one registry: --registry (a file) or --chain-rpc (the chain)".into());
    }
    #[cfg(feature = "chain")]
    if config.chain_rpc.is_some() && config.subnet_id.is_none() {
        return Err("--chain-rpc needs --subnet-id: the subnet whose nodes the chain lists".into());
    }
    if let Some(path) = &config.registry {
        if !path.exists() {
            return Err(format!("registry file {} does not exist", path.display()));
        }
        builder = builder.registry(FileRegistry::new(path));
    }
    #[cfg(feature = "chain")]
    let on_chain = config.chain_rpc.is_some();
    #[cfg(not(feature = "chain"))]
    let on_chain = false;
    #[cfg(feature = "chain")]
    if let Some(url) = &config.chain_rpc {
        let subnet = u32::try_from(subnet_id)
            .map_err(|_| format!("subnet id {subnet_id} is too large for the chain (u32)"))?;
        let mut chain = chain::HypertensorConfig::new(url.clone(), subnet);
        chain.layout = config.chain_layout;
        chain.min_class = config
            .chain_min_class
            .unwrap_or(chain::NodeClass::Registered);
        chain.proof_of_stake = config.chain_proof_of_stake == Some(true);
        let registry = chain::HypertensorRegistry::new(chain).map_err(|e| e.to_string())?;
        builder = builder.registry(registry);
    }
    if config.gating == Some(true) {
        if config.registry.is_none() && !on_chain {
            return Err("gating needs a registry: give --registry or --chain-rpc".into());
        }
        builder = builder
            .gating(true)
            .gating_fail_open(config.gating_fail_open == Some(true));
    }
    builder = builder
        .relay_server(config.relay_server == Some(true))
        .hole_punching(config.hole_punching != Some(false));
    for address in &config.relays {
        builder = builder.relay(parse_multiaddr(address, "relay")?);
    }
    for address in &config.external_addresses {
        builder = builder.external_address(parse_multiaddr(address, "external address")?);
    }
    let server = match config.metrics {
        Some(address) => Some(
            subnet::metrics::serve_prometheus(address)
                .map_err(|e| format!("cannot serve metrics on {address}: {e}"))?,
        ),
        None => None,
    };
    let node = start(builder).await?;
    if let Some(server) = &server {
        server.watch(node.health());
    }
    // One list can serve a whole subnet: a node skips its own entry, and a
    // node that is itself a bootstrap peer starts even if the others are
    // not up yet. Any other node needs at least one of them.
    let own = |address: &Multiaddr| address.iter().any(|p| p == Protocol::P2p(node.peer_id()));
    let bootnode = bootstrap.iter().any(own);
    let others: Vec<&Multiaddr> = bootstrap.iter().filter(|a| !own(a)).collect();
    let outcomes =
        futures::future::join_all(others.iter().map(|address| reach(&node, address))).await;
    let mut failures = Vec::new();
    let mut reached = false;
    for (address, outcome) in others.iter().zip(outcomes) {
        match outcome {
            Ok(()) => reached = true,
            Err(e) => failures.push(format!("cannot reach bootstrap peer {address}: {e}")),
        }
    }
    if !reached && !bootnode && !failures.is_empty() {
        node.shutdown().await;
        return Err(failures.join("; "));
    }
    for failure in failures {
        eprintln!("warning: {failure}");
    }
    for address in node.addresses() {
        println!("listening on {address}");
    }
    if let Some(server) = &server {
        println!("metrics on http://{}/metrics", server.local_addr());
    }
    wait_for_signal().await?;
    println!("stopping");
    node.shutdown().await;
    println!("stopped");
    Ok(())
}

/// How long a node keeps trying a bootstrap peer that did not refuse the
/// connection outright but failed it (reset, closed, timed out): busy,
/// most likely at its limit of connections being set up (64) in a burst
/// of joins.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(30);

/// Connects to a bootstrap peer. A connection refused (nothing listens
/// there) or an address that cannot be dialed is final at once; any other
/// failure is tried again (after 0.1 s, doubling to 2 s, with jitter) for
/// up to `BOOTSTRAP_RETRY`.
async fn reach(node: &Node, address: &Multiaddr) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + BOOTSTRAP_RETRY;
    let mut wait = Duration::from_millis(100);
    loop {
        let error = match node.connect(address.clone(), CLIENT_TIMEOUT).await {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        };
        // Nothing listens there, or the address cannot be dialed: final.
        // Anything else (reset, closed, timed out) may be a busy peer.
        let busy = !(error.contains("refused") || error.to_lowercase().contains("not supported"));
        let jitter = Duration::from_millis(rand::random::<u64>() % wait.as_millis() as u64);
        if !busy || tokio::time::Instant::now() + wait + jitter > deadline {
            return Err(error);
        }
        tokio::time::sleep(wait + jitter).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// Starts a node serving the task and admin protocols.
async fn start(builder: NodeBuilder) -> Result<Node, String> {
    let node = builder.build().await.map_err(|e| e.to_string())?;
    node.register(TaskProtocol)
        .await
        .map_err(|e| e.to_string())?;
    node.register(Admin::new(node.address_book().clone(), node.peer_id()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(node)
}

/// Uses the identity in `key`, if given.
fn with_key(builder: NodeBuilder, key: Option<&std::path::Path>) -> Result<NodeBuilder, String> {
    Ok(match key {
        Some(path) => builder.keypair(keys::read(path).map_err(|e| e.to_string())?),
        None => builder,
    })
}

fn parse_multiaddr(text: &str, what: &str) -> Result<Multiaddr, String> {
    text.parse()
        .map_err(|e| format!("{what} address `{text}` is not a multiaddr: {e}"))
}

pub(crate) async fn wait_for_signal() -> Result<(), String> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
