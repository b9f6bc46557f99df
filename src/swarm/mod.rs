//! The node's libp2p swarm, built: transports (TCP + Noise + yamux, and
//! QUIC, both through DNS resolution, and circuits through relays) and
//! behaviours (connection limits, the direct protocols' streams, identify,
//! ping, GossipSub, Kademlia, AutoNAT v2, relay v2 and DCUtR), and the event
//! loop that drives it (`event_loop/`), which `actors/swarm.rs` owns.
//!
//! - `build`: transports and behaviours built, with their limits.
//! - [`addresses`]: the node's listen addresses, kept current, and whether
//!   it can be reached.
//! - `config`: the swarm's settings, handed whole from `NodeBuilder`.
//! - `listen`: the listeners bound at start, and the wait for their addresses.
//! - `event_loop`: the task that drives the swarm, one part per concern.
//! - `trim`, `upkeep`: which connections to close, which peers to dial.
//! - `relays`: the relays the node holds reservations on.
//! - `dial_back`: the AutoNAT server, kept from dialing where a remote peer
//!   must not make the node dial.
//! - [`security`]: Noise under the Python template's protocol names.
//! - `woken`: behaviours whose connection handlers are polled only when woken.

pub mod addresses;
mod build;
mod config;
pub(crate) mod dial_back;
pub(crate) mod event_loop;
pub(crate) mod listen;
pub(crate) mod relays;
pub mod security;
pub(crate) mod trim;
pub(crate) mod upkeep;
pub(crate) mod woken;

pub use self::{
    build::{Built, CONNECTION_TIMEOUT, relay_server_config},
    event_loop::{Command, DialResult, GossipMessage, GossipPort, MAX_PENDING_GOSSIP, Overloaded},
};
pub(crate) use self::{
    build::{SwarmOptions, build},
    config::Config,
};
