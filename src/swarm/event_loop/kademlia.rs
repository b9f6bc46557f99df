//! Kademlia: peer lookups callers asked for (bounded, answered with the
//! believable addresses found), and a peer's routing-table entry kept to
//! what its last identify listed.

use std::collections::HashMap;

use libp2p::{
    Multiaddr, PeerId, Swarm,
    kad::{self, store::MemoryStore},
};
use ractor::RpcReplyPort;

use crate::{
    discovery::{
        address_book::{Source, Update, Updates},
        peer_exchange::MAX_ANSWER_ADDRESSES,
    },
    metrics::Metrics,
    multiaddr::{is_believable, without_peer_id},
    swarm::{addresses::ListenAddresses, build::Behaviour},
};

/// Kademlia lookups under way at once; more are answered empty at once.
const MAX_LOOKUPS: usize = 256;

/// The loop's Kademlia part: lookups under way.
#[derive(Debug, Default)]
pub(super) struct Lookups {
    queries: HashMap<kad::QueryId, (PeerId, RpcReplyPort<Vec<Multiaddr>>)>,
}

impl Lookups {
    /// Looks `peer` up in the DHT; answered empty without Kademlia or with
    /// too many lookups under way.
    pub(super) fn find_peer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        reply: RpcReplyPort<Vec<Multiaddr>>,
    ) {
        let Some(kad) = swarm.behaviour_mut().kademlia.as_mut() else {
            let _ = reply.send(Vec::new());
            return;
        };
        if self.queries.len() >= MAX_LOOKUPS {
            let _ = reply.send(Vec::new());
            return;
        }
        let query = kad.get_closest_peers(peer);
        self.queries.insert(query, (peer, reply));
    }

    /// A lookup progressed: answered (and the book told) once the target's
    /// addresses are found or the query ends. Loopback or link-local
    /// addresses from the DHT are believed only on a node that has nothing
    /// else (a subnet on one machine: `ListenAddresses::one_machine`).
    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: kad::Event,
        (updates, metrics): (&Updates, &Metrics),
        listen_addrs: &ListenAddresses,
    ) {
        let kad::Event::OutboundQueryProgressed {
            id,
            result: kad::QueryResult::GetClosestPeers(result),
            step,
            ..
        } = event
        else {
            return;
        };
        let Some((target, _)) = self.queries.get(&id) else {
            return;
        };
        let target = *target;
        let peers = match result {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let one_machine = listen_addrs.one_machine();
        let found: Vec<Multiaddr> = peers
            .into_iter()
            .filter(|p| p.peer_id == target)
            .flat_map(|p| p.addrs)
            .filter(|a| is_believable(a, one_machine))
            .take(MAX_ANSWER_ADDRESSES)
            .collect();
        if found.is_empty() && !step.last {
            return;
        }
        if let Some((_, reply)) = self.queries.remove(&id) {
            metrics.kademlia_lookup(!found.is_empty());
            if !found.is_empty() {
                let update = Update::learned(target, found.clone(), Source::Kademlia);
                let _ = updates.send_message(update);
            }
            let _ = reply.send(found);
        }
        if let Some(mut query) = swarm
            .behaviour_mut()
            .kademlia
            .as_mut()
            .and_then(|kad| kad.query_mut(&id))
        {
            query.finish();
        }
    }
}

/// Sets `peer`'s addresses in Kademlia's routing table to `addresses` (at
/// most [`MAX_ANSWER_ADDRESSES`]) if it speaks our Kademlia: what a
/// previous identify listed and this one does not is removed, so a peer
/// that reconnects with new addresses each time cannot grow its entry
/// (which Kademlia serves to others).
pub(super) fn on_identify(
    swarm: &mut Swarm<Behaviour>,
    peer: &PeerId,
    protocols: &[libp2p::StreamProtocol],
    addresses: &[Multiaddr],
) {
    let Some(kad) = swarm.behaviour_mut().kademlia.as_mut() else {
        return;
    };
    if protocols.iter().any(|p| kad.protocol_names().contains(p)) {
        replace_addresses(kad, peer, addresses);
    }
}

fn replace_addresses(
    kad: &mut kad::Behaviour<MemoryStore>,
    peer: &PeerId,
    addresses: &[Multiaddr],
) {
    for address in addresses {
        kad.add_address(peer, address.clone());
    }
    let key = kad::KBucketKey::from(*peer);
    let stale: Vec<Multiaddr> = kad
        .kbucket(*peer)
        .map(|bucket| {
            bucket
                .iter()
                .filter(|entry| *entry.node.key == key)
                .flat_map(|entry| entry.node.value.iter().cloned().collect::<Vec<_>>())
                .filter(|a| !addresses.contains(&without_peer_id(a.clone())))
                .collect()
        })
        .unwrap_or_default();
    for address in stale {
        kad.remove_address(peer, &address);
    }
}

/// Adds a bootstrap peer to the routing table.
pub(super) fn add_bootstrap(swarm: &mut Swarm<Behaviour>, peer: &PeerId, address: &Multiaddr) {
    if let Some(kad) = swarm.behaviour_mut().kademlia.as_mut() {
        kad.add_address(peer, address.clone());
    }
}

/// Joins the DHT through the peers in the routing table.
pub(super) fn bootstrap(swarm: &mut Swarm<Behaviour>) {
    if let Some(kad) = swarm.behaviour_mut().kademlia.as_mut() {
        let _ = kad.bootstrap();
    }
}
