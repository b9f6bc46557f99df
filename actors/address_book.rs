//! `AddressBookActor`: the single writer of the address book.
//!
//! Sources cast it what they learned; it merges, confirms, demotes, expires
//! on a timer and evicts beyond its bound, and publishes each change on a
//! bounded broadcast channel. Readers use the shared
//! [`AddressBook`] view directly. When a [`Registry`] is configured, this actor
//! reads it periodically (one read at a time, off its own mailbox) and feeds
//! the book and the membership gate. A read that hangs past the book's
//! `registry_timeout`, or panics, counts as a failed read: the next refresh
//! tries again, and the book and the gate keep what the last good read gave.

use std::{sync::Arc, time::Instant};

use libp2p::PeerId;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;

use crate::{
    discovery::{
        address_book::{AddressBook, Config, Event, Source, Update},
        registry::{self, Member, Registry, RegistryError},
    },
    metrics::Metrics,
    streams::gate::Gate,
};

/// Change events buffered per subscriber; a slower one misses the oldest.
pub const EVENT_BUFFER: usize = 1024;

/// What the `AddressBookActor` does.
#[derive(Debug)]
pub enum AddressBookMessage {
    /// What a source learned, or how a dial went.
    Update(Update),
    /// Subscribe to change events.
    Subscribe {
        /// Answered with a receiver of every later change.
        reply: RpcReplyPort<broadcast::Receiver<Event>>,
    },
    /// Drop expired addresses (sent by the actor's own timer).
    Expire,
    /// Read the registry again (sent by the actor's own timer).
    RefreshRegistry,
    /// Read the registry again after a failed read (the one retry pending).
    RetryRegistry,
    /// The outcome of a registry read.
    RegistryRead(Result<Vec<Member>, Arc<RegistryError>>),
    /// `update`, holding one of its sender's slots until it is handled:
    /// a sender that repeats itself (heartbeats) bounds how many of its
    /// updates wait in this actor's mailbox by its number of slots.
    Held {
        /// The update.
        update: Update,
        /// Released once the update is handled.
        slot: tokio::sync::OwnedSemaphorePermit,
    },
}

impl From<Update> for AddressBookMessage {
    fn from(update: Update) -> Self {
        Self::Update(update)
    }
}

/// Gives an update back when the mailbox refused it (see
/// `ActorRef::get_derived`).
impl TryFrom<AddressBookMessage> for Update {
    type Error = AddressBookMessage;

    fn try_from(message: AddressBookMessage) -> Result<Self, Self::Error> {
        match message {
            AddressBookMessage::Update(update) | AddressBookMessage::Held { update, .. } => {
                Ok(update)
            }
            other => Err(other),
        }
    }
}

/// The single writer of the address book. Its fields are the actor's
/// fixed settings.
pub struct AddressBookActor {
    /// The shared view it writes.
    pub(crate) book: AddressBook,
    /// Limits and time-to-lives.
    pub(crate) config: Config,
    /// The subnet's registry, if any.
    pub(crate) registry: Option<Arc<dyn Registry>>,
    /// The membership gate the registry's members open.
    pub(crate) gate: Gate,
    /// This node, never added to its own book.
    pub(crate) local_peer: PeerId,
    /// The node's metrics.
    pub(crate) metrics: Metrics,
}

impl std::fmt::Debug for AddressBookActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBookActor")
            .field("config", &self.config)
            .field("registry", &self.registry.is_some())
            .finish()
    }
}

/// The state of the `AddressBookActor`: what changes.
#[derive(Debug)]
pub struct AddressBookState {
    events: broadcast::Sender<Event>,
    reading_registry: bool,
    /// Whether a registry read has succeeded yet.
    registry_read: bool,
    /// How long after a failed read the next is tried (1 s, doubling up
    /// to the refresh period; reset by a good read).
    registry_retry: std::time::Duration,
    /// A retry is scheduled: the periodic refresh waits for it, and no
    /// other is scheduled (one chain of retries, not one per failure).
    retry_pending: bool,
}

/// The first wait before reading a failed registry again.
const FIRST_REGISTRY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Actor for AddressBookActor {
    type Msg = AddressBookMessage;
    type State = AddressBookState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<AddressBookMessage>,
        (): (),
    ) -> Result<AddressBookState, ActorProcessingErr> {
        myself.send_interval(self.config.expiry_interval(), || AddressBookMessage::Expire);
        if self.registry.is_some() {
            myself.send_interval(self.config.registry_refresh(), || {
                AddressBookMessage::RefreshRegistry
            });
            myself.cast(AddressBookMessage::RefreshRegistry)?;
        }
        // The counter exists from the start, so that its rate is 0, not absent.
        self.metrics.address_book_expired(0);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(AddressBookState {
            events,
            reading_registry: false,
            registry_read: false,
            registry_retry: FIRST_REGISTRY_RETRY,
            retry_pending: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AddressBookMessage>,
        message: AddressBookMessage,
        state: &mut AddressBookState,
    ) -> Result<(), ActorProcessingErr> {
        let book = &self.book;
        let config = &self.config;
        match message {
            AddressBookMessage::Update(update) | AddressBookMessage::Held { update, .. } => {
                let events = book.apply(update, config, self.local_peer, Instant::now());
                self.publish(&state.events, events);
            }
            AddressBookMessage::Subscribe { reply } => {
                let _ = reply.send(state.events.subscribe());
            }
            AddressBookMessage::Expire => {
                let events = book.expire(config, Instant::now());
                self.publish(&state.events, events);
                let counts = book.count_by_source();
                for source in Source::ALL {
                    let peers = counts.get(&source).copied().unwrap_or(0);
                    self.metrics.address_book_peers(source.name(), peers);
                }
            }
            AddressBookMessage::RefreshRegistry | AddressBookMessage::RetryRegistry => {
                let retry = matches!(message, AddressBookMessage::RetryRegistry);
                if retry {
                    state.retry_pending = false;
                }
                let skip = state.reading_registry || (state.retry_pending && !retry);
                if let (Some(registry), false) = (&self.registry, skip) {
                    state.reading_registry = true;
                    let registry = registry.clone();
                    let timeout = config.registry_timeout();
                    tokio::spawn(async move {
                        let read = registry::read_within(&*registry, timeout).await;
                        let _ =
                            myself.cast(AddressBookMessage::RegistryRead(read.map_err(Arc::new)));
                    });
                }
            }
            AddressBookMessage::RegistryRead(read) => {
                state.reading_registry = false;
                match read {
                    Ok(members) => {
                        self.metrics.registry_read(Some(members.len()));
                        state.registry_read = true;
                        state.registry_retry = FIRST_REGISTRY_RETRY;
                        self.gate.set_members(members.iter().map(|m| m.peer_id));
                        let events = book.relist(members, self.local_peer, config, Instant::now());
                        self.publish(&state.events, events);
                    }
                    Err(error) => {
                        self.metrics.registry_read(None);
                        let retry = state.registry_retry;
                        if state.registry_read {
                            tracing::warn!(
                                "reading the registry failed (keeping what the last good read gave; again in {retry:?}): {error}"
                            );
                        } else {
                            tracing::warn!(
                                "reading the registry failed (no good read yet; again in {retry:?}): {error}"
                            );
                        }
                        if !state.retry_pending {
                            state.retry_pending = true;
                            myself.send_after(retry, || AddressBookMessage::RetryRegistry);
                            state.registry_retry = (retry * 2).min(config.registry_refresh());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl AddressBookActor {
    fn publish(&self, sender: &broadcast::Sender<Event>, events: Vec<Event>) {
        for event in events {
            match &event {
                Event::PeerAdded { peer, source } => {
                    tracing::info!(%peer, "found peer {peer} via {source}");
                }
                Event::PeerExpired { peer } => {
                    self.metrics.address_book_expired(1);
                    tracing::info!(%peer, "peer {peer} left the address book");
                }
                Event::AddressAdded { .. } => {}
            }
            // No subscriber is fine: events are a convenience, the book is the truth.
            let _ = sender.send(event);
        }
    }
}
