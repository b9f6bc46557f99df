//! What an address says about itself: every multiaddr predicate the node
//! uses, in one place (where it is local, dialable, relayed; its relay, its
//! transport; the address without its `/p2p/<peer id>`). Plain functions of
//! a [`Multiaddr`], used by the swarm, the address book, discovery and the
//! caller alike.

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Whether `address` reaches only this host or this link: loopback
/// (127.0.0.0/8, ::1) or link-local (169.254.0.0/16, fe80::/10). Such an
/// address is useless, or wrong, to a peer on another host.
pub fn is_local(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback() || ip.is_link_local(),
        Protocol::Ip6(ip) => ip.is_loopback() || (ip.segments()[0] & 0xffc0) == 0xfe80,
        _ => false,
    })
}

/// Whether `address` is on a loopback interface (127.0.0.0/8 or ::1).
pub fn is_loopback(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Whether `address` is a wildcard (`0.0.0.0`, `::`): a listener on it
/// reports one address per interface.
pub fn is_unspecified(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// Whether `address` can never be dialed, from anywhere: an unspecified
/// (`0.0.0.0`, `::`), multicast or broadcast IP. Such addresses from a
/// remote source (heartbeat, identify, peer exchange, Kademlia) are
/// dropped, as loopback and link-local ones are from other hosts.
pub fn is_undialable(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast(),
        Protocol::Ip6(ip) => ip.is_unspecified() || ip.is_multicast(),
        _ => false,
    })
}

/// Whether a remote source's `address` is worth keeping: dialable, and
/// (unless `local`: it came over a loopback or link-local connection, or
/// the subnet is on one machine) not on a loopback or link-local interface.
pub fn is_believable(address: &Multiaddr, local: bool) -> bool {
    !is_undialable(address) && (local || !is_local(address))
}

/// Whether `address` runs through a relay (`/p2p-circuit`).
pub fn is_circuit(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The relay of a circuit address (`<relay address>/p2p/<relay>/p2p-circuit/...`):
/// its peer id and address.
pub fn relay_of(address: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut relay = Multiaddr::empty();
    let mut relay_peer = None;
    for protocol in address.iter() {
        match protocol {
            Protocol::P2pCircuit => return relay_peer.map(|peer| (peer, relay)),
            Protocol::P2p(peer) => {
                relay_peer = Some(peer);
                relay.push(protocol);
            }
            other => relay.push(other),
        }
    }
    None
}

/// Strips a trailing `/p2p/<peer id>`: the address book stores it as the key.
pub fn without_peer_id(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

/// The transport of a connection at `address`, as a metric label:
/// `relay`, `quic`, `tcp` or `other`.
pub fn transport(address: &Multiaddr) -> &'static str {
    if is_circuit(address) {
        "relay"
    } else if address.iter().any(|p| matches!(p, Protocol::QuicV1)) {
        "quic"
    } else if address.iter().any(|p| matches!(p, Protocol::Tcp(_))) {
        "tcp"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests;
