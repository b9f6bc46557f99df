//! `HeartbeatActor`: publishes this node's heartbeat on a schedule and
//! validates those it receives.
//!
//! The swarm's event loop casts it every message of the heartbeat topic (at
//! most [`MAX_PENDING_VALIDATIONS`] at a time: beyond, the loop ignores them
//! itself); it reports each verdict back to GossipSub through the
//! `SwarmActor` and feeds accepted addresses to the `AddressBookActor`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::SystemTime,
};

use libp2p::{
    Multiaddr, PeerId,
    gossipsub::{MessageAcceptance, MessageId},
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{address_book::AddressBookMessage, swarm::SwarmMessage};
use crate::{
    address_book::Source,
    heartbeat::{self, Config, Rejection},
};

/// Heartbeats awaiting validation at once; more are ignored unread.
pub const MAX_PENDING_VALIDATIONS: usize = 1024;

/// Peers whose last sequence is remembered (for replay checks).
pub const MAX_TRACKED_PEERS: usize = 10_000;

/// What the `HeartbeatActor` does.
#[derive(Debug)]
pub enum HeartbeatMessage {
    /// Publish a heartbeat now (sent by the actor's own timer).
    Publish,
    /// Validate a heartbeat GossipSub received.
    Received {
        /// The GossipSub message id, to report the verdict.
        message_id: MessageId,
        /// The peer that forwarded it.
        propagation_source: PeerId,
        /// The verified signer, if any.
        signer: Option<PeerId>,
        /// The message's data.
        data: Vec<u8>,
    },
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
}

/// What the `HeartbeatActor` starts with.
pub struct HeartbeatArguments {
    pub(crate) config: Config,
    pub(crate) local_peer: PeerId,
    pub(crate) addresses: Vec<Multiaddr>,
    pub(crate) swarm: ActorRef<SwarmMessage>,
    pub(crate) address_book: ActorRef<AddressBookMessage>,
    pub(crate) pending: Arc<AtomicUsize>,
    pub(crate) metrics: crate::metrics::Metrics,
}

/// The state of the `HeartbeatActor`.
pub struct HeartbeatState {
    timer: tokio::task::JoinHandle<()>,
    publish_queued: Arc<AtomicBool>,
    args: HeartbeatArguments,
    topic: String,
    sequence: u64,
    last_seen: HashMap<PeerId, u64>,
    stats: HeartbeatStats,
}

/// Publishes and validates heartbeats.
pub struct HeartbeatActor;

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMessage;
    type State = HeartbeatState;
    type Arguments = HeartbeatArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<HeartbeatMessage>,
        args: HeartbeatArguments,
    ) -> Result<HeartbeatState, ActorProcessingErr> {
        // A late tick is skipped, not caught up in a burst: a loaded node
        // publishes less often, never more.
        // At most one Publish waits in the mailbox: a busy actor publishes
        // late, never in a burst.
        let mut ticks = tokio::time::interval(args.config.interval());
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
        let topic = heartbeat::topic(args.config.subnet_id());
        tracing::info!(%topic, interval = ?args.config.interval(), "heartbeating");
        // Sequences start at the clock, so a restarted node is not taken
        // for a replayer of its previous life.
        let sequence = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        Ok(HeartbeatState {
            timer,
            publish_queued,
            args,
            topic,
            sequence,
            last_seen: HashMap::new(),
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
                state.publish()?;
            }
            HeartbeatMessage::Received {
                message_id,
                propagation_source,
                signer,
                data,
            } => {
                state.args.pending.fetch_sub(1, Ordering::Relaxed);
                state.receive(message_id, propagation_source, signer, &data)?;
            }
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

impl HeartbeatState {
    fn publish(&mut self) -> Result<(), ActorProcessingErr> {
        self.sequence += 1;
        let _span = tracing::debug_span!("heartbeat", sequence = self.sequence).entered();
        let heartbeat = heartbeat::build(
            &self.args.config,
            self.args.local_peer,
            &self.args.addresses,
            self.sequence,
            SystemTime::now(),
        );
        let data = prost::Message::encode_to_vec(&heartbeat);
        self.stats.published += 1;
        self.args.metrics.heartbeat_published();
        self.stats.published_bytes += data.len() as u64;
        self.args.swarm.cast(SwarmMessage::Publish {
            topic: self.topic.clone(),
            data,
            retain: true,
        })?;
        Ok(())
    }

    fn receive(
        &mut self,
        message_id: MessageId,
        propagation_source: PeerId,
        signer: Option<PeerId>,
        data: &[u8],
    ) -> Result<(), ActorProcessingErr> {
        let last = signer.and_then(|s| self.last_seen.get(&s).copied());
        let _span =
            tracing::debug_span!("heartbeat received", from = %propagation_source).entered();
        let verdict = heartbeat::validate(&self.args.config, data, signer, SystemTime::now(), last);
        let acceptance = match verdict {
            Ok(accepted) => {
                self.stats.accepted += 1;
                self.args.metrics.heartbeat_received();
                if self.last_seen.len() >= MAX_TRACKED_PEERS
                    && !self.last_seen.contains_key(&accepted.peer)
                {
                    // Forget some peer: at worst one stale replay gets through.
                    if let Some(&any) = self.last_seen.keys().next() {
                        self.last_seen.remove(&any);
                    }
                }
                self.last_seen.insert(accepted.peer, accepted.sequence);
                self.args.address_book.cast(AddressBookMessage::Add {
                    peer: accepted.peer,
                    addresses: accepted.addresses,
                    source: Source::Heartbeat,
                    subnet_node_id: Some(accepted.subnet_node_id),
                })?;
                MessageAcceptance::Accept
            }
            Err(rejection) => {
                *self.stats.rejected.entry(rejection).or_default() += 1;
                self.args.metrics.heartbeat_rejected(rejection.name());
                tracing::debug!(from = %propagation_source, ?signer, "heartbeat not accepted: {}", rejection.name());
                rejection.acceptance()
            }
        };
        self.args.swarm.cast(SwarmMessage::ReportValidation {
            message_id,
            propagation_source,
            acceptance,
        })?;
        Ok(())
    }
}
