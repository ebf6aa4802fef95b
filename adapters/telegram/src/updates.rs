//! Turning Telegram updates into engine calls. Private chats are customers: text, `/start`,
//! `/help`, button presses (callback queries) and everything else as "unsupported". The staff
//! supergroup is the agents' side: a message in a ticket's topic is a reply to the customer, and
//! the [`StaffCommand`]s act on the topic's ticket. Only allowlisted agents are heard there.

use switchboard_core::dialogue::PAYLOAD_START;
use switchboard_core::engine::{AgentCommand, AgentOutcome};
use switchboard_core::types::{Actor, Content, Inbound, Ticket, now_ms};
use switchboard_core::{EngineError, Lang, hant};
use teloxide::prelude::*;
use teloxide::types::{CallbackQuery, MediaKind, Message, MessageKind, UpdateKind, User};
use teloxide::utils::command::BotCommands;

use crate::desk::{ticket_of, topic_of};
use crate::{ACTOR_PREFIX, CHANNEL, Telegram, TelegramError};

/// The `processed` channel of staff-group messages already acted on (ids `<chat>:<message id>`),
/// pruned with every other handled message id.
pub const STAFF_PROCESSED: &str = "telegram.staff";

/// Commands customers can send the bot in a private chat.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum CustomerCommand {
    /// Start over: a greeting and the most asked topics as buttons.
    Start(String),
    /// What this bot can do, and how to reach a person.
    Help,
}

/// Commands agents use in the staff group.
#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(
    rename_rule = "lowercase",
    description = "Agent commands, inside a ticket's topic (except /queue and /help). Any other message in a ticket's topic is sent to the customer."
)]
pub enum StaffCommand {
    /// Take this ticket: the bot stays silent and you answer the customer.
    Claim,
    /// Put this ticket back in the queue.
    Release,
    /// Add an internal note to this ticket; the customer never sees it.
    Note(String),
    /// Close this ticket; the customer is back with the bot.
    Close,
    /// Block this ticket's customer: /block [duration such as 2h or 7d] [reason]. Their messages are kept but not answered or relayed.
    Block(String),
    /// Lift the block on this ticket's customer.
    Unblock,
    /// List waiting and assigned tickets, urgent first, then oldest (anywhere in the group).
    Queue,
    /// Show these commands.
    Help,
}

/// The answer to `/help` in a private chat.
pub fn customer_help(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => {
            "您好!我是客服助手,可以回答常见问题,例如:账号被锁、收不到重置邮件、转账失败或未到账、账户安全、注销账户等。\n\
             直接用文字描述您的问题即可,中文或英文都可以。\n\
             发送 /start 查看常见问题按钮。\n\
             需要真人帮助时,发送“人工”或“转人工”,客服人员会接手。"
        }
        Lang::En => {
            "Hi! I'm the support assistant. I can answer common questions such as a locked account, a missing \
             password-reset email, failed, pending or missing transfers, account security and closing an account.\n\
             Just describe your question in your own words, in English or Chinese.\n\
             Send /start to see the most asked topics as buttons.\n\
             To reach a person, write \"human\" (or \"人工\") and an agent will take over."
        }
    }
}

/// How agents see a Telegram user.
pub(crate) fn display_name(user: &User) -> String {
    let full = user.full_name();
    let full = full.trim();
    match (&user.username, full.is_empty()) {
        (_, false) => full.to_string(),
        (Some(u), true) => format!("@{u}"),
        (None, true) => user.id.0.to_string(),
    }
}

/// The platform's word for a message the bot cannot read; `None` for service messages.
pub(crate) fn unsupported_kind(msg: &Message) -> Option<&'static str> {
    Some(match &msg.kind {
        MessageKind::Common(c) => match &c.media_kind {
            MediaKind::Animation(_) => "animation",
            MediaKind::Audio(_) => "audio",
            MediaKind::Contact(_) => "contact",
            MediaKind::Document(_) => "document",
            MediaKind::PaidMedia(_) => "paid media",
            MediaKind::Game(_) => "game",
            MediaKind::Venue(_) => "venue",
            MediaKind::Location(_) => "location",
            MediaKind::Photo(_) => "photo",
            MediaKind::Poll(_) => "poll",
            MediaKind::Checklist(_) => "checklist",
            MediaKind::Sticker(_) => "sticker",
            MediaKind::Story(_) => "story",
            MediaKind::Text(_) => return None,
            MediaKind::Video(_) => "video",
            MediaKind::VideoNote(_) => "video note",
            MediaKind::Voice(_) => "voice message",
            MediaKind::Migration(_) => return None,
        },
        MessageKind::Dice(_) => "dice",
        _ => return None,
    })
}

/// A link to a forum topic, shown as plain text (Telegram makes it clickable).
fn topic_link(staff: i64, thread: i32) -> Option<String> {
    let id = staff.to_string();
    id.strip_prefix("-100").map(|internal| format!("https://t.me/c/{internal}/{thread}"))
}

impl Telegram {
    /// Handles one update. Errors worth retrying (storage) are returned; everything else is
    /// handled here (answered, logged or ignored).
    pub async fn handle_update(&self, update: Update) -> Result<(), TelegramError> {
        match update.kind {
            UpdateKind::Message(m) => self.on_message(&m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(&q).await,
            UpdateKind::Error(_) => {
                tracing::warn!(update = update.id.0, "skipped an update teloxide cannot read");
                Ok(())
            }
            _ => {
                tracing::debug!(update = update.id.0, "ignored an update kind the bot does not use");
                Ok(())
            }
        }
    }

    async fn on_message(&self, m: &Message) -> Result<(), TelegramError> {
        if m.chat.is_private() {
            self.on_customer_message(m).await
        } else if Some(m.chat.id.0) == self.config.staff_chat_id {
            self.on_staff_message(m).await
        } else {
            tracing::debug!(chat = m.chat.id.0, "ignored a message from a chat that is neither private nor the staff group");
            Ok(())
        }
    }

    async fn on_customer_message(&self, m: &Message) -> Result<(), TelegramError> {
        let Some(from) = m.from.as_ref().filter(|u| !u.is_bot) else { return Ok(()) };
        let chat = m.chat.id.0;
        let content = match m.text() {
            Some(text) => match CustomerCommand::parse(text, &self.username) {
                Ok(CustomerCommand::Start(_)) => Content::Choice(PAYLOAD_START.into()),
                Ok(CustomerCommand::Help) => {
                    let tag = from.language_code.as_deref();
                    let lang = tag.and_then(Lang::parse).unwrap_or(Lang::En);
                    let help = customer_help(lang);
                    // A zh-Hant / zh-TW / zh-HK app reads it in traditional characters, as the bot answers.
                    let help = if lang == Lang::Zh && hant::choose(None, tag, false) { hant::to_traditional(help) } else { help.into() };
                    self.out.send_now(chat, None, &help).await;
                    return Ok(());
                }
                Err(_) => Content::Text(text.to_string()),
            },
            None => match (unsupported_kind(m), m.caption()) {
                // The caption is the customer's words: read, and kept beside the photo.
                (Some(kind), Some(caption)) => Content::Captioned { kind: kind.into(), text: caption.to_string() },
                (Some(kind), None) => Content::Unsupported(kind.into()),
                (None, _) => return Ok(()),
            },
        };
        let inbound = Inbound {
            channel: CHANNEL.into(),
            conversation: chat.to_string(),
            customer_id: from.id.0.to_string(),
            customer_name: display_name(from),
            content,
            message_id: format!("{chat}:{}", m.id.0),
            at: m.date.timestamp_millis(),
            lang_hint: from.language_code.clone(),
            deleted: None,
        };
        let handled = self.engine.handle(inbound).await?;
        tracing::info!(chat, action = handled.action.as_str(), intent = ?handled.intent, ticket = ?handled.ticket_id, "customer message handled");
        Ok(())
    }

    async fn on_callback(&self, q: &CallbackQuery) -> Result<(), TelegramError> {
        // Answer first, whatever happens next, so the client stops spinning.
        if let Err(e) = self.out.bot().answer_callback_query(q.id.clone()).await {
            tracing::debug!(error = %self.out.scrub(&e.to_string()), "could not answer a callback query");
        }
        let Some(data) = q.data.as_deref().filter(|d| !d.is_empty()) else { return Ok(()) };
        let chat = match &q.message {
            Some(m) if m.chat().is_private() => m.chat().id.0,
            Some(_) => return Ok(()),
            // The message is too old to be shown; a private chat's id is the user's.
            None => i64::try_from(q.from.id.0).unwrap_or_default(),
        };
        if chat == 0 || q.from.is_bot {
            return Ok(());
        }
        let inbound = Inbound {
            channel: CHANNEL.into(),
            conversation: chat.to_string(),
            customer_id: q.from.id.0.to_string(),
            customer_name: display_name(&q.from),
            content: Content::Choice(data.to_string()),
            message_id: format!("cb:{}", q.id.0),
            at: now_ms(),
            lang_hint: q.from.language_code.clone(),
            deleted: None,
        };
        let handled = self.engine.handle(inbound).await?;
        tracing::info!(chat, action = handled.action.as_str(), intent = ?handled.intent, "button press handled");
        Ok(())
    }

    async fn on_staff_message(&self, m: &Message) -> Result<(), TelegramError> {
        let Some(staff) = self.config.staff_chat_id else { return Ok(()) };
        let Some(from) = m.from.as_ref().filter(|u| !u.is_bot) else { return Ok(()) };
        let thread = if m.is_topic_message { m.thread_id.map(|t| t.0.0) } else { None };
        let ticket = match thread {
            Some(t) => ticket_of(self.engine.store().as_ref(), staff, t).await?,
            None => None,
        };
        let command = m.text().filter(|t| t.starts_with('/')).map(|t| StaffCommand::parse(t, &self.username));
        // Commands for another bot ("/claim@otherbot") are not ours.
        let other_bot = m
            .text()
            .and_then(|t| t.split_whitespace().next())
            .and_then(|w| w.split_once('@'))
            .is_some_and(|(_, bot)| !bot.eq_ignore_ascii_case(&self.username));
        // Service messages (topic created or closed, pins…) are nobody's business.
        let content = m.text().is_some() || unsupported_kind(m).is_some();
        let ours = matches!(command, Some(Ok(_))) || (ticket.is_some() && content && !other_bot);
        if !ours {
            return Ok(());
        }
        let actor = Actor::new(format!("{ACTOR_PREFIX}{}", from.id.0), display_name(from));
        if !self.engine.is_agent(&actor) {
            tracing::warn!(
                user = from.id.0,
                chat = staff,
                thread,
                "ignored a ticket message or command from a staff group member who is not an agent"
            );
            return Ok(());
        }
        // Agent actions carry no platform id into the engine: remember which were done, so a
        // redelivered update (after a crash lost the offset) is not acted on twice.
        let store = self.engine.store();
        let done_key = format!("{staff}:{}", m.id.0);
        if store.is_processed(STAFF_PROCESSED, &done_key).await? {
            tracing::debug!(chat = staff, message = m.id.0, "skipped a staff message already handled");
            return Ok(());
        }
        self.on_agent_message(m, staff, thread, ticket, command, &actor).await;
        if let Err(e) = store.mark_processed(STAFF_PROCESSED, &done_key, switchboard_core::types::now_ms()).await {
            tracing::error!(error = %e, "cannot record a handled staff message");
        }
        Ok(())
    }

    async fn on_agent_message(
        &self,
        m: &Message,
        staff: i64,
        thread: Option<i32>,
        ticket: Option<i64>,
        command: Option<Result<StaffCommand, teloxide::utils::command::ParseError>>,
        actor: &Actor,
    ) {
        let say = |text: String| async move { self.out.send_now(staff, thread, &text).await };
        let cmd = match command {
            Some(Ok(StaffCommand::Queue)) => {
                let text = match self.engine.agent(actor, AgentCommand::Queue).await {
                    Ok(AgentOutcome::Queue(tickets)) => self.queue_text(staff, &tickets).await,
                    Ok(_) => return,
                    Err(e) => format!("⚠️ {e}"),
                };
                say(text).await;
                return;
            }
            Some(Ok(StaffCommand::Help)) => {
                say(StaffCommand::descriptions().to_string()).await;
                return;
            }
            Some(Ok(c)) => {
                let Some(id) = ticket else {
                    say("⚠️ Use this command inside a ticket's topic.".into()).await;
                    return;
                };
                match c {
                    StaffCommand::Claim => AgentCommand::Claim(id),
                    StaffCommand::Release => AgentCommand::Release(id),
                    StaffCommand::Note(text) => AgentCommand::Note(id, text),
                    StaffCommand::Close => AgentCommand::Close(id),
                    StaffCommand::Block(args) => match switchboard_core::guard::block_args(&args) {
                        Ok((duration, reason)) => AgentCommand::Block { ticket: id, duration, reason },
                        Err(e) => {
                            say(format!("⚠️ {e}")).await;
                            return;
                        }
                    },
                    StaffCommand::Unblock => AgentCommand::Unblock(id),
                    StaffCommand::Queue | StaffCommand::Help => return,
                }
            }
            Some(Err(_)) => {
                say("⚠️ Unknown command; nothing was sent to the customer. /help lists the commands.".into()).await;
                return;
            }
            None => {
                let Some(id) = ticket else { return };
                match m.text() {
                    Some(text) => AgentCommand::Reply(id, text.to_string()),
                    None if unsupported_kind(m).is_some() => {
                        say("⚠️ Only text is relayed to the customer; this message was not sent.".into()).await;
                        return;
                    }
                    // Service messages (topic created, closed, pinned…).
                    None => return,
                }
            }
        };
        let noted = match &cmd {
            AgentCommand::Note(id, _) => Some(*id),
            _ => None,
        };
        match self.engine.agent(actor, cmd).await {
            // The desk does not echo what was written here, so say the note is kept (the Discord
            // desk confirms it too).
            Ok(_) => {
                if let Some(id) = noted {
                    say(format!("📝 Note added to ticket #{id}; the customer does not see it.")).await;
                }
            }
            Err(e) => {
                // EngineError's text is written for agents.
                let e = match e {
                    EngineError::Store(_) => "storage is unavailable, please try again".to_string(),
                    other => other.to_string(),
                };
                say(format!("⚠️ {e}")).await;
            }
        }
    }

    async fn queue_text(&self, staff: i64, tickets: &[Ticket]) -> String {
        if tickets.is_empty() {
            return "The queue is empty.".into();
        }
        let now = now_ms();
        let mut s = format!("Tickets ({}):", tickets.len());
        for t in tickets {
            s.push_str(&format!("\n{}", switchboard_core::channel::QueueLine::new(t, now)));
            if let Ok(Some(thread)) = topic_of(self.engine.store().as_ref(), staff, t.id).await
                && let Some(link) = topic_link(staff, thread)
            {
                s.push_str(&format!(" → {link}"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_and_without_the_bot_name() {
        assert_eq!(CustomerCommand::parse("/start", "okbot").ok(), Some(CustomerCommand::Start(String::new())));
        assert_eq!(CustomerCommand::parse("/start ref42", "okbot").ok(), Some(CustomerCommand::Start("ref42".into())));
        assert_eq!(CustomerCommand::parse("/help@okbot", "okbot").ok(), Some(CustomerCommand::Help));
        assert!(CustomerCommand::parse("我的账号被锁了", "okbot").is_err());
        assert_eq!(
            StaffCommand::parse("/note called back, waiting", "okbot").ok(),
            Some(StaffCommand::Note("called back, waiting".into()))
        );
        assert_eq!(StaffCommand::parse("/claim@okbot", "okbot").ok(), Some(StaffCommand::Claim));
        assert!(StaffCommand::parse("/claim@otherbot", "okbot").is_err());
        let help = StaffCommand::descriptions().to_string();
        assert!(help.contains("/note") && help.contains("never sees it"), "{help}");
    }

    #[test]
    fn topic_links_point_into_supergroups() {
        assert_eq!(topic_link(-1001234567890, 42).as_deref(), Some("https://t.me/c/1234567890/42"));
        assert_eq!(topic_link(-42, 1), None);
    }
}
