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
use std::time::Duration;

use switchboard_core::channel::TextLimit;
use switchboard_core::engine::{DeliveryConfig, EngineConfig};
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
    /// How replies are delivered.
    #[serde(default)]
    pub delivery: Delivery,
}

/// `[delivery]`: how the outbox sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// How many destinations (customer chats, tickets on a desk) are sent to at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// This instance's name on the destinations it sends to (give each instance sharing a
    /// PostgreSQL database from one host its own, stable across restarts); by default the host
    /// name and the database, so a restarted process takes its unfinished destinations back at once.
    pub instance: Option<String>,
    /// Seconds a dead instance's destinations stay leased before another takes them over.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Seconds sends in flight may finish at shutdown; the rest stays queued for the next start.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: f64,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: default_concurrency(),
            instance: None,
            lease_seconds: default_lease_seconds(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_concurrency() -> usize {
    32
}

fn default_lease_seconds() -> u64 {
    15
}

fn default_shutdown_grace() -> f64 {
    5.0
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

/// The longest message each outbox target takes, as its adapter says: replies and desk texts are
/// split to fit before they are queued, whichever process queues them.
pub fn text_limits() -> std::collections::HashMap<String, TextLimit> {
    [
        (switchboard_telegram::CHANNEL.to_string(), switchboard_telegram::TEXT_LIMIT),
        ("desk:telegram".to_string(), switchboard_telegram::DESK_TEXT_LIMIT),
        (switchboard_discord::CHANNEL_NAME.to_string(), switchboard_discord::TEXT_LIMIT),
        ("desk:discord".to_string(), switchboard_discord::DESK_TEXT_LIMIT),
    ]
    .into_iter()
    .collect()
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
        let defaults = DeliveryConfig::default();
        let delivery = DeliveryConfig {
            concurrency: self.delivery.concurrency.clamp(1, 1024),
            instance: self.delivery.instance.clone().filter(|i| !i.trim().is_empty()).unwrap_or_else(|| self.default_instance()),
            lease: Duration::from_secs(self.delivery.lease_seconds.clamp(3, 3600)),
            shutdown_grace: Duration::try_from_secs_f64(self.delivery.shutdown_grace.clamp(0.0, 600.0)).unwrap_or(defaults.shutdown_grace),
        };
        EngineConfig {
            thresholds: self.matching,
            agents,
            desks,
            queue_reminder: Duration::from_secs(self.queue_reminder_minutes.saturating_mul(60)),
            delivery,
            text_limits: text_limits(),
            ..EngineConfig::default()
        }
    }

    /// This instance's name on the outbox destinations it sends to, when `delivery.instance` is not
    /// set: the host and the database, so that a restarted process (on SQLite, the only sender)
    /// takes back at once what it left unfinished. Instances sharing a PostgreSQL database from one
    /// host must each set their own.
    fn default_instance(&self) -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let db = match &self.database_url {
            // Never the URL itself: it may carry a password.
            Some(url) => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                url.hash(&mut h);
                format!("db-{:x}", h.finish())
            }
            None => std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone()).display().to_string(),
        };
        format!("{host}:{db}")
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
