//! A node asks a peer for messages the peer advertised (GossipSub IWANT
//! after IHAVE) and remembers each request as a promise, to be kept until
//! the message comes or the promise expires (rust-libp2p's
//! `iwant_followup_time`, 3 s). A message that never comes must not stay
//! promised for ever: libp2p-gossipsub 0.50.1 without peer scoring kept such
//! promises for the node's lifetime (the map grew by every unanswered
//! IWANT, and the node never asked for that message again); the vendored
//! copy drops them once expired (`vendor/libp2p-gossipsub/VENDORED.md`).
//!
//! And a node names messages as go-libp2p and py-libp2p 0.8 do (source
//! peer id bytes, then the 8-byte sequence number), so that their IHAVEs
//! and IWANTs mean the same messages.
//!
//! The peer here is a bare libp2p swarm that speaks GossipSub's wire format
//! by hand (`/meshsub/1.1.0`: varint-length-prefixed protobuf RPCs, the
//! framing of `subnet::codec`), so that it
//! can advertise a message it never sends and ask for messages by id.

mod common;

use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncWrite, StreamExt};
use libp2p::StreamProtocol;
use prost::Message as _;
use subnet::codec;
use tokio::sync::mpsc;

const MESHSUB: StreamProtocol = StreamProtocol::new("/meshsub/1.1.0");
/// The id of the message advertised and never sent.
const NEVER_SENT: &[u8] = b"advertised-never-sent";
/// The longest RPC read from the node (its heartbeats are far smaller).
const MAX_RPC: usize = 1 << 20;

/// GossipSub's RPC (libp2p pubsub `rpc.proto`), the fields used here.
#[derive(Clone, PartialEq, prost::Message)]
struct Rpc {
    #[prost(message, repeated, tag = "1")]
    subscriptions: Vec<SubOpts>,
    #[prost(message, repeated, tag = "2")]
    publish: Vec<PubMessage>,
    #[prost(message, optional, tag = "3")]
    control: Option<ControlMessage>,
}

/// A published message (`Message` in `rpc.proto`), the fields used here.
#[derive(Clone, PartialEq, prost::Message)]
struct PubMessage {
    #[prost(bytes = "vec", optional, tag = "1")]
    from: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    seqno: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SubOpts {
    #[prost(bool, optional, tag = "1")]
    subscribe: Option<bool>,
    #[prost(string, optional, tag = "2")]
    topic_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ControlMessage {
    #[prost(message, repeated, tag = "1")]
    ihave: Vec<ControlIHave>,
    #[prost(message, repeated, tag = "2")]
    iwant: Vec<ControlIWant>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ControlIHave {
    #[prost(string, optional, tag = "1")]
    topic_id: Option<String>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    message_ids: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ControlIWant {
    #[prost(bytes = "vec", repeated, tag = "1")]
    message_ids: Vec<Vec<u8>>,
}

async fn write_rpc(stream: &mut (impl AsyncWrite + Unpin), rpc: &Rpc) -> std::io::Result<()> {
    codec::write_frame(stream, &codec::encode_frame(rpc)).await
}

async fn read_rpc(stream: &mut (impl AsyncRead + Unpin)) -> Option<Rpc> {
    let frame = codec::read_frame(stream, MAX_RPC).await.ok()?;
    Rpc::decode(frame.as_slice()).ok()
}

fn ihave(topic: &str) -> Rpc {
    Rpc {
        subscriptions: vec![SubOpts {
            subscribe: Some(true),
            topic_id: Some(topic.to_string()),
        }],
        publish: Vec::new(),
        control: Some(ControlMessage {
            ihave: vec![ControlIHave {
                topic_id: Some(topic.to_string()),
                message_ids: vec![NEVER_SENT.to_vec()],
            }],
            iwant: Vec::new(),
        }),
    }
}

/// Waits up to `within` for an IWANT of [`NEVER_SENT`].
async fn iwant(from_node: &mut mpsc::Receiver<Rpc>, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        while let Some(rpc) = from_node.recv().await {
            let ids = rpc.control.into_iter().flat_map(|c| c.iwant);
            if ids
                .flat_map(|iwant| iwant.message_ids)
                .any(|id| id == NEVER_SENT)
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

/// Advertises [`NEVER_SENT`] on `stream` each second until the node asks
/// for it, within `within`: how long that took, or `None`.
async fn asked_for(
    stream: &mut (impl AsyncWrite + Unpin),
    from_node: &mut mpsc::Receiver<Rpc>,
    topic: &str,
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        write_rpc(stream, &ihave(topic)).await.unwrap();
        if iwant(from_node, Duration::from_secs(1)).await {
            return Some(started.elapsed());
        }
    }
    None
}

/// A node heartbeating each second, and a bare peer connected to it: the
/// stream the peer opened to the node, and the RPCs the node sends.
struct Peer {
    node: subnet::Node,
    topic: String,
    stream: libp2p::Stream,
    from_node: mpsc::Receiver<Rpc>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Peer {
    async fn connect() -> Self {
        common::logs();
        let node = subnet::Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .heartbeat(subnet::heartbeat::Config::new(1, 1))
            .build()
            .await
            .unwrap();
        let topic = subnet::heartbeat::topic(1);

        let mut swarm = common::bare_swarm(|_| libp2p_stream::Behaviour::new());
        let mut control = swarm.behaviour().new_control();
        let mut incoming = control.accept(MESHSUB).unwrap();
        swarm.dial(node.addresses()[0].clone()).unwrap();
        let swarm_task = tokio::spawn(async move {
            loop {
                swarm.select_next_some().await;
            }
        });

        // The node sends its RPCs on the stream it opens to the peer.
        let (found, from_node) = mpsc::channel(1024);
        let reader = tokio::spawn(async move {
            while let Some((_, mut stream)) = incoming.next().await {
                let found = found.clone();
                tokio::spawn(async move {
                    while let Some(rpc) = read_rpc(&mut stream).await {
                        let _ = found.send(rpc).await;
                    }
                });
            }
        });

        let stream = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match control.open_stream(node.peer_id(), MESHSUB).await {
                    Ok(stream) => break stream,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
        .await
        .expect("a GossipSub stream to the node within 10 s");
        Self {
            node,
            topic,
            stream,
            from_node,
            tasks: vec![reader, swarm_task],
        }
    }

    async fn shutdown(self) {
        for task in self.tasks {
            task.abort();
        }
        self.node.shutdown().await;
    }
}

#[tokio::test]
async fn a_message_advertised_and_never_sent_is_asked_for_again_once_its_promise_expires() {
    let mut peer = Peer::connect().await;
    // Advertised (each second, until the node has joined the topic): asked
    // for.
    assert!(
        asked_for(
            &mut peer.stream,
            &mut peer.from_node,
            &peer.topic,
            Duration::from_secs(10)
        )
        .await
        .is_some(),
        "the node asks for an advertised message it has not seen"
    );
    // Advertised again each second: asked for again once the promise of the
    // first IWANT expired (3 s, dropped at the node's next mesh heartbeat,
    // each second); before the fix, never.
    let again = asked_for(
        &mut peer.stream,
        &mut peer.from_node,
        &peer.topic,
        Duration::from_secs(30),
    )
    .await
    .expect("the node never asked again for a message it was promised and never got");
    assert!(
        again >= Duration::from_secs(1),
        "asked again after {again:?}: before the promise expired"
    );
    peer.shutdown().await;
}

/// The next message the node publishes or forwards to the peer, within
/// `within`: its source and sequence number.
async fn next_message(
    from_node: &mut mpsc::Receiver<Rpc>,
    within: Duration,
) -> Option<(Vec<u8>, Vec<u8>)> {
    tokio::time::timeout(within, async {
        while let Some(rpc) = from_node.recv().await {
            if let Some(message) = rpc.publish.into_iter().next() {
                return Some((message.from?, message.seqno?));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// go-libp2p and py-libp2p 0.8 name a message by its source's peer id bytes
/// followed by its sequence number; a peer asking the node for a message by
/// that name (IWANT) gets it.
#[tokio::test]
async fn a_message_is_asked_for_by_the_id_go_and_python_peers_give_it() {
    let mut peer = Peer::connect().await;
    let subscribe = Rpc {
        subscriptions: vec![SubOpts {
            subscribe: Some(true),
            topic_id: Some(peer.topic.clone()),
        }],
        ..Rpc::default()
    };
    write_rpc(&mut peer.stream, &subscribe).await.unwrap();
    let (from, seqno) = next_message(&mut peer.from_node, Duration::from_secs(10))
        .await
        .expect("the node's heartbeat within 10 s");
    assert_eq!(
        libp2p::PeerId::from_bytes(&from).unwrap(),
        peer.node.peer_id()
    );
    assert_eq!(seqno.len(), 8, "sequence numbers are 8 bytes");

    let asked = [from.clone(), seqno.clone()].concat();
    let iwant = Rpc {
        control: Some(ControlMessage {
            ihave: Vec::new(),
            iwant: vec![ControlIWant {
                message_ids: vec![asked],
            }],
        }),
        ..Rpc::default()
    };
    write_rpc(&mut peer.stream, &iwant).await.unwrap();
    // The heartbeat asked for comes again (each heartbeat is sent to the
    // peer once otherwise; the next ones have other sequence numbers).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut again = false;
    while let Some(message) = next_message(
        &mut peer.from_node,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await
    {
        if message == (from.clone(), seqno.clone()) {
            again = true;
            break;
        }
    }
    assert!(
        again,
        "the node did not answer an IWANT naming its message by source and sequence number"
    );
    peer.shutdown().await;
}
