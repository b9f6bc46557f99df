//! The gossip hand-over: GossipSub messages received on subscribed topics
//! go out on an output port ([`GossipPort`]) to whoever validates their
//! topic (the heartbeat actor), and each one's verdict comes back to the
//! loop, which reports it to GossipSub. At most [`MAX_PENDING_GOSSIP`]
//! await a verdict; more are ignored unread. Also publishing, with the
//! node's first heartbeat kept until a peer subscribes.

use std::sync::Arc;

use bytes::Bytes;
use libp2p::{PeerId, Swarm};
use libp2p_gossipsub as gossipsub;
use ractor::OutputPort;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::{
    streams::shared::Shared,
    swarm::{addresses::ListenAddresses, build::Behaviour},
};

/// GossipSub messages awaiting a verdict at once; more are ignored unread
/// (and counted as `overloaded` heartbeat rejections).
pub const MAX_PENDING_GOSSIP: usize = 1024;

/// A GossipSub message received on a subscribed topic, published on the
/// swarm's output port. Whoever validates its topic reports a verdict with
/// [`GossipMessage::report`]; a message whose every copy is dropped without
/// one (no subscriber, a validator that failed) is reported `Ignore`, so
/// GossipSub gets a verdict for every message it handed over.
#[derive(Debug, Clone)]
pub struct GossipMessage {
    /// The topic it was published on.
    pub topic: gossipsub::TopicHash,
    /// The peer that forwarded it.
    pub propagation_source: PeerId,
    /// The verified signer, if any.
    pub signer: Option<PeerId>,
    /// The message's data.
    pub data: Bytes,
    /// Whether it came over a loopback or link-local connection: only then
    /// may loopback or link-local addresses in it be believed.
    pub local: bool,
    verdict: Arc<Verdict>,
}

impl GossipMessage {
    /// Reports the application's verdict to GossipSub (the first report of
    /// a message counts; later ones are ignored).
    pub fn report(&self, acceptance: gossipsub::MessageAcceptance) {
        self.verdict.report(acceptance);
    }
}

/// The port the swarm publishes received GossipSub messages on.
pub type GossipPort = Arc<OutputPort<GossipMessage>>;

/// A message's verdict, owed to GossipSub: sent once, with the permit that
/// counts the message against [`MAX_PENDING_GOSSIP`] until the swarm's loop
/// has applied it.
#[derive(Debug)]
struct Verdict {
    message_id: gossipsub::MessageId,
    propagation_source: PeerId,
    pending: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
    verdicts: mpsc::Sender<Reported>,
}

/// A verdict on its way to the swarm's loop.
#[derive(Debug)]
pub(super) struct Reported {
    message_id: gossipsub::MessageId,
    propagation_source: PeerId,
    acceptance: gossipsub::MessageAcceptance,
    _pending: OwnedSemaphorePermit,
}

impl Verdict {
    fn report(&self, acceptance: gossipsub::MessageAcceptance) {
        let Some(pending) = self.pending.lock().expect("verdict lock poisoned").take() else {
            return;
        };
        // Never full: the channel holds MAX_PENDING_GOSSIP verdicts, and
        // each holds one of the MAX_PENDING_GOSSIP permits.
        let _ = self.verdicts.try_send(Reported {
            message_id: self.message_id.clone(),
            propagation_source: self.propagation_source,
            acceptance,
            _pending: pending,
        });
    }
}

impl Drop for Verdict {
    fn drop(&mut self) {
        self.report(gossipsub::MessageAcceptance::Ignore);
    }
}

/// Counts a message ignored unread because too many await a verdict.
pub type Overloaded = Box<dyn Fn() + Send + Sync>;

/// The loop's gossip part.
pub(super) struct Gossip {
    port: GossipPort,
    /// Permits of GossipSub messages awaiting a verdict.
    pending: Arc<Semaphore>,
    /// Where verdicts on published messages come back.
    verdicts: mpsc::Sender<Reported>,
    pub(super) reported: mpsc::Receiver<Reported>,
    overloaded: Overloaded,
    /// The last retained message that could not be published because no
    /// peer had subscribed to its topic yet (a node's first heartbeat):
    /// published as soon as one does, not a whole interval later.
    unsent: Option<(gossipsub::TopicHash, Vec<u8>)>,
}

impl Gossip {
    pub(super) fn new(port: GossipPort, overloaded: Overloaded) -> Self {
        let (verdicts, reported) = mpsc::channel(MAX_PENDING_GOSSIP);
        Self {
            port,
            pending: Arc::new(Semaphore::new(MAX_PENDING_GOSSIP)),
            verdicts,
            reported,
            overloaded,
            unsent: None,
        }
    }

    /// Publishes `data` on `topic`; a retained message no peer can take
    /// yet is kept (the last one only) until one subscribes.
    pub(super) fn publish(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        topic: gossipsub::TopicHash,
        data: Vec<u8>,
        retain: bool,
    ) {
        // Only a message that may be retained is copied (GossipSub takes it).
        let kept = retain.then(|| data.clone());
        match swarm.behaviour_mut().gossipsub.publish(topic.clone(), data) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) if kept.is_some() => {
                tracing::debug!(%topic, "no peer subscribed yet: publishing when one does");
                self.unsent = kept.map(|data| (topic, data));
            }
            Err(error) => tracing::debug!("publishing failed: {error}"),
        }
    }

    pub(super) fn on_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: gossipsub::Event,
        shared: &Shared,
        listen_addrs: &ListenAddresses,
    ) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_message(
                swarm,
                propagation_source,
                message_id,
                message,
                shared,
                listen_addrs,
            ),
            gossipsub::Event::Subscribed { topic, .. }
                if self.unsent.as_ref().is_some_and(|(t, _)| *t == topic) =>
            {
                let (topic, data) = self.unsent.take().expect("checked");
                self.publish(swarm, topic, data, true);
            }
            _ => {}
        }
    }

    /// Publishes a received message on the gossip port, or, with too many
    /// awaiting a verdict already, ignores it unread.
    fn on_message(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
        shared: &Shared,
        listen_addrs: &ListenAddresses,
    ) {
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            (self.overloaded)();
            swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    gossipsub::MessageAcceptance::Ignore,
                );
            return;
        };
        // Loopback addresses in it are believed only over a loopback
        // connection, and from its own sender unless this node is on one
        // machine with all its peers (its mesh forwards their heartbeats).
        let local = shared.connections.is_local(&propagation_source)
            && (message.source == Some(propagation_source) || listen_addrs.one_machine());
        self.port.send(GossipMessage {
            topic: message.topic,
            local,
            propagation_source,
            signer: message.source,
            data: Bytes::from(message.data),
            verdict: Arc::new(Verdict {
                message_id,
                propagation_source,
                pending: std::sync::Mutex::new(Some(permit)),
                verdicts: self.verdicts.clone(),
            }),
        });
    }

    /// Applies a verdict; its permit goes back with it.
    pub(super) fn on_verdict(swarm: &mut Swarm<Behaviour>, verdict: Reported) {
        swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                &verdict.message_id,
                &verdict.propagation_source,
                verdict.acceptance,
            );
    }
}

#[cfg(test)]
mod tests {
    use gossipsub::MessageAcceptance;

    use super::*;

    fn verdict(permits: &Arc<Semaphore>, verdicts: &mpsc::Sender<Reported>) -> Verdict {
        Verdict {
            message_id: gossipsub::MessageId::new(b"m"),
            propagation_source: PeerId::random(),
            pending: std::sync::Mutex::new(Some(permits.clone().try_acquire_owned().unwrap())),
            verdicts: verdicts.clone(),
        }
    }

    #[test]
    fn a_message_gets_exactly_one_verdict_and_its_permit_returns_with_it() {
        let permits = Arc::new(Semaphore::new(1));
        let (verdicts, mut reported) = mpsc::channel(MAX_PENDING_GOSSIP);

        // Reported once: later reports and the drop add nothing.
        let first = verdict(&permits, &verdicts);
        first.report(MessageAcceptance::Accept);
        first.report(MessageAcceptance::Reject);
        drop(first);
        let got = reported.try_recv().unwrap();
        assert!(matches!(got.acceptance, MessageAcceptance::Accept));
        assert!(reported.try_recv().is_err());
        assert_eq!(permits.available_permits(), 0, "held until applied");
        drop(got);
        assert_eq!(permits.available_permits(), 1);

        // Dropped without a verdict (no validator): reported `Ignore`.
        drop(verdict(&permits, &verdicts));
        let got = reported.try_recv().unwrap();
        assert!(matches!(got.acceptance, MessageAcceptance::Ignore));
    }
}
