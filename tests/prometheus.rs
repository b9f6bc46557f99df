//! A real Prometheus scrapes a 3-node subnet under a little load; every
//! expression of every dashboard panel must return data through its query
//! API, and `promtool check metrics` must accept the exposition.
//!
//! Needs `prometheus` and `promtool` on the PATH (Debian package
//! `prometheus`; `.ci/run` installs it).

mod common;

use std::{
    io::Write,
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use common::{KillOnDrop, Probe, free_port, task};
use subnet::{Node, PeerId, ProtocolConfig, heartbeat, task::TaskProtocol};

/// `GET path` on a loopback HTTP server; returns the body.
async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .ok()?
    .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}

/// The expressions that return no data yet.
async fn without_data(port: u16, expressions: &[(String, String)]) -> Vec<String> {
    let mut empty = Vec::new();
    for (panel, expr) in expressions {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let answered = http_get(port, &path)
            .await
            .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
            .is_some_and(|v| {
                v["status"] == "success"
                    && v["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty())
            });
        if !answered {
            empty.push(format!("{panel}: {expr}"));
        }
    }
    empty
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every panel expression of the dashboards, with `$node` matching all.
fn dashboard_expressions() -> Vec<(String, String)> {
    let mut expressions = Vec::new();
    for file in ["overview.json", "discovery.json"] {
        let path = format!("{}/dashboards/{file}", env!("CARGO_MANIFEST_DIR"));
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // Rows have no targets.
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap().replace("$node", ".*");
                expressions.push((format!("{file}: {}", panel["title"]), expr));
            }
        }
    }
    expressions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    // The process-wide recorder, serving /metrics for all three nodes.
    let metrics_port = free_port();
    subnet::metrics::serve_prometheus(SocketAddr::from(([127, 0, 0, 1], metrics_port)))
        .expect("the exporter starts");

    // Three nodes, a label each: a is the server, b and c call it.
    let beat = |id| heartbeat::Config::new(1, id).with_epoch(Duration::from_secs(1), 4);
    let build = |label: &str, id| {
        Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .metrics_label(label)
            .heartbeat(beat(id))
    };
    let a = build("a", 1).build().await.unwrap();
    let (probe, _failures) = Probe::new(
        ProtocolConfig::default()
            .with_max_concurrent(2)
            .with_max_pending(2),
    );
    {
        let config = probe.config();
        a.register_with(probe, config)
    }
    .await
    .unwrap();
    let b = build("b", 2)
        .bootstrap(a.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    let c = build("c", 3)
        .bootstrap(a.addresses()[0].clone())
        .build()
        .await
        .unwrap();

    // Prometheus, scraping every second.
    let dir = common::temp_dir("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: subnet\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let prometheus_port = free_port();
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian package `prometheus`)"),
    );

    // A little load: good calls, handler errors, an overload (refusals),
    // a peer-exchange question and a lookup nobody can answer (Kademlia),
    // and a bad heartbeat (a rejection).
    let address = a.addresses()[0].clone();
    for node in [&b, &c] {
        let client = node.client::<TaskProtocol>();
        for i in 0..20 {
            client
                .call(address.clone(), task(&format!("ok {i}")))
                .await
                .unwrap();
        }
        assert!(client.call(address.clone(), task("error")).await.is_err());
        let flood: Vec<_> = (0..40)
            .map(|_| {
                let client = client.clone();
                let address = address.clone();
                async move { client.call(address, task("sleep:200")).await }
            })
            .collect();
        futures::future::join_all(flood).await;
        let _ = client.call(PeerId::random(), task("nobody")).await;
    }
    b.publish(heartbeat::topic(1), b"not a heartbeat".to_vec())
        .unwrap();

    // promtool accepts the exposition.
    let exposition = http_get(metrics_port, "/metrics")
        .await
        .expect("the exporter answers");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Every panel's expression returns data.
    let expressions = dashboard_expressions();
    assert!(expressions.len() >= 25, "{} expressions", expressions.len());
    let started = std::time::Instant::now();
    loop {
        let empty = without_data(prometheus_port, &expressions).await;
        if empty.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "panels without data after 90 s: {empty:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Three nodes in one process keep their numbers apart: only `a` serves
    // the task protocol, and it counted every request `b` and `c` sent.
    let served = |node: &str, direction: &str| {
        format!(
            "sum(subnet_requests_total{{node=\"{node}\",protocol=\"/subnet/task_protocol/1.0.0\",direction=\"{direction}\"}})"
        )
    };
    let value = |expr: String| async move {
        let path = format!("/api/v1/query?query={}", url_encode(&expr));
        let body = http_get(prometheus_port, &path).await.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|n| n.parse::<f64>().ok())
    };
    let sent_b = value(served("b", "outbound"))
        .await
        .expect("b's calls are counted");
    let sent_c = value(served("c", "outbound"))
        .await
        .expect("c's calls are counted");
    let received_a = value(served("a", "inbound"))
        .await
        .expect("a's requests are counted");
    assert_eq!(
        value(served("b", "inbound")).await,
        None,
        "b served no task request"
    );
    assert!(
        sent_b >= 62.0 && sent_c >= 62.0,
        "b sent {sent_b}, c sent {sent_c}"
    );
    // Refused streams never reach a's request actors, so a counts at most
    // what b and c sent.
    assert!(
        received_a >= 42.0 && received_a <= sent_b + sent_c,
        "a received {received_a}"
    );

    for node in [a, b, c] {
        node.shutdown().await;
    }
}
