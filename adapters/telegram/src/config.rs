//! The `[telegram]` configuration section. The bot token is not here: it comes only from the
//! `TELEGRAM_BOT_TOKEN` environment variable (and a webhook secret from `TELEGRAM_WEBHOOK_SECRET`).

use serde::{Deserialize, Deserializer};

use crate::TelegramError;

/// Settings of the Telegram adapter, deserialized from the `[telegram]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The staff supergroup (topics on) where tickets open as forum topics; no desk without it.
    #[serde(default, deserialize_with = "int_or_string")]
    pub staff_chat_id: Option<i64>,
    /// Receive updates by webhook at this public HTTPS URL (mounted in the app's HTTP server)
    /// instead of long polling.
    pub webhook_url: Option<String>,
    /// The Bot API base URL, for a local Bot API server, a proxy or tests.
    pub api_url: Option<String>,
    /// How long one `getUpdates` long poll waits, in seconds.
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_secs: u32,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig { staff_chat_id: None, webhook_url: None, api_url: None, poll_timeout_secs: default_poll_timeout() }
    }
}

fn default_poll_timeout() -> u32 {
    30
}

impl TelegramConfig {
    /// Reads the raw `[telegram]` table.
    pub fn from_table(table: &toml::Table) -> Result<TelegramConfig, TelegramError> {
        let config: TelegramConfig =
            toml::Value::Table(table.clone()).try_into().map_err(|e: toml::de::Error| TelegramError::Config(e.to_string()))?;
        if !(1..=600).contains(&config.poll_timeout_secs) {
            return Err(TelegramError::Config("poll_timeout_secs must be between 1 and 600".into()));
        }
        if let Some(url) = &config.webhook_url {
            let parsed = url::Url::parse(url).map_err(|e| TelegramError::Config(format!("webhook_url {url:?}: {e}")))?;
            // Served by the app's HTTP server, beside its other routes.
            if matches!(parsed.path(), "/" | "/healthz") {
                return Err(TelegramError::Config(format!("webhook_url {url:?} needs its own path, such as /telegram/webhook")));
            }
        }
        if let Some(url) = &config.api_url {
            url::Url::parse(url).map_err(|e| TelegramError::Config(format!("api_url {url:?}: {e}")))?;
        }
        Ok(config)
    }
}

/// Chat ids arrive as numbers from TOML and as numbers or strings from the environment.
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Str(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Int(i)) => Ok(Some(i)),
        Some(Raw::Str(s)) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("staff_chat_id {s:?} is not a chat id")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table_with_defaults() {
        let t: toml::Table = toml::from_str("staff_chat_id = -1001234").unwrap_or_default();
        let c = TelegramConfig::from_table(&t).ok();
        assert_eq!(c.map(|c| (c.staff_chat_id, c.poll_timeout_secs)), Some((Some(-1001234), 30)));
        let t: toml::Table = toml::from_str("staff_chat_id = \"-1005\"\npoll_timeout_secs = 5").unwrap_or_default();
        assert_eq!(TelegramConfig::from_table(&t).ok().and_then(|c| c.staff_chat_id), Some(-1005));
        let t: toml::Table = toml::from_str("staf_chat_id = 1").unwrap_or_default();
        assert!(TelegramConfig::from_table(&t).is_err(), "unknown keys are refused");
        let t: toml::Table = toml::from_str("poll_timeout_secs = 0").unwrap_or_default();
        assert!(TelegramConfig::from_table(&t).is_err(), "short polling would spin");
        let t: toml::Table = toml::from_str("webhook_url = \"https://bot.example.com/\"").unwrap_or_default();
        assert!(TelegramConfig::from_table(&t).is_err(), "the webhook needs its own path");
        assert_eq!(TelegramConfig::from_table(&toml::Table::new()).ok(), Some(TelegramConfig::default()));
    }
}
