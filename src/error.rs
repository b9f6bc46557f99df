//! Errors, one enum per operation: starting a node, registering a protocol,
//! and serving an inbound request (with the error a handler returns).
//! A call's errors are the call's own: `src/call/error.rs`. `one_line`
//! puts any error's text on one line, for the call's and the chain's errors.

use std::{error::Error as StdError, fmt, io, time::Duration};

use libp2p::{Multiaddr, PeerId, StreamProtocol, TransportError};

use crate::{codec::FrameError, context::RequestId};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The transports could not be built.
    #[error("building the transports failed: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {}", describe_listen(source))]
    Listen {
        /// The address asked for.
        address: Multiaddr,
        /// Why it failed (for example: address already in use).
        source: TransportError<io::Error>,
    },
    /// The process ran out of file descriptors (`EMFILE`, or the system's
    /// table is full: `ENFILE`) while the node started: every connection,
    /// listener and dial holds one. Raise the hard limit (`ulimit -Hn`,
    /// systemd's `LimitNOFILE`) or run fewer nodes per process.
    #[error(
        "{}the process is out of file descriptors (open-file limit {limit}); raise the hard limit (ulimit -Hn, systemd LimitNOFILE) or run fewer nodes per process",
        address.as_ref().map(|a| format!("cannot listen on {a}: ")).unwrap_or_default()
    )]
    OutOfFileDescriptors {
        /// The address asked for, if it happened while listening (else
        /// while building the transports).
        address: Option<Multiaddr>,
        /// The process's soft open-file limit (the node raised it to the
        /// hard limit at start).
        limit: u64,
    },
    /// A listener failed before reporting its address.
    #[error("the listener on {address} failed: {reason}")]
    ListenerFailed {
        /// The address asked for.
        address: Multiaddr,
        /// What the listener reported.
        reason: String,
    },
    /// A bootstrap address does not end in `/p2p/<peer id>`.
    #[error("bootstrap address {address} has no /p2p/<peer id> part")]
    Bootstrap {
        /// The address given.
        address: Multiaddr,
    },
    /// A relay address does not end in `/p2p/<peer id>`.
    #[error("relay address {address} has no /p2p/<peer id> part")]
    Relay {
        /// The address given.
        address: Multiaddr,
    },
    /// Membership gating is on but no registry says who the members are:
    /// every connection would be refused.
    #[error("gating is on but there is no registry: every peer would be refused")]
    GatingWithoutRegistry,
    /// `max_peers` is below `min_peers`: upkeep would dial peers that
    /// trimming closes again.
    #[error("max_peers ({max}) is below min_peers ({min})")]
    MaxPeersBelowMinPeers {
        /// `NodeBuilder::max_peers`.
        max: usize,
        /// `NodeBuilder::min_peers`.
        min: usize,
    },
    /// An actor of the node failed to start.
    #[error("an actor failed to start: {0}")]
    Spawn(#[from] ractor::SpawnErr),
    /// A built-in protocol (peer exchange) could not be registered.
    #[error("a built-in protocol could not be registered: {0}")]
    Register(#[from] RegisterError),
}

impl StartError {
    /// Out of descriptors, with the process's open-file limit now.
    pub(crate) fn out_of_descriptors(address: Option<Multiaddr>) -> Self {
        StartError::OutOfFileDescriptors {
            address,
            limit: rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft),
        }
    }
}

/// Whether `error` (or an error it wraps) is the OS saying the process or
/// the system is out of file descriptors (`EMFILE`, `ENFILE`).
pub(crate) fn is_out_of_descriptors(error: &(dyn std::error::Error + 'static)) -> bool {
    os_error_in_chain(error)
        // libp2p nests a listener's io::Error in `Either` wrappers that do
        // not expose it as a source, and the DNS resolver's arrives as text;
        // their Debug form, or std's "(os error N)", still names it.
        || {
            let debug = format!("{error:?}");
            let text = error.to_string();
            ["Os { code: 24,", "Os { code: 23,"]
                .iter()
                .any(|s| debug.contains(s))
                || ["(os error 24)", "(os error 23)"]
                    .iter()
                    .any(|s| text.contains(s))
        }
}

fn os_error_in_chain(error: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = error.downcast_ref::<io::Error>() {
        if matches!(io.raw_os_error(), Some(23 | 24)) {
            return true;
        }
        // A wrapped error (`io::Error::other(e)`) hides `e` from `source()`.
        if let Some(inner) = io.get_ref()
            && os_error_in_chain(inner)
        {
            return true;
        }
    }
    error.source().is_some_and(os_error_in_chain)
}

fn describe_listen(error: &TransportError<io::Error>) -> String {
    match error {
        TransportError::MultiaddrNotSupported(_) => "no transport supports this address".into(),
        TransportError::Other(e) => {
            // The transport wraps the OS error: show the innermost message.
            let mut source: &dyn std::error::Error = e;
            while let Some(inner) = source.source() {
                source = inner;
            }
            let text = source.to_string();
            if text.is_empty() {
                format!("{e:?}")
            } else {
                text
            }
        }
    }
}

/// An error's text on one line: libp2p's DNS transport lists the failure of
/// each resolved address on a line of its own.
pub(crate) fn one_line(error: &impl std::fmt::Display) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a protocol could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The protocol id is not a valid libp2p protocol name (it must start with `/`).
    #[error("`{0}` is not a valid protocol id: it must start with `/`")]
    InvalidId(&'static str),
    /// A protocol with this id is already registered on the node.
    #[error("protocol {0} is already registered on this node")]
    AlreadyRegistered(StreamProtocol),
    /// The protocol's actor could not start.
    #[error("the protocol's actor failed to start: {0}")]
    Spawn(#[from] ractor::SpawnErr),
}

/// Why serving one inbound request failed. The stream is reset and the
/// failure counted; the node keeps serving. Each names the request's id
/// (as in `RequestContext::id` and the request's span) and its peer.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request frame could not be read.
    #[error("request {id} from {peer}: reading the request failed: {source}")]
    Request {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// What was wrong with the frame.
        source: FrameError,
    },
    /// The request did not arrive in time.
    #[error("request {id} from {peer}: the request did not arrive within {timeout:?}")]
    RequestTimeout {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The protocol's request timeout.
        timeout: Duration,
    },
    /// The request stopped arriving: no byte for the protocol's stall
    /// timeout.
    #[error("request {id} from {peer}: the request made no progress for {stall:?}")]
    RequestStalled {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The protocol's stall timeout.
        stall: Duration,
    },
    /// The request waited for a handler slot past its caller's call
    /// timeout (counted from admission): its caller has given up, so the
    /// handler never runs.
    #[error(
        "request {id} from {peer}: shed unserved after waiting {waited:?}, past the call timeout of {call_timeout:?}"
    )]
    Expired {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// How long it waited since admission.
        waited: Duration,
        /// The protocol's call timeout.
        call_timeout: Duration,
    },
    /// The request frame is not the protocol's protobuf message.
    #[error("request {id} from {peer}: the request is not a valid protobuf message: {source}")]
    Decode {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
    /// The handler returned an error.
    #[error("request {id} from {peer}: the handler failed: {source}")]
    Handler {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The handler's error.
        source: HandlerError,
    },
    /// The handler did not finish before its deadline.
    #[error("request {id} from {peer}: the handler overran its deadline of {deadline:?}")]
    HandlerDeadline {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The protocol's handler deadline.
        deadline: Duration,
    },
    /// The response exceeds the protocol's maximum frame size.
    #[error(
        "request {id} from {peer}: the response is {len} bytes, more than the maximum frame of {max} bytes"
    )]
    ResponseTooLarge {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// Size of the encoded response.
        len: usize,
        /// The maximum frame size.
        max: usize,
    },
    /// Writing the response failed or timed out.
    #[error("request {id} from {peer}: sending the response failed: {source}")]
    Respond {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The failure.
        source: io::Error,
    },
    /// The caller stopped reading the response: no byte taken for the
    /// protocol's stall timeout.
    #[error("request {id} from {peer}: the caller took no byte of the response for {stall:?}")]
    ResponseStalled {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The protocol's stall timeout.
        stall: Duration,
    },
    /// The handler panicked.
    #[error("request {id} from {peer}: the handler panicked: {message}")]
    Panicked {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
        /// The panic's message.
        message: String,
    },
    /// The protocol stopped before the request got a handler slot.
    #[error("request {id} from {peer}: the protocol is stopping")]
    Stopping {
        /// The request.
        id: RequestId,
        /// The caller.
        peer: PeerId,
    },
}

/// Every outcome a served request is counted under (`ok` and each
/// [`ServeError`]'s label).
pub(crate) const SERVE_OUTCOMES: [&str; 12] = [
    "ok",
    "stalled",
    "expired",
    "closed",
    "io",
    "malformed",
    "timeout",
    "handler_error",
    "handler_deadline",
    "too_large",
    "panic",
    "stopping",
];

impl ServeError {
    /// A short, bounded label for metrics (one of [`SERVE_OUTCOMES`]).
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            ServeError::Request {
                source: FrameError::Closed,
                ..
            } => "closed",
            ServeError::Request {
                source: FrameError::Io(_),
                ..
            } => "io",
            ServeError::Request { .. } | ServeError::Decode { .. } => "malformed",
            ServeError::RequestTimeout { .. } => "timeout",
            ServeError::RequestStalled { .. } | ServeError::ResponseStalled { .. } => "stalled",
            ServeError::Expired { .. } => "expired",
            ServeError::Handler { .. } => "handler_error",
            ServeError::HandlerDeadline { .. } => "handler_deadline",
            ServeError::ResponseTooLarge { .. } => "too_large",
            ServeError::Respond { .. } => "io",
            ServeError::Panicked { .. } => "panic",
            ServeError::Stopping { .. } => "stopping",
        }
    }

    /// The peer whose request failed.
    pub fn peer(&self) -> PeerId {
        match self {
            ServeError::Request { peer, .. }
            | ServeError::RequestTimeout { peer, .. }
            | ServeError::RequestStalled { peer, .. }
            | ServeError::Expired { peer, .. }
            | ServeError::Decode { peer, .. }
            | ServeError::Handler { peer, .. }
            | ServeError::HandlerDeadline { peer, .. }
            | ServeError::ResponseTooLarge { peer, .. }
            | ServeError::Respond { peer, .. }
            | ServeError::ResponseStalled { peer, .. }
            | ServeError::Panicked { peer, .. }
            | ServeError::Stopping { peer, .. } => *peer,
        }
    }

    /// The request that failed.
    pub fn request_id(&self) -> RequestId {
        match self {
            ServeError::Request { id, .. }
            | ServeError::RequestTimeout { id, .. }
            | ServeError::RequestStalled { id, .. }
            | ServeError::Expired { id, .. }
            | ServeError::ResponseStalled { id, .. }
            | ServeError::Decode { id, .. }
            | ServeError::Handler { id, .. }
            | ServeError::HandlerDeadline { id, .. }
            | ServeError::ResponseTooLarge { id, .. }
            | ServeError::Respond { id, .. }
            | ServeError::Panicked { id, .. }
            | ServeError::Stopping { id, .. } => *id,
        }
    }
}

/// The error a handler returns. The caller sees the stream reset; the message
/// goes to the node's logs and the failure to its metrics.
pub struct HandlerError(Box<dyn StdError + Send + Sync>);

impl HandlerError {
    /// Wraps any error, or a message.
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for HandlerError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
