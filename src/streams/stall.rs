//! Timeouts on progress: a stream wrapper that fails a read or a write once
//! the transfer has gone [`Config::stall_timeout`] without moving a byte.
//! A slow but steady transfer runs on (bounded as a whole only by the
//! call's timeout); a stopped one is cut.
//!
//! [`Config::stall_timeout`]: crate::ProtocolConfig::stall_timeout

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use crate::time::far_future;

/// The error inside the `io::ErrorKind::TimedOut` a stalled transfer fails
/// with.
#[derive(Debug, thiserror::Error)]
#[error("the transfer made no progress for {0:?}")]
pub(crate) struct Stalled(pub(crate) Duration);

/// Whether `error` is a stalled transfer's; the stall timeout if so.
pub(crate) fn stalled(error: &io::Error) -> Option<Duration> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Stalled>())
        .map(|stalled| stalled.0)
}

/// `inner`, failing with [`Stalled`] when a read or write waits longer than
/// `stall` since the last byte moved.
#[derive(Debug)]
pub(crate) struct Stalling<S> {
    inner: S,
    stall: Duration,
    last_progress: Instant,
    /// Armed only while the stream waits (most reads and writes complete at
    /// once and never touch it).
    timer: Option<Pin<Box<Sleep>>>,
    /// Waiting for the remote's first byte (a response while its handler
    /// runs): not a stall.
    idle: bool,
}

impl<S> Stalling<S> {
    /// Watches `inner` for stalls of `stall`.
    pub(crate) fn new(inner: S, stall: Duration) -> Self {
        Self {
            inner,
            stall,
            last_progress: Instant::now(),
            timer: None,
            idle: false,
        }
    }

    /// Waits for the remote's first byte without a stall timeout (the
    /// remote is working on an answer); watching resumes with that byte.
    pub(crate) fn await_answer(&mut self) {
        self.idle = true;
    }

    /// Starts the stall clock afresh (the local side was busy, e.g. its
    /// handler ran, and the transfer resumes now).
    pub(crate) fn resume(&mut self) {
        self.progress();
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
        self.idle = false;
    }

    /// Called when `inner` is not ready: an error once the stall timeout
    /// has passed, otherwise a wake-up then.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.idle {
            return Poll::Pending;
        }
        let deadline = self
            .last_progress
            .checked_add(self.stall)
            .unwrap_or_else(far_future);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, Stalled(self.stall)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.check(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalling<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll
            && n > 0
        {
            this.progress();
        }
        this.watch(cx, poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalling<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll
            && n > 0
        {
            this.progress();
        }
        this.watch(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_close(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use futures::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_steady_transfer_runs_past_the_stall_timeout_and_a_stopped_one_is_cut() {
        let (mut writer, reader) = tokio::io::duplex(16);
        let mut reader = Stalling::new(tokio_util_compat(reader), Duration::from_millis(100));
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                writer.write_all(b"x").await.unwrap();
            }
            // Then nothing more, the stream held open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(writer);
        });
        let started = Instant::now();
        let mut got = [0u8; 20];
        reader.read_exact(&mut got).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1000));
        let error = reader.read(&mut [0u8; 1]).await.unwrap_err();
        assert_eq!(stalled(&error), Some(Duration::from_millis(100)));
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_an_answer_is_not_a_stall() {
        let (mut writer, reader) = tokio::io::duplex(16);
        let mut reader = Stalling::new(tokio_util_compat(reader), Duration::from_millis(100));
        reader.await_answer();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            tokio::time::sleep(Duration::from_secs(5)).await;
            writer.write_all(b"late").await.unwrap();
        });
        let mut got = [0u8; 4];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"late");
        let mut sink = Stalling::new(futures::io::sink(), Duration::from_millis(1));
        sink.write_all(b"always ready").await.unwrap();
    }

    /// tokio's duplex as a futures stream.
    fn tokio_util_compat(stream: tokio::io::DuplexStream) -> impl AsyncRead + Unpin {
        Compat(stream)
    }

    struct Compat(tokio::io::DuplexStream);

    impl AsyncRead for Compat {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut buf = tokio::io::ReadBuf::new(buf);
            tokio::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, &mut buf)
                .map_ok(|()| buf.filled().len())
        }
    }
}
