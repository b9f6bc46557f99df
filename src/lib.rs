#![doc = include_str!("../README.md")]

#[path = "../actors/mod.rs"]
pub mod actors;
pub mod address_book;
pub mod admin;
pub mod codec;
pub mod destination;
pub mod error;
pub mod heartbeat;
pub mod keys;
pub mod metrics;
mod node;
pub mod peer_exchange;
pub mod protocol;
pub mod registry;
pub mod security;
mod streams;
pub mod task;
mod woken;

pub use destination::{Destination, DestinationError};
pub use error::{CallError, Phase, RegisterError, ServeError, StartError};
pub use libp2p::{Multiaddr, PeerId, StreamProtocol, identity::Keypair};
pub use node::{Client, Node, NodeBuilder};
pub use protocol::{Config, HandlerError, Protocol, RequestContext};
pub use streams::{InboundStream, MAX_OUTBOUND_STREAMS_PER_CONNECTION, NotMember, OutboundStream};
