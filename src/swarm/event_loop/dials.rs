//! Dials callers asked for: who waits on a connection to which peer, with
//! which addresses not tried yet, and what a failed dial means (an address
//! that answered with another identity is forgotten, whoever told of it,
//! and the dial is made again without it).

use std::{collections::HashMap, sync::Arc};

use libp2p::{
    Multiaddr, PeerId, Swarm,
    swarm::{
        DialError,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use ractor::RpcReplyPort;

use crate::{
    discovery::{
        address_book::{AddressBook, Update, Updates},
        peer_exchange::MAX_ANSWER_ADDRESSES,
    },
    multiaddr::without_peer_id,
    reputation::Reputation,
    swarm::build::Behaviour,
};

/// Addresses callers gave for a peer that wait for a dial already under
/// way to it to end; more are not kept.
const MAX_UNTRIED_ADDRESSES: usize = 16;

/// Callers waiting on dials to one peer; more get an error at once.
const MAX_DIAL_WAITERS: usize = 4096;

/// The result of a dial request.
pub type DialResult = Result<(), Arc<DialError>>;

/// Callers waiting for a connection to one peer, and the addresses they
/// gave that no dial has tried yet: given while another dial to the peer
/// (Kademlia's, say, with other addresses) was under way, they are tried
/// when it fails.
#[derive(Debug, Default)]
struct PendingDial {
    waiters: Vec<RpcReplyPort<DialResult>>,
    untried: Vec<Multiaddr>,
}

/// The loop's dial part.
#[derive(Debug, Default)]
pub(super) struct Dials {
    pending: HashMap<PeerId, PendingDial>,
}

impl Dials {
    /// Connects to `peer` (answering `reply` once connected or failed),
    /// trying `addresses` besides those the behaviours know.
    pub(super) fn dial(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        reply: RpcReplyPort<DialResult>,
    ) {
        let pending = self.pending.entry(peer).or_default();
        if pending.waiters.len() >= MAX_DIAL_WAITERS {
            let _ = reply.send(Err(Arc::new(DialError::Aborted)));
            return;
        }
        pending.waiters.push(reply);
        for address in addresses {
            if pending.untried.len() < MAX_UNTRIED_ADDRESSES && !pending.untried.contains(&address)
            {
                pending.untried.push(address);
            }
        }
        self.start(swarm, peer);
    }

    /// Dials `peer` at the addresses its waiters gave (and those the
    /// behaviours know), unless a dial to it is under way: then they are
    /// tried if that one fails.
    fn start(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        let untried = self
            .pending
            .get_mut(&peer)
            .map(|p| std::mem::take(&mut p.untried))
            .unwrap_or_default();
        let opts = DialOpts::peer_id(peer)
            .addresses(untried.clone())
            .extend_addresses_through_behaviour()
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match swarm.dial(opts) {
            Ok(()) => {}
            // Another dial to the peer is under way (the connection upkeep,
            // a bootstrap, Kademlia): its success answers these waiters
            // too; if it fails, these addresses are tried.
            Err(DialError::DialPeerConditionFalse(_)) => {
                if let Some(pending) = self.pending.get_mut(&peer) {
                    pending.untried = untried;
                }
            }
            Err(error) => self.finish(peer, Err(Arc::new(error))),
        }
    }

    /// Answers everyone waiting on `peer`.
    pub(super) fn finish(&mut self, peer: PeerId, result: DialResult) {
        for waiter in self.pending.remove(&peer).unwrap_or_default().waiters {
            let _ = waiter.send(result.clone());
        }
    }

    /// A dial to `peer` failed: the book and reputation hear of it, and
    /// waiters get a new dial (addresses not tried yet, or others than the
    /// one that turned out to be another peer's) or the error.
    pub(super) fn on_failed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        (book, updates): (&AddressBook, &Updates),
        reputation: &Reputation,
        peer: PeerId,
        error: DialError,
    ) {
        tracing::debug!(%peer, "dial failed: {error}");
        let forgot = forget_wrong_peer(book, reputation, peer, &error);
        if let DialError::Transport(failed) = &error {
            let addresses = failed.iter().map(|(a, _)| a.clone()).collect();
            let _ = updates.send_message(Update::DialFailed { peer, addresses });
        }
        if swarm.is_connected(&peer) {
            return;
        }
        let untried = self.untried_after(peer, &error);
        // The one dial a poisoned address failed (rust-libp2p fails the
        // whole dial on a wrong peer id) is made again without it.
        let others = if forgot {
            book.addresses(&peer)
        } else {
            Vec::new()
        };
        let retry = match self.pending.get_mut(&peer) {
            Some(pending) if !others.is_empty() => {
                pending
                    .untried
                    .extend(others.into_iter().take(MAX_ANSWER_ADDRESSES));
                pending.untried.truncate(MAX_ANSWER_ADDRESSES);
                true
            }
            _ => false,
        };
        if untried || retry {
            self.start(swarm, peer);
        } else {
            self.finish(peer, Err(Arc::new(error)));
        }
    }

    /// Drops from `peer`'s untried addresses those the failed dial tried;
    /// whether any are left (given while it was under way, they get their
    /// own dial).
    fn untried_after(&mut self, peer: PeerId, error: &DialError) -> bool {
        let tried: Vec<Multiaddr> = match error {
            DialError::Transport(failed) => failed
                .iter()
                .map(|(a, _)| without_peer_id(a.clone()))
                .collect(),
            _ => Vec::new(),
        };
        self.pending.get_mut(&peer).is_some_and(|p| {
            p.untried
                .retain(|a| !tried.contains(&without_peer_id(a.clone())));
            !p.untried.is_empty()
        })
    }
}

/// An address that answered with another identity (or our own) is not
/// the peer's: it is forgotten, whoever told of it (reputation keeps who
/// did). Whether the book had it.
fn forget_wrong_peer(
    book: &AddressBook,
    reputation: &Reputation,
    peer: PeerId,
    error: &DialError,
) -> bool {
    let (DialError::WrongPeerId { address, .. } | DialError::LocalPeerId { address }) = error
    else {
        return false;
    };
    let forgot = book.forget(&peer, address);
    reputation.wrong_peer_id(peer, address);
    tracing::debug!(%peer, %address, "forgot an address that answered with another peer id");
    forgot
}

/// Dials a bootstrap peer at its address (unless connected or dialing).
pub(super) fn dial_bootstrap(
    swarm: &mut Swarm<Behaviour>,
    peer: PeerId,
    address: &Multiaddr,
) -> Result<(), DialError> {
    let opts = DialOpts::peer_id(peer)
        .addresses(vec![address.clone()])
        .condition(PeerCondition::DisconnectedAndNotDialing)
        .build();
    swarm.dial(opts)
}
