//! The admin protocol: a running node tells what its address book holds.
//!
//! Protocol `/subnet/admin/peers/1.0.0`, built on the framework's own
//! [`Protocol`] trait. It answers only callers connected from a loopback
//! address (the operator's own machine), and refuses everyone else.

use std::num::NonZeroU32;

use crate::{
    context::RequestContext,
    discovery::address_book::AddressBook,
    error::HandlerError,
    multiaddr::is_loopback,
    protocol::{Config, Protocol, RateLimit},
};

/// Largest admin request: 1 KiB (the request is empty). Responses keep
/// the default 4 MiB: a full address book.
pub const MAX_REQUEST_FRAME: usize = 1024;

include!(concat!(env!("OUT_DIR"), "/subnet.admin.rs"));

/// Serves the address book to local callers.
#[derive(Debug, Clone)]
pub struct Admin {
    book: AddressBook,
    local_peer: libp2p::PeerId,
}

impl Admin {
    /// Answers from `book`, as `local_peer`.
    pub fn new(book: AddressBook, local_peer: libp2p::PeerId) -> Self {
        Self { book, local_peer }
    }
}

impl Protocol for Admin {
    const ID: &'static str = "/subnet/admin/peers/1.0.0";
    type Request = PeersRequest;
    type Response = PeersResponse;

    /// Small requests, four at a time and ten a second per peer (an
    /// operator's command, not traffic).
    fn config() -> Config {
        let limit = RateLimit::per_second(NonZeroU32::new(10).expect("not zero"));
        Config::default()
            .with_max_request_frame(MAX_REQUEST_FRAME)
            .with_max_concurrent_per_peer(4)
            .with_max_pending_per_peer(4)
            .with_rate_limit(limit)
    }

    async fn handle(
        &self,
        ctx: RequestContext,
        _request: PeersRequest,
    ) -> Result<PeersResponse, HandlerError> {
        if !ctx.remote_addr.as_ref().is_some_and(is_loopback) {
            return Err(HandlerError::new(format!(
                "admin request from {} refused: not a loopback address",
                ctx.peer
            )));
        }
        let now = std::time::Instant::now();
        let mut peers: Vec<Peer> = self
            .book
            .peers()
            .into_iter()
            .filter_map(|peer| {
                let record = self.book.lookup(&peer)?;
                Some(Peer {
                    peer_id: peer.to_string(),
                    subnet_node_id: record.subnet_node_id.unwrap_or(0),
                    found_via: record.found_via.name().to_owned(),
                    addresses: record
                        .addresses
                        .iter()
                        .map(|e| Address {
                            address: e.address.to_string(),
                            source: e.source.name().to_owned(),
                            age_ms: now.duration_since(e.confirmed).as_millis() as u64,
                        })
                        .collect(),
                })
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        Ok(PeersResponse {
            peer_id: self.local_peer.to_string(),
            peers,
        })
    }
}
