//! The engine: the thin async layer around the pure rules. It turns an [`Inbound`] or an agent
//! command into one atomic [`Commit`] (transcript, owner change, ticket, events, outbox), retries
//! on concurrent changes, and delivers the outbox through the registered [`Channel`]s and
//! [`AgentDesk`]s with retries and backoff, so a reply is sent or retried, never dropped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::channel::{AgentDesk, Channel, TextLimit};
use crate::dialogue::{self, Action, Ctx, Input, Phrase, Step};
use crate::hant;
use crate::matcher::normalize::clean;
use crate::matcher::{Matcher, Thresholds};
use crate::pack::Pack;
use crate::store::{Commit, NewConversation, Store};
use crate::types::{
    Actor, Author, Choice, Content, Conversation, DeskNotice, Inbound, MAX_AGENT_CHARS, MAX_MESSAGE_CHARS, Millis, Outgoing, Owner, Reply,
    Ticket, TicketEvent, TicketEventKind, TicketStatus, TranscriptEntry, now_ms,
};
use crate::{EngineError, Lang, StoreError};

/// How often a conversation is re-read and retried when another instance changed it.
const CONFLICT_RETRIES: u32 = 40;

/// Writers to one conversation in this process take turns on one of these locks (by key hash), so
/// only other instances sharing the database can cause a version conflict.
const STRIPES: usize = 64;

/// A short, growing, jittered pause before retrying a conflicting commit.
async fn conflict_pause(attempt: u32) {
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

/// An agent's command, channel-neutral. Each variant's doc is its help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// List waiting and assigned tickets, urgent first, then oldest.
    Queue,
    /// Show a ticket with its details, history and transcript.
    Show(i64),
    /// Take a ticket: the bot goes silent and you answer the customer.
    Claim(i64),
    /// Send a message to the ticket's customer (claims the ticket if it is waiting).
    Reply(i64, String),
    /// Add an internal note; the customer never sees it.
    Note(i64, String),
    /// Put the ticket back in the queue.
    Release(i64),
    /// Close the ticket and hand the customer back to the bot.
    Close(i64),
}

/// A ticket with its history and transcript.
#[derive(Debug, Clone)]
pub struct TicketDetail {
    /// The ticket.
    pub ticket: Ticket,
    /// Its events, oldest first.
    pub events: Vec<TicketEvent>,
    /// The conversation's transcript, oldest first.
    pub transcript: Vec<TranscriptEntry>,
}

/// What an agent command produced.
#[derive(Debug, Clone)]
pub enum AgentOutcome {
    /// The queue.
    Queue(Vec<Ticket>),
    /// A ticket's detail.
    Detail(Box<TicketDetail>),
    /// The ticket after the change.
    Done(Ticket),
}

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
    store: Arc<dyn Store>,
    brain: RwLock<Arc<Brain>>,
    config: EngineConfig,
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
    conflicts: std::sync::atomic::AtomicU64,
    /// Set while [`Engine::run_outbox`] shuts down: workers finish their send and take no more.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Agents' names by actor id, as recorded in the store.
    names: std::sync::Mutex<HashMap<String, String>>,
}

/// The key-value namespace where agents' names are kept by actor id.
pub const AGENT_NAMES: &str = "agent.names";

impl Engine {
    /// An engine over `store` answering from `pack`.
    pub fn new(store: Arc<dyn Store>, pack: Pack, config: EngineConfig) -> Arc<Engine> {
        Engine::with_brain(store, Arc::new(Brain::new(pack)), config)
    }

    /// An engine with an already trained brain.
    pub fn with_brain(store: Arc<dyn Store>, brain: Arc<Brain>, config: EngineConfig) -> Arc<Engine> {
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
        })
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

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Delivers this process's outbox items for `channel.name()` through `channel`.
    pub fn add_channel(&self, channel: Arc<dyn Channel>) {
        self.channels.write().unwrap_or_else(|p| p.into_inner()).insert(channel.name().to_string(), channel);
        self.wake.notify_one();
    }

    /// Delivers ticket notices for `desk.name()` (which must be in [`EngineConfig::desks`]) through `desk`.
    pub fn add_desk(&self, desk: Arc<dyn AgentDesk>) {
        self.desks.write().unwrap_or_else(|p| p.into_inner()).insert(desk.name().to_string(), desk);
        self.wake.notify_one();
    }

    fn stripe(&self, key: &crate::types::ConversationKey) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[(h.finish() % STRIPES as u64) as usize]
    }

    /// Records the name an agent goes by, so that others are told "Alice (telegram:123)" rather
    /// than a bare platform id. Written when it changes (remembered per process meanwhile).
    async fn remember_name(&self, actor: &Actor) {
        let known = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(&actor.id) == Some(&actor.name);
        if known || actor.name == actor.id {
            return;
        }
        match self.store.set_value(AGENT_NAMES, &actor.id, &actor.name).await {
            Ok(()) => {
                self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(actor.id.clone(), actor.name.clone());
            }
            Err(e) => tracing::debug!(error = %e, "cannot record an agent's name"),
        }
    }

    /// How an agent is named to others: `Alice (telegram:123)`, or the bare id if no name is known.
    async fn agent_label(&self, id: &str) -> String {
        let cached = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let name = match cached {
            Some(n) => Some(n),
            None => self.store.get_value(AGENT_NAMES, id).await.ok().flatten(),
        };
        match name {
            Some(n) if n != id => format!("{n} ({id})"),
            _ => id.to_string(),
        }
    }

    /// Whether the allowlist lets `actor` act on tickets.
    pub fn is_agent(&self, actor: &Actor) -> bool {
        let allowed = |id: &str| {
            self.config.agents.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => a == id,
            })
        };
        allowed(&actor.id) || actor.roles.iter().any(|r| allowed(r))
    }

    /// Handles one customer message: stores it, answers or hands off, and queues the replies.
    pub async fn handle(&self, mut inbound: Inbound) -> Result<Handled, EngineError> {
        inbound.customer_name = crate::channel::display_name(&inbound.customer_name, "Customer");
        // A photo whose caption is only blanks is a photo.
        if let Content::Captioned { kind, text } = &mut inbound.content
            && clean(text).trim().is_empty()
        {
            inbound.content = Content::Unsupported(std::mem::take(kind));
        }
        let brain = self.brain();
        let at = if inbound.at > 0 { inbound.at } else { now_ms() };
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
            let (commit, handled) = self.plan_inbound(&brain, conv, &inbound, text.as_deref(), too_long, at).await?;
            match self.store.commit(self.split_commit(commit)).await {
                Ok(done) => {
                    self.wake.notify_one();
                    let ticket_id =
                        if matches!(handled.action, Action::Handoff | Action::Silent | Action::Waiting) { done.ticket_id } else { None };
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

    async fn plan_inbound(
        &self,
        brain: &Brain,
        conv: Conversation,
        inbound: &Inbound,
        text: Option<&str>,
        too_long: bool,
        at: Millis,
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
        commit.transcript.push((Author::Customer, stored.clone()));
        // The language and (for Chinese) the script to answer in; the script is remembered even
        // while a person answers, for the bot's words when the ticket ends.
        let lang = dialogue::choose_lang(text, inbound.lang_hint.as_deref(), conv.lang);
        let traditional = hant::choose(text, inbound.lang_hint.as_deref(), conv.state.traditional);
        commit.conversation.state.traditional = traditional;

        // A human owns the conversation: the message goes to the ticket, the bot stays silent.
        if conv.owner != Owner::Bot
            && let Some(tid) = conv.ticket_id
        {
            let line = if too_long { format!("{stored} [cut at {MAX_MESSAGE_CHARS} characters]") } else { stored };
            commit.events.push(TicketEventKind::CustomerMessage { text: line.clone() });
            self.notify_desks(&mut commit, Some(tid), DeskNotice::CustomerMessage { text: line }, None);
            let mut handled = Handled { action: Action::Silent, intent: None, lang: conv.lang, replies: vec![], ticket_id: Some(tid) };
            // Still nobody on it: say so now and then, rather than leave the customer unanswered.
            let reminder = i64::try_from(self.config.queue_reminder.as_millis()).unwrap_or(i64::MAX);
            if conv.owner == Owner::Queue
                && reminder > 0
                && conv.state.queue_told_at.is_none_or(|told| at.saturating_sub(told) >= reminder)
                && let Some(position) = self.store.tickets(&[TicketStatus::Queued]).await?.iter().position(|t| t.id == tid)
            {
                let reply = in_script(Reply::text(dialogue::still_queued_text(lang, position + 1)), lang, traditional);
                commit.transcript.push((Author::Bot, reply.text.clone()));
                commit.outbox.push(Outgoing::Customer { key: conv.key.clone(), reply: reply.clone(), ticket_id: None });
                commit.conversation.state.queue_told_at = Some(at);
                handled = Handled { action: Action::Waiting, lang, replies: vec![reply], ..handled };
            }
            return Ok((commit, handled));
        }

        commit.conversation.lang = lang;
        commit.conversation.owner = Owner::Bot;
        let mut step = match (&inbound.content, text) {
            (Content::Unsupported(_), _) => canned(&conv, lang, Action::Unsupported, Phrase::TextOnly),
            (_, Some(_)) if too_long => canned(&conv, lang, Action::TooLong, Phrase::TooLong),
            (Content::Choice(p), _) => self.step(brain, &conv, lang, Input::Choice(p)),
            (_, t) => self.step(brain, &conv, lang, Input::Text(t.unwrap_or_default())),
        };
        // The customer's place in the queue is read only when a ticket opens.
        if let Some(h) = &step.handoff {
            let position = dialogue::queue_position(&self.queued_counts().await?, h.priority);
            step.replies.push(Reply::text(dialogue::queued_text(lang, position)));
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
            commit.transcript.push((Author::Bot, r.text.clone()));
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
        let handled = Handled { action: step.action, intent: step.intent.clone(), lang, replies: step.replies.clone(), ticket_id: None };
        Ok((commit, handled))
    }

    fn step(&self, brain: &Brain, conv: &Conversation, lang: Lang, input: Input<'_>) -> Step {
        let ctx = Ctx { pack: &brain.pack, matcher: &brain.matcher, thresholds: self.config.thresholds };
        dialogue::step(&conv.state, lang, input, &ctx)
    }

    async fn queued_counts(&self) -> Result<[usize; 4], StoreError> {
        let mut counts = [0usize; 4];
        for t in self.store.tickets(&[TicketStatus::Queued]).await? {
            counts[t.priority as usize] += 1;
        }
        Ok(counts)
    }

    fn notify_desks(&self, commit: &mut Commit, ticket_id: Option<i64>, notice: DeskNotice, by: Option<&Actor>) {
        for desk in &self.config.desks {
            commit.outbox.push(Outgoing::Desk { desk: desk.clone(), ticket_id, notice: notice.clone(), by: by.map(|a| a.id.clone()) });
        }
    }

    /// Runs an agent command. Anyone not on the allowlist is refused, and the attempt logged.
    pub async fn agent(&self, actor: &Actor, cmd: AgentCommand) -> Result<AgentOutcome, EngineError> {
        let named = Actor { name: crate::channel::display_name(&actor.name, "Agent"), ..actor.clone() };
        let actor = &named;
        if !self.is_agent(actor) {
            tracing::warn!(actor = %actor.id, command = ?command_name(&cmd), "refused an agent command from someone not on the allowlist");
            return Err(EngineError::NotAnAgent);
        }
        self.remember_name(actor).await;
        tracing::info!(actor = %actor.id, command = ?command_name(&cmd), "agent command");
        match cmd {
            AgentCommand::Queue => Ok(AgentOutcome::Queue(self.store.tickets(&[TicketStatus::Queued, TicketStatus::Assigned]).await?)),
            AgentCommand::Show(id) => {
                let ticket = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?;
                let events = self.store.ticket_events(id).await?;
                let transcript = self.store.transcript(ticket.conversation_id, 500).await?;
                Ok(AgentOutcome::Detail(Box::new(TicketDetail { ticket, events, transcript })))
            }
            AgentCommand::Reply(_, ref text) | AgentCommand::Note(_, ref text) if clean(text).trim().is_empty() => {
                Err(EngineError::BadCommand("the message is empty".into()))
            }
            // Refused rather than cut: the agent would not know the customer got only part of it.
            // (Anything shorter is split into as many platform messages as needed.)
            AgentCommand::Reply(_, ref text) | AgentCommand::Note(_, ref text) if clean(text).chars().count() > MAX_AGENT_CHARS => {
                Err(EngineError::BadCommand(format!(
                    "the message is {} characters long; at most {MAX_AGENT_CHARS} go in one, send the rest in another",
                    clean(text).chars().count()
                )))
            }
            AgentCommand::Claim(id)
            | AgentCommand::Reply(id, _)
            | AgentCommand::Note(id, _)
            | AgentCommand::Release(id)
            | AgentCommand::Close(id) => self.ticket_action(actor, id, &cmd).await,
        }
    }

    async fn ticket_action(&self, actor: &Actor, id: i64, cmd: &AgentCommand) -> Result<AgentOutcome, EngineError> {
        let key = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?.key;
        let _turn = self.stripe(&key).lock().await;
        for attempt in 0..CONFLICT_RETRIES {
            let ticket = self.store.ticket(id).await?.ok_or(EngineError::NoSuchTicket(id))?;
            let conv = self.store.conversation(ticket.conversation_id).await?.ok_or(EngineError::NoSuchTicket(id))?;
            let holder = match &ticket.agent {
                Some(a) if a != &actor.id => Some(self.agent_label(a).await),
                _ => None,
            };
            let (commit, after) = self.plan_ticket_action(actor, ticket, conv, cmd, holder)?;
            match self.store.commit(self.split_commit(commit)).await {
                Ok(_) => {
                    self.wake.notify_one();
                    return Ok(AgentOutcome::Done(after));
                }
                Err(StoreError::Conflict(_)) => {
                    self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conflict_pause(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Busy)
    }

    fn plan_ticket_action(
        &self,
        actor: &Actor,
        ticket: Ticket,
        conv: Conversation,
        cmd: &AgentCommand,
        holder: Option<String>,
    ) -> Result<(Commit, Ticket), EngineError> {
        let at = now_ms().max(ticket.updated_at);
        let invalid = |why: String| EngineError::InvalidTicketState { ticket: ticket.id, why };
        let closed = ticket.status == TicketStatus::Closed;
        let mine = ticket.agent.as_deref() == Some(actor.id.as_str());
        let other = match (&ticket.status, &ticket.agent) {
            (TicketStatus::Assigned, Some(a)) if a != &actor.id => Some(holder.unwrap_or_else(|| a.clone())),
            _ => None,
        };
        let mut t = ticket.clone();
        t.updated_at = at;
        let mut conv_next = conv.clone();
        // The conversation is only touched while this ticket is its current one.
        let current = conv.ticket_id == Some(ticket.id);
        let mut commit = Commit::new(conv_next.clone(), at);
        commit.update_ticket = Some(t.clone());
        commit.ticket_was = Some((ticket.status, ticket.agent.clone()));
        let lang = ticket.lang;
        let traditional = conv.state.traditional;
        let claim = |commit: &mut Commit, t: &mut Ticket, conv_next: &mut Conversation| {
            t.status = TicketStatus::Assigned;
            t.agent = Some(actor.id.clone());
            conv_next.owner = Owner::Agent(actor.id.clone());
            commit.events.push(TicketEventKind::Claimed { agent: actor.id.clone() });
            let joined = match lang {
                Lang::Zh => format!("客服 {} 已接入,将为您处理。", actor.name),
                Lang::En => format!("{} from our support team has joined and will help you.", actor.name),
            };
            let joined = in_script(Reply::text(joined), lang, traditional);
            commit.transcript.push((Author::Bot, joined.text.clone()));
            commit.outbox.push(Outgoing::Customer { key: ticket.key.clone(), reply: joined, ticket_id: Some(ticket.id) });
        };
        match cmd {
            AgentCommand::Claim(_) => {
                if closed {
                    return Err(invalid("is closed".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is already with {o}; they must release it first")));
                }
                if mine {
                    return Ok((Commit::new(conv, at), ticket));
                }
                claim(&mut commit, &mut t, &mut conv_next);
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Claimed { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Reply(_, text) => {
                if closed {
                    return Err(invalid("is closed; the customer is back with the bot".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is with {o}")));
                }
                if t.status == TicketStatus::Queued {
                    claim(&mut commit, &mut t, &mut conv_next);
                    self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Claimed { agent: actor.name.clone() }, Some(actor));
                }
                let text = clean(text);
                commit.events.push(TicketEventKind::AgentReply { agent: actor.id.clone(), text: text.clone() });
                commit.transcript.push((Author::Agent(actor.id.clone()), text.clone()));
                commit.outbox.push(Outgoing::Customer {
                    key: ticket.key.clone(),
                    reply: Reply::text(text.clone()),
                    ticket_id: Some(ticket.id),
                });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::AgentReply { agent: actor.name.clone(), text }, Some(actor));
            }
            AgentCommand::Note(_, text) => {
                let text = clean(text);
                commit.events.push(TicketEventKind::Note { agent: actor.id.clone(), text: text.clone() });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Note { agent: actor.name.clone(), text }, Some(actor));
            }
            AgentCommand::Release(_) => {
                if closed {
                    return Err(invalid("is closed".into()));
                }
                if !mine {
                    return Err(invalid("is not yours to release".into()));
                }
                t.status = TicketStatus::Queued;
                t.agent = None;
                conv_next.owner = Owner::Queue;
                commit.events.push(TicketEventKind::Released { agent: actor.id.clone() });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Released { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Close(_) => {
                if closed {
                    return Err(invalid("is already closed".into()));
                }
                if let Some(o) = other {
                    return Err(invalid(format!("is with {o}; they must close it")));
                }
                t.status = TicketStatus::Closed;
                t.agent = t.agent.or_else(|| Some(actor.id.clone()));
                conv_next.owner = Owner::Bot;
                conv_next.ticket_id = None;
                conv_next.state = conv.state.restart();
                commit.events.push(TicketEventKind::Closed { agent: actor.id.clone() });
                let back = in_script(Reply::text(Phrase::BackToBot.text(lang)), lang, traditional);
                commit.transcript.push((Author::Bot, back.text.clone()));
                commit.outbox.push(Outgoing::Customer { key: ticket.key.clone(), reply: back, ticket_id: Some(ticket.id) });
                self.notify_desks(&mut commit, Some(ticket.id), DeskNotice::Closed { agent: actor.name.clone() }, Some(actor));
            }
            AgentCommand::Queue | AgentCommand::Show(_) => {}
        }
        if current {
            commit.conversation = conv_next;
        }
        commit.update_ticket = Some(t.clone());
        Ok((commit, t))
    }
}

/// `reply` as a customer writing traditional Chinese should read it (only Chinese replies change).
fn in_script(reply: Reply, lang: Lang, traditional: bool) -> Reply {
    let choices = reply.choices.into_iter().map(|c| in_script_choice(c, lang, traditional)).collect();
    Reply { text: in_script_text(reply.text, lang, traditional), choices }
}

fn in_script_choice(c: Choice, lang: Lang, traditional: bool) -> Choice {
    Choice { label: in_script_text(c.label, lang, traditional), ..c }
}

fn in_script_text(text: String, lang: Lang, traditional: bool) -> String {
    if lang == Lang::Zh && traditional { hant::to_traditional(&text) } else { text }
}

fn canned(conv: &Conversation, lang: Lang, action: Action, phrase: Phrase) -> Step {
    Step { state: conv.state.clone(), lang, replies: vec![Reply::text(phrase.text(lang))], action, intent: None, handoff: None }
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
        other => other.to_string(),
    }
}

fn command_name(cmd: &AgentCommand) -> &'static str {
    match cmd {
        AgentCommand::Queue => "queue",
        AgentCommand::Show(_) => "show",
        AgentCommand::Claim(_) => "claim",
        AgentCommand::Reply(..) => "reply",
        AgentCommand::Note(..) => "note",
        AgentCommand::Release(_) => "release",
        AgentCommand::Close(_) => "close",
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
