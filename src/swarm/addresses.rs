//! What a node listens on, kept current: every concrete address of every
//! listener as the swarm reports it (`NewListenAddr`, `ExpiredListenAddr`).
//! A listener on `0.0.0.0` reports one address per interface, and more as
//! interfaces come and go. Also the node's external addresses (an
//! operator's, and those AutoNAT v2 confirmed) and whether the node can be
//! reached from other hosts ([`Reachability`]). Written by the swarm
//! actor's event loop; read by the node's handles and the heartbeat.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU8, Ordering},
};

use libp2p::Multiaddr;

use crate::multiaddr::is_local;

/// Listen addresses the node holds at most; more are not recorded.
pub const MAX_LISTEN_ADDRESSES: usize = 64;

/// The node's current listen addresses. Cloning it is cheap; every clone
/// sees the same set. It also holds the external addresses an operator
/// set (a public IP, a forwarded port), which come first.
#[derive(Debug, Clone, Default)]
pub struct ListenAddresses {
    listen: Arc<RwLock<Vec<Multiaddr>>>,
    external: Arc<[Multiaddr]>,
    /// Addresses AutoNAT v2 confirmed: a peer dialed the node back there.
    confirmed: Arc<RwLock<Vec<Multiaddr>>>,
    reachability: Arc<AtomicU8>,
}

/// Whether other hosts can open connections to a node, as AutoNAT v2 found
/// by asking connected peers to dial the node back at its candidate
/// external addresses (what identify's peers observed; spec:
/// <https://github.com/libp2p/specs/blob/master/autonat/autonat-v2.md>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// Nothing tested yet: no peer that answers AutoNAT, or no candidate
    /// address.
    Unknown,
    /// A peer dialed the node back at one of its addresses at least.
    Public,
    /// Every address tested failed: the node is behind a NAT or a firewall
    /// that lets nothing in. It reserves slots on relays (unless given
    /// relays of its own) and advertises its circuit addresses.
    Private,
}

impl Reachability {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Public,
            2 => Self::Private,
            _ => Self::Unknown,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Public => 1,
            Self::Private => 2,
        }
    }
}

/// AutoNAT results kept at most; the oldest goes first.
const MAX_TESTED: usize = 32;

/// What AutoNAT v2 tests found, address by address: the node is
/// [`Reachability::Public`] if one address was dialed back,
/// [`Reachability::Private`] if every tested one failed.
#[derive(Debug, Default)]
pub(crate) struct Tested(Vec<(Multiaddr, bool)>);

impl Tested {
    /// Records the result of a test of `address`; returns the
    /// reachability that follows.
    pub(crate) fn record(&mut self, address: Multiaddr, reachable: bool) -> Reachability {
        self.0.retain(|(a, _)| *a != address);
        if self.0.len() >= MAX_TESTED {
            self.0.remove(0);
        }
        self.0.push((address, reachable));
        self.reachability()
    }

    pub(crate) fn reachability(&self) -> Reachability {
        if self.0.iter().any(|(_, ok)| *ok) {
            Reachability::Public
        } else if self.0.is_empty() {
            Reachability::Unknown
        } else {
            Reachability::Private
        }
    }
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

    /// Records an external address AutoNAT v2 confirmed.
    pub(crate) fn confirm(&self, address: Multiaddr) {
        let mut confirmed = self.confirmed.write().expect("addresses lock poisoned");
        if !confirmed.contains(&address) && confirmed.len() < MAX_LISTEN_ADDRESSES {
            confirmed.push(address);
        }
    }

    /// Forgets an external address that expired.
    pub(crate) fn unconfirm(&self, address: &Multiaddr) {
        self.confirmed
            .write()
            .expect("addresses lock poisoned")
            .retain(|a| a != address);
    }

    /// Whether other hosts can reach the node, as AutoNAT found.
    pub fn reachability(&self) -> Reachability {
        Reachability::from_u8(self.reachability.load(Ordering::Relaxed))
    }

    pub(crate) fn set_reachability(&self, reachability: Reachability) {
        self.reachability
            .store(reachability.as_u8(), Ordering::Relaxed);
    }

    /// Forgets an expired listen address.
    pub(crate) fn remove(&self, address: &Multiaddr) {
        self.listen
            .write()
            .expect("addresses lock poisoned")
            .retain(|a| a != address);
    }

    /// The operator's external addresses, those AutoNAT confirmed, then
    /// every listen address, those other hosts can reach first (see
    /// [`is_local`]), in the order the listeners reported them.
    pub fn all(&self) -> Vec<Multiaddr> {
        let mut listen = self.listen.read().expect("addresses lock poisoned").clone();
        listen.sort_by_key(is_local);
        let confirmed = self.confirmed.read().expect("addresses lock poisoned");
        let mut all = self.external.to_vec();
        for address in confirmed.iter().cloned().chain(listen) {
            if !all.contains(&address) {
                all.push(address);
            }
        }
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

    /// Whether the node is on one machine only: it listens, and only on
    /// loopback or link-local addresses (a subnet on one machine, whose
    /// peers' local addresses are believed).
    pub fn one_machine(&self) -> bool {
        let advertised = self.advertised();
        !advertised.is_empty() && advertised.iter().all(is_local)
    }
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
        assert_eq!(behind.all(), vec![public.clone(), bridge.clone(), lo]);

        // AutoNAT-confirmed addresses come after the operator's, once.
        let observed: Multiaddr = "/ip4/10.201.0.100/tcp/4001".parse().unwrap();
        behind.confirm(observed.clone());
        behind.confirm(bridge.clone());
        assert_eq!(
            behind.advertised(),
            vec![public, observed.clone(), bridge.clone()]
        );
        behind.unconfirm(&observed);
        assert!(!behind.advertised().contains(&observed));
    }

    #[test]
    fn reachable_once_one_address_is_dialed_back_unreachable_when_all_fail() {
        let mut tested = Tested::default();
        assert_eq!(tested.reachability(), Reachability::Unknown);
        let tcp: Multiaddr = "/ip4/10.201.0.100/tcp/4001".parse().unwrap();
        let quic: Multiaddr = "/ip4/10.201.0.100/udp/4001/quic-v1".parse().unwrap();
        assert_eq!(tested.record(tcp.clone(), false), Reachability::Private);
        assert_eq!(tested.record(quic.clone(), true), Reachability::Public);
        assert_eq!(tested.record(quic, false), Reachability::Private);
        for port in 0..MAX_TESTED as u16 {
            let other: Multiaddr = format!("/ip4/10.201.0.100/tcp/{port}").parse().unwrap();
            tested.record(other, false);
        }
        assert_eq!(tested.0.len(), MAX_TESTED, "bounded");
        assert_eq!(tested.record(tcp, true), Reachability::Public);
    }
}
