//! A call's whole life, top to bottom: [`Client`] encodes the request and
//! owns the deadline; `connect` finds a connection (asking discovery and
//! dialing when there is none); the connection's handler runs the exchange
//! (`src/streams/exchange.rs`); `error` names what went wrong.
//! Nothing here is called back from below.
//!
//! What a failure is called is decided in steps, each where the fact it
//! rests on is known; the caller's [`CallError`] is made in the last two:
//!
//! 1. `src/streams/handler.rs`: libp2p's stream upgrade error becomes an
//!    `OpenError` (not supported, negotiation timed out, I/O).
//! 2. `src/streams/outbound.rs` (`Connections::exchange`): a connection
//!    handler gone without answering is `OpenError::ConnectionClosed` if
//!    the stream had not opened, else `ExchangeError::ConnectionLost` in the
//!    step the exchange was in.
//! 3. `src/streams/exchange.rs`: an exchange that failed once its
//!    connection had ended is wrapped `ExchangeError::AfterClose`, with its
//!    step.
//! 4. `error.rs` (`open_failed`, `exchange_failed`): every `OpenError` and
//!    `ExchangeError` becomes a `CallError`; I/O errors are read with
//!    `src/codec.rs`'s `is_reset`, `is_unsupported` and `is_unconfirmed`
//!    and `src/streams/stall.rs`'s `stalled`. An `AfterClose` is a lost
//!    connection unless it was a refusal of the protocol or a stream that
//!    never opened.
//! 5. `connect.rs` (`Connector::exchange`): a lost connection that was
//!    relayed becomes `CallError::CircuitClosed`; and (`on_connection`) a
//!    connection that closed before its stream opened is dialed once more
//!    instead of failing the call.
//!
//! The other errors are named where they happen: `InvalidDestination` in
//! `src/destination.rs`, `RequestTooLarge` and `Decode` in `client.rs`,
//! `Timeout` (naming the phase), `NoAddress`, `DialFailed` and `NodeStopped`
//! in `connect.rs` (`NodeStopped` also in `src/node/`, for the node's own
//! requests to its actors).

pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod error;

pub use self::{
    client::{Called, Client},
    error::{CallError, Phase},
};
