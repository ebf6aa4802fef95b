//! Configuration: an optional `switchboard.toml`, overridden by `SWITCHBOARD_*` environment
//! variables (nested keys joined with `__`, e.g. `SWITCHBOARD_TELEGRAM__STAFF_CHAT_ID`). Secrets
//! (bot tokens) are never read from here: only from their own environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use switchboard_core::engine::EngineConfig;
use switchboard_core::matcher::Thresholds;
use switchboard_core::pack::Pack;
use switchboard_core::store::{SqlStore, Store};

/// Everything configurable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database lives (`<data_dir>/switchboard.db`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A `postgres://` (or `sqlite://`) URL; overrides `data_dir`.
    pub database_url: Option<String>,
    /// The intent pack folder.
    #[serde(default = "default_pack")]
    pub pack: PathBuf,
    /// Values answers reference (`support_email`, `support_phone`, `website`), over the pack's.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Matching thresholds.
    #[serde(default)]
    pub matching: Thresholds,
    /// Who may act on tickets.
    #[serde(default)]
    pub agents: Agents,
    /// Telegram settings (the token comes from `TELEGRAM_BOT_TOKEN`).
    #[serde(default)]
    pub telegram: toml::Table,
    /// Discord settings (the token comes from `DISCORD_TOKEN`).
    #[serde(default)]
    pub discord: toml::Table,
    /// The HTTP server (health check, Telegram webhook), e.g. `"0.0.0.0:8080"`; none by default.
    pub http_listen: Option<std::net::SocketAddr>,
    /// A customer writing while their ticket waits in the queue is told their place again at most
    /// this often, in minutes (0: only when the ticket opens).
    #[serde(default = "default_queue_reminder_minutes")]
    pub queue_reminder_minutes: u64,
}

/// The agent allowlist.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    /// Actor ids or roles: `telegram:<user id>`, `discord:<user id>`, `discord-role:<role id>`,
    /// `desk:<name>`; a trailing `*` matches any suffix.
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
}

impl Default for Agents {
    fn default() -> Self {
        Agents { allow: default_allow() }
    }
}

fn default_allow() -> Vec<String> {
    // Whoever can open the database file from a terminal can act as an agent there.
    vec!["desk:*".into()]
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_queue_reminder_minutes() -> u64 {
    5
}

fn default_pack() -> PathBuf {
    PathBuf::from("intents/okpay")
}

impl Config {
    /// Reads `path` if it exists (a missing default file is fine, a missing named one is not),
    /// then the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::new();
        match path {
            Some(p) => {
                anyhow::ensure!(p.exists(), "the configuration file {} does not exist", p.display());
                fig = fig.merge(Toml::file(p));
            }
            None => fig = fig.merge(Toml::file("switchboard.toml")),
        }
        fig = fig.merge(Env::prefixed("SWITCHBOARD_").ignore(&["config", "log"]).split("__"));
        fig.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The engine settings. Agent desks are deployed where configured: Telegram when
    /// `telegram.staff_chat_id` is set, Discord when `discord.staff_channel_id` is set; the
    /// Discord staff role (`discord.staff_role_id`) joins the allowlist.
    pub fn engine(&self) -> EngineConfig {
        let mut desks = Vec::new();
        if self.telegram.contains_key("staff_chat_id") {
            desks.push("telegram".to_string());
        }
        if self.discord.contains_key("staff_channel_id") {
            desks.push("discord".to_string());
        }
        let mut agents = self.agents.allow.clone();
        // Read as the adapter reads it (a number, or a string with spaces around it), so that the
        // entry matches the role ids Discord sends; an unreadable one stops `run` there.
        if let Ok(switchboard_discord::DiscordConfig { staff_role_id: Some(role), .. }) =
            switchboard_discord::DiscordConfig::from_table(&self.discord)
        {
            agents.push(format!("discord-role:{role}"));
        }
        EngineConfig {
            thresholds: self.matching,
            agents,
            desks,
            queue_reminder: std::time::Duration::from_secs(self.queue_reminder_minutes.saturating_mul(60)),
            ..EngineConfig::default()
        }
    }

    /// Loads the pack with the configured values applied. Refuses an invalid pack, saying why.
    pub fn load_pack(&self) -> anyhow::Result<Pack> {
        load_pack(&self.pack, &self.values)
    }

    /// Opens the configured store.
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let store = match &self.database_url {
            Some(url) => SqlStore::connect(url).await?,
            None => SqlStore::open_sqlite(&self.data_dir).await?,
        };
        Ok(Arc::new(store))
    }
}

/// Loads the pack in `dir` and applies `values`.
pub fn load_pack(dir: &Path, values: &BTreeMap<String, String>) -> anyhow::Result<Pack> {
    let mut pack = Pack::load(dir).with_context(|| format!("cannot load the intent pack {}", dir.display()))?;
    pack.set_values(values.clone());
    Ok(pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(discord: &str) -> Config {
        let fig = Figment::new().merge(Toml::string(&format!("[discord]\n{discord}")));
        fig.extract().expect("valid configuration")
    }

    #[test]
    fn the_staff_role_joins_the_allowlist_as_discord_sends_it() {
        for written in ["staff_role_id = 234567890123456789", "staff_role_id = \" 234567890123456789 \""] {
            let agents = config(written).engine().agents;
            assert!(agents.contains(&"discord-role:234567890123456789".to_string()), "{written}: {agents:?}");
        }
        let agents = config("staff_role_id = \"not a number\"").engine().agents;
        assert!(!agents.iter().any(|a| a.starts_with("discord-role:")), "{agents:?}");
    }
}
