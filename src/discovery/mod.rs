//! Where peers live: the address book every source feeds, the registry, the
//! heartbeats, both sides of peer exchange, and the lookup that asks them in
//! turn.
//!
//! - [`address_book`]: the book's data and its shared read view.
//! - [`registry`]: the subnet's members as an authority lists them.
//! - [`heartbeat`]: the heartbeats, `heartbeat/`: `mod.rs` (settings,
//!   rejections, topic), `signed.rs` (the signed heartbeat: build,
//!   validate), `template.rs` (the Python template's JSON heartbeat, also
//!   [`template_heartbeat`]), `signers.rs` (the signers remembered,
//!   bounded), `receiver.rs` (a received heartbeat's checks and what they
//!   decide).
//! - [`peer_exchange`]: "do you know where peer X is?", serving and asking.
//! - `lookup`: book, then peer exchange, then Kademlia.

pub mod address_book;
pub mod heartbeat;
pub(crate) mod lookup;
pub mod peer_exchange;
pub mod registry;

pub use heartbeat::template as template_heartbeat;
