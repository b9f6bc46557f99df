//! AutoNAT v2's server side, kept from dialing where a remote peer must not
//! make the node dial. The server dials a peer back at an address the peer
//! names (after the peer sent 30–100 kB when the address is not the one
//! its connection comes from); this wrapper refuses, before any packet is
//! sent, an address on this host or its link (loopback, link-local,
//! unspecified, multicast), a DNS name (resolved who knows where), and a
//! relay circuit. A node whose own addresses are all local (a subnet on one
//! machine) may dial back local addresses, as there they are its peers'.
//! A refused dial back answers the asking peer "dial failed".

use std::{
    collections::HashSet,
    task::{Context, Poll},
};

use libp2p::{
    Multiaddr, PeerId, autonat,
    core::{Endpoint, transport::PortUse},
    multiaddr::Protocol,
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
};

use super::addresses::ListenAddresses;
use crate::multiaddr::is_circuit;

type Server = autonat::v2::server::Behaviour;

/// The AutoNAT v2 server, with its dial backs checked.
pub(crate) struct DialBackGuard {
    inner: Server,
    addresses: ListenAddresses,
    /// The server's dials not yet checked (the swarm checks a dial as soon
    /// as it is asked for it, so this holds a few at most).
    dials: HashSet<ConnectionId>,
}

impl DialBackGuard {
    pub(crate) fn new(addresses: ListenAddresses) -> Self {
        Self {
            inner: Server::default(),
            addresses,
            dials: HashSet::new(),
        }
    }
}

/// Why a dial back was refused.
#[derive(Debug, thiserror::Error)]
#[error("AutoNAT dial back refused: {0} is not an address another host may make this node dial")]
struct Refused(Multiaddr);

/// Whether the server may dial `address` back; `one_machine`: the node's
/// own addresses are all loopback or link-local.
pub(crate) fn may_dial_back(address: &Multiaddr, one_machine: bool) -> bool {
    if is_circuit(address) {
        return false;
    }
    match address.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            let local = ip.is_loopback() || ip.is_link_local();
            !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast())
                && (one_machine || !local)
        }
        Some(Protocol::Ip6(ip)) => {
            let local = ip.is_loopback() || (ip.segments()[0] & 0xffc0) == 0xfe80;
            !(ip.is_unspecified() || ip.is_multicast()) && (one_machine || !local)
        }
        _ => false,
    }
}

impl NetworkBehaviour for DialBackGuard {
    type ConnectionHandler = THandler<Server>;
    type ToSwarm = <Server as NetworkBehaviour>::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if self.dials.remove(&connection_id) {
            let one_machine = self.addresses.one_machine();
            if let Some(refused) = addresses.iter().find(|a| !may_dial_back(a, one_machine)) {
                tracing::debug!("{}", Refused(refused.clone()));
                return Err(ConnectionDenied::new(Refused(refused.clone())));
            }
        }
        self.inner.handle_pending_outbound_connection(
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
        self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::DialFailure(failure) = &event {
            self.dials.remove(&failure.connection_id);
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        let event = self.inner.poll(cx);
        if let Poll::Ready(ToSwarm::Dial { opts }) = &event {
            self.dials.insert(opts.connection_id());
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(address: &str, one_machine: bool) -> bool {
        may_dial_back(&address.parse().unwrap(), one_machine)
    }

    #[test]
    fn a_remote_peer_cannot_make_the_node_dial_its_own_host_or_a_name() {
        assert!(may("/ip4/10.201.0.100/tcp/4001", false));
        assert!(may("/ip6/2001:db8::1/udp/4001/quic-v1", false));
        for local in [
            "/ip4/127.0.0.1/tcp/22",
            "/ip4/169.254.169.254/tcp/80",
            "/ip6/::1/tcp/4001",
            "/ip6/fe80::1/tcp/4001",
        ] {
            assert!(!may(local, false), "{local}");
            assert!(may(local, true), "{local} on one machine");
        }
        for never in [
            "/ip4/0.0.0.0/tcp/4001",
            "/ip4/224.0.0.1/tcp/4001",
            "/ip4/255.255.255.255/tcp/4001",
            "/dns4/metadata.internal/tcp/80",
            "/ip4/10.201.0.2/tcp/4001/p2p/12D3KooWJJkvSrYEar1ExCAZ894TCQwhaGsCcNGTjDX4FgSV3J6R/p2p-circuit",
        ] {
            assert!(!may(never, true), "{never}");
        }
    }
}
