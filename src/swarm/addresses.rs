//! What a node listens on, kept current: every concrete address of every
//! listener as the swarm reports it (`NewListenAddr`, `ExpiredListenAddr`).
//! A listener on `0.0.0.0` reports one address per interface, and more as
//! interfaces come and go. Written by the swarm actor's event loop; read by
//! the node's handles and the heartbeat.

use std::sync::{Arc, RwLock};

use libp2p::{Multiaddr, multiaddr::Protocol};

/// Listen addresses the node holds at most; more are not recorded.
pub const MAX_LISTEN_ADDRESSES: usize = 64;

/// The node's current listen addresses. Cloning it is cheap; every clone
/// sees the same set. It also holds the external addresses an operator
/// set (a public IP, a forwarded port), which come first.
#[derive(Debug, Clone, Default)]
pub struct ListenAddresses {
    listen: Arc<RwLock<Vec<Multiaddr>>>,
    external: Arc<[Multiaddr]>,
}

impl ListenAddresses {
    /// An empty set, with the operator's `external` addresses.
    pub(crate) fn with_external(external: Vec<Multiaddr>) -> Self {
        Self {
            external: external.into(),
            ..Self::default()
        }
    }

    /// The external addresses the operator set.
    pub fn external(&self) -> &[Multiaddr] {
        &self.external
    }

    /// Records a new listen address.
    pub(crate) fn add(&self, address: Multiaddr) {
        let mut addresses = self.listen.write().expect("addresses lock poisoned");
        if !addresses.contains(&address) && addresses.len() < MAX_LISTEN_ADDRESSES {
            addresses.push(address);
        }
    }

    /// Forgets an expired listen address.
    pub(crate) fn remove(&self, address: &Multiaddr) {
        self.listen
            .write()
            .expect("addresses lock poisoned")
            .retain(|a| a != address);
    }

    /// The external addresses, then every listen address, those other
    /// hosts can reach first (see [`is_local`]), in the order the
    /// listeners reported them.
    pub fn all(&self) -> Vec<Multiaddr> {
        let mut listen = self.listen.read().expect("addresses lock poisoned").clone();
        listen.sort_by_key(is_local);
        let mut all = self.external.to_vec();
        all.extend(listen.into_iter().filter(|a| !self.external.contains(a)));
        all
    }

    /// What the node tells other hosts: its external addresses, then its
    /// addresses that are not loopback or link-local, or, on a node that
    /// has only those (a subnet on one machine), those.
    pub fn advertised(&self) -> Vec<Multiaddr> {
        let all = self.all();
        let reachable: Vec<Multiaddr> = all.iter().filter(|a| !is_local(a)).cloned().collect();
        if reachable.is_empty() { all } else { reachable }
    }
}

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

/// Whether `address` runs through a relay (`/p2p-circuit`).
pub fn is_circuit(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_hosts_get_reachable_addresses_first_and_only() {
        let addresses = ListenAddresses::default();
        let lo: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let link: Multiaddr = "/ip6/fe80::1/tcp/4001".parse().unwrap();
        let bridge: Multiaddr = "/ip4/10.201.0.2/tcp/4001".parse().unwrap();
        addresses.add(lo.clone());
        assert_eq!(
            addresses.advertised(),
            vec![lo.clone()],
            "a one-machine node"
        );
        addresses.add(link.clone());
        addresses.add(bridge.clone());
        addresses.add(bridge.clone());
        assert_eq!(addresses.all(), vec![bridge.clone(), lo.clone(), link]);
        assert_eq!(addresses.advertised(), vec![bridge.clone()]);
        addresses.remove(&bridge);
        assert_eq!(addresses.advertised().len(), 2);

        let public: Multiaddr = "/ip4/10.201.0.200/tcp/4001".parse().unwrap();
        let behind = ListenAddresses::with_external(vec![public.clone()]);
        behind.add(lo.clone());
        behind.add(bridge.clone());
        assert_eq!(behind.advertised(), vec![public.clone(), bridge.clone()]);
        assert_eq!(behind.all(), vec![public, bridge, lo]);
    }
}
