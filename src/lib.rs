#![doc = include_str!("../README.md")]

#[path = "../actors/mod.rs"]
pub mod actors;
pub mod admin;
pub mod call;
pub mod codec;
pub mod context;
pub mod destination;
pub mod discovery;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod keys;
pub mod metrics;
pub mod multiaddr;
mod node;
pub mod protocol;
pub mod reputation;
pub(crate) mod streams;
mod supervision;
pub mod swarm;
pub mod task;
mod time;
mod warnings;

pub use call::{CallError, Called, Client, Phase};
pub use context::{RequestContext, RequestId};
pub use destination::{Destination, DestinationError};
pub use discovery::{address_book, heartbeat, peer_exchange, registry, template_heartbeat};
pub use error::{HandlerError, RegisterError, ServeError, StartError};
pub use libp2p::{Multiaddr, PeerId, StreamProtocol, identity::Keypair};
pub use node::{Health, Node, NodeBuilder};
/// The protobuf crate `subnet` is built with: a protocol's own messages
/// derive `Message` through it (`prost_build::Config::prost_path("::subnet::prost")`),
/// so their crate needs no `prost` of its own (the README's "Your own
/// messages").
pub use prost;
pub use protocol::{Config as ProtocolConfig, Protocol, RateLimit};
/// The actor crate `subnet` is built on: embedding a node under an actor
/// of one's own (`NodeBuilder::spawn_linked`) takes this `ractor`'s
/// `ActorCell`, so the embedding crate uses `subnet::ractor` rather than a
/// version of its own that may differ.
pub use ractor;
pub use streams::{
    Banned, InboundStream, MAX_INBOUND_STREAMS_PER_CONNECTION, MAX_OUTBOUND_STREAMS_PER_CONNECTION,
    NotMember, OutboundStream,
};
pub use swarm::{addresses::Reachability, security};
