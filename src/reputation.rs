//! Reputation and bans: a score per peer, lowered by each protocol
//! violation it commits and recovering with time; a peer whose score falls
//! below [`Config::threshold`] is banned for [`Config::ban_duration`]: its
//! connections are closed, and new ones (either way) refused, until the ban
//! ends. An operator bans and unbans by hand with `Node::ban` and
//! `Node::unban`.
//!
//! Violations and their default penalties ([`Violation::penalty`]):
//!
//! | violation | penalty | reported by |
//! |---|---|---|
//! | a malformed request frame (a length prefix that never ends or is over the size limit) or not the protocol's message | 25 | the protocol's actor |
//! | an invalid heartbeat (forged, malformed, oversized, wrong subnet, bad addresses) | 20 | the heartbeat actor, against the peer that forwarded it |
//! | a request refused by the protocol's rate limit | 1 | admission |
//! | an address it gave for another peer (peer exchange) answered with a third identity | 5 | the swarm, on the failed dial |
//!
//! With the default threshold of -80, four malformed frames in a short
//! while ban a peer (three cost 75); a score halves every
//! [`Config::half_life`] (60 s), so an honest peer's occasional fault is
//! forgotten.
//!
//! A frame cut short, a stale or replayed heartbeat, one over its signer's
//! rate and a non-member's are not counted: an honest peer causes them
//! (a caller giving up, delays, membership views that lag).
//!
//! Bounded: scores are kept for at most [`MAX_TRACKED`] peers (the one
//! nearest to a clean score goes first) and bans for at most [`MAX_BANS`]
//! (misbehaviour bans go before operators' bans, the one ending soonest
//! first). `subnet_banned_peers` is updated at each ban and unban.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Mutex,
    task::{Context, Poll},
    time::Duration,
};

use futures::task::AtomicWaker;
use libp2p::{Multiaddr, PeerId};
use tokio::{sync::broadcast, time::Instant};

use crate::{metrics::Metrics, time::far_future};

/// Peers whose score is kept at most.
pub const MAX_TRACKED: usize = 4096;

/// Bans held at most.
pub const MAX_BANS: usize = 4096;

/// Addresses remembered with the peer that told them (a peer-exchange
/// answer), the oldest forgotten first.
pub const MAX_TOLD: usize = 1024;

/// Events kept for a slow reader of [`Reputation::events`] before it
/// misses some (`broadcast`'s lag).
const EVENTS: usize = 256;

/// A protocol violation, as reported against the peer that committed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    /// A request frame that is malformed or not the protocol's message.
    MalformedFrame,
    /// An invalid heartbeat forwarded by the peer.
    InvalidHeartbeat,
    /// A request refused by the protocol's per-peer rate limit.
    RateLimitExceeded,
    /// An address the peer gave for another peer (a peer-exchange answer)
    /// answered a dial with a third identity.
    WrongPeerId,
}

impl Violation {
    /// The score it costs, by default.
    pub fn penalty(self) -> f64 {
        match self {
            Violation::MalformedFrame => 25.0,
            Violation::InvalidHeartbeat => 20.0,
            Violation::RateLimitExceeded => 1.0,
            // Low: an honest answer goes stale when a node restarts with a
            // new identity on the same address.
            Violation::WrongPeerId => 5.0,
        }
    }

    /// Its metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Violation::MalformedFrame => "malformed_frame",
            Violation::InvalidHeartbeat => "invalid_heartbeat",
            Violation::RateLimitExceeded => "rate_limited",
            Violation::WrongPeerId => "wrong_peer_id",
        }
    }

    /// Every violation, for metrics registered at 0.
    pub(crate) const ALL: [Violation; 4] = [
        Violation::MalformedFrame,
        Violation::InvalidHeartbeat,
        Violation::RateLimitExceeded,
        Violation::WrongPeerId,
    ];
}

/// Why a peer was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// Its score fell below the threshold; the violation that did it.
    Misbehaved(Violation),
    /// `Node::ban`.
    Operator,
}

impl BanReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            BanReason::Misbehaved(_) => "misbehaved",
            BanReason::Operator => "operator",
        }
    }
}

/// What happened to a peer's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer is banned for `duration`: disconnected and refused.
    Banned {
        /// The peer.
        peer: PeerId,
        /// How long the ban lasts.
        duration: Duration,
        /// Why.
        reason: BanReason,
    },
    /// The ban was lifted by `Node::unban` (a ban that runs out ends
    /// without an event: the peer is simply admitted again).
    Unbanned {
        /// The peer.
        peer: PeerId,
    },
}

/// Reputation settings (`NodeBuilder::reputation`).
#[derive(Debug, Clone)]
pub struct Config {
    threshold: f64,
    ban_duration: Duration,
    half_life: Duration,
}

impl Config {
    /// Score below which a peer is banned: -80.
    pub const DEFAULT_THRESHOLD: f64 = -80.0;
    /// How long a misbehaving peer stays banned: 10 min.
    pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(600);
    /// Time in which a score recovers half the way to 0: 60 s.
    pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(60);

    /// Sets the score below which a peer is banned (negative).
    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets how long a misbehaving peer stays banned.
    pub fn with_ban_duration(mut self, duration: Duration) -> Self {
        self.ban_duration = duration;
        self
    }

    /// Sets the time in which a score recovers half the way to 0.
    pub fn with_half_life(mut self, half_life: Duration) -> Self {
        self.half_life = half_life;
        self
    }

    /// The score below which a peer is banned.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// How long a misbehaving peer stays banned.
    pub fn ban_duration(&self) -> Duration {
        self.ban_duration
    }

    /// The time in which a score recovers half the way to 0.
    pub fn half_life(&self) -> Duration {
        self.half_life
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: Self::DEFAULT_THRESHOLD,
            ban_duration: Self::DEFAULT_BAN_DURATION,
            half_life: Self::DEFAULT_HALF_LIFE,
        }
    }
}

/// A peer's score, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Score {
    value: f64,
    at: Instant,
}

impl Score {
    fn now(self, now: Instant, half_life: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let half_life = half_life.as_secs_f64().max(f64::MIN_POSITIVE);
        self.value * 0.5f64.powf(elapsed / half_life)
    }
}

#[derive(Debug, Default)]
struct State {
    scores: HashMap<PeerId, Score>,
    /// Each banned peer and when its ban ends.
    /// Each banned peer: when its ban ends, and whether an operator set it.
    bans: HashMap<PeerId, (Instant, bool)>,
    /// Banned peers whose connections are still to be closed.
    to_disconnect: HashSet<PeerId>,
    /// Who told each recent (peer, address), oldest first.
    told: VecDeque<((PeerId, Multiaddr), PeerId)>,
}

/// The node's reputation book: scores and bans, shared by the behaviour
/// (refuses and closes connections), admission, the protocol and heartbeat
/// actors (report violations) and the `Node` (operator bans).
#[derive(Debug)]
pub(crate) struct Reputation {
    config: Config,
    state: Mutex<State>,
    waker: AtomicWaker,
    events: broadcast::Sender<Event>,
    metrics: Metrics,
}

impl Reputation {
    pub(crate) fn new(config: Config, metrics: Metrics) -> Self {
        metrics.preregister_reputation(&Violation::ALL.map(Violation::label));
        Self {
            config,
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            events: broadcast::channel(EVENTS).0,
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("reputation lock poisoned")
    }

    /// Lowers `peer`'s score for `violation`; bans it if the score falls
    /// below the threshold. Returns whether it is (now) banned.
    pub(crate) fn report(&self, peer: PeerId, violation: Violation) -> bool {
        self.metrics.violation(violation.label());
        let now = Instant::now();
        let score = {
            let mut state = self.state();
            if state.bans.get(&peer).is_some_and(|(until, _)| *until > now) {
                return true;
            }
            if !state.scores.contains_key(&peer) && state.scores.len() >= MAX_TRACKED {
                // Forget the peer nearest to a clean score.
                let half_life = self.config.half_life;
                if let Some(cleanest) = state
                    .scores
                    .iter()
                    .max_by(|a, b| a.1.now(now, half_life).total_cmp(&b.1.now(now, half_life)))
                    .map(|(peer, _)| *peer)
                {
                    state.scores.remove(&cleanest);
                }
            }
            let half_life = self.config.half_life;
            let entry = state.scores.entry(peer).or_insert(Score {
                value: 0.0,
                at: now,
            });
            let value = entry.now(now, half_life) - violation.penalty();
            *entry = Score { value, at: now };
            value
        };
        tracing::debug!(%peer, ?violation, score, "protocol violation");
        if score < self.config.threshold {
            self.ban_for(
                peer,
                self.config.ban_duration,
                BanReason::Misbehaved(violation),
            );
            return true;
        }
        false
    }

    /// `by` told that `peer` is at `address` (a peer-exchange answer).
    pub(crate) fn told(&self, peer: PeerId, address: &Multiaddr, by: PeerId) {
        let mut state = self.state();
        if state.told.len() >= MAX_TOLD {
            state.told.pop_front();
        }
        let address = crate::multiaddr::without_peer_id(address.clone());
        state.told.push_back(((peer, address), by));
    }

    /// A dial of `peer` at `address` reached another identity: whoever
    /// told that address, if known, committed [`Violation::WrongPeerId`].
    pub(crate) fn wrong_peer_id(&self, peer: PeerId, address: &Multiaddr) {
        let address = crate::multiaddr::without_peer_id(address.clone());
        let teller = {
            let mut state = self.state();
            let at = state
                .told
                .iter()
                .position(|((p, a), _)| *p == peer && *a == address);
            at.and_then(|at| state.told.remove(at)).map(|(_, by)| by)
        };
        if let Some(teller) = teller {
            self.report(teller, Violation::WrongPeerId);
        }
    }

    /// `peer`'s score now (0: clean), for tests and operators.
    pub(crate) fn score(&self, peer: &PeerId) -> f64 {
        let state = self.state();
        state
            .scores
            .get(peer)
            .map_or(0.0, |s| s.now(Instant::now(), self.config.half_life))
    }

    /// Bans `peer` for `duration`: its connections are closed and new ones
    /// refused until then.
    pub(crate) fn ban_for(&self, peer: PeerId, duration: Duration, reason: BanReason) {
        let now = Instant::now();
        let until = now.checked_add(duration).unwrap_or_else(far_future);
        let banned = {
            let mut state = self.state();
            state.bans.retain(|_, (until, _)| *until > now);
            // Full: misbehaviour bans make room before operators' do, the
            // one ending soonest first.
            if !state.bans.contains_key(&peer)
                && state.bans.len() >= MAX_BANS
                && let Some(soonest) = state
                    .bans
                    .iter()
                    .min_by_key(|(_, (until, operator))| (*operator, *until))
                    .map(|(peer, _)| *peer)
            {
                state.bans.remove(&soonest);
            }
            state
                .bans
                .insert(peer, (until, reason == BanReason::Operator));
            state.scores.remove(&peer);
            state.to_disconnect.insert(peer);
            state.bans.len()
        };
        tracing::warn!(%peer, ?duration, ?reason, "peer banned");
        self.metrics.banned(reason.label(), banned);
        let _ = self.events.send(Event::Banned {
            peer,
            duration,
            reason,
        });
        self.waker.wake();
    }

    /// Lifts `peer`'s ban; `false` if it was not banned.
    pub(crate) fn unban(&self, peer: &PeerId) -> bool {
        let now = Instant::now();
        let (was, banned) = {
            let mut state = self.state();
            let was = state
                .bans
                .remove(peer)
                .is_some_and(|(until, _)| until > now);
            state.bans.retain(|_, (until, _)| *until > now);
            state.to_disconnect.remove(peer);
            (was, state.bans.len())
        };
        self.metrics.bans_now(banned);
        if was {
            tracing::info!(%peer, "peer unbanned");
            let _ = self.events.send(Event::Unbanned { peer: *peer });
        }
        was
    }

    /// Whether `peer` is banned now.
    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        let now = Instant::now();
        self.state()
            .bans
            .get(peer)
            .is_some_and(|(until, _)| *until > now)
    }

    /// Reputation events, from now on.
    pub(crate) fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The next banned peer whose connections are to be closed (the
    /// behaviour's poll).
    pub(crate) fn poll_disconnect(&self, cx: &mut Context<'_>) -> Poll<PeerId> {
        self.waker.register(cx.waker());
        let mut state = self.state();
        let Some(peer) = state.to_disconnect.iter().next().copied() else {
            return Poll::Pending;
        };
        state.to_disconnect.remove(&peer);
        Poll::Ready(peer)
    }
}

#[cfg(test)]
mod tests;
