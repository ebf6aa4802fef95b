//! The adapter's errors, and how Telegram's answers map onto the core's [`ChannelError`] so the
//! engine's outbox knows what to retry. Every text that may reach a log, the database or an agent
//! goes through [`scrub`] first: reqwest errors carry the request URL, which holds the bot token.

use std::time::Duration;

use switchboard_core::{ChannelError, EngineError, StoreError};
use teloxide::{ApiError, RequestError};

/// What can go wrong in the Telegram adapter.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// The `[telegram]` configuration section is invalid.
    #[error("invalid [telegram] configuration: {0}")]
    Config(String),
    /// Telegram refused the bot token (revoked or mistyped).
    #[error("Telegram refused the bot token (check TELEGRAM_BOT_TOKEN): {0}")]
    InvalidToken(String),
    /// A Bot API request failed; the text is already scrubbed of the token.
    #[error("Telegram request failed: {0}")]
    Request(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The engine's store failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The engine refused or failed to handle something.
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// Replaces every occurrence of the bot token in `text`, and any `bot<id>:<secret>` path segment,
/// so a token can never reach a log line or the database.
pub fn scrub(text: &str, token: &str) -> String {
    let mut out = if token.is_empty() { text.to_string() } else { text.replace(token, "<token>") };
    // Belt and braces: any `/bot123456:ABC…/` segment, whatever the token.
    let mut from = 0;
    while let Some(pos) = out[from..].find("/bot").map(|p| p + from) {
        let start = pos + 4;
        let rest = &out[start..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(':') {
            let secret_len = rest[digits + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').count();
            let end = start + digits + 1 + secret_len;
            out.replace_range(start..end, "<token>");
            from = start + "<token>".len();
        } else {
            from = start;
        }
    }
    out
}

/// An error with its causes, `outer: inner: …`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// Keeps a message readable in logs and tickets: one line, at most `max` characters.
pub(crate) fn short(text: &str, max: usize) -> String {
    switchboard_core::channel::one_line(text, max)
}

/// How a failed request should be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Slow down for this long, then retry (429).
    RateLimited(Duration),
    /// Retry later: network trouble, a 5xx, an unreadable answer.
    Transient(String),
    /// The recipient blocked the bot, is gone, or the chat does not exist.
    Blocked(String),
    /// Retrying will not help (a bad request).
    Permanent(String),
}

impl From<Failure> for ChannelError {
    fn from(f: Failure) -> ChannelError {
        match f {
            Failure::RateLimited(d) => ChannelError::RateLimited(d),
            Failure::Transient(s) => ChannelError::Transient(s),
            Failure::Blocked(s) => ChannelError::Blocked(s),
            Failure::Permanent(s) => ChannelError::Permanent(s),
        }
    }
}

/// Classifies a teloxide error, with every text scrubbed of `token`.
pub(crate) fn classify(err: &RequestError, token: &str) -> Failure {
    match err {
        RequestError::RetryAfter(s) => Failure::RateLimited(s.duration()),
        RequestError::Api(api) => classify_api(api),
        RequestError::MigrateToChatId(to) => {
            Failure::Permanent(format!("the group was upgraded to a supergroup with id {to}; update the configuration"))
        }
        RequestError::Network(e) => Failure::Transient(short(&scrub(&format!("network error: {}", chain(e.as_ref())), token), 300)),
        RequestError::InvalidJson { source, .. } => {
            // The raw body is left out: a proxy's HTML error page says nothing useful.
            Failure::Transient(short(&scrub(&format!("unreadable answer from the Bot API: {source}"), token), 300))
        }
        RequestError::Io(e) => Failure::Transient(short(&scrub(&format!("I/O error: {e}"), token), 300)),
    }
}

fn classify_api(api: &ApiError) -> Failure {
    let text = short(&api.to_string(), 300);
    match api {
        ApiError::BotBlocked
        | ApiError::UserDeactivated
        | ApiError::ChatNotFound
        | ApiError::UserNotFound
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::GroupDeactivated => Failure::Blocked(text),
        ApiError::Unknown(desc) => classify_description(desc, short(desc, 300)),
        // 401: revoked or mistyped token. Retried (the operator can fix it) until the outbox gives up.
        ApiError::InvalidToken => Failure::Transient("Unauthorized: Telegram refused the bot token".into()),
        // Every other known error is a "Bad Request" or "Forbidden" Telegram describes precisely.
        _ if text.starts_with("Forbidden") => Failure::Blocked(text),
        _ => Failure::Permanent(text),
    }
}

/// Telegram's descriptions start with the HTTP reason phrase of their `error_code`.
fn classify_description(desc: &str, text: String) -> Failure {
    let lower = desc.to_ascii_lowercase();
    if lower.starts_with("forbidden") {
        Failure::Blocked(text)
    } else if lower.starts_with("bad request") || lower.starts_with("not found") || lower.starts_with("conflict") {
        Failure::Permanent(text)
    } else if lower.starts_with("too many requests") {
        // A 429 without `retry_after`: Telegram's usual minimum.
        Failure::RateLimited(Duration::from_secs(1))
    } else {
        // 5xx ("Internal Server Error", "Bad Gateway"), 401 after a token change, anything new:
        // worth retrying with backoff; the outbox gives up after its attempt limit.
        Failure::Transient(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_token_and_any_bot_path_segment() {
        let token = "123456:AAE-secret_Token";
        let e = "error sending request for url (https://api.telegram.org/bot123456:AAE-secret_Token/getUpdates)";
        let s = scrub(e, token);
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("/bot<token>/getUpdates") || s.contains("<token>"), "{s}");
        let other = scrub("http://127.0.0.1:1/bot987:XyZ_-q/sendMessage and more", "");
        assert_eq!(other, "http://127.0.0.1:1/bot<token>/sendMessage and more");
        assert_eq!(scrub("/bot is fine /botany", "t:k"), "/bot is fine /botany");
    }

    #[test]
    fn telegram_errors_map_onto_channel_errors() {
        assert_eq!(classify_api(&ApiError::BotBlocked), Failure::Blocked("Forbidden: bot was blocked by the user".into()));
        assert!(matches!(classify_api(&ApiError::UserDeactivated), Failure::Blocked(_)));
        assert!(matches!(classify_api(&ApiError::ChatNotFound), Failure::Blocked(_)));
        assert!(matches!(classify_api(&ApiError::MessageIsTooLong), Failure::Permanent(_)));
        assert!(matches!(classify_api(&ApiError::Unknown("Internal Server Error".into())), Failure::Transient(_)));
        assert!(matches!(classify_api(&ApiError::Unknown("Bad Gateway".into())), Failure::Transient(_)));
        assert!(matches!(classify_api(&ApiError::Unknown("Bad Request: BUTTON_DATA_INVALID".into())), Failure::Permanent(_)));
        assert!(matches!(
            classify_api(&ApiError::Unknown("Forbidden: bot can't initiate conversation with a user".into())),
            Failure::Blocked(_)
        ));
        let rate = classify(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(7)), "");
        assert_eq!(rate, Failure::RateLimited(Duration::from_secs(7)));
    }
}
