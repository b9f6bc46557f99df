//! Listening at start: each listen address bound, and the wait until every
//! listener reported its address (port 0 resolved), so that the node's
//! addresses are known when `NodeBuilder::build` returns. A wildcard
//! listener reports one address per interface: it is done once it reported
//! one other hosts can reach, or, on a machine that has only loopback,
//! shortly after its first (the event loop records any later ones).

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use libp2p::{Multiaddr, Swarm, TransportError, core::transport::ListenerId, swarm::SwarmEvent};
use tokio::time::Instant;

use super::{addresses::ListenAddresses, build::Behaviour};
use crate::{
    error::StartError,
    multiaddr::{is_local, is_unspecified},
};

/// Time the start waits for each listener to report its first address: 10 s.
pub(crate) const LISTEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Time a wildcard listener that reported only loopback or link-local
/// addresses is given to report one other hosts can reach: 250 ms.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Listens on every address of `listen` and waits until each reported its
/// address, recording them in `listen_addrs`.
pub(crate) async fn listen(
    swarm: &mut Swarm<Behaviour>,
    listen: &[Multiaddr],
    listen_addrs: &ListenAddresses,
) -> Result<(), StartError> {
    let mut listeners = bind(swarm, listen)?;
    let peer_id = *swarm.local_peer_id();
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let mut settled: Option<Instant> = None;
    let mut reported = HashSet::new();
    loop {
        if listeners.is_empty() {
            return Ok(());
        }
        let all_reported = |reported: &HashSet<ListenerId>, listeners: &HashMap<_, _>| {
            listeners.keys().all(|id| reported.contains(id))
        };
        if settled.is_some_and(|at| Instant::now() >= at) && all_reported(&reported, &listeners) {
            return Ok(());
        }
        let now = Instant::now();
        let wait = settled
            .filter(|at| *at > now)
            .map_or(deadline, |at| at.min(deadline));
        let Ok(event) = tokio::time::timeout_at(wait, swarm.select_next_some()).await else {
            if settled.is_some() && Instant::now() < deadline {
                continue;
            }
            if all_reported(&reported, &listeners) {
                return Ok(());
            }
            let (_, silent) = listeners
                .iter()
                .find(|(id, _)| !reported.contains(*id))
                .expect("one has not reported");
            return Err(StartError::ListenerFailed {
                address: silent.clone(),
                reason: format!("no address reported within {LISTEN_TIMEOUT:?}"),
            });
        };
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!("listening on {address}/p2p/{peer_id}");
                let reachable = !is_local(&address);
                listen_addrs.add(address);
                reported.insert(listener_id);
                let wildcard = listeners.get(&listener_id).is_some_and(is_unspecified);
                if reachable || !wildcard {
                    listeners.remove(&listener_id);
                } else {
                    settled.get_or_insert(Instant::now() + SETTLE);
                }
            }
            SwarmEvent::ListenerError { listener_id, error }
                if listeners.contains_key(&listener_id) =>
            {
                return Err(StartError::ListenerFailed {
                    address: listeners
                        .remove(&listener_id)
                        .unwrap_or_else(Multiaddr::empty),
                    reason: error.to_string(),
                });
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if listeners.contains_key(&listener_id) => {
                return Err(StartError::ListenerFailed {
                    address: listeners
                        .remove(&listener_id)
                        .unwrap_or_else(Multiaddr::empty),
                    reason: match reason {
                        Ok(()) => "the listener closed".to_owned(),
                        Err(error) => error.to_string(),
                    },
                });
            }
            SwarmEvent::ListenerClosed { addresses, .. } => {
                for address in &addresses {
                    listen_addrs.remove(address);
                }
            }
            _ => {}
        }
    }
}

/// Starts a listener on each address: which listener is which address.
fn bind(
    swarm: &mut Swarm<Behaviour>,
    listen: &[Multiaddr],
) -> Result<HashMap<ListenerId, Multiaddr>, StartError> {
    let mut listeners = HashMap::new();
    for address in listen {
        check_port_free(address).map_err(|source| StartError::Listen {
            address: address.clone(),
            source: TransportError::Other(source),
        })?;
        let id = swarm
            .listen_on(address.clone())
            .map_err(|source| match &source {
                TransportError::Other(e) if crate::error::is_out_of_descriptors(e) => {
                    StartError::out_of_descriptors(Some(address.clone()))
                }
                _ => StartError::Listen {
                    address: address.clone(),
                    source,
                },
            })?;
        listeners.insert(id, address.clone());
    }
    Ok(listeners)
}

/// Fails if another listener holds `address`'s TCP port. libp2p-tcp
/// listens with `SO_REUSEPORT` (so that hole punching can dial from the
/// listening port), and so does every other node: a second node on a port
/// one holds would bind it too, and the kernel would split incoming
/// connections between the two (callers of the first then reach the
/// second: "unexpected peer id"). A bind without `SO_REUSEPORT` (with
/// `SO_REUSEADDR`, so that connections in `TIME_WAIT` do not count; IPv6
/// only, as libp2p's own) fails while any listener holds the port; it is
/// closed at once. Port 0 and addresses other than
/// `/ip4|ip6/<ip>/tcp/<port>` are not checked.
fn check_port_free(address: &Multiaddr) -> std::io::Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = address.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    let address = std::net::SocketAddr::new(ip, port);
    let probe = || -> std::io::Result<()> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if address.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())
    };
    match probe() {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("port {port} is in use (another node or program listens on it)"),
        )),
        // Not ours to judge (no such address here, say): libp2p's own
        // listener reports it.
        Err(_) => Ok(()),
    }
}
