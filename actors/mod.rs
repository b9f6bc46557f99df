//! The node's actors, one per file. See [`supervisor`] for the tree they form.
//! [`NodeActors`] holds the long-lived ones as they are now.

use std::sync::{Arc, RwLock};

use ractor::ActorRef;

use self::{address_book::AddressBookMessage, heartbeat::HeartbeatMessage};
use crate::swarm::Command;

pub mod address_book;
pub mod heartbeat;
pub mod protocol;
pub mod request;
pub mod supervisor;
pub mod swarm;

/// The node's long-lived actors.
#[derive(Debug, Clone)]
pub struct NodeActors {
    /// Owns the swarm.
    pub swarm: ActorRef<Command>,
    /// Writes the address book.
    pub address_book: ActorRef<AddressBookMessage>,
    /// Publishes and validates heartbeats, if enabled.
    pub heartbeat: Option<ActorRef<HeartbeatMessage>>,
}

/// The node's actors as they are now, shared by the supervisor (which
/// writes it) and the node's handles; `None` before start and after stop.
pub(crate) type ActorsCell = Arc<RwLock<Option<NodeActors>>>;

impl NodeActors {
    pub(crate) fn cell() -> ActorsCell {
        Arc::new(RwLock::new(None))
    }
}
