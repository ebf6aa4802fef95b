//! Switchboard's Discord adapter, on serenity 0.12 (rustls).
//!
//! - **Customers** write to the bot in direct messages, or mention it in the configured support
//!   channels. A DM's conversation is its channel id; in a support channel each customer has their
//!   own conversation, `"<channel id>:<user id>"`, and the bot's replies there start with a
//!   mention of that customer which pings nobody. Quick-reply choices are buttons; a press is the
//!   customer choosing that option. The engine splits long replies before queueing them, at
//!   [`TEXT_LIMIT`] (and desk notices at [`DESK_TEXT_LIMIT`]); text is escaped so it shows as
//!   written, and nothing the bot sends can ping anyone (allowed mentions are empty).
//! - **Agents** work in a staff text channel: each ticket gets a thread starting with a summary
//!   embed ([`desk::DiscordDesk`]); what a staff member writes in the thread goes to the customer
//!   wherever they are, and the slash commands `/claim`, `/release`, `/note`, `/close` and
//!   `/queue` act on tickets. Only members the engine's allowlist accepts (the staff role) can act.
//! - **Reliability**: serenity reconnects and resumes the gateway; the engine answers a message id
//!   once; failed sends go back to the engine's outbox, which retries them ([`channel::map_error`],
//!   and behind `api_url` the 429 answers read whole: [`api::rate_limit`]); every message the
//!   outbox creates carries Discord's `nonce` with `enforce_nonce`, so a retry (even after a crash,
//!   within Discord's few minutes) does not show it twice. Gateway events are handled concurrently
//!   across conversations and in order within one ([`bot`]).
//!
//! Start it with [`Discord::connect`] then [`Discord::spawn`]. The tests run it against a fake
//! Discord on 127.0.0.1 (`switchboard_testkit::discord`).

pub mod api;
pub mod bot;
pub mod channel;
pub mod config;
pub mod desk;
mod error;
pub mod format;
pub mod threads;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serenity::all::{Channel as DiscordChannelModel, ChannelId, ClientBuilder, GatewayIntents, GuildId, Http, HttpBuilder, UserId};
use switchboard_core::channel::TextLimit;
use switchboard_core::engine::Engine;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use channel::{CHANNEL_NAME, DiscordChannel};
pub use config::DiscordConfig;
pub use desk::{DESK_NAME, DiscordDesk};
pub use error::Error;
/// The serenity version the adapter is built on, for callers that need its types.
pub use serenity;

/// How long a customer reply may be for one Discord message, as the engine splits them: 2,000
/// characters once escaped, less room for the `<@user> ` mention replies start with in support
/// channels.
pub const TEXT_LIMIT: TextLimit = TextLimit { max: format::MESSAGE_LIMIT - format::MENTION_ROOM, measure: format::escaped_len };

/// How long the text of a desk notice (a customer's message relayed to the ticket's thread, an
/// agent's reply or note) may be for one message in the thread: 2,000 characters once escaped,
/// less room for the line's `**name:** ` start.
pub const DESK_TEXT_LIMIT: TextLimit = TextLimit { max: format::MESSAGE_LIMIT - format::NOTICE_PREFIX_ROOM, measure: format::escaped_len };

/// The environment variable holding the bot token.
pub const TOKEN_ENV: &str = "DISCORD_TOKEN";

/// The gateway events the bot needs. `MESSAGE_CONTENT` is privileged: enable it for the bot in the
/// developer portal, or agents' messages in threads arrive empty.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT
}

/// A REST client for `token`: Discord's API with serenity's rate limiter, or `api_url` (a fake or
/// a rate-limiting proxy) without it, since the built-in rate limiter would bypass the proxy.
/// Whatever it sends pings nobody unless a request says otherwise.
pub fn rest_client(token: &str, api_url: Option<&str>) -> Arc<Http> {
    Arc::new(rest_builder(token, api_url).build())
}

fn rest_builder(token: &str, api_url: Option<&str>) -> HttpBuilder {
    let http = HttpBuilder::new(token).default_allowed_mentions(format::no_mentions());
    match api_url {
        Some(url) => http.proxy(url.trim_end_matches('/')).ratelimiter_disabled(true),
        None => http,
    }
}

/// The bot's own user: checks the token, and waits a little (five tries) if Discord cannot be
/// reached right now.
async fn current_user(http: &Http) -> Result<serenity::all::CurrentUser, Error> {
    let mut wait = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match http.get_current_user().await {
            Ok(me) => return Ok(me),
            Err(e) => {
                let retry = matches!(
                    channel::map_error(&e),
                    switchboard_core::ChannelError::RateLimited(_) | switchboard_core::ChannelError::Transient(_)
                );
                let e = Error::api("reading the bot's own user", e);
                if !retry || matches!(e, Error::Unauthorized) || attempt >= 5 {
                    return Err(e);
                }
                tracing::warn!(attempt, error = %e, "cannot reach Discord yet, retrying");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(8));
        attempt += 1;
    }
}

/// A connected (not yet running) Discord adapter.
pub struct Discord {
    worker: Arc<bot::Worker>,
    client: serenity::Client,
    queues: bot::Queues,
}

impl std::fmt::Debug for Discord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord").field("worker", &self.worker).finish_non_exhaustive()
    }
}

impl Discord {
    /// Checks the token, finds the staff guild, and registers the customer channel `"discord"`
    /// (and the desk `"discord"` when a staff channel is configured) with `engine`. The token is
    /// only passed to Discord, never logged.
    pub async fn connect(engine: Arc<Engine>, token: &str, config: DiscordConfig) -> Result<Discord, Error> {
        Discord::connect_with(engine, rest_builder(token, config.api_url.as_deref()), config).await
    }

    /// [`Discord::connect`] over a REST client of the caller's (its token set, its rate limiter
    /// kept or not); `config.api_url` is not read. For tests: serenity's own rate limiter (which
    /// always sends to `https://discord.com`) over a `reqwest` client that resolves discord.com to
    /// a local TLS front of the fake (`tests/ratelimiter.rs`).
    #[doc(hidden)]
    pub async fn connect_with(engine: Arc<Engine>, http: HttpBuilder, config: DiscordConfig) -> Result<Discord, Error> {
        let http = http.default_allowed_mentions(format::no_mentions()).build();
        let me = current_user(&http).await?;
        let staff_guild = match (config.staff_guild_id, config.staff_channel_id) {
            (Some(g), _) => Some(GuildId::new(g)),
            (None, Some(c)) => match ChannelId::new(c).to_channel(&http).await.map_err(|e| Error::api("reading the staff channel", e))? {
                DiscordChannelModel::Guild(ch) => Some(ch.guild_id),
                _ => return Err(Error::StaffChannel(c)),
            },
            (None, None) => None,
        };
        let (inbox, queues) = bot::queues(&config.support_channel_ids);
        let in_flight = inbox.in_flight.clone();
        let progress = inbox.progress.clone();
        let client = ClientBuilder::new_with_http(http, intents())
            .event_handler(bot::Handler { inbox })
            .await
            .map_err(|e| Error::api("preparing the gateway connection", e))?;
        let http = client.http.clone();
        let threads = threads::Threads::new(engine.store().clone());
        let api = api::Api::new(http.clone());
        engine.add_channel(Arc::new(DiscordChannel::with_api(api.clone())));
        if let Some(staff) = config.staff_channel_id {
            if !engine.config().desks.iter().any(|d| d == desk::DESK_NAME) {
                tracing::warn!("a Discord staff channel is set but the engine has no \"discord\" desk: tickets will not show there");
            }
            engine.add_desk(Arc::new(DiscordDesk::with_api(api.clone(), ChannelId::new(staff), threads.clone())));
        }
        tracing::info!(bot = %me.id, staff_guild = ?staff_guild.map(|g| g.get()), support_channels = config.support_channel_ids.len(), "Discord adapter ready");
        let worker = Arc::new(bot::Worker {
            engine,
            http,
            config,
            bot: me.id,
            staff_guild,
            threads,
            commands_registered: AtomicBool::new(false),
            stop: std::sync::OnceLock::new(),
            seen: std::sync::Mutex::default(),
            caught_up: std::sync::Mutex::default(),
            in_flight,
            progress,
        });
        Ok(Discord { worker, client, queues })
    }

    /// What the adapter received and handled so far (shared with its workers; keep it before
    /// [`Discord::spawn`]).
    pub fn progress(&self) -> Arc<bot::Progress> {
        self.worker.progress.clone()
    }

    /// The bot's own user id.
    pub fn bot_id(&self) -> UserId {
        self.worker.bot
    }

    /// Runs the gateway (on its own thread) and the workers that hand events to the engine
    /// ([`bot`]), until `shutdown` completes. The engine's outbox
    /// must run elsewhere (`Engine::run_outbox`).
    pub fn spawn(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Vec<JoinHandle<()>>, Error> {
        let Discord { worker, mut client, queues } = self;
        let manager = client.shard_manager.clone();
        let (done_tx, mut done_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("discord-gateway".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt.block_on(async move {
                        if let Err(e) = client.start().await {
                            tracing::error!(error = %e, "the Discord gateway connection stopped");
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot start the Discord gateway runtime"),
                }
                let _ = done_tx.send(());
            })
            .map_err(Error::Runtime)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let gateway = tokio::spawn(async move {
            tokio::pin!(shutdown);
            tokio::select! {
                () = &mut shutdown => {
                    manager.shutdown_all().await;
                    let _ = (&mut done_rx).await;
                }
                _ = &mut done_rx => {}
            }
            let _ = stop_tx.send(true);
            tracing::info!("Discord gateway stopped");
        });
        let work = tokio::spawn(worker.run(queues, stop_rx));
        Ok(vec![gateway, work])
    }
}
