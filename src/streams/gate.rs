//! Membership gating: when closed, only the registry's members may connect.
//! Checked by the behaviour when a connection is established; the address
//! book actor sets the members after each registry read, and a peer the
//! registry no longer lists is disconnected (the behaviour closes its
//! connections), not only refused next time.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, RwLock},
    task::{Context, Poll},
};

use futures::task::AtomicWaker;
use libp2p::PeerId;

/// The membership gate: when closed, only registry members may connect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    members: Arc<RwLock<Option<HashSet<PeerId>>>>,
    revoked: Arc<Revoked>,
}

/// Peers the registry stopped listing, whose connections are still to be
/// closed (at most the previous member set).
#[derive(Debug, Default)]
struct Revoked {
    peers: Mutex<HashSet<PeerId>>,
    waker: AtomicWaker,
}

impl Gate {
    /// A gate that admits only `members` (updated on each registry read).
    pub(crate) fn closed() -> Self {
        Self {
            members: Arc::new(RwLock::new(Some(HashSet::new()))),
            revoked: Arc::default(),
        }
    }

    /// Whether `peer` may connect.
    pub(crate) fn admits(&self, peer: &PeerId) -> bool {
        match &*self.members.read().expect("gate lock poisoned") {
            None => true,
            Some(members) => members.contains(peer),
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
    /// behaviour's poll).
    pub(crate) fn poll_revoked(&self, cx: &mut Context<'_>) -> Poll<PeerId> {
        self.revoked.waker.register(cx.waker());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_dropped_from_the_registry_is_to_be_disconnected() {
        let gate = Gate::closed();
        let (a, b) = (PeerId::random(), PeerId::random());
        gate.set_members([a, b]);
        gate.set_members([a]);
        assert!(!gate.admits(&b));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(gate.poll_revoked(&mut cx), Poll::Ready(b));
        assert_eq!(gate.poll_revoked(&mut cx), Poll::Pending);
        // An open gate disconnects nobody.
        let open = Gate::default();
        open.set_members([a]);
        assert_eq!(open.poll_revoked(&mut cx), Poll::Pending);
    }
}
