//! What a handler knows about the request it answers: [`RequestContext`],
//! and the request's [`RequestId`].

use std::fmt;

use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// An inbound request's id, unique on its node for the node's life: in the
/// request's [`RequestContext`], its `request` span and every log line and
/// [`ServeError`](crate::error::ServeError) about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a handler knows about the request it answers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request's id on this node.
    pub id: RequestId,
    /// The peer that opened the stream.
    pub peer: PeerId,
    /// The protocol the stream negotiated.
    pub protocol: StreamProtocol,
    /// The remote address of the connection, where known.
    pub remote_addr: Option<Multiaddr>,
    /// Whether the request came through a relay (the caller is behind NAT,
    /// or this node is, and no direct connection was made).
    pub relayed: bool,
}
