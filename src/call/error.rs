//! A call's errors, and where what went wrong on the stream
//! (`src/streams/outbound.rs`: a stream that did not open, an exchange that
//! failed) becomes what the caller is told: each `OpenError` and
//! `ExchangeError` is named here, once. The steps before and the one after
//! (a relayed connection's loss is `CircuitClosed`, in `connect.rs`) are
//! listed in `mod.rs`.

use std::{io, sync::Arc, time::Duration};

use libp2p::{PeerId, StreamProtocol, swarm::DialError};

use crate::{
    codec::{self, FrameError},
    destination::DestinationError,
    error::one_line,
    streams::{
        outbound::{ExchangeError, OpenError, Step},
        stall::stalled,
    },
};

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
    #[error("dialing {peer} failed: {}", one_line(source))]
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
    /// The connection to the peer was lost while the call was under way:
    /// the request may or may not have reached the peer's handler.
    #[error("the connection to {peer} was lost while {phase}")]
    ConnectionLost {
        /// The peer.
        peer: PeerId,
        /// What the call was doing: [`Phase::Write`] or [`Phase::Read`].
        phase: Phase,
    },
    /// The call ran over a relayed connection (`/p2p-circuit`) that ended
    /// while the call was under way: the relay closed the circuit at one of
    /// its limits (a circuit's duration or data: 10 min and 64 MiB each way
    /// on a `subnet` relay, 2 min and 128 KiB on one with rust-libp2p's
    /// defaults; see [`relay_server_config`]), or it lost a connection.
    /// The request may or may not have reached the peer's handler.
    ///
    /// [`relay_server_config`]: crate::swarm::relay_server_config
    #[error(
        "the relayed connection to {peer} ended while {phase}: the relay closed the circuit (at its limit of time or data per circuit, or it lost a connection)"
    )]
    CircuitClosed {
        /// The peer.
        peer: PeerId,
        /// What the call was doing: [`Phase::Write`] or [`Phase::Read`].
        phase: Phase,
    },
    /// The transfer stopped: no byte of the request could be sent, or no
    /// further byte of a response that had begun arrived, for the
    /// protocol's stall timeout (`ProtocolConfig::stall_timeout`).
    #[error("the call to {peer} made no progress for {stall:?} while {phase}")]
    Stalled {
        /// The peer.
        peer: PeerId,
        /// What the call was doing: [`Phase::Write`] or [`Phase::Read`].
        phase: Phase,
        /// The stall timeout.
        stall: Duration,
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

/// Every outcome a call is counted under (`ok` and each
/// [`CallError`]'s label).
pub(crate) const CALL_OUTCOMES: [&str; 14] = [
    "ok",
    "stalled",
    "invalid_destination",
    "no_address",
    "dial_failed",
    "unsupported",
    "timeout",
    "io",
    "too_large",
    "refused",
    "connection_lost",
    "circuit_closed",
    "malformed",
    "stopped",
];

impl CallError {
    /// A short, bounded label for metrics (one of [`CALL_OUTCOMES`]).
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            CallError::InvalidDestination(_) => "invalid_destination",
            CallError::NoAddress { .. } => "no_address",
            CallError::DialFailed { .. } => "dial_failed",
            CallError::Unsupported { .. } => "unsupported",
            CallError::Timeout { .. } => "timeout",
            CallError::Stalled { .. } => "stalled",
            CallError::Open { .. } | CallError::Write { .. } => "io",
            CallError::RequestTooLarge { .. } => "too_large",
            CallError::Refused { .. } => "refused",
            CallError::ConnectionLost { .. } => "connection_lost",
            CallError::CircuitClosed { .. } => "circuit_closed",
            CallError::MalformedResponse { .. } | CallError::Decode { .. } => "malformed",
            CallError::NodeStopped => "stopped",
        }
    }
}

impl From<Step> for Phase {
    fn from(step: Step) -> Self {
        match step {
            Step::Open => Phase::Open,
            Step::Write => Phase::Write,
            Step::Read => Phase::Read,
        }
    }
}

/// What a stream that failed to open means to a caller of `peer`.
/// `ConnectionClosed` is not final (the call dials again) and is the
/// caller's to handle.
pub(crate) fn open_failed(
    peer: PeerId,
    protocol: &StreamProtocol,
    error: OpenError,
    timeout: Duration,
) -> CallError {
    match error {
        OpenError::Unsupported => CallError::Unsupported {
            peer,
            protocol: protocol.clone(),
        },
        OpenError::Timeout => CallError::Timeout {
            peer,
            phase: Phase::Open,
            timeout,
        },
        OpenError::Io(source) => CallError::Open { peer, source },
        OpenError::ConnectionClosed => CallError::Open {
            peer,
            source: io::ErrorKind::ConnectionAborted.into(),
        },
    }
}

/// What an exchange that failed on an open stream means to a caller of
/// `peer`.
pub(crate) fn exchange_failed(
    peer: PeerId,
    protocol: &StreamProtocol,
    error: ExchangeError,
) -> CallError {
    let unsupported = || CallError::Unsupported {
        peer,
        protocol: protocol.clone(),
    };
    match error {
        ExchangeError::Write(e) if stalled(&e).is_some() => CallError::Stalled {
            peer,
            phase: Phase::Write,
            stall: stalled(&e).unwrap_or_default(),
        },
        ExchangeError::Read(FrameError::Io(e)) if stalled(&e).is_some() => CallError::Stalled {
            peer,
            phase: Phase::Read,
            stall: stalled(&e).unwrap_or_default(),
        },
        // QUIC (quinn) reports a lost connection on the stream itself.
        ExchangeError::Write(e) if e.kind() == io::ErrorKind::NotConnected => {
            CallError::ConnectionLost {
                peer,
                phase: Phase::Write,
            }
        }
        ExchangeError::Read(FrameError::Io(e)) if e.kind() == io::ErrorKind::NotConnected => {
            CallError::ConnectionLost {
                peer,
                phase: Phase::Read,
            }
        }
        ExchangeError::Write(source) if codec::is_unsupported(&source) => unsupported(),
        ExchangeError::Write(source) if codec::is_reset(&source) => CallError::Refused { peer },
        ExchangeError::Write(source) => CallError::Write { peer, source },
        ExchangeError::Read(FrameError::Io(e)) if codec::is_unsupported(&e) => unsupported(),
        // The stream ended before the remote confirmed the protocol (lazy
        // negotiation): it never opened (e.g. the remote denied the connection).
        ExchangeError::Read(FrameError::Io(source)) if codec::is_unconfirmed(&source) => {
            CallError::Open { peer, source }
        }
        ExchangeError::Read(FrameError::Io(e)) if codec::is_reset(&e) => {
            CallError::Refused { peer }
        }
        ExchangeError::Read(FrameError::Closed) => CallError::Refused { peer },
        ExchangeError::Read(source) => CallError::MalformedResponse { peer, source },
        ExchangeError::ConnectionLost(step) => CallError::ConnectionLost {
            peer,
            phase: step.into(),
        },
        // After the connection ended: a refusal of the protocol, or a stream
        // that never opened, is still that; anything else is the lost
        // connection, not the remote's refusal.
        ExchangeError::AfterClose(step, error) => match exchange_failed(peer, protocol, *error) {
            named @ (CallError::Unsupported { .. } | CallError::Open { .. }) => named,
            _ => CallError::ConnectionLost {
                peer,
                phase: step.into(),
            },
        },
    }
}
