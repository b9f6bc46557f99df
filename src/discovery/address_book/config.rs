//! The address book's limits and time-to-lives, per source.

use std::{collections::HashMap, time::Duration};

use super::source::Source;

/// Limits of the address book.
#[derive(Debug, Clone)]
pub struct Config {
    pub(super) ttl: HashMap<Source, Option<Duration>>,
    pub(super) max_peers: usize,
    pub(super) max_addresses_per_peer: usize,
    pub(super) expiry_interval: Duration,
    pub(super) registry_refresh: Duration,
    pub(super) registry_timeout: Duration,
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
