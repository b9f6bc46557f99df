//! Where an address was learned ([`Source`]), and how far the book trusts
//! each source when it must make room.

/// Where an address was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The subnet's registry (on chain, or the local registry file).
    Registry,
    /// A validated, signed heartbeat gossiped by the peer itself.
    Heartbeat,
    /// A connected peer answered a peer-exchange question.
    PeerExchange,
    /// The peer's identify message on a direct connection.
    Identify,
    /// A Kademlia lookup.
    Kademlia,
    /// Given explicitly: a call by multiaddr, or `Node::add_address`.
    Manual,
}

impl Source {
    /// Every source, in order.
    pub const ALL: [Source; 6] = [
        Source::Registry,
        Source::Heartbeat,
        Source::PeerExchange,
        Source::Identify,
        Source::Kademlia,
        Source::Manual,
    ];

    /// A short lowercase name, for logs, metrics and tables.
    pub fn name(self) -> &'static str {
        match self {
            Source::Registry => "registry",
            Source::Heartbeat => "heartbeat",
            Source::PeerExchange => "peer_exchange",
            Source::Identify => "identify",
            Source::Kademlia => "kademlia",
            Source::Manual => "manual",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Source {
    /// The registry, as opposed to what peers tell (and to the operator's
    /// explicit addresses, which stay within the book's bound).
    pub fn is_protected(self) -> bool {
        matches!(self, Source::Registry)
    }

    /// How far the book trusts the source, for eviction: a peer only makes
    /// room for a newcomer of at least its own trust. The registry (2) is
    /// never evicted; the operator's addresses (1: bootstrap peers,
    /// `Node::add_address`, calls by multiaddr) only for more of the
    /// operator's; what peers tell (0: heartbeats, peer exchange,
    /// identify, Kademlia) for anyone.
    pub fn trust(self) -> u8 {
        match self {
            Source::Registry => 2,
            Source::Manual => 1,
            _ => 0,
        }
    }
}
