//! What comes in over the gateway, in order: the serenity event handler only queues each event,
//! and one worker turns them into engine calls: customer messages and button clicks become
//! [`Inbound`]s, agents' messages in ticket threads become replies, slash commands become agent
//! commands. serenity runs each event's handler as a task of its own, so events that arrive
//! together (two quick messages from one customer) can reach the queue swapped; the worker
//! gathers what arrives within `REORDER_WINDOW` and handles it in Discord's order, by snowflake
//! id.
//!
//! Discord does not replay events to a new gateway session, so what customers and agents wrote
//! while the bot was stopped (or disconnected beyond a resume) would be lost. The worker
//! remembers, per channel (a DM, a support channel, a ticket thread), the last message it handled
//! there (`NS_SEEN`, `NS_SEEN_DM`), and at the start of every session reads what came after it from the REST API
//! and handles it first; a message read so and then delivered live as well counts once.

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
use switchboard_core::types::{Actor, Content, Inbound, Ticket, TicketStatus};
use tokio::sync::{mpsc, watch};

use crate::channel::{CHANNEL_NAME, Target};
use crate::config::DiscordConfig;
use crate::desk::ACTOR_PREFIX;
use crate::format;
use crate::threads::Threads;

/// How long a customer message is kept and retried while storage is unreachable.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(3600);

/// Namespace of `channel id → id of the last message handled there`, for support channels and
/// ticket threads.
pub const NS_SEEN: &str = "discord.seen";
/// The same for customers' DM channels (REST messages do not say whether they come from a DM).
pub const NS_SEEN_DM: &str = "discord.seen_dm";

/// Channels whose last handled message is older than this are not read again at a session's start
/// (so a restart does not walk every DM ever opened); it matches the engine's dedup retention.
const CATCH_UP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// At most this many pages of 100 messages are read per channel at a session's start.
const CATCH_UP_PAGES: usize = 10;

/// What a channel whose messages are read at a session's start is.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A customer's direct messages.
    Dm,
    /// A support channel, where customers mention the bot.
    Support,
    /// The thread of this ticket, where agents answer.
    Thread(i64),
}

impl Kind {
    /// Where the last handled message of such a channel is kept.
    fn namespace(self) -> &'static str {
        match self {
            Kind::Dm => NS_SEEN_DM,
            Kind::Support | Kind::Thread(_) => NS_SEEN,
        }
    }
}

/// Milliseconds since the Unix epoch at which a snowflake id was made.
fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + 1_420_070_400_000
}

/// An event taken off the gateway, waiting for the worker.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// The session started (not after a resume).
    Ready(Box<Ready>),
    /// A message was posted somewhere the bot can see.
    Message(Box<Message>),
    /// A button was pressed (already acknowledged).
    Click(Box<ComponentInteraction>),
    /// A slash command was used.
    Command(Box<CommandInteraction>),
}

impl Incoming {
    /// Discord's order: snowflake ids grow with time (the session start comes first).
    fn order(&self) -> u64 {
        match self {
            Incoming::Ready(_) => 0,
            Incoming::Message(m) => m.id.get(),
            Incoming::Click(c) => c.id.get(),
            Incoming::Command(c) => c.id.get(),
        }
    }
}

/// How long the worker waits, after an event, for others dispatched with it.
const REORDER_WINDOW: Duration = Duration::from_millis(40);

/// Orders a batch of events as Discord sent them.
fn in_discord_order(mut batch: Vec<Incoming>) -> Vec<Incoming> {
    batch.sort_by_key(Incoming::order);
    batch
}

/// Queues gateway events for the worker, in the order they arrive.
#[derive(Debug)]
pub(crate) struct Handler {
    pub(crate) tx: mpsc::UnboundedSender<Incoming>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let _ = self.tx.send(Incoming::Ready(Box::new(ready)));
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!("Discord gateway session resumed");
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        let _ = self.tx.send(Incoming::Message(Box::new(msg)));
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(click) => {
                // Queue first (that keeps the order), then acknowledge within Discord's 3 seconds.
                let id = click.id;
                let token = click.token.clone();
                let _ = self.tx.send(Incoming::Click(Box::new(click)));
                let ack = CreateInteractionResponse::Acknowledge;
                if let Err(e) = ctx.http.create_interaction_response(id, &token, &ack, Vec::new()).await {
                    tracing::warn!(interaction = %id, error = %e, "could not acknowledge a button press");
                }
            }
            Interaction::Command(cmd) => {
                let _ = self.tx.send(Incoming::Command(Box::new(cmd)));
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
    /// Handles queued events until the queue closes or `stop` turns true, then what is left.
    pub(crate) async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Incoming>, mut stop: watch::Receiver<bool>) {
        let _ = self.stop.set(stop.clone());
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => {
                        let mut batch = vec![ev];
                        let until = tokio::time::Instant::now() + REORDER_WINDOW;
                        while let Ok(Some(ev)) = tokio::time::timeout_at(until, rx.recv()).await {
                            batch.push(ev);
                        }
                        for ev in in_discord_order(batch) {
                            self.handle(ev).await;
                        }
                    }
                    None => return,
                },
                () = &mut stopped => break,
            }
        }
        let mut rest = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            rest.push(ev);
        }
        for ev in in_discord_order(rest) {
            self.handle(ev).await;
        }
    }

    async fn handle(&self, ev: Incoming) {
        match ev {
            Incoming::Ready(ready) => {
                self.on_ready(&ready);
                self.catch_up().await;
            }
            Incoming::Message(msg) => self.on_message(&msg).await,
            Incoming::Click(click) => self.on_click(&click).await,
            Incoming::Command(cmd) => self.on_command(&cmd).await,
        }
    }

    fn on_ready(&self, ready: &Ready) {
        tracing::info!(bot = %ready.user.id, guilds = ready.guilds.len(), "connected to the Discord gateway");
        self.http.set_application_id(ready.application.id);
        let Some(guild) = self.staff_guild else { return };
        if self.commands_registered.swap(true, Ordering::SeqCst) {
            return;
        }
        let http = self.http.clone();
        tokio::spawn(async move {
            match guild.set_commands(&*http, commands()).await {
                Ok(c) => tracing::info!(guild = %guild, commands = c.len(), "registered the agents' slash commands"),
                Err(e) => tracing::error!(guild = %guild, error = %e, "could not register the agents' slash commands"),
            }
        });
    }

    /// Handles, oldest first, the messages posted since the last one handled in each recently
    /// active DM, support channel and ticket thread: what customers and agents wrote while no
    /// session was live.
    async fn catch_up(&self) {
        let store = self.engine.store().clone();
        let (dms, others) = match (store.values(NS_SEEN_DM).await, store.values(NS_SEEN).await) {
            (Ok(d), Ok(o)) => (d, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot read which Discord messages were handled; messages sent while disconnected are not read");
                return;
            }
        };
        let seen = dms.into_iter().map(|s| (true, s)).chain(others.into_iter().map(|s| (false, s)));
        // A live delivery of what the previous session read has come by now.
        self.caught_up.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let now = u64::try_from(switchboard_core::types::now_ms()).unwrap_or_default();
        let window = u64::try_from(CATCH_UP_WINDOW.as_millis()).unwrap_or(u64::MAX);
        let mut read = 0usize;
        for (dm, (channel, last)) in seen {
            let (Ok(channel), Ok(mut after)) = (channel.parse::<u64>(), last.parse::<u64>()) else { continue };
            if channel == 0 || after == 0 || snowflake_ms(after).saturating_add(window) < now {
                continue;
            }
            let kind = if dm {
                Kind::Dm
            } else if self.config.support_channel_ids.contains(&channel) {
                Kind::Support
            } else {
                match self.threads.ticket_of(ChannelId::new(channel)).await {
                    Ok(Some(ticket)) => Kind::Thread(ticket),
                    // No longer a support channel (configuration changed): not ours to read.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "cannot tell whether a channel is a ticket thread; not read");
                        continue;
                    }
                }
            };
            self.seen.lock().unwrap_or_else(|p| p.into_inner()).entry(channel).or_insert(after);
            for _ in 0..CATCH_UP_PAGES {
                let page = ChannelId::new(channel).messages(&*self.http, GetMessages::new().after(MessageId::new(after)).limit(100)).await;
                let mut page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "cannot read the Discord messages sent while disconnected");
                        break;
                    }
                };
                // Discord lists a page newest first.
                page.sort_by_key(|m| m.id);
                let full = page.len() >= 100;
                let from = after;
                for m in page.into_iter().filter(|m| m.id.get() > from) {
                    after = m.id.get();
                    if !self.takes(&m) {
                        continue;
                    }
                    read += 1;
                    match kind {
                        // REST messages carry no member: the roles the allowlist checks are looked up.
                        Kind::Thread(ticket) => {
                            let member = match self.staff_guild {
                                Some(g) => g.member(&*self.http, m.author.id).await.ok(),
                                None => None,
                            };
                            let nick = member.as_ref().and_then(|mb| mb.nick.clone());
                            let roles = member.map(|mb| mb.roles).unwrap_or_default();
                            self.agent_message(&m, ticket, nick.as_deref(), &roles).await;
                        }
                        // Nor a guild id: the channel's kind says what they are.
                        Kind::Support => self.support_message(&m).await,
                        Kind::Dm => self.customer_message(&m, Target { channel: m.channel_id, user: None }, false).await,
                    }
                    self.caught_up.lock().unwrap_or_else(|p| p.into_inner()).insert(m.id.get());
                }
                // Past what was read (and ignored) too, unless shutdown cut the handling short.
                if self.stop.get().is_some_and(|s| *s.borrow()) {
                    return;
                }
                self.mark_seen(kind.namespace(), ChannelId::new(channel), MessageId::new(after)).await;
                if !full {
                    break;
                }
            }
        }
        if read > 0 {
            tracing::info!(messages = read, "read the Discord messages sent while disconnected");
        }
    }

    /// Records that the message `id` in `channel` (whose kind is told by namespace `ns`) was
    /// handled (only ever forward).
    async fn mark_seen(&self, ns: &str, channel: ChannelId, id: MessageId) {
        let newer = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let last = seen.entry(channel.get()).or_insert(0);
            let newer = id.get() > *last;
            if newer {
                *last = id.get();
            }
            newer
        };
        if newer && let Err(e) = self.engine.store().set_value(ns, &channel.get().to_string(), &id.get().to_string()).await {
            tracing::warn!(channel = %channel, error = %e, "cannot record the last handled Discord message");
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
        let inbound = Inbound {
            channel: CHANNEL_NAME.into(),
            conversation: target.conversation(),
            customer_id: msg.author.id.to_string(),
            customer_name: display_name(&msg.author, nick),
            content,
            message_id: msg.id.to_string(),
            at: msg.timestamp.timestamp_millis(),
            lang_hint: None,
        };
        if self.handle_inbound(inbound).await {
            let ns = if target.user.is_none() { NS_SEEN_DM } else { NS_SEEN };
            self.mark_seen(ns, msg.channel_id, msg.id).await;
        }
    }

    /// Hands a customer message to the engine. Discord delivers a message event once, so while
    /// storage is unreachable the message is kept here and tried again, with backoff, for up to
    /// [`OUTAGE_PATIENCE`] or until shutdown; later events wait behind it, keeping their order.
    /// The engine's dedup makes a retry of a message that was in fact stored harmless. Returns
    /// whether the engine took the message (or had it already).
    async fn handle_inbound(&self, inbound: Inbound) -> bool {
        let message_id = inbound.message_id.clone();
        let give_up = tokio::time::Instant::now() + OUTAGE_PATIENCE;
        let mut wait = Duration::from_millis(250);
        let mut stop = self.stop.get().cloned();
        loop {
            let stopping = stop.as_ref().is_some_and(|s| *s.borrow());
            match self.engine.handle(inbound.clone()).await {
                Ok(h) => {
                    tracing::debug!(message = %message_id, action = h.action.as_str(), intent = ?h.intent, "handled a Discord message");
                    return true;
                }
                Err(e) if e.is_transient() && !stopping && tokio::time::Instant::now() + wait < give_up => {
                    tracing::warn!(message = %message_id, error = %e, wait_ms = wait.as_millis() as u64, "cannot store a Discord message yet, retrying");
                    match stop.as_mut() {
                        Some(s) => {
                            tokio::select! {
                                () = tokio::time::sleep(wait) => {}
                                // Without a sender no stop can come: just wait.
                                lost = async { s.wait_for(|s| *s).await.is_err() } => if lost { tokio::time::sleep(wait).await },
                            }
                        }
                        None => tokio::time::sleep(wait).await,
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(message = %message_id, error = %e, "could not handle a Discord message");
                    return false;
                }
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
        let http = self.http.clone();
        tokio::spawn(async move {
            let msg = CreateMessage::new().content(text).allowed_mentions(format::no_mentions());
            if let Err(e) = channel.send_message(&*http, msg).await {
                tracing::warn!(channel = %channel, error = %e, "could not post in a Discord channel");
            }
        });
    }

    /// Answers a slash command, in the background.
    fn respond(&self, cmd: &CommandInteraction, text: String, ephemeral: bool) {
        let http = self.http.clone();
        let (id, token) = (cmd.id, cmd.token.clone());
        tokio::spawn(async move {
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
        for opt in &cmd.data.options {
            match (opt.name.as_str(), &opt.value) {
                ("ticket", CommandDataOptionValue::Integer(n)) => ticket_opt = Some(*n),
                ("text", CommandDataOptionValue::String(s)) => text = Some(s.clone()),
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
                let first = note.first().cloned().unwrap_or_default();
                if here == Some(ticket) {
                    // In the ticket's thread: the answer is the note, for the other agents to see.
                    self.respond(cmd, first, false);
                } else {
                    self.respond(cmd, format!("Note added to ticket #{ticket}."), true);
                    if let Ok(Some(thread)) = self.threads.thread_of(ticket).await {
                        self.say(thread, first);
                    }
                }
            }
            Ok(_) => {
                let done = match name {
                    "claim" => format!("Ticket #{ticket} is yours: write in its thread to answer the customer."),
                    "release" => format!("Ticket #{ticket} is back in the queue."),
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
        for (i, t) in tickets.iter().enumerate() {
            let status = match (&t.status, &t.agent) {
                (TicketStatus::Assigned, Some(a)) => match a.strip_prefix(ACTOR_PREFIX) {
                    Some(user) => format!("with <@{user}>"),
                    None => format!("with {}", format::escape(a)),
                },
                (s, _) => s.as_str().to_string(),
            };
            let thread = match self.threads.thread_of(t.id).await {
                Ok(Some(th)) => format!(" — <#{th}>"),
                _ => String::new(),
            };
            let line = format!(
                "#{} · {} · {} · {} ({}){}\n",
                t.id,
                t.priority.as_str(),
                status,
                format::escape(&switchboard_core::channel::one_line(&t.customer_name, 60)),
                t.key.channel,
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
