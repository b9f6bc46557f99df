//! The metrics server, one per process: `GET /metrics` (the Prometheus
//! text exposition of every node of the process), `GET /healthz` and
//! `GET /readyz` (the health of the nodes it watches, for systemd and
//! Kubernetes probes). HTTP/1.1 by hyper, on the current tokio runtime.
//!
//! | path | 200 | 503 |
//! |---|---|---|
//! | `/metrics` | the exposition (`text/plain; version=0.0.4`): the `subnet_` families, then rust-libp2p's (`libp2p_metrics`) | — |
//! | `/healthz` | `ok`: every watched node's actors are alive | one line per node that is not |
//! | `/readyz` | `ready`: every watched node is ready ([`Probe::not_ready`]) | one line per node that is not, with why |
//!
//! Other paths get 404. A server that watches no node is healthy and ready.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Semaphore;

/// What `/healthz` and `/readyz` read of one watched node; a node's
/// [`Health`](crate::Health) is one.
pub trait Probe: std::fmt::Debug + Send + Sync + 'static {
    /// The node's name in an answer (its peer id).
    fn name(&self) -> String;
    /// Whether the node's actors are alive (`/healthz`).
    fn alive(&self) -> bool;
    /// Why the node is not ready to serve, or `None` if it is (`/readyz`).
    fn not_ready(&self) -> Option<String>;
}

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// Time a connection may take to send its request and get its answer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait after a failed accept before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How often histograms are drained into the exposition's buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the metrics server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeMetricsError {
    /// A metrics recorder is already installed in this process.
    #[error("a metrics recorder is already installed in this process")]
    RecorderInstalled,
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The running metrics server. Cloning is cheap; it runs until the
/// process (its tokio runtime) ends.
#[derive(Debug, Clone)]
pub struct MetricsServer {
    address: SocketAddr,
    watched: Arc<RwLock<Vec<Arc<dyn Probe>>>>,
}

impl MetricsServer {
    /// The address it listens on (the port chosen, if port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Adds a node to those `/healthz` and `/readyz` answer for.
    pub fn watch(&self, health: impl Probe) {
        self.watched
            .write()
            .expect("health lock poisoned")
            .push(Arc::new(health));
    }
}

/// Installs the process-wide Prometheus recorder (this crate's buckets and
/// descriptions, [`prometheus_builder`](super::prometheus_builder)) and
/// serves `/metrics`, `/healthz` and `/readyz` at `address`, on the
/// current tokio runtime. Call it before building nodes, so that their
/// series exist from their start.
pub fn serve_prometheus(address: SocketAddr) -> Result<MetricsServer, ServeMetricsError> {
    let bind = |source| ServeMetricsError::Bind { address, source };
    let listener = std::net::TcpListener::bind(address).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(bind)?;
    let recorder = super::prometheus_builder().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| ServeMetricsError::RecorderInstalled)?;
    super::describe();
    let server = MetricsServer {
        address: local,
        watched: Arc::default(),
    };
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let state = Arc::new((handle, server.watched.clone()));
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: do not spin; try again soon.
                    tracing::warn!("metrics server: accepting failed: {error}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(answer(&request, &state.0, &state.1)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
                drop(permit);
            });
        }
    });
    Ok(server)
}

/// The answer to one request.
fn answer(
    request: &Request<Incoming>,
    handle: &PrometheusHandle,
    watched: &RwLock<Vec<Arc<dyn Probe>>>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    let plain = "text/plain; charset=utf-8";
    let watched = || watched.read().expect("health lock poisoned").clone();
    match request.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            handle.render() + &super::libp2p_metrics::render(),
        ),
        "/healthz" => {
            let dead: Vec<String> = watched()
                .iter()
                .filter(|h| !h.alive())
                .map(|h| format!("node {}: its actors are not running\n", h.name()))
                .collect();
            if dead.is_empty() {
                text(StatusCode::OK, plain, "ok\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, plain, dead.concat())
            }
        }
        "/readyz" => {
            let waiting: Vec<String> = watched()
                .iter()
                .filter_map(|h| {
                    h.not_ready()
                        .map(|why| format!("node {}: {why}\n", h.name()))
                })
                .collect();
            if waiting.is_empty() {
                text(StatusCode::OK, plain, "ready\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, plain, waiting.concat())
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            plain,
            "not found: /metrics, /healthz or /readyz\n".into(),
        ),
    }
}
