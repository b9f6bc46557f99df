//! A call's whole life, top to bottom: [`Client`] encodes the request and
//! owns the deadline; `connect` finds a connection (asking discovery and
//! dialing when there is none); the connection's handler runs the exchange
//! (`src/streams/exchange.rs`); `error` names what went wrong, in one place.
//! Nothing here is called back from below.

pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod error;

pub use self::{
    client::{Called, Client},
    error::{CallError, Phase},
};
