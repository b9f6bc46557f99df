//! Errors, one enum per operation: starting a node, registering a protocol,
//! calling a peer, and serving an inbound request.

use std::{io, sync::Arc, time::Duration};

use libp2p::{Multiaddr, PeerId, StreamProtocol, TransportError, swarm::DialError};

use crate::{HandlerError, codec::FrameError, destination::DestinationError};

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
    /// An actor of the node failed to start.
    #[error("an actor failed to start: {0}")]
    Spawn(#[from] ractor::SpawnErr),
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

/// The phase of a call that ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting to the peer.
    Dial,
    /// Opening the stream and negotiating the protocol.
    Open,
    /// Sending the request.
    Write,
    /// Waiting for and reading the response.
    Read,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Dial => "dialing the peer",
            Phase::Open => "opening the stream",
            Phase::Write => "sending the request",
            Phase::Read => "waiting for the response",
        })
    }
}

/// Why a call failed. Every call ends in a response or one of these.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The destination could not be understood.
    #[error("invalid destination: {0}")]
    InvalidDestination(#[from] DestinationError),
    /// No address is known for the peer, and none was given.
    #[error("no address is known for peer {peer}")]
    NoAddress {
        /// The peer.
        peer: PeerId,
    },
    /// Connecting to the peer failed.
    #[error("dialing {peer} failed: {source}")]
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The swarm's error, naming each address tried.
        source: Arc<DialError>,
    },
    /// The peer does not speak the protocol.
    #[error("peer {peer} does not support protocol {protocol}")]
    Unsupported {
        /// The peer.
        peer: PeerId,
        /// The protocol asked for.
        protocol: StreamProtocol,
    },
    /// The call ran out of time.
    #[error("the call to {peer} timed out after {timeout:?} while {phase}")]
    Timeout {
        /// The peer.
        peer: PeerId,
        /// What the call was doing.
        phase: Phase,
        /// The call timeout.
        timeout: Duration,
    },
    /// The connection failed while opening the stream.
    #[error("opening a stream to {peer} failed: {source}")]
    Open {
        /// The peer.
        peer: PeerId,
        /// The failure.
        source: io::Error,
    },
    /// The request exceeds the protocol's maximum frame size.
    #[error("the request is {len} bytes, more than the maximum frame of {max} bytes")]
    RequestTooLarge {
        /// Size of the encoded request.
        len: usize,
        /// The maximum frame size.
        max: usize,
    },
    /// Sending the request failed.
    #[error("sending the request to {peer} failed: {source}")]
    Write {
        /// The peer.
        peer: PeerId,
        /// The failure.
        source: io::Error,
    },
    /// The remote closed or reset the stream without answering. The wire
    /// format has no error frame, so this is how a peer refuses a request
    /// (for example over capacity) or reports that its handler failed.
    #[error(
        "{peer} closed the stream without answering: it refused the request (e.g. over capacity) or its handler failed"
    )]
    Refused {
        /// The peer.
        peer: PeerId,
    },
    /// The response frame is malformed: too large, a bad length prefix, or
    /// cut short by the remote.
    #[error("the response from {peer} is malformed: {source}")]
    MalformedResponse {
        /// The peer.
        peer: PeerId,
        /// What was wrong with the frame.
        source: FrameError,
    },
    /// The response frame is not the protocol's protobuf message.
    #[error("the response from {peer} is not a valid protobuf message: {source}")]
    Decode {
        /// The peer.
        peer: PeerId,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
    /// The node is shutting down or has stopped.
    #[error("the node has stopped")]
    NodeStopped,
}

impl From<std::convert::Infallible> for CallError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl CallError {
    /// A short, bounded label for metrics.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            CallError::InvalidDestination(_) => "invalid_destination",
            CallError::NoAddress { .. } => "no_address",
            CallError::DialFailed { .. } => "dial_failed",
            CallError::Unsupported { .. } => "unsupported",
            CallError::Timeout { .. } => "timeout",
            CallError::Open { .. } | CallError::Write { .. } => "io",
            CallError::RequestTooLarge { .. } => "too_large",
            CallError::Refused { .. } => "refused",
            CallError::MalformedResponse { .. } | CallError::Decode { .. } => "malformed",
            CallError::NodeStopped => "stopped",
        }
    }
}

/// Why serving one inbound request failed. The stream is reset and the
/// failure counted; the node keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request frame could not be read.
    #[error("reading the request failed: {0}")]
    Request(#[source] FrameError),
    /// The request did not arrive in time.
    #[error("the request did not arrive within {0:?}")]
    RequestTimeout(Duration),
    /// The request frame is not the protocol's protobuf message.
    #[error("the request is not a valid protobuf message: {0}")]
    Decode(#[source] prost::DecodeError),
    /// The handler returned an error.
    #[error("the handler failed: {0}")]
    Handler(#[source] HandlerError),
    /// The handler did not finish before its deadline.
    #[error("the handler overran its deadline of {0:?}")]
    HandlerDeadline(Duration),
    /// The response exceeds the protocol's maximum frame size.
    #[error("the response is {len} bytes, more than the maximum frame of {max} bytes")]
    ResponseTooLarge {
        /// Size of the encoded response.
        len: usize,
        /// The maximum frame size.
        max: usize,
    },
    /// Writing the response failed or timed out.
    #[error("sending the response failed: {0}")]
    Respond(#[source] io::Error),
    /// The handler panicked.
    #[error("the handler panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The protocol is stopping and no longer runs handlers.
    #[error("the protocol is stopping")]
    Stopping,
}

impl ServeError {
    /// A short, bounded label for metrics.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            ServeError::Request(FrameError::Closed) => "closed",
            ServeError::Request(FrameError::Io(_)) => "io",
            ServeError::Request(_) | ServeError::Decode(_) => "malformed",
            ServeError::RequestTimeout(_) => "timeout",
            ServeError::Handler(_) => "handler_error",
            ServeError::HandlerDeadline(_) => "handler_deadline",
            ServeError::ResponseTooLarge { .. } => "too_large",
            ServeError::Respond(_) => "io",
            ServeError::Panicked { .. } => "panic",
            ServeError::Stopping => "stopping",
        }
    }
}
