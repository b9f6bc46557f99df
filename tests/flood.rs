//! A flood of streams on one connection, from a raw rust-libp2p peer that
//! opens 2,000 streams of the task protocol and never writes on them: the
//! node refuses them one by one past its per-connection cap, the connection
//! stays open, and a request on it is answered once the flooder lets go.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol, Swarm, SwarmBuilder,
    core::{Endpoint, transport::PortUse, upgrade::ReadyUpgrade},
    noise,
    swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, SubstreamProtocol, SwarmEvent, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
        handler::{ConnectionEvent, FullyNegotiatedOutbound},
    },
    tcp, yamux,
};
use subnet::{Node, task::TaskProtocol};

const FLOOD: usize = 2_000;

/// Streams the flooder keeps open at once at most (its yamux allows 512).
const LIVE: usize = 400;

/// What the test asks of the flooder's one connection, and what it saw.
#[derive(Default)]
struct Control {
    /// Streams still to open.
    to_open: usize,
    /// Streams negotiated (then held, never written, until the node resets
    /// them or the test lets go).
    negotiated: usize,
    /// Of those, streams the node reset.
    reset: Arc<std::sync::atomic::AtomicUsize>,
    /// Streams requested and not yet ended (reset, failed): the flooder
    /// keeps this under its own yamux's limit of 512, or its own muxer
    /// would end the connection.
    live: usize,
    /// Set to let go of the held streams.
    release: Option<tokio::sync::watch::Receiver<bool>>,
    /// Streams whose opening failed.
    failed: usize,
    /// A stream for one honest request, once asked for.
    want_request: bool,
    request: Option<Stream>,
    waker: Option<Waker>,
}

type Shared = Arc<Mutex<Control>>;

struct FloodHandler {
    control: Shared,
}

impl ConnectionHandler for FloodHandler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = libp2p::core::upgrade::DeniedUpgrade;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = bool;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
        SubstreamProtocol::new(libp2p::core::upgrade::DeniedUpgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        true
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, bool, Infallible>> {
        let mut control = self.control.lock().unwrap();
        control.waker = Some(cx.waker().clone());
        let protocol = StreamProtocol::new("/subnet/task_protocol/1.0.0");
        if control.want_request {
            control.want_request = false;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(protocol), true),
            });
        }
        if control.to_open > 0 && control.live < LIVE {
            control.to_open -= 1;
            control.live += 1;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(protocol), false),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<'_, Self::InboundProtocol, Self::OutboundProtocol, (), bool>,
    ) {
        let mut control = self.control.lock().unwrap();
        match event {
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info: honest,
            }) => {
                if honest {
                    control.request = Some(stream);
                } else {
                    // Held until the node resets it (a refusal) or the test
                    // lets go; a dead stream is dropped, as a real client
                    // drops a refused one.
                    control.negotiated += 1;
                    let reset = control.reset.clone();
                    let shared = self.control.clone();
                    let mut release = control.release.clone().expect("set before the flood");
                    let mut stream = stream;
                    tokio::spawn(async move {
                        use futures::AsyncReadExt;
                        let mut byte = [0u8; 1];
                        tokio::select! {
                            _ = stream.read(&mut byte) => {
                                reset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            _ = release.wait_for(|r| *r) => {}
                        }
                        drop(stream);
                        let mut control = shared.lock().unwrap();
                        control.live -= 1;
                        if let Some(waker) = control.waker.take() {
                            waker.wake();
                        }
                    });
                }
            }
            ConnectionEvent::DialUpgradeError(_) => {
                control.failed += 1;
                control.live -= 1;
            }
            _ => {}
        }
    }
}

/// The flooder's behaviour: one handler per connection, sharing `control`.
struct Flood {
    control: Shared,
}

impl NetworkBehaviour for Flood {
    type ConnectionHandler = FloodHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(FloodHandler {
            control: self.control.clone(),
        })
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(FloodHandler {
            control: self.control.clone(),
        })
    }

    fn on_swarm_event(&mut self, _: FromSwarm<'_>) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

fn flooder(control: Shared) -> Swarm<Flood> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| Flood { control })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// `subnet_inbound_refused_total{reason="connection_limit"}` summed.
async fn refused_by_connection_limit(port: u16) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("subnet_inbound_refused_total{") && l.contains("connection_limit")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_is_refused_stream_by_stream_and_the_connection_lives() {
    let server = subnet::metrics::serve_prometheus(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let port = server.local_addr().port();
    let node = Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .build()
        .await
        .unwrap();
    node.register(TaskProtocol).await.unwrap();
    let address = node.addresses()[0].clone();

    let control: Shared = Arc::default();
    let mut swarm = flooder(control.clone());
    swarm.dial(address).unwrap();
    let closed = Arc::new(Mutex::new(None::<String>));
    let seen = closed.clone();
    let driver = tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { cause, .. } => {
                    *seen.lock().unwrap() = Some(format!("{cause:?}"));
                }
                SwarmEvent::ConnectionEstablished { .. } => {}
                _ => {}
            }
        }
    });
    let poke = |f: &dyn Fn(&mut Control)| {
        let mut c = control.lock().unwrap();
        f(&mut c);
        if let Some(w) = c.waker.take() {
            w.wake();
        }
    };

    // Connected: flood.
    common::eventually(Duration::from_secs(10), || {
        let c = control.clone();
        async move { c.lock().unwrap().waker.is_some() }
    })
    .await;
    let (release, released) = tokio::sync::watch::channel(false);
    poke(&|c| {
        c.release = Some(released.clone());
        c.to_open = FLOOD;
    });
    // The flooder opens streams as fast as its yamux lets it (yamux holds
    // back streams the remote has not acknowledged); the node holds its
    // per-connection cap and refuses the rest, one by one, and the flood
    // stalls there. Wait until it has stood still for 2 s.
    let cap = subnet::MAX_INBOUND_STREAMS_PER_CONNECTION;
    let mut last = (0, 0.0);
    let mut still = 0;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let negotiated = control.lock().unwrap().negotiated;
        let now = (negotiated, refused_by_connection_limit(port).await);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        let done = {
            let c = control.lock().unwrap();
            c.to_open == 0 && c.negotiated + c.failed >= FLOOD
        };
        if done && still >= 5 {
            break;
        }
    }
    let (negotiated, failed, reset) = {
        let c = control.lock().unwrap();
        let reset = c.reset.load(std::sync::atomic::Ordering::Relaxed);
        (c.negotiated, c.failed, reset)
    };
    let refused = refused_by_connection_limit(port).await;
    println!(
        "flood of {FLOOD}: {negotiated} negotiated, {failed} failed to open, {reset} reset by the node; it refused {refused} (connection_limit)"
    );
    assert!(negotiated > cap, "the flood got past the cap: {negotiated}");
    assert!(
        refused >= (negotiated - cap) as f64,
        "the node refused what its connection could not hold: {refused} of {negotiated}"
    );
    let cause = closed.lock().unwrap().clone();
    assert_eq!(cause, None, "the connection closed");

    // The flooder lets go; an honest request on the same connection is
    // answered.
    release.send(true).unwrap();
    poke(&|c| c.want_request = true);
    common::eventually(Duration::from_secs(10), || {
        let c = control.clone();
        async move { c.lock().unwrap().request.is_some() }
    })
    .await;
    let mut stream = control.lock().unwrap().request.take().unwrap();
    let frame = subnet::codec::encode_frame(&common::task("still here"));
    subnet::codec::write_frame(&mut stream, &frame)
        .await
        .unwrap();
    let body = subnet::codec::read_frame(&mut stream, 1 << 20)
        .await
        .unwrap();
    let response: subnet::task::TaskResponse = prost::Message::decode(&body[..]).unwrap();
    assert_eq!(&response.result[..], b"STILL HERE");
    let cause = closed.lock().unwrap().clone();
    assert_eq!(cause, None, "the connection closed");
    driver.abort();
    node.shutdown().await;
}
