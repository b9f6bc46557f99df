//! `AddressBookActor`: the single writer of the address book.
//!
//! Sources cast it what they learned; it merges, confirms, demotes, expires
//! on a timer and evicts beyond its bound, and publishes each change on a
//! bounded broadcast channel. Readers use the shared
//! [`AddressBook`] view directly. When a [`Registry`] is configured, this actor
//! reads it periodically (one read at a time, off its own mailbox) and feeds
//! the book and the membership gate.

use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;

use crate::{
    address_book::{AddressBook, Config, Event, Source},
    registry::{Gate, Member, Registry, RegistryError},
};

/// Change events buffered per subscriber; a slower one misses the oldest.
pub const EVENT_BUFFER: usize = 1024;

/// What the `AddressBookActor` does.
#[derive(Debug)]
pub enum AddressBookMessage {
    /// Merge addresses a source learned.
    Add {
        /// The peer.
        peer: PeerId,
        /// Its addresses.
        addresses: Vec<Multiaddr>,
        /// Where they came from.
        source: Source,
        /// Its subnet node id, if the source knows it.
        subnet_node_id: Option<u64>,
    },
    /// A dial to `address` succeeded.
    Confirmed {
        /// The peer.
        peer: PeerId,
        /// The address that worked.
        address: Multiaddr,
    },
    /// Dials to these addresses failed.
    DialFailed {
        /// The peer.
        peer: PeerId,
        /// The addresses that failed.
        addresses: Vec<Multiaddr>,
    },
    /// Subscribe to change events.
    Subscribe {
        /// Answered with a receiver of every later change.
        reply: RpcReplyPort<broadcast::Receiver<Event>>,
    },
    /// Drop expired addresses (sent by the actor's own timer).
    Expire,
    /// Read the registry again (sent by the actor's own timer).
    RefreshRegistry,
    /// The outcome of a registry read.
    RegistryRead(Result<Vec<Member>, Arc<RegistryError>>),
}

/// What the `AddressBookActor` starts with.
pub struct AddressBookArguments {
    pub(crate) book: AddressBook,
    pub(crate) config: Config,
    pub(crate) registry: Option<Arc<dyn Registry>>,
    pub(crate) gate: Gate,
    pub(crate) local_peer: PeerId,
    pub(crate) metrics: crate::metrics::Metrics,
}

/// The state of the `AddressBookActor`.
pub struct AddressBookState {
    args: AddressBookArguments,
    events: broadcast::Sender<Event>,
    reading_registry: bool,
}

/// The single writer of the address book.
pub struct AddressBookActor;

impl Actor for AddressBookActor {
    type Msg = AddressBookMessage;
    type State = AddressBookState;
    type Arguments = AddressBookArguments;

    async fn pre_start(
        &self,
        myself: ActorRef<AddressBookMessage>,
        args: AddressBookArguments,
    ) -> Result<AddressBookState, ActorProcessingErr> {
        myself.send_interval(args.config.expiry_interval(), || AddressBookMessage::Expire);
        if args.registry.is_some() {
            myself.send_interval(args.config.registry_refresh(), || {
                AddressBookMessage::RefreshRegistry
            });
            myself.cast(AddressBookMessage::RefreshRegistry)?;
        }
        // The counter exists from the start, so that its rate is 0, not absent.
        args.metrics.address_book_expired(0);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(AddressBookState {
            args,
            events,
            reading_registry: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AddressBookMessage>,
        message: AddressBookMessage,
        state: &mut AddressBookState,
    ) -> Result<(), ActorProcessingErr> {
        let book = &state.args.book;
        let config = &state.args.config;
        match message {
            AddressBookMessage::Add {
                peer,
                addresses,
                source,
                subnet_node_id,
            } => {
                if peer != state.args.local_peer {
                    let events = book.merge(peer, addresses, source, subnet_node_id, config);
                    state.publish(events);
                }
            }
            AddressBookMessage::Confirmed { peer, address } => book.confirm(&peer, &address),
            AddressBookMessage::DialFailed { peer, addresses } => book.demote(&peer, &addresses),
            AddressBookMessage::Subscribe { reply } => {
                let _ = reply.send(state.events.subscribe());
            }
            AddressBookMessage::Expire => {
                let events = book.expire(config);
                state.publish(events);
                let counts = book.count_by_source();
                for source in Source::ALL {
                    let peers = counts.get(&source).copied().unwrap_or(0);
                    state.args.metrics.address_book_peers(source.name(), peers);
                }
            }
            AddressBookMessage::RefreshRegistry => {
                if let (Some(registry), false) = (&state.args.registry, state.reading_registry) {
                    state.reading_registry = true;
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        let read = registry.members().await.map_err(Arc::new);
                        let _ = myself.cast(AddressBookMessage::RegistryRead(read));
                    });
                }
            }
            AddressBookMessage::RegistryRead(read) => {
                state.reading_registry = false;
                match read {
                    Ok(members) => {
                        state
                            .args
                            .gate
                            .set_members(members.iter().map(|m| m.peer_id));
                        let mut events = Vec::new();
                        for member in members {
                            if member.peer_id == state.args.local_peer {
                                continue;
                            }
                            events.extend(book.merge(
                                member.peer_id,
                                member.addresses,
                                Source::Registry,
                                Some(member.subnet_node_id),
                                config,
                            ));
                        }
                        state.publish(events);
                    }
                    Err(error) => tracing::warn!("reading the registry failed: {error}"),
                }
            }
        }
        Ok(())
    }
}

impl AddressBookState {
    fn publish(&self, events: Vec<Event>) {
        for event in events {
            match &event {
                Event::PeerAdded { peer, source } => {
                    tracing::info!(%peer, "found peer {peer} via {source}");
                }
                Event::PeerExpired { peer } => {
                    self.args.metrics.address_book_expired(1);
                    tracing::info!(%peer, "peer {peer} left the address book");
                }
                Event::AddressAdded { .. } => {}
            }
            // No subscriber is fine: events are a convenience, the book is the truth.
            let _ = self.events.send(event);
        }
    }
}
