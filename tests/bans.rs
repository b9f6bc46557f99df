//! Reputation and bans over loopback: a peer that sends garbage frames is
//! banned, disconnected and refused until its ban ends; an operator bans
//! and unbans by hand.

mod common;

use std::time::Duration;

use futures::AsyncWriteExt;
use subnet::{
    Node, Protocol, StreamProtocol,
    reputation::{self, BanReason, Event, Violation},
    task::TaskProtocol,
};

const BAN: Duration = Duration::from_secs(5);

/// Opens a task-protocol stream to `server` and writes a length prefix
/// that never ends (11 bytes with the continuation bit): a malformed frame.
async fn send_garbage(attacker: &Node, server: &Node) -> bool {
    let Ok(mut stream) = attacker
        .open_stream(
            server.addresses()[0].clone(),
            StreamProtocol::new(TaskProtocol::ID),
            Duration::from_secs(5),
        )
        .await
    else {
        return false;
    };
    let _ = stream.write_all(&[0xff; 11]).await;
    let _ = stream.flush().await;
    // The server resets the stream once it has read the prefix.
    let mut byte = [0u8; 1];
    let _ = futures::AsyncReadExt::read(&mut *stream, &mut byte).await;
    true
}

async fn answers(caller: &Node, server: &Node) -> bool {
    caller
        .client::<TaskProtocol>()
        .call(server.addresses()[0].clone(), common::task("hello"))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_garbage_frames_is_banned_and_refused_until_its_ban_ends() {
    let server = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .reputation(reputation::Config::default().with_ban_duration(BAN))
        .build()
        .await
        .unwrap();
    server.register(TaskProtocol).await.unwrap();
    let (attacker, honest) = (common::node().await, common::node().await);
    let mut events = server.reputation_events();
    assert!(answers(&attacker, &server).await, "served before");

    // Four malformed frames (25 points each) cross the threshold of -80.
    let mut sent = 0;
    // When the frame that gets the attacker banned was sent: the ban starts
    // after it, so it ends no sooner than a ban's length after it.
    let mut banned_at = std::time::Instant::now();
    while !server.is_banned(&attacker.peer_id()) {
        assert!(sent < 10, "banned after a few garbage frames");
        banned_at = std::time::Instant::now();
        if send_garbage(&attacker, &server).await {
            sent += 1;
        }
        // The report follows the stream's reset: wait for it.
        common::eventually(Duration::from_secs(5), || async {
            server.reputation(&attacker.peer_id()) < -20.0 * sent as f64
                || server.is_banned(&attacker.peer_id())
        })
        .await;
    }
    println!("banned after {sent} garbage frames");
    assert_eq!(sent, 4);
    let event = events.recv().await.unwrap();
    assert_eq!(
        event,
        Event::Banned {
            peer: attacker.peer_id(),
            duration: BAN,
            reason: BanReason::Misbehaved(Violation::MalformedFrame),
        }
    );

    // Disconnected, and refused while banned; the honest peer is served.
    common::eventually(Duration::from_secs(5), || async {
        !server
            .connected_peers()
            .await
            .unwrap()
            .contains(&attacker.peer_id())
    })
    .await;
    assert!(!answers(&attacker, &server).await, "refused while banned");
    assert!(answers(&honest, &server).await, "others are served");
    assert!(banned_at.elapsed() < BAN, "checked within the ban");

    // Once the ban ends, the attacker is served again.
    common::eventually(Duration::from_secs(10), || async {
        answers(&attacker, &server).await
    })
    .await;
    assert!(banned_at.elapsed() >= BAN);

    // By hand: an operator's ban holds until it is lifted.
    server.ban(honest.peer_id(), Duration::from_secs(3600));
    assert!(server.is_banned(&honest.peer_id()));
    assert!(!answers(&honest, &server).await, "refused while banned");
    assert!(server.unban(&honest.peer_id()));
    // The refused connection may still be closing on the honest side: a
    // call on it fails as a lost connection; the next dials afresh.
    common::eventually(Duration::from_secs(5), || async {
        answers(&honest, &server).await
    })
    .await;
    for node in [attacker, honest, server] {
        node.shutdown().await;
    }
}
