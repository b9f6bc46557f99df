//! Getting a stream to a peer: open it on an existing connection (a raw
//! stream, or an exchange run by the connection: `src/streams/outbound.rs`),
//! or find the peer's addresses (`src/discovery/lookup.rs`), dial them
//! through the swarm actor and try once more; then name any failure
//! (`error.rs`). Everything here runs under the caller's deadline.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use ractor::{ActorRef, RpcReplyPort};
use tokio::time::{Instant, timeout_at};

use super::error::{CallError, Phase, exchange_failed, open_failed};
use crate::{
    destination::Destination,
    discovery::{address_book::Source, lookup::Lookup},
    multiaddr::relay_of,
    streams::{
        outbound::{OpenError, OutboundStream, Progress, Transfer},
        shared::Shared,
    },
    swarm::Command,
};

/// Connects callers to peers. Shared by a node's clients.
#[derive(Debug)]
pub(crate) struct Connector {
    pub(crate) shared: Arc<Shared>,
    pub(crate) swarm: ActorRef<Command>,
    pub(crate) lookup: Lookup,
}

impl Connector {
    /// Connects to `destination` by `deadline` (dialing if not connected).
    pub(crate) async fn connect(
        &self,
        destination: &Destination,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CallError> {
        let peer = destination.peer();
        let addresses = self.addresses(destination, deadline, timeout).await?;
        self.dial(peer, addresses, deadline, timeout).await
    }

    /// Opens a raw stream of `protocol` to `destination` by `deadline`.
    pub(crate) async fn open(
        &self,
        destination: &Destination,
        protocol: &StreamProtocol,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<OutboundStream, CallError> {
        let peer = destination.peer();
        let connections = &self.shared.connections;
        let attempt = || connections.open(peer, protocol);
        self.on_connection(destination, protocol, deadline, timeout, attempt, || {
            Phase::Open
        })
        .await
    }

    /// Sends `frame` on a new stream of `protocol` to `destination` and
    /// returns the response frame's body (at most `max` bytes), by
    /// `deadline`, and whether the exchange ran on a relayed connection.
    pub(crate) async fn exchange(
        &self,
        destination: &Destination,
        protocol: &StreamProtocol,
        frame: &Bytes,
        transfer: Transfer,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Vec<u8>, bool), CallError> {
        let peer = destination.peer();
        let progress = Arc::new(Progress::default());
        let connections = &self.shared.connections;
        let attempt = || connections.exchange(peer, protocol, frame, transfer, &progress);
        self.on_connection(destination, protocol, deadline, timeout, attempt, || {
            progress.get().into()
        })
        .await?
        .map(|body| (body, progress.relayed()))
        .map_err(|error| match exchange_failed(peer, protocol, error) {
            // A relayed connection that ends mid-call: its relay closed it.
            CallError::ConnectionLost { peer, phase } if progress.relayed() => {
                CallError::CircuitClosed { peer, phase }
            }
            other => other,
        })
    }

    /// Runs `attempt` (opening a stream on a connection to the destination),
    /// dialing first if there is no connection or it closed before the
    /// stream opened. `phase` says what a timeout interrupted.
    async fn on_connection<T, F>(
        &self,
        destination: &Destination,
        protocol: &StreamProtocol,
        deadline: Instant,
        timeout: Duration,
        mut attempt: impl FnMut() -> F,
        phase: impl Fn() -> Phase,
    ) -> Result<T, CallError>
    where
        F: Future<Output = Option<Result<T, OpenError>>>,
    {
        let peer = destination.peer();
        let mut dialed = false;
        loop {
            let opened = timeout_at(deadline, attempt())
                .await
                .map_err(|_| CallError::Timeout {
                    peer,
                    phase: phase(),
                    timeout,
                })?;
            match opened {
                Some(Ok(stream)) => return Ok(stream),
                Some(Err(OpenError::ConnectionClosed)) | None if !dialed => {}
                Some(Err(error)) => return Err(open_failed(peer, protocol, error, timeout)),
                None => {
                    return Err(open_failed(
                        peer,
                        protocol,
                        OpenError::ConnectionClosed,
                        timeout,
                    ));
                }
            }
            let addresses = self.addresses(destination, deadline, timeout).await?;
            self.dial(peer, addresses, deadline, timeout).await?;
            dialed = true;
            // A caller's address is noted in the book once it answered: a
            // typo or a dead peer is not kept (and redialed) for ever.
            if let Destination::Address { address, .. } = destination
                && !self.lookup.book.addresses(&peer).contains(address)
            {
                self.lookup
                    .learned(peer, vec![address.clone()], Source::Manual, None);
            }
        }
    }

    /// The addresses to dial for `destination`: the one it names, or those
    /// the lookup finds by `deadline`.
    async fn addresses(
        &self,
        destination: &Destination,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<Multiaddr>, CallError> {
        let peer = destination.peer();
        match destination {
            Destination::Address { address, .. } => Ok(vec![address.clone()]),
            Destination::Peer(_) => {
                let found = timeout_at(deadline, self.lookup.find(peer))
                    .await
                    .map_err(|_| CallError::Timeout {
                        peer,
                        phase: Phase::Dial,
                        timeout,
                    })?;
                if found.is_empty() {
                    return Err(CallError::NoAddress { peer });
                }
                Ok(found)
            }
        }
    }

    /// Connects to `peer` at `addresses` by `deadline`; `timeout` only names
    /// the budget in the error.
    async fn dial(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CallError> {
        // A dial through a relay needs a connection to the relay. The relay
        // client makes one itself, but its dial is dropped (the circuit dial
        // fails, "canceled") when another dial to the relay is under way,
        // say Kademlia's: connect to each relay first, as any peer.
        for (relay, address) in addresses.iter().filter_map(relay_of) {
            if relay != peer {
                let _ = self
                    .dial_once(relay, vec![address], deadline, timeout)
                    .await;
            }
        }
        self.dial_once(peer, addresses, deadline, timeout).await
    }

    async fn dial_once(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CallError> {
        let dial = async {
            ractor::call!(self.swarm, |reply: RpcReplyPort<_>| {
                Command::Dial {
                    peer,
                    addresses,
                    reply,
                }
            })
        };
        timeout_at(deadline, dial)
            .await
            .map_err(|_| CallError::Timeout {
                peer,
                phase: Phase::Dial,
                timeout,
            })?
            .map_err(|_| CallError::NodeStopped)?
            .map_err(|source| CallError::DialFailed { peer, source })
    }
}
