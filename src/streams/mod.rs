//! The network behaviour that carries the direct protocols' streams.
//!
//! It replaces `libp2p-stream`, whose inbound hand-over is a zero-capacity
//! channel that drops streams when the acceptor is busy. Here each connection
//! handler delivers an inbound stream *itself*, from the connection's task:
//! it takes a permit from the protocol's semaphore and hands the stream to the
//! protocol's sink, or, when the protocol is at capacity, resets the
//! stream and counts the refusal ([`admission`]). Outbound streams are
//! requested straight from a connection's handler through a bounded channel
//! ([`outbound`]); for a call, the handler also writes the request and reads
//! the response itself, in the connection's task, and hands the caller the
//! response bytes ([`exchange`], as `request_response` does: no task switch
//! per read or write). Neither direction passes request bytes, or even stream
//! hand-overs, through the swarm's event loop.
//!
//! - [`shared`]: what the behaviour, the handlers and the callers share.
//! - [`behaviour`]: the `NetworkBehaviour`; registers each connection's handler.
//! - [`handler`]: the `ConnectionHandler`; negotiates streams both ways.
//! - [`admission`]: the registered protocols; inbound streams to their sink, or refused.
//! - [`peer_share`]: one peer's share of a protocol (per-peer caps, rate limit).
//! - [`outbound`]: the connections; callers' stream and exchange requests to them.
//! - [`exchange`]: one request frame out, one response frame in, in the connection's task.
//! - [`serve`]: the other end of that wire: one request frame in, the
//!   handler, one response frame out, in the request's actor.
//! - [`stall`]: timeouts on progress for every transfer, both ways.
//! - [`gate`]: membership gating, checked when a connection is established.

pub(crate) mod admission;
pub(crate) mod behaviour;
pub(crate) mod exchange;
pub(crate) mod gate;
pub(crate) mod handler;
pub(crate) mod outbound;
pub(crate) mod peer_share;
pub(crate) mod serve;
pub(crate) mod shared;
pub(crate) mod stall;

pub(crate) use self::shared::Shared;
pub use self::{
    admission::{InboundStream, MAX_INBOUND_STREAMS_PER_CONNECTION},
    behaviour::{Banned, NotMember},
    outbound::{MAX_OUTBOUND_STREAMS_PER_CONNECTION, OutboundStream},
};
