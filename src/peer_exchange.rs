//! Peer exchange: "do you know where peer X is?", asked of connected peers.
//!
//! Protocol `/subnet/peer_exchange/1.0.0`, built on the framework's own
//! [`Protocol`] trait: the request names a peer id, the answer carries the
//! addresses the responder's address book knows (or none).

use libp2p::PeerId;

use crate::{HandlerError, Protocol, RequestContext, address_book::AddressBook, metrics::Metrics};

include!(concat!(env!("OUT_DIR"), "/subnet.peer_exchange.rs"));

/// Addresses an answer carries at most.
pub const MAX_ANSWER_ADDRESSES: usize = 16;

/// Serves peer-exchange questions from the node's address book.
#[derive(Debug, Clone)]
pub struct PeerExchange {
    book: AddressBook,
    metrics: Metrics,
}

impl PeerExchange {
    /// Answers from `book`, counting answers in `metrics`.
    pub fn new(book: AddressBook, metrics: Metrics) -> Self {
        Self { book, metrics }
    }
}

impl Protocol for PeerExchange {
    const ID: &'static str = "/subnet/peer_exchange/1.0.0";
    type Request = PeerExchangeRequest;
    type Response = PeerExchangeResponse;

    async fn handle(
        &self,
        ctx: RequestContext,
        request: PeerExchangeRequest,
    ) -> Result<PeerExchangeResponse, HandlerError> {
        let peer = PeerId::from_bytes(&request.peer_id).map_err(HandlerError::new)?;
        let record = self.book.lookup(&peer);
        let addresses: Vec<Vec<u8>> = record
            .as_ref()
            .map(|r| {
                r.addresses
                    .iter()
                    .take(MAX_ANSWER_ADDRESSES)
                    .map(|e| e.address.to_vec())
                    .collect()
            })
            .unwrap_or_default();
        self.metrics.peer_exchange(false, !addresses.is_empty());
        tracing::debug!(asker = %ctx.peer, sought = %peer, found = addresses.len(), "peer exchange");
        Ok(PeerExchangeResponse {
            addresses,
            subnet_node_id: record.and_then(|r| r.subnet_node_id).unwrap_or(0),
        })
    }
}
