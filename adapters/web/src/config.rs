//! The `[web]` configuration section: the chat widget's allowed sites and limits, and the web
//! console's accounts. The signing secret is not here: it comes from `SWITCHBOARD_WEB_SECRET`, or
//! is made once and kept in the store.

use serde::Deserialize;

use crate::WebError;

/// Settings of the web channel, deserialized from the `[web]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the widget and the console (with `http_listen`). On by default.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The sites (`https://www.example.com`) that may embed the chat; the bot's own pages always
    /// may. Others are refused: the page is not shown in their frames, and their sockets closed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The chat panel's title.
    #[serde(default = "default_title")]
    pub title: String,
    /// The longest message a visitor may send, in characters; longer ones are refused whole.
    #[serde(default = "default_max_chars")]
    pub max_message_chars: usize,
    /// How many messages a visitor may send at once before the pace below applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// How many messages a visitor may send a minute; past it a message is refused with the time
    /// to wait (the page sends it again then), not stored.
    #[serde(default = "default_per_minute")]
    pub messages_per_minute: u32,
    /// Agents' console accounts.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// How long a console sign-in lasts, in hours.
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Sign-in attempts allowed a minute for one account name, and (five times as many) for one
    /// address.
    #[serde(default = "default_sign_in_per_minute")]
    pub sign_in_per_minute: u32,
}

/// A console account: the agent's name (their actor id is `web:<name>`) and an argon2 hash of
/// their password (`switchboard console-password` prints one).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Sign-in name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// The password's argon2 hash, as a PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("name", &self.name).field("password_hash", &"<hidden>").finish()
    }
}

fn yes() -> bool {
    true
}
fn default_title() -> String {
    "Support".into()
}
fn default_max_chars() -> usize {
    2000
}
fn default_burst() -> u32 {
    20
}
fn default_per_minute() -> u32 {
    60
}
fn default_session_hours() -> u32 {
    12
}
fn default_sign_in_per_minute() -> u32 {
    5
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            allowed_origins: Vec::new(),
            title: default_title(),
            max_message_chars: default_max_chars(),
            burst: default_burst(),
            messages_per_minute: default_per_minute(),
            accounts: Vec::new(),
            session_hours: default_session_hours(),
            sign_in_per_minute: default_sign_in_per_minute(),
        }
    }
}

impl WebConfig {
    /// Reads the raw `[web]` table, checking every value.
    pub fn from_table(table: &toml::Table) -> Result<WebConfig, WebError> {
        let mut config: WebConfig =
            toml::Value::Table(table.clone()).try_into().map_err(|e: toml::de::Error| WebError::Config(e.to_string()))?;
        for origin in &mut config.allowed_origins {
            *origin = normalize_origin(origin)?;
        }
        if !(1..=switchboard_core::types::MAX_MESSAGE_CHARS).contains(&config.max_message_chars) {
            return Err(WebError::Config(format!(
                "web.max_message_chars must be between 1 and {}",
                switchboard_core::types::MAX_MESSAGE_CHARS
            )));
        }
        if config.burst == 0 || config.messages_per_minute == 0 {
            return Err(WebError::Config("web.burst and web.messages_per_minute must be at least 1".into()));
        }
        if config.sign_in_per_minute == 0 || config.session_hours == 0 {
            return Err(WebError::Config("web.sign_in_per_minute and web.session_hours must be at least 1".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for a in &config.accounts {
            if a.name.is_empty() || a.name.len() > 64 || !a.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(WebError::Config(format!(
                    "web.accounts: {:?} is not a valid name (letters, digits, '.', '_', '-', at most 64)",
                    a.name
                )));
            }
            if !seen.insert(a.name.as_str()) {
                return Err(WebError::Config(format!("web.accounts: {:?} is there twice", a.name)));
            }
            if argon2::PasswordHash::new(&a.password_hash).is_err() {
                return Err(WebError::Config(format!(
                    "web.accounts: the password_hash of {:?} is not a PHC string (make one with `switchboard console-password`)",
                    a.name
                )));
            }
        }
        Ok(config)
    }

    /// Whether a page of `origin` may use the chat (the bot's own origin is checked by the caller).
    pub fn allows_origin(&self, origin: &str) -> bool {
        normalize_origin(origin).is_ok_and(|o| self.allowed_origins.contains(&o))
    }
}

/// `scheme://host[:port]`, lowercase, without a path: what browsers send as `Origin`.
fn normalize_origin(origin: &str) -> Result<String, WebError> {
    let url = url::Url::parse(origin.trim()).map_err(|e| WebError::Config(format!("web.allowed_origins: {origin:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(WebError::Config(format!("web.allowed_origins: {origin:?} is not an http(s) origin")));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(WebError::Config(format!("web.allowed_origins: {origin:?} has a path; give scheme://host[:port] only")));
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Result<WebConfig, WebError> {
        WebConfig::from_table(&toml::from_str(s).expect("toml"))
    }

    #[test]
    fn origins_are_checked_and_normalized() {
        let c = read("allowed_origins = [\"https://WWW.Example.com\", \"http://localhost:8080/\"]").expect("valid");
        assert_eq!(c.allowed_origins, ["https://www.example.com", "http://localhost:8080"]);
        assert!(c.allows_origin("https://www.example.com"));
        assert!(!c.allows_origin("https://evil.example.com"));
        assert!(!c.allows_origin("null"));
        let e = read("allowed_origins = [\"https://example.com/chat\"]").unwrap_err().to_string();
        assert!(e.contains("has a path"), "{e}");
        let e = read("allowed_origins = [\"ftp://example.com\"]").unwrap_err().to_string();
        assert!(e.contains("not an http(s) origin"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(read("max_message_chars = 0").unwrap_err().to_string().contains("web.max_message_chars"));
        assert!(read("burst = 0").unwrap_err().to_string().contains("web.burst"));
        assert!(read("nonsense = 1").unwrap_err().to_string().contains("nonsense"));
        let e = read("[[accounts]]\nname = \"alice\"\npassword_hash = \"hunter2\"").unwrap_err().to_string();
        assert!(e.contains("not a PHC string") && !e.contains("hunter2"), "{e}");
        let e = read("[[accounts]]\nname = \"a b\"\npassword_hash = \"x\"").unwrap_err().to_string();
        assert!(e.contains("not a valid name"), "{e}");
    }
}
