//! The fake's REST API under `/api/v10`: the calls the adapter makes, checked for the bot token,
//! with failures injected on message creation when a test asks, and, when set, a simulated round
//! trip and Discord's rate limits (global, and per channel for message creation) answered as
//! Discord answers them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

use super::{APPLICATION_ID, BOT_ID, ChannelKind, Failure, FakeChannel, Inner, NONCE_WINDOW, Posted, State, TOKEN, json as j};

type S = AxState<Arc<State>>;

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, axum::Json(json!({ "code": code, "message": message }))).into_response()
}

fn unknown_channel() -> Response {
    error(StatusCode::NOT_FOUND, 10003, "Unknown Channel")
}

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/api/v10/gateway", get(gateway))
        .route("/api/v10/gateway/bot", get(gateway_bot))
        .route("/api/v10/users/@me", get(me))
        .route("/api/v10/users/@me/channels", post(create_dm))
        .route("/api/v10/channels/{id}", get(get_channel).patch(edit_channel))
        .route("/api/v10/channels/{id}/messages", get(list_messages).post(create_message))
        .route("/api/v10/channels/{id}/messages/{message}", delete(delete_message))
        .route("/api/v10/channels/{id}/threads", post(create_thread))
        .route("/api/v10/guilds/{guild}/members/{user}", get(get_member))
        .route("/api/v10/interactions/{id}/{token}/callback", post(interaction_callback))
        .route("/api/v10/applications/{app}/guilds/{guild}/commands", put(overwrite_commands))
        .fallback(unknown)
        .layer(middleware::from_fn(authorize))
        .layer(middleware::from_fn_with_state(state.clone(), simulate))
        .with_state(state)
}

/// The bucket id Discord names in `X-RateLimit-Bucket` for message creation (one route, the
/// channel being its major parameter).
const MESSAGE_BUCKET: &str = "fake0message0create0bucket";

/// A 429 as Discord sends it: the body's `retry_after` in seconds, `Retry-After` rounded up.
fn too_many(retry_after: Duration, global: bool) -> Response {
    let secs = retry_after.as_secs_f64();
    let body =
        json!({ "message": "You are being rate limited.", "retry_after": (secs * 1000.0).ceil() / 1000.0, "global": global, "code": 0 });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let h = r.headers_mut();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = v.parse() {
            h.insert(k, v);
        }
    };
    set("retry-after", format!("{}", secs.ceil().max(1.0) as u64));
    if global {
        set("x-ratelimit-global", "true".into());
        set("x-ratelimit-scope", "global".into());
    } else {
        set("x-ratelimit-scope", "user".into());
    }
    r
}

/// The simulated round trip (half before, half after) and the global rate limit, around every
/// REST call but interaction callbacks (which Discord does not count either).
async fn simulate(AxState(s): S, req: Request, next: Next) -> Response {
    let latency = {
        let mut st = s.lock();
        st.rest_stats.requests += 1;
        st.latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency / 2).await;
    }
    let limited = if req.uri().path().starts_with("/api/v10/interactions/") { None } else { global_limit(&mut s.lock()) };
    let response = match limited {
        Some(wait) => too_many(wait, true),
        None => next.run(req).await,
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency - latency / 2).await;
    }
    response
}

/// Counts a request against the global limit; how long to wait if it is over.
fn global_limit(st: &mut Inner) -> Option<Duration> {
    let limit = st.limits?.global_per_second;
    let now = Instant::now();
    let (start, count) = match st.global_window {
        Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => (start, count),
        _ => (now, 0),
    };
    if count >= limit {
        st.global_window = Some((start, count));
        st.rest_stats.global_limited += 1;
        return Some((start + Duration::from_secs(1)).saturating_duration_since(now));
    }
    st.global_window = Some((start, count + 1));
    None
}

/// Counts a message creation in `channel` against its bucket: the bucket's headers, or the wait
/// if it is spent.
fn channel_limit(st: &mut Inner, channel: u64) -> Result<Vec<(&'static str, String)>, Duration> {
    let Some(limits) = st.limits else { return Ok(Vec::new()) };
    let now = Instant::now();
    let (reset, used) = match st.buckets.get(&channel) {
        Some(&(reset, used)) if now < reset => (reset, used),
        _ => (now + limits.channel_window, 0),
    };
    let after = reset.saturating_duration_since(now);
    if used >= limits.messages_per_channel {
        st.rest_stats.route_limited += 1;
        return Err(after);
    }
    st.buckets.insert(channel, (reset, used + 1));
    if st.buckets.len() > 10_000 {
        st.buckets.retain(|_, (r, _)| *r > now);
    }
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + after;
    Ok(vec![
        ("x-ratelimit-limit", limits.messages_per_channel.to_string()),
        ("x-ratelimit-remaining", (limits.messages_per_channel - used - 1).to_string()),
        ("x-ratelimit-reset", format!("{:.3}", epoch.as_secs_f64())),
        // Rounded up, as a client that waits exactly this long must find the bucket refilled.
        ("x-ratelimit-reset-after", format!("{:.3}", (after.as_secs_f64() * 1000.0).ceil() / 1000.0)),
        ("x-ratelimit-bucket", MESSAGE_BUCKET.to_string()),
    ])
}

fn with_headers(mut r: Response, headers: &[(&'static str, String)]) -> Response {
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

async fn authorize(headers: HeaderMap, req: Request, next: Next) -> Response {
    // Interaction callbacks are authorised by their token, not the bot token.
    let path = req.uri().path().to_string();
    let ok = path.starts_with("/api/v10/interactions/")
        || headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bot {TOKEN}").as_str());
    if !ok {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    next.run(req).await
}

async fn unknown(AxState(s): S, req: Request) -> Response {
    s.lock().unknown_routes.push(format!("{} {}", req.method(), req.uri().path()));
    error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

async fn gateway(AxState(s): S) -> Response {
    axum::Json(json!({ "url": s.ws_url() })).into_response()
}

async fn gateway_bot(AxState(s): S) -> Response {
    axum::Json(json!({
        "url": s.ws_url(),
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 }
    }))
    .into_response()
}

async fn me() -> Response {
    let mut u = j::user(BOT_ID, "switchboard", true);
    u["verified"] = json!(true);
    u["mfa_enabled"] = json!(false);
    u["flags"] = json!(0);
    axum::Json(u).into_response()
}

async fn create_dm(AxState(s): S, axum::Json(body): axum::Json<Value>) -> Response {
    let Some(user) = body["recipient_id"].as_str().and_then(|v| v.parse::<u64>().ok()).or_else(|| body["recipient_id"].as_u64()) else {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    };
    let mut st = s.lock();
    let id = st.dm_channel(user);
    let users = |id: u64| st.user_json(id);
    let c = st.channels.get(&id).map(|c| j::channel(c, &users));
    axum::Json(c.unwrap_or(Value::Null)).into_response()
}

async fn get_channel(AxState(s): S, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return unknown_channel();
    };
    let st = s.lock();
    let users = |id: u64| st.user_json(id);
    match st.channels.get(&id) {
        Some(c) => axum::Json(j::channel(c, &users)).into_response(),
        None => unknown_channel(),
    }
}

async fn edit_channel(AxState(s): S, Path(id): Path<String>, axum::Json(body): axum::Json<Value>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return unknown_channel();
    };
    let mut st = s.lock();
    let Some(c) = st.channels.get_mut(&id) else {
        return unknown_channel();
    };
    if let Some(a) = body["archived"].as_bool() {
        c.archived = a;
    }
    if let Some(l) = body["locked"].as_bool() {
        c.locked = l;
    }
    if let Some(n) = body["name"].as_str() {
        c.name = n.to_string();
    }
    let c = c.clone();
    let users = |id: u64| st.user_json(id);
    axum::Json(j::channel(&c, &users)).into_response()
}

async fn create_message(AxState(s): S, Path(id): Path<String>, axum::Json(body): axum::Json<Value>) -> Response {
    let Ok(channel) = id.parse::<u64>() else {
        return unknown_channel();
    };
    let mut st = s.lock();
    let headers = match channel_limit(&mut st, channel) {
        Ok(h) => h,
        Err(wait) => {
            let mut r = too_many(wait, false);
            let limit = st.limits.map_or(0, |l| l.messages_per_channel);
            let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + wait;
            let bucket = [
                ("x-ratelimit-limit", limit.to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", format!("{:.3}", reset.as_secs_f64())),
                ("x-ratelimit-reset-after", format!("{:.3}", wait.as_secs_f64())),
                ("x-ratelimit-bucket", MESSAGE_BUCKET.to_string()),
            ];
            r = with_headers(r, &bucket);
            return r;
        }
    };
    let failure = match st.failures.pop_front() {
        Some(f) => f,
        None => st.channel_failures.get_mut(&channel).and_then(std::collections::VecDeque::pop_front),
    };
    let mut lost = false;
    if let Some(f) = failure {
        st.rest_stats.injected_failures += 1;
        match f {
            Failure::RateLimited(after) => return with_headers(too_many(Duration::from_secs_f64(after.max(0.0)), false), &headers),
            Failure::GloballyRateLimited(after) => return too_many(Duration::from_secs_f64(after.max(0.0)), true),
            Failure::ServerError => return error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error"),
            Failure::Forbidden(code) => return error(StatusCode::FORBIDDEN, code, "Forbidden"),
            Failure::Lost => lost = true,
        }
    }
    let r = create_in(&mut st, channel, &body);
    if lost && r.status().is_success() {
        return error(StatusCode::BAD_GATEWAY, 0, "502: Bad Gateway");
    }
    with_headers(r, &headers)
}

/// Creates the message `body` in `channel` (or finds the one its enforced nonce created).
fn create_in(st: &mut Inner, channel: u64, body: &Value) -> Response {
    let Some(c) = st.channels.get(&channel).cloned() else {
        return unknown_channel();
    };
    match c.kind {
        ChannelKind::Dm { user } if st.blocked.contains(&user) => {
            return error(StatusCode::FORBIDDEN, 50007, "Cannot send messages to this user");
        }
        ChannelKind::Thread { .. } if c.locked => return error(StatusCode::FORBIDDEN, 50083, "Thread is archived"),
        ChannelKind::Thread { .. } if c.archived => {
            // Posting in an archived, unlocked thread reopens it.
            if let Some(c) = st.channels.get_mut(&channel) {
                c.archived = false;
            }
        }
        _ => {}
    }
    let content = body["content"].as_str().unwrap_or_default().to_string();
    if content.chars().count() > 2000 {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: content must be 2000 or fewer in length");
    }
    let buttons: Vec<String> = body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
        .collect();
    if buttons.iter().any(|b| b.chars().count() > 100) {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: custom_id too long");
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    if content.is_empty() && embeds.is_empty() && buttons.is_empty() {
        return error(StatusCode::BAD_REQUEST, 50006, "Cannot send an empty message");
    }
    let nonce = match &body["nonce"] {
        Value::String(n) => Some(n.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(n) = &nonce
        && n.len() > 25
    {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: nonce must be 25 or fewer in length");
    }
    let now = Instant::now();
    if body["enforce_nonce"].as_bool() == Some(true)
        && let Some(n) = &nonce
        && let Some(&(earlier, at)) = st.nonces.get(&(channel, n.clone()))
        && now.duration_since(at) < NONCE_WINDOW
        && let Some(m) = st.sent_messages.get(&earlier).cloned()
    {
        st.rest_stats.nonce_replays += 1;
        return axum::Json(m).into_response();
    }
    let id = st.snowflake();
    if let Some(n) = &nonce {
        if st.nonces.len() > 100_000 {
            st.nonces.retain(|_, (_, at)| now.duration_since(*at) < NONCE_WINDOW);
        }
        st.nonces.insert((channel, n.clone()), (id, now));
    }
    st.posts.push(Posted {
        id,
        channel,
        content: content.clone(),
        embeds,
        buttons,
        allowed_mentions: body["allowed_mentions"].clone(),
        nonce: nonce.clone(),
        at: now,
    });
    let guild = match c.kind {
        ChannelKind::Dm { .. } => None,
        _ => Some(super::GUILD_ID),
    };
    let mut m = j::message(id, channel, guild, j::user(BOT_ID, "switchboard", true), &content, Vec::new(), &[], false);
    if let Some(o) = m.as_object_mut() {
        o.remove("member");
        if let Some(n) = nonce {
            o.insert("nonce".into(), Value::String(n));
        }
    }
    st.sent_messages.insert(id, m.clone());
    axum::Json(m).into_response()
}

/// `GET /guilds/{guild}/members/{user}`: a member of the fake's guild, with their roles.
async fn get_member(AxState(s): S, Path((guild, user)): Path<(String, String)>) -> Response {
    let st = s.lock();
    let user = user.parse::<u64>().ok().and_then(|u| st.users.get(&u).cloned());
    match user {
        Some(u) if guild == super::GUILD_ID.to_string() => axum::Json(j::member(&u, true)).into_response(),
        _ => error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
    }
}

/// `GET /channels/{id}/messages?after=…&limit=…` (or `before=…`): as Discord answers it, the
/// `limit` (default 50, at most 100) messages nearest the given id on that side, newest first,
/// without the `guild_id` and `member` that only gateway events carry.
/// `DELETE /channels/{id}/messages/{message}`: 204, or 403 where the bot lacks Manage Messages,
/// or 404 for a message that is not there.
async fn delete_message(AxState(s): S, Path((id, message)): Path<(String, String)>) -> Response {
    let (Ok(channel), Ok(message)) = (id.parse::<u64>(), message.parse::<u64>()) else {
        return unknown_channel();
    };
    let mut st = s.lock();
    if !st.channels.contains_key(&channel) {
        return unknown_channel();
    }
    if st.no_manage_messages.contains(&channel) {
        return error(StatusCode::FORBIDDEN, 50013, "Missing Permissions");
    }
    if st.deleted.contains(&(channel, message)) {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    }
    st.deleted.push((channel, message));
    st.sent_messages.remove(&message);
    StatusCode::NO_CONTENT.into_response()
}

async fn list_messages(AxState(s): S, Path(id): Path<String>, Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let Ok(channel) = id.parse::<u64>() else {
        return unknown_channel();
    };
    let st = s.lock();
    if !st.channels.contains_key(&channel) {
        return unknown_channel();
    }
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    let limit = num("limit").unwrap_or(50).clamp(1, 100) as usize;
    let mut ids: Vec<u64> = st
        .sent_messages
        .iter()
        .filter(|(_, m)| m["channel_id"].as_str() == Some(channel.to_string().as_str()))
        .map(|(&id, _)| id)
        .collect();
    ids.sort_unstable();
    let picked: Vec<u64> = match (num("after"), num("before")) {
        (Some(after), _) => ids.into_iter().filter(|&i| i > after).take(limit).collect(),
        (None, Some(before)) => {
            let older: Vec<u64> = ids.into_iter().filter(|&i| i < before).collect();
            older[older.len().saturating_sub(limit)..].to_vec()
        }
        (None, None) => ids[ids.len().saturating_sub(limit)..].to_vec(),
    };
    let out: Vec<Value> = picked
        .iter()
        .rev()
        .filter_map(|i| st.sent_messages.get(i).cloned())
        .map(|mut m| {
            if let Some(o) = m.as_object_mut() {
                o.remove("guild_id");
                o.remove("member");
            }
            m
        })
        .collect();
    axum::Json(out).into_response()
}

async fn create_thread(AxState(s): S, Path(id): Path<String>, axum::Json(body): axum::Json<Value>) -> Response {
    let Ok(parent) = id.parse::<u64>() else {
        return unknown_channel();
    };
    let mut st = s.lock();
    if !matches!(st.channels.get(&parent).map(|c| &c.kind), Some(ChannelKind::Text)) {
        return unknown_channel();
    }
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body: name must be between 1 and 100 in length");
    }
    let id = st.snowflake();
    let c = FakeChannel { id, kind: ChannelKind::Thread { parent }, name, archived: false, locked: false };
    st.channels.insert(id, c.clone());
    let users = |id: u64| st.user_json(id);
    (StatusCode::CREATED, axum::Json(j::channel(&c, &users))).into_response()
}

async fn interaction_callback(AxState(s): S, Path((id, token)): Path<(String, String)>, axum::Json(body): axum::Json<Value>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    let mut st = s.lock();
    if st.interactions.get(&id) != Some(&token) {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    }
    if st.responses.contains_key(&id) {
        return error(StatusCode::BAD_REQUEST, 40060, "Interaction has already been acknowledged.");
    }
    st.responses.insert(id, body);
    StatusCode::NO_CONTENT.into_response()
}

async fn overwrite_commands(AxState(s): S, Path((app, guild)): Path<(String, String)>, axum::Json(body): axum::Json<Value>) -> Response {
    if app != APPLICATION_ID.to_string() || guild != super::GUILD_ID.to_string() {
        return error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
    }
    let mut st = s.lock();
    let sent = body.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for c in &sent {
        let id = st.snowflake();
        out.push(j::command(id, c));
    }
    st.commands = out.clone();
    axum::Json(Value::Array(out)).into_response()
}
