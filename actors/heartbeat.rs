//! `HeartbeatActor`: publishes this node's heartbeat on a schedule and
//! validates those it receives.
//!
//! It receives the heartbeat topic's messages from the swarm's gossip output
//! port (the supervisor subscribes it, filtered by topic; at most
//! `MAX_PENDING_GOSSIP` are in flight, beyond which the swarm ignores them
//! itself); it reports each verdict back to GossipSub on the message itself
//! (`GossipMessage::report`) and feeds accepted addresses to the `AddressBookActor`.
//! What a received heartbeat decides is `heartbeat::Receiver`'s
//! (`src/discovery/heartbeat/receiver.rs`); this actor does what it decided.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime},
};

use libp2p::PeerId;
use libp2p_gossipsub::MessageAcceptance;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::address_book::AddressBookMessage;
use crate::{
    discovery::{
        address_book::AddressBook,
        heartbeat::{self, Config, Gossip, Receiver, Rejection, Verdict, template},
    },
    metrics::Metrics,
    reputation::{Reputation, Violation},
    streams::gate::Gate,
    swarm::{Command, GossipMessage, addresses::ListenAddresses},
};

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
/// settings: the heartbeat's, and the handles it works through.
#[derive(Debug)]
pub struct HeartbeatActor {
    /// Subnet, node id, interval, validation window, the template's
    /// settings, how often the book is refreshed.
    pub(crate) config: Config,
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
}

/// The state of the `HeartbeatActor`: what changes.
#[derive(Debug)]
pub struct HeartbeatState {
    timer: tokio::task::JoinHandle<()>,
    publish_queued: Arc<AtomicBool>,
    sequence: u64,
    /// The signers heard from, and the book's mailbox slots.
    receiver: Receiver,
    stats: HeartbeatStats,
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
        let topic = heartbeat::topic(self.config.subnet_id());
        tracing::info!(%topic, interval = ?self.config.interval(), "heartbeating");
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
            receiver: Receiver::new(self.config.clone(), self.gate.clone(), self.book.clone()),
            stats: HeartbeatStats::default(),
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
            topic: heartbeat::topic(self.config.subnet_id()),
            data,
            retain: true,
        })?;
        if let Some(template) = self.config.template().filter(|t| t.publish) {
            // With each heartbeat of ours, not once an epoch: a node that
            // published into an empty mesh is not unseen for an epoch, and
            // Python nodes, which take a peer for dead after 90 s without
            // one, see it alive throughout.
            let data = template::build(
                template,
                self.config.subnet_id(),
                self.config.subnet_node_id(),
                rand::random(),
                SystemTime::now(),
            );
            state.stats.template_published += 1;
            self.swarm.cast(Command::Publish {
                topic: template::TOPIC.to_owned(),
                data,
                retain: false,
            })?;
        }
        Ok(())
    }

    /// Checks a received heartbeat, of either kind, and does what it
    /// decided: the verdict to GossipSub, the update to the book, the
    /// counts.
    fn receive(
        &self,
        state: &mut HeartbeatState,
        message: GossipMessage,
    ) -> Result<(), ActorProcessingErr> {
        let (propagation_source, signer) = (message.propagation_source, message.signer);
        let _span =
            tracing::debug_span!("heartbeat received", from = %propagation_source).entered();
        let gossip = Gossip {
            data: &message.data,
            signer,
            local: message.local,
        };
        let (now, wall) = (Instant::now(), SystemTime::now());
        // A plain (identity-hashed) topic: its hash is its name.
        let template = message.topic.as_str() == template::TOPIC;
        let verdict = if template {
            state.receiver.template(gossip, now, wall)
        } else {
            Some(state.receiver.signed(gossip, now, wall))
        };
        let Some(verdict) = verdict else {
            message.report(MessageAcceptance::Ignore);
            return Ok(());
        };
        let acceptance = verdict.acceptance();
        match verdict {
            Verdict::Accepted(update) => {
                state.stats.accepted += 1;
                state.stats.template_accepted += u64::from(template);
                self.metrics.heartbeat_received();
                match update {
                    Ok(held) => self.address_book.cast(AddressBookMessage::Held {
                        update: held.update,
                        slot: held.slot,
                    })?,
                    Err(coalesced) => self.metrics.book_update_coalesced(coalesced.name()),
                }
            }
            Verdict::Rejected(rejection) => {
                *state.stats.rejected.entry(rejection).or_default() += 1;
                self.metrics.heartbeat_rejected(rejection.name());
                tracing::debug!(from = %propagation_source, ?signer, "heartbeat not accepted: {}", rejection.name());
                if rejection.blames_forwarder() {
                    self.reputation
                        .report(propagation_source, Violation::InvalidHeartbeat);
                }
            }
        }
        message.report(acceptance);
        Ok(())
    }
}
