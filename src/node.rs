//! The node handle: build a node, register protocols, call peers.

use std::{sync::Arc, time::Duration};

use futures::AsyncWriteExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, SwarmBuilder, identify, identity::Keypair, noise, ping,
    swarm::SwarmEvent, tcp, yamux,
};
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort};
use tokio::time::{Instant, timeout_at};

use crate::{
    Protocol,
    actors::{
        protocol::{ProtocolActor, ProtocolArguments},
        supervisor::{NodeMessage, NodeSupervisor},
        swarm::{Behaviour, SwarmArguments, SwarmMessage},
    },
    address_book::{AddressBook, Source},
    codec::{self, FrameError},
    destination::Destination,
    error::{CallError, Phase, RegisterError, StartError},
    metrics::{self, Direction, InFlight},
    protocol::Config,
    streams::{OpenError, OutboundStream, Shared},
};

/// Identify protocol version announced by nodes.
const IDENTIFY_PROTOCOL: &str = "/subnet/1.0.0";

/// Builds a [`Node`].
#[derive(Debug, Default)]
pub struct NodeBuilder {
    keypair: Option<Keypair>,
    listen: Vec<Multiaddr>,
    idle_connection_timeout: Option<Duration>,
}

impl NodeBuilder {
    /// How long an idle connection is kept: 60 s.
    pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

    /// Uses `keypair` as the node's identity (default: a new Ed25519 key).
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.keypair = Some(keypair);
        self
    }

    /// Adds a listen address, e.g. `/ip4/127.0.0.1/tcp/0` or
    /// `/ip4/127.0.0.1/udp/0/quic-v1`.
    pub fn listen(mut self, address: Multiaddr) -> Self {
        self.listen.push(address);
        self
    }

    /// Sets how long a connection without streams is kept open.
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = Some(timeout);
        self
    }

    /// Starts the node with its own root supervisor.
    pub async fn build(self) -> Result<Node, StartError> {
        self.start(None).await
    }

    /// Starts the node as a child of `supervisor`, an actor of the caller's
    /// own system: if the node fails, that supervisor is told.
    pub async fn spawn_linked(self, supervisor: ActorCell) -> Result<Node, StartError> {
        self.start(Some(supervisor)).await
    }

    async fn start(self, parent: Option<ActorCell>) -> Result<Node, StartError> {
        let keypair = self.keypair.unwrap_or_else(Keypair::generate_ed25519);
        let peer_id = keypair.public().to_peer_id();
        let shared = Arc::new(Shared::default());
        let address_book = AddressBook::default();
        let idle = self
            .idle_connection_timeout
            .unwrap_or(Self::DEFAULT_IDLE_CONNECTION_TIMEOUT);
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| StartError::Transport(e.into()))?
            .with_quic()
            .with_behaviour(|key| Behaviour {
                streams: crate::streams::Behaviour::new(shared.clone(), address_book.clone()),
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_PROTOCOL.into(),
                    key.public(),
                )),
                ping: ping::Behaviour::default(),
            })
            .map_err(|e| StartError::Transport(e.into()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        let mut listen_addrs = Vec::new();
        for address in &self.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|source| StartError::Listen {
                    address: address.clone(),
                    source,
                })?;
        }
        // Wait until every listener reports an address, so that the node's
        // addresses are known (port 0 resolved) when `build` returns.
        let mut pending = self.listen.len();
        while pending > 0 {
            match futures::StreamExt::select_next_some(&mut swarm).await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    tracing::info!("listening on {address}/p2p/{peer_id}");
                    listen_addrs.push(address);
                    pending -= 1;
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(StartError::ListenerFailed {
                        address: self.listen[self.listen.len() - pending].clone(),
                        reason: error.to_string(),
                    });
                }
                _ => {}
            }
        }
        let args = SwarmArguments {
            swarm,
            address_book: address_book.clone(),
        };
        let (supervisor, _) = match parent {
            Some(parent) => Actor::spawn_linked(None, NodeSupervisor, args, parent).await?,
            None => Actor::spawn(None, NodeSupervisor, args).await?,
        };
        let swarm = ractor::call!(supervisor, |reply| NodeMessage::Swarm { reply })
            .map_err(|e| StartError::Transport(e.to_string().into()))?;
        tracing::info!(peer = %peer_id, "node started");
        Ok(Node {
            inner: Arc::new(Inner {
                peer_id,
                listen_addrs,
                supervisor,
                swarm,
                shared,
                address_book,
            }),
        })
    }
}

/// A running node. Cloning is cheap; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.peer_id)
            .field("listen_addrs", &self.inner.listen_addrs)
            .finish()
    }
}

struct Inner {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    supervisor: ActorRef<NodeMessage>,
    swarm: ActorRef<SwarmMessage>,
    shared: Arc<Shared>,
    address_book: AddressBook,
}

impl Node {
    /// A builder with defaults: a new Ed25519 identity, no listen address.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The addresses the node listens on, each ending in `/p2p/<peer id>`:
    /// what another node passes to `call`.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        self.inner
            .listen_addrs
            .iter()
            .map(|a| a.clone().with_p2p(self.inner.peer_id).unwrap_or_else(|a| a))
            .collect()
    }

    /// The node's root actor, to supervise or stop it from an actor system.
    pub fn supervisor(&self) -> ActorCell {
        self.inner.supervisor.get_cell()
    }

    /// The shared view of the address book.
    pub fn address_book(&self) -> &AddressBook {
        &self.inner.address_book
    }

    /// Tells the node where `peer` lives.
    pub fn add_address(&self, peer: PeerId, address: Multiaddr) {
        self.inner.address_book.add(peer, address, Source::Manual);
    }

    /// The peers this node has a connection with.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, CallError> {
        ractor::call!(self.inner.swarm, |reply| SwarmMessage::ConnectedPeers {
            reply
        })
        .map_err(|_| CallError::NodeStopped)
    }

    /// Serves protocol `P` and returns a client to call it on other peers.
    pub async fn register<P: Protocol>(&self, protocol: P) -> Result<Client<P>, RegisterError> {
        let id = StreamProtocol::try_from_owned(P::ID.to_owned())
            .map_err(|_| RegisterError::InvalidId(P::ID))?;
        if self.inner.shared.has_route(&id) {
            return Err(RegisterError::AlreadyRegistered(id));
        }
        let config = protocol.config();
        let args = ProtocolArguments {
            handler: Arc::new(protocol),
            config: config.clone(),
            shared: self.inner.shared.clone(),
        };
        Actor::spawn_linked(
            None,
            ProtocolActor::<P>::default(),
            args,
            self.inner.supervisor.get_cell(),
        )
        .await?;
        Ok(Client::new(self.clone(), config))
    }

    /// A client of protocol `P` without serving it, with `P`'s default config.
    pub fn client<P: Protocol>(&self) -> Client<P> {
        Client::new(self.clone(), Config::default())
    }

    /// Opens a raw stream on `protocol` to `destination`, dialing if needed.
    /// For protocols that frame their own bytes.
    pub async fn open_stream<D>(
        &self,
        destination: D,
        protocol: StreamProtocol,
        timeout: Duration,
    ) -> Result<OutboundStream, CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        let destination = destination.try_into().map_err(Into::into)?;
        self.open(&destination, protocol, Instant::now() + timeout, timeout)
            .await
    }

    async fn open(
        &self,
        destination: &Destination,
        protocol: StreamProtocol,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<OutboundStream, CallError> {
        let peer = destination.peer();
        let timed_out = |phase| CallError::Timeout {
            peer,
            phase,
            timeout,
        };
        if let Destination::Address { address, .. } = destination {
            self.inner
                .address_book
                .add(peer, address.clone(), Source::Manual);
        }
        let mut dialed = false;
        loop {
            let opened = timeout_at(deadline, self.inner.shared.open(peer, protocol.clone()))
                .await
                .map_err(|_| timed_out(Phase::Open))?;
            match opened {
                Some(Ok(stream)) => return Ok(stream),
                Some(Err(OpenError::Unsupported)) => {
                    return Err(CallError::Unsupported { peer, protocol });
                }
                Some(Err(OpenError::Timeout)) => return Err(timed_out(Phase::Open)),
                Some(Err(OpenError::Io(source))) => return Err(CallError::Open { peer, source }),
                Some(Err(OpenError::ConnectionClosed)) | None if dialed => {
                    return Err(CallError::Open {
                        peer,
                        source: std::io::ErrorKind::ConnectionAborted.into(),
                    });
                }
                Some(Err(OpenError::ConnectionClosed)) | None => {}
            }
            let addresses = self.inner.address_book.addresses(&peer);
            if addresses.is_empty() {
                return Err(CallError::NoAddress { peer });
            }
            let dial = async {
                ractor::call!(self.inner.swarm, |reply: RpcReplyPort<_>| {
                    SwarmMessage::Dial {
                        peer,
                        addresses,
                        reply,
                    }
                })
            };
            timeout_at(deadline, dial)
                .await
                .map_err(|_| timed_out(Phase::Dial))?
                .map_err(|_| CallError::NodeStopped)?
                .map_err(|source| CallError::DialFailed { peer, source })?;
            dialed = true;
        }
    }

    /// Stops the node: protocols first, then the swarm.
    pub async fn shutdown(&self) {
        let _ = self
            .inner
            .supervisor
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(30)))
            .await;
    }
}

/// Calls protocol `P` on other peers.
pub struct Client<P> {
    node: Node,
    config: Config,
    protocol: StreamProtocol,
    _protocol: std::marker::PhantomData<fn() -> P>,
}

impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            config: self.config.clone(),
            protocol: self.protocol.clone(),
            _protocol: std::marker::PhantomData,
        }
    }
}

impl<P: Protocol> std::fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("protocol", &self.protocol)
            .field("node", &self.node)
            .finish()
    }
}

impl<P: Protocol> Client<P> {
    fn new(node: Node, config: Config) -> Self {
        Self {
            node,
            config,
            protocol: StreamProtocol::new(P::ID),
            _protocol: std::marker::PhantomData,
        }
    }

    /// The same client with other limits (for example a shorter timeout or
    /// a smaller maximum response).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sends `request` to `destination` and returns its response.
    ///
    /// `destination` is a [`PeerId`] whose address the node knows, a
    /// [`Multiaddr`] ending in `/p2p/<peer id>`, or the text of either.
    pub async fn call<D>(
        &self,
        destination: D,
        request: P::Request,
    ) -> Result<P::Response, CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        let started = std::time::Instant::now();
        let _in_flight = InFlight::start(P::ID, Direction::Outbound);
        let result = match destination.try_into() {
            Ok(destination) => self.call_to(&destination, request).await,
            Err(error) => Err(error.into()),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        metrics::request_finished(P::ID, Direction::Outbound, outcome, started.elapsed());
        result
    }

    async fn call_to(
        &self,
        destination: &Destination,
        request: P::Request,
    ) -> Result<P::Response, CallError> {
        let max = self.config.max_frame();
        let len = prost::Message::encoded_len(&request);
        if len > max {
            return Err(CallError::RequestTooLarge { len, max });
        }
        let frame = codec::encode_frame(&request);
        drop(request);
        let peer = destination.peer();
        let timeout = self.config.call_timeout();
        let deadline = Instant::now() + timeout;
        let timed_out = |phase| CallError::Timeout {
            peer,
            phase,
            timeout,
        };
        let mut stream = self
            .node
            .open(destination, self.protocol.clone(), deadline, timeout)
            .await?;
        let stream: &mut libp2p::Stream = &mut stream;
        timeout_at(deadline, codec::write_frame(stream, &frame))
            .await
            .map_err(|_| timed_out(Phase::Write))?
            .map_err(|source| match codec::is_reset(&source) {
                true => CallError::Refused { peer },
                false => CallError::Write { peer, source },
            })?;
        let body = timeout_at(deadline, codec::read_frame(stream, max))
            .await
            .map_err(|_| timed_out(Phase::Read))?
            .map_err(|source| match source {
                FrameError::Closed => CallError::Refused { peer },
                FrameError::Io(e) if codec::is_reset(&e) => CallError::Refused { peer },
                source => CallError::MalformedResponse { peer, source },
            })?;
        metrics::frame_bytes(P::ID, Direction::Outbound, frame.len(), body.len());
        let response = <P::Response as prost::Message>::decode(&body[..])
            .map_err(|source| CallError::Decode { peer, source })?;
        // The response is complete: closing is a courtesy bounded by the deadline.
        let _ = timeout_at(deadline, stream.close()).await;
        Ok(response)
    }
}
