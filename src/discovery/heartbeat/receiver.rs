//! A received heartbeat, of either kind, from its bytes to what it decides:
//! validated ([`validate`](super::validate) or
//! [`template::validate`]), then the checks both kinds share (only members'
//! with gating on, one per signer per gap), then what the address book
//! learns (its peer, addresses, source and node id, unless they are what it
//! gave lately or the book is busy). Plain code: the heartbeat actor hands
//! it each GossipSub message and does what comes out (the verdict to
//! GossipSub, the update to the book, the counts).

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::{Instant, SystemTime},
};

use libp2p::PeerId;
use libp2p_gossipsub::MessageAcceptance;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Config, Rejection, signed, signers::Signers, template};
use crate::{
    discovery::address_book::{AddressBook, Source, Update},
    multiaddr::is_believable,
    streams::gate::{Gate, Membership},
};

/// Address book updates from heartbeats waiting in the book's mailbox at
/// most; beyond, a heartbeat's update is dropped (counted
/// `subnet_address_book_updates_coalesced_total{reason="busy"}`) and the
/// signer's next heartbeat brings it again.
pub const MAX_PENDING_BOOK_UPDATES: usize = 256;

/// Checks received heartbeats and remembers their signers.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Subnet, validation window, the template's settings, book refresh.
    config: Config,
    /// Membership gating: with it on, only members' heartbeats count.
    gate: Gate,
    /// The book's read view: the node ids the registry gives.
    book: AddressBook,
    /// Signers of signed heartbeats: their last sequence, and what they
    /// last gave the book.
    signed: Signers<Signed>,
    /// Signers of template heartbeats.
    template: Signers<()>,
    /// Slots of heartbeat updates in the book's mailbox.
    book_slots: Arc<Semaphore>,
}

/// What is kept of a signer's last signed heartbeat.
#[derive(Debug, Default)]
struct Signed {
    sequence: u64,
    /// A hash of the addresses and node id it last gave the book, and when.
    booked: Option<(u64, Instant)>,
}

/// A received GossipSub message, as the checks need it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gossip<'a> {
    /// Its data.
    pub(crate) data: &'a [u8],
    /// Its verified signer, if any.
    pub(crate) signer: Option<PeerId>,
    /// Whether it came over a loopback or link-local connection: only then
    /// may loopback or link-local addresses in it be believed.
    pub(crate) local: bool,
}

/// What a received heartbeat decided.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Accepted: what the book learns from it, or why it learns nothing
    /// this time.
    Accepted(Result<BookUpdate, Coalesced>),
    /// Not accepted.
    Rejected(Rejection),
}

/// What the address book learns from an accepted heartbeat, with its slot
/// in the book's mailbox.
#[derive(Debug)]
pub(crate) struct BookUpdate {
    /// The signer's addresses (none from a template heartbeat: they come
    /// from its connection and identify) and node id.
    pub(crate) update: Update,
    /// Its slot in the book's mailbox, held until the book handled it.
    pub(crate) slot: OwnedSemaphorePermit,
}

/// Why an accepted heartbeat gives the book nothing this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coalesced {
    /// Its addresses and node id are what its signer gave the book less
    /// than the book refresh ago.
    Unchanged,
    /// [`MAX_PENDING_BOOK_UPDATES`] wait in the book's mailbox.
    Busy,
}

impl Coalesced {
    /// The metric's `reason` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coalesced::Unchanged => "unchanged",
            Coalesced::Busy => "busy",
        }
    }
}

impl Verdict {
    /// The verdict reported to GossipSub.
    pub(crate) fn acceptance(&self) -> MessageAcceptance {
        match self {
            Verdict::Accepted(_) => MessageAcceptance::Accept,
            Verdict::Rejected(rejection) => rejection.acceptance(),
        }
    }
}

impl Receiver {
    /// A receiver that remembers no signer yet.
    pub(crate) fn new(config: Config, gate: Gate, book: AddressBook) -> Self {
        Self {
            config,
            gate,
            book,
            signed: Signers::new(super::MAX_TRACKED_PEERS),
            template: Signers::new(super::MAX_TRACKED_PEERS),
            book_slots: Arc::new(Semaphore::new(MAX_PENDING_BOOK_UPDATES)),
        }
    }

    /// Checks a signed heartbeat received at `now` (`wall` on the clock).
    pub(crate) fn signed(&mut self, gossip: Gossip<'_>, now: Instant, wall: SystemTime) -> Verdict {
        let last = gossip.signer.and_then(|s| self.signed.get(&s));
        // A signer gets one heartbeat per half interval through; the gate,
        // when closed, only members'.
        let min_gap = self.config.interval() / 2;
        let accepted = signed::validate(
            &self.config,
            gossip.data,
            gossip.signer,
            wall,
            last.map(|signed| signed.sequence),
        )
        .and_then(|accepted| {
            let heard = self.signed.heard_within(&accepted.peer, min_gap, now);
            admit(&self.gate, &accepted.peer, heard).map(|()| accepted)
        });
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(rejection) => return Verdict::Rejected(rejection),
        };
        let signer = self.signed.note(accepted.peer, now, self.config.window());
        signer.sequence = accepted.sequence;
        let mut addresses = accepted.addresses;
        // From another host, its loopback addresses are not its; an
        // unspecified or multicast one is nobody's.
        addresses.retain(|a| is_believable(a, gossip.local));
        // The book hears the same addresses and node id once per refresh,
        // which keeps them alive; heartbeats in between are coalesced.
        let digest = {
            let mut hasher = DefaultHasher::new();
            (&addresses, accepted.subnet_node_id).hash(&mut hasher);
            hasher.finish()
        };
        let refresh = self.config.book_refresh();
        if signer
            .booked
            .is_some_and(|(booked, at)| booked == digest && now.duration_since(at) < refresh)
        {
            return Verdict::Accepted(Err(Coalesced::Unchanged));
        }
        let Ok(slot) = self.book_slots.clone().try_acquire_owned() else {
            return Verdict::Accepted(Err(Coalesced::Busy));
        };
        signer.booked = Some((digest, now));
        Verdict::Accepted(Ok(BookUpdate {
            update: Update::Learned {
                peer: accepted.peer,
                addresses,
                source: Source::Heartbeat,
                subnet_node_id: Some(accepted.subnet_node_id),
            },
            slot,
        }))
    }

    /// Checks a Python template heartbeat received at `now` (`wall` on the
    /// clock): it gives the book its sender's node id (its addresses come
    /// from its connection and identify). `None` if template heartbeats are
    /// off: unread, ignored.
    pub(crate) fn template(
        &mut self,
        gossip: Gossip<'_>,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Verdict> {
        let template = self.config.template()?;
        // The registry's node id for the sender, if it lists it.
        let registered = gossip
            .signer
            .and_then(|peer| self.book.lookup(&peer))
            .filter(|r| r.addresses.iter().any(|e| e.source == Source::Registry))
            .and_then(|r| r.subnet_node_id);
        // The template sends one an epoch (an older version two): a
        // quarter epoch apart at least.
        let min_gap = template.epoch_duration() / 4;
        let accepted = template::validate(
            template,
            self.config.subnet_id(),
            gossip.data,
            gossip.signer,
            registered,
            wall,
        )
        .and_then(|accepted| {
            let heard = self.template.heard_within(&accepted.peer, min_gap, now);
            admit(&self.gate, &accepted.peer, heard).map(|()| accepted)
        });
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(rejection) => return Some(Verdict::Rejected(rejection)),
        };
        // Until the book knows the sender (identify has not answered yet),
        // its node id has nowhere to go: its next heartbeat is not held
        // back.
        if self.book.contains(&accepted.peer) {
            self.template
                .note(accepted.peer, now, template.epoch_duration());
        }
        let Ok(slot) = self.book_slots.clone().try_acquire_owned() else {
            return Some(Verdict::Accepted(Err(Coalesced::Busy)));
        };
        Some(Verdict::Accepted(Ok(BookUpdate {
            update: Update::Learned {
                peer: accepted.peer,
                addresses: Vec::new(),
                source: Source::Heartbeat,
                subnet_node_id: Some(accepted.subnet_node_id),
            },
            slot,
        })))
    }
}

/// The checks both kinds share, once a heartbeat is valid: with gating on,
/// only members' count; a signer `heard` from within its gap is too
/// frequent.
fn admit(gate: &Gate, peer: &PeerId, heard: bool) -> Result<(), Rejection> {
    match gate.membership(peer) {
        Membership::Outsider => Err(Rejection::NotMember),
        Membership::Unknown => Err(Rejection::Unverified),
        Membership::Member if heard => Err(Rejection::TooFrequent),
        Membership::Member => Ok(()),
    }
}

#[cfg(test)]
mod tests;
