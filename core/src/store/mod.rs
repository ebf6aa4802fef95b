//! Storage behind one trait: conversations with their owner and dialogue state, the transcript of
//! both directions, tickets and their event history, processed inbound ids, the outbox of effects
//! still to deliver, and a small key-value space for adapters (update offsets, thread ids).
//!
//! Backends: [`MemoryStore`] for unit tests, [`SqlStore`] over SQLite (the embedded default, WAL)
//! or PostgreSQL (several bot instances). Every backend runs the same suite, [`suite::run_all`].

mod faulty;
mod memory;
mod sql;
pub mod suite;

use std::collections::HashMap;

use async_trait::async_trait;

pub use faulty::Faulty;
pub use memory::MemoryStore;
pub use sql::SqlStore;

use crate::StoreError;
use crate::types::{
    Author, Conversation, ConversationKey, Millis, OutboxItem, Outgoing, Ticket, TicketEvent, TicketEventKind, TicketStatus,
    TranscriptEntry,
};

/// A conversation to create if its key is new.
#[derive(Clone, Debug)]
pub struct NewConversation {
    /// Channel and chat.
    pub key: ConversationKey,
    /// Platform customer id.
    pub customer_id: String,
    /// Display name.
    pub customer_name: String,
    /// Initial language.
    pub lang: crate::Lang,
    /// When.
    pub at: Millis,
}

/// Everything one customer message or agent action changes, applied atomically or not at all.
///
/// The conversation is written only if its stored version still equals `conversation.version`
/// (else [`StoreError::Conflict`]); the store bumps the version.
#[derive(Clone, Debug)]
pub struct Commit {
    /// `(channel, platform message id)` to mark processed; a second commit with it fails with
    /// [`StoreError::Duplicate`].
    pub dedup: Option<(String, String)>,
    /// The conversation's new state, carrying the version it was read at.
    pub conversation: Conversation,
    /// A ticket to open; its `id` is assigned by the store and becomes the conversation's ticket.
    pub open_ticket: Option<Ticket>,
    /// A ticket's new state (same id).
    pub update_ticket: Option<Ticket>,
    /// Events for the commit's ticket (the opened one, else the updated one, else the conversation's).
    pub events: Vec<TicketEventKind>,
    /// Customer-visible lines for the transcript, tagged with the commit's ticket.
    pub transcript: Vec<(Author, String)>,
    /// Effects to deliver; a desk item with `ticket_id: None` gets the commit's ticket.
    pub outbox: Vec<Outgoing>,
    /// When.
    pub at: Millis,
}

impl Commit {
    /// A commit that changes only `conversation` (at time `at`).
    pub fn new(conversation: Conversation, at: Millis) -> Commit {
        Commit {
            dedup: None,
            conversation,
            open_ticket: None,
            update_ticket: None,
            events: Vec::new(),
            transcript: Vec::new(),
            outbox: Vec::new(),
            at,
        }
    }

    /// The ticket events, transcript lines and desk items refer to, when no ticket is opened.
    pub fn existing_ticket(&self) -> Option<i64> {
        self.update_ticket.as_ref().map(|t| t.id).or(self.conversation.ticket_id)
    }
}

/// What a commit produced.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The conversation as stored (new version, ticket id set).
    pub conversation: Conversation,
    /// The commit's ticket, if any.
    pub ticket_id: Option<i64>,
}

/// Conversations, transcripts, tickets, outbox and adapter state.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The conversation for `new.key`, created from `new` if there is none.
    async fn open_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError>;
    /// The conversation with this id.
    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError>;
    /// Applies a commit atomically.
    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError>;
    /// The ticket with this id.
    async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError>;
    /// Tickets in any of these states, most urgent first, then oldest first.
    async fn tickets(&self, status: &[TicketStatus]) -> Result<Vec<Ticket>, StoreError>;
    /// A ticket's history, oldest first.
    async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError>;
    /// Adds events to a ticket (and effects to the outbox) without touching its conversation.
    async fn append_events(
        &self,
        ticket_id: i64,
        events: Vec<TicketEventKind>,
        outbox: Vec<Outgoing>,
        at: Millis,
    ) -> Result<(), StoreError>;
    /// The last `limit` transcript lines of a conversation, oldest first.
    async fn transcript(&self, conversation_id: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError>;
    /// Claims up to `limit` outbox items for these targets ([`Outgoing::target`]) due at `now`,
    /// oldest first, hiding them from other claimers until `now + lease_ms`.
    async fn claim_outbox(&self, targets: &[String], now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<OutboxItem>, StoreError>;
    /// Removes a delivered item.
    async fn outbox_done(&self, id: i64) -> Result<(), StoreError>;
    /// Schedules another attempt.
    async fn outbox_retry(&self, id: i64, attempts: i64, due_at: Millis) -> Result<(), StoreError>;
    /// Gives up on an item at `at`; it stays stored, marked failed (dated `at`), for inspection.
    async fn outbox_fail(&self, id: i64, reason: &str, at: Millis) -> Result<(), StoreError>;
    /// Forgets items that failed before `before` (the ticket keeps a record of each failure);
    /// returns how many were removed. Pending items are never touched.
    async fn prune_failed_outbox(&self, before: Millis) -> Result<u64, StoreError>;
    /// Items not yet delivered (pending, including leased), for status displays and tests.
    async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError>;
    /// For each of `destinations` ([`Outgoing::destination`]), the id and due time of its oldest
    /// pending item whose id is not in `except`: what a batch must wait for to keep each
    /// destination's order. Destinations without such an item are absent.
    async fn outbox_heads(&self, destinations: &[String], except: &[i64]) -> Result<HashMap<String, (i64, Millis)>, StoreError>;
    /// Whether a platform message id was recorded as handled (by a commit's `dedup` or by
    /// [`Store::mark_processed`]).
    async fn is_processed(&self, channel: &str, message_id: &str) -> Result<bool, StoreError>;
    /// Records a platform message id as handled outside a commit (for adapter-side actions such
    /// as staff commands); recording it twice is not an error.
    async fn mark_processed(&self, channel: &str, message_id: &str, at: Millis) -> Result<(), StoreError>;
    /// Forgets handled message ids recorded before `before` (platforms redeliver only recent
    /// messages); returns how many were removed.
    async fn prune_processed(&self, before: Millis) -> Result<u64, StoreError>;
    /// Reads an adapter value.
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes an adapter value.
    async fn set_value(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError>;
    /// Every adapter value of a namespace, as `(key, value)` sorted by key.
    async fn values(&self, namespace: &str) -> Result<Vec<(String, String)>, StoreError>;
}
