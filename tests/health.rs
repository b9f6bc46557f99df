//! The metrics server of a freshly started node: every metric name a
//! dashboard queries is there before any call, and `/healthz` and
//! `/readyz` say what they should (ready flips when the bootstrap peer
//! comes up).

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{eventually, free_port};
use subnet::{Keypair, Node, heartbeat, task::TaskProtocol};

/// `GET path` on the metrics server: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the metrics server listens");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answered in time")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_owned())
}

/// Every metric name the dashboards query that starts with `prefix`
/// (histograms by their `_bucket` series).
fn dashboard_metric_names(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for file in ["overview.json", "discovery.json"] {
        let path = format!("{}/dashboards/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Rows have no targets.
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap();
                for (i, _) in expr.match_indices(prefix) {
                    let name: String = expr[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
    }
    names
}

/// The names in `names` no sample of `exposition` has.
fn absent(names: &[String], exposition: &str) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            !exposition
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")))
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_has_every_dashboard_series_and_answers_health_probes() {
    let server = subnet::metrics::serve_prometheus(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("the metrics server starts");
    let port = server.local_addr().port();

    // B bootstraps to A, which is not up yet.
    let a_key = Keypair::generate_ed25519();
    let a_id = a_key.public().to_peer_id();
    let a_port = free_port();
    let a_address = format!("/ip4/127.0.0.1/tcp/{a_port}/p2p/{a_id}");
    let b = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .metrics_label("b")
        .heartbeat(heartbeat::Config::new(1, 2))
        .bootstrap(a_address.parse().unwrap())
        .build()
        .await
        .unwrap();
    b.register(TaskProtocol).await.unwrap();
    let _client = b.client::<TaskProtocol>();
    server.watch(b.health());

    // No call made, nothing happened: every dashboard series is there.
    let (status, exposition) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    let names = dashboard_metric_names("subnet_");
    assert!(names.len() >= 17, "{names:?}");
    let missing = absent(&names, &exposition);
    assert!(missing.is_empty(), "absent from a fresh node: {missing:?}");
    assert!(
        exposition.contains(&format!(
            "subnet_build_info{{node=\"b\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{exposition}"
    );

    // Alive, not ready: its bootstrap peer is down.
    assert_eq!(get(port, "/healthz").await, (200, "ok\n".into()));
    let (status, why) = get(port, "/readyz").await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("bootstrap"), "{why}");
    assert_eq!(get(port, "/nothing").await.0, 404);

    // A comes up where B expects it: B connects (its upkeep dials known
    // peers) and is ready.
    let a = Node::builder()
        .keypair(a_key)
        .listen(format!("/ip4/127.0.0.1/tcp/{a_port}").parse().unwrap())
        .metrics_label("a")
        .build()
        .await
        .unwrap();
    eventually(Duration::from_secs(20), || async move {
        get(port, "/readyz").await == (200, "ready\n".into())
    })
    .await;

    // Connected to its bootstrap peer, still no call made: rust-libp2p's
    // series the dashboards query are there too (those with labels appear
    // with their first event: a connection, an identify, a ping, a
    // Kademlia routing update).
    let names = dashboard_metric_names("libp2p_");
    assert!(names.len() >= 8, "{names:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let missing = absent(&names, &get(port, "/metrics").await.1);
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "absent once connected: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // B stopped: not alive.
    let health = b.health();
    b.shutdown().await;
    assert!(!health.alive());
    let (status, why) = get(port, "/healthz").await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains(&health.peer_id().to_string()), "{why}");
    a.shutdown().await;
}
