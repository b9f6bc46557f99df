//! Membership gating: when closed, only the registry's members may connect.
//! Checked by the behaviour when a connection is established; the address
//! book actor sets the members after each registry read, and a peer the
//! registry no longer lists is disconnected (the behaviour closes its
//! connections), not only refused next time.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::task::AtomicWaker;
use libp2p::PeerId;

use crate::discovery::registry::Registry;

/// How long the registry's answer about one peer (`Registry::check`) is
/// kept: 5 min, as the Python subnet template keeps its proof-of-stake
/// answers.
pub(crate) const CHECK_TTL: Duration = Duration::from_secs(300);
/// How long a failed check is kept before the peer is asked about again.
pub(crate) const FAILED_CHECK_TTL: Duration = Duration::from_secs(10);
/// Answers kept; the oldest makes room.
pub(crate) const MAX_CHECKED: usize = 4096;
/// Checks under way at once; a peer beyond is refused without asking.
pub(crate) const MAX_CHECKS_IN_FLIGHT: usize = 32;

/// The membership gate: when closed, only registry members may connect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    members: Arc<RwLock<Option<HashSet<PeerId>>>>,
    /// Whether a registry read has given members yet.
    read: Arc<AtomicBool>,
    /// Admit everyone until the first good read (fail open); else nobody.
    fail_open: bool,
    /// Per-peer questions to the registry about peers its reads do not list.
    checks: Option<Arc<Checks>>,
    revoked: Arc<Revoked>,
}

/// Peers the registry stopped listing, whose connections are still to be
/// closed (at most the previous member set), or every connected peer to be
/// checked again (`sweep`: the first read after a fail-open start).
#[derive(Debug, Default)]
struct Revoked {
    peers: Mutex<HashSet<PeerId>>,
    sweep: AtomicBool,
    waker: AtomicWaker,
}

/// The registry's answers about single peers, and the questions under way.
struct Checks {
    registry: Arc<dyn Registry>,
    answers: Mutex<HashMap<PeerId, (bool, Instant)>>,
    in_flight: Mutex<HashSet<PeerId>>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate that admits only `members` (updated on each registry read);
    /// with `fail_open`, everyone until the first read.
    pub(crate) fn closed(fail_open: bool) -> Self {
        Self {
            members: Arc::new(RwLock::new(Some(HashSet::new()))),
            fail_open,
            ..Self::default()
        }
    }

    /// Asks `registry` about a peer its reads do not list
    /// ([`Registry::check`]) instead of refusing it outright.
    pub(crate) fn with_checks(mut self, registry: Arc<dyn Registry>) -> Self {
        self.checks = Some(Arc::new(Checks {
            registry,
            answers: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
        }));
        self
    }

    /// Whether `peer` may connect. A peer the registry does not list, on a
    /// gate with checks, is refused while the registry is asked about it
    /// (in the background); the answer decides its next attempt.
    pub(crate) fn admits(&self, peer: &PeerId) -> bool {
        match &*self.members.read().expect("gate lock poisoned") {
            None => return true,
            Some(members) if members.contains(peer) => return true,
            Some(_) => {}
        }
        if self.fail_open && !self.read.load(Ordering::Acquire) {
            return true;
        }
        match &self.checks {
            Some(checks) => checks.admits(*peer, self.fail_open),
            None => false,
        }
    }

    /// Replaces the member set, if the gate is closed; peers no longer
    /// listed are to be disconnected.
    pub(crate) fn set_members(&self, members: impl IntoIterator<Item = PeerId>) {
        let gone: Vec<PeerId> = {
            let mut guard = self.members.write().expect("gate lock poisoned");
            let Some(set) = &mut *guard else {
                return;
            };
            let members: HashSet<PeerId> = members.into_iter().collect();
            let gone = set.difference(&members).copied().collect();
            *set = members;
            gone
        };
        let first = !self.read.swap(true, Ordering::AcqRel);
        if first && self.fail_open {
            // Everyone was admitted until now: check every connected peer.
            tracing::info!("first registry read: gating every connected peer");
            self.revoked.sweep.store(true, Ordering::Release);
            self.revoked.waker.wake();
        }
        if gone.is_empty() {
            return;
        }
        tracing::info!(peers = gone.len(), "no longer members: disconnecting them");
        self.revoked
            .peers
            .lock()
            .expect("gate lock poisoned")
            .extend(gone);
        self.revoked.waker.wake();
    }

    /// The next former member whose connections are to be closed (the
    /// behaviour's poll). `connected` lists the connected peers, for the
    /// sweep after a fail-open start.
    pub(crate) fn poll_revoked(
        &self,
        cx: &mut Context<'_>,
        connected: impl FnOnce() -> Vec<PeerId>,
    ) -> Poll<PeerId> {
        self.revoked.waker.register(cx.waker());
        if self.revoked.sweep.swap(false, Ordering::AcqRel) {
            let outsiders: Vec<PeerId> = connected()
                .into_iter()
                .filter(|p| !self.admits(p))
                .collect();
            self.revoked
                .peers
                .lock()
                .expect("gate lock poisoned")
                .extend(outsiders);
        }
        let mut peers = self.revoked.peers.lock().expect("gate lock poisoned");
        while let Some(peer) = peers.iter().next().copied() {
            peers.remove(&peer);
            // Listed again meanwhile: keep it.
            if !self.admits(&peer) {
                return Poll::Ready(peer);
            }
        }
        Poll::Pending
    }
}

impl Checks {
    /// The registry's fresh answer about `peer`; else `false` now, and the
    /// registry asked (if not already, and fewer than
    /// [`MAX_CHECKS_IN_FLIGHT`] questions are under way).
    fn admits(self: &Arc<Self>, peer: PeerId, fail_open: bool) -> bool {
        let now = Instant::now();
        if let Some((answer, until)) = self.answers.lock().expect("gate lock poisoned").get(&peer)
            && *until > now
        {
            return *answer;
        }
        {
            let mut in_flight = self.in_flight.lock().expect("gate lock poisoned");
            if in_flight.contains(&peer) || in_flight.len() >= MAX_CHECKS_IN_FLIGHT {
                return false;
            }
            in_flight.insert(peer);
        }
        let checks = self.clone();
        tokio::spawn(async move {
            let asked = checks.registry.check(peer).await;
            let (answer, ttl) = match asked {
                Ok(member) => (member, CHECK_TTL),
                Err(error) => {
                    tracing::warn!(
                        %peer,
                        "asking the registry about a peer failed ({}): {error}",
                        if fail_open { "admitting it" } else { "refusing it" }
                    );
                    (fail_open, FAILED_CHECK_TTL)
                }
            };
            tracing::debug!(%peer, member = answer, "registry answered about a peer");
            let mut answers = checks.answers.lock().expect("gate lock poisoned");
            if answers.len() >= MAX_CHECKED && !answers.contains_key(&peer) {
                let oldest = answers.iter().min_by_key(|(_, (_, until))| *until);
                if let Some(oldest) = oldest.map(|(p, _)| *p) {
                    answers.remove(&oldest);
                }
            }
            answers.insert(peer, (answer, Instant::now() + ttl));
            drop(answers);
            checks
                .in_flight
                .lock()
                .expect("gate lock poisoned")
                .remove(&peer);
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_dropped_from_the_registry_is_to_be_disconnected() {
        let gate = Gate::closed(false);
        let (a, b) = (PeerId::random(), PeerId::random());
        gate.set_members([a, b]);
        gate.set_members([a]);
        assert!(!gate.admits(&b));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(gate.poll_revoked(&mut cx, Vec::new), Poll::Ready(b));
        assert_eq!(gate.poll_revoked(&mut cx, Vec::new), Poll::Pending);
        // An open gate disconnects nobody.
        let open = Gate::default();
        open.set_members([a]);
        assert_eq!(open.poll_revoked(&mut cx, Vec::new), Poll::Pending);
    }

    #[test]
    fn failing_open_admits_everyone_until_the_first_read_then_gates_the_connected() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let closed = Gate::closed(false);
        assert!(!closed.admits(&a), "fail closed: nobody before a read");
        let gate = Gate::closed(true);
        assert!(gate.admits(&a) && gate.admits(&b));
        gate.set_members([a]);
        assert!(gate.admits(&a) && !gate.admits(&b));
        // b connected while the gate was open: its connections are closed.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(gate.poll_revoked(&mut cx, || vec![a, b]), Poll::Ready(b));
        assert_eq!(gate.poll_revoked(&mut cx, || vec![a, b]), Poll::Pending);
    }
}
