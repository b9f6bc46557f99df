//! Raw streams carrying bad input: each gets a clear, typed error on the
//! side that sees it, and the node serves the next good request.

mod common;

use std::time::Duration;

use common::{Probe, next_failure, task};
use futures::{AsyncReadExt, AsyncWriteExt};
use subnet::{
    CallError, Node, ProtocolConfig, StreamProtocol, codec::FrameError, task::TaskProtocol,
};

const MAX_FRAME: usize = 4096;

async fn setup() -> (Node, String, tokio::sync::mpsc::Receiver<String>, Node) {
    let config = ProtocolConfig::default()
        .with_max_frame(MAX_FRAME)
        .with_request_timeout(Duration::from_millis(300));
    let (probe, failures) = Probe::new(config);
    let (server, address) = common::probe_server(probe).await;
    let caller = common::node().await;
    (server, address, failures, caller)
}

/// Opens a raw stream, writes `bytes`, optionally closes the write side, and
/// returns what the server answered: it must end the stream without a frame.
async fn send_raw(caller: &Node, address: &str, bytes: &[u8], close: bool) -> Vec<u8> {
    let protocol = StreamProtocol::new(<TaskProtocol as subnet::Protocol>::ID);
    let mut stream = caller
        .open_stream(address, protocol, Duration::from_secs(5))
        .await
        .expect("stream opens");
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    if close {
        stream.close().await.unwrap();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server ends the stream");
    answer
}

/// The node still answers a good request.
async fn still_serves(caller: &Node, address: &str) {
    let response = caller
        .client::<TaskProtocol>()
        .call(address, task("still here"))
        .await
        .expect("the next good request is served");
    assert_eq!(&response.result[..], b"STILL HERE");
}

#[tokio::test]
async fn a_length_prefix_above_the_maximum_is_rejected_before_allocating() {
    let (_server, address, mut failures, caller) = setup().await;
    // 2^40 bytes announced: allocating it would abort the process.
    let mut prefix = Vec::new();
    let mut len: u64 = 1 << 40;
    while len >= 0x80 {
        prefix.push((len as u8) | 0x80);
        len >>= 7;
    }
    prefix.push(len as u8);
    assert!(send_raw(&caller, &address, &prefix, false).await.is_empty());
    let failure = next_failure(&mut failures).await;
    assert_eq!(
        failure,
        format!(
            "Request(TooLarge {{ len: {}, max: {MAX_FRAME} }})",
            1u64 << 40
        )
    );
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn an_eleven_byte_varint_is_rejected() {
    let (_server, address, mut failures, caller) = setup().await;
    assert!(
        send_raw(&caller, &address, &[0x80; 11], false)
            .await
            .is_empty()
    );
    assert_eq!(next_failure(&mut failures).await, "Request(VarintTooLong)");
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn a_truncated_frame_then_end_of_stream_is_rejected() {
    let (_server, address, mut failures, caller) = setup().await;
    assert!(
        send_raw(&caller, &address, &[10, 1, 2, 3], true)
            .await
            .is_empty()
    );
    assert_eq!(
        next_failure(&mut failures).await,
        "Request(Truncated { expected: 10, received: 3 })"
    );
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn bytes_that_are_not_the_protobuf_are_rejected() {
    let (_server, address, mut failures, caller) = setup().await;
    // Field 1 with wire type 7, which does not exist.
    assert!(
        send_raw(&caller, &address, &[2, 0x0f, 0x00], false)
            .await
            .is_empty()
    );
    let failure = next_failure(&mut failures).await;
    assert!(failure.starts_with("Decode("), "{failure}");
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn a_stream_never_written_times_out() {
    let (_server, address, mut failures, caller) = setup().await;
    assert!(send_raw(&caller, &address, &[], false).await.is_empty());
    assert_eq!(next_failure(&mut failures).await, "RequestTimeout(300ms)");
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn a_response_larger_than_the_callers_maximum_is_rejected() {
    let (_server, address, _failures, caller) = setup().await;
    let small = caller
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_max_frame(1024));
    let error = small.call(&address, task("big:2000")).await.unwrap_err();
    assert!(
        matches!(
            error,
            CallError::MalformedResponse {
                source: FrameError::TooLarge { max: 1024, .. },
                ..
            }
        ),
        "{error}"
    );
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn a_response_larger_than_the_servers_maximum_is_not_sent() {
    let (_server, address, mut failures, caller) = setup().await;
    let error = caller
        .client::<TaskProtocol>()
        .call(&address, task("big:5000"))
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::Refused { .. }), "{error}");
    let failure = next_failure(&mut failures).await;
    assert!(failure.starts_with("ResponseTooLarge"), "{failure}");
    still_serves(&caller, &address).await;
}

#[tokio::test]
async fn a_request_larger_than_the_maximum_is_not_sent() {
    let (_server, address, _failures, caller) = setup().await;
    let small = caller
        .client::<TaskProtocol>()
        .with_config(ProtocolConfig::default().with_max_frame(16));
    let error = small
        .call(&address, task("a payload longer than sixteen bytes"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CallError::RequestTooLarge { max: 16, .. }),
        "{error}"
    );
    still_serves(&caller, &address).await;
}
