//! What comes in over the gateway: the serenity event handler only queues each event, and workers
//! turn them into engine calls: customer messages and button clicks become [`Inbound`]s, agents'
//! messages in ticket threads become replies, slash commands become agent commands.
//!
//! Events are spread by conversation (a DM; one customer in a support channel; a ticket thread)
//! over [`SHARDS`] queues of [`SHARD_QUEUE`] events, each with its own worker: different
//! conversations are handled concurrently, so a message that waits (storage down, a retry) holds
//! up only its own queue, and one conversation's events are handled one at a time, in order. A
//! full queue makes the gateway handler wait (back-pressure) instead of growing without bound.
//! serenity runs each event's handler as a task of its own, so events that arrive together (two
//! quick messages from one customer) can reach a queue swapped; each worker keeps what it takes
//! for `REORDER_WINDOW` (less under a backlog) and handles it in Discord's order, by snowflake id
//! (`Reorder`).
//!
//! Discord does not replay events to a new gateway session, so what customers and agents wrote
//! while the bot was stopped (or disconnected beyond a resume) would be lost. The workers
//! remember, per channel, the last message handled there (`NS_SEEN`, `NS_SEEN_DM`; in a support
//! channel, where customers' messages are handled concurrently, only once every earlier message
//! there is handled too: `InFlight`). At the start of every session every queue pauses (after
//! what it holds from before) while what came after those marks is read from the REST API and
//! handled first; a message read so and then delivered live as well counts once.
//!
//! This module is the gateway handler and the workers' handling of each kind of event; the queues
//! and their ordering are in `queues`, the catch-up and its marks in `catchup`, and the progress
//! counters tests wait on in `progress`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serenity::all::{
    ChannelId, CommandDataOptionValue, CommandInteraction, CommandOptionType, ComponentInteraction, Context, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage, EventHandler, GetMessages, GuildId,
    Http, Interaction, Message, MessageId, MessageType, Ready, ResumedEvent, RoleId, User, UserId,
};
use switchboard_core::dialogue::PAYLOAD_START;
use switchboard_core::engine::{AgentCommand, AgentOutcome, Engine};
use switchboard_core::retry::{Patience, Unstored, until_stored};
use switchboard_core::types::{Actor, Content, Inbound, Ticket};
use tokio::sync::{mpsc, oneshot, watch};

use crate::channel::{CHANNEL_NAME, Target};
use crate::config::DiscordConfig;
use crate::desk::ACTOR_PREFIX;
use crate::format;
use crate::threads::Threads;

mod catchup;
mod progress;
mod queues;

pub use catchup::{NS_SEEN, NS_SEEN_DM};
pub use progress::{PROGRESS_RECENT, Progress};
use queues::{InFlight, Incoming, Job, Reorder, Session};
pub(crate) use queues::{Inbox, Queues, queues};
pub use queues::{SHARD_QUEUE, SHARDS, shard_of};

/// How long a customer message is kept and retried while storage is unreachable.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(3600);

/// Queues gateway events for the workers.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) inbox: Inbox,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        self.inbox.start_session(ready).await;
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.inbox.push(Incoming::Message(Box::new(msg))).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(click) => {
                // Queued first when there is room (that keeps the order), and acknowledged within
                // Discord's 3 seconds even while the queue is full.
                let id = click.id;
                let token = click.token.clone();
                let queued = self.inbox.push(Incoming::Click(Box::new(click)));
                let ack = async {
                    let ack = CreateInteractionResponse::Acknowledge;
                    if let Err(e) = ctx.http.create_interaction_response(id, &token, &ack, Vec::new()).await {
                        tracing::warn!(interaction = %id, error = %e, "could not acknowledge a button press");
                    }
                };
                tokio::join!(queued, ack);
            }
            Interaction::Command(cmd) => {
                self.inbox.push(Incoming::Command(Box::new(cmd))).await;
            }
            _ => {}
        }
    }
}

/// What the worker needs.
pub(crate) struct Worker {
    pub(crate) engine: Arc<Engine>,
    pub(crate) http: Arc<Http>,
    pub(crate) config: DiscordConfig,
    pub(crate) bot: UserId,
    pub(crate) staff_guild: Option<GuildId>,
    pub(crate) threads: Threads,
    pub(crate) commands_registered: AtomicBool,
    /// Turns true on shutdown (set by [`Worker::run`]); ends waits between retries.
    pub(crate) stop: std::sync::OnceLock<watch::Receiver<bool>>,
    /// The last message handled per channel, as stored under [`NS_SEEN`] and [`NS_SEEN_DM`].
    pub(crate) seen: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// Messages handled while catching up, so that their live delivery is not handled again.
    pub(crate) caught_up: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Support-channel messages queued and not yet handled (shared with the [`Inbox`]).
    pub(crate) in_flight: Arc<InFlight>,
    /// What was received and handled (shared with the [`Inbox`]).
    pub(crate) progress: Arc<Progress>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("bot", &self.bot).field("staff_guild", &self.staff_guild).finish_non_exhaustive()
    }
}

/// The slash commands agents use, registered in the staff guild.
pub fn commands() -> Vec<CreateCommand> {
    let ticket = || {
        CreateCommandOption::new(CommandOptionType::Integer, "ticket", "The ticket number (default: this thread's ticket)")
            .min_int_value(1)
            .required(false)
    };
    vec![
        CreateCommand::new("claim").description("Take a ticket: the bot goes silent and you answer the customer").add_option(ticket()),
        CreateCommand::new("release").description("Put a ticket back in the queue").add_option(ticket()),
        CreateCommand::new("note")
            .description("Add an internal note; the customer never sees it")
            .add_option(CreateCommandOption::new(CommandOptionType::String, "text", "The note").required(true).max_length(4000))
            .add_option(ticket()),
        CreateCommand::new("close").description("Close a ticket and hand the customer back to the bot").add_option(ticket()),
        CreateCommand::new("block")
            .description("Block a ticket's customer: their messages are kept but not answered or relayed")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "duration", "How long, such as 2h or 7d (default: until unblocked)")
                    .required(false)
                    .max_length(20),
            )
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "reason", "Why, for the ticket's history")
                    .required(false)
                    .max_length(500),
            )
            .add_option(ticket()),
        CreateCommand::new("unblock").description("Lift the block on a ticket's customer").add_option(ticket()),
        CreateCommand::new("queue").description("List waiting and assigned tickets, urgent first"),
    ]
}

/// `<@id>` and `<@!id>` of the bot removed.
fn strip_mention(text: &str, bot: UserId) -> String {
    text.replace(&format!("<@{bot}>"), " ").replace(&format!("<@!{bot}>"), " ").trim().to_string()
}

fn display_name(user: &User, nick: Option<&str>) -> String {
    nick.or(user.global_name.as_deref()).unwrap_or(&user.name).to_string()
}

/// The actor a Discord member is for the engine: `discord:<user id>` with their roles as
/// `discord-role:<role id>`; the engine's allowlist decides.
pub fn actor(user: &User, nick: Option<&str>, roles: &[RoleId]) -> Actor {
    Actor {
        id: format!("{ACTOR_PREFIX}{}", user.id),
        name: display_name(user, nick),
        roles: roles.iter().map(|r| format!("discord-role:{r}")).collect(),
    }
}

impl Worker {
    /// Runs a worker per queue and the catch-up of new sessions until the queues close or `stop`
    /// turns true (then each worker handles what its queue still holds).
    pub(crate) async fn run(self: Arc<Self>, queues: Queues, stop: watch::Receiver<bool>) {
        let _ = self.stop.set(stop.clone());
        let Queues { shards, sessions } = queues;
        let mut tasks: Vec<_> = shards.into_iter().map(|rx| tokio::spawn(self.clone().work(rx, stop.clone()))).collect();
        tasks.push(tokio::spawn(self.clone().sessions(sessions, stop)));
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "a Discord worker failed");
            }
        }
    }

    /// One queue's worker: takes what the queue holds into a [`Reorder`] buffer and handles it in
    /// Discord's order.
    async fn work(self: Arc<Self>, mut rx: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        let mut stopping = stop.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        let mut buffer = Reorder::default();
        let mut open = true;
        loop {
            while open && !buffer.is_full() {
                match rx.try_recv() {
                    Ok(job) => buffer.push(job, tokio::time::Instant::now()),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            let now = tokio::time::Instant::now();
            let due = match buffer.next(now, !open) {
                Ok(job) => {
                    self.job(job, &mut stop).await;
                    continue;
                }
                Err(None) if !open => return,
                Err(due) => due,
            };
            tokio::select! {
                job = rx.recv(), if open => match job {
                    Some(job) => buffer.push(job, tokio::time::Instant::now()),
                    None => open = false,
                },
                () = tokio::time::sleep_until(due.unwrap_or(now)), if due.is_some() => {}
                () = &mut stopped => break,
            }
        }
        while let Ok(job) = rx.try_recv() {
            buffer.push(job, tokio::time::Instant::now());
        }
        for job in buffer.drain() {
            self.job(job, &mut stop).await;
        }
    }

    async fn job(&self, job: Job, stop: &mut watch::Receiver<bool>) {
        match job {
            Job::Event(Incoming::Message(msg)) => {
                self.on_message(&msg).await;
                if let Some(mark) = self.in_flight.finished(msg.channel_id.get(), msg.id.get()) {
                    self.write_mark(NS_SEEN, msg.channel_id, MessageId::new(mark)).await;
                }
                self.progress.handled_event(msg.id.get());
            }
            Job::Event(Incoming::Click(click)) => {
                self.on_click(&click).await;
                self.progress.handled_event(click.id.get());
            }
            Job::Event(Incoming::Command(cmd)) => {
                self.on_command(&cmd).await;
                self.progress.handled_event(cmd.id.get());
            }
            Job::Pause { reached, resume } => {
                let _ = reached.send(());
                if *stop.borrow() {
                    return;
                }
                tokio::select! {
                    _ = resume => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
    }

    /// Whether a message is a person's text the bot looks at (not the bot's own, a webhook's or a
    /// system message).
    fn takes(&self, msg: &Message) -> bool {
        !msg.author.bot && msg.webhook_id.is_none() && matches!(msg.kind, MessageType::Regular | MessageType::InlineReply)
    }

    async fn on_message(&self, msg: &Message) {
        if !self.takes(msg) {
            return;
        }
        // Already handled while catching up at the session's start.
        if self.caught_up.lock().unwrap_or_else(|p| p.into_inner()).remove(&msg.id.get()) {
            return;
        }
        match msg.guild_id {
            None => self.customer_message(msg, Target { channel: msg.channel_id, user: None }, false).await,
            Some(_) => {
                if self.config.support_channel_ids.contains(&msg.channel_id.get()) {
                    self.support_message(msg).await;
                    return;
                }
                match self.threads.ticket_of(msg.channel_id).await {
                    Ok(Some(ticket)) => {
                        let nick = msg.member.as_ref().and_then(|m| m.nick.as_deref());
                        let roles = msg.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
                        self.agent_message(msg, ticket, nick, &roles).await;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot look up ticket threads"),
                }
            }
        }
    }

    /// A message in a support channel: the customer's, in their own conversation there, when it
    /// mentions the bot.
    async fn support_message(&self, msg: &Message) {
        let mentioned = msg.mentions.iter().any(|u| u.id == self.bot)
            || msg.content.contains(&format!("<@{}>", self.bot))
            || msg.content.contains(&format!("<@!{}>", self.bot));
        if mentioned {
            self.customer_message(msg, Target { channel: msg.channel_id, user: Some(msg.author.id) }, true).await;
        }
    }

    async fn customer_message(&self, msg: &Message, target: Target, mention: bool) {
        let text = strip_mention(&msg.content, self.bot);
        let content = if !text.is_empty() && !msg.attachments.is_empty() {
            // Words with a file: read the words, and keep the file's mention beside them.
            Content::Captioned { kind: "attachment".into(), text }
        } else if !text.is_empty() {
            Content::Text(text)
        } else if !msg.attachments.is_empty() {
            Content::Unsupported("attachment".into())
        } else if !msg.sticker_items.is_empty() {
            Content::Unsupported("sticker".into())
        } else if mention {
            // Only the mention: say hello.
            Content::Choice(PAYLOAD_START.into())
        } else {
            return;
        };
        let nick = msg.member.as_ref().and_then(|m| m.nick.as_deref());
        // In a support channel everyone reads it: a message holding a secret is deleted there
        // (the bot needs Manage Messages), and the reply says whether it was.
        let deleted = match &content {
            Content::Text(t) | Content::Captioned { text: t, .. } if target.user.is_some() && self.engine.holds_secret(t) => {
                Some(self.delete_public(msg).await)
            }
            _ => None,
        };
        let inbound = Inbound {
            channel: CHANNEL_NAME.into(),
            conversation: target.conversation(),
            customer_id: msg.author.id.to_string(),
            customer_name: display_name(&msg.author, nick),
            content,
            message_id: msg.id.to_string(),
            at: msg.timestamp.timestamp_millis(),
            lang_hint: None,
            deleted,
        };
        if self.handle_inbound(inbound).await {
            let ns = if target.user.is_none() { NS_SEEN_DM } else { NS_SEEN };
            self.mark_seen(ns, msg.channel_id, msg.id).await;
        }
    }

    /// Deletes a customer's message from a public channel; whether it is gone. Done before the
    /// message is stored: the secret leaves the channel at once, and what is stored is masked.
    async fn delete_public(&self, msg: &Message) -> bool {
        let call = self.http.delete_message(msg.channel_id, msg.id, Some("It held a secret (card number, code or password)"));
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(channel = %msg.channel_id, message = %msg.id, error = %e, "cannot delete a message that held a secret (Manage Messages missing?)");
                false
            }
            Err(_) => {
                tracing::warn!(channel = %msg.channel_id, message = %msg.id, "deleting a message that held a secret timed out");
                false
            }
        }
    }

    /// Hands a customer message to the engine. Discord delivers a message event once, so while
    /// storage is unreachable the message is kept here and tried again, with backoff, for up to
    /// [`OUTAGE_PATIENCE`] or until shutdown; later events wait behind it, keeping their order.
    /// The engine's dedup makes a retry of a message that was in fact stored harmless. Returns
    /// whether the engine took the message (or had it already).
    async fn handle_inbound(&self, inbound: Inbound) -> bool {
        let message_id = inbound.message_id.clone();
        let patience = Patience {
            first: Duration::from_millis(250),
            max: Duration::from_secs(30),
            attempts: None,
            for_at_most: Some(OUTAGE_PATIENCE),
        };
        let stop = self.stop.get().cloned();
        let handled = until_stored(patience, stop, switchboard_core::EngineError::is_transient, || self.engine.handle(inbound.clone()), |e, _, wait| {
            tracing::warn!(message = %message_id, error = %e, wait_ms = wait.as_millis() as u64, "cannot store a Discord message yet, retrying");
        })
        .await;
        match handled {
            Ok(h) => {
                tracing::debug!(message = %message_id, action = h.action.as_str(), intent = ?h.intent, "handled a Discord message");
                true
            }
            Err(Unstored::Stopped) => {
                tracing::warn!(message = %message_id, "stopping before a Discord message could be stored; the next start reads it again");
                false
            }
            Err(Unstored::GaveUp(e) | Unstored::Failed(e)) => {
                tracing::error!(message = %message_id, error = %e, "could not handle a Discord message");
                false
            }
        }
    }

    async fn on_click(&self, click: &ComponentInteraction) {
        let target = match click.guild_id {
            None => Target { channel: click.channel_id, user: None },
            Some(_) if self.config.support_channel_ids.contains(&click.channel_id.get()) => {
                Target { channel: click.channel_id, user: Some(click.user.id) }
            }
            Some(_) => return,
        };
        let nick = click.member.as_ref().and_then(|m| m.nick.as_deref());
        let inbound = Inbound {
            channel: CHANNEL_NAME.into(),
            conversation: target.conversation(),
            customer_id: click.user.id.to_string(),
            customer_name: display_name(&click.user, nick),
            content: Content::Choice(click.data.custom_id.clone()),
            message_id: format!("int:{}", click.id),
            at: click.id.created_at().timestamp_millis(),
            lang_hint: None,
            deleted: None,
        };
        let _ = self.handle_inbound(inbound).await;
    }

    /// Relays a message in ticket `ticket`'s thread from `msg.author` (with this nickname and
    /// these roles in the staff guild) to the customer, if they are an agent; either way the
    /// message counts as handled, so a restart does not read it again.
    async fn agent_message(&self, msg: &Message, ticket: i64, nick: Option<&str>, roles: &[RoleId]) {
        self.relay_agent_message(msg, ticket, nick, roles).await;
        self.mark_seen(NS_SEEN, msg.channel_id, msg.id).await;
    }

    async fn relay_agent_message(&self, msg: &Message, ticket: i64, nick: Option<&str>, roles: &[RoleId]) {
        let actor = actor(&msg.author, nick, roles);
        if !self.engine.is_agent(&actor) {
            tracing::warn!(user = %msg.author.id, ticket, "ignored a message in a ticket thread from a member without the staff role");
            return;
        }
        let text = strip_mention(&msg.content, self.bot);
        if text.is_empty() {
            if !msg.attachments.is_empty() || !msg.sticker_items.is_empty() {
                self.say(msg.channel_id, "⚠️ Only text reaches the customer; that was not sent.".into());
            }
            return;
        }
        match self.engine.agent(&actor, AgentCommand::Reply(ticket, text)).await {
            Ok(_) => tracing::debug!(ticket, agent = %actor.id, "relayed an agent's message"),
            Err(e) => self.say(msg.channel_id, format!("⚠️ Not sent to the customer: {}", format::escape(&e.to_string()))),
        }
    }

    /// Posts a line of ours in a channel, in the background.
    fn say(&self, channel: ChannelId, text: String) {
        self.say_all(channel, vec![text]);
    }

    /// Posts lines of ours in a channel, in order, in the background.
    fn say_all(&self, channel: ChannelId, texts: Vec<String>) {
        let http = self.http.clone();
        let sending = self.progress.background_send();
        tokio::spawn(async move {
            post_all(http, channel, texts).await;
            drop(sending);
        });
    }

    /// Answers a slash command, in the background.
    fn respond(&self, cmd: &CommandInteraction, text: String, ephemeral: bool) {
        self.respond_then(cmd, text, ephemeral, None);
    }

    /// Answers a slash command, then (once answered) posts `then`'s lines in its channel: the rest
    /// of a note too long for one message.
    fn respond_then(&self, cmd: &CommandInteraction, text: String, ephemeral: bool, then: Option<(ChannelId, Vec<String>)>) {
        let http = self.http.clone();
        let (id, token) = (cmd.id, cmd.token.clone());
        let sending = self.progress.background_send();
        tokio::spawn(async move {
            let _sending = sending;
            let text = if text.chars().count() > format::MESSAGE_LIMIT {
                text.chars().take(format::MESSAGE_LIMIT - 1).chain(['…']).collect()
            } else {
                text
            };
            let msg = CreateInteractionResponseMessage::new().content(text).ephemeral(ephemeral).allowed_mentions(format::no_mentions());
            let resp = CreateInteractionResponse::Message(msg);
            if let Err(e) = http.create_interaction_response(id, &token, &resp, Vec::new()).await {
                tracing::warn!(interaction = %id, error = %e, "could not answer a slash command");
            }
            if let Some((channel, texts)) = then {
                post_all(http, channel, texts).await;
            }
        });
    }

    async fn on_command(&self, cmd: &CommandInteraction) {
        let name = cmd.data.name.as_str();
        let roles = cmd.member.as_ref().map(|m| m.roles.clone()).unwrap_or_default();
        let nick = cmd.member.as_ref().and_then(|m| m.nick.as_deref());
        let actor = actor(&cmd.user, nick, &roles);
        if !self.engine.is_agent(&actor) {
            tracing::warn!(user = %cmd.user.id, command = name, "refused a slash command from a member without the staff role");
            self.respond(cmd, "Only members with the staff role can work tickets.".into(), true);
            return;
        }
        let mut ticket_opt = None;
        let mut text = None;
        let (mut duration, mut reason) = (None, String::new());
        for opt in &cmd.data.options {
            match (opt.name.as_str(), &opt.value) {
                ("ticket", CommandDataOptionValue::Integer(n)) => ticket_opt = Some(*n),
                ("text", CommandDataOptionValue::String(s)) => text = Some(s.clone()),
                ("duration", CommandDataOptionValue::String(s)) => duration = Some(s.clone()),
                ("reason", CommandDataOptionValue::String(s)) => reason = s.clone(),
                _ => {}
            }
        }
        let here = match self.threads.ticket_of(cmd.channel_id).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up ticket threads");
                self.respond(cmd, "Storage is unavailable, please try again.".into(), true);
                return;
            }
        };
        if name == "queue" {
            let reply = match self.engine.agent(&actor, AgentCommand::Queue).await {
                Ok(AgentOutcome::Queue(tickets)) => self.queue_text(&tickets).await,
                Ok(_) => String::new(),
                Err(e) => format!("⚠️ {e}"),
            };
            self.respond(cmd, reply, true);
            return;
        }
        let Some(ticket) = ticket_opt.or(here) else {
            self.respond(cmd, "Use this in a ticket's thread, or give the ticket number.".into(), true);
            return;
        };
        let command = match name {
            "claim" => AgentCommand::Claim(ticket),
            "release" => AgentCommand::Release(ticket),
            "close" => AgentCommand::Close(ticket),
            "note" => AgentCommand::Note(ticket, text.clone().unwrap_or_default()),
            "block" => match duration.as_deref().map(switchboard_core::guard::parse_duration).transpose() {
                Ok(duration) => AgentCommand::Block { ticket, duration, reason },
                Err(e) => {
                    self.respond(cmd, format!("⚠️ {}", format::escape(&e)), true);
                    return;
                }
            },
            "unblock" => AgentCommand::Unblock(ticket),
            _ => {
                self.respond(cmd, "Unknown command.".into(), true);
                return;
            }
        };
        match self.engine.agent(&actor, command).await {
            Err(e) => self.respond(cmd, format!("⚠️ {}", format::escape(&e.to_string())), true),
            Ok(_) if name == "note" => {
                let note =
                    format::pieces(&format!("📝 Note by **{}**: ", format::escape(&actor.name)), text.as_deref().unwrap_or_default());
                if here == Some(ticket) {
                    // In the ticket's thread: the answer is the note, for the other agents to see
                    // (and what does not fit in it follows).
                    let mut parts = note.into_iter();
                    let first = parts.next().unwrap_or_default();
                    self.respond_then(cmd, first, false, Some((cmd.channel_id, parts.collect())));
                } else {
                    self.respond(cmd, format!("Note added to ticket #{ticket}."), true);
                    if let Ok(Some(thread)) = self.threads.thread_of(ticket).await {
                        self.say_all(thread, note);
                    }
                }
            }
            Ok(_) => {
                let done = match name {
                    "claim" => format!("Ticket #{ticket} is yours: write in its thread to answer the customer."),
                    "release" => format!("Ticket #{ticket} is back in the queue."),
                    "block" => format!("The customer of ticket #{ticket} is blocked: their messages are kept but not answered."),
                    "unblock" => format!("The customer of ticket #{ticket} is unblocked."),
                    _ => format!("Ticket #{ticket} is closed; the customer is back with the bot."),
                };
                self.respond(cmd, done, true);
            }
        }
    }

    async fn queue_text(&self, tickets: &[Ticket]) -> String {
        if tickets.is_empty() {
            return "The queue is empty.".into();
        }
        let mut out = String::from("**Tickets** (urgent first, then oldest)\n");
        let now = switchboard_core::types::now_ms();
        for (i, t) in tickets.iter().enumerate() {
            // The same facts as every desk's queue line, with Discord's mentions and escaping.
            let q = switchboard_core::channel::QueueLine::new(t, now);
            let status = match q.holder {
                Some(a) => match a.strip_prefix(ACTOR_PREFIX) {
                    Some(user) => format!("with <@{user}>"),
                    None => format!("with {}", format::escape(a)),
                },
                None => t.status.as_str().to_string(),
            };
            let thread = match self.threads.thread_of(t.id).await {
                Ok(Some(th)) => format!(" — <#{th}>"),
                _ => String::new(),
            };
            let line = format!(
                "{}#{} · {} · {} · {} ({}) · {} · {} min{}\n",
                q.urgent_mark(),
                t.id,
                t.priority.as_str(),
                status,
                format::escape(&switchboard_core::channel::one_line(&t.customer_name, 60)),
                t.key.channel,
                format::escape(&q.reason),
                q.waiting_minutes,
                thread
            );
            if out.chars().count() + line.chars().count() > 1900 {
                out.push_str(&format!("… and {} more", tickets.len() - i));
                break;
            }
            out.push_str(&line);
        }
        out
    }
}

/// Posts `texts` in `channel`, in order, pinging nobody; logs what fails.
async fn post_all(http: Arc<Http>, channel: ChannelId, texts: Vec<String>) {
    for text in texts.into_iter().filter(|t| !t.is_empty()) {
        let msg = CreateMessage::new().content(text).allowed_mentions(format::no_mentions());
        if let Err(e) = channel.send_message(&*http, msg).await {
            tracing::warn!(channel = %channel, error = %e, "could not post in a Discord channel");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::queues::REORDER_WINDOW;
    use super::*;

    #[test]
    fn progress_counts_each_delivery_and_forgets_the_oldest() {
        let p = Arc::new(Progress::default());
        p.received_event(7);
        assert_eq!((p.received(7), p.handled(7)), (1, 0));
        p.handled_event(7);
        p.received_event(7);
        p.handled_event(7);
        assert_eq!((p.received(7), p.handled(7)), (2, 2), "a redelivery counts again");
        for id in 100..100 + PROGRESS_RECENT as u64 {
            p.handled_event(id);
        }
        assert_eq!(p.handled(7), 0, "forgotten: bounded");
        assert_eq!(p.handled(100 + PROGRESS_RECENT as u64 - 1), 1);
        assert!(p.events().counts.len() <= PROGRESS_RECENT);
        let sending = p.background_send();
        assert_eq!(p.background(), 1);
        drop(sending);
        assert_eq!(p.background(), 0);
    }

    #[test]
    fn a_conversation_always_has_the_same_queue_and_conversations_spread() {
        let c = ChannelId::new(1_234_567_890_123_456_789);
        assert_eq!(shard_of(c, None), shard_of(c, None));
        let used: std::collections::HashSet<usize> =
            (0..200u64).map(|i| shard_of(ChannelId::new(1_300_000_000_000_000_000 + (i << 22)), None)).collect();
        assert!(used.len() > SHARDS / 2, "snowflakes spread over the queues: {used:?}");
        let customers: std::collections::HashSet<usize> = (1..200u64).map(|u| shard_of(c, Some(UserId::new(u << 22)))).collect();
        assert!(customers.len() > SHARDS / 2, "customers of one support channel too: {customers:?}");
        assert!((0..1000u64).all(|i| shard_of(ChannelId::new(i + 1), Some(UserId::new(i + 7))) < SHARDS));
    }

    #[test]
    fn a_support_channels_mark_never_passes_a_message_still_queued() {
        let f = InFlight::default();
        for id in [10, 11, 12] {
            f.queued(1, id);
        }
        // 11 and 12 (other customers) are handled first; 10 still waits.
        assert!(f.hold(1, 11));
        assert_eq!(f.finished(1, 11), None);
        assert!(f.hold(1, 12));
        assert_eq!(f.finished(1, 12), None);
        // 10 is done without a mark of its own (not for the bot): now the mark may pass all three.
        assert_eq!(f.finished(1, 10), Some(12));
        assert!(f.lanes().is_empty(), "nothing left behind");
        // Not queued (read while catching up, or another kind of channel): written at once.
        assert!(!f.hold(1, 13));
        assert_eq!(f.finished(2, 5), None);
        // In order: each mark at once.
        f.queued(1, 20);
        f.queued(1, 21);
        assert!(f.hold(1, 20));
        assert_eq!(f.finished(1, 20), Some(20));
        assert!(f.hold(1, 21));
        assert_eq!(f.finished(1, 21), Some(21));
    }

    #[test]
    fn a_pause_comes_before_the_events_gathered_with_it() {
        let (reached, _) = oneshot::channel();
        let (_, resume) = oneshot::channel();
        let mut r = Reorder::default();
        let now = tokio::time::Instant::now();
        r.push(Job::Pause { reached, resume }, now);
        assert!(matches!(r.next(now, true), Ok(Job::Pause { .. })));
        assert!(matches!(r.next(now, true), Err(None)), "empty");
    }

    /// A job whose order is `id` (a pause has order 0; these stand for events).
    fn marker(id: u64, r: &mut Reorder, at: tokio::time::Instant) {
        let (reached, _) = oneshot::channel();
        let (_, resume) = oneshot::channel();
        r.arrivals = id * 1000;
        r.jobs.insert((id, r.arrivals), (at, Job::Pause { reached, resume }));
    }

    fn next_id(r: &mut Reorder, now: tokio::time::Instant) -> Result<u64, Option<tokio::time::Instant>> {
        let key = r.jobs.first_key_value().map(|(k, _)| k.0);
        r.next(now, false).map(|_| key.unwrap_or_default())
    }

    #[test]
    fn jobs_wait_the_window_for_swapped_ones_and_go_in_order() {
        let t0 = tokio::time::Instant::now();
        let mut r = Reorder::default();
        marker(69, &mut r, t0);
        assert_eq!(next_id(&mut r, t0), Err(Some(t0 + REORDER_WINDOW)), "waits for what was dispatched with it");
        marker(63, &mut r, t0 + Duration::from_millis(5));
        let later = t0 + REORDER_WINDOW + Duration::from_millis(5);
        assert_eq!(next_id(&mut r, later), Ok(63), "the earlier one first");
        assert_eq!(next_id(&mut r, later), Ok(69));
        // A backlog: a full buffer hands out at once, in order.
        for id in (1..=SHARD_QUEUE as u64).rev() {
            marker(id, &mut r, t0);
        }
        assert!(r.is_full());
        assert_eq!(next_id(&mut r, t0), Ok(1));
        assert_eq!(next_id(&mut r, t0), Err(Some(t0 + REORDER_WINDOW)), "no longer full: the window again");
        assert_eq!(r.drain().len(), SHARD_QUEUE - 1);
    }
}
