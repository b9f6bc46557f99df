//! A node raises its process's soft open-file limit to the hard limit.

use rlimit::Resource;

#[tokio::test]
async fn starting_a_node_raises_the_soft_open_file_limit_to_the_hard_limit() {
    let (_, hard) = Resource::NOFILE.get().unwrap();
    let low = hard.min(256);
    Resource::NOFILE.set(low, hard).unwrap();
    assert_eq!(Resource::NOFILE.get().unwrap().0, low);
    let node = subnet::Node::builder().build().await.unwrap();
    assert_eq!(Resource::NOFILE.get().unwrap(), (hard, hard));
    node.shutdown().await;
}
