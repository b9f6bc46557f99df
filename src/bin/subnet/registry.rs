//! `subnet registry` and `subnet registration`: what the chain lists for a
//! subnet, and what a node registers there.

use std::path::Path;

use subnet::{
    Multiaddr, keys,
    registry::hypertensor::{self as chain, HypertensorConfig, HypertensorRegistry, Layout},
};

/// Prints the chain's nodes, identities and addresses for `subnet_id`.
pub(crate) async fn print(
    url: String,
    subnet_id: u32,
    layout: Option<Layout>,
) -> Result<(), String> {
    let mut config = HypertensorConfig::new(url.clone(), subnet_id);
    config.layout = layout;
    let registry = HypertensorRegistry::new(config).map_err(|e| e.to_string())?;
    let snapshot = registry.read().await.map_err(|e| e.to_string())?;
    let layout = snapshot
        .layout
        .map_or("none (no nodes)".to_owned(), |l| l.to_string());
    println!(
        "subnet {subnet_id} at {url}: {} nodes, {} official bootnodes, layout {layout}",
        snapshot.nodes.len(),
        snapshot.bootnodes.len()
    );
    println!(
        "{:>7} {:<10} {:>5} {:<15} {:<54} address",
        "node id", "class", "epoch", "identity", "peer id"
    );
    for node in &snapshot.nodes {
        let class = node.classification.node_class.to_string();
        let epoch = node.classification.start_epoch.to_string();
        let id = node.subnet_node_id.to_string();
        if node.identities.is_empty() {
            row(&id, &class, &epoch, None);
        }
        for identity in &node.identities {
            row(&id, &class, &epoch, Some(identity));
        }
    }
    for identity in &snapshot.bootnodes {
        row("-", "-", "-", Some(identity));
    }
    for skipped in &snapshot.skipped {
        println!(
            "skipped: node {} peer {}: {}",
            skipped.subnet_node_id, skipped.peer_id, skipped.reason
        );
    }
    if snapshot.nodes.is_empty() && snapshot.bootnodes.is_empty() {
        println!(
            "note: the chain lists no node and no bootnode for subnet {subnet_id}: is the subnet id right?"
        );
    }
    Ok(())
}

/// Prints the peer id bytes and binary multiaddr a node registers.
pub(crate) fn registration(key: &Path, address: Option<&str>) -> Result<(), String> {
    let peer = keys::read(key)
        .map_err(|e| e.to_string())?
        .public()
        .to_peer_id();
    let registered = match address {
        None => None,
        Some(address) => {
            let address: Multiaddr = address
                .parse()
                .map_err(|e| format!("`{address}` is not a multiaddr: {e}"))?;
            let registered = chain::registration_multiaddr(&address, &peer).map_err(|e| {
                if e.contains("does not accept") {
                    format!("cannot register {e}: give a TCP or WebSocket address")
                } else {
                    format!("cannot register {e}")
                }
            })?;
            Some(registered)
        }
    };
    let text = peer.to_base58();
    println!("peer_id: {text}");
    println!(
        "peer_id bytes (what the chain stores): 0x{}",
        hex(text.as_bytes())
    );
    println!("peer_id as Vec<u8>: {:?}", text.as_bytes());
    if let Some(registered) = registered {
        println!("multiaddr: {registered}");
        println!("multiaddr bytes (binary): 0x{}", hex(&registered.to_vec()));
    }
    Ok(())
}

/// One line of `subnet registry`'s table.
fn row(node: &str, class: &str, epoch: &str, identity: Option<&chain::Identity>) {
    let text = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    println!(
        "{node:>7} {class:<10} {epoch:>5} {:<15} {:<54} {}",
        identity.map_or("-", |i| i.role.name()),
        text(identity.map(|i| i.peer_id.to_string())),
        text(identity.and_then(|i| i.address.as_ref().map(|a| a.to_string()))),
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
