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
use switchboard_core::engine::{DeliveryConfig, EngineConfig, Retention};
use switchboard_core::hours::{HoursConfig, OfficeHours};
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
    /// The website channel: the chat widget and the agents' console (served with `http_listen`).
    #[serde(default)]
    pub web: toml::Table,
    /// The HTTP server (health check, Telegram webhook), e.g. `"0.0.0.0:8080"`; none by default.
    pub http_listen: Option<std::net::SocketAddr>,
    /// A customer writing while their ticket waits in the queue is told their place again at most
    /// this often, in minutes (0: only when the ticket opens).
    #[serde(default = "default_queue_reminder_minutes")]
    pub queue_reminder_minutes: u64,
    /// How replies are delivered.
    #[serde(default)]
    pub delivery: Delivery,
    /// How fast one customer may write.
    #[serde(default)]
    pub limits: Limits,
    /// How long customers' words are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Asking customers to rate the help when their ticket closes.
    #[serde(default)]
    pub satisfaction: Satisfaction,
    /// When agents are at work; without it, always.
    pub hours: Option<HoursConfig>,
}

/// `[satisfaction]`: after a ticket closes, the customer is asked to rate the help, 1 to 5.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Satisfaction {
    /// Whether to ask (default: yes).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for Satisfaction {
    fn default() -> Self {
        Satisfaction { enabled: true }
    }
}

fn default_true() -> bool {
    true
}

/// `[limits]`: each customer's token bucket. Past it, their messages are stored but not answered
/// or relayed (they are told once to slow down), so one customer cannot slow the others.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages a customer may send at once.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Messages per minute the burst refills at (0 turns the limit off).
    #[serde(default = "default_per_minute")]
    pub messages_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { burst: default_burst(), messages_per_minute: default_per_minute() }
    }
}

fn default_burst() -> u32 {
    switchboard_core::guard::CustomerLimit::default().burst
}

fn default_per_minute() -> u32 {
    switchboard_core::guard::CustomerLimit::default().per_minute
}

/// `[retention]`: how long customers' words are kept; unset keeps them. Housekeeping (hourly, in
/// `run`) deletes what is older, in batches.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Transcript lines older than this many days are deleted.
    pub transcript_days: Option<u32>,
    /// Tickets closed longer ago than this many days lose their texts and collected details
    /// (their times, reason and outcome stay for reports).
    pub closed_ticket_days: Option<u32>,
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

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 24 * 3600)
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
        fig = fig.merge(Env::prefixed("SWITCHBOARD_").ignore(&["config", "log", "web_secret"]).split("__"));
        let config: Config = fig.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        for (key, value) in [
            ("retention.transcript_days", config.retention.transcript_days),
            ("retention.closed_ticket_days", config.retention.closed_ticket_days),
        ] {
            anyhow::ensure!(value != Some(0), "invalid configuration: {key} must be at least 1 (leave it out to keep everything)");
        }
        config.office_hours()?;
        Ok(config)
    }

    /// The office hours of `[hours]` (`None` without it: always open), or the mistake, naming
    /// its key (`invalid configuration: hours.mon: "9-18" is not HH:MM-HH:MM`).
    pub fn office_hours(&self) -> anyhow::Result<Option<OfficeHours>> {
        self.hours.as_ref().map(|h| h.build().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))).transpose()
    }

    /// The engine settings. Agent desks are deployed where configured: Telegram when
    /// `telegram.staff_chat_id` is set, Discord when `discord.staff_channel_id` is set; the
    /// Discord staff role (`discord.staff_role_id`) joins the allowlist.
    /// Whether `run` serves the web chat and console: with `http_listen`, unless `web.enabled` is
    /// false.
    pub fn web_enabled(&self) -> bool {
        self.http_listen.is_some() && self.web.get("enabled").and_then(toml::Value::as_bool).unwrap_or(true)
    }

    pub fn engine(&self) -> EngineConfig {
        let mut desks = Vec::new();
        if self.telegram.contains_key("staff_chat_id") {
            desks.push("telegram".to_string());
        }
        if self.discord.contains_key("staff_channel_id") {
            desks.push("discord".to_string());
        }
        if self.web_enabled() {
            desks.push(switchboard_web::DESK.to_string());
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
            customer_limit: switchboard_core::guard::CustomerLimit {
                burst: self.limits.burst,
                per_minute: self.limits.messages_per_minute,
            },
            retention: Retention {
                transcript: self.retention.transcript_days.map(days),
                closed_tickets: self.retention.closed_ticket_days.map(days),
            },
            satisfaction: self.satisfaction.enabled,
            // Checked when the configuration was loaded.
            hours: self.office_hours().ok().flatten(),
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

    /// Loads the pack with the configured values applied. Refuses an invalid pack, saying why,
    /// and an always-staffed reason (`hours.always_staffed`) that is none of its intents.
    pub fn load_pack(&self) -> anyhow::Result<Pack> {
        let pack = load_pack(&self.pack, &self.values)?;
        for reason in self.hours.iter().flat_map(|h| &h.always_staffed) {
            let reason = reason.trim();
            anyhow::ensure!(
                pack.intent(reason).is_some() || ["customer_request", "repeated_fallback"].contains(&reason),
                "invalid configuration: hours.always_staffed: {reason:?} is neither an intent of the pack {} nor customer_request or repeated_fallback",
                self.pack.display()
            );
        }
        Ok(pack)
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

    fn parse(toml: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("switchboard.toml");
        std::fs::write(&file, toml).expect("write");
        Config::load(Some(&file))
    }

    fn refused(toml: &str) -> String {
        parse(toml).expect_err(toml).to_string()
    }

    #[test]
    fn satisfaction_is_asked_unless_turned_off() {
        assert!(parse("").unwrap().engine().satisfaction);
        assert!(parse("[satisfaction]\nenabled = true").unwrap().engine().satisfaction);
        assert!(!parse("[satisfaction]\nenabled = false").unwrap().engine().satisfaction);
        assert!(refused("[satisfaction]\nenable = false").contains("enable"), "an unknown key is refused");
    }

    #[test]
    fn office_hours_are_read_and_checked() {
        assert!(parse("").unwrap().engine().hours.is_none(), "without [hours]: always open");
        let ok = parse(
            "[hours]\ntime_zone = \"Asia/Shanghai\"\nmon = \"09:00-18:00\"\ntue = [\"09:00-12:00\", \"13:00-18:00\"]\n\
             wed = \"09:00-12:00, 13:00-18:00\"\nfri = \"22:00-02:00\"\nclosed = [\"2026-12-25\", \"2027-01-01\"]\n\
             always_staffed = [\"account_stolen\"]\n",
        )
        .unwrap();
        let hours = ok.engine().hours.expect("office hours");
        assert_eq!(hours.time_zone(), "Asia/Shanghai");
        assert_eq!(hours.always_staffed_reasons(), ["account_stolen".to_string()]);
        // Monday 2026-03-02 10:00 in Shanghai is 02:00 UTC.
        assert!(hours.is_open(1_772_416_800_000));
        assert!(!hours.is_open(1_772_416_800_000 + 9 * 3_600_000), "19:00");

        for (toml, why) in [
            ("[hours]\ntime_zone = \"Asia/Shanghai\"\nmon = \"9-18\"", "invalid configuration: hours.mon: \"9-18\" is not HH:MM-HH:MM"),
            (
                "[hours]\ntime_zone = \"Asia/Shanghai\"\nsat = \"25:00-26:00\"",
                "invalid configuration: hours.sat: \"25:00-26:00\" is not HH:MM-HH:MM",
            ),
            (
                "[hours]\ntime_zone = \"Asia/Shanghai\"\nsun = [\"10:00-10:00\"]",
                "hours.sun: \"10:00-10:00\" opens and closes at the same time",
            ),
            ("[hours]\ntime_zone = \"Mars/Olympus\"\nmon = \"09:00-18:00\"", "hours.time_zone: \"Mars/Olympus\" is not a known time zone"),
            ("[hours]\nmon = \"09:00-18:00\"", "hours.time_zone: is required"),
            ("[hours]\ntime_zone = \"UTC\"\nclosed = [\"2026-02-30\"]", "hours.closed: \"2026-02-30\" is not a date (YYYY-MM-DD)"),
            ("[hours]\ntime_zone = \"UTC\"\nclosed = [\"25/12/2026\"]", "hours.closed: \"25/12/2026\" is not a date"),
            ("[hours]\ntime_zone = \"UTC\"\nmonday = \"09:00-18:00\"", "monday"),
        ] {
            let got = refused(toml);
            assert!(got.contains(why), "{toml}: {got}");
        }
        // A reason is checked against the pack when it is loaded.
        let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("intents/okpay");
        let with = |reasons: &str| {
            parse(&format!("pack = {:?}\n[hours]\ntime_zone = \"UTC\"\nalways_staffed = {reasons}", pack.display().to_string()))
                .unwrap()
                .load_pack()
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(with("[\"account_stolen\", \"customer_request\"]"), Ok(()));
        let err = with("[\"acount_stolen\"]").unwrap_err();
        assert!(err.starts_with("invalid configuration: hours.always_staffed: \"acount_stolen\" is neither"), "{err}");
    }

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
