//! The address book: where each known peer lives, and how we know.
//!
//! [`AddressBook`] is the shared read view (a `DashMap`): the swarm resolves
//! dials through it and callers look peers up without a message round trip.
//! Every write goes through the
//! [`AddressBookActor`](crate::actors::address_book::AddressBookActor), which
//! serialises merges, confirmations, demotions, expiry and eviction, and
//! publishes change [`Event`]s.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use dashmap::DashMap;
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Where an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The subnet's registry (on chain, or the local registry file).
    Registry,
    /// A validated, signed heartbeat gossiped by the peer itself.
    Heartbeat,
    /// A connected peer answered a peer-exchange question.
    PeerExchange,
    /// The peer's identify message on a direct connection.
    Identify,
    /// A Kademlia lookup.
    Kademlia,
    /// Given explicitly: a call by multiaddr, or `Node::add_address`.
    Manual,
}

impl Source {
    /// Every source, in order.
    pub const ALL: [Source; 6] = [
        Source::Registry,
        Source::Heartbeat,
        Source::PeerExchange,
        Source::Identify,
        Source::Kademlia,
        Source::Manual,
    ];

    /// A short lowercase name, for logs, metrics and tables.
    pub fn name(self) -> &'static str {
        match self {
            Source::Registry => "registry",
            Source::Heartbeat => "heartbeat",
            Source::PeerExchange => "peer_exchange",
            Source::Identify => "identify",
            Source::Kademlia => "kademlia",
            Source::Manual => "manual",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

impl Source {
    /// The registry, as opposed to what peers tell (and to the operator's
    /// explicit addresses, which stay within the book's bound).
    pub fn is_protected(self) -> bool {
        matches!(self, Source::Registry)
    }

    /// How far the book trusts the source, for eviction: a peer only makes
    /// room for a newcomer of at least its own trust. The registry (2) is
    /// never evicted; the operator's addresses (1: bootstrap peers,
    /// `Node::add_address`, calls by multiaddr) only for more of the
    /// operator's; what peers tell (0: heartbeats, peer exchange,
    /// identify, Kademlia) for anyone.
    pub fn trust(self) -> u8 {
        match self {
            Source::Registry => 2,
            Source::Manual => 1,
            _ => 0,
        }
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

/// Limits of the address book.
#[derive(Debug, Clone)]
pub struct Config {
    ttl: HashMap<Source, Option<Duration>>,
    max_peers: usize,
    max_addresses_per_peer: usize,
    expiry_interval: Duration,
    registry_refresh: Duration,
    registry_timeout: Duration,
}

impl Config {
    /// Peers kept at most; beyond, the least recently confirmed is evicted.
    pub const DEFAULT_MAX_PEERS: usize = 10_000;
    /// Addresses kept per peer; beyond, the least recently confirmed goes.
    pub const DEFAULT_MAX_ADDRESSES_PER_PEER: usize = 16;
    /// How often expired addresses are swept: 1 s.
    pub const DEFAULT_EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
    /// How often the registry is read again: 60 s.
    pub const DEFAULT_REGISTRY_REFRESH: Duration = Duration::from_secs(60);
    /// Time a registry read may take before it counts as failed: 10 s.
    pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
    /// Time-to-live of heartbeat addresses: 90 s (a few heartbeats).
    pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(90);
    /// Time-to-live of peer-exchange, identify and Kademlia addresses: 10 min.
    pub const DEFAULT_LEARNED_TTL: Duration = Duration::from_secs(600);

    /// Sets how long an address from `source` lives without being confirmed
    /// (`None`: forever).
    pub fn with_ttl(mut self, source: Source, ttl: Option<Duration>) -> Self {
        self.ttl.insert(source, ttl);
        self
    }

    /// Sets the number of peers kept.
    pub fn with_max_peers(mut self, peers: usize) -> Self {
        self.max_peers = peers.max(1);
        self
    }

    /// Sets how often expired addresses are swept.
    pub fn with_expiry_interval(mut self, interval: Duration) -> Self {
        self.expiry_interval = interval;
        self
    }

    /// Sets how often the registry is read again.
    pub fn with_registry_refresh(mut self, interval: Duration) -> Self {
        self.registry_refresh = interval;
        self
    }

    /// Sets how long a registry read may take; a slower read fails with
    /// [`registry::RegistryError::Timeout`](crate::discovery::registry::RegistryError::Timeout)
    /// and the next refresh tries again.
    pub fn with_registry_timeout(mut self, timeout: Duration) -> Self {
        self.registry_timeout = timeout;
        self
    }

    /// How long a registry read may take.
    pub fn registry_timeout(&self) -> Duration {
        self.registry_timeout
    }

    /// The time-to-live of addresses from `source`.
    pub fn ttl(&self, source: Source) -> Option<Duration> {
        self.ttl.get(&source).copied().flatten()
    }

    /// The number of peers kept.
    pub fn max_peers(&self) -> usize {
        self.max_peers
    }

    /// How often expired addresses are swept.
    pub fn expiry_interval(&self) -> Duration {
        self.expiry_interval
    }

    /// How often the registry is read again.
    pub fn registry_refresh(&self) -> Duration {
        self.registry_refresh
    }
}

impl Default for Config {
    fn default() -> Self {
        let ttl = Source::ALL
            .into_iter()
            .map(|source| {
                let ttl = match source {
                    Source::Registry | Source::Manual => None,
                    Source::Heartbeat => Some(Self::DEFAULT_HEARTBEAT_TTL),
                    _ => Some(Self::DEFAULT_LEARNED_TTL),
                };
                (source, ttl)
            })
            .collect();
        Self {
            ttl,
            max_peers: Self::DEFAULT_MAX_PEERS,
            max_addresses_per_peer: Self::DEFAULT_MAX_ADDRESSES_PER_PEER,
            expiry_interval: Self::DEFAULT_EXPIRY_INTERVAL,
            registry_refresh: Self::DEFAULT_REGISTRY_REFRESH,
            registry_timeout: Self::DEFAULT_REGISTRY_TIMEOUT,
        }
    }
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

/// Whether `address` is on a loopback interface (127.0.0.0/8 or ::1).
pub(crate) fn is_loopback(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Strips a trailing `/p2p/<peer id>`: the book stores it as the key.
pub(crate) fn without_peer_id(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> Multiaddr {
        format!("/ip4/10.201.0.1/tcp/{port}").parse().unwrap()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn addresses_expire_after_their_source_ttl_and_confirmation_renews_them() {
        let config = Config::default().with_ttl(Source::Heartbeat, Some(10 * SECOND));
        let book = AddressBook::default();
        let (peer, start) = (PeerId::random(), Instant::now());
        let events = book.merge(
            peer,
            vec![address(1)],
            Source::Heartbeat,
            Some(7),
            &config,
            start,
        );
        assert!(matches!(
            events[0],
            Event::PeerAdded {
                source: Source::Heartbeat,
                ..
            }
        ));
        assert_eq!(book.lookup(&peer).unwrap().subnet_node_id, Some(7));

        // Confirmed at 8 s: still there at 15 s, gone at 18 s.
        book.confirm(&peer, &address(1), start + 8 * SECOND);
        assert!(book.expire(&config, start + 15 * SECOND).is_empty());
        assert_eq!(book.addresses(&peer), vec![address(1)]);
        let gone = book.expire(&config, start + 18 * SECOND);
        assert!(matches!(gone[..], [Event::PeerExpired { peer: p }] if p == peer));
        assert!(!book.contains(&peer));
    }

    #[test]
    fn registry_and_manual_addresses_never_expire_and_keep_their_longer_ttl() {
        let config = Config::default();
        let book = AddressBook::default();
        let (peer, start) = (PeerId::random(), Instant::now());
        book.merge(
            peer,
            vec![address(1)],
            Source::Registry,
            None,
            &config,
            start,
        );
        // Heard again through a heartbeat: the address keeps the registry's TTL.
        book.merge(
            peer,
            vec![address(1)],
            Source::Heartbeat,
            None,
            &config,
            start,
        );
        let later = start + 365 * 24 * 3600 * SECOND;
        assert!(book.expire(&config, later).is_empty());
        assert_eq!(
            book.lookup(&peer).unwrap().addresses[0].source,
            Source::Registry
        );
    }

    #[test]
    fn failed_and_stale_addresses_sort_last() {
        let config = Config::default();
        let book = AddressBook::default();
        let (peer, start) = (PeerId::random(), Instant::now());
        book.merge(
            peer,
            vec![address(1)],
            Source::Identify,
            None,
            &config,
            start,
        );
        book.merge(
            peer,
            vec![address(2)],
            Source::Identify,
            None,
            &config,
            start + SECOND,
        );
        assert_eq!(
            book.addresses(&peer),
            vec![address(2), address(1)],
            "newest first"
        );
        book.demote(&peer, &[address(2)]);
        assert_eq!(
            book.addresses(&peer),
            vec![address(1), address(2)],
            "failed last"
        );
    }

    #[test]
    fn a_full_book_evicts_the_least_recently_confirmed_peers() {
        let config = Config::default().with_max_peers(64);
        let book = AddressBook::default();
        let start = Instant::now();
        let peers: Vec<PeerId> = (0..64).map(|_| PeerId::random()).collect();
        for (i, peer) in peers.iter().enumerate() {
            let at = start + (i as u32) * SECOND;
            book.merge(*peer, vec![address(1)], Source::Identify, None, &config, at);
        }
        let newcomer = PeerId::random();
        let events = book.merge(
            newcomer,
            vec![address(1)],
            Source::Identify,
            None,
            &config,
            start + 100 * SECOND,
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::PeerExpired { peer } if *peer == peers[0]))
        );
        assert!(!book.contains(&peers[0]), "the oldest went");
        assert!(book.contains(&newcomer) && book.contains(&peers[63]));
        assert!(book.len() <= 64);
    }

    #[test]
    fn learned_peers_never_evict_registry_members() {
        let config = Config::default().with_max_peers(8);
        let book = AddressBook::default();
        let now = Instant::now();
        let members: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
        for member in &members {
            book.merge(
                *member,
                vec![address(1)],
                Source::Registry,
                None,
                &config,
                now,
            );
        }
        // A flood of throwaway identities learned from heartbeats.
        for i in 0..1_000u32 {
            book.merge(
                PeerId::random(),
                vec![address(2)],
                Source::Heartbeat,
                None,
                &config,
                now + i * SECOND,
            );
        }
        assert!(members.iter().all(|m| book.contains(m)), "members stay");
        assert_eq!(book.len(), 8, "and nobody else got in");
    }

    #[test]
    fn learned_peers_never_evict_the_operators_and_the_operators_evict_learned_first() {
        let config = Config::default().with_max_peers(8);
        let book = AddressBook::default();
        let now = Instant::now();
        let bootstrap: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        for peer in &bootstrap {
            book.merge(*peer, vec![address(1)], Source::Manual, None, &config, now);
        }
        for i in 0..1_000u32 {
            book.merge(
                PeerId::random(),
                vec![address(2)],
                Source::Heartbeat,
                None,
                &config,
                now + i * SECOND,
            );
        }
        assert!(bootstrap.iter().all(|p| book.contains(p)), "manual stay");
        // More of the operator's own: the learned go first, then the
        // operator's oldest.
        let later: Vec<PeerId> = (0..6).map(|_| PeerId::random()).collect();
        for (i, peer) in later.iter().enumerate() {
            let at = now + (2_000 + i as u32) * SECOND;
            book.merge(*peer, vec![address(3)], Source::Manual, None, &config, at);
        }
        assert!(later.iter().all(|p| book.contains(p)));
        assert!(book.len() <= 8);
        let peers = book.peers();
        assert!(
            peers
                .iter()
                .all(|p| book.lookup(p).unwrap().addresses[0].source == Source::Manual),
            "no learned peer is left before a manual one goes"
        );
    }

    #[test]
    fn a_zero_or_a_third_partys_node_id_never_overwrites() {
        let config = Config::default();
        let book = AddressBook::default();
        let now = Instant::now();
        let peer = PeerId::random();
        let merge = |source, id| {
            book.merge(peer, vec![address(1)], source, Some(id), &config, now);
            book.lookup(&peer).unwrap().subnet_node_id
        };
        assert_eq!(merge(Source::Heartbeat, 3), Some(3));
        assert_eq!(merge(Source::Heartbeat, 0), Some(3), "0 is unknown");
        assert_eq!(merge(Source::PeerExchange, 9), Some(3), "hearsay");
        assert_eq!(merge(Source::Heartbeat, 4), Some(4), "its own word");
    }

    #[test]
    fn the_registrys_node_id_wins_over_a_peers_claim() {
        let config = Config::default();
        let book = AddressBook::default();
        let now = Instant::now();
        let peer = PeerId::random();
        book.merge(
            peer,
            vec![address(1)],
            Source::Registry,
            Some(7),
            &config,
            now,
        );
        book.merge(
            peer,
            vec![address(2)],
            Source::Heartbeat,
            Some(99),
            &config,
            now,
        );
        assert_eq!(book.lookup(&peer).unwrap().subnet_node_id, Some(7));
        // A peer the registry does not know may say who it is.
        let other = PeerId::random();
        book.merge(
            other,
            vec![address(3)],
            Source::Heartbeat,
            Some(5),
            &config,
            now,
        );
        assert_eq!(book.lookup(&other).unwrap().subnet_node_id, Some(5));
    }
}
