//! Sending to Telegram: plain text only (no `parse_mode`, so no customer or agent text can inject
//! formatting), split at Telegram's 4,096 UTF-16 units, quick-reply choices as an inline keyboard,
//! and the customer-facing [`Channel`] built on it.
//!
//! Two things keep the engine's outbox correct on top of Telegram's flood control:
//! - after a 429 for a chat, later sends to that chat fail fast with a slightly longer wait than
//!   the one that hit the limit, so the outbox retries them after it, in their original order;
//! - a long reply split in several messages remembers how many parts went out, so a retry after a
//!   failure in the middle resumes instead of repeating the first parts.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::future::IntoFuture;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_core::ChannelError;
use switchboard_core::channel::{Channel, split_message, utf16_len};
use switchboard_core::types::{Choice, Reply};
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ThreadId};

use crate::error::{Failure, classify, scrub};

/// Telegram's limit on one message, in UTF-16 code units.
pub const MAX_MESSAGE_UTF16: usize = 4096;

/// Telegram's limit on a button's `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;

/// A chat counts as rate limited only while more than this is left of its wait.
const BLOCK_TOLERANCE: Duration = Duration::from_millis(100);

/// Sends held back by a rate limit retry this much after the one that hit it, keeping their order.
const BLOCK_MARGIN: Duration = Duration::from_millis(300);

/// How many parts of partly sent replies are remembered at most.
const MAX_PROGRESS: usize = 10_000;

/// The sending half of the adapter, shared by the channel, the desk and the update handler.
pub(crate) struct Outbound {
    bot: Bot,
    /// Chats that answered 429, until when.
    limited: Mutex<HashMap<i64, Instant>>,
    /// Replies split in parts and partly sent: how many parts are out.
    progress: Mutex<HashMap<u64, usize>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bot: its Debug output contains the token.
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    pub(crate) fn new(bot: Bot) -> Outbound {
        Outbound { bot, limited: Mutex::new(HashMap::new()), progress: Mutex::new(HashMap::new()) }
    }

    /// The bot, to build requests.
    pub(crate) fn bot(&self) -> &Bot {
        &self.bot
    }

    /// `text` with the token removed.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(text, self.bot.token())
    }

    /// Runs one request to `chat`, honouring and recording its rate limit.
    pub(crate) async fn call<R, T>(&self, chat: i64, request: R) -> Result<T, Failure>
    where
        R: IntoFuture<Output = Result<T, RequestError>>,
    {
        if let Some(wait) = self.limited_for(chat) {
            return Err(Failure::RateLimited(wait + BLOCK_MARGIN));
        }
        match request.await {
            Ok(v) => Ok(v),
            Err(e) => {
                let failure = classify(&e, self.bot.token());
                if let Failure::RateLimited(wait) = failure {
                    self.limited.lock().unwrap_or_else(|p| p.into_inner()).insert(chat, Instant::now() + wait);
                }
                Err(failure)
            }
        }
    }

    fn limited_for(&self, chat: i64) -> Option<Duration> {
        let mut limited = self.limited.lock().unwrap_or_else(|p| p.into_inner());
        let until = *limited.get(&chat)?;
        let left = until.saturating_duration_since(Instant::now());
        if left > BLOCK_TOLERANCE {
            Some(left)
        } else {
            limited.remove(&chat);
            None
        }
    }

    /// Sends `text` (split as needed) to `chat`, in forum topic `thread` if given, with `choices`
    /// as an inline keyboard under the last part.
    pub(crate) async fn send(&self, chat: i64, thread: Option<i32>, text: &str, choices: &[Choice]) -> Result<(), Failure> {
        let parts: Vec<String> = split_message(text, MAX_MESSAGE_UTF16, utf16_len).into_iter().filter(|p| !p.trim().is_empty()).collect();
        if parts.is_empty() {
            return Ok(());
        }
        let key = progress_key(chat, thread, text, choices);
        let done = self.progress.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied().unwrap_or(0);
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate().skip(done) {
            let mut req = self.bot.send_message(ChatId(chat), part.clone());
            if let Some(t) = thread {
                req = req.message_thread_id(ThreadId(MessageId(t)));
            }
            if i == last
                && let Some(kb) = keyboard(choices)
            {
                req = req.reply_markup(kb);
            }
            match self.call(chat, req).await {
                Ok(_) => {
                    if i < last {
                        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                        if progress.len() >= MAX_PROGRESS {
                            progress.clear();
                        }
                        progress.insert(key, i + 1);
                    }
                }
                Err(f) => {
                    if matches!(f, Failure::Blocked(_) | Failure::Permanent(_)) {
                        self.progress.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                    }
                    tracing::warn!(chat, part = i + 1, parts = parts.len(), error = ?f, "a Telegram send failed");
                    return Err(f);
                }
            }
        }
        self.progress.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        tracing::debug!(chat, thread, parts = parts.len(), "sent to Telegram");
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

fn progress_key(chat: i64, thread: Option<i32>, text: &str, choices: &[Choice]) -> u64 {
    let mut h = DefaultHasher::new();
    chat.hash(&mut h);
    thread.hash(&mut h);
    text.hash(&mut h);
    for c in choices {
        c.payload.hash(&mut h);
        c.label.hash(&mut h);
    }
    h.finish()
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
