//! The outbox sender: delivers what commits queued, through the [`Channel`](crate::channel::Channel)s
//! and [`AgentDesk`](crate::channel::AgentDesk)s registered in this process, and splits long texts
//! into parts before they are queued.
//!
//! Delivery is organised around destinations (one customer chat, or one ticket on one desk): a
//! sender leases a destination ([`Store::claim_destinations`]) and sends its items one at a time,
//! in order, while up to [`DeliveryConfig::concurrency`](crate::engine::DeliveryConfig) destinations
//! are worked at once. A failure delays only its own destination (a retry reschedules the
//! destination's head and releases it); a platform's wider limit ([`ChannelError::Paused`]) pauses
//! the whole target (every chat of a channel, or every ticket of a desk). Destinations are claimed
//! longest-waiting first and a busy one gives up its turn after [`PER_TURN`] items, so one
//! customer's backlog never sits in front of the others. Leases are renewed while their sender
//! lives and released at start and shutdown, so a restarted process takes its unfinished
//! destinations back at once and a dead instance's are taken over once its lease runs out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::channel::TicketView;
use crate::engine::{Engine, Housekept};
use crate::store::{Commit, Lease, TicketRecord};
use crate::types::{DeskNotice, Millis, OutboxItem, Outgoing, Reply, TicketEventKind, now_ms};
use crate::{ChannelError, EngineError, StoreError};

/// How many items a destination sends in a row before it goes to the back of the line.
pub const PER_TURN: usize = 8;

/// How often [`Engine::run_outbox`] also forgets old handled message ids and failed items.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Rows deleted per retention batch (tickets: a tenth of it), and batches per housekeeping run.
const RETENTION_BATCH: usize = 1000;
const RETENTION_BATCHES: usize = 500;

/// Runs `batch(size)` until it does less than `size` (or [`RETENTION_BATCHES`] times), yielding
/// between batches; how many it did in all.
async fn in_batches<F, Fut>(size: usize, mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..RETENTION_BATCHES {
        let n = batch(size).await?;
        total += n;
        if n < size as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Engine {
    /// Splits every customer reply and desk text of `commit` that is longer than its target's
    /// [`TextLimit`](crate::channel::TextLimit) into parts, one outbox item each (a reply's
    /// choices go with its last part).
    pub(crate) fn split_long(&self, outbox: Vec<Outgoing>) -> Vec<Outgoing> {
        if self.config().text_limits.is_empty() {
            return outbox;
        }
        let mut out = Vec::with_capacity(outbox.len());
        for item in outbox {
            let Some(limit) = self.config().text_limits.get(&item.target()) else {
                out.push(item);
                continue;
            };
            match item {
                Outgoing::Customer { key, reply, ticket_id } if (limit.measure)(&reply.text) > limit.max => {
                    let parts = limit.split(&reply.text);
                    let last = parts.len().saturating_sub(1);
                    let mut choices = Some(reply.choices);
                    for (i, text) in parts.into_iter().enumerate() {
                        let choices = if i == last { choices.take().unwrap_or_default() } else { Vec::new() };
                        out.push(Outgoing::Customer { key: key.clone(), reply: Reply { text, choices }, ticket_id });
                    }
                }
                Outgoing::Desk { desk, ticket_id, notice, by } => {
                    let text = match &notice {
                        DeskNotice::CustomerMessage { text } | DeskNotice::AgentReply { text, .. } | DeskNotice::Note { text, .. } => {
                            Some(text.clone())
                        }
                        _ => None,
                    };
                    match text.filter(|t| (limit.measure)(t) > limit.max) {
                        Some(text) => {
                            for part in limit.split(&text) {
                                let notice = match &notice {
                                    DeskNotice::CustomerMessage { .. } => DeskNotice::CustomerMessage { text: part },
                                    DeskNotice::AgentReply { agent, .. } => DeskNotice::AgentReply { agent: agent.clone(), text: part },
                                    DeskNotice::Note { agent, .. } => DeskNotice::Note { agent: agent.clone(), text: part },
                                    other => other.clone(),
                                };
                                out.push(Outgoing::Desk { desk: desk.clone(), ticket_id, notice, by: by.clone() });
                            }
                        }
                        None => out.push(Outgoing::Desk { desk, ticket_id, notice, by }),
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    /// [`Engine::split_long`] applied to a commit's outbox.
    /// Replies to a channel that shows its customers the transcript itself
    /// ([`Channel::shows_transcript`](crate::channel::Channel::shows_transcript)) are not queued:
    /// their transcript lines, in the same commit, are their delivery.
    pub(crate) fn split_commit(&self, mut commit: Commit) -> Commit {
        {
            let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
            commit.outbox.retain(|item| match item {
                Outgoing::Customer { key, .. } => !channels.get(&key.channel).is_some_and(|c| c.shows_transcript()),
                Outgoing::Desk { .. } => true,
            });
        }
        commit.outbox = self.split_long(std::mem::take(&mut commit.outbox));
        commit
    }

    /// The targets this process delivers to right now: its channels and desks, less those a
    /// platform-wide limit pauses.
    fn targets(&self) -> Vec<String> {
        let now = now_ms();
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        paused.retain(|_, until| *until > now);
        let ch = self.channels.read().unwrap_or_else(|p| p.into_inner());
        let desks = self.desks.read().unwrap_or_else(|p| p.into_inner());
        ch.keys().cloned().chain(desks.keys().map(|d| format!("desk:{d}"))).filter(|t| !paused.contains_key(t)).collect()
    }

    fn paused_until(&self, target: &str) -> Option<Millis> {
        let now = now_ms();
        self.paused.lock().unwrap_or_else(|p| p.into_inner()).get(target).copied().filter(|&until| until > now)
    }

    async fn claim(&self, limit: usize) -> Result<Vec<(Lease, OutboxItem)>, StoreError> {
        let targets = self.targets();
        let d = &self.config().delivery;
        self.store().claim_destinations(&targets, &d.instance, now_ms(), limit, ms(d.lease)).await
    }

    /// Delivers what is due in the outbox for the channels and desks registered in this process:
    /// up to [`DeliveryConfig::concurrency`](crate::engine::DeliveryConfig) destinations at once,
    /// each for one turn. Returns how many items were handled (sent, rescheduled or given up).
    pub async fn deliver_due(&self) -> Result<usize, EngineError> {
        let claims = self.claim(self.config().delivery.concurrency.max(1)).await?;
        if claims.is_empty() {
            return Ok(0);
        }
        let done = futures_util::future::join_all(claims.into_iter().map(|(lease, item)| self.work(lease, item))).await;
        Ok(done.into_iter().sum())
    }

    /// Delivers until nothing is due right now (for tests and one-shot commands).
    pub async fn flush(&self) -> Result<(), EngineError> {
        while self.deliver_due().await? > 0 {}
        Ok(())
    }

    /// Works one leased destination for a turn: sends its due items in order until none is due,
    /// one is rescheduled, or [`PER_TURN`] went out. Returns how many items it handled. While it
    /// works, the lease is in `self.working` so the heartbeat renews it.
    async fn work(&self, lease: Lease, first: OutboxItem) -> usize {
        self.working.lock().unwrap_or_else(|p| p.into_inner()).insert(lease.token.clone(), lease.clone());
        let n = self.work_turn(&lease, first).await;
        self.working.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease.token);
        n
    }

    async fn work_turn(&self, lease: &Lease, first: OutboxItem) -> usize {
        let lease_ms = ms(self.config().delivery.lease);
        let mut item = first;
        let mut handled = 0;
        loop {
            handled += 1;
            let target = item.item.target();
            let outcome = match self.paused_until(&target) {
                // The whole channel waits: so does this destination, without counting an attempt.
                Some(until) => Outcome::Retry { attempts: item.attempts, at: until },
                None => match self.send(&item).await {
                    Ok(()) => Outcome::Done,
                    Err(e) => self.outcome(&item, e),
                },
            };
            crate::metrics::outbox(&target, outcome.result());
            let keep_going = match outcome {
                Outcome::Done => self.persist(lease, || self.store().outbox_done(lease, item.id)).await,
                Outcome::Retry { attempts, at } => {
                    let _ = self.persist(lease, || self.store().outbox_retry(lease, item.id, attempts, at)).await;
                    return handled;
                }
                Outcome::GiveUp(reason) => self.give_up(lease, &item, reason).await,
            };
            // Shutting down: finish the send in flight, take no more (the rest stays queued).
            if !keep_going || self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return handled;
            }
            let next = self.persist_value(lease, || self.store().outbox_next(lease, now_ms(), lease_ms)).await;
            match next {
                Some(Some(next)) if handled >= PER_TURN => {
                    // Its turn is over: to the back of the line (now), behind destinations waiting longer.
                    let _ = self.persist(lease, || self.store().outbox_retry(lease, next.id, next.attempts, now_ms())).await;
                    return handled;
                }
                Some(Some(next)) => item = next,
                _ => return handled,
            }
        }
    }

    /// Runs a store change for a leased destination until it is stored: a database that does not
    /// answer is retried (the lease stays ours until someone else claims it), a lost lease ends
    /// the turn. Returns whether the turn may go on.
    async fn persist<F, Fut>(&self, lease: &Lease, op: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), StoreError>>,
    {
        self.persist_value(lease, op).await.is_some()
    }

    async fn persist_value<T, F, Fut>(&self, lease: &Lease, op: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut wait = Duration::from_millis(100);
        loop {
            match op().await {
                Ok(v) => return Some(v),
                Err(StoreError::LeaseLost(dest)) => {
                    tracing::warn!(%dest, "another sender took this outbox destination over");
                    return None;
                }
                Err(e) if e.is_transient() => {
                    crate::metrics::store_error("outbox", &e);
                    tracing::warn!(dest = %lease.dest, error = %e, "cannot record an outbox delivery, retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    crate::metrics::store_error("outbox", &e);
                    tracing::error!(dest = %lease.dest, error = %e, "cannot record an outbox delivery");
                    return None;
                }
            }
        }
    }

    async fn send(&self, item: &OutboxItem) -> Result<(), ChannelError> {
        let nonce = item.id.to_string();
        match &item.item {
            Outgoing::Customer { key, reply, .. } => {
                let ch = self.channels.read().unwrap_or_else(|p| p.into_inner()).get(&key.channel).cloned();
                let ch = ch.ok_or_else(|| ChannelError::UnknownChannel(key.channel.clone()))?;
                ch.send_once(&key.chat, reply, &nonce).await
            }
            Outgoing::Desk { desk, ticket_id, notice, by } => {
                let d = self.desks.read().unwrap_or_else(|p| p.into_inner()).get(desk).cloned();
                let d = d.ok_or_else(|| ChannelError::UnknownChannel(format!("desk:{desk}")))?;
                let Some(tid) = ticket_id else { return Ok(()) };
                let Some(ticket) = self.store().ticket(*tid).await.map_err(|e| ChannelError::Transient(e.to_string()))? else {
                    return Ok(());
                };
                let recent = if matches!(notice, DeskNotice::Opened) {
                    self.store()
                        .transcript(ticket.conversation_id, self.config().summary_messages)
                        .await
                        .map_err(|e| ChannelError::Transient(e.to_string()))?
                } else {
                    Vec::new()
                };
                d.notify_once(&TicketView { ticket, recent }, notice, by.as_deref(), &nonce).await
            }
        }
    }

    /// What a failed send leads to.
    fn outcome(&self, item: &OutboxItem, err: ChannelError) -> Outcome {
        let now = now_ms();
        let attempts = item.attempts + 1;
        let retry = &self.config().retry;
        match err {
            ChannelError::Blocked(why) => Outcome::GiveUp(format!("the customer cannot be reached: {why}")),
            ChannelError::Permanent(why) => Outcome::GiveUp(why),
            _ if attempts >= retry.max_attempts => Outcome::GiveUp(format!("gave up after {attempts} attempts: {err}")),
            ChannelError::Paused(wait) => {
                let target = item.item.target();
                tracing::info!(%target, wait_ms = wait.as_millis() as u64, "the platform paused the whole channel");
                let until = now + ms(wait);
                let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
                let entry = paused.entry(target).or_insert(until);
                *entry = (*entry).max(until);
                Outcome::Retry { attempts: item.attempts, at: until }
            }
            ChannelError::RateLimited(wait) => {
                tracing::info!(item = item.id, wait_ms = wait.as_millis() as u64, "rate limited, will retry");
                Outcome::Retry { attempts, at: now + ms(wait) }
            }
            ChannelError::Transient(_) | ChannelError::UnknownChannel(_) => {
                let wait = retry.backoff(item.attempts);
                tracing::info!(item = item.id, attempts, error = %err, "delivery failed, will retry");
                Outcome::Retry { attempts, at: now + ms(wait) }
            }
        }
    }

    /// Marks an item failed and, in the same transaction, records the failure on its ticket and
    /// tells the ticket's desks; returns whether the turn may go on.
    async fn give_up(&self, lease: &Lease, item: &OutboxItem, reason: String) -> bool {
        let now = now_ms();
        tracing::warn!(item = item.id, target = %item.item.target(), %reason, "giving up on an outbox item");
        let record = match &item.item {
            Outgoing::Customer { ticket_id: Some(tid), .. } => {
                let outbox: Vec<Outgoing> = self
                    .config()
                    .desks
                    .iter()
                    .map(|desk| Outgoing::Desk {
                        desk: desk.clone(),
                        ticket_id: Some(*tid),
                        notice: DeskNotice::DeliveryFailed { reason: reason.clone() },
                        by: None,
                    })
                    .collect();
                Some(TicketRecord {
                    ticket_id: *tid,
                    events: vec![TicketEventKind::DeliveryFailed { reason: reason.clone() }],
                    outbox: self.split_long(outbox),
                })
            }
            _ => None,
        };
        let notify = record.is_some();
        let stored = self.persist(lease, || self.store().outbox_fail(lease, item.id, &reason, now, record.clone())).await;
        if stored && notify {
            self.wake.notify_one();
        }
        stored
    }

    /// Forgets handled message ids older than [`EngineConfig::dedup_retention`](crate::engine::EngineConfig)
    /// and undeliverable outbox items older than its `failed_retention`, so neither table grows
    /// forever. Says how many of each were forgotten.
    pub async fn housekeep(&self) -> Result<Housekept, EngineError> {
        let cutoff = |keep: Duration| now_ms().saturating_sub(ms(keep));
        let handled_ids = self.store().prune_processed(cutoff(self.config().dedup_retention)).await?;
        let failed_items = self.store().prune_failed_outbox(cutoff(self.config().failed_retention)).await?;
        // Customers' words past their retention go in batches, each its own short transaction, so
        // that messages keep being stored meanwhile.
        let retention = self.config().retention;
        let mut transcript_lines = 0;
        if let Some(keep) = retention.transcript {
            transcript_lines = in_batches(RETENTION_BATCH, |n| self.store().prune_transcript(cutoff(keep), n)).await?;
        }
        let mut erased_tickets = 0;
        if let Some(keep) = retention.closed_tickets {
            erased_tickets = in_batches(RETENTION_BATCH / 10, |n| self.store().erase_closed_tickets(cutoff(keep), n, "retention")).await?;
        }
        self.flood.forget_idle();
        // Delivered items leave free pages behind (SQLite): give up to ~40 MB of them back.
        let pages = self.store().reclaim_space(10_000).await?;
        if pages > 0 {
            tracing::info!(pages, "gave free database pages back to the file system");
        }
        Ok(Housekept { handled_ids, failed_items, transcript_lines, erased_tickets })
    }

    /// Runs the outbox until `shutdown` completes: works up to `delivery.concurrency` destinations
    /// at once, claims more as soon as something is committed or a destination is done, and polls
    /// every `poll` so items committed by other processes and retries go out too. On shutdown,
    /// sends in flight get `delivery.shutdown_grace` to finish; what is left stays queued.
    pub async fn run_outbox(self: Arc<Self>, poll: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        self.stopping.store(false, std::sync::atomic::Ordering::SeqCst);
        let d = self.config().delivery.clone();
        match self.store().release_leases(&d.instance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(destinations = n, "took back outbox destinations left by an earlier run"),
            Err(e) => tracing::warn!(error = %e, "cannot release earlier outbox leases"),
        }
        let mut workers = tokio::task::JoinSet::new();
        let mut heartbeat = tokio::time::interval((d.lease / 3).max(Duration::from_millis(100)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping = tokio::time::Instant::now();
        let mut store_down = false;
        let mut gauges = crate::metrics::Gauges::default();
        loop {
            gauges.refresh(&**self.store()).await;
            if tokio::time::Instant::now() >= housekeeping {
                housekeeping += HOUSEKEEPING_EVERY;
                match self.housekeep().await {
                    Ok(Housekept { handled_ids: 0, failed_items: 0, transcript_lines: 0, erased_tickets: 0 }) => {}
                    Ok(h) => tracing::info!(
                        handled_ids = h.handled_ids,
                        failed_items = h.failed_items,
                        transcript_lines = h.transcript_lines,
                        erased_tickets = h.erased_tickets,
                        "forgot what is past its retention"
                    ),
                    Err(e) => {
                        crate::metrics::engine_error("housekeeping", &e);
                        tracing::warn!(error = %e, "cannot prune handled message ids and failed items");
                    }
                }
            }
            let free = d.concurrency.max(1).saturating_sub(workers.len());
            if free > 0 {
                match self.claim(free).await {
                    Ok(claims) => {
                        store_down = false;
                        for (lease, item) in claims {
                            let engine = Arc::clone(&self);
                            workers.spawn(async move { engine.work(lease, item).await });
                        }
                    }
                    Err(e) => {
                        crate::metrics::store_error("outbox", &e);
                        if !store_down {
                            tracing::error!(error = %e, "cannot claim outbox items");
                        }
                        store_down = true;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = workers.join_next(), if !workers.is_empty() => {}
                () = self.wake.notified() => {}
                _ = heartbeat.tick() => self.renew().await,
                () = tokio::time::sleep(poll) => {}
            }
        }
        // Shutting down: sends in flight may finish (for a while); no worker takes another item,
        // and the rest stays queued for the next start.
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let pending = workers.len();
        let finished = tokio::time::timeout(d.shutdown_grace, async { while workers.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::info!(destinations = workers.len(), of = pending, "left unfinished outbox destinations for the next start");
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
        if let Err(e) = self.store().release_leases(&d.instance).await {
            tracing::warn!(error = %e, "cannot release outbox leases at shutdown");
        }
    }

    /// Extends the leases of the destinations this process is working on.
    async fn renew(&self) {
        let leases: Vec<Lease> = self.working.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        if leases.is_empty() {
            return;
        }
        let until = now_ms() + ms(self.config().delivery.lease);
        if let Err(e) = self.store().renew_leases(&leases, until).await {
            tracing::warn!(error = %e, "cannot renew outbox leases");
        }
    }
}

/// What becomes of an item after one attempt.
enum Outcome {
    Done,
    Retry { attempts: i64, at: Millis },
    GiveUp(String),
}

impl Outcome {
    /// Its name in the outbox metrics.
    fn result(&self) -> &'static str {
        match self {
            Outcome::Done => "delivered",
            Outcome::Retry { .. } => "retried",
            Outcome::GiveUp(_) => "failed",
        }
    }
}

/// Targets paused by a platform-wide limit, until when.
pub(crate) type Paused = std::sync::Mutex<HashMap<String, Millis>>;
