//! What the behaviour, every connection handler and the callers share: the
//! registered protocols (inbound), the established connections
//! (outbound) and the peers' reputation.

use std::sync::Arc;

use super::{admission::Routes, outbound::Connections};
use crate::{
    metrics::Metrics,
    reputation::{self, Reputation},
};

/// State shared by the behaviour, every connection handler and the callers.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The registered protocols, where inbound streams go.
    pub(crate) routes: Routes,
    /// The established connections, where outbound requests go.
    pub(crate) connections: Connections,
    /// Peers' scores and bans.
    pub(crate) reputation: Arc<Reputation>,
    metrics: Metrics,
}

impl Shared {
    pub(crate) fn new(metrics: Metrics, reputation: reputation::Config) -> Self {
        let reputation = Arc::new(Reputation::new(reputation, metrics.clone()));
        Self {
            routes: Routes::new(metrics.clone(), reputation.clone()),
            connections: Connections::default(),
            reputation,
            metrics,
        }
    }

    /// The node's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
