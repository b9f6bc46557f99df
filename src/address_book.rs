//! The shared read view of the address book: where each known peer lives.
//!
//! Readers (the swarm resolving a dial, callers) use the `DashMap` directly.
//! Each address carries the source it came from and when it was last
//! confirmed.

use std::{sync::Arc, time::Instant};

use dashmap::DashMap;
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Addresses kept per peer; the oldest is dropped beyond this.
pub const MAX_ADDRESSES_PER_PEER: usize = 16;

/// Where an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Given explicitly: a call by multiaddr, or `Node::add_address`.
    Manual,
    /// The remote endpoint of an established connection.
    Connection,
}

/// One known address of a peer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The address, without a trailing `/p2p/<peer id>`.
    pub address: Multiaddr,
    /// Where it came from.
    pub source: Source,
    /// When it was last learned or confirmed.
    pub confirmed: Instant,
}

/// The address book's shared view. Cloning it is cheap and shares the map.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    peers: Arc<DashMap<PeerId, Vec<Entry>>>,
}

impl AddressBook {
    /// Records `address` for `peer`, refreshing it if already known.
    pub fn add(&self, peer: PeerId, address: Multiaddr, source: Source) {
        let address = without_peer_id(address);
        let mut entries = self.peers.entry(peer).or_default();
        let now = Instant::now();
        if let Some(entry) = entries.iter_mut().find(|e| e.address == address) {
            entry.confirmed = now;
            return;
        }
        if entries.len() >= MAX_ADDRESSES_PER_PEER {
            let oldest = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.confirmed)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                entries.swap_remove(i);
            }
        }
        entries.push(Entry {
            address,
            source,
            confirmed: now,
        });
    }

    /// The addresses known for `peer`, most recently confirmed first.
    pub fn addresses(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let Some(entries) = self.peers.get(peer) else {
            return Vec::new();
        };
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by_key(|e| std::cmp::Reverse(e.confirmed));
        sorted.into_iter().map(|e| e.address.clone()).collect()
    }

    /// Every entry known for `peer`.
    pub fn entries(&self, peer: &PeerId) -> Vec<Entry> {
        self.peers.get(peer).map(|e| e.clone()).unwrap_or_default()
    }
}

/// Strips a trailing `/p2p/<peer id>`: the book stores it as the key.
fn without_peer_id(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}
