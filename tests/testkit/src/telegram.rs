//! A fake Telegram Bot API server for tests, speaking the wire protocol as
//! teloxide uses it: `POST /bot<token>/<method>` with a JSON body (method names are matched
//! case-insensitively, as Telegram does), answers in the `{"ok": true, "result": …}` envelope and
//! errors as `{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": …}}`.
//!
//! It behaves as Telegram does where the adapter depends on it:
//! - `getUpdates` long-polls: it answers at once when updates at or after `offset` exist, else
//!   waits up to `timeout` seconds; an update is forgotten once a later call's `offset` is past
//!   it; a second concurrent poller ends the first with 409, and polling while a webhook is set
//!   is refused with 409;
//! - `sendMessage` refuses empty text, text over 4,096 UTF-16 units, `callback_data` over 64
//!   bytes, unknown chats and topics, and users who never wrote to the bot; it records
//!   `parse_mode`, `message_thread_id` and the inline keyboard;
//! - `createForumTopic` / `editForumTopic` / `closeForumTopic` (only in forum supergroups),
//!   `answerCallbackQuery` (only for a query it delivered, once), `getMe`, `setWebhook` (then
//!   pushes updates to the webhook with the secret header, retrying until answered 200) and
//!   `deleteWebhook`.
//!
//! Tests push customer messages, button presses and staff-group messages as updates, read what
//! the bot sent per chat and topic, and inject failures (429 with `retry_after`, 5xx, 403).
//!
//! For benchmarks it can also behave like the real platform under load:
//! - [`FakeState::set_latency`] delays every Bot API call by a simulated round trip (half before
//!   the request is handled, half before the answer);
//! - [`FakeState::set_limits`] enforces Telegram's flood limits ([`FakeLimits::telegram`]: about
//!   30 messages a second per bot, one a second per chat with bursts of 3, 20 a minute per group)
//!   with real 429 answers carrying `retry_after`, counted by [`FakeState::rate_limited`];
//! - every accepted message is recorded in order per chat with the time it was accepted
//!   ([`FakeState::sent_to`], [`Sent::at`]), so lost, repeated and out-of-order replies can be
//!   counted, and latencies measured.
//!
//! Serve it with [`FakeTelegram::start`] (127.0.0.1, port 0), or [`serve`] on your own listener
//! with a shutdown future.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// The fake bot's user id.
pub const BOT_ID: i64 = 7_000_000_001;
/// The fake bot's username.
pub const BOT_USERNAME: &str = "switchboard_test_bot";

/// A Telegram user, as tests describe one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// User id (also their private chat's id).
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Username, without `@`.
    pub username: Option<String>,
    /// IETF language tag of the user's client, e.g. `zh-hans`, `en`.
    pub language_code: Option<String>,
}

impl FakeUser {
    /// A user with an id and a first name.
    pub fn new(id: i64, first_name: &str) -> FakeUser {
        FakeUser { id, first_name: first_name.into(), last_name: None, username: None, language_code: None }
    }

    /// The same user with a client language.
    pub fn lang(mut self, code: &str) -> FakeUser {
        self.language_code = Some(code.into());
        self
    }

    fn json(&self) -> Value {
        let mut u = json!({ "id": self.id, "is_bot": false, "first_name": self.first_name });
        if let Some(l) = &self.last_name {
            u["last_name"] = json!(l);
        }
        if let Some(n) = &self.username {
            u["username"] = json!(n);
        }
        if let Some(c) = &self.language_code {
            u["language_code"] = json!(c);
        }
        u
    }
}

/// An inline keyboard button the bot sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// The label.
    pub text: String,
    /// What comes back when it is pressed.
    pub callback_data: String,
}

/// A message the bot sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Chat.
    pub chat_id: i64,
    /// Forum topic, if any.
    pub thread_id: Option<i64>,
    /// The id the fake gave it.
    pub message_id: i64,
    /// Text.
    pub text: String,
    /// The `parse_mode` the bot asked for (the adapter must never set one).
    pub parse_mode: Option<String>,
    /// Inline keyboard buttons, row by row flattened.
    pub buttons: Vec<Button>,
    /// When the fake accepted it.
    pub at: Instant,
}

/// A forum topic the bot created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The supergroup.
    pub chat_id: i64,
    /// `message_thread_id`.
    pub thread_id: i64,
    /// Name.
    pub name: String,
    /// Closed with `closeForumTopic`.
    pub closed: bool,
}

/// A failure to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with `retry_after` seconds.
    RateLimited(u32),
    /// 500 Internal Server Error (teloxide waits 10 s before reading a 5xx answer).
    ServerError,
    /// 502 Bad Gateway with an HTML body, as a proxy in front of the API would answer.
    BadGateway,
    /// 403 Forbidden: bot was blocked by the user.
    Blocked,
    /// 400 with this description (e.g. `"Bad Request: chat not found"`).
    BadRequest(String),
}

/// Telegram's flood limits, as [`FakeState::set_limits`] enforces them on `sendMessage`: token
/// buckets that answer 429 with `retry_after` (whole seconds, at least 1) when a message comes
/// before its bucket has a token again. A refused message uses no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeLimits {
    /// Messages per second for the whole bot (also the burst).
    pub per_second: u32,
    /// Sustained messages per second in one chat.
    pub chat_per_second: u32,
    /// Messages one chat may get at once before the per-chat rate applies.
    pub chat_burst: u32,
    /// Messages per minute in one group (negative chat id), also the burst.
    pub group_per_minute: u32,
}

impl FakeLimits {
    /// Telegram's documented limits: 30 messages a second per bot, about one a second per chat
    /// (here with bursts of 3), 20 a minute per group.
    pub fn telegram() -> FakeLimits {
        FakeLimits { per_second: 30, chat_per_second: 1, chat_burst: 3, group_per_minute: 20 }
    }
}

impl Default for FakeLimits {
    fn default() -> Self {
        FakeLimits::telegram()
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Refills the bucket to `now`; `Err(wait)` until a token is there.
    fn check(&mut self, capacity: f64, per_second: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 || per_second <= 0.0 { Ok(()) } else { Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second)) }
    }
}

/// The buckets of enforced limits.
#[derive(Debug)]
struct Flood {
    limits: FakeLimits,
    overall: Bucket,
    chats: HashMap<i64, Bucket>,
    groups: HashMap<i64, Bucket>,
}

impl Flood {
    fn new(limits: FakeLimits) -> Flood {
        let now = Instant::now();
        Flood { limits, overall: Bucket { tokens: f64::from(limits.per_second), at: now }, chats: HashMap::new(), groups: HashMap::new() }
    }

    /// Takes a token for a message to `chat`, or says how long to wait.
    fn take(&mut self, chat: i64) -> Result<(), Duration> {
        let l = self.limits;
        let now = Instant::now();
        let full = |capacity: u32| Bucket { tokens: f64::from(capacity), at: now };
        let mut wait = Duration::ZERO;
        let mut check = |bucket: &mut Bucket, capacity: u32, per_second: f64| {
            if let Err(w) = bucket.check(f64::from(capacity), per_second, now) {
                wait = wait.max(w);
            }
        };
        check(&mut self.overall, l.per_second, f64::from(l.per_second));
        check(self.chats.entry(chat).or_insert_with(|| full(l.chat_burst)), l.chat_burst, f64::from(l.chat_per_second));
        if chat < 0 {
            check(
                self.groups.entry(chat).or_insert_with(|| full(l.group_per_minute)),
                l.group_per_minute,
                f64::from(l.group_per_minute) / 60.0,
            );
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        self.overall.tokens -= 1.0;
        if let Some(b) = self.chats.get_mut(&chat) {
            b.tokens -= 1.0;
        }
        if let Some(b) = self.groups.get_mut(&chat) {
            b.tokens -= 1.0;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FaultRule {
    method: String,
    chat: Option<i64>,
    fault: Fault,
    times: usize,
}

#[derive(Debug, Default)]
struct Inner {
    token: String,
    /// Unconfirmed updates, oldest first.
    updates: VecDeque<(i64, Value)>,
    /// Every update ever pushed.
    history: Vec<(i64, Value)>,
    next_update: i64,
    next_message: HashMap<i64, i64>,
    /// Users who wrote to the bot (they can be messaged), with their chat JSON.
    users: HashMap<i64, FakeUser>,
    /// Forum supergroups: id → title.
    forums: HashMap<i64, String>,
    sent: Vec<Sent>,
    sent_json: HashMap<(i64, i64), Value>,
    topics: Vec<Topic>,
    callbacks: HashSet<String>,
    answered: Vec<String>,
    next_callback: u64,
    faults: Vec<FaultRule>,
    blocked: HashSet<i64>,
    calls: Vec<(String, Value, Instant)>,
    /// Simulated round trip of every call.
    latency: Duration,
    /// Enforced flood limits, if any.
    flood: Option<Flood>,
    /// 429s answered because of the enforced limits.
    rate_limited: usize,
    webhook: Option<(String, Option<String>)>,
    webhook_deliveries: u64,
    poll_generation: u64,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Woken when updates are pushed, a poller starts, or the webhook changes.
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the fake's state: controls and inspection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FakeState {
    shared: Arc<Shared>,
}

/// A running fake server on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    state: FakeState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::ops::Deref for FakeTelegram {
    type Target = FakeState;
    fn deref(&self) -> &FakeState {
        &self.state
    }
}

impl FakeTelegram {
    /// Binds 127.0.0.1 on a free port and serves a fake for the bot `token`.
    pub async fn start(token: &str) -> std::io::Result<FakeTelegram> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = FakeState::new(token);
        let (stop, stopped) = oneshot::channel::<()>();
        let s = state.clone();
        tokio::spawn(async move {
            let _ = serve(listener, s, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(FakeTelegram { state, addr, stop: Some(stop) })
    }

    /// The URL to give `Bot::set_api_url` (and `telegram.api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The state handle.
    pub fn state(&self) -> &FakeState {
        &self.state
    }
}

/// Serves the fake on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, state: FakeState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// The fake's axum router.
pub fn router(state: FakeState) -> Router {
    Router::new().route("/{bot}/{method}", axum::routing::post(handle).get(handle)).with_state(state)
}

fn ok(result: Value) -> Response {
    (StatusCode::OK, axum::Json(json!({ "ok": true, "result": result }))).into_response()
}

fn err(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({ "ok": false, "error_code": code, "description": description }))).into_response()
}

fn too_many_requests(secs: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {secs}"),
            "parameters": { "retry_after": secs },
        })),
    )
        .into_response()
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::RateLimited(secs) => too_many_requests(u64::from(*secs)),
        Fault::ServerError => err(500, "Internal Server Error"),
        Fault::BadGateway => (StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>").into_response(),
        Fault::Blocked => err(403, "Forbidden: bot was blocked by the user"),
        Fault::BadRequest(d) => err(400, d),
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn as_i64(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The request's parameters as a JSON object, from any of the encodings Telegram accepts: JSON,
/// `multipart/form-data` (teloxide's choice for `setWebhook`) and URL-encoded forms. Form values
/// stay strings, as Telegram receives them.
fn params_of(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(json!({}));
    }
    if content_type.starts_with("multipart/form-data") {
        let raw = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let boundary = raw.split(';').filter_map(|p| p.trim().strip_prefix("boundary=")).next()?.trim_matches('"');
        return Some(parse_multipart(body, boundary));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let map: Map<String, Value> =
            url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
        return Some(Value::Object(map));
    }
    match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

fn parse_multipart(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut map = Map::new();
    for part in text.split(delimiter.as_str()) {
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .find_map(|l| l.split(';').find_map(|p| p.trim().strip_prefix("name=").map(|n| n.trim_matches('"').to_string())));
        if let Some(name) = name {
            map.insert(name, Value::String(value.strip_suffix("\r\n").unwrap_or(value).to_string()));
        }
    }
    Value::Object(map)
}

fn as_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

async fn handle(State(state): State<FakeState>, Path((bot, method)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let latency = {
        let g = state.shared.lock();
        if bot.strip_prefix("bot") != Some(g.token.as_str()) {
            return err(401, "Unauthorized");
        }
        g.latency
    };
    // The simulated round trip: half on the way in, half on the way back.
    let there = latency / 2;
    if !there.is_zero() {
        tokio::time::sleep(there).await;
    }
    let response = state.answer(&method, &headers, &body).await;
    if !latency.is_zero() {
        tokio::time::sleep(latency - there).await;
    }
    response
}

impl FakeState {
    async fn answer(&self, method: &str, headers: &HeaderMap, body: &[u8]) -> Response {
        let state = self;
        let Some(params) = params_of(headers, body) else { return err(400, "Bad Request: can't parse JSON") };
        let method = method.to_ascii_lowercase();
        {
            let mut g = state.shared.lock();
            g.calls.push((method.clone(), params.clone(), Instant::now()));
            let chat = as_i64(params.get("chat_id"));
            let rule = g.faults.iter_mut().find(|r| r.times > 0 && r.method == method && (r.chat.is_none() || r.chat == chat));
            if let Some(rule) = rule {
                rule.times -= 1;
                let fault = rule.fault.clone();
                g.faults.retain(|r| r.times > 0);
                return fault_response(&fault);
            }
            if method == "sendmessage"
                && let Some(chat) = chat
                && let Some(flood) = g.flood.as_mut()
                && let Err(wait) = flood.take(chat)
            {
                g.rate_limited += 1;
                return too_many_requests(wait.as_secs_f64().ceil().max(1.0) as u64);
            }
        }
        match method.as_str() {
            "getme" => ok(bot_user_me()),
            "getupdates" => state.get_updates(&params).await,
            "sendmessage" => state.send_message(&params),
            "answercallbackquery" => state.answer_callback(&params),
            "createforumtopic" => state.create_topic(&params),
            "editforumtopic" => state.edit_topic(&params),
            "closeforumtopic" => state.close_topic(&params),
            "setwebhook" => state.set_webhook(&params),
            "deletewebhook" => {
                let mut g = state.shared.lock();
                g.webhook = None;
                if as_bool(params.get("drop_pending_updates")) {
                    g.updates.clear();
                }
                drop(g);
                state.shared.changed.notify_waiters();
                ok(json!(true))
            }
            "getwebhookinfo" => {
                let g = state.shared.lock();
                let url = g.webhook.as_ref().map(|w| w.0.clone()).unwrap_or_default();
                ok(json!({ "url": url, "has_custom_certificate": false, "pending_update_count": g.updates.len() }))
            }
            _ => err(404, "Not Found"),
        }
    }
}

fn bot_user() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Switchboard", "username": BOT_USERNAME })
}

fn bot_user_me() -> Value {
    let mut me = bot_user();
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me["can_connect_to_business"] = json!(false);
    me["has_main_web_app"] = json!(false);
    me
}

impl FakeState {
    /// A fake for the bot `token`, with no chats yet.
    pub fn new(token: &str) -> FakeState {
        let inner = Inner { token: token.into(), next_update: 100, ..Inner::default() };
        FakeState { shared: Arc::new(Shared { inner: Mutex::new(inner), changed: Notify::new() }) }
    }

    fn chat_json(g: &Inner, chat: i64) -> Value {
        if let Some(title) = g.forums.get(&chat) {
            return json!({ "id": chat, "type": "supergroup", "title": title, "is_forum": true });
        }
        match g.users.get(&chat) {
            Some(u) => {
                let mut c = json!({ "id": chat, "type": "private", "first_name": u.first_name });
                if let Some(n) = &u.username {
                    c["username"] = json!(n);
                }
                c
            }
            None => json!({ "id": chat, "type": "private", "first_name": "User" }),
        }
    }

    fn next_message_id(g: &mut Inner, chat: i64) -> i64 {
        let n = g.next_message.entry(chat).or_insert(1);
        let id = *n;
        *n += 1;
        id
    }

    fn push_update(&self, kind: &str, payload: Value) -> i64 {
        let mut g = self.shared.lock();
        let id = g.next_update;
        g.next_update += 1;
        let mut update = Map::new();
        update.insert("update_id".into(), json!(id));
        update.insert(kind.into(), payload);
        let update = Value::Object(update);
        g.history.push((id, update.clone()));
        g.updates.push_back((id, update));
        drop(g);
        self.shared.changed.notify_waiters();
        id
    }

    fn user_message(&self, from: &FakeUser, fill: impl FnOnce(&mut Value)) -> i64 {
        let mut g = self.shared.lock();
        g.users.insert(from.id, from.clone());
        let message_id = Self::next_message_id(&mut g, from.id);
        let mut m = json!({
            "message_id": message_id,
            "date": now_unix(),
            "chat": Self::chat_json(&g, from.id),
            "from": from.json(),
        });
        drop(g);
        fill(&mut m);
        self.push_update("message", m);
        message_id
    }

    /// The customer `from` sends `text` in their private chat with the bot. Returns the message id.
    pub fn push_text(&self, from: &FakeUser, text: &str) -> i64 {
        self.user_message(from, |m| set_text(m, text))
    }

    /// The customer `from` sends a photo (with an optional caption).
    pub fn push_photo(&self, from: &FakeUser, caption: Option<&str>) -> i64 {
        self.user_message(from, |m| {
            m["photo"] = json!([{ "file_id": "photo-1", "file_unique_id": "p1", "width": 90, "height": 90, "file_size": 1200 }]);
            if let Some(c) = caption {
                m["caption"] = json!(c);
            }
        })
    }

    /// The customer `from` sends a sticker.
    pub fn push_sticker(&self, from: &FakeUser) -> i64 {
        self.user_message(from, |m| {
            m["sticker"] = json!({
                "file_id": "sticker-1", "file_unique_id": "s1", "width": 512, "height": 512,
                "type": "regular", "is_animated": false, "is_video": false, "emoji": "👍"
            });
        })
    }

    /// The user `from` presses the button with `data` under the bot's message `message_id` in
    /// their private chat. Returns the callback query id.
    pub fn push_callback(&self, from: &FakeUser, message_id: i64, data: &str) -> String {
        let mut g = self.shared.lock();
        g.next_callback += 1;
        let id = format!("cbq-{}", g.next_callback);
        g.callbacks.insert(id.clone());
        let message = g.sent_json.get(&(from.id, message_id)).cloned().unwrap_or_else(|| {
            json!({ "message_id": message_id, "date": now_unix(), "chat": Self::chat_json(&g, from.id), "from": bot_user(), "text": "…" })
        });
        drop(g);
        let q = json!({ "id": id, "from": from.json(), "message": message, "chat_instance": format!("ci-{}", from.id), "data": data });
        self.push_update("callback_query", q);
        id
    }

    /// Makes `chat` a supergroup with topics on, where the bot is an admin.
    pub fn add_forum(&self, chat: i64, title: &str) {
        self.shared.lock().forums.insert(chat, title.into());
    }

    /// `from` writes `text` in the forum supergroup `chat`, in topic `thread` (or the General topic).
    pub fn push_group_text(&self, chat: i64, thread: Option<i64>, from: &FakeUser, text: &str) -> i64 {
        let mut g = self.shared.lock();
        g.forums.entry(chat).or_insert_with(|| "Staff".into());
        let message_id = Self::next_message_id(&mut g, chat);
        let mut m = json!({ "message_id": message_id, "date": now_unix(), "chat": Self::chat_json(&g, chat), "from": from.json() });
        drop(g);
        if let Some(t) = thread {
            m["message_thread_id"] = json!(t);
            m["is_topic_message"] = json!(true);
        }
        set_text(&mut m, text);
        self.push_update("message", m);
        message_id
    }

    /// `from` posts a photo in topic `thread` of `chat`.
    pub fn push_group_photo(&self, chat: i64, thread: i64, from: &FakeUser) -> i64 {
        let mut g = self.shared.lock();
        let message_id = Self::next_message_id(&mut g, chat);
        let m = json!({
            "message_id": message_id, "date": now_unix(), "chat": Self::chat_json(&g, chat), "from": from.json(),
            "message_thread_id": thread, "is_topic_message": true,
            "photo": [{ "file_id": "photo-2", "file_unique_id": "p2", "width": 90, "height": 90 }],
        });
        drop(g);
        self.push_update("message", m);
        message_id
    }

    /// Pushes a raw update payload of `kind` (e.g. `"edited_message"`); returns its update id.
    pub fn push_raw(&self, kind: &str, payload: Value) -> i64 {
        self.push_update(kind, payload)
    }

    /// The next `times` calls of `method` (Telegram's name, any case), to `chat` if given, fail with `fault`.
    pub fn fail(&self, method: &str, chat: Option<i64>, fault: Fault, times: usize) {
        self.shared.lock().faults.push(FaultRule { method: method.to_ascii_lowercase(), chat, fault, times });
    }

    /// The user blocks the bot: every later message to them fails with 403.
    pub fn block(&self, user: i64) {
        self.shared.lock().blocked.insert(user);
    }

    /// Everything the bot sent, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.lock().sent.clone()
    }

    /// What the bot sent to `chat` (any topic), in order.
    pub fn sent_to(&self, chat: i64) -> Vec<Sent> {
        self.sent().into_iter().filter(|s| s.chat_id == chat).collect()
    }

    /// What the bot sent into topic `thread` of `chat`, in order.
    pub fn sent_in_topic(&self, chat: i64, thread: i64) -> Vec<Sent> {
        self.sent().into_iter().filter(|s| s.chat_id == chat && s.thread_id == Some(thread)).collect()
    }

    /// Forum topics created in `chat`.
    pub fn topics(&self, chat: i64) -> Vec<Topic> {
        self.shared.lock().topics.iter().filter(|t| t.chat_id == chat).cloned().collect()
    }

    /// Callback query ids the bot answered, in order.
    pub fn answered_callbacks(&self) -> Vec<String> {
        self.shared.lock().answered.clone()
    }

    /// The parameters of every call of `method` (any case), in order.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        let m = method.to_ascii_lowercase();
        self.shared.lock().calls.iter().filter(|(name, ..)| *name == m).map(|(_, p, _)| p.clone()).collect()
    }

    /// When each call of `method` (any case) arrived, in order.
    pub fn call_times(&self, method: &str) -> Vec<Instant> {
        let m = method.to_ascii_lowercase();
        self.shared.lock().calls.iter().filter(|(name, ..)| *name == m).map(|(.., at)| *at).collect()
    }

    /// Simulates a network round trip of `round_trip` on every Bot API call from now on (zero,
    /// the default, answers at once). Half of it passes before the call is handled (so limits and
    /// [`Sent::at`] see the call then), half before the answer leaves.
    pub fn set_latency(&self, round_trip: Duration) {
        self.shared.lock().latency = round_trip;
    }

    /// Enforces `limits` on `sendMessage` from now on, with fresh buckets (`None`, the default:
    /// no limits). A message over a limit is answered 429 with `retry_after` and not delivered.
    pub fn set_limits(&self, limits: Option<FakeLimits>) {
        self.shared.lock().flood = limits.map(Flood::new);
    }

    /// How many messages the enforced limits refused with 429 (injected faults not counted).
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// Updates not yet confirmed by a later `getUpdates` offset.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Delivers every update from `update_id` on again, as Telegram does when the bot never
    /// confirmed them (say, it crashed before its next `getUpdates`).
    pub fn redeliver_from(&self, update_id: i64) {
        let mut g = self.shared.lock();
        let pending: HashSet<i64> = g.updates.iter().map(|(id, _)| *id).collect();
        let mut again: Vec<(i64, Value)> = g.history.iter().filter(|(id, _)| *id >= update_id && !pending.contains(id)).cloned().collect();
        again.extend(g.updates.drain(..));
        again.sort_by_key(|(id, _)| *id);
        g.updates = again.into();
        drop(g);
        self.shared.changed.notify_waiters();
    }

    /// The id the next pushed update will get.
    pub fn next_update_id(&self) -> i64 {
        self.shared.lock().next_update
    }

    /// The webhook URL, if one is set.
    pub fn webhook(&self) -> Option<String> {
        self.shared.lock().webhook.as_ref().map(|w| w.0.clone())
    }

    /// Updates delivered to the webhook and answered 200.
    pub fn webhook_deliveries(&self) -> u64 {
        self.shared.lock().webhook_deliveries
    }

    async fn get_updates(&self, params: &Value) -> Response {
        let offset = as_i64(params.get("offset"));
        let limit = as_i64(params.get("limit")).unwrap_or(100).clamp(1, 100);
        let timeout = as_i64(params.get("timeout")).unwrap_or(0).clamp(0, 600);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
        let generation = {
            let mut g = self.shared.lock();
            g.poll_generation += 1;
            g.poll_generation
        };
        // A new poller ends any earlier one that is still waiting.
        self.shared.changed.notify_waiters();
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut g = self.shared.lock();
                if g.webhook.is_some() {
                    return err(
                        409,
                        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                    );
                }
                if g.poll_generation != generation {
                    return err(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
                }
                if let Some(o) = offset {
                    // Confirms every update before the offset.
                    g.updates.retain(|(id, _)| *id >= o);
                }
                let ready: Vec<Value> = g.updates.iter().take(usize::try_from(limit).unwrap_or(100)).map(|(_, u)| u.clone()).collect();
                if !ready.is_empty() {
                    return ok(Value::Array(ready));
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return ok(json!([])),
            }
        }
    }

    fn send_message(&self, p: &Value) -> Response {
        let Some(chat) = as_i64(p.get("chat_id")) else { return err(400, "Bad Request: chat_id is empty") };
        let text = p.get("text").and_then(Value::as_str).unwrap_or_default();
        if text.trim().is_empty() {
            return err(400, "Bad Request: message text is empty");
        }
        if utf16_len(text) > 4096 {
            return err(400, "Bad Request: message is too long");
        }
        let mut buttons = Vec::new();
        if let Some(rows) = p.pointer("/reply_markup/inline_keyboard").and_then(Value::as_array) {
            for b in rows.iter().filter_map(Value::as_array).flatten() {
                let data = b.get("callback_data").and_then(Value::as_str).unwrap_or_default();
                if data.is_empty() || data.len() > 64 {
                    return err(400, "Bad Request: BUTTON_DATA_INVALID");
                }
                buttons.push(Button { text: b.get("text").and_then(Value::as_str).unwrap_or_default().into(), callback_data: data.into() });
            }
        }
        let thread = as_i64(p.get("message_thread_id"));
        let mut g = self.shared.lock();
        if g.blocked.contains(&chat) {
            return err(403, "Forbidden: bot was blocked by the user");
        }
        if chat > 0 && !g.users.contains_key(&chat) {
            return err(403, "Forbidden: bot can't initiate conversation with a user");
        }
        if chat < 0 && !g.forums.contains_key(&chat) {
            return err(400, "Bad Request: chat not found");
        }
        if let Some(t) = thread
            && !g.topics.iter().any(|x| x.chat_id == chat && x.thread_id == t)
        {
            return err(400, "Bad Request: message thread not found");
        }
        let message_id = Self::next_message_id(&mut g, chat);
        let mut m =
            json!({ "message_id": message_id, "date": now_unix(), "chat": Self::chat_json(&g, chat), "from": bot_user(), "text": text });
        if let Some(t) = thread {
            m["message_thread_id"] = json!(t);
            m["is_topic_message"] = json!(true);
        }
        if let Some(markup) = p.get("reply_markup") {
            m["reply_markup"] = markup.clone();
        }
        g.sent.push(Sent {
            chat_id: chat,
            thread_id: thread,
            message_id,
            text: text.into(),
            parse_mode: p.get("parse_mode").and_then(Value::as_str).map(str::to_string),
            buttons,
            at: Instant::now(),
        });
        g.sent_json.insert((chat, message_id), m.clone());
        ok(m)
    }

    fn answer_callback(&self, p: &Value) -> Response {
        let id = p.get("callback_query_id").and_then(Value::as_str).unwrap_or_default();
        let mut g = self.shared.lock();
        if !g.callbacks.remove(id) {
            return err(400, "Bad Request: query is too old and response timeout expired or query ID is invalid");
        }
        g.answered.push(id.into());
        ok(json!(true))
    }

    fn create_topic(&self, p: &Value) -> Response {
        let Some(chat) = as_i64(p.get("chat_id")) else { return err(400, "Bad Request: chat_id is empty") };
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let mut g = self.shared.lock();
        if !g.forums.contains_key(&chat) {
            return err(400, if chat < 0 { "Bad Request: the chat is not a forum" } else { "Bad Request: chat not found" });
        }
        if name.is_empty() || utf16_len(name) > 128 {
            return err(400, "Bad Request: TOPIC_NAME_INVALID");
        }
        // A topic's id is the id of the service message that created it.
        let thread = Self::next_message_id(&mut g, chat);
        g.topics.push(Topic { chat_id: chat, thread_id: thread, name: name.into(), closed: false });
        ok(json!({ "message_thread_id": thread, "name": name, "icon_color": 7_322_096 }))
    }

    fn topic_mut<'a>(g: &'a mut Inner, p: &Value) -> Option<&'a mut Topic> {
        let chat = as_i64(p.get("chat_id"))?;
        let thread = as_i64(p.get("message_thread_id"))?;
        g.topics.iter_mut().find(|t| t.chat_id == chat && t.thread_id == thread)
    }

    fn edit_topic(&self, p: &Value) -> Response {
        let mut g = self.shared.lock();
        let Some(topic) = Self::topic_mut(&mut g, p) else { return err(400, "Bad Request: TOPIC_ID_INVALID") };
        match p.get("name").and_then(Value::as_str) {
            Some(n) if n == topic.name => err(400, "Bad Request: TOPIC_NOT_MODIFIED"),
            Some(n) if n.is_empty() || utf16_len(n) > 128 => err(400, "Bad Request: TOPIC_NAME_INVALID"),
            Some(n) => {
                topic.name = n.into();
                ok(json!(true))
            }
            None => ok(json!(true)),
        }
    }

    fn close_topic(&self, p: &Value) -> Response {
        let mut g = self.shared.lock();
        let Some(topic) = Self::topic_mut(&mut g, p) else { return err(400, "Bad Request: TOPIC_ID_INVALID") };
        if topic.closed {
            return err(400, "Bad Request: TOPIC_NOT_MODIFIED");
        }
        topic.closed = true;
        ok(json!(true))
    }

    fn set_webhook(&self, p: &Value) -> Response {
        let Some(url) = p.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()) else {
            return err(400, "Bad Request: bad webhook: URL is empty");
        };
        let secret = p.get("secret_token").and_then(Value::as_str).map(str::to_string);
        let mut g = self.shared.lock();
        if as_bool(p.get("drop_pending_updates")) {
            g.updates.clear();
        }
        let was_set = g.webhook.is_some();
        g.webhook = Some((url.to_string(), secret));
        drop(g);
        self.shared.changed.notify_waiters();
        if !was_set {
            tokio::spawn(self.clone().deliver_webhooks());
        }
        ok(json!(true))
    }

    /// Pushes updates to the webhook in order, each until it is answered 200, while one is set.
    async fn deliver_webhooks(self) {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let g = self.shared.lock();
                let Some((url, secret)) = g.webhook.clone() else { return };
                g.updates.front().map(|(id, u)| (*id, u.clone(), url, secret))
            };
            let Some((id, update, url, secret)) = next else {
                notified.await;
                continue;
            };
            let delivered = matches!(post_json(&url, secret.as_deref(), &update).await, Ok(200..=299));
            if delivered {
                let mut g = self.shared.lock();
                g.updates.retain(|(u, _)| *u != id);
                g.webhook_deliveries += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn set_text(m: &mut Value, text: &str) {
    m["text"] = json!(text);
    if text.starts_with('/') {
        let command = text.split_whitespace().next().unwrap_or(text);
        m["entities"] = json!([{ "type": "bot_command", "offset": 0, "length": utf16_len(command) }]);
    }
}

/// A minimal HTTP/1.1 POST of a JSON body to an `http://` URL, with Telegram's webhook secret
/// header if given (the fake has no HTTP client dependency). Returns the status code.
pub async fn post_json(url: &str, secret: Option<&str>, body: &Value) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(|| bad("the fake delivers webhooks over http:// only"))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let body = serde_json::to_vec(body).map_err(|e| bad(&e.to_string()))?;
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host)).await.map_err(|_| bad("connect timeout"))??;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(s) = secret {
        head.push_str(&format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response)).await.map_err(|_| bad("response timeout"))??;
    let status = String::from_utf8_lossy(&response).split_whitespace().nth(1).and_then(|c| c.parse().ok());
    status.ok_or_else(|| bad("no HTTP status line"))
}
