//! What the behaviour, every connection handler and the callers share: the
//! registered protocols (inbound) and the established connections
//! (outbound).

use super::{admission::Routes, outbound::Connections};
use crate::metrics::Metrics;

/// State shared by the behaviour, every connection handler and the callers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The registered protocols, where inbound streams go.
    pub(crate) routes: Routes,
    /// The established connections, where outbound requests go.
    pub(crate) connections: Connections,
    metrics: Metrics,
}

impl Shared {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            routes: Routes::new(metrics.clone()),
            connections: Connections::default(),
            metrics,
        }
    }

    /// The node's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
