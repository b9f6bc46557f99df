//! Noise under other protocol names.
//!
//! The Python subnet template, with its proof-of-stake check on (its
//! default), offers Noise under the name `/pos-transport/1.0.0` instead of
//! `/noise`: the handshake is Noise, the stake check happens on the Python
//! side after it. [`NamedNoise`] is libp2p's Noise offered and accepted
//! under a configurable list of names, so a Rust node can connect to
//! Python nodes in either mode.

use libp2p::{
    core::{
        UpgradeInfo,
        upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade},
    },
    identity::Keypair,
    noise,
};

/// The name rust-libp2p and py-libp2p give Noise.
pub const NOISE: &str = "/noise";
/// The name the Python template gives Noise when its proof-of-stake check is on.
pub const POS_TRANSPORT: &str = "/pos-transport/1.0.0";

/// Noise, negotiated under `names` (in order of preference when dialing).
#[derive(Clone)]
pub struct NamedNoise {
    inner: noise::Config,
    names: Vec<&'static str>,
}

impl std::fmt::Debug for NamedNoise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedNoise")
            .field("names", &self.names)
            .finish()
    }
}

impl NamedNoise {
    /// Noise for `keypair` under `names`.
    pub fn new(keypair: &Keypair, names: Vec<&'static str>) -> Result<Self, noise::Error> {
        Ok(Self {
            inner: noise::Config::new(keypair)?,
            names,
        })
    }
}

impl UpgradeInfo for NamedNoise {
    type Info = &'static str;
    type InfoIter = std::vec::IntoIter<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.names.clone().into_iter()
    }
}

impl<T> InboundConnectionUpgrade<T> for NamedNoise
where
    noise::Config: InboundConnectionUpgrade<T, Info = &'static str>,
{
    type Output = <noise::Config as InboundConnectionUpgrade<T>>::Output;
    type Error = <noise::Config as InboundConnectionUpgrade<T>>::Error;
    type Future = <noise::Config as InboundConnectionUpgrade<T>>::Future;

    fn upgrade_inbound(self, socket: T, _: Self::Info) -> Self::Future {
        self.inner.upgrade_inbound(socket, NOISE)
    }
}

impl<T> OutboundConnectionUpgrade<T> for NamedNoise
where
    noise::Config: OutboundConnectionUpgrade<T, Info = &'static str>,
{
    type Output = <noise::Config as OutboundConnectionUpgrade<T>>::Output;
    type Error = <noise::Config as OutboundConnectionUpgrade<T>>::Error;
    type Future = <noise::Config as OutboundConnectionUpgrade<T>>::Future;

    fn upgrade_outbound(self, socket: T, _: Self::Info) -> Self::Future {
        self.inner.upgrade_outbound(socket, NOISE)
    }
}
