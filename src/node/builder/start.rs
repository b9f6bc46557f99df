//! Starting a node, in named steps: the settings checked, the shared parts
//! made, the swarm built and listening, the actors started under their
//! supervisor, and the handle assembled.

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId, identity::Keypair};
use ractor::{Actor, ActorCell, ActorRef, OutputPort};

use super::NodeBuilder;
use crate::{
    actors::{
        NodeActors,
        supervisor::{NodeMessage, NodeSupervisor},
    },
    call::connect::Connector,
    destination::Destination,
    discovery::{
        address_book::{AddressBook, Source},
        heartbeat,
        lookup::Lookup,
        peer_exchange::PeerExchange,
        template_heartbeat,
    },
    error::StartError,
    metrics::Metrics,
    node::handle::{Inner, Node},
    streams::{gate::Gate, shared::Shared},
    swarm::{self, Built, SwarmOptions, addresses::ListenAddresses},
};

impl NodeBuilder {
    pub(super) async fn start(mut self, parent: Option<ActorCell>) -> Result<Node, StartError> {
        self.check()?;
        raise_open_file_limit();
        let keypair = self
            .keypair
            .take()
            .unwrap_or_else(Keypair::generate_ed25519);
        let peer_id = keypair.public().to_peer_id();
        let bootstrap = bootstrap_peers(&self.bootstrap)?;
        let metrics = Metrics::new(&self.metrics_label);
        metrics.preregister();
        metrics.preregister_book_sources(&Source::ALL.map(Source::name));
        metrics.preregister_rejections(&heartbeat::Rejection::ALL.map(heartbeat::Rejection::name));
        let shared = Arc::new(Shared::new(metrics.clone(), self.reputation.clone()));
        let gate = self.gate();
        let listen_addrs = ListenAddresses::with_external(self.swarm.external.clone());
        let mut built = self.build_swarm(keypair, &shared, &gate, &listen_addrs)?;
        swarm::listen::listen(&mut built.0, &self.listen, &listen_addrs).await?;
        let book = AddressBook::default();
        let actors = NodeActors::cell();
        let supervisor = NodeSupervisor {
            local_peer: peer_id,
            listen_addrs: listen_addrs.clone(),
            book: book.clone(),
            book_config: self.address_book.clone(),
            registry: self.registry.clone(),
            gate,
            heartbeat: self
                .heartbeat
                .clone()
                .map(|heartbeat| heartbeat.with_book_ttl(self.address_book.ttl(Source::Heartbeat))),
            bootstrap: bootstrap.clone(),
            swarm: self.swarm.clone(),
            metrics: metrics.clone(),
            gossip: Arc::new(OutputPort::default()),
            shared: shared.clone(),
            shutdown_grace: self.shutdown_grace,
            actors: actors.clone(),
        };
        let (supervisor, _) = match parent {
            Some(parent) => Actor::spawn_linked(None, supervisor, built, parent).await?,
            None => Actor::spawn(None, supervisor, built).await?,
        };
        // Dropped before the node is handed over (the caller gave up), the
        // guard stops the actors just started.
        let started = StopOnDrop(Some(supervisor.clone()));
        let current = actors.read().expect("actors lock poisoned").clone();
        let Some(current) = current else {
            return Err(StartError::Transport(
                "the node's actors did not start".into(),
            ));
        };
        let connector = Arc::new(Connector {
            shared: shared.clone(),
            swarm: current.swarm.clone(),
            lookup: Lookup {
                book: book.clone(),
                shared: shared.clone(),
                swarm: current.swarm.clone(),
                updates: current.address_book.get_derived(),
                metrics: metrics.clone(),
                peer_exchange: self.peer_exchange,
                timeout: self.discovery_timeout,
            },
        });
        let node = Node {
            inner: Arc::new(Inner {
                peer_id,
                listen_addrs,
                supervisor,
                actors,
                shared,
                book: book.clone(),
                connector,
                metrics: metrics.clone(),
                shutdown_grace: self.shutdown_grace,
                listens: !self.listen.is_empty(),
                bootstrap: bootstrap
                    .iter()
                    .map(|(peer, _)| *peer)
                    .filter(|peer| *peer != peer_id)
                    .collect(),
            }),
        };
        if self.peer_exchange {
            node.register(PeerExchange::new(book, metrics)).await?;
        }
        started.disarm();
        tracing::info!(peer = %peer_id, "node started");
        Ok(node)
    }

    /// Settings that cannot work together are refused before anything starts.
    fn check(&self) -> Result<(), StartError> {
        self.check_relays()?;
        if self.gating && self.registry.is_none() {
            return Err(StartError::GatingWithoutRegistry);
        }
        if self.swarm.max_peers < self.swarm.min_peers {
            return Err(StartError::MaxPeersBelowMinPeers {
                max: self.swarm.max_peers,
                min: self.swarm.min_peers,
            });
        }
        Ok(())
    }

    /// The membership gate: closed with gating (checking peers with the
    /// registry where it can), open without.
    fn gate(&self) -> Gate {
        match &self.registry {
            Some(registry) if self.gating && registry.checks_peers() => {
                Gate::closed(self.gating_fail_open).with_checks(registry.clone())
            }
            _ if self.gating => Gate::closed(self.gating_fail_open),
            _ => Gate::default(),
        }
    }

    /// The swarm, built with the node's settings, subscribed to the
    /// heartbeat topics; not listening yet.
    fn build_swarm(
        &mut self,
        keypair: Keypair,
        shared: &Arc<Shared>,
        gate: &Gate,
        listen_addrs: &ListenAddresses,
    ) -> Result<Built, StartError> {
        // GossipSub's mesh upkeep runs at least twice per heartbeat.
        let gossip_heartbeat = self
            .heartbeat
            .as_ref()
            .map(|h| (h.interval() / 2).clamp(MIN_GOSSIP_HEARTBEAT, MAX_GOSSIP_HEARTBEAT))
            .unwrap_or(MAX_GOSSIP_HEARTBEAT);
        let topics = self
            .heartbeat
            .iter()
            .flat_map(|h| {
                let template = h.template().map(|_| template_heartbeat::TOPIC.to_owned());
                std::iter::once(heartbeat::topic(h.subnet_id())).chain(template)
            })
            .collect();
        let (swarm, libp2p_metrics) = swarm::build(SwarmOptions {
            config: &self.swarm,
            listen_addrs: listen_addrs.clone(),
            keypair,
            shared: shared.clone(),
            gate: gate.clone(),
            subnet_id: self.subnet_id,
            gossip_heartbeat,
            topics,
            relay_server: self.relay_server.take(),
        })?;
        Ok(Built(swarm, libp2p_metrics))
    }
}

/// GossipSub's mesh upkeep runs at most this often, and at least this often.
const MIN_GOSSIP_HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(50);
const MAX_GOSSIP_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// Each bootstrap address as its peer and address; one without a peer id
/// is refused.
fn bootstrap_peers(addresses: &[Multiaddr]) -> Result<Vec<(PeerId, Multiaddr)>, StartError> {
    addresses
        .iter()
        .map(|address| match Destination::try_from(address.clone()) {
            Ok(Destination::Address { peer, address }) => Ok((peer, address)),
            _ => Err(StartError::Bootstrap {
                address: address.clone(),
            }),
        })
        .collect()
}

/// Raises the process's soft open-file limit to its hard limit, once: each
/// connection, listener and dial holds a descriptor, and distributions
/// start processes at a soft limit of 1,024 (hard: often 524,288), which a
/// busy node, or many nodes in one process, runs out of.
fn raise_open_file_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!("open-file limit: {limit}"),
        Err(error) => tracing::warn!("cannot raise the open-file limit: {error}"),
    });
}

/// Stops a just-started node's supervisor unless disarmed.
struct StopOnDrop(Option<ActorRef<NodeMessage>>);

impl StopOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(supervisor) = self.0.take() {
            supervisor.stop(Some("the node's start was abandoned".into()));
        }
    }
}
