//! The engine: the thin async layer around the pure rules. It owns the settings, the pack, the
//! registered [`Channel`]s and [`AgentDesk`]s, and turns a customer's [`Inbound`] into one atomic
//! [`Commit`] (transcript, owner change, ticket, events, outbox), planning again when another
//! writer changed the conversation first. Agent commands are in [`crate::agents`]; delivering the
//! outbox is in [`crate::outbox`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::channel::{AgentDesk, Channel, TextLimit};
use crate::dialogue::{self, Action, Ctx, Input, Phrase, Step};
use crate::hant::{self, in_script, in_script_choice};
use crate::matcher::normalize::clean;
use crate::matcher::{Matcher, Thresholds};
use crate::pack::Pack;
use crate::store::{Commit, NewConversation, Store};
use crate::types::{
    Actor, Author, Content, Conversation, DeskNotice, Inbound, Line, MAX_MESSAGE_CHARS, Millis, Outgoing, Owner, Reply, Ticket,
    TicketEventKind, TicketStatus, now_ms,
};
use crate::{EngineError, Lang, StoreError};

/// How often a conversation is re-read and retried when another instance changed it.
pub(crate) const CONFLICT_RETRIES: u32 = 40;

/// Writers to one conversation in this process take turns on one of these locks (by key hash), so
/// only other instances sharing the database can cause a version conflict.
const STRIPES: usize = 64;

/// A short, growing, jittered pause before retrying a conflicting commit.
pub(crate) async fn conflict_pause(attempt: u32) {
    let jitter = u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) % 5);
    tokio::time::sleep(Duration::from_millis(1 + jitter + u64::from(attempt.min(10)) * 2)).await;
}

/// Outbox retry policy.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First backoff.
    pub base: Duration,
    /// Longest backoff.
    pub max: Duration,
    /// Attempts before giving up (the item stays stored, marked failed, and the ticket says so).
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_millis(500), max: Duration::from_secs(300), max_attempts: 60 }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Matching thresholds.
    pub thresholds: Thresholds,
    /// Agent allowlist: actor ids or roles (`telegram:123`, `desk:alice`, `discord-role:42`); an
    /// entry ending in `*` matches any id with that prefix.
    pub agents: Vec<String>,
    /// The agent desks deployed (by name), wherever they run; each gets every ticket notice.
    pub desks: Vec<String>,
    /// Outbox retries.
    pub retry: RetryPolicy,
    /// How many recent messages a new ticket's summary shows.
    pub summary_messages: usize,
    /// How long handled platform message ids are remembered to refuse redeliveries (platforms
    /// redeliver within minutes or hours; Telegram keeps updates for 24 hours).
    pub dedup_retention: Duration,
    /// A customer who writes while their ticket waits in the queue is told their place again at
    /// most this often (zero: never; they were told once when the ticket opened).
    pub queue_reminder: Duration,
    /// How long outbox items that could not be delivered are kept for inspection (each failure
    /// is also on its ticket).
    pub failed_retention: Duration,
    /// How the outbox sends: how many destinations at once, leases, shutdown.
    pub delivery: DeliveryConfig,
    /// The longest message each outbox target takes (a channel name such as `telegram`, or
    /// `desk:<name>`), as its adapter says; longer replies and desk texts are split before they
    /// are queued. A target without one gets its text whole.
    pub text_limits: HashMap<String, TextLimit>,
    /// How fast one customer may write before their messages are stored but not answered.
    pub customer_limit: crate::guard::CustomerLimit,
    /// How long transcripts and closed tickets' texts are kept.
    pub retention: Retention,
    /// Whether a customer is asked to rate the help (1 to 5) when their ticket closes.
    pub satisfaction: bool,
    /// When agents are at work (`None`: always). Outside them a handoff still opens its ticket,
    /// and the customer is told when the team is back instead of their place in the queue.
    pub hours: Option<crate::hours::OfficeHours>,
}

/// How the outbox sender works.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// How many destinations (customer chats, tickets on a desk) are sent to at once; each
    /// destination's items still go one at a time, in order.
    pub concurrency: usize,
    /// This sender's name on the destinations it leases. A restarted process with the same name
    /// takes its unfinished destinations back at once; give each instance sharing a database its
    /// own (the default is the host name and the process id).
    pub instance: String,
    /// How long a lease on a destination lasts without renewal; a dead sender's destinations are
    /// taken over after this. Leases are renewed every third of it while their sender lives.
    pub lease: Duration,
    /// On shutdown, how long sends in flight may finish; the rest stays queued for the next start.
    pub shutdown_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "switchboard".into());
        DeliveryConfig {
            concurrency: 32,
            instance: format!("{host}:{}", std::process::id()),
            lease: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            thresholds: Thresholds::default(),
            agents: Vec::new(),
            desks: Vec::new(),
            retry: RetryPolicy::default(),
            summary_messages: 10,
            dedup_retention: Duration::from_secs(7 * 24 * 3600),
            queue_reminder: Duration::from_secs(5 * 60),
            failed_retention: Duration::from_secs(30 * 24 * 3600),
            delivery: DeliveryConfig::default(),
            text_limits: HashMap::new(),
            customer_limit: crate::guard::CustomerLimit::default(),
            retention: Retention::default(),
            satisfaction: true,
            hours: None,
        }
    }
}

/// What [`Engine::housekeep`] forgot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekept {
    /// Handled platform message ids past their retention.
    pub handled_ids: u64,
    /// Undeliverable outbox items past their retention.
    pub failed_items: u64,
    /// Transcript lines past `retention.transcript`.
    pub transcript_lines: u64,
    /// Tickets closed longer than `retention.closed_tickets` whose texts were erased.
    pub erased_tickets: u64,
}

/// How long customers' words are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Transcript lines older than this are deleted (`None`: kept).
    pub transcript: Option<Duration>,
    /// Tickets closed longer ago than this lose their texts and details; their times, reason and
    /// outcome stay for reports (`None`: kept).
    pub closed_tickets: Option<Duration>,
}

/// What the engine did with an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The action.
    pub action: Action,
    /// The intent answered or handed off for.
    pub intent: Option<String>,
    /// The reply language.
    pub lang: Lang,
    /// The replies queued for the customer.
    pub replies: Vec<Reply>,
    /// The ticket opened or written to.
    pub ticket_id: Option<i64>,
}

pub use crate::agents::{AGENT_NAMES, AgentCommand, AgentOutcome, TicketDetail};

/// A pack with the matcher trained on it; swapped whole on reload.
#[derive(Debug)]
pub struct Brain {
    /// The pack.
    pub pack: Pack,
    /// Its matcher.
    pub matcher: Matcher,
}

impl Brain {
    /// Trains a matcher for `pack`.
    pub fn new(pack: Pack) -> Brain {
        let matcher = Matcher::train(&pack.examples());
        Brain { pack, matcher }
    }
}

/// The support engine shared by every adapter.
#[derive(Debug)]
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    brain: RwLock<Arc<Brain>>,
    pub(crate) config: EngineConfig,
    pub(crate) channels: RwLock<HashMap<String, Arc<dyn Channel>>>,
    pub(crate) desks: RwLock<HashMap<String, Arc<dyn AgentDesk>>>,
    /// Woken when a commit queued something to deliver.
    pub(crate) wake: Notify,
    /// Outbox targets a platform-wide limit pauses, until when.
    pub(crate) paused: crate::outbox::Paused,
    /// The outbox destinations this process is working on, by lease token (renewed by the heartbeat).
    pub(crate) working: std::sync::Mutex<HashMap<String, crate::store::Lease>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Commits planned again because another writer changed the data first.
    pub(crate) conflicts: std::sync::atomic::AtomicU64,
    /// Set while [`Engine::run_outbox`] shuts down: workers finish their send and take no more.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Agents' names by actor id, as recorded in the store.
    pub(crate) names: std::sync::Mutex<HashMap<String, String>>,
    /// Each customer's token bucket.
    pub(crate) flood: crate::guard::FloodGate,
    /// The blocks in force, as last read from the store.
    pub(crate) blocks: crate::guard::BlockCache,
    /// Told the conversation id of every commit of this process that added transcript lines.
    pub(crate) written: tokio::sync::broadcast::Sender<i64>,
}

impl Engine {
    /// An engine over `store` answering from `pack`.
    pub fn new(store: Arc<dyn Store>, pack: Pack, config: EngineConfig) -> Arc<Engine> {
        Engine::with_brain(store, Arc::new(Brain::new(pack)), config)
    }

    /// An engine with an already trained brain.
    pub fn with_brain(store: Arc<dyn Store>, brain: Arc<Brain>, config: EngineConfig) -> Arc<Engine> {
        let flood = crate::guard::FloodGate::new(config.customer_limit);
        Arc::new(Engine {
            store,
            brain: RwLock::new(brain),
            config,
            channels: RwLock::new(HashMap::new()),
            desks: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            paused: std::sync::Mutex::new(HashMap::new()),
            working: std::sync::Mutex::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            conflicts: std::sync::atomic::AtomicU64::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
            names: std::sync::Mutex::new(HashMap::new()),
            flood,
            blocks: crate::guard::BlockCache::default(),
            written: tokio::sync::broadcast::channel(4096).0,
        })
    }

    /// The conversation ids whose transcript this process has just added to (a customer's
    /// message, the bot's replies, an agent's reply), as they are committed. Pages that show a
    /// transcript (the web chat) read the new lines then; a receiver that lags is told
    /// ([`tokio::sync::broadcast::error::RecvError::Lagged`]) and should read everything it shows.
    /// Other instances' lines are not here: read [`crate::store::Store::transcript_touched`].
    pub fn transcript_updates(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.written.subscribe()
    }

    /// Tells [`Engine::transcript_updates`] that `conversation` has new lines.
    pub(crate) fn wrote(&self, conversation: i64) {
        let _ = self.written.send(conversation);
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current pack and matcher.
    pub fn brain(&self) -> Arc<Brain> {
        self.brain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the pack (hot reload); conversations in progress continue with the new one.
    pub fn replace_brain(&self, brain: Arc<Brain>) {
        *self.brain.write().unwrap_or_else(|p| p.into_inner()) = brain;
    }

    /// How many commits were planned again because another writer (another instance, or
    /// another engine on the same database) changed the conversation or ticket first.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `text` holds a secret the current pack's rules mask (adapters delete such a
    /// message where it was posted in public, before handing it over).
    pub fn holds_secret(&self, text: &str) -> bool {
        !self.brain().pack.redactor.redact(text).found.is_empty()
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Delivers this process's outbox items for `channel.name()` through `channel`.
    pub fn add_channel(&self, channel: Arc<dyn Channel>) {
        crate::metrics::channel_added(channel.name());
        self.channels.write().unwrap_or_else(|p| p.into_inner()).insert(channel.name().to_string(), channel);
        self.wake.notify_one();
    }

    /// Delivers ticket notices for `desk.name()` (which must be in [`EngineConfig::desks`]) through `desk`.
    pub fn add_desk(&self, desk: Arc<dyn AgentDesk>) {
        crate::metrics::target_added(&format!("desk:{}", desk.name()));
        self.desks.write().unwrap_or_else(|p| p.into_inner()).insert(desk.name().to_string(), desk);
        self.wake.notify_one();
    }

    pub(crate) fn stripe(&self, key: &crate::types::ConversationKey) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[(h.finish() % STRIPES as u64) as usize]
    }

    /// Handles one customer message: stores it, answers or hands off, and queues the replies.
    pub async fn handle(&self, inbound: Inbound) -> Result<Handled, EngineError> {
        let (channel, brain) = (inbound.channel.clone(), self.brain());
        crate::metrics::handled(&brain.pack, &channel, self.handle_inbound(inbound).await)
    }

    async fn handle_inbound(&self, mut inbound: Inbound) -> Result<Handled, EngineError> {
        inbound.customer_name = crate::channel::display_name(&inbound.customer_name, "Customer");
        // A photo whose caption is only blanks is a photo.
        if let Content::Captioned { kind, text } = &mut inbound.content
            && clean(text).trim().is_empty()
        {
            inbound.content = Content::Unsupported(std::mem::take(kind));
        }
        // Secrets are masked before the message is stored, matched, logged or shown to anyone.
        // The current pack's redactor: its own patterns change with it on reload.
        let brain = self.brain();
        let (mut hidden, mut secrets_only, mut bare) = (false, false, None);
        if let Content::Text(t) | Content::Captioned { text: t, .. } = &mut inbound.content {
            let red = brain.pack.redactor.redact(t);
            if !red.found.is_empty() {
                *t = red.text;
                hidden = true;
                secrets_only = red.nothing_else;
                // What the matcher reads: the secrets cut out, not their placeholders' words.
                bare = Some(clean(&red.bare).chars().take(MAX_MESSAGE_CHARS).collect::<String>());
            }
        }
        // The platform's time, never ahead of ours: a clock running fast must not hold replies
        // back (outbox items are due at their commit's time).
        let now = now_ms();
        let at = if inbound.at > 0 { inbound.at.min(now) } else { now };
        let mute = self.mute(&inbound, at).await?;
        let (text, too_long) = match &inbound.content {
            Content::Text(t) | Content::Captioned { text: t, .. } => {
                let c = clean(t);
                if c.trim().is_empty() {
                    return Ok(Handled { action: Action::Ignored, intent: None, lang: Lang::En, replies: vec![], ticket_id: None });
                }
                let n = c.chars().count();
                (Some(if n > MAX_MESSAGE_CHARS { c.chars().take(MAX_MESSAGE_CHARS).collect() } else { c }), n > MAX_MESSAGE_CHARS)
            }
            _ => (None, false),
        };
        let first_lang = dialogue::choose_lang(text.as_deref(), inbound.lang_hint.as_deref(), Lang::En);
        let new = NewConversation {
            key: crate::types::ConversationKey { channel: inbound.channel.clone(), chat: inbound.conversation.clone() },
            customer_id: inbound.customer_id.clone(),
            customer_name: inbound.customer_name.clone(),
            lang: first_lang,
            at,
        };
        let _turn = self.stripe(&new.key).lock().await;
        for attempt in 0..CONFLICT_RETRIES {
            let conv = self.store.open_conversation(new.clone()).await?;
            let (mut commit, mut handled) = self
                .plan_inbound(&brain, conv, &inbound, text.as_deref(), Reading { too_long, secrets_only, bare: bare.as_deref() }, at, mute)
                .await?;
            if hidden && mute != Mute::Blocked {
                // Said first, in the customer's language and script, before any answer.
                let (lang, traditional) = (handled.lang, commit.conversation.state.traditional);
                let phrase = match inbound.deleted {
                    None => Phrase::SecretHidden,
                    Some(true) => Phrase::SecretHiddenDeleted,
                    Some(false) => Phrase::SecretHiddenDeleteIt,
                };
                let notice = in_script(Reply::text(phrase.text(lang)), lang, traditional);
                commit.transcript.insert(1.min(commit.transcript.len()), Line::bot(&notice));
                let key = commit.conversation.key.clone();
                commit.outbox.insert(0, Outgoing::Customer { key, reply: notice.clone(), ticket_id: None });
                handled.replies.insert(0, notice);
            }
            commit.outcome = Some(crate::types::Outcome { intent: handled.intent.clone(), action: handled.action.as_str().to_string() });
            let opened = commit.open_ticket.as_ref().map(|t| t.reason.clone());
            let rated = commit.ticket_events.iter().find_map(|(_, e)| match e {
                TicketEventKind::Rated { score, .. } => Some(*score),
                _ => None,
            });
            let lines = !commit.transcript.is_empty();
            match self.store.commit(self.split_commit(commit)).await {
                Ok(done) => {
                    self.wake.notify_one();
                    if lines {
                        self.wrote(done.conversation.id);
                    }
                    crate::metrics::handoff(&brain.pack, &inbound.channel, opened.as_ref());
                    if let Some(score) = rated {
                        crate::metrics::rated(&inbound.channel, score);
                    }
                    let ticket_id = match handled.action {
                        Action::Handoff | Action::Silent | Action::Waiting => done.ticket_id,
                        // Cut while a person owns the conversation: still that ticket's message.
                        Action::TooLong | Action::Blocked | Action::Limited => handled.ticket_id.and(done.ticket_id),
                        Action::Rated => handled.ticket_id,
                        _ => None,
                    };
                    return Ok(Handled { ticket_id, ..handled });
                }
                Err(StoreError::Conflict(_)) => {
                    self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conflict_pause(attempt).await;
                }
                Err(StoreError::Duplicate) => {
                    return Ok(Handled { action: Action::Duplicate, intent: None, lang: first_lang, replies: vec![], ticket_id: None });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy)
    }

    /// Whether the customer is blocked or over their limit (a block is read from the store, so
    /// one set on another instance holds here too; the token bucket is this process's).
    async fn mute(&self, inbound: &Inbound, at: Millis) -> Result<Mute, EngineError> {
        let customer = crate::guard::customer_key(&inbound.channel, &inbound.customer_id);
        if self.blocks.get(&*self.store, &customer).await?.is_some_and(|b| b.holds(at)) {
            return Ok(Mute::Blocked);
        }
        // Only messages written just now count: a backlog the platform hands over after an outage
        // (a customer's messages of the last hour, all at once) is no flood.
        let live = at >= now_ms().saturating_sub(LIVE_WINDOW_MS);
        Ok(if !live || self.flood.allow(&customer) { Mute::No } else { Mute::Flood })
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_inbound(
        &self,
        brain: &Brain,
        conv: Conversation,
        inbound: &Inbound,
        text: Option<&str>,
        Reading { too_long, secrets_only, bare }: Reading<'_>,
        at: Millis,
        mute: Mute,
    ) -> Result<(Commit, Handled), EngineError> {
        let mut next = conv.clone();
        next.customer_name = inbound.customer_name.clone();
        let mut commit = Commit::new(next, at);
        commit.dedup = Some((inbound.channel.clone(), inbound.message_id.clone()));
        let stored = match &inbound.content {
            Content::Text(_) => text.unwrap_or_default().to_string(),
            Content::Choice(p) => {
                format!("[{}]", choice_label(&conv, p).map_or_else(|| payload_label(brain, conv.lang, p), str::to_string))
            }
            Content::Unsupported(kind) => format!("[{kind}]"),
            Content::Captioned { kind, .. } => format!("[{kind}] {}", text.unwrap_or_default()),
        };
        commit.transcript.push(Line::from((Author::Customer, stored.clone())));
        // The language and (for Chinese) the script to answer in; the script is remembered even
        // while a person answers, for the bot's words when the ticket ends.
        let lang = dialogue::choose_lang(text, inbound.lang_hint.as_deref(), conv.lang);
        let traditional = hant::choose(text, inbound.lang_hint.as_deref(), conv.state.traditional);
        commit.conversation.state.traditional = traditional;

        // Blocked, or writing too fast: kept in the transcript (and on the ticket's history when
        // one is open), neither answered nor relayed to the desks. A flood is told once.
        if mute != Mute::No {
            let action = if mute == Mute::Blocked { Action::Blocked } else { Action::Limited };
            let mut handled = Handled { action, intent: None, lang: conv.lang, replies: vec![], ticket_id: conv.ticket_id };
            if mute == Mute::Flood && conv.state.slowed_at.is_none() {
                let reply = in_script(Reply::text(Phrase::SlowDown.text(lang)), lang, traditional);
                commit.transcript.push(Line::bot(&reply));
                commit.outbox.push(Outgoing::Customer { key: conv.key.clone(), reply: reply.clone(), ticket_id: None });
                commit.conversation.state.slowed_at = Some(at);
                handled.replies.push(reply);
                handled.lang = lang;
            }
            return Ok((commit, handled));
        }
        // Within the limit a minute after being told: the next flood is told again. (Within the
        // minute, the bucket's trickle answers a message now and then; the notice is not repeated.)
        let mut conv = conv;
        if conv.state.slowed_at.is_some_and(|told| at.saturating_sub(told) >= SLOWED_FOR_MS) {
            conv.state.slowed_at = None;
            commit.conversation.state.slowed_at = None;
        }

        // A human owns the conversation: the message goes to the ticket, the bot stays silent.
        if conv.owner != Owner::Bot
            && let Some(tid) = conv.ticket_id
        {
            let line = if too_long { format!("{stored} [cut at {MAX_MESSAGE_CHARS} characters]") } else { stored };
            commit.events.push(TicketEventKind::CustomerMessage { text: line.clone() });
            self.notify_desks(&mut commit, Some(tid), DeskNotice::CustomerMessage { text: line }, None);
            let mut handled = Handled { action: Action::Silent, intent: None, lang: conv.lang, replies: vec![], ticket_id: Some(tid) };
            // Cut: the customer is told, as outside a ticket.
            if too_long {
                let reply = in_script(Reply::text(Phrase::TooLong.text(lang)), lang, traditional);
                commit.transcript.push(Line::bot(&reply));
                commit.outbox.push(Outgoing::Customer { key: conv.key.clone(), reply: reply.clone(), ticket_id: None });
                handled = Handled { action: Action::TooLong, lang, replies: vec![reply], ..handled };
            }
            // Still nobody on it: say so now and then, rather than leave the customer unanswered.
            let reminder = i64::try_from(self.config.queue_reminder.as_millis()).unwrap_or(i64::MAX);
            if conv.owner == Owner::Queue
                && reminder > 0
                && conv.state.queue_told_at.is_none_or(|told| at.saturating_sub(told) >= reminder)
                && let Some(position) = self.store.queue_position(tid).await?
            {
                let text = match self.away_for_ticket(tid, at, lang).await? {
                    Some(back) => dialogue::still_away_text(lang, back.as_deref()),
                    None => dialogue::still_queued_text(lang, position),
                };
                let reply = in_script(Reply::text(text), lang, traditional);
                commit.transcript.push(Line::bot(&reply));
                commit.outbox.push(Outgoing::Customer { key: conv.key.clone(), reply: reply.clone(), ticket_id: None });
                commit.conversation.state.queue_told_at = Some(at);
                handled.replies.push(reply);
                handled.lang = lang;
                if !too_long {
                    handled.action = Action::Waiting;
                }
            }
            return Ok((commit, handled));
        }

        commit.conversation.lang = lang;
        commit.conversation.owner = Owner::Bot;
        // A rating asked for long ago has lapsed: a number now is a new message.
        if let dialogue::Pending::Rating { asked_at, .. } = conv.state.pending
            && at.saturating_sub(asked_at) > dialogue::RATING_WINDOW_MS
        {
            conv.state.pending = dialogue::Pending::Nothing;
        }
        let mut step = match (&inbound.content, text) {
            (Content::Unsupported(_), _) => canned(&conv, lang, Action::Unsupported, Phrase::TextOnly),
            (_, Some(_)) if too_long => canned(&conv, lang, Action::TooLong, Phrase::TooLong),
            // Nothing but secrets: the notice that they were hidden is the whole answer.
            (_, Some(_)) if secrets_only => {
                Step { state: conv.state.clone(), lang, replies: vec![], action: Action::Hidden, intent: None, handoff: None, rating: None }
            }
            (Content::Choice(p), _) => self.step(brain, &conv, lang, Input::Choice(p)),
            (_, t) => self.step(brain, &conv, lang, Input::Text(bare.or(t).unwrap_or_default())),
        };
        // The customer's place in the queue is read only when a ticket opens; while nobody is at
        // work, they are told when the team is back instead.
        if let Some(h) = &step.handoff {
            let text = match self.away(&h.reason, at, lang) {
                Some(back) => dialogue::away_text(lang, back.as_deref()),
                None => dialogue::queued_text(lang, dialogue::queue_position(&self.store.queue_counts().await?, h.priority)),
            };
            step.replies.push(Reply::text(text));
        }
        // A rating goes on the ticket that closed (the desks are told), with the comment as
        // stored: masked, not with its secrets cut out.
        if let Some(r) = &mut step.rating {
            if let Some((_, comment)) = text.and_then(dialogue::read_rating) {
                r.comment = comment;
            }
            let (score, comment) = (r.score, r.comment.clone());
            commit.ticket_events.push((r.ticket, TicketEventKind::Rated { score, comment: comment.clone() }));
            self.notify_desks(&mut commit, Some(r.ticket), DeskNotice::Rated { score, comment }, None);
        }
        // Replies, and the choices kept to read a typed number, in the customer's script.
        step.state.traditional = traditional;
        step.replies = step.replies.into_iter().map(|r| in_script(r, lang, traditional)).collect();
        if let dialogue::Pending::Choices { choices } = &mut step.state.pending {
            *choices = std::mem::take(choices).into_iter().map(|c| in_script_choice(c, lang, traditional)).collect();
        }
        commit.conversation.state = step.state.clone();
        if step.handoff.is_some() {
            // The handoff's reply tells the customer their place.
            commit.conversation.state.queue_told_at = Some(at);
        }
        for r in &step.replies {
            commit.transcript.push(Line::bot(r));
            commit.outbox.push(Outgoing::Customer { key: conv.key.clone(), reply: r.clone(), ticket_id: None });
        }
        if let Some(h) = &step.handoff {
            commit.conversation.owner = Owner::Queue;
            commit.open_ticket = Some(Ticket {
                id: 0,
                conversation_id: conv.id,
                key: conv.key.clone(),
                customer_id: conv.customer_id.clone(),
                customer_name: inbound.customer_name.clone(),
                lang,
                reason: h.reason.clone(),
                priority: h.priority,
                fields: h.fields.clone(),
                status: TicketStatus::Queued,
                agent: None,
                created_at: at,
                updated_at: at,
            });
            commit.events.push(TicketEventKind::Opened);
            self.notify_desks(&mut commit, None, DeskNotice::Opened, None);
        }
        // A rating was written to the ticket it rates.
        let ticket_id = step.rating.as_ref().map(|r| r.ticket);
        let handled = Handled { action: step.action, intent: step.intent.clone(), lang, replies: step.replies.clone(), ticket_id };
        Ok((commit, handled))
    }

    /// `None` when a ticket for `reason` opened at `at` is worked right away; else when the
    /// team is back, in words in `lang` (`Some(None)`: closed until further notice).
    fn away(&self, reason: &crate::types::HandoffReason, at: Millis, lang: Lang) -> Option<Option<String>> {
        let hours = self.config.hours.as_ref()?;
        let opening = hours.away(reason, at)?;
        Some(hours.back_at(&opening, lang, at))
    }

    /// [`Engine::away`] for a stored ticket (read only while the office is closed).
    async fn away_for_ticket(&self, ticket_id: i64, at: Millis, lang: Lang) -> Result<Option<Option<String>>, EngineError> {
        let Some(hours) = &self.config.hours else { return Ok(None) };
        if hours.is_open(at) {
            return Ok(None);
        }
        let Some(ticket) = self.store.ticket(ticket_id).await? else { return Ok(None) };
        Ok(self.away(&ticket.reason, at, lang))
    }

    fn step(&self, brain: &Brain, conv: &Conversation, lang: Lang, input: Input<'_>) -> Step {
        let ctx = Ctx { pack: &brain.pack, matcher: &brain.matcher, thresholds: self.config.thresholds };
        crate::metrics::matching(matches!(input, Input::Text(_)), || dialogue::step(&conv.state, lang, input, &ctx))
    }

    pub(crate) fn notify_desks(&self, commit: &mut Commit, ticket_id: Option<i64>, notice: DeskNotice, by: Option<&Actor>) {
        for desk in &self.config.desks {
            commit.outbox.push(Outgoing::Desk { desk: desk.clone(), ticket_id, notice: notice.clone(), by: by.map(|a| a.id.clone()) });
        }
    }
}

/// How long a customer told to slow down is not told again.
const SLOWED_FOR_MS: i64 = 60_000;

/// A message sent longer ago than this is a backlog (handed over after an outage), not part of a
/// flood.
const LIVE_WINDOW_MS: i64 = 5 * 60_000;

/// How the text of a customer's message reads, once checked.
#[derive(Debug, Clone, Copy)]
struct Reading<'a> {
    /// Cut at [`MAX_MESSAGE_CHARS`].
    too_long: bool,
    /// Nothing but secrets: the notice that they were hidden is the answer.
    secrets_only: bool,
    /// With its secrets cut out rather than masked, for the dialogue to read (the stored text
    /// keeps the placeholders); `None` when nothing was hidden.
    bare: Option<&'a str>,
}

/// Why a customer's message is stored but not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mute {
    /// Answered as usual.
    No,
    /// An agent blocked the customer.
    Blocked,
    /// Over the customer's limit.
    Flood,
}

fn canned(conv: &Conversation, lang: Lang, action: Action, phrase: Phrase) -> Step {
    Step {
        state: conv.state.clone(),
        lang,
        replies: vec![Reply::text(phrase.text(lang))],
        action,
        intent: None,
        handoff: None,
        rating: None,
    }
}

fn choice_label<'a>(conv: &'a Conversation, payload: &str) -> Option<&'a str> {
    match &conv.state.pending {
        dialogue::Pending::Choices { choices } => choices.iter().find(|c| c.payload == payload).map(|c| c.label.as_str()),
        _ => None,
    }
}

/// The label a button with `payload` had, for a button pressed after its choices were put away
/// (an old message's button, pressed while the ticket waits): agents see words, not payloads.
fn payload_label(brain: &Brain, lang: Lang, payload: &str) -> String {
    if let Some(id) = payload.strip_prefix(dialogue::PAYLOAD_INTENT)
        && let Some(text) = brain.pack.intent(id).and_then(|it| it.text(lang))
    {
        return text.label.clone();
    }
    match payload {
        dialogue::PAYLOAD_HUMAN | dialogue::PAYLOAD_HUMAN_FALLBACK => Phrase::HumanButton.text(lang).to_string(),
        dialogue::PAYLOAD_NONE => Phrase::NoneButton.text(lang).to_string(),
        other => dialogue::rating_payload(other).map_or_else(|| other.to_string(), dialogue::rating_label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(0), Duration::from_millis(500));
        assert_eq!(r.backoff(1), Duration::from_secs(1));
        assert_eq!(r.backoff(30), Duration::from_secs(300));
    }
}
