//! Running out of file descriptors is a typed error that says so, not a
//! panic. Its own test binary: it uses up the process's descriptors.

use rlimit::Resource;
use subnet::{Node, StartError};

#[tokio::test]
async fn a_node_started_without_descriptors_left_says_so() {
    // The first node raises the soft limit (once per process); then the
    // limit is lowered again and every descriptor below it taken.
    let first = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap();
    let (_, hard) = Resource::NOFILE.get().unwrap();
    Resource::NOFILE.set(hard.min(512), hard).unwrap();
    let mut held = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        held.push(file);
    }
    let error = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap_err();
    drop(held);
    println!("{error}");
    assert!(
        matches!(error, StartError::OutOfFileDescriptors { limit, .. } if limit == hard.min(512)),
        "{error:?}"
    );
    assert!(error.to_string().contains("out of file descriptors"));
    // With descriptors back, nodes start again.
    let second = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap();
    second.shutdown().await;
    first.shutdown().await;
}
