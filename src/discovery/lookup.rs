//! Finding where a peer lives, asking the sources in turn: the address
//! book, then connected peers (peer exchange), then the DHT (Kademlia,
//! through the swarm). What peer exchange and Kademlia find goes into
//! the book.

use std::{sync::Arc, time::Duration};

use libp2p::{Multiaddr, PeerId};
use ractor::ActorRef;
use tokio::time::{Instant, timeout_at};

use super::{
    address_book::{AddressBook, Source, Update, Updates},
    peer_exchange,
};
use crate::{metrics::Metrics, streams::shared::Shared, swarm::Command};

/// Finds peers' addresses. Cloning it is cheap.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    pub(crate) book: AddressBook,
    pub(crate) shared: Arc<Shared>,
    pub(crate) swarm: ActorRef<Command>,
    /// Where what peer exchange finds goes (the address book's writer).
    pub(crate) updates: Updates,
    pub(crate) metrics: Metrics,
    /// Whether to ask connected peers.
    pub(crate) peer_exchange: bool,
    /// Time spent asking peers and the DHT.
    pub(crate) timeout: Duration,
}

impl Lookup {
    /// Where `peer` lives: the book's addresses, else the first answer of a
    /// connected peer, else the DHT's, else none, within the lookup's
    /// timeout. Never dials a peer to ask it.
    pub(crate) async fn find(&self, peer: PeerId) -> Vec<Multiaddr> {
        let known = self.book.addresses(&peer);
        self.metrics.address_book_lookup(!known.is_empty());
        if !known.is_empty() {
            return known;
        }
        let deadline = Instant::now() + self.timeout;
        if self.peer_exchange {
            let neighbours = self.shared.connections.connected_peers();
            let answer =
                peer_exchange::ask(&self.shared, &self.metrics, neighbours, peer, deadline).await;
            if let Some(answer) = answer {
                for address in &answer.addresses {
                    self.shared.reputation.told(peer, address, answer.from);
                }
                self.learned(
                    peer,
                    answer.addresses.clone(),
                    Source::PeerExchange,
                    answer.subnet_node_id,
                );
                return answer.addresses;
            }
        }
        let lookup = async { ractor::call!(self.swarm, |reply| Command::FindPeer { peer, reply }) };
        match timeout_at(deadline, lookup).await {
            Ok(Ok(found)) => found,
            _ => Vec::new(),
        }
    }

    /// Tells the address book where `peer` lives.
    pub(crate) fn learned(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        source: Source,
        subnet_node_id: Option<u64>,
    ) {
        let _ = self.updates.send_message(Update::Learned {
            peer,
            addresses,
            source,
            subnet_node_id,
        });
    }
}
