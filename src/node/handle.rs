//! The node handle: what a running node offers its user. Building and
//! starting a node is `builder.rs`; a call's path is `src/call/`.

use std::{sync::Arc, time::Duration};

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use ractor::{Actor, ActorCell, ActorRef};
use tokio::{sync::broadcast, time::Instant};

use super::health::Health;
use crate::{
    actors::{
        ActorsCell, NodeActors,
        address_book::AddressBookMessage,
        heartbeat::{HeartbeatMessage, HeartbeatStats},
        protocol::ProtocolActor,
        supervisor::NodeMessage,
    },
    call::{client::Client, connect::Connector, error::CallError},
    destination::Destination,
    discovery::address_book::{AddressBook, Event, Source},
    error::RegisterError,
    metrics::{Direction, Metrics},
    protocol::{Config, Protocol},
    reputation,
    streams::{outbound::OutboundStream, shared::Shared},
    swarm::{Command, addresses::ListenAddresses},
};

/// A running node. Cloning is cheap; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.peer_id)
            .field("listen_addrs", &self.inner.listen_addrs)
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) peer_id: PeerId,
    pub(super) listen_addrs: ListenAddresses,
    pub(super) supervisor: ActorRef<NodeMessage>,
    /// The long-lived actors, kept current by the supervisor (it replaces
    /// the heartbeat actor when it restarts it).
    pub(super) actors: ActorsCell,
    pub(super) shared: Arc<Shared>,
    pub(super) book: AddressBook,
    pub(super) connector: Arc<Connector>,
    pub(super) metrics: Metrics,
    pub(super) shutdown_grace: Duration,
    /// Whether it was given addresses to listen on.
    pub(super) listens: bool,
    /// Its bootstrap peers (itself left out).
    pub(super) bootstrap: Arc<[PeerId]>,
}

impl Node {
    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The addresses the node listens on now, each ending in
    /// `/p2p/<peer id>`: what another node passes to `call`. Those other
    /// hosts can reach come first; loopback and link-local ones last. A
    /// listener on `0.0.0.0` gives one per interface, kept current.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        self.inner
            .listen_addrs
            .all()
            .into_iter()
            .map(|a| a.with_p2p(self.inner.peer_id).unwrap_or_else(|a| a))
            .collect()
    }

    /// Whether other hosts can open connections to this node, as AutoNAT v2
    /// found (tests run a few seconds after the first peer connects, and
    /// again as peers observe new addresses). A
    /// [`Reachability::Private`] node is called through relays.
    ///
    /// [`Reachability::Private`]: crate::swarm::addresses::Reachability::Private
    pub fn reachability(&self) -> crate::swarm::addresses::Reachability {
        self.inner.listen_addrs.reachability()
    }

    /// The node's health, for probes: whether its actors are alive and
    /// whether it is ready (see [`Health`]). The metrics server serves it
    /// at `/healthz` and `/readyz` once told to watch it
    /// ([`MetricsServer::watch`](crate::metrics::MetricsServer::watch)).
    pub fn health(&self) -> Health {
        let inner = &self.inner;
        Health {
            peer_id: inner.peer_id,
            supervisor: inner.supervisor.get_cell(),
            actors: inner.actors.clone(),
            listen_addrs: inner.listen_addrs.clone(),
            shared: inner.shared.clone(),
            listens: inner.listens,
            bootstrap: inner.bootstrap.clone(),
        }
    }

    /// The node's root actor, to supervise or stop it from an actor system.
    pub fn supervisor(&self) -> ActorCell {
        self.inner.supervisor.get_cell()
    }

    /// The node's long-lived actors as they are now (the heartbeat actor is
    /// replaced when it restarts). `None` once the node has stopped.
    pub fn actors(&self) -> Option<NodeActors> {
        self.inner
            .actors
            .read()
            .expect("actors lock poisoned")
            .clone()
    }

    /// The shared view of the address book.
    pub fn address_book(&self) -> &AddressBook {
        &self.inner.book
    }

    /// Subscribes to the address book's change events.
    ///
    /// Cancel-safe: dropping the future subscribes to nothing.
    pub async fn address_book_events(&self) -> Result<broadcast::Receiver<Event>, CallError> {
        let actors = self.actors().ok_or(CallError::NodeStopped)?;
        ractor::call!(actors.address_book, |reply| {
            AddressBookMessage::Subscribe { reply }
        })
        .map_err(|_| CallError::NodeStopped)
    }

    /// Tells the node where `peer` lives.
    pub fn add_address(&self, peer: PeerId, address: Multiaddr) {
        self.inner
            .connector
            .lookup
            .learned(peer, vec![address], Source::Manual, None);
    }

    /// Bans `peer` for `duration`: its connections are closed, and new
    /// ones, either way, refused until the ban ends (counted
    /// `subnet_peers_banned_total{reason="operator"}`, announced as
    /// [`reputation::Event::Banned`]).
    pub fn ban(&self, peer: PeerId, duration: Duration) {
        self.inner
            .shared
            .reputation
            .ban_for(peer, duration, reputation::BanReason::Operator);
    }

    /// Lifts `peer`'s ban; `false` if it was not banned.
    pub fn unban(&self, peer: &PeerId) -> bool {
        self.inner.shared.reputation.unban(peer)
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.inner.shared.reputation.is_banned(peer)
    }

    /// `peer`'s reputation score now: 0 is clean, each violation lowers it,
    /// and it recovers with time; below the threshold the peer is banned.
    pub fn reputation(&self, peer: &PeerId) -> f64 {
        self.inner.shared.reputation.score(peer)
    }

    /// Bans and unbans, from now on.
    pub fn reputation_events(&self) -> broadcast::Receiver<reputation::Event> {
        self.inner.shared.reputation.events()
    }

    /// The current heartbeat actor's counters (they start again at zero
    /// when the actor restarts), if heartbeats are enabled and the node
    /// runs.
    ///
    /// Cancel-safe.
    pub async fn heartbeat_stats(&self) -> Option<HeartbeatStats> {
        let actor = self.actors()?.heartbeat?;
        ractor::call!(actor, |reply| HeartbeatMessage::Stats { reply }).ok()
    }

    /// Publishes `data` on a GossipSub topic.
    pub fn publish(&self, topic: impl Into<String>, data: Vec<u8>) -> Result<(), CallError> {
        let actors = self.actors().ok_or(CallError::NodeStopped)?;
        actors
            .swarm
            .cast(Command::Publish {
                topic: topic.into(),
                data,
                retain: false,
            })
            .map_err(|_| CallError::NodeStopped)
    }

    /// The peers this node has a connection with.
    ///
    /// Cancel-safe.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, CallError> {
        let actors = self.actors().ok_or(CallError::NodeStopped)?;
        ractor::call!(actors.swarm, |reply| Command::ConnectedPeers { reply })
            .map_err(|_| CallError::NodeStopped)
    }

    /// Serves protocol `P` with [`Protocol::config`] and returns a client to
    /// call it on other peers.
    ///
    /// Cancel-safe: once the protocol's actor started, the protocol is
    /// served whether or not the future is still awaited.
    pub async fn register<P: Protocol>(&self, protocol: P) -> Result<Client<P>, RegisterError> {
        self.register_with(protocol, P::config()).await
    }

    /// Serves protocol `P` with `config` instead of [`Protocol::config`]
    /// (limits chosen at run time), and returns a client using it too.
    ///
    /// Cancel-safe, as [`Node::register`].
    pub async fn register_with<P: Protocol>(
        &self,
        protocol: P,
        config: Config,
    ) -> Result<Client<P>, RegisterError> {
        let id = StreamProtocol::try_from_owned(P::ID.to_owned())
            .map_err(|_| RegisterError::InvalidId(P::ID))?;
        if self.inner.shared.routes.contains(&id) {
            return Err(RegisterError::AlreadyRegistered(id));
        }
        let metrics = self.inner.metrics.requests(P::ID, Direction::Inbound);
        metrics.preregister(&crate::error::SERVE_OUTCOMES);
        self.inner.metrics.preregister_refusals(P::ID);
        let actor = ProtocolActor {
            handler: Arc::new(protocol),
            config: config.clone(),
            shared: self.inner.shared.clone(),
            grace: self.inner.shutdown_grace,
            metrics,
        };
        if let Err(error) =
            Actor::spawn_linked(None, actor, (), self.inner.supervisor.get_cell()).await
        {
            // Another registration of the same id won the race.
            if self.inner.shared.routes.contains(&id) {
                return Err(RegisterError::AlreadyRegistered(id));
            }
            return Err(error.into());
        }
        Ok(Client::new(
            self.inner.connector.clone(),
            &self.inner.metrics,
            config,
        ))
    }

    /// A client of protocol `P` without serving it, with [`Protocol::config`].
    pub fn client<P: Protocol>(&self) -> Client<P> {
        Client::new(
            self.inner.connector.clone(),
            &self.inner.metrics,
            P::config(),
        )
    }

    /// Opens a raw stream on `protocol` to `destination` within `timeout`,
    /// dialing if needed. For protocols that frame their own bytes.
    ///
    /// Cancel-safe: dropping the future drops any stream it opened.
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
        let deadline = Instant::now() + timeout;
        self.inner
            .connector
            .open(&destination, &protocol, deadline, timeout)
            .await
    }

    /// Connects to `destination` within `timeout` (finding its address and
    /// dialing if not yet connected).
    ///
    /// Cancel-safe: a dial already started goes on, and its connection is
    /// kept as any other.
    pub async fn connect<D>(&self, destination: D, timeout: Duration) -> Result<(), CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        let destination = destination.try_into().map_err(Into::into)?;
        let deadline = Instant::now() + timeout;
        self.inner
            .connector
            .connect(&destination, deadline, timeout)
            .await
    }

    /// Where `peer` lives, asking the sources in turn: the address book,
    /// then connected peers (peer exchange), then the DHT; empty if none
    /// knows within the discovery timeout.
    ///
    /// Cancel-safe.
    pub async fn find(&self, peer: PeerId) -> Vec<Multiaddr> {
        self.inner.connector.lookup.find(peer).await
    }

    /// Stops the node: the protocols first (no new requests; running
    /// handlers get the shutdown grace period to finish), then the
    /// heartbeat, the swarm and the address book.
    ///
    /// Cancel-safe: the shutdown goes on once started.
    pub async fn shutdown(&self) {
        let wait = self.inner.shutdown_grace + Duration::from_secs(30);
        let _ = self
            .inner
            .supervisor
            .stop_and_wait(Some("shutdown".into()), Some(wait))
            .await;
    }
}
