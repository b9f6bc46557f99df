//! Limits that keep one peer from hurting the others, and work from being
//! wasted: per-peer rate limits, requests shed once their callers have
//! given up, and timeouts on progress rather than on a whole transfer.

mod common;

use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{AsyncReadExt, StreamExt, stream::FuturesUnordered};
use subnet::{
    CallError, HandlerError, Protocol, ProtocolConfig, RateLimit, RequestContext, ServeError,
    StreamProtocol, codec,
    task::{TaskRequest, TaskResponse},
};
use tokio::sync::mpsc;

/// Upper-cases payloads, or answers `big:<bytes>` with that many bytes;
/// counts the requests its handler saw and reports every failure.
struct Counted {
    handled: Arc<AtomicUsize>,
    failures: mpsc::Sender<String>,
}

impl Counted {
    fn new() -> (Self, Arc<AtomicUsize>, mpsc::Receiver<String>) {
        let handled = Arc::new(AtomicUsize::new(0));
        let (failures, receiver) = mpsc::channel(4096);
        let protocol = Self {
            handled: handled.clone(),
            failures,
        };
        (protocol, handled, receiver)
    }
}

impl Protocol for Counted {
    const ID: &'static str = "/subnet/test/counted/1.0.0";
    type Request = TaskRequest;
    type Response = TaskResponse;

    async fn handle(
        &self,
        _ctx: RequestContext,
        request: TaskRequest,
    ) -> Result<TaskResponse, HandlerError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        let payload = String::from_utf8_lossy(&request.payload).into_owned();
        let result = match payload.split_once(':') {
            Some(("sleep", ms)) => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                Vec::new()
            }
            Some(("big", bytes)) => vec![b'x'; bytes.parse().unwrap()],
            _ => payload.to_ascii_uppercase().into_bytes(),
        };
        Ok(TaskResponse {
            accepted: true,
            result: result.into(),
            error: String::new(),
        })
    }

    fn on_failure(&self, error: &ServeError) {
        let _ = self.failures.try_send(common::kind(error));
    }
}

fn task(payload: &str) -> TaskRequest {
    common::task(payload)
}

async fn server(
    config: ProtocolConfig,
) -> (subnet::Node, Arc<AtomicUsize>, mpsc::Receiver<String>) {
    let node = common::node().await;
    let (protocol, handled, failures) = Counted::new();
    node.register_with(protocol, config).await.unwrap();
    (node, handled, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_ten_times_its_rate_is_refused_and_counted_and_others_are_not() {
    let metrics = subnet::metrics::serve_prometheus(([127, 0, 0, 1], 0).into()).unwrap();
    let limit = RateLimit::per_second(NonZeroU32::new(5).unwrap());
    let (server, handled, _failures) =
        server(ProtocolConfig::default().with_rate_limit(limit)).await;
    let address = server.addresses()[0].clone();
    let (greedy, modest) = (common::node().await, common::node().await);
    for caller in [&greedy, &modest] {
        caller
            .connect(address.clone(), Duration::from_secs(10))
            .await
            .unwrap();
    }

    // 50 calls at once: ten times the burst of 5.
    let client = greedy.client::<Counted>();
    let started = std::time::Instant::now();
    let results: Vec<_> = (0..50)
        .map(|i| client.call(address.clone(), task(&format!("g{i}"))))
        .collect::<FuturesUnordered<_>>()
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Refused { .. })))
        .count();
    println!("greedy peer: {answered} of 50 answered, {refused} refused, in {elapsed:.2} s");
    assert_eq!(answered + refused, 50, "every call answered or refused");
    assert!(
        answered as f64 <= 5.0 + 5.0 * elapsed + 1.0,
        "at most the burst and the rate: {answered} in {elapsed:.2} s"
    );
    assert!(refused >= 25, "the excess is refused: {refused}");
    let counted = common::scrape_sum(
        metrics.local_addr().port(),
        "subnet_inbound_refused_total",
        &[Counted::ID, "reason=\"rate_limited\""],
    )
    .await;
    assert!(counted >= refused as f64, "counted {counted} of {refused}");

    // The other peer's calls are answered.
    let before = handled.load(Ordering::SeqCst);
    let client = modest.client::<Counted>();
    for i in 0..5 {
        let response = client
            .call(address.clone(), task(&format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(&response.result[..], format!("M{i}").as_bytes());
    }
    assert_eq!(handled.load(Ordering::SeqCst), before + 5);
    for node in [greedy, modest, server] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_of_callers_that_timed_out_never_reach_the_handler() {
    let config = ProtocolConfig::default()
        .with_max_concurrent(1)
        .with_call_timeout(Duration::from_millis(500));
    let (server, handled, mut failures) = server(config.clone()).await;
    let address = server.addresses()[0].clone();
    let caller = common::node().await;
    caller
        .connect(address.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    let client = caller.client::<Counted>().with_config(config);

    // One call holds the only slot for 2 s; five more queue behind it.
    // Every caller gives up after 500 ms.
    let first = tokio::spawn({
        let (client, address) = (client.clone(), address.clone());
        async move { client.call(address, task("sleep:2000")).await }
    });
    common::eventually(Duration::from_secs(10), || {
        let handled = handled.clone();
        async move { handled.load(Ordering::SeqCst) == 1 }
    })
    .await;
    let mut calls: FuturesUnordered<_> = (0..5)
        .map(|i| client.call(address.clone(), task(&format!("queued {i}"))))
        .collect();
    while let Some(result) = calls.next().await {
        assert!(
            matches!(result, Err(CallError::Timeout { .. })),
            "{result:?}"
        );
    }
    let result = first.await.unwrap();
    assert!(
        matches!(result, Err(CallError::Timeout { .. })),
        "{result:?}"
    );
    // Once the slot frees, the five are shed unserved (the first call's
    // response, written to a caller that left, may fail too).
    let mut expired = 0;
    while expired < 5 {
        let failure = tokio::time::timeout(Duration::from_secs(10), failures.recv())
            .await
            .expect("five requests are shed in time")
            .unwrap();
        if failure == "Expired" {
            expired += 1;
        }
    }
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "only the first request reached the handler"
    );
    caller.shutdown().await;
    server.shutdown().await;
}

/// Opens a raw stream to `server`, asks for `bytes` bytes and returns the
/// stream for the test to read as it likes.
async fn ask_big(
    caller: &subnet::Node,
    server: &subnet::Node,
    bytes: usize,
) -> subnet::OutboundStream {
    let mut stream = caller
        .open_stream(
            server.addresses()[0].clone(),
            StreamProtocol::new(Counted::ID),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let frame = codec::encode_frame(&task(&format!("big:{bytes}")));
    codec::write_frame(&mut *stream, &frame).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_steady_reader_gets_a_4_mb_response_and_a_stopped_one_is_cut() {
    const SIZE: usize = 4_000_000;
    let stall = Duration::from_secs(2);
    let (server, _handled, mut failures) =
        server(ProtocolConfig::default().with_stall_timeout(stall)).await;
    let caller = common::node().await;

    // About 320 KiB/s: 32 KiB every 100 ms, some 12.5 s in all, past the
    // request timeout (10 s) that used to bound the whole write.
    let mut stream = ask_big(&caller, &server, SIZE).await;
    let started = std::time::Instant::now();
    let mut body = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "read {} bytes in {elapsed:.1?} ({:.0} KiB/s)",
        body.len(),
        body.len() as f64 / 1024.0 / elapsed.as_secs_f64()
    );
    let mut frame = &body[..];
    let response: TaskResponse = prost::Message::decode_length_delimited(&mut frame).unwrap();
    assert_eq!(response.result.len(), SIZE);
    assert!(elapsed > Duration::from_secs(10), "{elapsed:?}");

    // A reader that takes 100 KiB and stops: cut after the stall timeout.
    let asked = std::time::Instant::now();
    let mut stream = ask_big(&caller, &server, SIZE).await;
    let mut first = vec![0u8; 100 * 1024];
    stream.read_exact(&mut first).await.unwrap();
    let failure = tokio::time::timeout(Duration::from_secs(15), failures.recv())
        .await
        .expect("the stopped reader is cut")
        .unwrap();
    assert_eq!(failure, format!("ResponseStalled({stall:?})"));
    assert!(asked.elapsed() >= stall, "{:?}", asked.elapsed());
    drop(stream);
    caller.shutdown().await;
    server.shutdown().await;
}
