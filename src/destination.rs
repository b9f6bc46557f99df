//! Where a call goes: a peer id, or a multiaddr ending in `/p2p/<peer id>`.
//!
//! Text destinations are read the way the Python subnet template reads them:
//! a trailing `/` is ignored and `/ipfs/` is taken as `/p2p/`.

use std::str::FromStr;

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// The target of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A peer whose address the node must already know.
    Peer(PeerId),
    /// A peer at an address.
    Address {
        /// The peer.
        peer: PeerId,
        /// Its address, without the `/p2p/<peer id>` part.
        address: Multiaddr,
    },
}

impl Destination {
    /// The peer this destination names.
    pub fn peer(&self) -> PeerId {
        match self {
            Destination::Peer(peer) | Destination::Address { peer, .. } => *peer,
        }
    }
}

/// Why a destination could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// Nothing was given.
    #[error("the destination is empty")]
    Empty,
    /// The text is neither a multiaddr nor a peer id.
    #[error("`{input}` is not a multiaddr or a peer id: {source}")]
    Malformed {
        /// The text given.
        input: String,
        /// The multiaddr parser's complaint.
        source: libp2p::multiaddr::Error,
    },
    /// The multiaddr does not end in `/p2p/<peer id>`.
    #[error("`{address}` has no /p2p/<peer id> part: the peer to call is unknown")]
    MissingPeerId {
        /// The address given.
        address: Multiaddr,
    },
}

impl From<PeerId> for Destination {
    fn from(peer: PeerId) -> Self {
        Destination::Peer(peer)
    }
}

impl TryFrom<Multiaddr> for Destination {
    type Error = DestinationError;

    fn try_from(mut address: Multiaddr) -> Result<Self, DestinationError> {
        match address.iter().last() {
            Some(Protocol::P2p(peer)) => {
                address.pop();
                Ok(Destination::Address { peer, address })
            }
            _ => Err(DestinationError::MissingPeerId { address }),
        }
    }
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(input: &str) -> Result<Self, DestinationError> {
        let trimmed = input.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(DestinationError::Empty);
        }
        if !trimmed.starts_with('/')
            && let Ok(peer) = trimmed.parse::<PeerId>()
        {
            return Ok(Destination::Peer(peer));
        }
        let address: Multiaddr = trimmed
            .replace("/ipfs/", "/p2p/")
            .parse()
            .map_err(|source| DestinationError::Malformed {
                input: input.to_owned(),
                source,
            })?;
        Destination::try_from(address)
    }
}

impl TryFrom<&str> for Destination {
    type Error = DestinationError;

    fn try_from(input: &str) -> Result<Self, DestinationError> {
        input.parse()
    }
}

impl TryFrom<&String> for Destination {
    type Error = DestinationError;

    fn try_from(input: &String) -> Result<Self, DestinationError> {
        input.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_destinations_like_the_python_template() {
        let peer = PeerId::random();
        let plain = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}");
        let expected = Destination::Address {
            peer,
            address: "/ip4/127.0.0.1/tcp/4001".parse().unwrap(),
        };
        assert_eq!(plain.parse::<Destination>().unwrap(), expected);
        assert_eq!(
            format!("{plain}/").parse::<Destination>().unwrap(),
            expected
        );
        let ipfs = format!("/ip4/127.0.0.1/tcp/4001/ipfs/{peer}");
        assert_eq!(ipfs.parse::<Destination>().unwrap(), expected);
        assert_eq!(
            peer.to_string().parse::<Destination>().unwrap(),
            Destination::Peer(peer)
        );
        assert!(matches!(
            "/ip4/127.0.0.1/tcp/4001".parse::<Destination>(),
            Err(DestinationError::MissingPeerId { .. })
        ));
        assert!(matches!(
            "not an address".parse::<Destination>(),
            Err(DestinationError::Malformed { .. })
        ));
        assert!(matches!(
            "".parse::<Destination>(),
            Err(DestinationError::Empty)
        ));
    }
}
