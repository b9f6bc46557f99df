//! The node's actors, one per file. See [`supervisor`] for the tree they form.

pub mod address_book;
pub mod heartbeat;
pub mod protocol;
pub mod request;
pub mod supervisor;
pub mod swarm;
