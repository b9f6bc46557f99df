//! rust-libp2p's own metrics (the `libp2p-metrics` crate: connections,
//! bandwidth, identify, ping RTT, GossipSub, Kademlia, relay, DCUtR) on a
//! `prometheus-client` registry per node, labelled `node = <label>` as the
//! `subnet_` families are, and rendered into the same `/metrics`
//! exposition.
//!
//! `prometheus-client` writes OpenMetrics text; the exposition is the
//! Prometheus text format (0.0.4) that `metrics-exporter-prometheus`
//! writes. `to_prometheus_text` converts: a counter family `x` becomes
//! `x_total` (its samples are named so already), an info family `x`
//! becomes the gauge `x_info`, `# UNIT` and `# EOF` lines go, and the
//! families of every node are merged under one `# HELP` and `# TYPE` each.
//!
//! A node's registry lives as long as the node: the list here holds weak
//! references, so a stopped node's series leave the exposition.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, Weak},
};

use prometheus_client::{metrics::counter::Counter, registry::Registry};

/// A node's registry of libp2p metrics.
pub(crate) type NodeRegistry = Arc<Mutex<Registry>>;

/// The registries of the process's live nodes.
static REGISTRIES: Mutex<Vec<Weak<Mutex<Registry>>>> = Mutex::new(Vec::new());

/// A registry for a new node's libp2p metrics, labelled `node = label`,
/// rendered by [`render`] while the node holds it.
pub(crate) fn node_registry(label: &str) -> NodeRegistry {
    let labels = [(Cow::Borrowed("node"), Cow::Owned(label.to_owned()))];
    let registry = Arc::new(Mutex::new(Registry::with_labels(labels.into_iter())));
    let mut all = REGISTRIES.lock().expect("registries lock poisoned");
    all.retain(|r| r.strong_count() > 0);
    all.push(Arc::downgrade(&registry));
    registry
}

/// The counter of GossipSub messages received, `libp2p_gossipsub_messages`
/// (`_total` in the exposition), registered as libp2p-metrics registers it
/// (its `gossipsub.rs`): GossipSub is this crate's fixed copy, used
/// directly, so libp2p-metrics' own recorder of its events is not built.
pub(crate) fn gossip_messages(registry: &mut Registry) -> Counter {
    let messages = Counter::default();
    registry
        .sub_registry_with_prefix("libp2p")
        .sub_registry_with_prefix("gossipsub")
        .register("messages", "Number of messages received", messages.clone());
    messages
}

/// The libp2p metrics of every live node, in Prometheus text format.
pub fn render() -> String {
    let live: Vec<NodeRegistry> = REGISTRIES
        .lock()
        .expect("registries lock poisoned")
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut open_metrics = String::new();
    for registry in live {
        let registry = registry.lock().expect("registry lock poisoned");
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut open_metrics, &registry);
    }
    to_prometheus_text(&open_metrics)
}

/// One metric family: its name (as the Prometheus text format names it),
/// help, type and samples.
struct Family {
    name: String,
    help: Option<String>,
    kind: String,
    samples: Vec<String>,
}

/// Converts OpenMetrics text (several registries' worth, without `# EOF`)
/// to the Prometheus text format, merging families of the same name.
pub(crate) fn to_prometheus_text(open_metrics: &str) -> String {
    let mut families: Vec<Family> = Vec::new();
    // The family the lines being read belong to.
    let mut current: Option<usize> = None;
    let mut pending_help: Option<(String, String)> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name.to_owned(), help.to_owned()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            let help = pending_help
                .take()
                .filter(|(n, _)| name.starts_with(n.as_str()))
                .map(|(_, h)| h);
            current = Some(match families.iter().position(|f| f.name == name) {
                Some(i) => i,
                None => {
                    families.push(Family {
                        name,
                        help,
                        kind: kind.to_owned(),
                        samples: Vec::new(),
                    });
                    families.len() - 1
                }
            });
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue; // # UNIT, # EOF
        }
        let Some(i) = current else { continue };
        // Counters' creation times are OpenMetrics only.
        let sample_name = line.split(['{', ' ']).next().unwrap_or_default();
        if sample_name.ends_with("_created") && families[i].kind == "counter" {
            continue;
        }
        families[i].samples.push(line.to_owned());
    }
    let mut text = String::new();
    for family in families {
        if let Some(help) = &family.help {
            text.push_str(&format!("# HELP {} {help}\n", family.name));
        }
        text.push_str(&format!("# TYPE {} {}\n", family.name, family.kind));
        for sample in &family.samples {
            text.push_str(sample);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_metrics_of_two_nodes_become_one_prometheus_family_each() {
        let node_a = "# HELP libp2p_swarm_connections_incoming Number of incoming connections.\n\
            # TYPE libp2p_swarm_connections_incoming counter\n\
            libp2p_swarm_connections_incoming_total{node=\"a\"} 3\n\
            # HELP libp2p_ping_rtt_seconds Ping round-trip time.\n\
            # TYPE libp2p_ping_rtt_seconds histogram\n\
            # UNIT libp2p_ping_rtt_seconds seconds\n\
            libp2p_ping_rtt_seconds_sum{node=\"a\"} 0.5\n\
            libp2p_ping_rtt_seconds_count{node=\"a\"} 2\n\
            libp2p_ping_rtt_seconds_bucket{le=\"+Inf\",node=\"a\"} 2\n\
            # HELP libp2p_identify_build Build.\n\
            # TYPE libp2p_identify_build info\n\
            libp2p_identify_build_info{node=\"a\",version=\"1\"} 1\n";
        let node_b = "# HELP libp2p_swarm_connections_incoming Number of incoming connections.\n\
            # TYPE libp2p_swarm_connections_incoming counter\n\
            libp2p_swarm_connections_incoming_total{node=\"b\"} 1\n\
            libp2p_swarm_connections_incoming_created{node=\"b\"} 1700000000\n\
            # EOF\n";
        let text = to_prometheus_text(&format!("{node_a}{node_b}"));
        assert_eq!(
            text,
            "# HELP libp2p_swarm_connections_incoming_total Number of incoming connections.\n\
             # TYPE libp2p_swarm_connections_incoming_total counter\n\
             libp2p_swarm_connections_incoming_total{node=\"a\"} 3\n\
             libp2p_swarm_connections_incoming_total{node=\"b\"} 1\n\
             # HELP libp2p_ping_rtt_seconds Ping round-trip time.\n\
             # TYPE libp2p_ping_rtt_seconds histogram\n\
             libp2p_ping_rtt_seconds_sum{node=\"a\"} 0.5\n\
             libp2p_ping_rtt_seconds_count{node=\"a\"} 2\n\
             libp2p_ping_rtt_seconds_bucket{le=\"+Inf\",node=\"a\"} 2\n\
             # HELP libp2p_identify_build_info Build.\n\
             # TYPE libp2p_identify_build_info gauge\n\
             libp2p_identify_build_info{node=\"a\",version=\"1\"} 1\n"
        );
    }
}
