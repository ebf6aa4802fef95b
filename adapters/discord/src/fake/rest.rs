//! The fake's REST API under `/api/v10`: the calls the adapter makes, checked for the bot token,
//! with failures injected on message creation when a test asks.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::{APPLICATION_ID, BOT_ID, ChannelKind, Failure, FakeChannel, Posted, State, TOKEN, json as j};

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
        .route("/api/v10/channels/{id}/threads", post(create_thread))
        .route("/api/v10/guilds/{guild}/members/{user}", get(get_member))
        .route("/api/v10/interactions/{id}/{token}/callback", post(interaction_callback))
        .route("/api/v10/applications/{app}/guilds/{guild}/commands", put(overwrite_commands))
        .fallback(unknown)
        .layer(middleware::from_fn(authorize))
        .with_state(state)
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
    if let Some(Some(f)) = st.failures.pop_front() {
        return match f {
            Failure::RateLimited(after) => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({ "code": 0, "message": "You are being rate limited.", "retry_after": after, "global": false })),
                )
                    .into_response();
                if let Ok(v) = format!("{after}").parse() {
                    r.headers_mut().insert("retry-after", v);
                }
                r
            }
            Failure::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, 0, "500: Internal Server Error"),
            Failure::Forbidden(code) => error(StatusCode::FORBIDDEN, code, "Forbidden"),
        };
    }
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
    let id = st.snowflake();
    st.posts.push(Posted { id, channel, content: content.clone(), embeds, buttons, allowed_mentions: body["allowed_mentions"].clone() });
    let guild = match c.kind {
        ChannelKind::Dm { .. } => None,
        _ => Some(super::GUILD_ID),
    };
    let mut m = j::message(id, channel, guild, j::user(BOT_ID, "switchboard", true), &content, Vec::new(), &[], false);
    if let Some(o) = m.as_object_mut() {
        o.remove("member");
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
