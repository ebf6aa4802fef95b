//! An in-memory [`Store`] for unit tests and conversation scripts. One mutex guards everything, so
//! each commit is trivially atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Commit, Committed, Erased, Lease, NewConversation, Store, TicketRecord};
use crate::StoreError;
use crate::types::{
    Conversation, ConversationKey, Millis, OutboxItem, Outgoing, Ticket, TicketEvent, TicketEventKind, TicketStatus, TranscriptEntry,
};

#[derive(Debug, Default)]
struct Inner {
    conversations: BTreeMap<i64, Conversation>,
    by_key: HashMap<ConversationKey, i64>,
    tickets: BTreeMap<i64, Ticket>,
    events: Vec<TicketEvent>,
    transcript: Vec<TranscriptEntry>,
    processed: HashMap<(String, String), Millis>,
    outbox: BTreeMap<i64, (OutboxItem, bool)>, // (item, failed)
    values: HashMap<(String, String), String>,
    leases: HashMap<String, Held>,
    /// Tickets whose texts were erased.
    erased: std::collections::HashSet<i64>,
    next_id: i64,
}

/// A live lease on a destination.
#[derive(Debug)]
struct Held {
    owner: String,
    token: String,
    until: Millis,
}

impl Inner {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn held(&mut self, lease: &Lease) -> Result<&mut Held, StoreError> {
        self.leases.get_mut(&lease.dest).filter(|h| h.token == lease.token).ok_or_else(|| StoreError::LeaseLost(lease.dest.clone()))
    }

    /// Erases one ticket's texts: its transcript lines, the words in its events, its details.
    /// Returns the transcript lines deleted.
    fn erase_ticket(&mut self, id: i64, by: &str, at: Millis) -> u64 {
        let n = self.transcript.len();
        self.transcript.retain(|e| e.ticket_id != Some(id));
        for e in self.events.iter_mut().filter(|e| e.ticket_id == id) {
            if let Some(k) = e.kind.erased() {
                e.kind = k;
            }
        }
        self.events.push(TicketEvent { ticket_id: id, at, kind: TicketEventKind::Erased { by: by.to_string() } });
        if let Some(t) = self.tickets.get_mut(&id) {
            for f in &mut t.fields {
                f.value = crate::types::ERASED.into();
            }
        }
        self.erased.insert(id);
        (n - self.transcript.len()) as u64
    }

    fn push_outbox(&mut self, item: Outgoing, at: Millis) {
        let id = self.id();
        self.outbox.insert(id, (OutboxItem { id, item, attempts: 0, due_at: at }, false));
    }
}

/// Keeps everything in memory; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write below is infallible).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn open_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        let mut g = self.lock();
        if let Some(id) = g.by_key.get(&new.key) {
            return g.conversations.get(id).cloned().ok_or_else(|| StoreError::Corrupt("dangling key".into()));
        }
        let id = g.id();
        let c = Conversation {
            id,
            key: new.key.clone(),
            customer_id: new.customer_id,
            customer_name: new.customer_name,
            lang: new.lang,
            state: Default::default(),
            owner: Default::default(),
            ticket_id: None,
            version: 0,
            updated_at: new.at,
        };
        g.by_key.insert(new.key, id);
        g.conversations.insert(id, c.clone());
        Ok(c)
    }

    async fn conversation(&self, id: i64) -> Result<Option<Conversation>, StoreError> {
        Ok(self.lock().conversations.get(&id).cloned())
    }

    async fn commit(&self, c: Commit) -> Result<Committed, StoreError> {
        let mut g = self.lock();
        let stored = g.conversations.get(&c.conversation.id).ok_or_else(|| StoreError::Corrupt("no such conversation".into()))?;
        if stored.version != c.conversation.version {
            return Err(StoreError::Conflict(c.conversation.id));
        }
        if let Some(d) = &c.dedup
            && g.processed.contains_key(d)
        {
            return Err(StoreError::Duplicate);
        }
        if let (Some(t), Some((status, agent))) = (&c.update_ticket, &c.ticket_was)
            && g.tickets.get(&t.id).is_none_or(|stored| stored.status != *status || stored.agent != *agent)
        {
            return Err(StoreError::Conflict(c.conversation.id));
        }
        if let Some((id, _)) = c.ticket_events.iter().find(|(id, _)| !g.tickets.contains_key(id)) {
            return Err(StoreError::Corrupt(format!("no ticket {id} for an event")));
        }
        // Validation done: from here on nothing fails.
        if let Some(d) = c.dedup.clone() {
            g.processed.insert(d, c.at);
        }
        let mut conv = c.conversation.clone();
        conv.version += 1;
        conv.updated_at = c.at;
        let mut ticket_id = c.existing_ticket();
        if let Some(mut t) = c.open_ticket.clone() {
            let id = g.id();
            t.id = id;
            t.conversation_id = conv.id;
            g.tickets.insert(id, t);
            conv.ticket_id = Some(id);
            ticket_id = Some(id);
        }
        if let Some(t) = c.update_ticket.clone() {
            g.tickets.insert(t.id, t);
        }
        if let Some(tid) = ticket_id {
            for kind in c.events.iter().cloned() {
                g.events.push(TicketEvent { ticket_id: tid, at: c.at, kind });
            }
        }
        for (tid, kind) in c.ticket_events.iter().cloned() {
            g.events.push(TicketEvent { ticket_id: tid, at: c.at, kind });
        }
        let mut outcome = c.outcome.clone();
        for line in c.transcript.iter().cloned() {
            let outcome = if line.author == crate::types::Author::Customer { outcome.take() } else { None };
            let id = g.id();
            g.transcript.push(TranscriptEntry {
                id,
                conversation_id: conv.id,
                ticket_id,
                author: line.author,
                text: line.text,
                at: c.at,
                outcome,
                choices: line.choices,
            });
        }
        for mut item in c.outbox.iter().cloned() {
            if let Outgoing::Desk { ticket_id: t @ None, .. } = &mut item {
                *t = ticket_id;
            }
            g.push_outbox(item, c.at);
        }
        for (ns, key, value) in &c.values {
            g.values.insert((ns.clone(), key.clone()), value.clone());
        }
        g.conversations.insert(conv.id, conv.clone());
        Ok(Committed { conversation: conv, ticket_id })
    }

    async fn ticket(&self, id: i64) -> Result<Option<Ticket>, StoreError> {
        Ok(self.lock().tickets.get(&id).cloned())
    }

    async fn tickets(&self, status: &[TicketStatus]) -> Result<Vec<Ticket>, StoreError> {
        let mut v: Vec<Ticket> = self.lock().tickets.values().filter(|t| status.contains(&t.status)).cloned().collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created_at.cmp(&b.created_at)).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn queue_counts(&self) -> Result<[usize; 4], StoreError> {
        let mut counts = [0usize; 4];
        for t in self.lock().tickets.values().filter(|t| t.status == TicketStatus::Queued) {
            counts[t.priority as usize] += 1;
        }
        Ok(counts)
    }

    async fn backlog(&self) -> Result<super::Backlog, StoreError> {
        let g = self.lock();
        let oldest_queued_at = g.tickets.values().filter(|t| t.status == TicketStatus::Queued).map(|t| t.created_at).min();
        let mut outbox_pending = std::collections::BTreeMap::new();
        for (item, _) in g.outbox.values().filter(|(_, failed)| !failed) {
            *outbox_pending.entry(item.item.target()).or_insert(0) += 1;
        }
        Ok(super::Backlog { oldest_queued_at, outbox_pending })
    }

    async fn queue_position(&self, ticket_id: i64) -> Result<Option<usize>, StoreError> {
        let g = self.lock();
        let Some(me) = g.tickets.get(&ticket_id).filter(|t| t.status == TicketStatus::Queued) else { return Ok(None) };
        let key = |t: &Ticket| (std::cmp::Reverse(t.priority), t.created_at, t.id);
        Ok(Some(g.tickets.values().filter(|t| t.status == TicketStatus::Queued && key(t) < key(me)).count() + 1))
    }

    async fn ticket_events(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        Ok(self.lock().events.iter().filter(|e| e.ticket_id == ticket_id).cloned().collect())
    }

    async fn append_events(
        &self,
        ticket_id: i64,
        events: Vec<TicketEventKind>,
        outbox: Vec<Outgoing>,
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        for kind in events {
            g.events.push(TicketEvent { ticket_id, at, kind });
        }
        for item in outbox {
            g.push_outbox(item, at);
        }
        Ok(())
    }

    async fn transcript(&self, conversation_id: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        let g = self.lock();
        let all: Vec<&TranscriptEntry> = g.transcript.iter().filter(|e| e.conversation_id == conversation_id).collect();
        let skip = all.len().saturating_sub(limit);
        Ok(all.into_iter().skip(skip).cloned().collect())
    }

    async fn transcript_after(&self, conversation_id: i64, after: i64, limit: usize) -> Result<Vec<TranscriptEntry>, StoreError> {
        let g = self.lock();
        Ok(g.transcript.iter().filter(|e| e.conversation_id == conversation_id && e.id > after).take(limit).cloned().collect())
    }

    async fn transcript_touched(&self, after: i64, limit: usize) -> Result<Vec<(i64, i64)>, StoreError> {
        let g = self.lock();
        let mut newest: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
        for e in g.transcript.iter().filter(|e| e.id > after) {
            let n = newest.entry(e.conversation_id).or_insert(e.id);
            *n = (*n).max(e.id);
        }
        let mut v: Vec<(i64, i64)> = newest.into_iter().collect();
        v.sort_by_key(|&(_, id)| id);
        v.truncate(limit);
        Ok(v)
    }

    async fn transcript_head(&self) -> Result<i64, StoreError> {
        Ok(self.lock().transcript.last().map_or(0, |e| e.id))
    }

    async fn find_conversation(&self, key: &ConversationKey) -> Result<Option<Conversation>, StoreError> {
        let g = self.lock();
        Ok(g.by_key.get(key).and_then(|id| g.conversations.get(id)).cloned())
    }

    async fn claim_destinations(
        &self,
        targets: &[String],
        owner: &str,
        now: Millis,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<(Lease, OutboxItem)>, StoreError> {
        let mut g = self.lock();
        let mut heads: Vec<OutboxItem> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (item, failed) in g.outbox.values() {
            if *failed {
                continue;
            }
            let dest = item.item.destination();
            if seen.insert(dest.clone())
                && item.due_at <= now
                && targets.contains(&item.item.target())
                && g.leases.get(&dest).is_none_or(|l| l.until <= now)
            {
                heads.push(item.clone());
            }
        }
        heads.sort_by_key(|i| (i.due_at, i.id));
        heads.truncate(limit);
        let mut out = Vec::new();
        for item in heads {
            let lease = Lease { dest: item.item.destination(), token: super::new_token(owner) };
            g.leases.insert(lease.dest.clone(), Held { owner: owner.to_string(), token: lease.token.clone(), until: now + lease_ms });
            out.push((lease, item));
        }
        Ok(out)
    }

    async fn outbox_next(&self, lease: &Lease, now: Millis, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        let mut g = self.lock();
        g.held(lease)?.until = now + lease_ms;
        let head = g.outbox.values().find(|(i, failed)| !failed && i.item.destination() == lease.dest).map(|(i, _)| i.clone());
        match head {
            Some(item) if item.due_at <= now => Ok(Some(item)),
            _ => {
                g.leases.remove(&lease.dest);
                Ok(None)
            }
        }
    }

    async fn outbox_done(&self, lease: &Lease, id: i64) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.held(lease)?;
        g.outbox.remove(&id);
        Ok(())
    }

    async fn outbox_retry(&self, lease: &Lease, id: i64, attempts: i64, due_at: Millis) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.held(lease)?;
        if let Some((item, _)) = g.outbox.get_mut(&id) {
            item.attempts = attempts;
            item.due_at = due_at;
        }
        g.leases.remove(&lease.dest);
        Ok(())
    }

    async fn outbox_fail(&self, lease: &Lease, id: i64, _reason: &str, at: Millis, record: Option<TicketRecord>) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.held(lease)?;
        let Some((item, failed)) = g.outbox.get_mut(&id).filter(|(_, failed)| !*failed) else { return Ok(()) };
        *failed = true;
        item.due_at = at;
        if let Some(r) = record {
            for kind in r.events {
                g.events.push(TicketEvent { ticket_id: r.ticket_id, at, kind });
            }
            for item in r.outbox {
                g.push_outbox(item, at);
            }
        }
        Ok(())
    }

    async fn renew_leases(&self, leases: &[Lease], until: Millis) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let mut n = 0;
        for lease in leases {
            if let Ok(held) = g.held(lease) {
                held.until = until;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.leases.len();
        g.leases.retain(|_, l| l.owner != owner);
        Ok((before - g.leases.len()) as u64)
    }

    async fn prune_failed_outbox(&self, before: Millis) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let n = g.outbox.len();
        g.outbox.retain(|_, (item, failed)| !*failed || item.due_at >= before);
        Ok((n - g.outbox.len()) as u64)
    }

    async fn outbox_pending(&self) -> Result<Vec<OutboxItem>, StoreError> {
        Ok(self.lock().outbox.values().filter(|(_, f)| !f).map(|(i, _)| i.clone()).collect())
    }

    async fn is_processed(&self, channel: &str, message_id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().processed.contains_key(&(channel.to_string(), message_id.to_string())))
    }

    async fn mark_processed(&self, channel: &str, message_id: &str, at: Millis) -> Result<(), StoreError> {
        self.lock().processed.entry((channel.to_string(), message_id.to_string())).or_insert(at);
        Ok(())
    }

    fn ticket_events_since<'a>(&'a self, since: Millis) -> futures_util::stream::BoxStream<'a, Result<TicketEvent, StoreError>> {
        let g = self.lock();
        let mut events: Vec<TicketEvent> =
            g.events.iter().filter(|e| g.tickets.get(&e.ticket_id).is_some_and(|t| t.created_at >= since)).cloned().collect();
        // Stable: each ticket's events keep their order.
        events.sort_by_key(|e| e.ticket_id);
        Box::pin(futures_util::stream::iter(events.into_iter().map(Ok)))
    }

    fn outcome_lines<'a>(
        &'a self,
        since: Millis,
        until: Millis,
    ) -> futures_util::stream::BoxStream<'a, Result<TranscriptEntry, StoreError>> {
        let lines: Vec<_> =
            self.lock().transcript.iter().filter(|e| e.outcome.is_some() && e.at >= since && e.at < until).cloned().map(Ok).collect();
        Box::pin(futures_util::stream::iter(lines))
    }

    async fn prune_transcript(&self, before: Millis, limit: usize) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let mut left = limit;
        let n = g.transcript.len();
        // Lines are kept in the order written: the oldest are first.
        g.transcript.retain(|e| {
            if left > 0 && e.at < before {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok((n - g.transcript.len()) as u64)
    }

    async fn erase_closed_tickets(&self, before: Millis, limit: usize, by: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let ids: Vec<i64> = g
            .tickets
            .values()
            .filter(|t| t.status == TicketStatus::Closed && t.updated_at < before && !g.erased.contains(&t.id))
            .map(|t| t.id)
            .take(limit)
            .collect();
        let at = crate::types::now_ms();
        for id in &ids {
            g.erase_ticket(*id, by, at);
        }
        Ok(ids.len() as u64)
    }

    async fn erase_customer(&self, channel: &str, customer_id: &str, by: &str, at: Millis) -> Result<Erased, StoreError> {
        let mut g = self.lock();
        let convs: Vec<i64> =
            g.conversations.values().filter(|c| c.key.channel == channel && c.customer_id == customer_id).map(|c| c.id).collect();
        let tickets: Vec<i64> =
            g.tickets.values().filter(|t| t.key.channel == channel && t.customer_id == customer_id).map(|t| t.id).collect();
        let mut out = Erased { conversations: convs.len() as u64, tickets: tickets.len() as u64, ..Erased::default() };
        let mut dests: Vec<String> = Vec::new();
        for id in &tickets {
            out.transcript_lines += g.erase_ticket(*id, by, at);
            if let Some(t) = g.tickets.get_mut(id) {
                dests.push(format!("{}/{}", t.key.channel, t.key.chat));
                t.customer_id = crate::types::ERASED.into();
                t.customer_name = crate::types::ERASED.into();
                t.key.chat = format!("erased:{}", t.conversation_id);
                if t.status != TicketStatus::Closed {
                    t.status = TicketStatus::Closed;
                }
            }
        }
        for id in &convs {
            let n = g.transcript.len();
            g.transcript.retain(|e| e.conversation_id != *id);
            out.transcript_lines += (n - g.transcript.len()) as u64;
            if let Some(mut c) = g.conversations.remove(id) {
                g.by_key.remove(&c.key);
                dests.push(format!("{}/{}", c.key.channel, c.key.chat));
                c.key.chat = format!("erased:{}", c.id);
                c.customer_id = crate::types::ERASED.into();
                c.customer_name = crate::types::ERASED.into();
                c.state = Default::default();
                c.owner = crate::types::Owner::Bot;
                c.ticket_id = None;
                c.version += 1;
                g.by_key.insert(c.key.clone(), c.id);
                g.conversations.insert(c.id, c);
            }
        }
        let n = g.outbox.len();
        g.outbox.retain(|_, (item, _)| {
            let dest = item.item.destination();
            !dests.contains(&dest) && !tickets.iter().any(|t| dest.starts_with("desk:") && dest.ends_with(&format!("/{t}")))
        });
        out.outbox_items = (n - g.outbox.len()) as u64;
        Ok(out)
    }

    async fn prune_processed(&self, before: Millis) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let n = g.processed.len();
        g.processed.retain(|_, at| *at >= before);
        Ok((n - g.processed.len()) as u64)
    }

    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().values.get(&(namespace.to_string(), key.to_string())).cloned())
    }

    async fn set_value(&self, namespace: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock().values.insert((namespace.to_string(), key.to_string()), value.to_string());
        Ok(())
    }

    async fn values(&self, namespace: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut v: Vec<(String, String)> =
            self.lock().values.iter().filter(|((ns, _), _)| ns == namespace).map(|((_, k), v)| (k.clone(), v.clone())).collect();
        v.sort();
        Ok(v)
    }

    async fn delete_values(&self, namespace: &str) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let before = g.values.len();
        g.values.retain(|(ns, _), _| ns != namespace);
        Ok(u64::try_from(before - g.values.len()).unwrap_or(u64::MAX))
    }

    async fn set_values(&self, values: &[(&str, &str, &str)]) -> Result<(), StoreError> {
        let mut g = self.lock();
        for (ns, key, value) in values {
            g.values.insert((ns.to_string(), key.to_string()), value.to_string());
        }
        Ok(())
    }
}
