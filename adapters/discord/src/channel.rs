//! The customer side: [`DiscordChannel`] sends the core's replies to DMs and support channels,
//! escaped, split at 2,000 characters, with quick-reply buttons, pinging nobody; and
//! [`map_error`] turns Discord's answers into the outbox's retry decisions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serenity::all::{ChannelId, CreateMessage, Http, UserId};
use switchboard_core::ChannelError;
use switchboard_core::channel::Channel;
use switchboard_core::types::Reply;

use crate::format;

/// The channel name inbound messages carry and the outbox delivers to.
pub const CHANNEL_NAME: &str = "discord";

/// Discord's error code for "Cannot send messages to this user" (DMs closed, or no shared guild).
const CANNOT_MESSAGE_USER: isize = 50007;

/// Discord's error codes for "Missing Access" and "Missing Permissions".
const MISSING_ACCESS: isize = 50001;
const MISSING_PERMISSIONS: isize = 50013;

/// When Discord says "slow down" without a usable delay (the typed error drops `retry_after`).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where a conversation's replies go: a DM channel (`"<channel id>"`), or a support channel for one
/// customer (`"<channel id>:<user id>"`), where replies start with a mention of the customer that
/// pings nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The channel messages are posted in.
    pub channel: ChannelId,
    /// The customer addressed, in a shared support channel.
    pub user: Option<UserId>,
}

impl Target {
    /// Parses a conversation id.
    pub fn parse(chat: &str) -> Option<Target> {
        let id = |s: &str| s.parse::<u64>().ok().filter(|&n| n > 0);
        match chat.split_once(':') {
            Some((c, u)) => Some(Target { channel: ChannelId::new(id(c)?), user: Some(UserId::new(id(u)?)) }),
            None => Some(Target { channel: ChannelId::new(id(chat)?), user: None }),
        }
    }

    /// The conversation id.
    pub fn conversation(&self) -> String {
        match self.user {
            Some(u) => format!("{}:{}", self.channel, u),
            None => self.channel.to_string(),
        }
    }
}

/// Sends customer replies through Discord's REST API.
#[derive(Clone)]
pub struct DiscordChannel {
    http: Arc<Http>,
    /// Pieces of a long reply already sent, so a retry after a partial failure does not repeat them.
    sent_pieces: Arc<Mutex<HashMap<u64, usize>>>,
}

impl std::fmt::Debug for DiscordChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordChannel").finish_non_exhaustive()
    }
}

impl DiscordChannel {
    /// A channel over `http`.
    pub fn new(http: Arc<Http>) -> DiscordChannel {
        DiscordChannel { http, sent_pieces: Arc::new(Mutex::new(HashMap::new())) }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, HashMap<u64, usize>> {
        self.sent_pieces.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn reply_key(chat: &str, reply: &Reply) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    chat.hash(&mut h);
    reply.text.hash(&mut h);
    for c in &reply.choices {
        c.payload.hash(&mut h);
        c.label.hash(&mut h);
    }
    h.finish()
}

#[async_trait]
impl Channel for DiscordChannel {
    fn name(&self) -> &str {
        CHANNEL_NAME
    }

    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        let target = Target::parse(chat).ok_or_else(|| ChannelError::Permanent(format!("{chat:?} is not a Discord conversation")))?;
        let rows = format::buttons(&reply.choices);
        if reply.text.trim().is_empty() && rows.is_empty() {
            return Ok(());
        }
        let prefix = target.user.map(|u| format!("<@{u}> ")).unwrap_or_default();
        let pieces = format::pieces(&prefix, &reply.text);
        let key = reply_key(chat, reply);
        let done = self.progress().get(&key).copied().unwrap_or(0);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate().skip(done) {
            let mut msg = CreateMessage::new().content(piece).allowed_mentions(format::no_mentions());
            if i == last && !rows.is_empty() {
                msg = msg.components(rows.clone());
            }
            match target.channel.send_message(&*self.http, msg).await {
                Ok(_) => {
                    self.progress().insert(key, i + 1);
                }
                Err(e) => {
                    let err = map_error(&e);
                    if matches!(err, ChannelError::Blocked(_) | ChannelError::Permanent(_)) {
                        self.progress().remove(&key);
                    }
                    return Err(err);
                }
            }
        }
        self.progress().remove(&key);
        Ok(())
    }
}

/// Maps a failed Discord call onto what the outbox does with it: 429 → [`ChannelError::RateLimited`],
/// network errors and 5xx → [`ChannelError::Transient`], 403 "Cannot send messages to this user"
/// (50007) → [`ChannelError::Blocked`], unknown channels and other 4xx → [`ChannelError::Permanent`].
/// A rejected token (401) is transient: nothing can be sent until it is fixed, and then everything can.
pub fn map_error(e: &serenity::Error) -> ChannelError {
    use serenity::http::HttpError;
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            let code = r.error.code;
            let what = format!("Discord answered {status} (code {code}: {})", r.error.message);
            match status {
                429 => ChannelError::RateLimited(DEFAULT_RETRY_AFTER),
                401 | 408 | 500..=599 => ChannelError::Transient(what),
                403 if code == CANNOT_MESSAGE_USER => ChannelError::Blocked(what),
                // The bot's role lacks access or a permission in that channel: not the message's
                // fault, and fixed by an operator, so the outbox keeps retrying it meanwhile.
                403 if code == MISSING_ACCESS || code == MISSING_PERMISSIONS => {
                    ChannelError::Transient(format!("{what}; give the bot's role access and the Send Messages permission there"))
                }
                _ => ChannelError::Permanent(what),
            }
        }
        serenity::Error::Http(HttpError::Request(e)) => ChannelError::Transient(format!("cannot reach Discord: {e}")),
        serenity::Error::Model(e) => ChannelError::Permanent(format!("Discord would refuse this message: {e}")),
        serenity::Error::Json(e) => ChannelError::Permanent(format!("unexpected answer from Discord: {e}")),
        other => ChannelError::Transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conversations() {
        assert_eq!(Target::parse("12"), Some(Target { channel: ChannelId::new(12), user: None }));
        let t = Target::parse("12:34");
        assert_eq!(t, Some(Target { channel: ChannelId::new(12), user: Some(UserId::new(34)) }));
        assert_eq!(t.map(|t| t.conversation()), Some("12:34".to_string()));
        assert_eq!(Target::parse("x"), None);
        assert_eq!(Target::parse("0"), None);
        assert_eq!(Target::parse("1:"), None);
    }
}
