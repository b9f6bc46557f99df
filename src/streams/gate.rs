//! Membership gating: when closed, only the registry's members may connect.
//! Checked by the behaviour when a connection is established; the address
//! book actor sets the members after each registry read.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use libp2p::PeerId;

/// The membership gate: when closed, only registry members may connect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    members: Arc<RwLock<Option<HashSet<PeerId>>>>,
}

impl Gate {
    /// A gate that admits only `members` (updated on each registry read).
    pub(crate) fn closed() -> Self {
        Self {
            members: Arc::new(RwLock::new(Some(HashSet::new()))),
        }
    }

    /// Whether `peer` may connect.
    pub(crate) fn admits(&self, peer: &PeerId) -> bool {
        match &*self.members.read().expect("gate lock poisoned") {
            None => true,
            Some(members) => members.contains(peer),
        }
    }

    /// Replaces the member set, if the gate is closed.
    pub(crate) fn set_members(&self, members: impl IntoIterator<Item = PeerId>) {
        if let Some(set) = &mut *self.members.write().expect("gate lock poisoned") {
            *set = members.into_iter().collect();
        }
    }
}
