//! The address book: where each known peer lives, and how we know.
//!
//! [`AddressBook`] is the shared read view (a `DashMap`): the swarm resolves
//! dials through it and callers look peers up without a message round trip.
//! Every write goes through one writer (the address book actor), which
//! serialises merges, confirmations, demotions, expiry and eviction, and
//! publishes change [`Event`]s; sources send it an [`Update`].
//!
//! - `config`: limits and time-to-lives ([`Config`]).
//! - `source`: where an address was learned, and how far that is trusted.
//! - `update`: what the writer is told ([`Update`], [`Updates`]).

use std::{collections::HashMap, sync::Arc, time::Instant};

use dashmap::DashMap;
use libp2p::{Multiaddr, PeerId};

pub use self::{
    config::Config,
    source::Source,
    update::{Update, Updates},
};
use super::registry::Member;
use crate::multiaddr::without_peer_id;

mod config;
mod source;
mod update;

/// One known address of a peer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The address, without a trailing `/p2p/<peer id>`.
    pub address: Multiaddr,
    /// Where it was learned (the latest source that reported it).
    pub source: Source,
    /// When it was last learned again or used successfully.
    pub confirmed: Instant,
    /// Failed dials since it was last confirmed; more sort it later.
    pub failures: u32,
}

/// What the book knows of one peer.
#[derive(Debug, Clone)]
pub struct PeerRecord {
    /// Its addresses, best first.
    pub addresses: Vec<Entry>,
    /// Its subnet node id, when a source told it.
    pub subnet_node_id: Option<u64>,
    /// The source that first told of it.
    pub found_via: Source,
}

impl PeerRecord {
    /// The most recently confirmed moment of any of its addresses.
    pub fn last_confirmed(&self) -> Option<Instant> {
        self.addresses.iter().map(|e| e.confirmed).max()
    }

    /// Whether the registry lists it: such a peer never makes room for
    /// peers learned from others, and its node id is the registry's.
    pub fn is_protected(&self) -> bool {
        self.addresses.iter().any(|e| e.source.is_protected())
    }

    /// The most trusted source of its addresses ([`Source::trust`]).
    fn trust(&self) -> u8 {
        self.addresses
            .iter()
            .map(|e| e.source.trust())
            .max()
            .unwrap_or(0)
    }
}

/// A change in the book, published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer the book did not know.
    PeerAdded {
        /// The peer.
        peer: PeerId,
        /// The source that told of it.
        source: Source,
    },
    /// A new address of a peer.
    AddressAdded {
        /// The peer.
        peer: PeerId,
        /// The address.
        address: Multiaddr,
        /// The source that told of it.
        source: Source,
    },
    /// Every address of a peer expired (or it was evicted): it left the book.
    PeerExpired {
        /// The peer.
        peer: PeerId,
    },
}

/// The address book's shared read view. Cloning it is cheap.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    peers: Arc<DashMap<PeerId, PeerRecord>>,
}

impl AddressBook {
    /// What the book knows of `peer`.
    pub fn lookup(&self, peer: &PeerId) -> Option<PeerRecord> {
        self.peers.get(peer).map(|r| r.clone())
    }

    /// The addresses known for `peer`, best first.
    pub fn addresses(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.peers
            .get(peer)
            .map(|r| r.addresses.iter().map(|e| e.address.clone()).collect())
            .unwrap_or_default()
    }

    /// Every known peer.
    pub fn peers(&self) -> Vec<PeerId> {
        self.peers.iter().map(|r| *r.key()).collect()
    }

    /// Whether the book knows `peer`.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// The number of known peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Known peers by the source of their best address.
    pub fn count_by_source(&self) -> HashMap<Source, usize> {
        let mut counts = HashMap::new();
        for record in self.peers.iter() {
            if let Some(best) = record.addresses.first() {
                *counts.entry(best.source).or_default() += 1;
            }
        }
        counts
    }

    /// Applies what the book's writer was told (the node's own
    /// addresses are never kept); returns the changes.
    pub(crate) fn apply(
        &self,
        update: Update,
        config: &Config,
        local: PeerId,
        now: Instant,
    ) -> Vec<Event> {
        match update {
            Update::Learned {
                peer,
                addresses,
                source,
                subnet_node_id,
            } if peer != local => self.merge(peer, addresses, source, subnet_node_id, config, now),
            Update::Learned { .. } => Vec::new(),
            Update::Confirmed { peer, address } => {
                self.confirm(&peer, &address, now);
                Vec::new()
            }
            Update::DialFailed { peer, addresses } => {
                self.demote(&peer, &addresses);
                Vec::new()
            }
        }
    }

    /// Makes the registry's latest read the book's `registry` entries:
    /// peers it no longer lists lose theirs, listed members (but the node
    /// itself) are merged with their node ids. Returns the changes.
    pub(crate) fn relist(
        &self,
        members: Vec<Member>,
        local: PeerId,
        config: &Config,
        now: Instant,
    ) -> Vec<Event> {
        let listed: HashMap<PeerId, Vec<Multiaddr>> = members
            .iter()
            .map(|m| (m.peer_id, m.addresses.clone()))
            .collect();
        let mut events = self.unlist(&listed);
        for member in members.into_iter().filter(|m| m.peer_id != local) {
            events.extend(self.merge(
                member.peer_id,
                member.addresses,
                Source::Registry,
                Some(member.subnet_node_id),
                config,
                now,
            ));
        }
        events
    }

    /// Merges addresses of `peer`, confirmed at `now` (writer: the address
    /// book actor only; the clock is its, so tests can set it).
    pub(crate) fn merge(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        source: Source,
        subnet_node_id: Option<u64>,
        config: &Config,
        now: Instant,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.peers.contains_key(&peer) {
            if addresses.is_empty() {
                return events;
            }
            // A full book of registry members takes no other peer (members
            // are taken beyond the cap: the registry bounds them).
            if !self.evict_for_room(config, source, &mut events) && !source.is_protected() {
                return events;
            }
            events.push(Event::PeerAdded { peer, source });
        }
        let mut record = self.peers.entry(peer).or_insert_with(|| PeerRecord {
            addresses: Vec::new(),
            subnet_node_id: None,
            found_via: source,
        });
        // The registry's word on a node id wins over a peer's own claim
        // (its heartbeat), which wins over a third party's (a peer-exchange
        // answer: it only fills a gap); 0 means unknown and changes nothing.
        if let Some(id) = subnet_node_id.filter(|id| *id != 0) {
            let believed = match source {
                Source::Registry => true,
                Source::Heartbeat => !record.is_protected(),
                _ => !record.is_protected() && record.subnet_node_id.is_none(),
            };
            if believed {
                record.subnet_node_id = Some(id);
            }
        }
        for address in addresses {
            let address = without_peer_id(address);
            if let Some(entry) = record.addresses.iter_mut().find(|e| e.address == address) {
                entry.confirmed = now;
                // Keep the source that keeps the address longest.
                if config
                    .ttl(source)
                    .is_none_or(|new| config.ttl(entry.source).is_some_and(|old| new > old))
                {
                    entry.source = source;
                }
                continue;
            }
            if record.addresses.len() >= config.max_addresses_per_peer {
                record.addresses.pop(); // the worst, as the list is sorted
            }
            events.push(Event::AddressAdded {
                peer,
                address: address.clone(),
                source,
            });
            record.addresses.push(Entry {
                address,
                source,
                confirmed: now,
                failures: 0,
            });
        }
        sort(&mut record.addresses);
        events
    }

    /// Marks a dial of `address` as successful at `now`.
    pub(crate) fn confirm(&self, peer: &PeerId, address: &Multiaddr, now: Instant) {
        let address = without_peer_id(address.clone());
        if let Some(mut record) = self.peers.get_mut(peer) {
            if let Some(entry) = record.addresses.iter_mut().find(|e| e.address == address) {
                entry.confirmed = now;
                entry.failures = 0;
            }
            sort(&mut record.addresses);
        }
    }

    /// Forgets `address` of `peer` (it answered with another identity),
    /// unless the registry lists it; `true` if it was forgotten. A peer
    /// left with no address leaves at the next expiry.
    pub(crate) fn forget(&self, peer: &PeerId, address: &Multiaddr) -> bool {
        let address = without_peer_id(address.clone());
        let Some(mut record) = self.peers.get_mut(peer) else {
            return false;
        };
        let before = record.addresses.len();
        record
            .addresses
            .retain(|e| e.address != address || e.source.is_protected());
        record.addresses.len() < before
    }

    /// Marks failed dials of `peer`'s addresses: they sort later.
    pub(crate) fn demote(&self, peer: &PeerId, failed: &[Multiaddr]) {
        if let Some(mut record) = self.peers.get_mut(peer) {
            for address in failed {
                let address = without_peer_id(address.clone());
                if let Some(entry) = record.addresses.iter_mut().find(|e| e.address == address) {
                    entry.failures = entry.failures.saturating_add(1);
                }
            }
            sort(&mut record.addresses);
        }
    }

    /// Drops the registry's addresses that its last read no longer lists
    /// (`listed`: each member's addresses): all of a peer it dropped, the
    /// old ones of a peer registered at a new address; and the peers left
    /// with none.
    pub(crate) fn unlist(
        &self,
        listed: &std::collections::HashMap<PeerId, Vec<Multiaddr>>,
    ) -> Vec<Event> {
        let mut gone = Vec::new();
        self.peers.retain(|peer, record| {
            if !record.is_protected() {
                return true;
            }
            let current = listed.get(peer);
            record.addresses.retain(|e| {
                e.source != Source::Registry
                    || current.is_some_and(|addresses| {
                        addresses
                            .iter()
                            .any(|a| without_peer_id(a.clone()) == e.address)
                    })
            });
            if record.addresses.is_empty() && current.is_none() {
                gone.push(Event::PeerExpired { peer: *peer });
                false
            } else {
                true
            }
        });
        gone
    }

    /// Drops addresses older than their source's TTL at `now`, and peers
    /// left with none.
    pub(crate) fn expire(&self, config: &Config, now: Instant) -> Vec<Event> {
        let mut gone = Vec::new();
        self.peers.retain(|peer, record| {
            record.addresses.retain(|e| {
                config
                    .ttl(e.source)
                    .is_none_or(|ttl| now.duration_since(e.confirmed) < ttl)
            });
            if record.addresses.is_empty() {
                gone.push(Event::PeerExpired { peer: *peer });
                false
            } else {
                true
            }
        });
        gone
    }

    /// Makes room for one more peer, learned from `source`: a full book
    /// evicts 1/64 of its peers in one pass (a flood of new peers costs one
    /// scan per batch, not one per peer), the least trusted first
    /// ([`Source::trust`]), then the least recently confirmed, and never one
    /// more trusted than `source` or listed by the registry. `false` if the
    /// book is full and none could go.
    fn evict_for_room(&self, config: &Config, source: Source, events: &mut Vec<Event>) -> bool {
        let len = self.peers.len();
        if len < config.max_peers {
            return true;
        }
        let evict = len - config.max_peers + (config.max_peers / 64).max(1);
        let mut ages: Vec<(u8, Option<Instant>, PeerId)> = self
            .peers
            .iter()
            .filter(|r| !r.is_protected() && r.trust() <= source.trust())
            .map(|r| (r.trust(), r.last_confirmed(), *r.key()))
            .collect();
        if ages.is_empty() {
            return false;
        }
        let evict = evict.min(ages.len());
        if evict < ages.len() {
            ages.select_nth_unstable(evict);
        }
        for (_, _, peer) in &ages[..evict] {
            self.peers.remove(peer);
            events.push(Event::PeerExpired { peer: *peer });
        }
        true
    }
}

/// Best first: fewest failed dials, then most recently confirmed.
fn sort(entries: &mut [Entry]) {
    entries.sort_by_key(|e| (e.failures, std::cmp::Reverse(e.confirmed)));
}

#[cfg(test)]
mod tests;
