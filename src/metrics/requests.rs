//! One protocol's request metrics in one direction: handles registered
//! once per recorder, so that recording a request is an atomic update, and
//! the in-flight guard; and why an inbound request was refused
//! ([`RefusalReason`]). The names are `mod.rs`'s.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use metrics::{SharedString, counter, gauge, histogram};

use super::{
    REQUEST_BYTES, REQUEST_DURATION, REQUESTS, REQUESTS_IN_FLIGHT, REQUESTS_RELAYED, RESPONSE_BYTES,
};

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

/// The metrics of one protocol's requests in one direction.
///
/// Registering a metric with the recorder builds its key and looks it up,
/// which cost ≈ 2,700 instructions per metric, five per request on each side
/// (13 % of a request's instructions under `valgrind --tool=callgrind`).
/// These handles are registered once per recorder instead: a recording is
/// then an atomic update. If another recorder is installed later (the
/// process-wide one, or a thread-local one in a test), they are registered
/// again with it.
#[derive(Clone)]
pub struct RequestMetrics(Arc<RequestKeys>);

impl std::fmt::Debug for RequestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestMetrics")
            .field("protocol", &self.0.protocol)
            .field("direction", &self.0.direction)
            .finish()
    }
}

struct RequestKeys {
    node: SharedString,
    protocol: &'static str,
    direction: &'static str,
    handles: RwLock<Option<Arc<RequestHandles>>>,
}

/// The handles of one recorder.
struct RequestHandles {
    /// Which recorder they belong to (its address).
    recorder: usize,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    request_bytes: metrics::Counter,
    response_bytes: metrics::Counter,
    relayed: metrics::Counter,
    /// By outcome; outcomes are a short, fixed set of names.
    outcomes: RwLock<Vec<(&'static str, metrics::Counter)>>,
}

impl RequestMetrics {
    /// The request metrics of `protocol` in `direction`, on node `node`.
    pub(super) fn new(node: SharedString, protocol: &'static str, direction: Direction) -> Self {
        Self(Arc::new(RequestKeys {
            node,
            protocol,
            direction: direction.label(),
            handles: RwLock::new(None),
        }))
    }

    fn handles(&self) -> Arc<RequestHandles> {
        let recorder =
            metrics::with_recorder(|r| r as *const dyn metrics::Recorder as *const () as usize);
        let keys = &self.0;
        if let Some(handles) = &*keys.handles.read().unwrap_or_else(|e| e.into_inner())
            && handles.recorder == recorder
        {
            return handles.clone();
        }
        let (node, protocol, direction) = (&keys.node, keys.protocol, keys.direction);
        let handles = Arc::new(RequestHandles {
            recorder,
            in_flight: gauge!(REQUESTS_IN_FLIGHT, "node" => node.clone(), "protocol" => protocol, "direction" => direction),
            duration: histogram!(REQUEST_DURATION, "node" => node.clone(), "protocol" => protocol, "direction" => direction),
            request_bytes: counter!(REQUEST_BYTES, "node" => node.clone(), "protocol" => protocol, "direction" => direction),
            response_bytes: counter!(RESPONSE_BYTES, "node" => node.clone(), "protocol" => protocol, "direction" => direction),
            relayed: counter!(REQUESTS_RELAYED, "node" => node.clone(), "protocol" => protocol, "direction" => direction),
            outcomes: RwLock::new(Vec::new()),
        });
        *keys.handles.write().unwrap_or_else(|e| e.into_inner()) = Some(handles.clone());
        handles
    }

    /// Registers this protocol's series in this direction, with every
    /// outcome in `outcomes`, at 0.
    pub(crate) fn preregister(&self, outcomes: &[&'static str]) {
        let handles = self.handles();
        handles.in_flight.increment(0.0);
        handles.request_bytes.increment(0);
        handles.response_bytes.increment(0);
        handles.relayed.increment(0);
        let keys = &self.0;
        let mut known = handles.outcomes.write().unwrap_or_else(|e| e.into_inner());
        for outcome in outcomes {
            if !known.iter().any(|(name, _)| name == outcome) {
                let counter = counter!(REQUESTS, "node" => keys.node.clone(), "protocol" => keys.protocol, "direction" => keys.direction, "outcome" => *outcome);
                counter.increment(0);
                known.push((outcome, counter));
            }
        }
    }

    /// Counts a request in flight until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight {
        let gauge = self.handles().in_flight.clone();
        gauge.increment(1.0);
        InFlight { gauge }
    }

    /// Counts a finished request by outcome.
    pub(crate) fn outcome(&self, outcome: &'static str) {
        self.outcome_of(&self.handles(), outcome);
    }

    fn outcome_of(&self, handles: &RequestHandles, outcome: &'static str) {
        let known = handles
            .outcomes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(name, _)| *name == outcome)
            .map(|(_, counter)| counter.clone());
        let counter = known.unwrap_or_else(|| {
            let keys = &self.0;
            let counter = counter!(REQUESTS, "node" => keys.node.clone(), "protocol" => keys.protocol, "direction" => keys.direction, "outcome" => outcome);
            let mut outcomes = handles.outcomes.write().unwrap_or_else(|e| e.into_inner());
            if !outcomes.iter().any(|(name, _)| *name == outcome) {
                outcomes.push((outcome, counter.clone()));
            }
            counter
        });
        counter.increment(1);
    }

    /// Records a finished request: its outcome and latency.
    pub(crate) fn finished(&self, outcome: &'static str, elapsed: Duration) {
        let handles = self.handles();
        self.outcome_of(&handles, outcome);
        handles.duration.record(elapsed.as_secs_f64());
    }

    /// Counts a request that went over a relayed connection.
    pub(crate) fn relayed(&self) {
        self.handles().relayed.increment(1);
    }

    /// Records the bytes of a request and its response frame.
    pub(crate) fn frame_bytes(&self, request: usize, response: usize) {
        let handles = self.handles();
        handles.request_bytes.increment(request as u64);
        handles.response_bytes.increment(response as u64);
    }
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlight {
    gauge: metrics::Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// Why an inbound stream was refused before reaching a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The protocol already serves its maximum of concurrent requests.
    OverCapacity,
    /// The stream's connection already holds its maximum of inbound
    /// streams (`MAX_INBOUND_STREAMS_PER_CONNECTION`).
    ConnectionLimit,
    /// The protocol was unregistered (or its actor stopped) meanwhile.
    NotRegistered,
    /// The peer already holds its share of the protocol
    /// (`ProtocolConfig::max_concurrent_per_peer` + `max_pending_per_peer`).
    PeerLimit,
    /// The peer starts requests faster than the protocol's
    /// `ProtocolConfig::rate_limit`.
    RateLimited,
    /// The peer is banned; its connections are being closed
    /// (`Node::ban`, or its reputation fell below the threshold).
    Banned,
}

impl RefusalReason {
    /// The `reason` label.
    pub(super) fn label(self) -> &'static str {
        match self {
            RefusalReason::OverCapacity => "over_capacity",
            RefusalReason::NotRegistered => "not_registered",
            RefusalReason::ConnectionLimit => "connection_limit",
            RefusalReason::PeerLimit => "peer_limit",
            RefusalReason::RateLimited => "rate_limited",
            RefusalReason::Banned => "banned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, prometheus_builder};

    fn count(recorder: &metrics_exporter_prometheus::PrometheusRecorder, outcome: &str) -> String {
        let text = recorder.handle().render();
        let prefix = format!(
            "{REQUESTS}{{node=\"n\",protocol=\"/p\",direction=\"inbound\",outcome=\"{outcome}\"}} "
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or("absent")
            .to_owned()
    }

    #[test]
    fn request_metrics_follow_the_recorder_in_use() {
        let requests = Metrics::new("n").requests("/p", Direction::Inbound);
        // Recorded with no recorder: goes nowhere, but must not stick.
        requests.finished("ok", Duration::from_millis(1));

        let first = prometheus_builder().build_recorder();
        metrics::with_local_recorder(&first, || {
            requests.finished("ok", Duration::from_millis(1));
            requests.finished("ok", Duration::from_millis(1));
            requests.outcome("panic");
        });
        assert_eq!(count(&first, "ok"), "2");
        assert_eq!(count(&first, "panic"), "1");

        let second = prometheus_builder().build_recorder();
        metrics::with_local_recorder(&second, || requests.outcome("panic"));
        assert_eq!(count(&second, "panic"), "1");
        assert_eq!(count(&second, "ok"), "absent");
        assert_eq!(
            count(&first, "panic"),
            "1",
            "the first recorder saw no more"
        );
    }
}
