//! `Client<P>`: calls protocol `P` on other peers. A call encodes the
//! request, hands it down to `connect.rs` (which gets a connection, has it
//! run the exchange and names any failure), and decodes the response.

use std::sync::Arc;

use bytes::Bytes;
use libp2p::StreamProtocol;
use tokio::time::Instant;

use super::{connect::Connector, error::CallError};
use crate::{
    codec,
    destination::Destination,
    metrics::{Direction, Metrics, RequestMetrics},
    protocol::{Config, Protocol},
    streams::outbound::Transfer,
};

/// A call's response, and how the call went.
#[derive(Debug, Clone)]
pub struct Called<R> {
    /// The peer's response.
    pub response: R,
    /// Whether the call went over a relayed connection (`/p2p-circuit`);
    /// `false`: a direct one (one hole punching made, say).
    pub relayed: bool,
    /// How long the call took, dial and lookup included.
    pub elapsed: std::time::Duration,
}

/// Calls protocol `P` on other peers. Cloning is cheap.
pub struct Client<P> {
    connector: Arc<Connector>,
    config: Config,
    protocol: StreamProtocol,
    metrics: RequestMetrics,
    _protocol: std::marker::PhantomData<fn() -> P>,
}

impl<P> Clone for Client<P> {
    fn clone(&self) -> Self {
        Self {
            connector: self.connector.clone(),
            config: self.config.clone(),
            protocol: self.protocol.clone(),
            metrics: self.metrics.clone(),
            _protocol: std::marker::PhantomData,
        }
    }
}

impl<P: Protocol> std::fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("protocol", &self.protocol)
            .field("config", &self.config)
            .finish()
    }
}

impl<P: Protocol> Client<P> {
    pub(crate) fn new(connector: Arc<Connector>, metrics: &Metrics, config: Config) -> Self {
        let metrics = metrics.requests(P::ID, Direction::Outbound);
        metrics.preregister(&super::error::CALL_OUTCOMES);
        Self {
            metrics,
            connector,
            config,
            protocol: StreamProtocol::new(P::ID),
            _protocol: std::marker::PhantomData,
        }
    }

    /// The same client with other limits (for example a shorter timeout or
    /// a smaller maximum response).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The client's limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sends `request` to `destination` and returns its response, within
    /// the config's `call_timeout` (dial, open, write and read together).
    ///
    /// `destination` is a [`PeerId`](libp2p::PeerId) whose address the node
    /// knows or can find, a [`Multiaddr`](libp2p::Multiaddr) ending in
    /// `/p2p/<peer id>`, or the text of either.
    ///
    /// Cancel-safe: dropping the future abandons the call; a request not
    /// yet written is never sent, and one under way is reset.
    pub async fn call<D>(
        &self,
        destination: D,
        request: P::Request,
    ) -> Result<P::Response, CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        self.call_detailed(destination, request)
            .await
            .map(|called| called.response)
    }

    /// As [`Client::call`], and says how the call went: over a relayed
    /// connection or a direct one, and how long it took.
    pub async fn call_detailed<D>(
        &self,
        destination: D,
        request: P::Request,
    ) -> Result<Called<P::Response>, CallError>
    where
        D: TryInto<Destination>,
        D::Error: Into<CallError>,
    {
        let started = std::time::Instant::now();
        let _in_flight = self.metrics.in_flight();
        let result = match destination.try_into() {
            Ok(destination) => self.call_to(&destination, request).await,
            Err(error) => Err(error.into()),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        };
        let elapsed = started.elapsed();
        self.metrics.finished(outcome, elapsed);
        let (response, relayed) = result?;
        if relayed {
            self.metrics.relayed();
        }
        Ok(Called {
            response,
            relayed,
            elapsed,
        })
    }

    async fn call_to(
        &self,
        destination: &Destination,
        request: P::Request,
    ) -> Result<(P::Response, bool), CallError> {
        let max = self.config.max_request_frame();
        let len = prost::Message::encoded_len(&request);
        if len > max {
            return Err(CallError::RequestTooLarge { len, max });
        }
        let transfer = Transfer {
            max: self.config.max_frame(),
            stall: self.config.stall_timeout(),
        };
        let frame = Bytes::from(codec::encode_frame(&request));
        drop(request);
        let peer = destination.peer();
        let timeout = self.config.call_timeout();
        let deadline = Instant::now() + timeout;
        let (body, relayed) = self
            .connector
            .exchange(
                destination,
                &self.protocol,
                &frame,
                transfer,
                deadline,
                timeout,
            )
            .await?;
        self.metrics.frame_bytes(frame.len(), body.len());
        // From `Bytes`: `bytes` fields share the frame's buffer, no copy.
        let response = <P::Response as prost::Message>::decode(Bytes::from(body))
            .map_err(|source| CallError::Decode { peer, source })?;
        Ok((response, relayed))
    }
}
