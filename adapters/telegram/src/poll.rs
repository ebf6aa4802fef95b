//! Where updates come from. Long polling (the default) keeps the update offset in the engine's
//! store and advances it only after an update has been handled, so a restart neither misses an
//! update nor answers one twice (and the engine drops a redelivered message by its id anyway).
//! Webhook mode mounts a route in the app's HTTP server, for deployments that run several
//! instances behind one URL; it answers Telegram 200 only once the update is handled (stored), so
//! Telegram delivers again whatever a crash or a database outage interrupted.
//!
//! While the database is unreachable, neither mode skips an update: polling stays at the update
//! and asks again after a backoff; the webhook answers 503 and Telegram retries.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_core::StoreError;
use teloxide::prelude::*;
use teloxide::types::AllowedUpdate;
use teloxide::{ApiError, RequestError};

use crate::error::{Failure, classify};
use crate::{Telegram, TelegramError};

/// Key-value namespace of the polling state.
pub const OFFSET_NS: &str = "telegram";
/// Key of the next update id to ask for (one past the last handled update).
pub const OFFSET_KEY: &str = "offset";

/// Attempts at handling one update whose handling failed in a way worth retrying (storage),
/// before the caller is told to get it again later.
const HANDLE_ATTEMPTS: u32 = 4;

/// The header in which Telegram sends the webhook secret.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Longest wait between failed `getUpdates` calls.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(60);

/// The updates the bot asks Telegram for.
fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]
}

/// A webhook secret for Telegram's `X-Telegram-Bot-Api-Secret-Token` header: `explicit` if given
/// (it must be 1–256 of `A-Z a-z 0-9 _ -`), else derived from the bot token, so every instance
/// of a deployment computes the same one without sharing another secret.
pub fn webhook_secret(explicit: Option<&str>, token: &str) -> Result<String, TelegramError> {
    match explicit.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => {
            let valid = s.len() <= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if valid {
                Ok(s.to_string())
            } else {
                Err(TelegramError::Config("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -".into()))
            }
        }
        None => {
            let digest = Sha256::digest(format!("switchboard telegram webhook secret\n{token}").as_bytes());
            Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

fn retryable(e: &TelegramError) -> bool {
    match e {
        TelegramError::Store(s) => s.is_transient(),
        TelegramError::Engine(e) => e.is_transient(),
        _ => false,
    }
}

impl Telegram {
    /// Handles an update, retrying a few times when storage fails. An update that cannot be
    /// handled for good (bad input) is logged and skipped (`Ok`); `Err` means storage is still
    /// failing and the update must be delivered again later, not skipped.
    pub async fn handle_update_retrying(&self, update: Update) -> Result<(), TelegramError> {
        let id = update.id.0;
        let mut wait = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.handle_update(update.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) && attempt < HANDLE_ATTEMPTS => {
                    tracing::warn!(update = id, attempt, error = %e, "handling an update failed, retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(e) if retryable(&e) => {
                    tracing::error!(update = id, error = %e, "cannot store an update; it will be delivered again");
                    return Err(e);
                }
                Err(e) => {
                    tracing::error!(update = id, error = %e, "could not handle an update; skipping it");
                    return Ok(());
                }
            }
        }
    }

    async fn stored_offset(&self) -> Result<Option<i32>, StoreError> {
        Ok(self.engine.store().get_value(OFFSET_NS, OFFSET_KEY).await?.and_then(|v| v.parse().ok()))
    }

    /// Long-polls `getUpdates` until `shutdown` completes, handling updates one at a time, in
    /// order. The update being handled when shutdown comes is finished first.
    pub async fn run_polling(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        // getUpdates is refused while a webhook is set (say, after running in webhook mode).
        if let Err(e) = self.out.bot().delete_webhook().await {
            tracing::warn!(error = %self.out.scrub(&e.to_string()), "could not remove a webhook before polling");
        }
        let mut offset = loop {
            match self.stored_offset().await {
                Ok(o) => break o,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the stored Telegram update offset, retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        tracing::info!(offset, "polling Telegram for updates");
        let mut failures: u32 = 0;
        loop {
            // Never 0: short polling would spin.
            let timeout = self.config.poll_timeout_secs.max(1);
            let mut req = self.poll_bot.get_updates().timeout(timeout).allowed_updates(allowed_updates());
            if let Some(o) = offset {
                req = req.offset(o);
            }
            let result = tokio::select! {
                () = &mut shutdown => break,
                r = req.send() => r,
            };
            let wait = match result {
                Ok(updates) => {
                    let mut stuck = false;
                    for update in updates {
                        let next = i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1);
                        if offset.is_some_and(|o| next <= o) {
                            continue;
                        }
                        if self.handle_update_retrying(update).await.is_err() {
                            // Storage is down: stay at this update and ask for it again later.
                            stuck = true;
                            break;
                        }
                        offset = Some(next);
                        if let Err(e) = self.engine.store().set_value(OFFSET_NS, OFFSET_KEY, &next.to_string()).await {
                            tracing::error!(error = %e, "cannot store the Telegram update offset");
                        }
                    }
                    if !stuck {
                        failures = 0;
                        continue;
                    }
                    failures += 1;
                    backoff(failures)
                }
                Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                    failures += 1;
                    tracing::warn!("another process is polling this bot's updates; run one poller per bot, or use webhook mode");
                    backoff(failures)
                }
                Err(e) => {
                    failures += 1;
                    match classify(&e, self.out.bot().token()) {
                        Failure::RateLimited(d) => {
                            tracing::warn!(wait_ms = d.as_millis() as u64, "Telegram rate-limited getUpdates");
                            d
                        }
                        f => {
                            let wait = backoff(failures);
                            tracing::warn!(error = ?f, wait_ms = wait.as_millis() as u64, "getUpdates failed, retrying");
                            wait
                        }
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("stopped polling Telegram");
    }

    /// Webhook mode: sets the webhook to `webhook_url` with `secret` and returns the axum router
    /// to mount in the app's HTTP server (it serves the URL's path). Each update is handled
    /// before Telegram gets its answer: 200 once handled, 503 while storage is failing (Telegram
    /// delivers it again), 401 without the right secret. The webhook is left in place on
    /// shutdown, since other instances may still be serving it; serve the router with graceful
    /// shutdown so that updates being handled are finished.
    pub async fn webhook(self: &Arc<Self>, secret: &str) -> Result<axum::Router, TelegramError> {
        let raw =
            self.config.webhook_url.as_deref().ok_or_else(|| TelegramError::Config("webhook mode needs telegram.webhook_url".into()))?;
        let url = url::Url::parse(raw).map_err(|e| TelegramError::Config(format!("webhook_url: {e}")))?;
        let secret = webhook_secret(Some(secret), "")?;
        let req = self
            .out
            .bot()
            .set_webhook(url.clone())
            .secret_token(secret.clone())
            .allowed_updates(allowed_updates())
            .drop_pending_updates(false);
        req.await.map_err(|e| TelegramError::Request(self.out.scrub(&e.to_string())))?;
        tracing::info!(path = url.path(), "Telegram webhook set");
        let hook = Arc::new(Hook { tg: Arc::clone(self), secret });
        Ok(axum::Router::new().route(url.path(), axum::routing::post(on_webhook)).with_state(hook))
    }
}

/// What the webhook route needs.
struct Hook {
    tg: Arc<Telegram>,
    secret: String,
}

async fn on_webhook(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !bool::from(given.ct_eq(hook.secret.as_bytes())) {
        tracing::warn!("refused a webhook request without the right secret");
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "refused a webhook request that is not an update");
            return StatusCode::BAD_REQUEST;
        }
    };
    match hook.tg.handle_update_retrying(update).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500).saturating_mul(2u32.saturating_pow(failures.min(10))).min(MAX_POLL_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_secrets_are_valid_and_stable() {
        let a = webhook_secret(None, "123:abc").unwrap_or_default();
        assert_eq!(a.len(), 64);
        assert_eq!(Some(a.clone()), webhook_secret(None, "123:abc").ok());
        assert!(!a.contains("abc"));
        assert_ne!(Some(a), webhook_secret(None, "123:abd").ok());
        assert_eq!(webhook_secret(Some("my_secret-1"), "t").ok().as_deref(), Some("my_secret-1"));
        assert!(webhook_secret(Some("no spaces"), "t").is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(30), MAX_POLL_BACKOFF);
    }
}
