//! A call's exchange, the connection's side: on a new outbound stream, one
//! request frame written and one response frame read, in the connection's
//! task, then the answer handed to the waiting caller. The server's side
//! of the same wire is `serve.rs`. What a failure means to the caller is
//! `src/call/error.rs`'s to say.
//!
//! When the connection ends while exchanges are under way, its handler
//! hands them to a task of their own (see `handler.rs`): a response that
//! arrived just before the connection closed (a node shutting down closes
//! its connections right after its last responses) is still read from the
//! stream's buffer, and an exchange that cannot finish then reports the
//! connection lost, not a refusal.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use futures::future::Either;
use libp2p::Stream;

use super::{
    outbound::{ExchangeError, ExchangeRequest, Step},
    stall::Stalling,
};
use crate::codec;

/// Runs `request` on `stream`, the negotiated outbound stream; `closed`
/// says whether the stream's connection has ended.
pub(crate) async fn run(request: ExchangeRequest, stream: Stream, closed: Arc<AtomicBool>) {
    let ExchangeRequest {
        frame,
        transfer,
        progress,
        mut reply,
    } = request;
    let mut stream = Stalling::new(stream, transfer.stall);
    if reply.is_canceled() {
        return; // the caller gave up while the stream opened: send nothing
    }
    let result = {
        let exchange = async {
            progress.set(Step::Write);
            codec::write_frame(&mut stream, &frame)
                .await
                .map_err(ExchangeError::Write)?;
            progress.set(Step::Read);
            stream.await_answer();
            codec::read_frame(&mut stream, transfer.max)
                .await
                .map_err(ExchangeError::Read)
        };
        futures::pin_mut!(exchange);
        // The caller's cancellation first: a caller that gave up gets no
        // more bytes written on its behalf.
        match futures::future::select(reply.cancellation(), exchange).await {
            Either::Right((result, _)) => result,
            // The caller gave up: dropping the stream resets it.
            Either::Left(_) => return,
        }
    };
    // The stream may have ended because its connection did, not because
    // the remote refused: say so, and let `call/error.rs` decide.
    let result = match result {
        Err(error) if closed.load(Ordering::Acquire) => {
            Err(ExchangeError::AfterClose(progress.get(), Box::new(error)))
        }
        result => result,
    };
    let _ = reply.send(Ok(result));
    // Dropping the stream closes it: yamux sends FIN once the server's FIN
    // arrived (it closes right after its response), RST otherwise.
}
