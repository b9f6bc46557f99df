//! The `Protocol` trait: what a user writes to add a direct protocol.
//!
//! A protocol is an id, a request and a response message (prost types) and an
//! async handler. The framework owns everything else: the wire format, limits,
//! timeouts, supervision, metrics and cleanup.

use std::{future::Future, num::NonZeroU32, time::Duration};

use crate::{
    context::RequestContext,
    error::{HandlerError, ServeError},
};

/// A direct request/response protocol.
///
/// ```
/// use subnet::{HandlerError, Protocol, RequestContext};
/// use subnet::task::{TaskRequest, TaskResponse};
///
/// struct Upper;
///
/// impl Protocol for Upper {
///     const ID: &'static str = "/subnet/task_protocol/1.0.0";
///     type Request = TaskRequest;
///     type Response = TaskResponse;
///
///     async fn handle(&self, _ctx: RequestContext, req: TaskRequest) -> Result<TaskResponse, HandlerError> {
///         Ok(TaskResponse { accepted: true, result: req.payload.to_ascii_uppercase().into(), error: String::new() })
///     }
/// }
/// ```
pub trait Protocol: Send + Sync + 'static {
    /// The protocol id negotiated on each stream, e.g. `/subnet/task_protocol/1.0.0`.
    const ID: &'static str;
    /// The request message.
    type Request: prost::Message + Default + Send + 'static;
    /// The response message.
    type Response: prost::Message + Default + Send + 'static;

    /// Answers one request. An error or a panic ends only this request: the
    /// stream is reset and the failure is counted; the node keeps serving.
    fn handle(
        &self,
        ctx: RequestContext,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, HandlerError>> + Send;

    /// The per-protocol limits and timeouts, for the protocol's server and
    /// for every client of it (`Node::register` and `Node::client` both use
    /// them).
    fn config() -> Config
    where
        Self: Sized,
    {
        Config::default()
    }

    /// Called after serving a request failed (bad input, timeout, handler
    /// error, deadline or panic). The failure is already logged and counted;
    /// override this to observe it. Runs on the protocol's actor: keep it short.
    fn on_failure(&self, error: &ServeError) {
        let _ = error;
    }
}

/// Limits and timeouts of one protocol, for both its server and its callers.
#[derive(Debug, Clone)]
pub struct Config {
    max_frame: usize,
    call_timeout: Duration,
    request_timeout: Duration,
    handler_deadline: Duration,
    max_concurrent: usize,
    max_pending: usize,
    max_request_frame: Option<usize>,
    max_concurrent_per_peer: usize,
    max_pending_per_peer: usize,
    rate_limit: Option<RateLimit>,
    stall_timeout: Duration,
}

/// How many requests one peer may start on a protocol: `per_second` on
/// average, with bursts of up to `burst` (GCRA, from the `governor` crate).
/// Requests beyond it are refused (stream reset, counted
/// `reason="rate_limited"`) and count against the peer's reputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: NonZeroU32,
    burst: NonZeroU32,
}

impl RateLimit {
    /// `requests` per second on average, with bursts of as many.
    pub fn per_second(requests: NonZeroU32) -> Self {
        Self {
            per_second: requests,
            burst: requests,
        }
    }

    /// Sets the largest burst: requests a peer that was quiet may start at
    /// once.
    pub fn with_burst(mut self, requests: NonZeroU32) -> Self {
        self.burst = requests;
        self
    }

    /// Requests per second on average.
    pub fn requests_per_second(&self) -> NonZeroU32 {
        self.per_second
    }

    /// The largest burst.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }
}

impl Config {
    /// Largest request or response frame accepted: 4 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 4 * 1024 * 1024;
    /// Time a caller allows a whole call (dial, open, write, read): 30 s.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Time a server allows a caller to send its request: 10 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Time a handler may take before its request is failed: 20 s.
    pub const DEFAULT_HANDLER_DEADLINE: Duration = Duration::from_secs(20);
    /// Inbound requests whose handlers run at once: 256.
    pub const DEFAULT_MAX_CONCURRENT: usize = 256;
    /// Inbound requests admitted to wait for a running slot: 1024. Beyond
    /// `max_concurrent + max_pending`, streams are refused (reset).
    pub const DEFAULT_MAX_PENDING: usize = 1024;
    /// Inbound requests of one peer whose handlers run at once: 64, a
    /// quarter of [`Self::DEFAULT_MAX_CONCURRENT`], so that one identity
    /// holding streams open without sending cannot take every handler slot.
    pub const DEFAULT_MAX_CONCURRENT_PER_PEER: usize = 64;
    /// Inbound requests of one peer admitted to wait for a running slot:
    /// 192. With [`Self::DEFAULT_MAX_CONCURRENT_PER_PEER`], one peer holds
    /// at most 256 of the protocol's 1,280 admitted streams; more are
    /// refused (reset, counted `reason="peer_limit"`).
    pub const DEFAULT_MAX_PENDING_PER_PEER: usize = 192;
    /// Time a transfer (the request read, the response written or read) may
    /// go without a byte of progress before it is cut: 5 s. A slow but
    /// steady transfer runs on, within the caller's call timeout.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);

    /// Sets the largest frame read or written, in bytes.
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets the time a caller allows a whole call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the time a server allows for the request to arrive.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the time a handler may take.
    pub fn with_handler_deadline(mut self, deadline: Duration) -> Self {
        self.handler_deadline = deadline;
        self
    }

    /// Sets how many admitted requests may wait for a running slot.
    pub fn with_max_pending(mut self, requests: usize) -> Self {
        self.max_pending = requests;
        self
    }

    /// Sets how many inbound requests are served at once (at least 1).
    pub fn with_max_concurrent(mut self, requests: usize) -> Self {
        self.max_concurrent = requests.max(1);
        self
    }

    /// Sets the largest request frame, in bytes, when requests are much
    /// smaller than responses (by default the same as
    /// [`Self::max_frame`], and never above it).
    pub fn with_max_request_frame(mut self, bytes: usize) -> Self {
        self.max_request_frame = Some(bytes);
        self
    }

    /// Sets how many requests of one peer run at once (at least 1).
    pub fn with_max_concurrent_per_peer(mut self, requests: usize) -> Self {
        self.max_concurrent_per_peer = requests.max(1);
        self
    }

    /// Sets how many requests of one peer may wait for a running slot.
    pub fn with_max_pending_per_peer(mut self, requests: usize) -> Self {
        self.max_pending_per_peer = requests;
        self
    }

    /// Limits the rate at which each peer may start requests (none by
    /// default: the per-peer caps bound what a peer holds; a rate suits
    /// each application's own traffic).
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets how long a transfer may go without progress.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The largest frame read or written, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The largest request frame, in bytes.
    pub fn max_request_frame(&self) -> usize {
        self.max_request_frame
            .map_or(self.max_frame, |bytes| bytes.min(self.max_frame))
    }

    /// How many requests of one peer run at once.
    pub fn max_concurrent_per_peer(&self) -> usize {
        self.max_concurrent_per_peer
    }

    /// How many requests of one peer may wait for a running slot.
    pub fn max_pending_per_peer(&self) -> usize {
        self.max_pending_per_peer
    }

    /// The per-peer rate limit, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// How long a transfer may go without progress.
    pub fn stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// The time a caller allows a whole call.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The time a server allows for the request to arrive.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The time a handler may take.
    pub fn handler_deadline(&self) -> Duration {
        self.handler_deadline
    }

    /// How many inbound requests are served at once.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// How many admitted requests may wait for a running slot.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame: Self::DEFAULT_MAX_FRAME,
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            handler_deadline: Self::DEFAULT_HANDLER_DEADLINE,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            max_pending: Self::DEFAULT_MAX_PENDING,
            max_request_frame: None,
            max_concurrent_per_peer: Self::DEFAULT_MAX_CONCURRENT_PER_PEER,
            max_pending_per_peer: Self::DEFAULT_MAX_PENDING_PER_PEER,
            rate_limit: None,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
        }
    }
}
