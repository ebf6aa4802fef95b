//! [`Faulty`]: a [`Store`] wrapper that fails every call while it is switched *down*, as a
//! database does when it is unreachable. Tests use it to check that callers lose nothing during an
//! outage: what cannot be stored is retried or refused to the platform, never dropped. It can also
//! hold the next read of a conversation, so a test can let another writer commit in between two
//! reads of one engine (the interleaving two instances on one database produce).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::oneshot;

use switchboard_core::StoreError;
use switchboard_core::store::{Commit, Committed, Erased, Lease, NewConversation, Store, TicketRecord};
use switchboard_core::types::{
    Conversation, ConversationKey, Millis, OutboxItem, Outgoing, Ticket, TicketEvent, TicketEventKind, TicketStatus, TranscriptEntry,
};

/// Wraps a store; while [`Faulty::set_down`] is on, every call fails with a database error.
#[derive(Debug)]
pub struct Faulty<S> {
    inner: S,
    down: AtomicBool,
    refused: AtomicU64,
    held: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl<S: Store> Faulty<S> {
    /// A healthy wrapper around `inner`.
    pub fn new(inner: S) -> Faulty<S> {
        Faulty { inner, down: AtomicBool::new(false), refused: AtomicU64::new(0), held: Mutex::new(None) }
    }

    /// Holds the next [`Store::conversation`] read: the first receiver resolves when a read
    /// reached the hold, and the read goes on when the sender is used (or dropped).
    pub fn hold_next_conversation_read(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some((reached_tx, release_rx));
        (reached_rx, release_tx)
    }

    /// Takes the store down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many calls failed because the store was down.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Database(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Store> Store for Faulty<S> {
    async fn open_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        self.check()?;
        self.inner.open_conversation(new).await
    }
    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        self.check()?;
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((reached, release)) = held {
            let _ = reached.send(());
            let _ = release.await;
        }
        self.inner.conversation(id).await
    }
    async fn commit(&self, commit: Commit) -> Result<Committed, StoreError> {
        self.check()?;
        self.inner.commit(commit).await
    }
    async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        self.check()?;
        self.inner.ticket(id).await
    }
    async fn tickets(&self, status: &[TicketStatus]) -> Result<Vec<Ticket>, StoreError> {
        self.check()?;
        self.inner.tickets(status).await
    }
    async fn queue_counts(&self) -> Result<[usize; 4], StoreError> {
        self.check()?;
        self.inner.queue_counts().await
    }
    async fn backlog(&self) -> Result<switchboard_core::store::Backlog, StoreError> {
        self.check()?;
        self.inner.backlog().await
    }
    async fn queue_position(&self, ticket_id: i64) -> Result<Option<usize>, StoreError> {
        self.check()?;
        self.inner.queue_position(ticket_id).await
    }
    async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        self.check()?;
        self.inner.ticket_events(ticket_id).await
    }
    async fn append_events(
        &self,
        ticket_id: i64,
        events: Vec<TicketEventKind>,
        outbox: Vec<Outgoing>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_events(ticket_id, events, outbox, at).await
    }
    async fn transcript(&self, conversation_id: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        self.check()?;
        self.inner.transcript(conversation_id, limit).await
    }
    async fn transcript_after(&self, conversation_id: i64, after: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        self.check()?;
        self.inner.transcript_after(conversation_id, after, limit).await
    }
    async fn transcript_touched(&self, after: i64, limit: usize) -> Result<Vec<(i64, i64)>, StoreError> {
        self.check()?;
        self.inner.transcript_touched(after, limit).await
    }
    async fn transcript_head(&self) -> Result<i64, StoreError> {
        self.check()?;
        self.inner.transcript_head().await
    }
    async fn find_conversation(&self, key: &ConversationKey) -> Result<Option<Conversation>, StoreError> {
        self.check()?;
        self.inner.find_conversation(key).await
    }
    async fn claim_destinations(
        &self,
        targets: &[String],
        owner: &str,
        now: Millis,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<(Lease, OutboxItem)>, StoreError> {
        self.check()?;
        self.inner.claim_destinations(targets, owner, now, limit, lease_ms).await
    }
    async fn outbox_next(&self, lease: &Lease, now: Millis, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        self.check()?;
        self.inner.outbox_next(lease, now, lease_ms).await
    }
    async fn outbox_done(&self, lease: &Lease, id: i64) -> Result<(), StoreError> {
        self.check()?;
        self.inner.outbox_done(lease, id).await
    }
    async fn outbox_retry(&self, lease: &Lease, id: i64, attempts: i64, due_at: Millis) -> Result<(), StoreError> {
        self.check()?;
        self.inner.outbox_retry(lease, id, attempts, due_at).await
    }
    async fn outbox_fail(&self, lease: &Lease, id: i64, reason: &str, at: Millis, record: Option<TicketRecord>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.outbox_fail(lease, id, reason, at, record).await
    }
    async fn renew_leases(&self, leases: &[Lease], until: Millis) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.renew_leases(leases, until).await
    }
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.release_leases(owner).await
    }
    async fn prune_failed_outbox(&self, before: Millis) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_failed_outbox(before).await
    }
    async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.check()?;
        self.inner.outbox_pending().await
    }
    async fn is_processed(&self, channel: &str, message_id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.is_processed(channel, message_id).await
    }
    async fn mark_processed(&self, channel: &str, message_id: &str, at: Millis) -> Result<(), StoreError> {
        self.check()?;
        self.inner.mark_processed(channel, message_id, at).await
    }
    fn ticket_events_since<'a>(&'a self, since: Millis) -> futures_util::stream::BoxStream<'a, Result<TicketEvent, StoreError>> {
        if let Err(e) = self.check() {
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
        self.inner.ticket_events_since(since)
    }
    fn outcome_lines<'a>(
        &'a self,
        since: Millis,
        until: Millis,
    ) -> futures_util::stream::BoxStream<'a, Result<TranscriptEntry, StoreError>> {
        if let Err(e) = self.check() {
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
        self.inner.outcome_lines(since, until)
    }
    async fn prune_transcript(&self, before: Millis, limit: usize) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_transcript(before, limit).await
    }
    async fn erase_closed_tickets(&self, before: Millis, limit: usize, by: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.erase_closed_tickets(before, limit, by).await
    }
    async fn erase_customer(&self, channel: &str, customer_id: &str, by: &str, at: Millis) -> Result<Erased, StoreError> {
        self.check()?;
        self.inner.erase_customer(channel, customer_id, by, at).await
    }
    async fn prune_processed(&self, before: Millis) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_processed(before).await
    }
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.check()?;
        self.inner.get_value(namespace, key).await
    }
    async fn set_value(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_value(namespace, key, value).await
    }
    async fn values(&self, namespace: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.check()?;
        self.inner.values(namespace).await
    }
    async fn delete_values(&self, namespace: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.delete_values(namespace).await
    }
    async fn set_values(&self, values: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_values(values).await
    }
    async fn reclaim_space(&self, pages: u32) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.reclaim_space(pages).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::MemoryStore;

    #[tokio::test]
    async fn fails_only_while_down() {
        let s = Faulty::new(MemoryStore::new());
        s.set_value("n", "k", "1").await.unwrap();
        s.set_down(true);
        assert!(matches!(s.get_value("n", "k").await, Err(StoreError::Database(_))));
        assert!(s.set_value("n", "k", "2").await.is_err());
        assert!(s.delete_values("n").await.is_err());
        assert_eq!(s.refused(), 3);
        s.set_down(false);
        assert_eq!(s.get_value("n", "k").await.unwrap().as_deref(), Some("1"), "nothing was written while down");
    }
}
