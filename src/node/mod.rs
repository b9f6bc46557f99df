//! A node, as its user holds it.
//!
//! - `handle`: [`Node`], what a running node offers.
//! - `builder`: [`NodeBuilder`], a node's settings; `builder/start.rs`
//!   starts it, in named steps.
//! - `health`: [`Health`], what probes read (alive, ready).

mod builder;
mod handle;
mod health;

pub use self::{builder::NodeBuilder, handle::Node, health::Health};
