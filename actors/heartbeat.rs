//! `HeartbeatActor`: publishes this node's heartbeat on a schedule and
//! validates those it receives.
//!
//! It receives the heartbeat topic's messages from the swarm's gossip output
//! port (the supervisor subscribes it, filtered by topic; at most
//! `MAX_PENDING_GOSSIP` are in flight, beyond which the swarm ignores them
//! itself); it reports each verdict back to GossipSub on the message itself
//! (`GossipMessage::report`) and feeds accepted addresses to the `AddressBookActor`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime},
};

use libp2p::{PeerId, gossipsub::MessageAcceptance};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::address_book::AddressBookMessage;
use crate::{
    discovery::{
        address_book::{AddressBook, Source, Update},
        heartbeat::{self, Config, Rejection},
        template_heartbeat,
    },
    metrics::Metrics,
    multiaddr::is_believable,
    reputation::{Reputation, Violation},
    streams::gate::{Gate, Membership},
    swarm::{Command, GossipMessage, addresses::ListenAddresses},
};

/// Peers whose last sequence is remembered (for replay checks).
pub const MAX_TRACKED_PEERS: usize = 10_000;

/// Address book updates from heartbeats waiting in the book's mailbox at
/// most; beyond, a heartbeat's update is dropped (counted
/// `subnet_address_book_updates_coalesced_total{reason="busy"}`) and the
/// signer's next heartbeat brings it again.
pub const MAX_PENDING_BOOK_UPDATES: usize = 256;

/// What the `HeartbeatActor` does.
#[derive(Debug)]
pub enum HeartbeatMessage {
    /// Publish a heartbeat now (sent by the actor's own timer).
    Publish,
    /// Validate a heartbeat GossipSub received.
    Received(Box<GossipMessage>),
    /// The counters so far.
    Stats {
        /// Answered with the counters.
        reply: RpcReplyPort<HeartbeatStats>,
    },
}

/// What a node's heartbeat actor has done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// Heartbeats handed to GossipSub for publishing.
    pub published: u64,
    /// Bytes of those heartbeats (protobuf, before GossipSub's envelope).
    pub published_bytes: u64,
    /// Heartbeats accepted.
    pub accepted: u64,
    /// Heartbeats not accepted, by reason.
    pub rejected: BTreeMap<Rejection, u64>,
    /// Of the accepted, the Python template's JSON heartbeats.
    pub template_accepted: u64,
    /// Template heartbeats handed to GossipSub for publishing.
    pub template_published: u64,
}

/// Publishes and validates heartbeats. Its fields are the actor's fixed
/// settings.
#[derive(Debug)]
pub struct HeartbeatActor {
    /// Subnet, node id, interval and validation window.
    pub(crate) config: Config,
    /// The topic heartbeats are published on (`heartbeat::topic`).
    pub(crate) topic: String,
    /// This node.
    pub(crate) local_peer: PeerId,
    /// The node's listen addresses; each heartbeat carries those it
    /// advertises at the time.
    pub(crate) addresses: ListenAddresses,
    /// Where heartbeats are published and verdicts reported.
    pub(crate) swarm: ActorRef<Command>,
    /// Where accepted heartbeats' addresses go.
    pub(crate) address_book: ActorRef<AddressBookMessage>,
    /// The book's read view: the node ids the registry gives.
    pub(crate) book: AddressBook,
    /// The node's metrics.
    pub(crate) metrics: Metrics,
    /// Membership gating: with it on, only members' heartbeats count.
    pub(crate) gate: Gate,
    /// Told of the peers that forward invalid heartbeats.
    pub(crate) reputation: Arc<Reputation>,
    /// How often a signer whose addresses and node id did not change
    /// updates the book (which keeps them alive): a quarter of the book's
    /// heartbeat time-to-live, at most 15 s. Heartbeats in between are
    /// coalesced (`reason="unchanged"`).
    pub(crate) book_refresh: std::time::Duration,
}

/// The state of the `HeartbeatActor`: what changes.
#[derive(Debug)]
pub struct HeartbeatState {
    timer: tokio::task::JoinHandle<()>,
    publish_queued: Arc<AtomicBool>,
    sequence: u64,
    /// What is known of each signer.
    last_seen: HashMap<PeerId, Signer>,
    /// Slots of heartbeat updates in the book's mailbox.
    book_slots: Arc<tokio::sync::Semaphore>,
    stats: HeartbeatStats,
    /// When each template heartbeat signer's last one was accepted.
    template_seen: HashMap<PeerId, Instant>,
}

/// A signer's last accepted heartbeat, and what it last gave the book.
#[derive(Debug, Clone, Copy)]
struct Signer {
    sequence: u64,
    /// When its last heartbeat was accepted.
    at: Instant,
    /// A hash of the addresses and node id it last gave the book, and when.
    booked: Option<(u64, Instant)>,
}

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMessage;
    type State = HeartbeatState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<HeartbeatMessage>,
        (): (),
    ) -> Result<HeartbeatState, ActorProcessingErr> {
        // A late tick is skipped, not caught up in a burst: a loaded node
        // publishes less often, never more.
        // At most one Publish waits in the mailbox: a busy actor publishes
        // late, never in a burst.
        let mut ticks = tokio::time::interval(self.config.interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let timer = myself.clone();
        let publish_queued = Arc::new(AtomicBool::new(false));
        let queued = publish_queued.clone();
        let timer = tokio::spawn(async move {
            loop {
                ticks.tick().await;
                if !queued.swap(true, Ordering::AcqRel)
                    && timer.cast(HeartbeatMessage::Publish).is_err()
                {
                    return;
                }
            }
        });
        tracing::info!(topic = %self.topic, interval = ?self.config.interval(), "heartbeating");
        // Sequences start at the clock, so a restarted node is not taken
        // for a replayer of its previous life.
        let sequence = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        Ok(HeartbeatState {
            timer,
            publish_queued,
            sequence,
            last_seen: HashMap::new(),
            book_slots: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_BOOK_UPDATES)),
            stats: HeartbeatStats::default(),
            template_seen: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<HeartbeatMessage>,
        message: HeartbeatMessage,
        state: &mut HeartbeatState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HeartbeatMessage::Publish => {
                state.publish_queued.store(false, Ordering::Release);
                self.publish(state)?;
            }
            HeartbeatMessage::Received(message)
                // A plain (identity-hashed) topic: its hash is its name.
                if message.topic.as_str() == template_heartbeat::TOPIC =>
            {
                self.receive_template(state, *message)?
            }
            HeartbeatMessage::Received(message) => self.receive(state, *message)?,
            HeartbeatMessage::Stats { reply } => {
                let _ = reply.send(state.stats.clone());
            }
        }
        Ok(())
    }
}

impl Drop for HeartbeatState {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

impl HeartbeatActor {
    fn publish(&self, state: &mut HeartbeatState) -> Result<(), ActorProcessingErr> {
        state.sequence += 1;
        let _span = tracing::debug_span!("heartbeat", sequence = state.sequence).entered();
        let heartbeat = heartbeat::build(
            &self.config,
            self.local_peer,
            &self.addresses.advertised(),
            state.sequence,
            SystemTime::now(),
        );
        let data = prost::Message::encode_to_vec(&heartbeat);
        state.stats.published += 1;
        self.metrics.heartbeat_published();
        state.stats.published_bytes += data.len() as u64;
        self.swarm.cast(Command::Publish {
            topic: self.topic.clone(),
            data,
            retain: true,
        })?;
        if let Some(template) = self.config.template().filter(|t| t.publish) {
            // With each heartbeat of ours, not once an epoch: a node that
            // published into an empty mesh is not unseen for an epoch, and
            // Python nodes, which take a peer for dead after 90 s without
            // one, see it alive throughout.
            let data = template_heartbeat::build(
                template,
                self.config.subnet_id(),
                self.config.subnet_node_id(),
                rand::random(),
                SystemTime::now(),
            );
            state.stats.template_published += 1;
            self.swarm.cast(Command::Publish {
                topic: template_heartbeat::TOPIC.to_owned(),
                data,
                retain: false,
            })?;
        }
        Ok(())
    }

    /// Validates a Python template heartbeat: it gives the book its
    /// sender's node id (its addresses come from its connection and
    /// identify).
    fn receive_template(
        &self,
        state: &mut HeartbeatState,
        message: GossipMessage,
    ) -> Result<(), ActorProcessingErr> {
        let Some(template) = self.config.template() else {
            message.report(MessageAcceptance::Ignore);
            return Ok(());
        };
        let (propagation_source, signer) = (message.propagation_source, message.signer);
        let now = Instant::now();
        // The registry's node id for the sender, if it lists it.
        let registered = signer
            .and_then(|peer| self.book.lookup(&peer))
            .filter(|r| r.addresses.iter().any(|e| e.source == Source::Registry))
            .and_then(|r| r.subnet_node_id);
        // The template sends one an epoch (an older version two): a
        // quarter epoch apart at least.
        let min_gap = template.epoch_duration() / 4;
        let verdict = template_heartbeat::validate(
            template,
            self.config.subnet_id(),
            &message.data,
            signer,
            registered,
            SystemTime::now(),
        )
        .and_then(|accepted| {
            let last = state.template_seen.get(&accepted.peer);
            match self.gate.membership(&accepted.peer) {
                Membership::Outsider => Err(Rejection::NotMember),
                Membership::Unknown => Err(Rejection::Unverified),
                _ if last.is_some_and(|at| now.duration_since(*at) < min_gap) => {
                    Err(Rejection::TooFrequent)
                }
                _ => Ok(accepted),
            }
        });
        let acceptance = match verdict {
            Ok(accepted) => {
                state.stats.accepted += 1;
                state.stats.template_accepted += 1;
                self.metrics.heartbeat_received();
                if state.template_seen.len() >= MAX_TRACKED_PEERS
                    && !state.template_seen.contains_key(&accepted.peer)
                {
                    let epoch = template.epoch_duration();
                    state
                        .template_seen
                        .retain(|_, at| now.duration_since(*at) < epoch);
                    if state.template_seen.len() >= MAX_TRACKED_PEERS
                        && let Some(oldest) = state
                            .template_seen
                            .iter()
                            .min_by_key(|(_, at)| **at)
                            .map(|(peer, _)| *peer)
                    {
                        state.template_seen.remove(&oldest);
                    }
                }
                // Until the book knows the sender (identify has not
                // answered yet), its node id has nowhere to go: its next
                // heartbeat is not held back.
                if self.book.contains(&accepted.peer) {
                    state.template_seen.insert(accepted.peer, now);
                }
                if let Ok(slot) = state.book_slots.clone().try_acquire_owned() {
                    self.address_book.cast(AddressBookMessage::Held {
                        update: Update::Learned {
                            peer: accepted.peer,
                            addresses: Vec::new(),
                            source: Source::Heartbeat,
                            subnet_node_id: Some(accepted.subnet_node_id),
                        },
                        slot,
                    })?;
                } else {
                    self.metrics.book_update_coalesced("busy");
                }
                MessageAcceptance::Accept
            }
            Err(rejection) => self.rejected(state, rejection, propagation_source, signer),
        };
        message.report(acceptance);
        Ok(())
    }

    /// Counts a rejected heartbeat, penalises its forwarder if it should
    /// have known better, and gives GossipSub's verdict.
    fn rejected(
        &self,
        state: &mut HeartbeatState,
        rejection: Rejection,
        propagation_source: PeerId,
        signer: Option<PeerId>,
    ) -> MessageAcceptance {
        *state.stats.rejected.entry(rejection).or_default() += 1;
        self.metrics.heartbeat_rejected(rejection.name());
        tracing::debug!(from = %propagation_source, ?signer, "heartbeat not accepted: {}", rejection.name());
        // A forwarder validates before it forwards: what it should have
        // rejected is its fault. Membership views may lag between nodes,
        // so a non-member's is not.
        if rejection.acceptance() == MessageAcceptance::Reject && rejection != Rejection::NotMember
        {
            self.reputation
                .report(propagation_source, Violation::InvalidHeartbeat);
        }
        rejection.acceptance()
    }

    fn receive(
        &self,
        state: &mut HeartbeatState,
        message: GossipMessage,
    ) -> Result<(), ActorProcessingErr> {
        let (propagation_source, signer) = (message.propagation_source, message.signer);
        let now = Instant::now();
        let last = signer.and_then(|s| state.last_seen.get(&s).copied());
        // A signer gets one heartbeat per half interval through; the
        // gate, when closed, only members'.
        let min_gap = self.config.interval() / 2;
        let _span =
            tracing::debug_span!("heartbeat received", from = %propagation_source).entered();
        let verdict = heartbeat::validate(
            &self.config,
            &message.data,
            signer,
            SystemTime::now(),
            last.map(|signer| signer.sequence),
        )
        .and_then(|accepted| {
            let membership = self.gate.membership(&accepted.peer);
            if membership == Membership::Outsider {
                Err(Rejection::NotMember)
            } else if membership == Membership::Unknown {
                Err(Rejection::Unverified)
            } else if last.is_some_and(|signer| now.duration_since(signer.at) < min_gap) {
                Err(Rejection::TooFrequent)
            } else {
                Ok(accepted)
            }
        });
        let acceptance = match verdict {
            Ok(accepted) => {
                state.stats.accepted += 1;
                self.metrics.heartbeat_received();
                if state.last_seen.len() >= MAX_TRACKED_PEERS
                    && !state.last_seen.contains_key(&accepted.peer)
                {
                    // Forget signers not heard from within the validation
                    // window first (their old heartbeats are stale anyway),
                    // else the one heard from longest ago.
                    let window = self.config.window();
                    state
                        .last_seen
                        .retain(|_, signer| now.duration_since(signer.at) < window);
                    if state.last_seen.len() >= MAX_TRACKED_PEERS
                        && let Some(oldest) = state
                            .last_seen
                            .iter()
                            .min_by_key(|(_, signer)| signer.at)
                            .map(|(peer, _)| *peer)
                    {
                        state.last_seen.remove(&oldest);
                    }
                }
                state
                    .last_seen
                    .entry(accepted.peer)
                    .and_modify(|signer| {
                        signer.sequence = accepted.sequence;
                        signer.at = now;
                    })
                    .or_insert(Signer {
                        sequence: accepted.sequence,
                        at: now,
                        booked: None,
                    });
                let mut addresses = accepted.addresses;
                // From another host, its loopback addresses are not its; an
                // unspecified or multicast one is nobody's.
                addresses.retain(|a| is_believable(a, message.local));
                self.update_book(
                    state,
                    accepted.peer,
                    addresses,
                    accepted.subnet_node_id,
                    now,
                )?;
                MessageAcceptance::Accept
            }
            Err(rejection) => self.rejected(state, rejection, propagation_source, signer),
        };
        message.report(acceptance);
        Ok(())
    }

    /// Gives the book a signer's addresses, unless they are what it gave
    /// less than `book_refresh` ago, or the book is busy.
    fn update_book(
        &self,
        state: &mut HeartbeatState,
        peer: PeerId,
        addresses: Vec<libp2p::Multiaddr>,
        subnet_node_id: u64,
        now: Instant,
    ) -> Result<(), ActorProcessingErr> {
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (&addresses, subnet_node_id).hash(&mut hasher);
            hasher.finish()
        };
        let signer = state.last_seen.get_mut(&peer).expect("noted before");
        if signer.booked.is_some_and(|(booked, at)| {
            booked == digest && now.duration_since(at) < self.book_refresh
        }) {
            self.metrics.book_update_coalesced("unchanged");
            return Ok(());
        }
        let Ok(slot) = state.book_slots.clone().try_acquire_owned() else {
            self.metrics.book_update_coalesced("busy");
            return Ok(());
        };
        signer.booked = Some((digest, now));
        self.address_book.cast(AddressBookMessage::Held {
            update: Update::Learned {
                peer,
                addresses,
                source: Source::Heartbeat,
                subnet_node_id: Some(subnet_node_id),
            },
            slot,
        })?;
        Ok(())
    }
}
