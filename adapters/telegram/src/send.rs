//! Sending to Telegram: plain text only (no `parse_mode`, so no customer or agent text can inject
//! formatting), quick-reply choices as an inline keyboard, and the customer-facing [`Channel`]
//! built on it.
//!
//! Every message goes through teloxide's [`Throttle`], which holds a send until it fits
//! Telegram's limits (about 30 messages a second per bot, one a second in a chat, 20 a minute in
//! a group), keeping the order of sends to one chat. There are two throttles with separate
//! queues: one for customers' private chats (29 a second overall) and one for the staff group (1 a
//! second, 20 a minute, the group's own limit), so desk notices waiting for the group's budget
//! never queue in front of customers' replies. Both are built with `no_retry`: a 429 comes back
//! to the engine's outbox ([`ChannelError::RateLimited`] for a customer chat, `Paused` for the
//! staff group, see the desk) instead of being retried inside the send; the throttle also freezes
//! its queue for the `retry_after` Telegram asked for.
//!
//! The engine splits long texts before queueing them ([`crate::TEXT_LIMIT`]); a text that still
//! arrives over Telegram's 4,096 UTF-16 units is sent in several messages, all of them, with the
//! choices under the last one. Nothing is remembered between attempts: a retry after a failure
//! in the middle of such a text sends it whole again.

use std::future::IntoFuture;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::ChannelError;
use switchboard_core::channel::{Channel, TextLimit, split_message};
use switchboard_core::types::{Choice, Reply};
use teloxide::RequestError;
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::{Limits, Settings};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ThreadId};

use crate::error::{Failure, classify, scrub};

/// Telegram's limit on one message, in UTF-16 code units.
pub const MAX_MESSAGE_UTF16: usize = 4096;

/// Telegram's limit on a button's `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;

/// Length in UTF-16 code units: how Telegram counts a message's length.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The longest reply text one Telegram message holds, as Telegram counts (UTF-16 code units):
/// the engine splits longer replies to customers before queueing them.
pub const TEXT_LIMIT: TextLimit = TextLimit { max: MAX_MESSAGE_UTF16, measure: utf16_len };

/// Room kept in each desk message for what the desk adds before a notice's text: an emoji, the
/// agent's or customer's name (cut to [`crate::desk::MAX_NAME`] characters, at most 128 UTF-16
/// units) and a few words such as " (not sent to the customer): ", at most about 180 units.
pub const DESK_PREFIX_ROOM: usize = 256;

/// The longest text inside a desk notice (agent replies and notes, customer messages relayed to
/// the staff group): Telegram's 4,096 UTF-16 units less [`DESK_PREFIX_ROOM`] for the prefix the
/// desk adds, so a notice within it is always one message.
pub const DESK_TEXT_LIMIT: TextLimit = TextLimit { max: MAX_MESSAGE_UTF16 - DESK_PREFIX_ROOM, measure: utf16_len };

/// The pace of sends to customers' private chats: one a second in a chat (Telegram's documented
/// limit; teloxide's default of 20 a minute per private chat is stricter than Telegram), 29 a
/// second in all, leaving one for the staff group within the bot's 30.
pub(crate) const CUSTOMER_LIMITS: Limits = Limits {
    messages_per_sec_chat: 1,
    messages_per_min_chat: 60,
    messages_per_min_channel_or_supergroup: 20,
    messages_per_sec_overall: 29,
};

/// The pace of sends to groups (the staff group): one a second and 20 a minute, Telegram's limit
/// for a group, whichever of its topics a message goes to.
pub(crate) const GROUP_LIMITS: Limits =
    Limits { messages_per_sec_chat: 1, messages_per_min_chat: 20, messages_per_min_channel_or_supergroup: 20, messages_per_sec_overall: 1 };

/// The sending half of the adapter, shared by the channel, the desk and the update handler.
pub(crate) struct Outbound {
    /// For requests that are not messages (topics, callback answers, webhook, getMe).
    bot: Bot,
    /// Messages to private chats.
    customers: Throttle<Bot>,
    /// Messages to groups (the staff group).
    groups: Throttle<Bot>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bot: its Debug output contains the token.
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// Wraps `bot`, spawning the throttles' workers (so: inside a Tokio runtime).
    pub(crate) fn new(bot: Bot) -> Outbound {
        let throttle = |limits: Limits| Throttle::spawn_with_settings(bot.clone(), Settings::default().limits(limits).no_retry());
        Outbound { customers: throttle(CUSTOMER_LIMITS), groups: throttle(GROUP_LIMITS), bot }
    }

    /// The bot, to build requests other than messages.
    pub(crate) fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The throttled bot to send messages to `chat` with.
    fn sender(&self, chat: i64) -> &Throttle<Bot> {
        if chat < 0 { &self.groups } else { &self.customers }
    }

    /// `text` with the token removed.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(text, self.bot.token())
    }

    /// Runs one request, its error classified and scrubbed of the token.
    pub(crate) async fn call<R, T>(&self, request: R) -> Result<T, Failure>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        request.await.map_err(|e| classify(&e, self.bot.token()))
    }

    /// Sends `text` to `chat`, in forum topic `thread` if given, with `choices` as an inline
    /// keyboard under the last part (a text over Telegram's limit goes in several messages).
    pub(crate) async fn send(&self, chat: i64, thread: Option<i32>, text: &str, choices: &[Choice]) -> Result<(), Failure> {
        let parts: Vec<String> = split_message(text, MAX_MESSAGE_UTF16, utf16_len).into_iter().filter(|p| !p.trim().is_empty()).collect();
        if parts.len() > 1 {
            tracing::warn!(chat, parts = parts.len(), "a text over Telegram's limit reached the adapter; sending it in parts");
        }
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let mut req = self.sender(chat).send_message(ChatId(chat), part);
            if let Some(t) = thread {
                req = req.message_thread_id(ThreadId(MessageId(t)));
            }
            if i == last
                && let Some(kb) = keyboard(choices)
            {
                req = req.reply_markup(kb);
            }
            if let Err(f) = self.call(req).await {
                tracing::warn!(chat, part = i + 1, parts = last + 1, error = ?f, "a Telegram send failed");
                return Err(f);
            }
        }
        tracing::debug!(chat, thread, parts = last + 1, "sent to Telegram");
        Ok(())
    }

    /// Sends outside the outbox (help, command answers): waits out one short rate limit, then
    /// gives up with a log line.
    pub(crate) async fn send_now(&self, chat: i64, thread: Option<i32>, text: &str) {
        for attempt in 0..2 {
            match self.send(chat, thread, text, &[]).await {
                Ok(()) => return,
                Err(Failure::RateLimited(wait)) if attempt == 0 && wait <= Duration::from_secs(5) => tokio::time::sleep(wait).await,
                Err(Failure::Transient(_)) if attempt == 0 => tokio::time::sleep(Duration::from_millis(500)).await,
                Err(e) => {
                    tracing::warn!(chat, error = ?e, "could not send a direct answer");
                    return;
                }
            }
        }
    }
}

/// One button per row (labels are whole phrases); payloads over Telegram's limit are left out.
pub(crate) fn keyboard(choices: &[Choice]) -> Option<InlineKeyboardMarkup> {
    let rows: Vec<Vec<InlineKeyboardButton>> = choices
        .iter()
        .filter(|c| {
            let ok = !c.payload.is_empty() && c.payload.len() <= MAX_CALLBACK_DATA && !c.label.trim().is_empty();
            if !ok {
                tracing::warn!(payload_len = c.payload.len(), "a choice cannot be a Telegram button (empty, or payload over 64 bytes)");
            }
            ok
        })
        .map(|c| vec![InlineKeyboardButton::callback(c.label.clone(), c.payload.clone())])
        .collect();
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

/// Where customers are: private chats with the bot. Registered with the engine as `"telegram"`.
#[derive(Debug)]
pub struct TelegramChannel {
    out: std::sync::Arc<Outbound>,
}

impl TelegramChannel {
    pub(crate) fn new(out: std::sync::Arc<Outbound>) -> TelegramChannel {
        TelegramChannel { out }
    }
}

#[async_trait]
impl Channel for TelegramChannel {
    fn name(&self) -> &str {
        crate::CHANNEL
    }

    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        let id: i64 = chat.parse().map_err(|_| ChannelError::Permanent(format!("{chat:?} is not a Telegram chat id")))?;
        self.out.send(id, None, &reply.text, &reply.choices).await.map_err(ChannelError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboards_skip_buttons_telegram_would_refuse() {
        let ok = Choice { payload: "intent:account_locked".into(), label: "Account locked".into() };
        let long = Choice { payload: "x".repeat(65), label: "Too long".into() };
        let kb = keyboard(&[ok, long]).map(|k| k.inline_keyboard.len());
        assert_eq!(kb, Some(1));
        assert!(keyboard(&[]).is_none());
    }
}
