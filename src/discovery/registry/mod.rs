//! The registry: the subnet's members as an authority lists them.
//!
//! On a chain-backed subnet, nodes publish their peer id and multiaddrs on
//! chain; a [`Registry`] implementation reads them (for example from
//! Hypertensor's `network_getSubnetNodesInfo`). The embedded default is
//! [`FileRegistry`], a TOML file the nodes of a local subnet share:
//!
//! ```toml
//! [[members]]
//! peer_id = "12D3KooW..."
//! subnet_node_id = 1
//! addresses = ["/ip4/127.0.0.1/tcp/4001"]
//! ```
//!
//! [`hypertensor::HypertensorRegistry`] reads the Hypertensor chain (cargo
//! feature `chain`, on by default).
//!
//! Files: `mod.rs` ([`Member`], [`Registry`], [`FileRegistry`]), and
//! `hypertensor/`: `mod.rs` (the chain registry, its config and
//! [`ChainError`](hypertensor::ChainError)), `rpc.rs` (the JSON-RPC
//! client), `layout.rs` (the SCALE layouts of the answers), `members.rs`
//! (a read decoded into a snapshot, the snapshot into members) and
//! `addresses.rs` (which multiaddrs the chain takes and another node could
//! dial).
//!
//! A registry is read by the address book actor, which feeds the book with
//! source `registry` and, when membership gating is on, the gate.

use std::path::{Path, PathBuf};

#[cfg(feature = "chain")]
pub mod hypertensor;

use std::{panic::AssertUnwindSafe, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// One member of the subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its subnet node id.
    pub subnet_node_id: u64,
    /// Where it listens.
    pub addresses: Vec<Multiaddr>,
}

/// Why the registry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry file could not be read.
    #[error("cannot read the registry file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The registry file is not valid TOML of the expected shape.
    #[error("the registry file {path} is malformed: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        source: Box<toml::de::Error>,
    },
    /// A member's peer id does not parse.
    #[error("member {index} of the registry has an invalid peer id `{peer_id}`")]
    PeerId {
        /// The member's position.
        index: usize,
        /// The text given.
        peer_id: String,
    },
    /// A member's address does not parse.
    #[error("member {index} of the registry has an invalid multiaddr `{address}`")]
    Address {
        /// The member's position.
        index: usize,
        /// The text given.
        address: String,
    },
    /// The read took longer than the address book's registry timeout.
    #[error("reading the registry took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// The backend panicked while reading.
    #[error("the registry backend panicked: {0}")]
    Panicked(String),
    /// The chain could not be read.
    #[cfg(feature = "chain")]
    #[error("reading the chain failed: {0}")]
    Chain(#[source] hypertensor::ChainError),
    /// A backend of another kind (a chain client, say) failed.
    #[error("the registry backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A source of the subnet's members. Implement it to read a chain; the
/// actors only ever call [`Registry::members`].
pub trait Registry: Send + Sync + 'static {
    /// The current members.
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, RegistryError>>;

    /// Whether [`Registry::check`] can be asked about a single peer (the
    /// chain's `network_proofOfStake`, say): gating then asks it about a
    /// peer that [`Registry::members`] does not list, instead of refusing
    /// it outright. `false` by default.
    fn checks_peers(&self) -> bool {
        false
    }

    /// Whether `peer` is a member, asked about this one peer (called only
    /// if [`Registry::checks_peers`]). `Ok(false)` by default.
    fn check(&self, peer: PeerId) -> BoxFuture<'_, Result<bool, RegistryError>> {
        let _ = peer;
        Box::pin(async { Ok(false) })
    }
}

/// A registry kept in a local TOML file.
#[derive(Debug, Clone)]
pub struct FileRegistry {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    members: Vec<FileMember>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMember {
    peer_id: String,
    #[serde(default)]
    subnet_node_id: u64,
    #[serde(default)]
    addresses: Vec<String>,
}

impl FileRegistry {
    /// A registry read from `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `members` to the file, replacing it.
    pub fn write(&self, members: &[Member]) -> std::io::Result<()> {
        let file = File {
            members: members
                .iter()
                .map(|m| FileMember {
                    peer_id: m.peer_id.to_string(),
                    subnet_node_id: m.subnet_node_id,
                    addresses: m.addresses.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
        };
        let text = toml::to_string(&file).map_err(std::io::Error::other)?;
        std::fs::write(&self.path, text)
    }

    /// Parses the registry file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Vec<Member>, RegistryError> {
        let file: File = toml::from_str(text).map_err(|source| RegistryError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        file.members
            .into_iter()
            .enumerate()
            .map(|(index, m)| {
                let peer_id = m.peer_id.parse().map_err(|_| RegistryError::PeerId {
                    index,
                    peer_id: m.peer_id.clone(),
                })?;
                let addresses = m
                    .addresses
                    .iter()
                    .map(|a| {
                        a.parse().map_err(|_| RegistryError::Address {
                            index,
                            address: a.clone(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Member {
                    peer_id,
                    subnet_node_id: m.subnet_node_id,
                    addresses,
                })
            })
            .collect()
    }
}

impl Registry for FileRegistry {
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, RegistryError>> {
        Box::pin(async move {
            let text = tokio::fs::read_to_string(&self.path)
                .await
                .map_err(|source| RegistryError::Read {
                    path: self.path.clone(),
                    source,
                })?;
            Self::parse(&self.path, &text)
        })
    }
}

/// Reads `registry` once, within `timeout`: a read that hangs past it, or
/// panics, fails like any other ([`RegistryError::Timeout`],
/// [`RegistryError::Panicked`]).
pub(crate) async fn read_within(
    registry: &dyn Registry,
    timeout: Duration,
) -> Result<Vec<Member>, RegistryError> {
    // Inside the async block, so that a panic before the backend's future
    // exists is caught too.
    let read = AssertUnwindSafe(async move { registry.members().await }).catch_unwind();
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(panic)) => Err(RegistryError::Panicked(panic_message(&panic))),
        Err(_) => Err(RegistryError::Timeout(timeout)),
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_entries() {
        let dir = std::env::temp_dir().join(format!("subnet-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = FileRegistry::new(dir.join("registry.toml"));
        let member = Member {
            peer_id: PeerId::random(),
            subnet_node_id: 3,
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
        };
        registry.write(std::slice::from_ref(&member)).unwrap();
        let text = std::fs::read_to_string(registry.path()).unwrap();
        assert_eq!(
            FileRegistry::parse(registry.path(), &text).unwrap(),
            vec![member]
        );

        let bad_peer = "[[members]]\npeer_id = \"nope\"\n";
        assert!(matches!(
            FileRegistry::parse(registry.path(), bad_peer),
            Err(RegistryError::PeerId { index: 0, .. })
        ));
        let unknown_key = "[[members]]\npeer_id = \"x\"\ncolour = 1\n";
        assert!(matches!(
            FileRegistry::parse(registry.path(), unknown_key),
            Err(RegistryError::Parse { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
