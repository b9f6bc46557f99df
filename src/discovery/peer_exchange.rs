//! Peer exchange, both sides: "do you know where peer X is?", asked of
//! connected peers.
//!
//! Protocol `/subnet/peer_exchange/1.0.0`, one `uvarint(len) || protobuf`
//! frame each way like every direct protocol: the request names a peer id,
//! the answer carries the addresses the responder's address book knows (or
//! none). The server side is a [`Protocol`] the node registers; the asking
//! side (`ask`) uses only connections that already exist, so finding a
//! peer never dials, and never needs to find, the peers it asks.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, stream::FuturesUnordered};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::time::{Instant, timeout_at};

use crate::{
    codec,
    context::RequestContext,
    discovery::address_book::AddressBook,
    error::HandlerError,
    metrics::Metrics,
    multiaddr::is_believable,
    protocol::{Config, Protocol, RateLimit},
    streams::{
        outbound::{Progress, Transfer},
        shared::Shared,
    },
};

include!(concat!(env!("OUT_DIR"), "/subnet.peer_exchange.rs"));

/// Addresses an answer carries at most; the asking side keeps no more.
/// The same cap applies to what identify and Kademlia answers bring.
pub const MAX_ANSWER_ADDRESSES: usize = 16;

/// Connected peers asked at once.
pub const FANOUT: usize = 3;

/// Largest peer-exchange frame: 16 KiB, room for [`MAX_ANSWER_ADDRESSES`]
/// addresses of any reasonable length.
pub const MAX_FRAME: usize = 16 * 1024;

/// Largest peer-exchange request: 256 bytes (a peer id is at most 42).
pub const MAX_REQUEST_FRAME: usize = 256;

/// Requests one peer may start per second on average (bursts of
/// [`RATE_BURST`]): a lookup asks [`FANOUT`] neighbours once.
pub const RATE_PER_SECOND: u32 = 64;

/// The largest burst of requests of one peer (a node looking up many
/// peers at once).
pub const RATE_BURST: u32 = 256;

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
        tracing::debug!(request = %ctx.id, asker = %ctx.peer, sought = %peer, found = addresses.len(), "peer exchange");
        Ok(PeerExchangeResponse {
            addresses,
            subnet_node_id: record.and_then(|r| r.subnet_node_id).unwrap_or(0),
        })
    }

    fn config() -> Config {
        let limit = RateLimit::per_second(NonZeroU32::new(RATE_PER_SECOND).expect("not zero"))
            .with_burst(NonZeroU32::new(RATE_BURST).expect("not zero"));
        Config::default()
            .with_max_frame(MAX_FRAME)
            .with_max_request_frame(MAX_REQUEST_FRAME)
            .with_request_timeout(Duration::from_secs(5))
            .with_max_concurrent_per_peer(16)
            .with_max_pending_per_peer(48)
            .with_rate_limit(limit)
    }
}

/// Reads a neighbour's answer (`body`, the response frame's protobuf): at
/// most [`MAX_ANSWER_ADDRESSES`] addresses taken, those that do not parse or
/// cannot be the peer's dropped (from a neighbour on another host, `local`
/// false, loopback and link-local addresses are its host's). `None` if the
/// body is not a `PeerExchangeResponse`.
pub(crate) fn parse_answer(body: Bytes, from: PeerId, local: bool) -> Option<Answer> {
    let answer: PeerExchangeResponse = prost::Message::decode(body).ok()?;
    let addresses = answer
        .addresses
        .into_iter()
        .take(MAX_ANSWER_ADDRESSES)
        .filter_map(|a| Multiaddr::try_from(a).ok())
        .filter(|a| is_believable(a, local))
        .collect();
    Some(Answer {
        addresses,
        subnet_node_id: (answer.subnet_node_id != 0).then_some(answer.subnet_node_id),
        from,
    })
}

/// What a neighbour answered: where the peer lives, and its subnet node id
/// if the neighbour knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) addresses: Vec<Multiaddr>,
    pub(crate) subnet_node_id: Option<u64>,
    /// The neighbour that answered.
    pub(crate) from: PeerId,
}

/// Asks up to [`FANOUT`] of `neighbours` at once, over their existing
/// connections only, where `peer` lives, until `deadline`; the first answer
/// with an address wins. Failed or empty answers are skipped.
pub(crate) async fn ask(
    shared: &Arc<Shared>,
    metrics: &Metrics,
    neighbours: Vec<PeerId>,
    peer: PeerId,
    deadline: Instant,
) -> Option<Answer> {
    let frame = Bytes::from(codec::encode_frame(&PeerExchangeRequest {
        peer_id: peer.to_bytes(),
    }));
    let protocol = StreamProtocol::new(PeerExchange::ID);
    let config = <PeerExchange as Protocol>::config();
    let transfer = Transfer {
        max: config.max_frame(),
        stall: config.stall_timeout(),
    };
    let mut answers: FuturesUnordered<_> = neighbours
        .into_iter()
        .filter(|n| *n != peer)
        .take(FANOUT)
        .map(|neighbour| {
            let (shared, protocol, frame) = (shared.clone(), protocol.clone(), frame.clone());
            async move {
                let progress = Arc::new(Progress::default());
                // `None`: no connection left to that neighbour; skip it.
                let body = shared
                    .connections
                    .exchange(neighbour, &protocol, &frame, transfer, &progress)
                    .await?
                    .ok()?
                    .ok()?;
                let local = shared.connections.is_local(&neighbour);
                parse_answer(Bytes::from(body), neighbour, local)
            }
        })
        .collect();
    let asked = async {
        while let Some(answer) = answers.next().await {
            let Some(answer) = answer else {
                // No answer (no connection left, a refusal, a bad frame):
                // counted as asked and not found.
                metrics.peer_exchange(true, false);
                continue;
            };
            metrics.peer_exchange(true, !answer.addresses.is_empty());
            if !answer.addresses.is_empty() {
                return Some(answer);
            }
        }
        None
    };
    timeout_at(deadline, asked).await.ok().flatten()
}
