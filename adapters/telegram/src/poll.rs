//! Where updates come from. Long polling (the default) keeps the update offset in the engine's
//! store and advances it only past updates that have been handled, so a restart neither misses an
//! update nor answers one twice (and the engine drops a redelivered message by its id anyway).
//! Webhook mode mounts a route in the app's HTTP server, for deployments that run several
//! instances behind one URL; it answers Telegram 200 only once the update is handled (stored), so
//! Telegram delivers again whatever a crash or a database outage interrupted.
//!
//! Both modes handle updates of different chats concurrently (at most [`INBOUND_CONCURRENCY`] at
//! once) and the updates of one chat (or one topic of the staff group) in order, one at a time
//! ([`crate::lanes`]). While the database is unreachable, neither mode skips an update: polling
//! keeps retrying the update in its chat's lane, with backoff, while other chats go on; the
//! stored offset and the offset confirmed to Telegram stay at the oldest update not yet handled,
//! so a crash loses nothing (updates after it that were already handled are delivered again
//! then, and dropped as duplicates). The webhook answers 503 and Telegram retries.
//!
//! `getUpdates` is called here with teloxide's HTTP client but not through teloxide's request,
//! which sleeps 10 s inside any request answered with a 5xx: after a failed poll the wait is the
//! one logged (1, 2, 4… s), nothing more.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_core::StoreError;
use switchboard_core::retry::{Patience, Unstored, until_stored};
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, ResponseParameters, UpdateKind};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{Failure, classify};
use crate::lanes::LaneKey;
use crate::{Telegram, TelegramError};

/// Key-value namespace of the polling state.
pub const OFFSET_NS: &str = "telegram";
/// Key of the next update id to ask for (one past the last handled update).
pub const OFFSET_KEY: &str = "offset";

/// How many updates are handled at once, each in its chat's lane (webhook and polling).
pub const INBOUND_CONCURRENCY: usize = 16;

/// Attempts at handling one update whose handling failed in a way worth retrying (storage),
/// before the webhook tells Telegram to deliver it again later (polling keeps trying).
const HANDLE_ATTEMPTS: u32 = 4;

/// First wait before handling an update again after storage failed; it doubles up to
/// [`MAX_HANDLE_BACKOFF`].
const HANDLE_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between attempts at handling one update while polling.
const MAX_HANDLE_BACKOFF: Duration = Duration::from_secs(8);

/// The header in which Telegram sends the webhook secret.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Longest wait between failed `getUpdates` calls.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(60);

/// While updates are being handled and Telegram has nothing newer, how long to wait for one of
/// them to finish before asking again (Telegram answers at once while unconfirmed updates exist).
const BUSY_REPOLL: Duration = Duration::from_millis(250);

/// On shutdown, how long updates being handled may take to finish; the rest is delivered again
/// at the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// The lane of an update: its chat, and its topic in a forum supergroup. Button presses go in
/// the lane of the chat they were pressed in, with its messages.
pub(crate) fn lane_of(update: &Update) -> LaneKey {
    match &update.kind {
        UpdateKind::Message(m) => (m.chat.id.0, if m.is_topic_message { m.thread_id.map(|t| t.0.0) } else { None }),
        UpdateKind::CallbackQuery(q) => match &q.message {
            Some(m) => (m.chat().id.0, None),
            None => (i64::try_from(q.from.id.0).unwrap_or_default(), None),
        },
        _ => (0, None),
    }
}

/// Telegram's answer envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

/// One update as received: its id, and the update if teloxide can read it.
type Received = (i64, Option<Update>);

/// Calls `getUpdates` with `bot`'s HTTP client and URL, reading the answer as teloxide would but
/// without its 10 s sleep on a 5xx answer. Errors are teloxide's, so [`classify`] applies (and
/// reqwest's carry no token: teloxide's conversion hides it).
async fn get_updates(bot: &Bot, offset: Option<i64>, timeout: u32) -> Result<Vec<Received>, RequestError> {
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|()| RequestError::Io(Arc::new(std::io::Error::other("the Bot API URL cannot take a path"))))?
        .push(&format!("bot{}", bot.token()))
        .push("getUpdates");
    let mut params = json!({ "timeout": timeout, "allowed_updates": allowed_updates() });
    if let Some(o) = offset {
        params["offset"] = json!(o);
    }
    let body = serde_json::to_vec(&params).map_err(|e| RequestError::Io(Arc::new(std::io::Error::other(e))))?;
    let response = bot.client().post(url).header("content-type", "application/json").body(body).send().await.map_err(RequestError::from)?;
    let text = response.text().await.map_err(RequestError::from)?;
    let invalid = |source: serde_json::Error| RequestError::InvalidJson { source: Arc::new(source), raw: text.as_str().into() };
    let envelope: Envelope = serde_json::from_str(&text).map_err(invalid)?;
    if !envelope.ok {
        return Err(match envelope.parameters {
            Some(ResponseParameters::RetryAfter(s)) => RequestError::RetryAfter(s),
            Some(ResponseParameters::MigrateToChatId(to)) => RequestError::MigrateToChatId(to),
            None => {
                let description = envelope.description.unwrap_or_default();
                RequestError::Api(serde_json::from_value(Value::String(description.clone())).unwrap_or(ApiError::Unknown(description)))
            }
        });
    }
    let raw: Vec<Value> = match envelope.result {
        Some(r) => serde_json::from_value(r).map_err(invalid)?,
        None => Vec::new(),
    };
    Ok(raw
        .into_iter()
        .filter_map(|v| {
            let id = v.get("update_id").and_then(Value::as_i64)?;
            // From text, not from the `Value`: teloxide's update reader borrows its keys.
            let update = match serde_json::from_str::<Update>(&v.to_string()) {
                Ok(u) => Some(u),
                Err(e) => {
                    tracing::warn!(update = id, error = %e, "skipped an update teloxide cannot read");
                    None
                }
            };
            Some((id, update))
        })
        .collect())
}

/// The polling window: the offset (the oldest update not yet handled, or one past the last one)
/// and the updates at or after it that were handed to a lane, handled or not.
#[derive(Debug, Default)]
struct Window {
    offset: Option<i64>,
    /// Update id → handled.
    taken: BTreeMap<i64, bool>,
    /// The offset moved since it was last stored.
    moved: bool,
}

impl Window {
    /// Whether `id` is new: not before the offset and not taken yet. Takes it if so.
    fn take(&mut self, id: i64) -> bool {
        if self.offset.is_some_and(|o| id < o) || self.taken.contains_key(&id) {
            return false;
        }
        self.taken.insert(id, false);
        true
    }

    /// `id` was handled (or skipped for good): the offset moves past every handled update that
    /// has no unhandled one before it.
    fn handled(&mut self, id: i64) {
        if let Some(done) = self.taken.get_mut(&id) {
            *done = true;
        }
        while let Some((&first, &true)) = self.taken.first_key_value() {
            self.taken.remove(&first);
            self.offset = Some(first.saturating_add(1));
            self.moved = true;
        }
    }
}

impl Telegram {
    /// Handles an update, retrying a few times when storage fails. An update that cannot be
    /// handled for good (bad input) is logged and skipped (`Ok`); `Err` means storage is still
    /// failing and the update must be delivered again later, not skipped.
    pub async fn handle_update_retrying(&self, update: Update) -> Result<(), TelegramError> {
        let id = update.id.0;
        let patience = Patience { first: HANDLE_BACKOFF, max: MAX_HANDLE_BACKOFF, attempts: Some(HANDLE_ATTEMPTS), for_at_most: None };
        let retried = until_stored(
            patience,
            None,
            retryable,
            || self.handle_update(update.clone()),
            |e, attempt, _| {
                tracing::warn!(update = id, attempt, error = %e, "handling an update failed, retrying");
            },
        )
        .await;
        match retried {
            Ok(()) | Err(Unstored::Stopped) => Ok(()),
            Err(Unstored::GaveUp(e)) => {
                tracing::error!(update = id, error = %e, "cannot store an update; it will be delivered again");
                Err(e)
            }
            Err(Unstored::Failed(e)) => {
                tracing::error!(update = id, error = %e, "could not handle an update; skipping it");
                Ok(())
            }
        }
    }

    /// Handles an update, retrying with backoff for as long as storage fails, until `stop`.
    /// `true` once handled (or skipped for good), `false` if stopped first.
    async fn handle_update_until_stored(&self, update: Update, stop: watch::Receiver<bool>) -> bool {
        let id = update.id.0;
        let patience = Patience { first: HANDLE_BACKOFF, max: MAX_HANDLE_BACKOFF, attempts: None, for_at_most: None };
        let retried = until_stored(patience, Some(stop), retryable, || self.handle_update(update.clone()), |e, attempt, wait| {
            let wait_ms = wait.as_millis() as u64;
            if attempt < HANDLE_ATTEMPTS {
                tracing::warn!(update = id, attempt, wait_ms, error = %e, "handling an update failed, retrying");
            } else {
                tracing::error!(update = id, attempt, wait_ms, error = %e, "cannot store an update yet; its chat waits for it, other chats go on");
            }
        })
        .await;
        match retried {
            Ok(()) => true,
            Err(Unstored::Stopped) => false,
            Err(Unstored::GaveUp(e) | Unstored::Failed(e)) => {
                tracing::error!(update = id, error = %e, "could not handle an update; skipping it");
                true
            }
        }
    }

    async fn stored_offset(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.engine.store().get_value(OFFSET_NS, OFFSET_KEY).await?.and_then(|v| v.parse().ok()))
    }

    async fn store_offset(&self, window: &mut Window) {
        let Some(offset) = window.offset.filter(|_| window.moved) else { return };
        match self.engine.store().set_value(OFFSET_NS, OFFSET_KEY, &offset.to_string()).await {
            Ok(()) => window.moved = false,
            Err(e) => tracing::error!(error = %e, "cannot store the Telegram update offset"),
        }
    }

    /// Long-polls `getUpdates` until `shutdown` completes. Each update is handed to its chat's
    /// lane: chats are handled concurrently, each chat's updates in order. The offset (stored, and
    /// confirmed to Telegram) only moves past updates that were handled. On shutdown, updates
    /// being handled get a few seconds to finish; the rest come again at the next start.
    pub async fn run_polling(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        // getUpdates is refused while a webhook is set (say, after running in webhook mode).
        if let Err(e) = self.out.bot().delete_webhook().await {
            tracing::warn!(error = %self.out.scrub(&e.to_string()), "could not remove a webhook before polling");
        }
        let offset = loop {
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
        let mut window = Window { offset, ..Window::default() };
        let (stop, stopped) = watch::channel(false);
        let mut tasks: JoinSet<(i64, bool)> = JoinSet::new();
        let mut task_updates: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut failures: u32 = 0;
        loop {
            while let Some(joined) = tasks.try_join_next_with_id() {
                finished(&mut window, &mut task_updates, joined);
            }
            self.store_offset(&mut window).await;
            // Never 0: short polling would spin.
            let timeout = self.config.poll_timeout_secs.max(1);
            let result = tokio::select! {
                () = &mut shutdown => break,
                r = get_updates(&self.poll_bot, window.offset, timeout) => r,
            };
            let wait = match result {
                Ok(updates) => {
                    failures = 0;
                    let mut fresh = 0;
                    for (id, update) in updates {
                        if !window.take(id) {
                            continue;
                        }
                        fresh += 1;
                        let Some(update) = update else {
                            window.handled(id);
                            continue;
                        };
                        let tg = Arc::clone(&self);
                        let stop = stopped.clone();
                        let job =
                            self.lanes.ordered(lane_of(&update), async move { (id, tg.handle_update_until_stored(update, stop).await) });
                        let handle = tasks.spawn(job);
                        task_updates.insert(handle.id(), id);
                    }
                    if fresh > 0 || tasks.is_empty() {
                        continue;
                    }
                    // Only updates already being handled came back: wait for one to finish.
                    tokio::select! {
                        () = &mut shutdown => break,
                        Some(joined) = tasks.join_next_with_id() => finished(&mut window, &mut task_updates, joined),
                        () = tokio::time::sleep(BUSY_REPOLL) => {}
                    }
                    continue;
                }
                Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates)) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(
                        wait_ms = wait.as_millis() as u64,
                        "another process is polling this bot's updates; run one poller per bot, or use webhook mode"
                    );
                    wait
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
        // Stop retrying; let what is being handled finish, within the grace period.
        let _ = stop.send(true);
        let grace = tokio::time::sleep(SHUTDOWN_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                joined = tasks.join_next_with_id() => match joined {
                    Some(joined) => finished(&mut window, &mut task_updates, joined),
                    None => break,
                },
                () = &mut grace => {
                    tracing::warn!(updates = tasks.len(), "stopped handling updates at shutdown; they will be delivered again");
                    tasks.abort_all();
                    break;
                }
            }
        }
        self.store_offset(&mut window).await;
        tracing::info!("stopped polling Telegram");
    }

    /// Webhook mode: sets the webhook to `webhook_url` with `secret` and returns the axum router
    /// to mount in the app's HTTP server (it serves the URL's path). Each update is handled
    /// before Telegram gets its answer: 200 once handled, 503 while storage is failing (Telegram
    /// delivers it again), 401 without the right secret. Updates of different chats are handled
    /// concurrently (Telegram sends up to 40 at once), those of one chat in the order they came.
    /// The webhook is left in place on shutdown, since other instances may still be serving it;
    /// serve the router with graceful shutdown so that updates being handled are finished.
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

/// Records a finished handling task in the window. A task that panicked is counted as handled
/// (it would panic again), with an error in the log.
fn finished(
    window: &mut Window,
    task_updates: &mut HashMap<tokio::task::Id, i64>,
    joined: Result<(tokio::task::Id, (i64, bool)), tokio::task::JoinError>,
) {
    match joined {
        Ok((task, (id, handled))) => {
            task_updates.remove(&task);
            if handled {
                window.handled(id);
            }
        }
        Err(e) => {
            let id = task_updates.remove(&e.id());
            if e.is_panic() {
                tracing::error!(update = ?id, "handling an update panicked; skipping it");
                if let Some(id) = id {
                    window.handled(id);
                }
            }
        }
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
    let tg = Arc::clone(&hook.tg);
    let job = hook.tg.lanes.ordered(lane_of(&update), async move { tg.handle_update_retrying(update).await });
    // Spawned: Telegram hanging up does not cut the handling short.
    match tokio::spawn(job).await {
        Ok(Ok(())) => StatusCode::OK,
        Ok(Err(_)) => StatusCode::SERVICE_UNAVAILABLE,
        Err(e) => {
            tracing::error!(error = %e, "handling a webhook update panicked");
            StatusCode::INTERNAL_SERVER_ERROR
        }
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
    fn the_window_moves_only_past_handled_updates() {
        let mut w = Window { offset: Some(10), ..Window::default() };
        assert!(!w.take(9), "before the offset");
        assert!(w.take(10) && w.take(11) && w.take(12));
        assert!(!w.take(11), "already taken");
        w.handled(11);
        w.handled(12);
        assert_eq!((w.offset, w.moved), (Some(10), false), "10 is not handled yet");
        w.handled(10);
        assert_eq!((w.offset, w.moved), (Some(13), true));
        assert!(w.taken.is_empty());
        let mut fresh = Window::default();
        assert!(fresh.take(5));
        fresh.handled(5);
        assert_eq!(fresh.offset, Some(6));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(30), MAX_POLL_BACKOFF);
    }
}
