//! The `NetworkBehaviour` of the direct protocols: it admits or denies each
//! established connection (membership gating) and registers its handler's
//! request channel with the shared connections, where callers find it.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId,
    core::{Endpoint, transport::PortUse},
    swarm::{
        CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm,
    },
};
use tokio::sync::Semaphore;

use super::{
    admission::MAX_INBOUND_STREAMS_PER_CONNECTION, gate::Gate, handler::Handler, shared::Shared,
};
use crate::multiaddr::{is_circuit, is_local};

/// Why a connection was refused: membership gating is on and the peer is
/// not in the registry.
#[derive(Debug, thiserror::Error)]
#[error("peer {0} is not a member of the subnet")]
pub struct NotMember(pub PeerId);

/// Why a connection was refused: the peer is banned
/// ([`crate::reputation`]).
#[derive(Debug, thiserror::Error)]
#[error("peer {0} is banned")]
pub struct Banned(pub PeerId);

/// The behaviour: registers each connection's handler with the shared
/// connections; refuses banned peers and closes their connections.
#[derive(Debug)]
pub(crate) struct Behaviour {
    shared: Arc<Shared>,
    gate: Gate,
}

impl Behaviour {
    pub(crate) fn new(shared: Arc<Shared>, gate: Gate) -> Self {
        Self { shared, gate }
    }

    /// `relayed`: the connection runs through a relay (its local address,
    /// inbound, or its remote address, outbound, is a circuit).
    fn handler(
        &self,
        id: ConnectionId,
        peer: PeerId,
        remote: Multiaddr,
        relayed: bool,
    ) -> Result<Handler, ConnectionDenied> {
        if self.shared.reputation.is_banned(&peer) {
            tracing::debug!(%peer, "connection refused: banned");
            return Err(ConnectionDenied::new(Banned(peer)));
        }
        if !self.gate.admits(&peer) {
            tracing::debug!(%peer, "connection refused: not a member");
            return Err(ConnectionDenied::new(NotMember(peer)));
        }
        let local = is_local(&remote);
        let inbound = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS_PER_CONNECTION));
        let requests = self
            .shared
            .connections
            .insert(peer, id, local, relayed, inbound.clone());
        Ok(Handler::new(
            self.shared.clone(),
            peer,
            remote,
            relayed,
            requests,
            inbound,
        ))
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(id, peer, remote_addr.clone(), is_circuit(local_addr))
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.handler(id, peer, addr.clone(), is_circuit(addr))
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _id: ConnectionId,
        peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        match peer {
            Some(peer) if self.shared.reputation.is_banned(&peer) => {
                Err(ConnectionDenied::new(Banned(peer)))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(closed) = event {
            self.shared
                .connections
                .remove(&closed.peer_id, closed.connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        let close = |peer_id| ToSwarm::CloseConnection {
            peer_id,
            connection: CloseConnection::All,
        };
        // Banned peers, then peers the registry no longer lists.
        if let Poll::Ready(peer) = self.shared.reputation.poll_disconnect(cx) {
            return Poll::Ready(close(peer));
        }
        let connections = &self.shared.connections;
        self.gate
            .poll_revoked(cx, || connections.connected_peers())
            .map(close)
    }
}
