//! The JSON-RPC 2.0 client of the chain node: one URL, HTTP(S) or
//! WebSocket, and the three `network_*` methods the registry asks, each
//! within the configured timeout. What the answers mean is decoded
//! elsewhere (`layout.rs`, `members.rs`); failures become [`ChainError`]s
//! here.

use std::{sync::Arc, time::Duration};

use jsonrpsee::{
    core::{ClientError, client::ClientT, params::ArrayParams},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
    ws_client::{WsClient, WsClientBuilder},
};
use libp2p::PeerId;
use serde::de::DeserializeOwned;

use super::{ChainError, MAX_RESPONSE_SIZE, layout::NodeClass, short};

/// A chain node's JSON-RPC endpoint.
pub(super) struct Client {
    url: String,
    timeout: Duration,
    http: Option<HttpClient>,
    /// The WebSocket client, connected on first use and again after it
    /// disconnected.
    ws: tokio::sync::Mutex<Option<Arc<WsClient>>>,
}

impl Client {
    /// A client of `url` (`http(s)://` or `ws(s)://`), each call within
    /// `timeout`; nothing is asked yet.
    pub(super) fn new(url: &str, timeout: Duration) -> Result<Self, ChainError> {
        let http = if url.starts_with("http://") || url.starts_with("https://") {
            Some(
                HttpClientBuilder::default()
                    .request_timeout(timeout)
                    .max_response_size(MAX_RESPONSE_SIZE)
                    .build(url)
                    .map_err(|e| ChainError::Connect {
                        url: url.to_owned(),
                        reason: e.to_string(),
                    })?,
            )
        } else if url.starts_with("ws://") || url.starts_with("wss://") {
            None
        } else {
            return Err(ChainError::Url(url.to_owned()));
        };
        Ok(Self {
            url: url.to_owned(),
            timeout,
            http,
            ws: tokio::sync::Mutex::new(None),
        })
    }

    /// The SCALE bytes of subnet `subnet`'s node list
    /// (`network_getSubnetNodesInfo`) and of its bootnodes
    /// (`network_getBootnodes`).
    pub(super) async fn read(&self, subnet: u32) -> Result<(Vec<u8>, Vec<u8>), ChainError> {
        // Both at once: a read takes one call's time, within the address
        // book's registry timeout.
        futures::try_join!(
            self.call("network_getSubnetNodesInfo", rpc_params![subnet]),
            self.call("network_getBootnodes", rpc_params![subnet]),
        )
    }

    /// The chain's `network_proofOfStake` answer about `peer` in `subnet`.
    pub(super) async fn proof_of_stake(
        &self,
        subnet: u32,
        peer: &PeerId,
        min_class: NodeClass,
    ) -> Result<bool, ChainError> {
        let peer_id = peer.to_base58().into_bytes();
        self.call(
            "network_proofOfStake",
            rpc_params![subnet, peer_id, min_class as u8],
        )
        .await
    }

    /// One JSON-RPC call, within the configured timeout.
    async fn call<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: ArrayParams,
    ) -> Result<R, ChainError> {
        let after = self.timeout;
        let call = async {
            let answer = match &self.http {
                Some(http) => http.request(method, params).await,
                None => self.websocket().await?.request(method, params).await,
            };
            answer.map_err(|e| match e {
                ClientError::RequestTimeout => ChainError::Timeout { method, after },
                ClientError::Transport(e) => ChainError::Connect {
                    url: self.url.clone(),
                    reason: e.to_string(),
                },
                ClientError::RestartNeeded(e) => ChainError::Connect {
                    url: self.url.clone(),
                    reason: e.to_string(),
                },
                e => ChainError::Rpc {
                    method,
                    reason: short(&e),
                },
            })
        };
        tokio::time::timeout(after, call)
            .await
            .unwrap_or(Err(ChainError::Timeout { method, after }))
    }

    /// The WebSocket client, connecting (again) if it is not connected.
    async fn websocket(&self) -> Result<Arc<WsClient>, ChainError> {
        let mut ws = self.ws.lock().await;
        if let Some(client) = ws.as_ref().filter(|c| c.is_connected()) {
            return Ok(client.clone());
        }
        let client = WsClientBuilder::default()
            .request_timeout(self.timeout)
            .connection_timeout(self.timeout)
            .max_response_size(MAX_RESPONSE_SIZE)
            .build(&self.url)
            .await
            .map_err(|e| ChainError::Connect {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let client = Arc::new(client);
        *ws = Some(client.clone());
        Ok(client)
    }
}
