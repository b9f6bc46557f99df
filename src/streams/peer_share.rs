//! One peer's share of a protocol's inbound capacity: how many of its
//! requests are admitted (running or waiting), how many run at once, and
//! how fast it may start new ones ([`Config`]'s per-peer caps and rate
//! limit). Admission checks it for every inbound stream, after the
//! connection's cap and before the protocol's, so that one identity cannot
//! take a protocol's whole capacity from everyone else.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use libp2p::PeerId;
use tokio::sync::Semaphore;

use crate::{metrics::RefusalReason, protocol::Config};

/// Rate checks between two sweeps of the rate limiter's state (peers whose
/// bucket is full again are forgotten).
const SWEEP_EVERY: u64 = 1024;

/// The per-peer shares of one protocol.
pub(crate) struct PeerShares {
    max_admitted: usize,
    max_running: usize,
    /// Peers with at least one admitted request; an entry goes with its
    /// last request, so there are never more than the protocol admits.
    peers: Mutex<HashMap<PeerId, Share>>,
    limiter: Option<DefaultKeyedRateLimiter<PeerId>>,
    checks: AtomicU64,
    /// Set when the protocol stops: every peer's running slots are closed,
    /// so that requests waiting for one are refused at once.
    closed: AtomicBool,
}

impl std::fmt::Debug for PeerShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerShares")
            .field("max_admitted", &self.max_admitted)
            .field("max_running", &self.max_running)
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

struct Share {
    admitted: usize,
    running: Arc<Semaphore>,
}

impl PeerShares {
    /// The shares `config` sets.
    pub(crate) fn new(config: &Config) -> Arc<Self> {
        let limiter = config.rate_limit().map(|limit| {
            RateLimiter::keyed(
                Quota::per_second(limit.requests_per_second()).allow_burst(limit.burst()),
            )
        });
        Arc::new(Self {
            max_admitted: config
                .max_concurrent_per_peer()
                .saturating_add(config.max_pending_per_peer()),
            max_running: config.max_concurrent_per_peer().min(Semaphore::MAX_PERMITS),
            peers: Mutex::new(HashMap::new()),
            limiter,
            checks: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Admits one more request of `peer`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, peer: PeerId) -> Result<PeerPermit, RefusalReason> {
        if let Some(limiter) = &self.limiter {
            if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                limiter.retain_recent();
            }
            if limiter.check_key(&peer).is_err() {
                return Err(RefusalReason::RateLimited);
            }
        }
        let mut peers = self.peers.lock().expect("peer shares lock poisoned");
        let share = match peers.entry(peer) {
            Entry::Occupied(entry) if entry.get().admitted >= self.max_admitted => {
                return Err(RefusalReason::PeerLimit);
            }
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(_) if self.max_admitted == 0 => return Err(RefusalReason::PeerLimit),
            Entry::Vacant(entry) => {
                let running = Arc::new(Semaphore::new(self.max_running));
                if self.closed.load(Ordering::Acquire) {
                    running.close();
                }
                entry.insert(Share {
                    admitted: 0,
                    running,
                })
            }
        };
        share.admitted += 1;
        Ok(PeerPermit {
            shares: self.clone(),
            peer,
            running: share.running.clone(),
        })
    }

    /// The protocol stops: requests waiting for their peer's running slot
    /// are refused (`ServeError::Stopping`), now and from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for share in self
            .peers
            .lock()
            .expect("peer shares lock poisoned")
            .values()
        {
            share.running.close();
        }
    }

    /// Peers with admitted requests (for tests).
    #[cfg(test)]
    fn peers(&self) -> usize {
        self.peers.lock().unwrap().len()
    }
}

/// One admitted request's place in its peer's share, given back on drop.
pub(crate) struct PeerPermit {
    shares: Arc<PeerShares>,
    peer: PeerId,
    running: Arc<Semaphore>,
}

impl std::fmt::Debug for PeerPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerPermit")
            .field("peer", &self.peer)
            .finish()
    }
}

impl PeerPermit {
    /// The peer's running slots: a request takes one before the protocol's.
    pub(crate) fn running(&self) -> &Arc<Semaphore> {
        &self.running
    }
}

impl Drop for PeerPermit {
    fn drop(&mut self) {
        let mut peers = self.shares.peers.lock().expect("peer shares lock poisoned");
        if let Entry::Occupied(mut entry) = peers.entry(self.peer) {
            entry.get_mut().admitted -= 1;
            if entry.get().admitted == 0 {
                entry.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::protocol::RateLimit;

    #[test]
    fn a_peer_is_refused_past_its_share_and_others_are_not() {
        let config = Config::default()
            .with_max_concurrent_per_peer(2)
            .with_max_pending_per_peer(1);
        let shares = PeerShares::new(&config);
        let (a, b) = (PeerId::random(), PeerId::random());
        let held: Vec<_> = (0..3).map(|_| shares.admit(a).unwrap()).collect();
        assert!(matches!(shares.admit(a), Err(RefusalReason::PeerLimit)));
        let other = shares.admit(b).unwrap();
        assert_eq!(other.running().available_permits(), 2);
        drop(held);
        assert_eq!(shares.peers(), 1, "a's entry goes with its last request");
        drop(other);
        assert_eq!(shares.peers(), 0);
        assert!(shares.admit(a).is_ok());
    }

    #[test]
    fn closing_refuses_waiting_requests_now_and_later() {
        let shares = PeerShares::new(&Config::default());
        let held = shares.admit(PeerId::random()).unwrap();
        shares.close();
        assert!(held.running().try_acquire().is_err());
        let later = shares.admit(PeerId::random()).unwrap();
        assert!(later.running().try_acquire().is_err());
    }

    #[test]
    fn a_peer_past_its_rate_is_refused_and_others_are_not() {
        let limit = RateLimit::per_second(NonZeroU32::new(1).unwrap())
            .with_burst(NonZeroU32::new(5).unwrap());
        let shares = PeerShares::new(&Config::default().with_rate_limit(limit));
        let (a, b) = (PeerId::random(), PeerId::random());
        for _ in 0..5 {
            drop(shares.admit(a).unwrap());
        }
        assert!(matches!(shares.admit(a), Err(RefusalReason::RateLimited)));
        assert!(shares.admit(b).is_ok());
    }
}
