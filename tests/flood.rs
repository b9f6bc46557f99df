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
    Multiaddr, PeerId, Stream, StreamProtocol, Swarm,
    core::{Endpoint, transport::PortUse, upgrade::ReadyUpgrade},
    swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, SubstreamProtocol, SwarmEvent, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
        handler::{ConnectionEvent, FullyNegotiatedOutbound},
    },
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
    /// Streams one connection opens at most (0: no cap), so that a flood
    /// spreads over every connection.
    per_connection: usize,
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
    /// Each connection handler's waker, woken when there is more to do.
    wakers: Vec<Waker>,
}

impl Control {
    /// Wakes every handler (each polls again and takes what is its).
    fn wake(&mut self) {
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

type Shared = Arc<Mutex<Control>>;

struct FloodHandler {
    control: Shared,
    /// Streams this connection opened.
    opened: usize,
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
        if !control.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            control.wakers.push(cx.waker().clone());
        }
        let protocol = StreamProtocol::new("/subnet/task_protocol/1.0.0");
        if control.want_request {
            control.want_request = false;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(ReadyUpgrade::new(protocol), true),
            });
        }
        let room = control.per_connection == 0 || self.opened < control.per_connection;
        if control.to_open > 0 && control.live < LIVE && room {
            self.opened += 1;
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
                        control.wake();
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
            opened: 0,
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
            opened: 0,
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
    common::bare_swarm(|_| Flood { control })
}

/// The port of this test process's metrics server (one recorder per
/// process, on a runtime of its own that outlives each test's).
fn metrics_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let (port, sent) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let server =
                    subnet::metrics::serve_prometheus(SocketAddr::from(([127, 0, 0, 1], 0)))
                        .unwrap();
                port.send(server.local_addr().port()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        sent.recv().unwrap()
    })
}

/// `subnet_inbound_refused_total{reason="connection_limit"}` summed.
async fn refused_by_connection_limit(port: u16) -> f64 {
    common::scrape_sum(
        port,
        "subnet_inbound_refused_total",
        &["reason=\"connection_limit\""],
    )
    .await
}

/// Waits until the flood of `total` streams has stood still for 1 s (the
/// streams it negotiated and the node's refusals unchanged); returns the
/// streams negotiated, failed to open, and reset by the node.
async fn settle(control: &Shared, port: u16, total: usize) -> (usize, usize, usize) {
    let refused = || common::scrape_sum(port, "subnet_inbound_refused_total", &[]);
    let mut last = (0, 0.0);
    let mut still = 0;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let negotiated = control.lock().unwrap().negotiated;
        let now = (negotiated, refused().await);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        let done = {
            let c = control.lock().unwrap();
            c.to_open == 0 && c.negotiated + c.failed >= total
        };
        if done && still >= 5 {
            break;
        }
    }
    let c = control.lock().unwrap();
    let reset = c.reset.load(std::sync::atomic::Ordering::Relaxed);
    (c.negotiated, c.failed, reset)
}

/// Wakes the flooder's handlers after `f` changed what they are asked.
fn poke(control: &Shared, f: impl FnOnce(&mut Control)) {
    let mut c = control.lock().unwrap();
    f(&mut c);
    c.wake();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_is_refused_stream_by_stream_and_the_connection_lives() {
    let port = metrics_port();
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

    // Connected: flood.
    common::eventually(Duration::from_secs(10), || {
        let c = control.clone();
        async move { !c.lock().unwrap().wakers.is_empty() }
    })
    .await;
    let (release, released) = tokio::sync::watch::channel(false);
    poke(&control, |c| {
        c.release = Some(released.clone());
        c.to_open = FLOOD;
    });
    // The flooder opens streams as fast as its yamux lets it (yamux holds
    // back streams the remote has not acknowledged); the node holds its
    // per-connection cap and refuses the rest, one by one, and the flood
    // stalls there.
    let cap = subnet::MAX_INBOUND_STREAMS_PER_CONNECTION;
    let (negotiated, failed, reset) = settle(&control, port, FLOOD).await;
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
    // answered (once the node has seen the held streams reset: those still
    // waiting for a handler slot notice at their turn, so a request sent at
    // once may still find the peer's share full and be refused).
    release.send(true).unwrap();
    // Every held stream ended on the flooder's side first: its own yamux
    // ends the connection if one more stream would pass 512.
    common::eventually(Duration::from_secs(10), || {
        let c = control.clone();
        async move { c.lock().unwrap().live == 0 }
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        poke(&control, |c| c.want_request = true);
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
        match subnet::codec::read_frame(&mut stream, 1 << 20).await {
            Ok(body) => break body,
            Err(error) => {
                assert!(std::time::Instant::now() < deadline, "{error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let response: subnet::task::TaskResponse = prost::Message::decode(&body[..]).unwrap();
    assert_eq!(&response.result[..], b"STILL HERE");
    let cause = closed.lock().unwrap().clone();
    assert_eq!(cause, None, "the connection closed");
    driver.abort();
    node.shutdown().await;
}

/// Connections the silent flooder opens to the node (one identity): each
/// holds at most the per-connection cap, so only the per-peer share stops
/// it short of the protocol's whole capacity (1,280). A node takes 4
/// connections per peer at most.
const CONNECTIONS: usize = 4;

/// Streams the silent flooder opens.
const SILENT: usize = 1_300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_holding_1300_silent_streams_leaves_another_identity_served() {
    use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
    use subnet::Protocol as _;
    let port = metrics_port();
    let node = common::node().await;
    node.register(TaskProtocol).await.unwrap();
    let address = node.addresses()[0].clone();

    let control: Shared = Arc::default();
    let (release, released) = tokio::sync::watch::channel(false);
    control.lock().unwrap().release = Some(released);
    let mut swarm = flooder(control.clone());
    for _ in 0..CONNECTIONS {
        swarm
            .dial(
                DialOpts::peer_id(node.peer_id())
                    .addresses(vec![address.clone()])
                    .condition(PeerCondition::Always)
                    .build(),
            )
            .unwrap();
    }
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let driver = tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { .. } => {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { cause, .. } => {
                    println!("flooder connection closed: {cause:?}");
                }
                _ => {}
            }
        }
    });
    common::eventually(Duration::from_secs(10), || {
        let c = connections.clone();
        async move { c.load(std::sync::atomic::Ordering::Relaxed) == CONNECTIONS }
    })
    .await;
    let started = std::time::Instant::now();
    poke(&control, |c| {
        c.to_open = SILENT;
        c.per_connection = SILENT.div_ceil(CONNECTIONS);
    });
    let (negotiated, failed, reset) = settle(&control, port, SILENT).await;
    let held = negotiated - reset;
    let share = subnet::ProtocolConfig::DEFAULT_MAX_CONCURRENT_PER_PEER
        + subnet::ProtocolConfig::DEFAULT_MAX_PENDING_PER_PEER;
    let by_peer_limit = common::scrape_sum(
        port,
        "subnet_inbound_refused_total",
        &[TaskProtocol::ID, "reason=\"peer_limit\""],
    )
    .await;
    println!(
        "silent flood of {SILENT} on {CONNECTIONS} connections: {negotiated} negotiated, {failed} failed to open, {held} held, {by_peer_limit} refused (peer_limit), in {:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    assert!(
        held <= share,
        "one identity holds at most its share: {held}"
    );
    assert!(by_peer_limit > 0.0, "refusals counted as peer_limit");

    // A second identity's 200 calls, all at once, are all answered while
    // the first holds its streams.
    let caller = common::node().await;
    let client = caller.client::<TaskProtocol>();
    let results: Vec<_> = (0..200)
        .map(|i| client.call(address.clone(), common::task(&format!("call {i}"))))
        .collect::<futures::stream::FuturesUnordered<_>>()
        .collect()
        .await;
    let answered = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "the other identity: {answered} of 200 calls answered in {:?}",
        started.elapsed()
    );
    assert_eq!(answered, 200, "{:?}", results.iter().find(|r| r.is_err()));
    release.send(true).unwrap();
    driver.abort();
    caller.shutdown().await;
    node.shutdown().await;
}
