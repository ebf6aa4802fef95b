//! A fake Discord on 127.0.0.1 for tests: the REST endpoints the adapter calls, under `/api/v10`
//! (serenity reaches them through `HttpBuilder::proxy` with its rate limiter disabled), and a
//! gateway over plain `ws://` whose address `GET /api/v10/gateway` returns: HELLO, IDENTIFY →
//! READY, heartbeats and their ACKs, RESUME → the missed events then RESUMED, and the events
//! tests send (MESSAGE_CREATE, INTERACTION_CREATE).
//!
//! Tests act as Discord users ([`FakeDiscord::dm`], [`FakeDiscord::mention`],
//! [`FakeDiscord::say`], [`FakeDiscord::click`], [`FakeDiscord::slash`]), read what the bot
//! posted ([`FakeDiscord::posts`], per channel in the order it was created), inject REST failures
//! ([`FakeDiscord::fail_next_posts`], [`FakeDiscord::fail_next_posts_in`]), and drop the gateway
//! connection ([`FakeDiscord::drop_gateway`]) to check that the client resumes.
//!
//! Like Discord, message creation honours `nonce` with `enforce_nonce`: a repeat of a nonce by the
//! bot in the same channel within [`NONCE_WINDOW`] answers the message already created instead of
//! creating another. For benchmarks it also behaves like the platform under load: a simulated round
//! trip on every REST call ([`FakeDiscord::set_latency`]) and Discord's rate limits answered with
//! real 429s and `X-RateLimit-*` headers ([`FakeDiscord::set_rate_limits`] with
//! [`RateLimits::DISCORD`]: 50 requests per second per bot, global, and 5 messages per 5 s per
//! channel); [`FakeDiscord::rest_stats`] counts what happened.

mod gateway;
mod json;
mod rest;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// The bot's user id in the fake.
pub const BOT_ID: u64 = 700_000_000_000_000_001;
/// The bot's application id.
pub const APPLICATION_ID: u64 = 700_000_000_000_000_002;
/// The one guild of the fake.
pub const GUILD_ID: u64 = 700_000_000_000_000_003;
/// The token the fake accepts (serenity sends it as `Bot <token>`).
pub const TOKEN: &str = "fake-discord-token";

/// How long the fake remembers a message's nonce (Discord: "the past few minutes").
pub const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Discord's rate limits, as the fake enforces them once set ([`FakeDiscord::set_rate_limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second the bot may make over every route but interaction callbacks; beyond
    /// it the answer is a global 429 (`"global": true`, `X-RateLimit-Global: true`).
    pub global_per_second: u32,
    /// Messages the bot may create per channel in each `channel_window`; beyond it the answer is a
    /// 429 for that channel's bucket. Every message creation answers the bucket's
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Reset-After` and `-Bucket` headers.
    pub messages_per_channel: u32,
    /// The window of the per-channel limit.
    pub channel_window: Duration,
}

impl RateLimits {
    /// Discord's: 50 requests per second per bot, 5 messages per 5 seconds per channel.
    pub const DISCORD: RateLimits = RateLimits { global_per_second: 50, messages_per_channel: 5, channel_window: Duration::from_secs(5) };
}

/// What the fake's REST API answered, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestStats {
    /// REST requests received.
    pub requests: usize,
    /// Answered with a global 429.
    pub global_limited: usize,
    /// Answered with a per-channel 429.
    pub route_limited: usize,
    /// Answered with an injected failure ([`Failure`]).
    pub injected_failures: usize,
    /// Message creations answered with the message an earlier one with the same nonce created.
    pub nonce_replays: usize,
}

/// A Discord user as tests play them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// User id.
    pub id: u64,
    /// Username.
    pub name: String,
    /// Guild roles.
    pub roles: Vec<u64>,
}

impl FakeUser {
    /// A user without roles.
    pub fn new(id: u64, name: &str) -> FakeUser {
        FakeUser { id, name: name.into(), roles: Vec::new() }
    }

    /// The same user with a role.
    pub fn with_role(mut self, role: u64) -> FakeUser {
        self.roles.push(role);
        self
    }
}

/// A message the bot created through REST.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    /// Message id.
    pub id: u64,
    /// Channel (or thread) id.
    pub channel: u64,
    /// Content as sent (escaped markdown included).
    pub content: String,
    /// Embeds as sent.
    pub embeds: Vec<Value>,
    /// Button `custom_id`s, in order.
    pub buttons: Vec<String>,
    /// `allowed_mentions` as sent (`Value::Null` when missing).
    pub allowed_mentions: Value,
    /// The `nonce` sent with it, if any.
    pub nonce: Option<String>,
    /// When the fake created it (before the simulated way back of the answer), for measuring
    /// how long a reply took.
    pub at: Instant,
}

impl Posted {
    /// The content with markdown escapes removed, as a Discord user reads it.
    pub fn text(&self) -> String {
        unescape(&self.content)
    }

    /// Whether Discord would notify anyone for this message: only if `allowed_mentions` is missing
    /// or allows something, and the content mentions someone.
    pub fn could_ping(&self) -> bool {
        let am = &self.allowed_mentions;
        if am.is_null() {
            return self.content.contains('@');
        }
        let nonempty = |k: &str| am.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
        nonempty("parse") || nonempty("users") || nonempty("roles") || am.get("replied_user").and_then(Value::as_bool) == Some(true)
    }
}

/// Removes Discord markdown escapes (`\*` → `*`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && next.is_ascii_punctuation()
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// A thread the bot created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeThread {
    /// Thread (channel) id.
    pub id: u64,
    /// The channel it was created in.
    pub parent: u64,
    /// Its name.
    pub name: String,
    /// Archived.
    pub archived: bool,
    /// Locked.
    pub locked: bool,
}

/// A failure the next message creations get, in order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// 429 with this `retry_after` (seconds).
    RateLimited(f64),
    /// A global 429 with this `retry_after` (seconds).
    GloballyRateLimited(f64),
    /// 500.
    ServerError,
    /// The message is created, but the answer is a 502, as when the connection breaks after
    /// Discord took the message: only a retry with the same nonce avoids a duplicate.
    Lost,
    /// 403 with this Discord error code (50007: cannot send messages to this user).
    Forbidden(u32),
}

/// Gateway counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// WebSocket connections accepted.
    pub connections: usize,
    /// IDENTIFYs (new sessions).
    pub identifies: usize,
    /// RESUMEs answered with RESUMED.
    pub resumes: usize,
    /// Heartbeats received (each ACKed).
    pub heartbeats: usize,
    /// Events replayed on resumes.
    pub replayed: usize,
    /// Whether a session is connected and receiving events now.
    pub live: bool,
}

#[derive(Debug, Clone)]
enum ChannelKind {
    Text,
    Dm { user: u64 },
    Thread { parent: u64 },
}

#[derive(Debug, Clone)]
struct FakeChannel {
    id: u64,
    kind: ChannelKind,
    name: String,
    archived: bool,
    locked: bool,
}

/// What goes out on a gateway connection.
#[derive(Debug)]
enum Frame {
    Text(String),
    Close(u16),
}

#[derive(Debug)]
struct Session {
    id: String,
    seq: u64,
    /// Every dispatched event with its sequence number, for replays.
    log: Vec<(u64, Value)>,
}

#[derive(Debug, Default)]
struct Gateway {
    session: Option<Session>,
    /// The connection events go to, once its IDENTIFY or RESUME went through.
    live: Option<(u64, mpsc::UnboundedSender<Frame>)>,
    next_conn: u64,
    stats: GatewayStats,
}

#[derive(Debug, Default)]
struct Inner {
    last_id: u64,
    channels: HashMap<u64, FakeChannel>,
    dm_of_user: HashMap<u64, u64>,
    users: HashMap<u64, FakeUser>,
    blocked: HashSet<u64>,
    posts: Vec<Posted>,
    /// Message payloads sent as MESSAGE_CREATE, by id, for redelivery.
    sent_messages: HashMap<u64, Value>,
    interactions: HashMap<u64, String>,
    responses: HashMap<u64, Value>,
    commands: Vec<Value>,
    /// What the next message creations do: `None` succeeds, `Some` fails.
    failures: VecDeque<Option<Failure>>,
    /// The same for message creations in one channel (after the ones above).
    channel_failures: HashMap<u64, VecDeque<Failure>>,
    /// `(channel, nonce)` → the message created with it, and when.
    nonces: HashMap<(u64, String), (u64, Instant)>,
    /// The simulated round trip of every REST call.
    latency: Duration,
    limits: Option<RateLimits>,
    /// The current one-second window of the global limit: its start and the requests in it.
    global_window: Option<(Instant, u32)>,
    /// Per channel: when its message bucket resets, and the messages created since it did.
    buckets: HashMap<u64, (Instant, u32)>,
    rest_stats: RestStats,
    unknown_routes: Vec<String>,
    /// Messages the bot deleted, as `(channel, message)`.
    deleted: Vec<(u64, u64)>,
    /// Channels where the bot lacks Manage Messages (a delete there is refused with 403).
    no_manage_messages: HashSet<u64>,
    gateway: Gateway,
}

#[derive(Debug)]
struct State {
    inner: Mutex<Inner>,
    addr: SocketAddr,
    heartbeat_ms: u64,
    paused: watch::Sender<bool>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }
}

impl Inner {
    /// A new snowflake: the time in its high bits, always increasing.
    fn snowflake(&mut self) -> u64 {
        const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let id = (now.saturating_sub(DISCORD_EPOCH_MS) << 22).max(self.last_id + 1);
        self.last_id = id;
        id
    }

    /// A new interaction by `user`: its id and the token its responses are sent with.
    fn new_interaction(&mut self, user: &FakeUser) -> (u64, String) {
        self.users.insert(user.id, user.clone());
        let id = self.snowflake();
        let token = format!("token-{id}");
        self.interactions.insert(id, token.clone());
        (id, token)
    }

    fn dm_channel(&mut self, user: u64) -> u64 {
        if let Some(&c) = self.dm_of_user.get(&user) {
            return c;
        }
        let id = self.snowflake();
        self.channels.insert(id, FakeChannel { id, kind: ChannelKind::Dm { user }, name: String::new(), archived: false, locked: false });
        self.dm_of_user.insert(user, id);
        id
    }

    fn user_json(&self, id: u64) -> Value {
        match self.users.get(&id) {
            Some(u) => json::user(u.id, &u.name, false),
            None => json::user(id, &format!("user{id}"), false),
        }
    }
}

/// A running fake Discord.
#[derive(Debug, Clone)]
pub struct FakeDiscord {
    state: Arc<State>,
}

impl FakeDiscord {
    /// Serves on `listener` (bind it to `127.0.0.1:0`) until `shutdown` completes. Heartbeats are
    /// asked every `heartbeat` (Discord asks about every 41 s; tests use less).
    pub fn start(
        listener: TcpListener,
        heartbeat: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<FakeDiscord> {
        let addr = listener.local_addr()?;
        let (paused, _) = watch::channel(false);
        let heartbeat_ms = u64::try_from(heartbeat.as_millis()).unwrap_or(41_250).max(50);
        let state = Arc::new(State { inner: Mutex::new(Inner::default()), addr, heartbeat_ms, paused });
        let app = rest::router(state.clone()).merge(gateway::router(state.clone()));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "the fake Discord stopped");
            }
        });
        Ok(FakeDiscord { state })
    }

    /// Binds 127.0.0.1 on a free port and serves until `shutdown` completes, with heartbeats every 500 ms.
    pub async fn bind(shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<FakeDiscord> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        FakeDiscord::start(listener, Duration::from_millis(500), shutdown)
    }

    /// The REST base to give the adapter as `api_url` (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// Adds a text channel to the guild (a staff or support channel).
    pub fn add_text_channel(&self, id: u64, name: &str) {
        self.state
            .lock()
            .channels
            .insert(id, FakeChannel { id, kind: ChannelKind::Text, name: name.into(), archived: false, locked: false });
    }

    /// The DM channel between the bot and `user` (created on first use).
    pub fn dm_channel(&self, user: &FakeUser) -> u64 {
        let mut s = self.state.lock();
        s.users.insert(user.id, user.clone());
        s.dm_channel(user.id)
    }

    /// Makes DMs to `user` fail with 403 / 50007, as when they closed their DMs.
    pub fn block_dms(&self, user: &FakeUser) {
        self.state.lock().blocked.insert(user.id);
    }

    /// `user` sends a direct message to the bot. Returns the message id.
    pub fn dm(&self, user: &FakeUser, text: &str) -> u64 {
        let channel = self.dm_channel(user);
        self.message(channel, user, text, false, false)
    }

    /// `user` posts `text` in a guild channel, mentioning the bot first. Returns the message id.
    pub fn mention(&self, channel: u64, user: &FakeUser, text: &str) -> u64 {
        self.message(channel, user, &format!("<@{BOT_ID}> {text}"), true, false)
    }

    /// `user` posts `text` in a guild channel or thread, mentioning nobody. Returns the message id.
    pub fn say(&self, channel: u64, user: &FakeUser, text: &str) -> u64 {
        self.message(channel, user, text, false, false)
    }

    /// `user` sends a picture in their DM, with `text` as the message (empty: only the picture).
    /// Returns the message id.
    pub fn dm_picture(&self, user: &FakeUser, text: &str) -> u64 {
        let channel = self.dm_channel(user);
        self.message(channel, user, text, false, true)
    }

    fn message(&self, channel: u64, user: &FakeUser, content: &str, mention_bot: bool, attachment: bool) -> u64 {
        let (payload, id) = {
            let mut s = self.state.lock();
            s.users.insert(user.id, user.clone());
            let id = s.snowflake();
            let guild = match s.channels.get(&channel).map(|c| &c.kind) {
                Some(ChannelKind::Dm { .. }) | None => None,
                Some(_) => Some(GUILD_ID),
            };
            let mentions = if mention_bot { vec![json::user(BOT_ID, "switchboard", true)] } else { Vec::new() };
            let payload =
                json::message(id, channel, guild, json::user(user.id, &user.name, false), content, mentions, &user.roles, attachment);
            s.sent_messages.insert(id, payload.clone());
            (payload, id)
        };
        self.dispatch("MESSAGE_CREATE", payload);
        id
    }

    /// Sends an earlier MESSAGE_CREATE again, as Discord may after a resume.
    pub fn redeliver(&self, message_id: u64) {
        let payload = self.state.lock().sent_messages.get(&message_id).cloned();
        if let Some(p) = payload {
            self.dispatch("MESSAGE_CREATE", p);
        }
    }

    /// `user` presses the button `custom_id` on the bot's last message in `channel` that has it.
    /// Returns the interaction id.
    pub fn click(&self, channel: u64, user: &FakeUser, custom_id: &str) -> u64 {
        let (payload, id) = {
            let mut s = self.state.lock();
            let (id, token) = s.new_interaction(user);
            let msg_id =
                s.posts.iter().rev().find(|p| p.channel == channel && p.buttons.iter().any(|b| b == custom_id)).map_or(1, |p| p.id);
            let guild = match s.channels.get(&channel).map(|c| &c.kind) {
                Some(ChannelKind::Dm { .. }) | None => None,
                Some(_) => Some(GUILD_ID),
            };
            let message = json::message(msg_id, channel, guild, json::user(BOT_ID, "switchboard", true), "", Vec::new(), &[], false);
            let data = serde_json::json!({ "custom_id": custom_id, "component_type": 2 });
            (json::interaction(id, 3, &token, channel, guild, user, data, Some(message)), id)
        };
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// `user` uses the slash command `/name` in `channel` (a guild channel or thread) with these
    /// options (`("ticket", json!(3))`, `("text", json!("…"))`). Returns the interaction id.
    pub fn slash(&self, channel: u64, user: &FakeUser, name: &str, options: &[(&str, Value)]) -> u64 {
        let (payload, id) = {
            let mut s = self.state.lock();
            let (id, token) = s.new_interaction(user);
            let command_id = s.commands.iter().find(|c| c["name"] == name).and_then(|c| c["id"].as_str()).unwrap_or("1").to_string();
            let opts: Vec<Value> = options
                .iter()
                .map(|(k, v)| {
                    let kind = if v.is_i64() || v.is_u64() { 4 } else { 3 };
                    serde_json::json!({ "name": k, "type": kind, "value": v })
                })
                .collect();
            let data = serde_json::json!({ "id": command_id, "name": name, "type": 1, "options": opts, "guild_id": GUILD_ID.to_string() });
            (json::interaction(id, 2, &token, channel, Some(GUILD_ID), user, data, None), id)
        };
        self.dispatch("INTERACTION_CREATE", payload);
        id
    }

    /// Sends a dispatch event (logged for replays; delivered now if a session is live).
    pub fn dispatch(&self, kind: &str, data: Value) {
        let mut s = self.state.lock();
        gateway::dispatch(&mut s.gateway, kind, data);
    }

    /// What the bot posted in `channel` (a DM, channel or thread), oldest first.
    pub fn posts(&self, channel: u64) -> Vec<Posted> {
        self.state.lock().posts.iter().filter(|p| p.channel == channel).cloned().collect()
    }

    /// Everything the bot posted, oldest first.
    pub fn all_posts(&self) -> Vec<Posted> {
        self.state.lock().posts.clone()
    }

    /// The bot's answer to an interaction (`{"type": …, "data": …}`), if it answered.
    pub fn response(&self, interaction: u64) -> Option<Value> {
        self.state.lock().responses.get(&interaction).cloned()
    }

    /// The threads the bot created, oldest first.
    pub fn threads(&self) -> Vec<FakeThread> {
        let s = self.state.lock();
        let mut v: Vec<FakeThread> = s
            .channels
            .values()
            .filter_map(|c| match c.kind {
                ChannelKind::Thread { parent } => {
                    Some(FakeThread { id: c.id, parent, name: c.name.clone(), archived: c.archived, locked: c.locked })
                }
                _ => None,
            })
            .collect();
        v.sort_by_key(|t| t.id);
        v
    }

    /// The slash commands registered for the guild (as sent, with ids added).
    pub fn commands(&self) -> Vec<Value> {
        self.state.lock().commands.clone()
    }

    /// The next message creations fail like this, in order.
    pub fn fail_next_posts(&self, failures: &[Failure]) {
        self.state.lock().failures.extend(failures.iter().copied().map(Some));
    }

    /// The next message creations in `channel` fail like this, in order (other channels are not
    /// affected).
    pub fn fail_next_posts_in(&self, channel: u64, failures: &[Failure]) {
        self.state.lock().channel_failures.entry(channel).or_default().extend(failures.iter().copied());
    }

    /// Every REST answer comes `latency` after its request (half on the way there, half on the way
    /// back), like a real round trip; zero (the default) answers at once.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Enforces these rate limits from now on ([`RateLimits::DISCORD`] for Discord's); `None`
    /// (the default) enforces none.
    pub fn set_rate_limits(&self, limits: Option<RateLimits>) {
        let mut s = self.state.lock();
        s.limits = limits;
        s.global_window = None;
        s.buckets.clear();
    }

    /// What the REST API answered so far.
    pub fn rest_stats(&self) -> RestStats {
        self.state.lock().rest_stats
    }

    /// The next `ok` message creations succeed, then the following fail like this, in order.
    pub fn fail_posts_after(&self, ok: usize, failures: &[Failure]) {
        let mut s = self.state.lock();
        s.failures.extend(std::iter::repeat_n(None, ok));
        s.failures.extend(failures.iter().copied().map(Some));
    }

    /// Messages the bot deleted, as `(channel, message)`, in order.
    pub fn deleted_messages(&self) -> Vec<(u64, u64)> {
        self.state.lock().deleted.clone()
    }

    /// Takes Manage Messages from the bot in `channel`: deleting others' messages there is
    /// refused with 403 Missing Permissions, as Discord refuses it.
    pub fn deny_manage_messages(&self, channel: u64) {
        self.state.lock().no_manage_messages.insert(channel);
    }

    /// REST routes the bot called that the fake does not know (for debugging a test).
    pub fn unknown_routes(&self) -> Vec<String> {
        self.state.lock().unknown_routes.clone()
    }

    /// Gateway counters.
    pub fn gateway_stats(&self) -> GatewayStats {
        let s = self.state.lock();
        GatewayStats { live: s.gateway.live.is_some(), ..s.gateway.stats }
    }

    /// The ids of the messages and interactions dispatched in the current gateway session, oldest
    /// first, once per dispatch (a redelivered message twice): every event the bot has been sent,
    /// or will be on its resume. Events sent while no session existed, and those of an earlier
    /// session, are not in it (Discord does not send them to a new session either).
    pub fn session_events(&self) -> Vec<u64> {
        let s = self.state.lock();
        let Some(session) = s.gateway.session.as_ref() else { return Vec::new() };
        session
            .log
            .iter()
            .filter(|(_, e)| matches!(e["t"].as_str(), Some("MESSAGE_CREATE" | "INTERACTION_CREATE")))
            .filter_map(|(_, e)| e["d"]["id"].as_str().and_then(|id| id.parse().ok()))
            .collect()
    }

    /// Closes the gateway connection (close code 4000, resumable), as when a connection drops.
    /// Events sent from now on wait for the client to resume.
    pub fn drop_gateway(&self) {
        let mut s = self.state.lock();
        if let Some((_, tx)) = s.gateway.live.take() {
            let _ = tx.send(Frame::Close(4000));
        }
    }

    /// While paused, IDENTIFY and RESUME wait (heartbeats are still answered): with
    /// [`FakeDiscord::drop_gateway`], events sent meanwhile are surely replayed on the resume.
    pub fn pause_gateway(&self, paused: bool) {
        self.state.paused.send_replace(paused);
    }
}

/// Waits until `check` returns `Some`, polling every 20 ms, or panics after `timeout` saying `what`.
pub async fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
