//! The chain's address policy: which multiaddrs the chain takes
//! (hypertensor-blockchain `utilities/multiaddr.rs`: `ip4`, `ip6`, `dns4`,
//! `dns6`, `dnsaddr`, `tcp`, `udp`, `ws`, `wss` and `p2p`) and which another
//! node could dial, both for an address read from the chain
//! ([`multiaddr`]) and for one a node is about to register
//! ([`registration_multiaddr`]).

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Parses a registered multiaddr (binary, or text starting with `/`) of
/// `peer`: only the chain's protocols, a `/p2p` suffix (if any) naming
/// `peer`, which is removed.
pub fn multiaddr(bytes: &[u8], peer: &PeerId) -> Result<Multiaddr, String> {
    let mut address = if bytes.first() == Some(&b'/') {
        std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8 text".to_owned())?
            .parse::<Multiaddr>()
            .map_err(|e| format!("not a multiaddr: {e}"))?
    } else {
        Multiaddr::try_from(bytes.to_vec()).map_err(|e| format!("not a binary multiaddr: {e}"))?
    };
    check_protocols(&address)?;
    check_dialable(&address)?;
    if let Some(Protocol::P2p(named)) = address.iter().last() {
        if named != *peer {
            return Err(format!("`{address}` names another peer"));
        }
        address.pop();
    }
    Ok(address)
}

/// The multiaddr `peer` registers on chain to be reached at `address`: only
/// protocols the chain accepts, ending in `/p2p/<peer>` (appended if
/// absent), as the chain requires. Its binary form is `to_vec()`.
pub fn registration_multiaddr(address: &Multiaddr, peer: &PeerId) -> Result<Multiaddr, String> {
    check_protocols(address)?;
    check_dialable(address)?;
    match address.iter().last() {
        None => Err("empty multiaddr".to_owned()),
        Some(Protocol::P2p(named)) if named != *peer => {
            Err(format!("`{address}` ends in another peer's id, not {peer}"))
        }
        Some(Protocol::P2p(_)) => Ok(address.clone()),
        Some(_) => Ok(address.clone().with(Protocol::P2p(*peer))),
    }
}

/// Refuses an address no other node could dial: none, an unspecified IP
/// (`0.0.0.0`, `::`), port 0, or no TCP port (a bare UDP port is nothing
/// the chain's protocols can run over; `/dnsaddr` needs none).
fn check_dialable(address: &Multiaddr) -> Result<(), String> {
    if address.iter().next().is_none() {
        return Err("empty multiaddr".to_owned());
    }
    for protocol in address.iter() {
        match protocol {
            Protocol::Ip4(ip) if ip.is_unspecified() => {
                return Err(format!(
                    "`{address}`: {ip} is no host another node can reach"
                ));
            }
            Protocol::Ip6(ip) if ip.is_unspecified() => {
                return Err(format!(
                    "`{address}`: {ip} is no host another node can reach"
                ));
            }
            Protocol::Tcp(0) => {
                return Err(format!(
                    "`{address}`: port 0 is no port another node can reach"
                ));
            }
            Protocol::Tcp(_) | Protocol::Dnsaddr(_) => return Ok(()),
            _ => {}
        }
    }
    Err(format!("`{address}` has no TCP port"))
}

/// Refuses a multiaddr with a protocol the chain does not accept.
fn check_protocols(address: &Multiaddr) -> Result<(), String> {
    match address.iter().find(|p| !chain_accepts(p)) {
        Some(other) => Err(format!(
            "`{address}`: the chain does not accept {} (only ip4, ip6, dns4, dns6, dnsaddr, tcp, udp, ws, wss, p2p)",
            other.tag()
        )),
        None => Ok(()),
    }
}

/// Whether the chain's multiaddr check takes this protocol
/// (hypertensor-blockchain `utilities/multiaddr.rs`).
pub fn chain_accepts(protocol: &Protocol<'_>) -> bool {
    matches!(
        protocol,
        Protocol::Ip4(_)
            | Protocol::Ip6(_)
            | Protocol::Dns4(_)
            | Protocol::Dns6(_)
            | Protocol::Dnsaddr(_)
            | Protocol::Tcp(_)
            | Protocol::Udp(_)
            | Protocol::Ws(_)
            | Protocol::Wss(_)
            | Protocol::P2p(_)
    )
}
