//! The `Protocol` trait: what a user writes to add a direct protocol.
//!
//! A protocol is an id, a request and a response message (prost types) and an
//! async handler. The framework owns everything else: the wire format, limits,
//! timeouts, supervision, metrics and cleanup.

use std::{future::Future, time::Duration};

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

    /// The largest frame read or written, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
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
        }
    }
}
