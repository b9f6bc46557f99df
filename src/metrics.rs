//! Every metric the framework records, each name written once.
//!
//! Metrics go through the `metrics` facade; install any recorder (for example
//! `metrics-exporter-prometheus`) to collect them. Labels carry bounded
//! values only: protocol ids of registered protocols, directions, outcomes
//! and reasons — never a peer id or an address.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Requests by protocol, direction and outcome.
pub const REQUESTS: &str = "subnet_requests_total";
/// Request latency in seconds by protocol and direction.
pub const REQUEST_DURATION: &str = "subnet_request_duration_seconds";
/// Requests currently being served or awaited, by protocol and direction.
pub const REQUESTS_IN_FLIGHT: &str = "subnet_requests_in_flight";
/// Bytes of request frames, by protocol and direction.
pub const REQUEST_BYTES: &str = "subnet_request_bytes_total";
/// Bytes of response frames, by protocol and direction.
pub const RESPONSE_BYTES: &str = "subnet_response_bytes_total";
/// Inbound streams refused before reaching a handler, by protocol and reason.
pub const INBOUND_REFUSED: &str = "subnet_inbound_refused_total";
/// Actors that failed (error or panic), by actor kind.
pub const ACTOR_FAILURES: &str = "subnet_actor_failures_total";

/// Which side of a request this node is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node answers.
    Inbound,
    /// This node calls.
    Outbound,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Why an inbound stream was refused before reaching a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The protocol already serves its maximum of concurrent requests.
    OverCapacity,
    /// The protocol was unregistered (or its actor stopped) meanwhile.
    NotRegistered,
}

impl RefusalReason {
    fn label(self) -> &'static str {
        match self {
            RefusalReason::OverCapacity => "over_capacity",
            RefusalReason::NotRegistered => "not_registered",
        }
    }
}

pub(crate) fn inbound_refused(protocol: &impl AsRef<str>, reason: RefusalReason) {
    counter!(INBOUND_REFUSED, "protocol" => protocol.as_ref().to_owned(), "reason" => reason.label())
        .increment(1);
}

/// Counts a finished request by outcome.
pub(crate) fn request_outcome(protocol: &'static str, direction: Direction, outcome: &'static str) {
    counter!(REQUESTS, "protocol" => protocol, "direction" => direction.label(), "outcome" => outcome)
        .increment(1);
}

/// Records a finished request: its outcome and latency.
pub(crate) fn request_finished(
    protocol: &'static str,
    direction: Direction,
    outcome: &'static str,
    elapsed: Duration,
) {
    request_outcome(protocol, direction, outcome);
    histogram!(REQUEST_DURATION, "protocol" => protocol, "direction" => direction.label())
        .record(elapsed.as_secs_f64());
}

/// Records the bytes of a request or response frame.
pub(crate) fn frame_bytes(
    protocol: &'static str,
    direction: Direction,
    request: usize,
    response: usize,
) {
    counter!(REQUEST_BYTES, "protocol" => protocol, "direction" => direction.label())
        .increment(request as u64);
    counter!(RESPONSE_BYTES, "protocol" => protocol, "direction" => direction.label())
        .increment(response as u64);
}

/// Counts a request in flight until the guard drops.
pub(crate) struct InFlight {
    protocol: &'static str,
    direction: Direction,
}

impl InFlight {
    pub(crate) fn start(protocol: &'static str, direction: Direction) -> Self {
        gauge!(REQUESTS_IN_FLIGHT, "protocol" => protocol, "direction" => direction.label())
            .increment(1.0);
        Self {
            protocol,
            direction,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(REQUESTS_IN_FLIGHT, "protocol" => self.protocol, "direction" => self.direction.label())
            .decrement(1.0);
    }
}

/// Counts a failed actor.
pub(crate) fn actor_failed(actor: &'static str) {
    counter!(ACTOR_FAILURES, "actor" => actor).increment(1);
}
