//! The customer side: [`DiscordChannel`] sends the core's replies to DMs and support channels,
//! escaped, with quick-reply buttons, pinging nobody, each message created once (Discord's `nonce`
//! with `enforce_nonce`); and [`map_error`] turns Discord's answers into the outbox's retry
//! decisions.

use std::sync::Arc;

use async_trait::async_trait;
use serenity::all::{ChannelId, CreateMessage, Http, Nonce, UserId};
use switchboard_core::ChannelError;
use switchboard_core::channel::Channel;
use switchboard_core::types::Reply;

use crate::api::{Api, DEFAULT_RETRY_AFTER};
use crate::format;

/// The channel name inbound messages carry and the outbox delivers to.
pub const CHANNEL_NAME: &str = "discord";

/// Discord's error code for "Cannot send messages to this user" (DMs closed, or no shared guild).
const CANNOT_MESSAGE_USER: isize = 50007;

/// Discord's error codes for "Missing Access" and "Missing Permissions".
const MISSING_ACCESS: isize = 50001;
const MISSING_PERMISSIONS: isize = 50013;

/// The longest `nonce` Discord takes.
pub const NONCE_LIMIT: usize = 25;

/// The nonce of piece `i` of what one outbox item (whose nonce is `nonce`) posts: the item's own
/// for the first piece, `"{nonce}.{i}"` for the others, so that every message has its own and a
/// retry repeats none. A nonce too long for that is replaced by a hash of it (stable across
/// processes and versions). At most [`NONCE_LIMIT`] characters.
pub fn piece_nonce(nonce: &str, i: usize) -> String {
    let fits = |s: &str| s.len() <= NONCE_LIMIT;
    let base = if fits(nonce) { nonce.to_string() } else { format!("h{:016x}", fnv1a(nonce)) };
    if i == 0 {
        return base;
    }
    let suffixed = format!("{base}.{i}");
    if fits(&suffixed) { suffixed } else { format!("h{:016x}.{i}", fnv1a(&base)) }
}

/// 64-bit FNV-1a: a hash that is the same in every process and Rust version.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A message with `nonce` (when the caller has one), enforced: Discord answers a repeat of it
/// (same author, same channel, within minutes) with the message already created.
pub(crate) fn with_nonce(msg: CreateMessage, nonce: Option<String>) -> CreateMessage {
    match nonce {
        Some(n) => msg.nonce(Nonce::String(n)).enforce_nonce(true),
        None => msg,
    }
}

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
    api: Api,
}

impl std::fmt::Debug for DiscordChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordChannel").finish_non_exhaustive()
    }
}

impl DiscordChannel {
    /// A channel over `http`.
    pub fn new(http: Arc<Http>) -> DiscordChannel {
        DiscordChannel::with_api(Api::new(http))
    }

    /// A channel over `api` (shared with the desk, so that both wait out what Discord said).
    pub(crate) fn with_api(api: Api) -> DiscordChannel {
        DiscordChannel { api }
    }

    /// Posts a reply. The engine splits long replies before queueing them ([`crate::TEXT_LIMIT`]);
    /// a reply still too long for one message (escaping grew it) is sent in several, every one of
    /// them, each with its own nonce derived from the item's, so a retry re-creates none.
    async fn deliver(&self, chat: &str, reply: &Reply, nonce: Option<&str>) -> Result<(), ChannelError> {
        let target = Target::parse(chat).ok_or_else(|| ChannelError::Permanent(format!("{chat:?} is not a Discord conversation")))?;
        let rows = format::buttons(&reply.choices);
        if reply.text.trim().is_empty() && rows.is_empty() {
            return Ok(());
        }
        let prefix = target.user.map(|u| format!("<@{u}> ")).unwrap_or_default();
        let pieces = format::pieces(&prefix, &reply.text);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            let mut msg = CreateMessage::new().content(piece).allowed_mentions(format::no_mentions());
            if i == last && !rows.is_empty() {
                msg = msg.components(rows.clone());
            }
            let msg = with_nonce(msg, nonce.map(|n| piece_nonce(n, i)));
            self.api.send_message(target.channel, &msg).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Channel for DiscordChannel {
    fn name(&self) -> &str {
        CHANNEL_NAME
    }

    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        self.deliver(chat, reply, None).await
    }

    async fn send_once(&self, chat: &str, reply: &Reply, nonce: &str) -> Result<(), ChannelError> {
        self.deliver(chat, reply, Some(nonce)).await
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

    #[test]
    fn piece_nonces_are_distinct_stable_and_short() {
        assert_eq!(piece_nonce("12345", 0), "12345");
        assert_eq!(piece_nonce("12345", 1), "12345.1");
        let long = "1234567890123456789012345";
        assert_eq!(long.len(), NONCE_LIMIT);
        assert_eq!(piece_nonce(long, 0), long);
        let pieces: Vec<String> = (0..12).map(|i| piece_nonce(long, i)).collect();
        assert!(pieces.iter().all(|n| n.len() <= NONCE_LIMIT), "{pieces:?}");
        let distinct: std::collections::HashSet<&String> = pieces.iter().collect();
        assert_eq!(distinct.len(), pieces.len());
        assert_eq!(piece_nonce(long, 3), piece_nonce(long, 3), "the same on every try");
        assert_ne!(piece_nonce(long, 1), piece_nonce("1234567890123456789012346", 1));
        let too_long = "x".repeat(40);
        assert!(piece_nonce(&too_long, 0).len() <= NONCE_LIMIT);
        assert!(piece_nonce(&too_long, 99).len() <= NONCE_LIMIT);
    }
}
