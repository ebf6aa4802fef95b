//! Storage behind one trait: conversations with their owner and dialogue state, the transcript of
//! both directions, tickets and their event history, processed inbound ids, the outbox of effects
//! still to deliver, and a small key-value space for adapters (update offsets, thread ids).
//!
//! Backends: [`MemoryStore`] for unit tests, [`SqlStore`] over SQLite (the embedded default, WAL)
//! or PostgreSQL (several bot instances). Every backend runs the same suite, kept with the other
//! test tools in `switchboard-testkit` (`switchboard_testkit::store_suite`, run from
//! `core/tests/store_suite.rs`).

mod memory;
mod sql;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use sql::SqlStore;

use futures_util::stream::BoxStream;

use crate::StoreError;
use crate::types::{
    Conversation, ConversationKey, Line, Millis, OutboxItem, Outcome, Outgoing, Ticket, TicketEvent, TicketEventKind, TicketStatus,
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
    /// The status and agent `update_ticket` was planned from: the update applies only if the
    /// stored ticket still has them (else [`StoreError::Conflict`], and the caller reads again), so
    /// one agent's change never silently overwrites another's, in any number of processes.
    pub ticket_was: Option<(TicketStatus, Option<String>)>,
    /// Events for the commit's ticket (the opened one, else the updated one, else the conversation's).
    pub events: Vec<TicketEventKind>,
    /// Events for other tickets, by id, in the same transaction: a customer's rating goes on the
    /// ticket that just closed, no longer the conversation's. A ticket that does not exist fails
    /// the whole commit.
    pub ticket_events: Vec<(i64, TicketEventKind)>,
    /// Customer-visible lines for the transcript, tagged with the commit's ticket.
    pub transcript: Vec<Line>,
    /// Effects to deliver; a desk item with `ticket_id: None` gets the commit's ticket.
    pub outbox: Vec<Outgoing>,
    /// What the bot made of the customer's message: kept on the commit's first customer line.
    pub outcome: Option<Outcome>,
    /// Values to write, `(namespace, key, value)`, in the same transaction (a customer's block,
    /// with the ticket event that records it).
    pub values: Vec<(String, String, String)>,
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
            ticket_was: None,
            events: Vec::new(),
            ticket_events: Vec::new(),
            transcript: Vec::new(),
            outbox: Vec::new(),
            values: Vec::new(),
            outcome: None,
            at,
        }
    }

    /// The ticket events, transcript lines and desk items refer to, when no ticket is opened.
    pub fn existing_ticket(&self) -> Option<i64> {
        self.update_ticket.as_ref().map(|t| t.id).or(self.conversation.ticket_id)
    }
}

/// Events and effects to add to a ticket along with another change.
#[derive(Clone, Debug)]
pub struct TicketRecord {
    /// The ticket.
    pub ticket_id: i64,
    /// Its new events.
    pub events: Vec<TicketEventKind>,
    /// Effects to deliver.
    pub outbox: Vec<Outgoing>,
}

/// A sender's hold on one outbox destination, from [`Store::claim_destinations`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The destination ([`Outgoing::destination`]).
    pub dest: String,
    /// Unique to this claim: what the store checks before acting on the destination's items.
    pub token: String,
}

/// A lease token no other claim, in this process or another, will have: the owner, this process's
/// start and a counter.
pub(crate) fn new_token(owner: &str) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static START: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{owner}#{start}#{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What a commit produced.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The conversation as stored (new version, ticket id set).
    pub conversation: Conversation,
    /// The commit's ticket, if any.
    pub ticket_id: Option<i64>,
}

/// What waits, for the metrics' gauges ([`Store::backlog`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// When the oldest ticket still waiting in the queue was opened (`None`: the queue is empty).
    pub oldest_queued_at: Option<Millis>,
    /// Outbox items not delivered yet (pending, including leased; not those given up on), by
    /// target (a channel, or `desk:<name>`); targets with none are left out.
    pub outbox_pending: std::collections::BTreeMap<String, u64>,
}

/// What erasing a customer's data removed (`switchboard forget`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Their conversations, emptied and unlinked from their platform ids.
    pub conversations: u64,
    /// Transcript lines deleted.
    pub transcript_lines: u64,
    /// Tickets whose texts and details were erased (and closed, if open); their times, reason and
    /// outcome stay for reports.
    pub tickets: u64,
    /// Undelivered messages to them, or about their tickets, deleted.
    pub outbox_items: u64,
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
    /// How many tickets wait in the queue, by priority (indexed by `Priority as usize`), without
    /// reading them.
    async fn queue_counts(&self) -> Result<[usize; 4], StoreError> {
        let mut counts = [0usize; 4];
        for t in self.tickets(&[TicketStatus::Queued]).await? {
            counts[t.priority as usize] += 1;
        }
        Ok(counts)
    }
    /// A waiting ticket's place in the queue (1: next), or `None` when it does not wait; counted,
    /// not read, so a long queue costs no more.
    async fn queue_position(&self, ticket_id: i64) -> Result<Option<usize>, StoreError> {
        Ok(self.tickets(&[TicketStatus::Queued]).await?.iter().position(|t| t.id == ticket_id).map(|p| p + 1))
    }
    /// When the oldest waiting ticket was opened and how many outbox items are not delivered yet,
    /// counted, not read (the metrics' gauges read it every few seconds).
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let oldest_queued_at = self.tickets(&[TicketStatus::Queued]).await?.iter().map(|t| t.created_at).min();
        let mut outbox_pending = std::collections::BTreeMap::new();
        for item in self.outbox_pending().await? {
            *outbox_pending.entry(item.item.target()).or_insert(0) += 1;
        }
        Ok(Backlog { oldest_queued_at, outbox_pending })
    }
    /// Deletes up to `limit` transcript lines written before `before`, oldest first; how many.
    async fn prune_transcript(&self, before: Millis, limit: usize) -> Result<u64, StoreError>;
    /// Erases the texts of up to `limit` tickets closed before `before` and not erased yet (their
    /// transcript lines, the words in their events, their collected details), each with an
    /// [`TicketEventKind::Erased`] event by `by`; how many tickets.
    async fn erase_closed_tickets(&self, before: Millis, limit: usize, by: &str) -> Result<u64, StoreError>;
    /// Erases everything a customer (`channel`, platform `customer_id`) wrote or was told: their
    /// conversations' transcripts and state, their tickets' texts and details (tickets are closed
    /// and kept, without the customer's ids, for counts), undelivered messages to them or about
    /// their tickets. All or nothing; nothing found is `Erased::default()`.
    async fn erase_customer(&self, channel: &str, customer_id: &str, by: &str, at: Millis) -> Result<Erased, StoreError>;
    /// Customer messages with their outcome written in `[since, until)`, oldest first, streamed
    /// (reports and suggestions read millions of them without holding them in memory).
    fn outcome_lines<'a>(&'a self, since: Millis, until: Millis) -> BoxStream<'a, Result<TranscriptEntry, StoreError>>;
    /// The events of tickets opened at or after `since`, by ticket then in order, streamed.
    fn ticket_events_since<'a>(&'a self, since: Millis) -> BoxStream<'a, Result<TicketEvent, StoreError>>;
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
    /// Up to `limit` transcript lines of a conversation whose id is above `after`, oldest first
    /// (a page that shows the conversation catches up from the last line it has).
    async fn transcript_after(&self, conversation_id: i64, after: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError>;
    /// The conversations with transcript lines whose id is above `after`, each with its newest
    /// line's id, at most `limit` of them (lowest ids first). Several instances on one database
    /// learn this way what the others wrote.
    async fn transcript_touched(&self, after: i64, limit: usize) -> Result<Vec<(i64, i64)>, StoreError>;
    /// The highest transcript line id (0 when there is none).
    async fn transcript_head(&self) -> Result<i64, StoreError>;
    /// The conversation of a channel's chat, if there is one (read only; nothing is created).
    async fn find_conversation(&self, key: &ConversationKey) -> Result<Option<Conversation>, StoreError>;
    /// Leases up to `limit` destinations ([`Outgoing::destination`]) of these targets
    /// ([`Outgoing::target`]) whose oldest pending item is due at `now` and that no live lease
    /// holds, the longest-waiting first (by the due time of that oldest item), each for `lease_ms`
    /// to `owner`; returns each lease with that oldest item. Only the lease holder may act on a
    /// destination's items, one at a time, so each destination keeps its order.
    async fn claim_destinations(
        &self,
        targets: &[String],
        owner: &str,
        now: Millis,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<(Lease, OutboxItem)>, StoreError>;
    /// The next item of a leased destination if it is due at `now` (renewing the lease for
    /// `lease_ms`); `None`, and the lease is released, when nothing more is due there.
    /// [`StoreError::LeaseLost`] when `lease` no longer holds the destination.
    async fn outbox_next(&self, lease: &Lease, now: Millis, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError>;
    /// Removes a delivered item of a leased destination ([`StoreError::LeaseLost`] without the lease).
    async fn outbox_done(&self, lease: &Lease, id: i64) -> Result<(), StoreError>;
    /// Schedules another attempt of a leased destination's item at `due_at` and releases the lease:
    /// the destination, not only this item, waits until then ([`StoreError::LeaseLost`] without
    /// the lease).
    async fn outbox_retry(&self, lease: &Lease, id: i64, attempts: i64, due_at: Millis) -> Result<(), StoreError>;
    /// Gives up on a leased destination's item at `at`; it stays stored, marked failed (dated
    /// `at`), for inspection, and `record` (the failure on its ticket, and the desks' notices) is
    /// written in the same transaction ([`StoreError::LeaseLost`] without the lease).
    async fn outbox_fail(&self, lease: &Lease, id: i64, reason: &str, at: Millis, record: Option<TicketRecord>) -> Result<(), StoreError>;
    /// Extends these leases to `until` (a living sender's heartbeat for the destinations it is
    /// working on); returns how many are still held.
    async fn renew_leases(&self, leases: &[Lease], until: Millis) -> Result<u64, StoreError>;
    /// Releases every lease `owner` holds (at start, to take back what a crash left, and at
    /// shutdown); returns how many.
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError>;
    /// Forgets items that failed before `before` (the ticket keeps a record of each failure);
    /// returns how many were removed. Pending items are never touched.
    async fn prune_failed_outbox(&self, before: Millis) -> Result<u64, StoreError>;
    /// Items not yet delivered (pending, including leased), for status displays and tests.
    async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError>;
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
    /// Deletes every adapter value of a namespace (one an adapter no longer uses); returns how
    /// many were deleted.
    async fn delete_values(&self, namespace: &str) -> Result<u64, StoreError>;
    /// Writes several adapter values, `(namespace, key, value)`, all or none (one transaction):
    /// for facts kept in two directions, such as a ticket's thread and the thread's ticket.
    async fn set_values(&self, values: &[(&str, &str, &str)]) -> Result<(), StoreError>;
    /// Gives back to the file system at most `pages` pages that deleted rows left free (SQLite's
    /// incremental vacuum); returns how many. Backends that reclaim space themselves return 0.
    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        let _ = pages;
        Ok(0)
    }
}
