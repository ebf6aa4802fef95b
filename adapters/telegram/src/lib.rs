//! Switchboard's Telegram adapter, on teloxide.
//!
//! Customers talk to the bot in private chats ([`TelegramChannel`]); agents work tickets in a
//! staff supergroup with topics, one forum topic per ticket ([`TelegramDesk`]). Updates arrive by
//! long polling ([`Telegram::run_polling`], the update offset kept in the engine's store) or by
//! webhook ([`Telegram::webhook`], mounted in the app's HTTP server), and go through
//! [`Telegram::handle_update`] to the engine, different chats concurrently and each chat in order.
//! Sends are paced within Telegram's limits by teloxide's throttle; the engine splits long texts
//! before queueing them, within [`TEXT_LIMIT`] (customers) and [`DESK_TEXT_LIMIT`] (desk notices).
//!
//! The bot token is only ever read by the caller (from `TELEGRAM_BOT_TOKEN`) and handed to
//! [`Telegram::connect`]; nothing here logs it, and every error text is scrubbed of it.
//!
//! The tests run it against a fake Bot API server on 127.0.0.1 (`switchboard_testkit::telegram`).

mod config;
mod desk;
mod error;
mod lanes;
mod poll;
mod send;
mod updates;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::engine::Engine;
use teloxide::prelude::*;

pub use config::TelegramConfig;
pub use desk::{TOPIC_NS, TOPIC_TICKET_NS, TelegramDesk, ticket_of, topic_of};
pub use error::{TelegramError, scrub};
pub use poll::{INBOUND_CONCURRENCY, OFFSET_KEY, OFFSET_NS, webhook_secret};
pub use send::{DESK_PREFIX_ROOM, DESK_TEXT_LIMIT, MAX_CALLBACK_DATA, MAX_MESSAGE_UTF16, TEXT_LIMIT, TelegramChannel, utf16_len};
pub use updates::{CustomerCommand, STAFF_PROCESSED, StaffCommand, customer_help};

use crate::error::Failure;
use crate::lanes::Lanes;
use crate::send::Outbound;

/// The environment variable holding the bot token (the only place it is read from).
pub const TOKEN_ENV: &str = "TELEGRAM_BOT_TOKEN";
/// The environment variable with an explicit webhook secret (else one is derived from the token).
pub const WEBHOOK_SECRET_ENV: &str = "TELEGRAM_WEBHOOK_SECRET";

/// The channel name customers' messages carry.
pub const CHANNEL: &str = "telegram";
/// The agent desk's name (in the engine's `desks`).
pub const DESK: &str = "telegram";
/// Agents' actor ids are this followed by their Telegram user id.
pub const ACTOR_PREFIX: &str = "telegram:";

/// Extra time an HTTP request for a long poll may take beyond the poll's own timeout.
const POLL_SLACK: Duration = Duration::from_secs(15);

/// The running adapter: a connected bot, its channel and desk registered with the engine.
pub struct Telegram {
    engine: Arc<Engine>,
    out: Arc<Outbound>,
    /// A bot whose HTTP client waits long enough for long polls.
    poll_bot: Bot,
    /// Inbound updates: concurrent across chats, in order within one.
    lanes: Arc<Lanes>,
    config: TelegramConfig,
    username: String,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the bots: their Debug output contains the token.
        f.debug_struct("Telegram").field("username", &self.username).field("config", &self.config).finish_non_exhaustive()
    }
}

impl Telegram {
    /// Connects with `token` (checked with `getMe`, retried a few times if Telegram cannot be
    /// reached), moves what an earlier version stored in the old way (once; see
    /// `upgrade::move_staff_marks`), and registers the channel `"telegram"` with the engine, and
    /// the desk `"telegram"` when `staff_chat_id` is set.
    pub async fn connect(engine: Arc<Engine>, token: &str, config: TelegramConfig) -> Result<Arc<Telegram>, TelegramError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TelegramError::InvalidToken("the token is empty".into()));
        }
        let api = match &config.api_url {
            Some(u) => Some(url::Url::parse(u).map_err(|e| TelegramError::Config(format!("api_url: {e}")))?),
            None => None,
        };
        let client = |timeout: Duration| {
            teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map_err(|e| TelegramError::Client(scrub(&e.to_string(), token)))
        };
        let mut bot = Bot::with_client(token, client(Duration::from_secs(17))?);
        let mut poll_bot = Bot::with_client(token, client(Duration::from_secs(u64::from(config.poll_timeout_secs)) + POLL_SLACK)?);
        if let Some(api) = api {
            bot = bot.set_api_url(api.clone());
            poll_bot = poll_bot.set_api_url(api);
        }
        let out = Arc::new(Outbound::new(bot));
        let username = get_me(&out).await?;
        tracing::info!(bot = %username, "connected to Telegram");
        let moved = upgrade::move_staff_marks(engine.store().as_ref()).await?;
        if moved > 0 {
            tracing::info!(marks = moved, "moved the staff messages an earlier version marked as handled");
        }
        engine.add_channel(Arc::new(TelegramChannel::new(out.clone())));
        if let Some(staff) = config.staff_chat_id {
            if !engine.config().desks.iter().any(|d| d == DESK) {
                tracing::warn!(
                    "telegram.staff_chat_id is set but the engine has no \"telegram\" desk: tickets will not appear in the staff group"
                );
            }
            engine.add_desk(Arc::new(TelegramDesk::new(out.clone(), engine.store().clone(), staff)));
        }
        Ok(Arc::new(Telegram { engine, out, poll_bot, lanes: Lanes::new(poll::INBOUND_CONCURRENCY), config, username }))
    }

    /// The bot's username (without `@`), as `getMe` reported it.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The customer channel (also registered with the engine), for sending outside the outbox.
    pub fn channel(&self) -> TelegramChannel {
        TelegramChannel::new(self.out.clone())
    }

    /// The staff group's desk (also registered with the engine), if `staff_chat_id` is set.
    pub fn desk(&self) -> Option<TelegramDesk> {
        self.config.staff_chat_id.map(|staff| TelegramDesk::new(self.out.clone(), self.engine.store().clone(), staff))
    }

    /// The configuration in use.
    pub fn config(&self) -> &TelegramConfig {
        &self.config
    }
}

async fn get_me(out: &Outbound) -> Result<String, TelegramError> {
    let mut wait = Duration::from_secs(1);
    for attempt in 1.. {
        let e = match out.bot().get_me().await {
            Ok(me) => return Ok(me.user.username.clone().unwrap_or_default()),
            Err(e) => e,
        };
        if matches!(e, teloxide::RequestError::Api(teloxide::ApiError::InvalidToken)) {
            return Err(TelegramError::InvalidToken("Unauthorized".into()));
        }
        match error::classify(&e, out.bot().token()) {
            Failure::Blocked(why) | Failure::Permanent(why) => return Err(TelegramError::InvalidToken(why)),
            Failure::Transient(why) if attempt >= 5 => return Err(TelegramError::Request(why)),
            Failure::RateLimited(d) if attempt >= 5 => return Err(TelegramError::Request(format!("rate limited for {d:?}"))),
            Failure::RateLimited(d) => wait = d,
            Failure::Transient(why) => tracing::warn!(attempt, error = %why, "cannot reach Telegram yet, retrying"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(16));
    }
    Err(TelegramError::Request("cannot reach Telegram".into()))
}
