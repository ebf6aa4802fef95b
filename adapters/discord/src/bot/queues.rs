//! The inbound queues: gateway events spread by conversation over [`SHARDS`] bounded queues,
//! each drained in Discord's order (`Reorder`), with the per-support-channel bookkeeping
//! (`InFlight`) that keeps the catch-up mark behind every message still queued.

use super::*;

/// How many queues (each with its worker) gateway events are spread over, by conversation.
pub const SHARDS: usize = 16;

/// How many events one queue holds before the gateway handler waits for room (its worker holds
/// at most as many more, in its `Reorder` buffer).
pub const SHARD_QUEUE: usize = 64;

/// The queue of a conversation: a channel (a DM, a ticket thread), or one customer in a support
/// channel.
pub fn shard_of(channel: ChannelId, user: Option<UserId>) -> usize {
    // Snowflakes' low bits are a counter and a process id: mix every bit in (splitmix64's
    // finaliser) before taking the remainder.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let key = mix(channel.get()) ^ user.map_or(0, |u| mix(u.get().rotate_left(17)));
    usize::try_from(mix(key) % SHARDS as u64).unwrap_or_default()
}

/// The messages queued in each support channel and not yet handled, so that the channel's mark
/// (the last message handled there, where the catch-up starts) never passes one of them: customers
/// there are handled concurrently, and a later message may be done before an earlier one.
#[derive(Debug, Default)]
pub(crate) struct InFlight(std::sync::Mutex<std::collections::HashMap<u64, Lane>>);

#[derive(Debug, Default)]
pub(super) struct Lane {
    /// Queued, not yet done.
    pub(super) pending: std::collections::BTreeSet<u64>,
    /// Handled (their mark may be written), waiting for earlier pending ones.
    pub(super) handled: std::collections::BTreeSet<u64>,
}

impl InFlight {
    pub(super) fn lanes(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Lane>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Message `id` of `channel` was queued.
    pub(super) fn queued(&self, channel: u64, id: u64) {
        self.lanes().entry(channel).or_default().pending.insert(id);
    }

    /// Message `id` was handled: if it is a queued one, its mark is kept back until the earlier
    /// ones are done (`true`), else it may be written now (`false`).
    pub(super) fn hold(&self, channel: u64, id: u64) -> bool {
        match self.lanes().get_mut(&channel) {
            Some(lane) if lane.pending.contains(&id) => {
                lane.handled.insert(id);
                true
            }
            _ => false,
        }
    }

    /// Message `id` is done with (handled or not): the mark that may be written now, if any (the
    /// last handled message before every one still pending).
    pub(super) fn finished(&self, channel: u64, id: u64) -> Option<u64> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(&channel)?;
        if !lane.pending.remove(&id) {
            return None;
        }
        let floor = lane.pending.first().copied().unwrap_or(u64::MAX);
        let below: Vec<u64> = lane.handled.range(..floor).copied().collect();
        for h in &below {
            lane.handled.remove(h);
        }
        if lane.pending.is_empty() && lane.handled.is_empty() {
            lanes.remove(&channel);
        }
        below.last().copied()
    }
}

/// An event taken off the gateway, waiting for a worker.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message was posted somewhere the bot can see.
    Message(Box<Message>),
    /// A button was pressed (acknowledged separately).
    Click(Box<ComponentInteraction>),
    /// A slash command was used.
    Command(Box<CommandInteraction>),
}

impl Incoming {
    /// Discord's order: snowflake ids grow with time.
    pub(super) fn order(&self) -> u64 {
        match self {
            Incoming::Message(m) => m.id.get(),
            Incoming::Click(c) => c.id.get(),
            Incoming::Command(c) => c.id.get(),
        }
    }

    /// Its conversation, which picks its queue: the channel, and in a support channel the
    /// customer.
    pub(super) fn conversation(&self, support: &std::collections::HashSet<u64>) -> (ChannelId, Option<UserId>) {
        let (channel, user) = match self {
            Incoming::Message(m) => (m.channel_id, m.author.id),
            Incoming::Click(c) => (c.channel_id, c.user.id),
            Incoming::Command(c) => return (c.channel_id, None),
        };
        (channel, support.contains(&channel.get()).then_some(user))
    }
}

/// What a queue holds.
#[derive(Debug)]
pub(crate) enum Job {
    /// An event to handle.
    Event(Incoming),
    /// A new session started: say so on `reached` once everything queued before is handled,
    /// then wait for `resume` (sent or dropped) while the missed messages are read.
    Pause { reached: oneshot::Sender<()>, resume: oneshot::Receiver<()> },
}

impl Job {
    /// Discord's order; a pause comes before the events gathered with it (they are the new
    /// session's).
    pub(super) fn order(&self) -> u64 {
        match self {
            Job::Event(ev) => ev.order(),
            Job::Pause { .. } => 0,
        }
    }
}

/// A new session, and the queues' pauses it waits for.
#[derive(Debug)]
pub(crate) struct Session {
    pub(super) ready: Box<Ready>,
    pub(super) reached: Vec<oneshot::Receiver<()>>,
    pub(super) resume: Vec<oneshot::Sender<()>>,
}

/// How long a worker waits, after an event, for others dispatched with it.
pub(super) const REORDER_WINDOW: Duration = Duration::from_millis(40);

/// Jobs taken off a queue, handed out in Discord's order: the first (lowest id) once it has been
/// here [`REORDER_WINDOW`], so that one dispatched with it but queued a little later still comes
/// first; at once when the buffer is full (a backlog: what is behind it is older than the window).
/// Holds at most [`SHARD_QUEUE`] jobs.
#[derive(Debug, Default)]
pub(super) struct Reorder {
    pub(super) jobs: std::collections::BTreeMap<(u64, u64), (tokio::time::Instant, Job)>,
    /// Arrival count, to keep jobs of equal order apart (and in arrival order).
    pub(super) arrivals: u64,
}

impl Reorder {
    pub(super) fn push(&mut self, job: Job, now: tokio::time::Instant) {
        self.arrivals += 1;
        self.jobs.insert((job.order(), self.arrivals), (now, job));
    }

    pub(super) fn is_full(&self) -> bool {
        self.jobs.len() >= SHARD_QUEUE
    }

    /// The next job if it may be handled now (always when `force`d); else when it may be
    /// (`None`: nothing is waiting).
    pub(super) fn next(&mut self, now: tokio::time::Instant, force: bool) -> Result<Job, Option<tokio::time::Instant>> {
        let (_, (arrived, _)) = self.jobs.first_key_value().ok_or(None)?;
        let due = *arrived + REORDER_WINDOW;
        if force || self.is_full() || due <= now {
            return self.jobs.pop_first().map(|(_, (_, job))| job).ok_or(None);
        }
        Err(Some(due))
    }

    /// Everything, in order.
    pub(super) fn drain(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.jobs).into_values().map(|(_, job)| job).collect()
    }
}

/// The sending ends of the queues, for the gateway handler.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    pub(super) shards: Arc<[mpsc::Sender<Job>]>,
    pub(super) sessions: mpsc::Sender<Session>,
    pub(super) support: Arc<std::collections::HashSet<u64>>,
    pub(crate) in_flight: Arc<InFlight>,
    pub(crate) progress: Arc<Progress>,
}

/// The receiving ends, for the workers.
#[derive(Debug)]
pub(crate) struct Queues {
    pub(super) shards: Vec<mpsc::Receiver<Job>>,
    pub(super) sessions: mpsc::Receiver<Session>,
}

/// Bounded queues, [`SHARDS`] of them, for a bot with these support channels.
pub(crate) fn queues(support_channels: &[u64]) -> (Inbox, Queues) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..SHARDS).map(|_| mpsc::channel(SHARD_QUEUE)).unzip();
    let (session_tx, session_rx) = mpsc::channel(4);
    let inbox = Inbox {
        shards: txs.into(),
        sessions: session_tx,
        support: Arc::new(support_channels.iter().copied().collect()),
        in_flight: Arc::default(),
        progress: Arc::default(),
    };
    (inbox, Queues { shards: rxs, sessions: session_rx })
}

impl Inbox {
    /// Queues an event on its conversation's queue, waiting while that queue is full.
    pub(super) async fn push(&self, ev: Incoming) {
        self.progress.received_event(ev.order());
        let (channel, user) = ev.conversation(&self.support);
        if let (Incoming::Message(m), Some(_)) = (&ev, user) {
            self.in_flight.queued(channel.get(), m.id.get());
        }
        if let Some(tx) = self.shards.get(shard_of(channel, user)) {
            let _ = tx.send(Job::Event(ev)).await;
        }
    }

    /// Pauses every queue after what it holds and hands the session to the catch-up.
    pub(super) async fn start_session(&self, ready: Ready) {
        let mut session = Session { ready: Box::new(ready), reached: Vec::new(), resume: Vec::new() };
        for tx in self.shards.iter() {
            let (reached_tx, reached_rx) = oneshot::channel();
            let (resume_tx, resume_rx) = oneshot::channel();
            if tx.send(Job::Pause { reached: reached_tx, resume: resume_rx }).await.is_ok() {
                session.reached.push(reached_rx);
                session.resume.push(resume_tx);
            }
        }
        let _ = self.sessions.send(session).await;
    }
}
