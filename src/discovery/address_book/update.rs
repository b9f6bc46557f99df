//! What the book's writer is told: addresses a source learned, and how
//! dials to them went. Sources send an [`Update`] through [`Updates`], a
//! port onto the writer's mailbox that names no actor (ractor's
//! `DerivedActorRef`): the swarm, discovery and the heartbeat feed the book
//! without knowing who writes it.

use libp2p::{Multiaddr, PeerId};

use super::source::Source;

/// A change for the address book's writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Merge addresses a source learned.
    Learned {
        /// The peer.
        peer: PeerId,
        /// Its addresses.
        addresses: Vec<Multiaddr>,
        /// Where they came from.
        source: Source,
        /// Its subnet node id, if the source knows it.
        subnet_node_id: Option<u64>,
    },
    /// A dial to `address` succeeded.
    Confirmed {
        /// The peer.
        peer: PeerId,
        /// The address that worked.
        address: Multiaddr,
    },
    /// Dials to these addresses failed.
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The addresses that failed.
        addresses: Vec<Multiaddr>,
    },
}

impl Update {
    /// `source` learned that `peer` lives at `addresses` (no node id).
    pub fn learned(peer: PeerId, addresses: Vec<Multiaddr>, source: Source) -> Self {
        Self::Learned {
            peer,
            addresses,
            source,
            subnet_node_id: None,
        }
    }
}

/// Where updates go: the book writer's mailbox (unbounded, as every ractor
/// mailbox; each sender bounds what it sends). A send fails only once the
/// writer has stopped, and then the update has nowhere to go.
pub type Updates = ractor::DerivedActorRef<Update>;
