//! The node handle: build a node, register protocols, call peers.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, stream::FuturesUnordered};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identity::Keypair, swarm::SwarmEvent};
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort};
use tokio::{
    sync::broadcast,
    time::{Instant, timeout_at},
};

use crate::{
    Protocol,
    actors::{
        address_book::AddressBookMessage,
        heartbeat::{HeartbeatMessage, HeartbeatStats},
        protocol::{ProtocolActor, ProtocolArguments},
        supervisor::{NodeActors, NodeArguments, NodeMessage, NodeSupervisor},
        swarm::{self, SwarmMessage, SwarmOptions},
    },
    address_book::{self, AddressBook, Event, Source},
    codec::{self, FrameError},
    destination::Destination,
    error::{CallError, Phase, RegisterError, StartError},
    heartbeat,
    metrics::{Direction, Metrics, RequestMetrics},
    peer_exchange::{PeerExchange, PeerExchangeRequest},
    protocol::Config,
    registry::{Gate, Registry},
    streams::{ExchangeError, OpenError, OutboundStream, Progress, Shared},
};

/// Builds a [`Node`].
pub struct NodeBuilder {
    keypair: Option<Keypair>,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    idle_connection_timeout: Duration,
    subnet_id: u64,
    heartbeat: Option<heartbeat::Config>,
    registry: Option<Arc<dyn Registry>>,
    gating: bool,
    peer_exchange: bool,
    kademlia: bool,
    address_book: address_book::Config,
    discovery_timeout: Duration,
    min_peers: usize,
    metrics_label: String,
    noise_names: Vec<&'static str>,
    gossipsub_protocol: Option<String>,
    max_inbound_connections: u32,
    lazy_negotiation: bool,
}

impl Default for NodeBuilder {
    fn default() -> Self {
        Self {
            keypair: None,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            idle_connection_timeout: Self::DEFAULT_IDLE_CONNECTION_TIMEOUT,
            subnet_id: 0,
            heartbeat: None,
            registry: None,
            gating: false,
            peer_exchange: true,
            kademlia: true,
            address_book: address_book::Config::default(),
            discovery_timeout: Self::DEFAULT_DISCOVERY_TIMEOUT,
            min_peers: Self::DEFAULT_MIN_PEERS,
            metrics_label: "0".into(),
            noise_names: vec![crate::security::NOISE],
            gossipsub_protocol: None,
            max_inbound_connections: Self::DEFAULT_MAX_INBOUND_CONNECTIONS,
            lazy_negotiation: false,
        }
    }
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("subnet_id", &self.subnet_id)
            .field("heartbeat", &self.heartbeat)
            .field("registry", &self.registry.is_some())
            .field("gating", &self.gating)
            .field("peer_exchange", &self.peer_exchange)
            .field("kademlia", &self.kademlia)
            .finish()
    }
}

impl NodeBuilder {
    /// How long an idle connection is kept: 60 s.
    pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
    /// Time a call by peer id spends asking peers and the DHT: 5 s.
    pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
    /// Connections a node keeps at least, dialing peers from its address
    /// book: 8.
    pub const DEFAULT_MIN_PEERS: usize = 8;
    /// Established inbound connections a node accepts at most: 512. Beyond,
    /// connections are denied (and at most 64 may be setting up at once,
    /// and 4 established per peer).
    pub const DEFAULT_MAX_INBOUND_CONNECTIONS: u32 = 512;
    /// Connected peers asked at once by peer exchange.
    pub const PEER_EXCHANGE_FANOUT: usize = 3;

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

    /// Adds a bootstrap peer: an address ending in `/p2p/<peer id>`. The
    /// node connects to it at start and, with Kademlia, joins the DHT there.
    pub fn bootstrap(mut self, address: Multiaddr) -> Self {
        self.bootstrap.push(address);
        self
    }

    /// Sets the subnet's id (default 0): it names the heartbeat topic and
    /// the Kademlia protocol.
    pub fn subnet(mut self, subnet_id: u64) -> Self {
        self.subnet_id = subnet_id;
        self
    }

    /// Publishes and validates heartbeats with `config` (off by default).
    /// Its subnet id also becomes the node's.
    pub fn heartbeat(mut self, config: heartbeat::Config) -> Self {
        self.subnet_id = config.subnet_id();
        self.heartbeat = Some(config);
        self
    }

    /// Reads the subnet's members from `registry` into the address book.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Refuses connections from peers outside the registry (off by default).
    pub fn gating(mut self, on: bool) -> Self {
        self.gating = on;
        self
    }

    /// Serves and uses peer exchange (on by default).
    pub fn peer_exchange(mut self, on: bool) -> Self {
        self.peer_exchange = on;
        self
    }

    /// Runs Kademlia and uses it as the last resort to find a peer (on by default).
    pub fn kademlia(mut self, on: bool) -> Self {
        self.kademlia = on;
        self
    }

    /// Sets the address book's limits and time-to-lives.
    pub fn address_book(mut self, config: address_book::Config) -> Self {
        self.address_book = config;
        self
    }

    /// Sets the value of the `node` label on this node's metrics (default
    /// `"0"`). The metrics recorder is process-wide: give each node of a
    /// process its own label, from a small, fixed set (never a peer id).
    pub fn metrics_label(mut self, label: impl Into<String>) -> Self {
        self.metrics_label = label.into();
        self
    }

    /// Offers and accepts Noise under these names, in order of preference
    /// (default `["/noise"]`). To join Python subnet-template nodes whatever
    /// their proof-of-stake setting: `[security::NOISE, security::POS_TRANSPORT]`.
    pub fn noise_protocol_names(mut self, names: Vec<&'static str>) -> Self {
        self.noise_names = names;
        self
    }

    /// Speaks GossipSub under `protocol` only, e.g. `/meshsub/2.0.0` as the
    /// Python subnet template does (default: libp2p's `/meshsub/1.1.0` and
    /// `/meshsub/1.0.0`).
    pub fn gossipsub_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.gossipsub_protocol = Some(protocol.into());
        self
    }

    /// Sets how many established inbound connections the node accepts.
    pub fn max_inbound_connections(mut self, connections: u32) -> Self {
        self.max_inbound_connections = connections;
        self
    }

    /// Sends a stream's first bytes together with its protocol proposal
    /// instead of waiting a round trip for the remote to confirm the
    /// protocol (multistream-select "V1-lazy"; default: off). A call then
    /// costs one round trip instead of two; a remote that does not speak the
    /// protocol is still reported as [`CallError::Unsupported`].
    ///
    /// It applies to every protocol the node dials (identify, ping, GossipSub,
    /// Kademlia too). rust-libp2p peers handle it; py-libp2p 0.8 does not:
    /// data after a protocol it refuses breaks its stream handling, so leave
    /// it off in subnets with Python nodes.
    pub fn lazy_negotiation(mut self, lazy: bool) -> Self {
        self.lazy_negotiation = lazy;
        self
    }

    /// Sets how many connections the node keeps at least, dialing known
    /// peers when it has fewer (0: never dials on its own).
    pub fn min_peers(mut self, peers: usize) -> Self {
        self.min_peers = peers;
        self
    }

    /// Sets how long a call by peer id may spend asking peers and the DHT.
    pub fn discovery_timeout(mut self, timeout: Duration) -> Self {
        self.discovery_timeout = timeout;
        self
    }

    /// Sets how long a connection without streams is kept open.
    pub fn idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = timeout;
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
        let bootstrap = self
            .bootstrap
            .iter()
            .map(|address| match Destination::try_from(address.clone()) {
                Ok(Destination::Address { peer, address }) => Ok((peer, address)),
                _ => Err(StartError::Bootstrap {
                    address: address.clone(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metrics = Metrics::new(&self.metrics_label);
        let shared = Arc::new(Shared::new(metrics.clone()));
        let book = AddressBook::default();
        let gate = if self.gating {
            Gate::closed()
        } else {
            Gate::default()
        };
        // GossipSub's mesh upkeep runs at least twice per heartbeat.
        let gossip_heartbeat = self
            .heartbeat
            .as_ref()
            .map(|h| (h.interval() / 2).clamp(Duration::from_millis(50), Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(1));
        let mut swarm = swarm::build(SwarmOptions {
            keypair,
            shared: shared.clone(),
            address_book: book.clone(),
            gate: gate.clone(),
            idle_connection_timeout: self.idle_connection_timeout,
            subnet_id: self.subnet_id,
            kademlia: self.kademlia,
            gossip_heartbeat,
            noise_names: self.noise_names.clone(),
            gossipsub_protocol: self.gossipsub_protocol.clone(),
            max_inbound_connections: self.max_inbound_connections,
            lazy_negotiation: self.lazy_negotiation,
            topics: self
                .heartbeat
                .iter()
                .map(|h| heartbeat::topic(h.subnet_id()))
                .collect(),
        })?;
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
        let mut listen_addrs = Vec::new();
        let mut pending = self.listen.len();
        while pending > 0 {
            match StreamExt::select_next_some(&mut swarm).await {
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
        let args = NodeArguments {
            swarm,
            local_peer: peer_id,
            listen_addrs: listen_addrs.clone(),
            book: book.clone(),
            book_config: self.address_book,
            registry: self.registry,
            gate,
            heartbeat: self.heartbeat,
            bootstrap,
            min_peers: self.min_peers,
            metrics: metrics.clone(),
        };
        let (supervisor, _) = match parent {
            Some(parent) => Actor::spawn_linked(None, NodeSupervisor, args, parent).await?,
            None => Actor::spawn(None, NodeSupervisor, args).await?,
        };
        let actors = ractor::call!(supervisor, |reply| NodeMessage::Actors { reply })
            .map_err(|e| StartError::Transport(e.to_string().into()))?;
        let node = Node {
            inner: Arc::new(Inner {
                peer_id,
                listen_addrs,
                supervisor,
                actors,
                shared,
                book,
                peer_exchange: self.peer_exchange,
                discovery_timeout: self.discovery_timeout,
                metrics,
            }),
        };
        if self.peer_exchange {
            node.register(PeerExchange::new(
                node.inner.book.clone(),
                node.inner.metrics.clone(),
            ))
            .await
            .map_err(|e| StartError::Transport(e.to_string().into()))?;
        }
        tracing::info!(peer = %peer_id, "node started");
        Ok(node)
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
    actors: NodeActors,
    shared: Arc<Shared>,
    book: AddressBook,
    peer_exchange: bool,
    discovery_timeout: Duration,
    metrics: Metrics,
}

impl Node {
    /// A builder with defaults: a new Ed25519 identity, no listen address,
    /// peer exchange and Kademlia on, heartbeats and registry off.
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

    /// The node's long-lived actors.
    pub fn actors(&self) -> &NodeActors {
        &self.inner.actors
    }

    /// The shared view of the address book.
    pub fn address_book(&self) -> &AddressBook {
        &self.inner.book
    }

    /// Subscribes to the address book's change events.
    pub async fn address_book_events(&self) -> Result<broadcast::Receiver<Event>, CallError> {
        ractor::call!(self.inner.actors.address_book, |reply| {
            AddressBookMessage::Subscribe { reply }
        })
        .map_err(|_| CallError::NodeStopped)
    }

    /// Tells the node where `peer` lives.
    pub fn add_address(&self, peer: PeerId, address: Multiaddr) {
        self.learned(peer, vec![address], Source::Manual);
    }

    /// The heartbeat counters, if heartbeats are enabled.
    pub async fn heartbeat_stats(&self) -> Option<HeartbeatStats> {
        let actor = self.inner.actors.heartbeat.as_ref()?;
        ractor::call!(actor, |reply| HeartbeatMessage::Stats { reply }).ok()
    }

    /// Publishes `data` on a GossipSub topic.
    pub fn publish(&self, topic: impl Into<String>, data: Vec<u8>) -> Result<(), CallError> {
        self.inner
            .actors
            .swarm
            .cast(SwarmMessage::Publish {
                topic: topic.into(),
                data,
                retain: false,
            })
            .map_err(|_| CallError::NodeStopped)
    }

    /// The peers this node has a connection with.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, CallError> {
        ractor::call!(self.inner.actors.swarm, |reply| {
            SwarmMessage::ConnectedPeers { reply }
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

    /// Connects to `destination` (dialing if not yet connected).
    pub async fn connect<D>(&self, destination: D, timeout: Duration) -> Result<(), CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        let destination = destination.try_into().map_err(Into::into)?;
        let peer = destination.peer();
        let addresses = match &destination {
            Destination::Address { address, .. } => vec![address.clone()],
            Destination::Peer(_) => self.find(peer).await,
        };
        if addresses.is_empty() {
            return Err(CallError::NoAddress { peer });
        }
        self.dial(peer, addresses, Instant::now() + timeout, timeout)
            .await
    }

    /// Connects to `peer` at `addresses` (or those the book knows) by
    /// `deadline`; `timeout` only names the budget in the error.
    async fn dial(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CallError> {
        let dial = async {
            ractor::call!(self.inner.actors.swarm, |reply: RpcReplyPort<_>| {
                SwarmMessage::Dial {
                    peer,
                    addresses,
                    reply,
                }
            })
        };
        timeout_at(deadline, dial)
            .await
            .map_err(|_| CallError::Timeout {
                peer,
                phase: Phase::Dial,
                timeout,
            })?
            .map_err(|_| CallError::NodeStopped)?
            .map_err(|source| CallError::DialFailed { peer, source })
    }

    /// Where `peer` lives, asking the sources in turn: the address book,
    /// then connected peers (peer exchange), then the DHT.
    pub async fn find(&self, peer: PeerId) -> Vec<Multiaddr> {
        let known = self.inner.book.addresses(&peer);
        self.inner.metrics.address_book_lookup(!known.is_empty());
        if !known.is_empty() {
            return known;
        }
        let deadline = Instant::now() + self.inner.discovery_timeout;
        if self.inner.peer_exchange {
            let found = self.ask_peers(peer, deadline).await;
            if !found.is_empty() {
                return found;
            }
        }
        let lookup = async {
            ractor::call!(self.inner.actors.swarm, |reply| SwarmMessage::FindPeer {
                peer,
                reply
            })
        };
        match timeout_at(deadline, lookup).await {
            Ok(Ok(found)) => found,
            _ => Vec::new(),
        }
    }

    /// Asks up to [`NodeBuilder::PEER_EXCHANGE_FANOUT`] connected peers at
    /// once where `peer` lives; the first non-empty answer wins.
    async fn ask_peers(&self, peer: PeerId, deadline: Instant) -> Vec<Multiaddr> {
        let mut asked: Vec<PeerId> = self.inner.shared.connected_peers();
        asked.retain(|p| *p != peer);
        asked.truncate(NodeBuilder::PEER_EXCHANGE_FANOUT);
        let client = self.client::<PeerExchange>().with_config(
            Config::default().with_call_timeout(deadline.saturating_duration_since(Instant::now())),
        );
        let mut answers: FuturesUnordered<_> = asked
            .into_iter()
            .map(|neighbour| {
                let client = client.clone();
                let request = PeerExchangeRequest {
                    peer_id: peer.to_bytes(),
                };
                async move { client.call(neighbour, request).await }
            })
            .collect();
        while let Some(answer) = answers.next().await {
            let Ok(answer) = answer else { continue };
            self.inner
                .metrics
                .peer_exchange(true, !answer.addresses.is_empty());
            let addresses: Vec<Multiaddr> = answer
                .addresses
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a).ok())
                .collect();
            if !addresses.is_empty() {
                let node_id = (answer.subnet_node_id != 0).then_some(answer.subnet_node_id);
                let _ = self
                    .inner
                    .actors
                    .address_book
                    .cast(AddressBookMessage::Add {
                        peer,
                        addresses: addresses.clone(),
                        source: Source::PeerExchange,
                        subnet_node_id: node_id,
                    });
                return addresses;
            }
        }
        Vec::new()
    }

    fn learned(&self, peer: PeerId, addresses: Vec<Multiaddr>, source: Source) {
        let _ = self
            .inner
            .actors
            .address_book
            .cast(AddressBookMessage::Add {
                peer,
                addresses,
                source,
                subnet_node_id: None,
            });
    }

    async fn open(
        &self,
        destination: &Destination,
        protocol: StreamProtocol,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<OutboundStream, CallError> {
        let peer = destination.peer();
        let attempt = || self.inner.shared.open(peer, protocol.clone());
        self.on_connection(destination, &protocol, deadline, timeout, attempt, || {
            Phase::Open
        })
        .await
    }

    /// Runs `attempt` (opening a stream on a connection to the destination),
    /// dialing first if there is no connection or it closed before the
    /// stream opened. `phase` says what a timeout interrupted.
    async fn on_connection<T, F>(
        &self,
        destination: &Destination,
        protocol: &StreamProtocol,
        deadline: Instant,
        timeout: Duration,
        mut attempt: impl FnMut() -> F,
        phase: impl Fn() -> Phase,
    ) -> Result<T, CallError>
    where
        F: Future<Output = Option<Result<T, OpenError>>>,
    {
        let peer = destination.peer();
        let timed_out = |phase| CallError::Timeout {
            peer,
            phase,
            timeout,
        };
        let mut dialed = false;
        loop {
            let opened = timeout_at(deadline, attempt())
                .await
                .map_err(|_| timed_out(phase()))?;
            match opened {
                Some(Ok(stream)) => return Ok(stream),
                Some(Err(OpenError::Unsupported)) => {
                    return Err(CallError::Unsupported {
                        peer,
                        protocol: protocol.clone(),
                    });
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
            let addresses = match destination {
                Destination::Address { address, .. } => {
                    if !self.inner.book.addresses(&peer).contains(address) {
                        self.learned(peer, vec![address.clone()], Source::Manual);
                    }
                    vec![address.clone()]
                }
                Destination::Peer(_) => {
                    let found = timeout_at(deadline, self.find(peer))
                        .await
                        .map_err(|_| timed_out(Phase::Dial))?;
                    if found.is_empty() {
                        return Err(CallError::NoAddress { peer });
                    }
                    found
                }
            };
            self.dial(peer, addresses, deadline, timeout).await?;
            dialed = true;
        }
    }

    /// Stops the node: protocols first, then the heartbeat, the swarm and
    /// the address book.
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
    metrics: RequestMetrics,
    _protocol: std::marker::PhantomData<fn() -> P>,
}

impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            config: self.config.clone(),
            protocol: self.protocol.clone(),
            metrics: self.metrics.clone(),
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
        let metrics = node.inner.metrics.requests(P::ID, Direction::Outbound);
        Self {
            metrics,
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
        let _in_flight = self.metrics.in_flight();
        let result = match destination.try_into() {
            Ok(destination) => self.call_to(&destination, request).await,
            Err(error) => Err(error.into()),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        self.metrics.finished(outcome, started.elapsed());
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
        let frame = Bytes::from(codec::encode_frame(&request));
        drop(request);
        let peer = destination.peer();
        let unsupported = || CallError::Unsupported {
            peer,
            protocol: self.protocol.clone(),
        };
        let timeout = self.config.call_timeout();
        let deadline = Instant::now() + timeout;
        let progress = Arc::new(Progress::default());
        let shared = &self.node.inner.shared;
        let attempt = || shared.exchange(peer, self.protocol.clone(), &frame, max, &progress);
        let body = self
            .node
            .on_connection(
                destination,
                &self.protocol,
                deadline,
                timeout,
                attempt,
                || progress.get(),
            )
            .await?
            .map_err(|error| match error {
                ExchangeError::Write(source) if codec::is_unsupported(&source) => unsupported(),
                ExchangeError::Write(source) if codec::is_reset(&source) => {
                    CallError::Refused { peer }
                }
                ExchangeError::Write(source) => CallError::Write { peer, source },
                ExchangeError::Read(FrameError::Io(e)) if codec::is_unsupported(&e) => {
                    unsupported()
                }
                // The stream ended before the remote confirmed the protocol:
                // it never opened (e.g. the remote denied the connection).
                ExchangeError::Read(FrameError::Io(source)) if codec::is_unconfirmed(&source) => {
                    CallError::Open { peer, source }
                }
                ExchangeError::Read(FrameError::Io(e)) if codec::is_reset(&e) => {
                    CallError::Refused { peer }
                }
                ExchangeError::Read(FrameError::Closed) | ExchangeError::ConnectionClosed => {
                    CallError::Refused { peer }
                }
                ExchangeError::Read(source) => CallError::MalformedResponse { peer, source },
            })?;
        self.metrics.frame_bytes(frame.len(), body.len());
        // From `Bytes`: `bytes` fields share the frame's buffer, no copy.
        let response = <P::Response as prost::Message>::decode(Bytes::from(body))
            .map_err(|source| CallError::Decode { peer, source })?;
        Ok(response)
    }
}
