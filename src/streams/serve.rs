//! A request's exchange, the server's side: on an admitted inbound stream
//! whose turn came, one request frame read (bounded in size and time), the
//! handler called under its deadline, one response frame written and the
//! stream closed. The caller's side of the same wire is `exchange.rs`.
//!
//! Every failure is a typed [`ServeError`] naming the request and its
//! caller; the request's actor (`actors/request.rs`) holds the turn, the
//! span and the metrics around it, and its protocol's actor decides what
//! each failure costs the caller ([`violation`]).

use futures::AsyncWriteExt;

use super::{
    admission::InboundStream,
    stall::{Stalling, stalled},
};
use crate::{
    codec::{self, FrameError},
    context::RequestContext,
    error::ServeError,
    protocol::{Config, Protocol},
    reputation::Violation,
    time::far_future,
};

/// Serves `inbound` with `handler` under `config`'s limits: reads the
/// request, runs the handler, writes the response. `frames` is told the
/// request's and the response's frame sizes once the response is encoded,
/// before it is written.
pub(crate) async fn serve<P: Protocol>(
    handler: &P,
    config: &Config,
    inbound: &mut InboundStream,
    frames: impl FnOnce(usize, usize),
) -> Result<(), ServeError> {
    let id = inbound.id;
    let peer = inbound.peer;
    // Time limits count from admission: a request that waited for its
    // turn past the call timeout has lost its caller, and one that
    // waited past the request timeout gets no more time to arrive.
    let admitted_at = inbound.admitted_at;
    let mut stream = Stalling::new(&mut inbound.stream, config.stall_timeout());
    let body = tokio::time::timeout_at(
        admitted_at
            .checked_add(config.request_timeout())
            .unwrap_or_else(far_future),
        codec::read_frame(&mut stream, config.max_request_frame()),
    )
    .await
    .map_err(|_| ServeError::RequestTimeout {
        id,
        peer,
        timeout: config.request_timeout(),
    })?
    .map_err(|source| match source {
        FrameError::Io(e) if stalled(&e).is_some() => ServeError::RequestStalled {
            id,
            peer,
            stall: config.stall_timeout(),
        },
        source => ServeError::Request { id, peer, source },
    })?;
    let waited = admitted_at.elapsed();
    if waited >= config.call_timeout() {
        return Err(ServeError::Expired {
            id,
            peer,
            waited,
            call_timeout: config.call_timeout(),
        });
    }
    let request_len = body.len();
    // Decoding from `Bytes` lets `bytes` fields share the frame's buffer
    // instead of copying out of it.
    let request = <P::Request as prost::Message>::decode(bytes::Bytes::from(body))
        .map_err(|source| ServeError::Decode { id, peer, source })?;
    let ctx = RequestContext {
        id,
        peer,
        protocol: inbound.protocol.clone(),
        remote_addr: Some(inbound.remote_addr.clone()),
        relayed: inbound.relayed,
    };
    let response = tokio::time::timeout(config.handler_deadline(), handler.handle(ctx, request))
        .await
        .map_err(|_| ServeError::HandlerDeadline {
            id,
            peer,
            deadline: config.handler_deadline(),
        })?
        .map_err(|source| ServeError::Handler { id, peer, source })?;
    let len = prost::Message::encoded_len(&response);
    if len > config.max_frame() {
        return Err(ServeError::ResponseTooLarge {
            id,
            peer,
            len,
            max: config.max_frame(),
        });
    }
    let frame = codec::encode_frame(&response);
    frames(request_len, frame.len());
    // Cut when the caller stops reading for the stall timeout; a slow
    // but steady reader gets all of it, within the call timeout (its
    // caller waits no longer).
    // The handler's time was not the caller's stall.
    stream.resume();
    let write = async {
        codec::write_frame(&mut stream, &frame).await?;
        stream.close().await
    };
    let write_deadline = admitted_at
        .checked_add(config.call_timeout())
        .unwrap_or_else(far_future);
    tokio::time::timeout_at(write_deadline, write)
        .await
        .map_err(|_| ServeError::Respond {
            id,
            peer,
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(|source| match stalled(&source) {
            Some(stall) => ServeError::ResponseStalled { id, peer, stall },
            None => ServeError::Respond { id, peer, source },
        })
}

/// The protocol violation a failure shows, if any: a request that is not a
/// well-formed frame of the protocol's message. A frame cut short is not
/// one (an honest caller that gives up mid-write leaves one), nor is a
/// slow, silent or vanished caller.
pub(crate) fn violation(error: &ServeError) -> Option<Violation> {
    match error {
        ServeError::Request {
            source: FrameError::VarintTooLong | FrameError::TooLarge { .. },
            ..
        }
        | ServeError::Decode { .. } => Some(Violation::MalformedFrame),
        _ => None,
    }
}
