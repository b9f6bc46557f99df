//! What a node's health endpoints look at (`/healthz`, `/readyz` on the
//! metrics server, `src/metrics/server.rs`): whether its actors are alive,
//! and whether it is ready to serve.

use std::sync::Arc;

use libp2p::PeerId;
use ractor::{ActorCell, ActorStatus};

use crate::{actors::ActorsCell, streams::shared::Shared, swarm::addresses::ListenAddresses};

/// A node's health, as probes (systemd, Kubernetes) ask for it. Cloning is
/// cheap. It holds no part of the node up: a node stops when its last
/// [`Node`](crate::Node) handle goes, whatever `Health` handles are left,
/// and is then not alive.
#[derive(Clone)]
pub struct Health {
    pub(crate) peer_id: PeerId,
    pub(crate) supervisor: ActorCell,
    pub(crate) actors: ActorsCell,
    pub(crate) listen_addrs: ListenAddresses,
    pub(crate) shared: Arc<Shared>,
    /// Whether the node was given addresses to listen on.
    pub(crate) listens: bool,
    /// Its bootstrap peers (itself left out).
    pub(crate) bootstrap: Arc<[PeerId]>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("peer_id", &self.peer_id)
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Health {
    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Whether the node's actors are alive: its supervisor, the swarm and
    /// address book actors, and the heartbeat actor if it runs heartbeats
    /// (a heartbeat actor being restarted counts as not alive).
    pub fn alive(&self) -> bool {
        let running = |status: ActorStatus| status == ActorStatus::Running;
        if !running(self.supervisor.get_status()) {
            return false;
        }
        let actors = self.actors.read().expect("actors lock poisoned");
        actors.as_ref().is_some_and(|a| {
            running(a.swarm.get_status())
                && running(a.address_book.get_status())
                && a.heartbeat.as_ref().is_none_or(|h| running(h.get_status()))
        })
    }

    /// Why the node is not ready to serve, or `None` if it is: it is
    /// alive, listens (if it was given addresses to listen on), and, if it
    /// has bootstrap peers, is connected to at least one of them.
    pub fn not_ready(&self) -> Option<String> {
        if !self.alive() {
            return Some("its actors are not running".into());
        }
        if self.listens && self.listen_addrs.all().is_empty() {
            return Some("it listens on no address".into());
        }
        let connected = self.shared.connections.connected_peers();
        if !self.bootstrap.is_empty() && !self.bootstrap.iter().any(|p| connected.contains(p)) {
            return Some(format!(
                "none of its {} bootstrap peers is connected",
                self.bootstrap.len()
            ));
        }
        None
    }
}

impl crate::metrics::Probe for Health {
    fn name(&self) -> String {
        self.peer_id.to_string()
    }

    fn alive(&self) -> bool {
        Health::alive(self)
    }

    fn not_ready(&self) -> Option<String> {
        Health::not_ready(self)
    }
}
