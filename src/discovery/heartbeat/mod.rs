//! Heartbeats: the signed "I am here" each node gossips on its subnet's topic.
//!
//! A node publishes a protobuf [`Heartbeat`] on the GossipSub topic
//! [`topic`] (`subnet/<subnet id>/heartbeat`) a configured number of times
//! per epoch. GossipSub runs with signed messages and strict validation; on
//! receipt, [`validate`] checks that the message's signer is the heartbeat's
//! peer id, the subnet matches, the timestamp is inside the window, the
//! sequence is newer than the last one seen from that peer, and the
//! addresses parse and are few enough. Each verdict is reported back to
//! GossipSub (so peer scoring works); accepted heartbeats feed the address
//! book with source `heartbeat`.
//!
//! - this file: the settings ([`Config`]), why a heartbeat is not accepted
//!   ([`Rejection`]), the [`topic`];
//! - `signed.rs`: the signed heartbeat: [`build`], [`validate`];
//! - [`template`]: the Python subnet template's JSON heartbeat;
//! - `signers.rs`: the signers remembered, bounded ([`MAX_TRACKED_PEERS`]);
//! - `receiver.rs`: a received heartbeat of either kind, from its bytes to
//!   the verdict and what the address book learns; the heartbeat actor
//!   feeds it GossipSub's messages and does what it decides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libp2p_gossipsub::MessageAcceptance;

mod receiver;
mod signed;
mod signers;
pub mod template;

pub use receiver::MAX_PENDING_BOOK_UPDATES;
pub(crate) use receiver::{Gossip, Receiver, Verdict};
pub use signed::{Accepted, Heartbeat, build, validate};
pub use signers::MAX_TRACKED_PEERS;

/// How often, at most, a signer whose addresses and node id did not change
/// updates the book by default: 15 s (a quarter of the book's default
/// heartbeat time-to-live, 90 s, is more).
const DEFAULT_BOOK_REFRESH: Duration = Duration::from_secs(15);

/// The GossipSub topic of a subnet's heartbeats.
pub fn topic(subnet_id: u64) -> String {
    format!("subnet/{subnet_id}/heartbeat")
}

/// Heartbeat settings.
#[derive(Debug, Clone)]
pub struct Config {
    subnet_id: u64,
    subnet_node_id: u64,
    epoch_length: Duration,
    per_epoch: u32,
    window: Duration,
    max_addresses: usize,
    max_size: usize,
    template: Option<template::Config>,
    /// How often a signer whose addresses and node id did not change
    /// updates the book (which keeps them alive); heartbeats in between
    /// are coalesced (`reason="unchanged"`).
    book_refresh: Duration,
}

impl Config {
    /// The length of an epoch: 60 s.
    pub const DEFAULT_EPOCH_LENGTH: Duration = Duration::from_secs(60);
    /// Heartbeats per epoch: 4 (one every 15 s with the default epoch).
    pub const DEFAULT_PER_EPOCH: u32 = 4;
    /// How far a heartbeat's timestamp may be from the receiver's clock: 60 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// Addresses a heartbeat may carry: 16.
    pub const DEFAULT_MAX_ADDRESSES: usize = 16;
    /// Largest heartbeat accepted, in bytes: 4 KiB.
    pub const DEFAULT_MAX_SIZE: usize = 4096;

    /// Heartbeats of subnet `subnet_id`, sent as subnet node `subnet_node_id`.
    pub fn new(subnet_id: u64, subnet_node_id: u64) -> Self {
        Self {
            subnet_id,
            subnet_node_id,
            epoch_length: Self::DEFAULT_EPOCH_LENGTH,
            per_epoch: Self::DEFAULT_PER_EPOCH,
            window: Self::DEFAULT_WINDOW,
            max_addresses: Self::DEFAULT_MAX_ADDRESSES,
            max_size: Self::DEFAULT_MAX_SIZE,
            template: None,
            book_refresh: DEFAULT_BOOK_REFRESH,
        }
    }

    /// Also reads (and, if `template.publish`, publishes) the Python
    /// subnet template's JSON heartbeat on the topic `heartbeat`
    /// ([`template`]), so that the node learns the node ids of Python nodes
    /// and they see it.
    pub fn with_template(mut self, template: template::Config) -> Self {
        self.template = Some(template);
        self
    }

    /// The template heartbeat's settings, if it is on.
    pub fn template(&self) -> Option<&template::Config> {
        self.template.as_ref()
    }

    /// Sets the book refresh from the book's heartbeat time-to-live
    /// (`None`: forever): a quarter of it, at most the default 15 s, so
    /// that a signer's addresses are renewed well before they expire.
    pub(crate) fn with_book_ttl(self, ttl: Option<Duration>) -> Self {
        self.with_book_refresh(ttl.map_or(DEFAULT_BOOK_REFRESH, |ttl| {
            (ttl / 4).min(DEFAULT_BOOK_REFRESH)
        }))
    }

    /// Sets how often a signer whose addresses and node id did not change
    /// updates the book: the node sets it from the book's heartbeat
    /// time-to-live.
    pub(crate) fn with_book_refresh(mut self, refresh: Duration) -> Self {
        self.book_refresh = refresh;
        self
    }

    /// How often a signer whose addresses and node id did not change
    /// updates the book.
    pub(crate) fn book_refresh(&self) -> Duration {
        self.book_refresh
    }

    /// Sets the epoch length and how many heartbeats are sent per epoch.
    pub fn with_epoch(mut self, length: Duration, per_epoch: u32) -> Self {
        self.epoch_length = length.max(Duration::from_millis(1));
        self.per_epoch = per_epoch.max(1);
        self
    }

    /// Sets how far a timestamp may be from the receiver's clock.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The subnet id.
    pub fn subnet_id(&self) -> u64 {
        self.subnet_id
    }

    /// This node's subnet node id.
    pub fn subnet_node_id(&self) -> u64 {
        self.subnet_node_id
    }

    /// The time between two heartbeats: epoch length / heartbeats per epoch.
    pub fn interval(&self) -> Duration {
        self.epoch_length / self.per_epoch
    }

    /// The epoch at `time`.
    pub fn epoch_at(&self, time: SystemTime) -> u64 {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        (since.as_millis() / self.epoch_length.as_millis().max(1)) as u64
    }

    /// The largest heartbeat accepted, in bytes.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// How far a heartbeat's timestamp may be from now.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The most addresses a heartbeat may carry.
    pub fn max_addresses(&self) -> usize {
        self.max_addresses
    }
}

/// Why a heartbeat was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// Larger than the maximum size.
    Oversized,
    /// Not a protobuf `Heartbeat`.
    Malformed,
    /// Not signed, or its peer id is not its signer's.
    Forged,
    /// From another subnet.
    WrongSubnet,
    /// Its timestamp is outside the window.
    Stale,
    /// Its sequence is not newer than the last one seen from that peer.
    Replayed,
    /// Its addresses do not parse, or there are too many.
    BadAddresses,
    /// Dropped unread: too many heartbeats awaited validation.
    Overloaded,
    /// Its signer is not a member of the subnet (membership gating is on).
    NotMember,
    /// Its signer is not listed and the registry has not been asked about
    /// it yet (gating with per-peer checks, the chain's proof of stake):
    /// ignored, not forwarded, nobody penalised; a heartbeat never makes
    /// the node ask the registry.
    Unverified,
    /// Its signer's previous heartbeat was accepted less than half an
    /// interval ago: the excess is dropped before GossipSub forwards it.
    TooFrequent,
    /// A template heartbeat whose node id is not the one the registry
    /// gives its sender: ignored, nobody penalised (registry views lag).
    WrongNodeId,
}

impl Rejection {
    /// Every reason.
    pub const ALL: [Rejection; 12] = [
        Rejection::Oversized,
        Rejection::Malformed,
        Rejection::Forged,
        Rejection::WrongSubnet,
        Rejection::Stale,
        Rejection::Replayed,
        Rejection::BadAddresses,
        Rejection::Overloaded,
        Rejection::NotMember,
        Rejection::Unverified,
        Rejection::TooFrequent,
        Rejection::WrongNodeId,
    ];

    /// A short lowercase name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::Oversized => "oversized",
            Rejection::Malformed => "malformed",
            Rejection::Forged => "forged",
            Rejection::WrongSubnet => "wrong_subnet",
            Rejection::Stale => "stale",
            Rejection::Replayed => "replayed",
            Rejection::BadAddresses => "bad_addresses",
            Rejection::Overloaded => "overloaded",
            Rejection::NotMember => "not_member",
            Rejection::Unverified => "unverified",
            Rejection::TooFrequent => "too_frequent",
            Rejection::WrongNodeId => "wrong_node_id",
        }
    }

    /// The verdict reported to GossipSub: what may be an honest delay or
    /// duplicate is ignored, the rest is rejected (and penalises the sender).
    pub fn acceptance(self) -> MessageAcceptance {
        match self {
            Rejection::Stale
            | Rejection::Replayed
            | Rejection::Overloaded
            | Rejection::Unverified
            | Rejection::TooFrequent
            | Rejection::WrongNodeId => MessageAcceptance::Ignore,
            _ => MessageAcceptance::Reject,
        }
    }

    /// Whether the peer that forwarded it is at fault: a forwarder
    /// validates before it forwards, so what it should have rejected is
    /// its fault. Membership views may lag between nodes, so a
    /// non-member's is not.
    pub(crate) fn blames_forwarder(self) -> bool {
        self.acceptance() == MessageAcceptance::Reject && self != Rejection::NotMember
    }
}
