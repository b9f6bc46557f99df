//! `Woken<B>`: a behaviour whose connection handlers are polled only when
//! they have something to do.
//!
//! A connection runs every behaviour's handler in one task, and libp2p polls
//! them all each time that task wakes, and again after every stream it
//! opens or accepts. Most wake-ups are for one handler (a request's stream,
//! say); the others are polled for nothing. For GossipSub that is not free:
//! its idle inbound stream is an `asynchronous_codec` reader that zeroes an
//! 8 KiB buffer on every poll, so on a node serving requests its handler was
//! 18 % of all instructions (`valgrind --tool=callgrind` on
//! `examples/compare.rs --profile 4000 --in-flight 64`).
//!
//! [`WokenHandler`] polls its inner handler only when the inner handler woke
//! its task, received an event, or returned one last time (it may have
//! more), as `FuturesUnordered` does for its futures. Handlers that register
//! their wakers, as libp2p's do, behave the same.

use std::{
    ops::{Deref, DerefMut},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures::task::AtomicWaker;
use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
        handler::ConnectionEvent,
    },
};

/// Wraps behaviour `B` so that its connection handlers are polled only when
/// woken. Dereferences to `B`.
pub(crate) struct Woken<B>(B);

impl<B> Woken<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self(inner)
    }
}

impl<B> Deref for Woken<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

impl<B> DerefMut for Woken<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.0
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Woken<B> {
    type ConnectionHandler = WokenHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
            .map(WokenHandler::new)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_outbound_connection(
                connection_id,
                peer,
                addr,
                role_override,
                port_use,
            )
            .map(WokenHandler::new)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        self.0.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer_id, connection_id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}

/// Whether the inner handler has work, and whom to wake when it has.
#[derive(Default)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls handler `H` only when it woke, got an event, or last returned one.
pub(crate) struct WokenHandler<H> {
    inner: H,
    flag: Arc<Flag>,
    waker: Waker,
}

impl<H> WokenHandler<H> {
    fn new(inner: H) -> Self {
        let flag = Arc::new(Flag::default());
        // Polled once before anything else: the handler may start work.
        flag.woken.store(true, Ordering::Relaxed);
        let waker = Waker::from(flag.clone());
        Self { inner, flag, waker }
    }

    fn mark(&self) {
        self.flag.woken.store(true, Ordering::Relaxed);
    }
}

impl<H: ConnectionHandler> ConnectionHandler for WokenHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.inner.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        // Register before reading the flag: a wake in between sets the flag
        // and wakes this task again.
        self.flag.task.register(cx.waker());
        if !self.flag.woken.swap(false, Ordering::Acquire) {
            return Poll::Pending;
        }
        let polled = self.inner.poll(&mut Context::from_waker(&self.waker));
        if polled.is_ready() {
            // It may have more to say: poll it again next time.
            self.mark();
        }
        polled
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.mark();
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            '_,
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        self.mark();
        self.inner.on_connection_event(event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use libp2p::core::upgrade::DeniedUpgrade;

    use super::*;

    /// Counts its polls; returns one event per behaviour event received.
    #[derive(Default)]
    struct Counting {
        polls: usize,
        pending_events: usize,
        waker: Option<Waker>,
    }

    impl ConnectionHandler for Counting {
        type FromBehaviour = ();
        type ToBehaviour = ();
        type InboundProtocol = DeniedUpgrade;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<DeniedUpgrade, ()> {
            SubstreamProtocol::new(DeniedUpgrade, ())
        }

        fn poll(
            &mut self,
            cx: &mut Context<'_>,
        ) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), ()>> {
            self.polls += 1;
            self.waker = Some(cx.waker().clone());
            if self.pending_events > 0 {
                self.pending_events -= 1;
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(()));
            }
            Poll::Pending
        }

        fn on_behaviour_event(&mut self, _: ()) {
            self.pending_events += 1;
        }

        fn on_connection_event(
            &mut self,
            _: ConnectionEvent<'_, DeniedUpgrade, DeniedUpgrade, (), ()>,
        ) {
        }
    }

    /// The connection's task: counts its wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn polls_the_inner_handler_only_when_it_has_work() {
        let task = Arc::new(Task::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut handler = WokenHandler::new(Counting::default());

        assert!(handler.poll(&mut cx).is_pending());
        assert_eq!(handler.inner.polls, 1, "polled once to start");
        assert!(handler.poll(&mut cx).is_pending());
        assert_eq!(handler.inner.polls, 1, "not polled again for nothing");

        handler.inner.waker.take().unwrap().wake();
        assert_eq!(
            task.0.load(Ordering::Relaxed),
            1,
            "its wake reaches the task"
        );
        assert!(handler.poll(&mut cx).is_pending());
        assert_eq!(handler.inner.polls, 2, "polled after it woke");

        handler.on_behaviour_event(());
        handler.on_behaviour_event(());
        assert!(handler.poll(&mut cx).is_ready());
        assert!(
            handler.poll(&mut cx).is_ready(),
            "polled again after an event"
        );
        assert!(handler.poll(&mut cx).is_pending());
        assert_eq!(handler.inner.polls, 5);
        assert!(handler.poll(&mut cx).is_pending());
        assert_eq!(handler.inner.polls, 5, "quiet again");
    }
}
