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

use std::panic::AssertUnwindSafe;

use futures::{FutureExt, task::AtomicWaker};
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
/// Time one check may take; a slower (or panicking) one counts as failed.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// What the gate knows of a peer, without asking anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Membership {
    /// Admitted: listed, the gate open, or the registry said so.
    Member,
    /// Refused.
    Outsider,
    /// Not listed, and the registry not asked about it yet (a gate with
    /// per-peer checks).
    Unknown,
}

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
        if self.listed(peer) {
            return true;
        }
        match &self.checks {
            Some(checks) => checks.admits(*peer, self.fail_open),
            None => false,
        }
    }

    /// What the gate knows of `peer`, asking no one (for gossip: a
    /// heartbeat must not make the node ask the chain about its signer).
    pub(crate) fn membership(&self, peer: &PeerId) -> Membership {
        if self.listed(peer) {
            return Membership::Member;
        }
        match self.checks.as_ref().map(|c| c.known(peer)) {
            Some(Some(true)) => Membership::Member,
            Some(None) => Membership::Unknown,
            Some(Some(false)) | None => Membership::Outsider,
        }
    }

    /// Admitted without asking: the gate open, `peer` listed, or failing
    /// open before the first read.
    fn listed(&self, peer: &PeerId) -> bool {
        match &*self.members.read().expect("gate lock poisoned") {
            None => return true,
            Some(members) if members.contains(peer) => return true,
            Some(_) => {}
        }
        self.fail_open && !self.read.load(Ordering::Acquire)
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
    /// The registry's last answer about `peer`, fresh or not.
    fn known(&self, peer: &PeerId) -> Option<bool> {
        let answers = self.answers.lock().expect("gate lock poisoned");
        answers.get(peer).map(|(answer, _)| *answer)
    }

    /// The registry's answer about `peer`. A fresh one decides; an expired
    /// one still decides while the registry is asked again (a member is not
    /// refused every 5 min); with none, `false` while it is asked. At most
    /// [`MAX_CHECKS_IN_FLIGHT`] questions are under way; beyond, the peer's
    /// last answer (or a refusal) stands without asking.
    fn admits(self: &Arc<Self>, peer: PeerId, fail_open: bool) -> bool {
        let now = Instant::now();
        let last = self
            .answers
            .lock()
            .expect("gate lock poisoned")
            .get(&peer)
            .copied();
        if let Some((answer, until)) = last
            && until > now
        {
            return answer;
        }
        let last = last.is_some_and(|(answer, _)| answer);
        {
            let mut in_flight = self.in_flight.lock().expect("gate lock poisoned");
            if in_flight.contains(&peer) || in_flight.len() >= MAX_CHECKS_IN_FLIGHT {
                return last;
            }
            in_flight.insert(peer);
        }
        let checks = self.clone();
        tokio::spawn(async move {
            // Bounded in time, and a panicking registry is a failed check:
            // the peer always leaves `in_flight`.
            let asked = AssertUnwindSafe(checks.registry.check(peer)).catch_unwind();
            let asked = match tokio::time::timeout(CHECK_TIMEOUT, asked).await {
                Ok(Ok(Ok(member))) => Ok(member),
                Ok(Ok(Err(error))) => Err(error.to_string()),
                Ok(Err(_)) => Err("the registry panicked".to_owned()),
                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
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
        last
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

    /// A registry that lists nobody and answers checks with `staked`.
    struct Staked(Mutex<bool>);

    impl Registry for Staked {
        fn members(
            &self,
        ) -> futures::future::BoxFuture<
            '_,
            Result<Vec<crate::registry::Member>, crate::registry::RegistryError>,
        > {
            Box::pin(async { Ok(Vec::new()) })
        }

        fn checks_peers(&self) -> bool {
            true
        }

        fn check(
            &self,
            _peer: PeerId,
        ) -> futures::future::BoxFuture<'_, Result<bool, crate::registry::RegistryError>> {
            let staked = *self.0.lock().unwrap();
            Box::pin(async move { Ok(staked) })
        }
    }

    async fn until(gate: &Gate, peer: &PeerId, admitted: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while gate.admits(peer) != admitted {
            assert!(
                Instant::now() < deadline,
                "the registry's answer never came"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn answers_are_asked_once_kept_and_stand_while_asked_again() {
        let registry = Arc::new(Staked(Mutex::new(true)));
        let gate = Gate::closed(false).with_checks(registry.clone());
        gate.set_members([]);
        let peer = PeerId::random();
        assert_eq!(gate.membership(&peer), Membership::Unknown);
        assert!(!gate.admits(&peer), "refused while the registry is asked");
        until(&gate, &peer, true).await;
        assert_eq!(gate.membership(&peer), Membership::Member);
        // The answer expires and the stake goes: the old answer stands
        // while the registry is asked again, then the new one.
        let checks = gate.checks.clone().unwrap();
        checks
            .answers
            .lock()
            .unwrap()
            .insert(peer, (true, Instant::now() - Duration::from_secs(1)));
        *registry.0.lock().unwrap() = false;
        assert!(gate.admits(&peer));
        until(&gate, &peer, false).await;
        assert_eq!(gate.membership(&peer), Membership::Outsider);
        assert!(checks.in_flight.lock().unwrap().is_empty());
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
