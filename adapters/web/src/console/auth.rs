//! Who is signed in to the console: the accounts of `[web]` (argon2 password hashes, checked off
//! the async threads, an unknown name costing what a known one does), the sign-in limits (per
//! account name and per address), sessions (a random id in the `sb_console` cookie; the store
//! keeps only its SHA-256, so sessions outlive a restart and hold on every instance) and the
//! defences of every change: a CSRF token per session, sent back as `X-CSRF-Token`, and the
//! refusal of requests from another site (`Origin`, `Sec-Fetch-Site`).
//!
//! Nothing here logs a password, a session id, a CSRF token or a header.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_core::types::{Actor, Millis, now_ms};

use crate::token::{random_bytes, random_id};
use crate::{Web, WebConfig, WebError};

/// The session cookie's name.
pub const COOKIE: &str = "sb_console";
/// The store's key-value namespace of sessions: key the SHA-256 of the session id, value a
/// [`Session`] as JSON.
pub const SESSIONS: &str = "web.sessions";
/// The header every change must carry the session's CSRF token in.
const CSRF_HEADER: &str = "x-csrf-token";
/// The one answer to a failed sign-in, whatever failed.
const WRONG: &str = "wrong name or password";
/// Longer passwords are refused before any hashing.
const MAX_PASSWORD_BYTES: usize = 1024;
/// How often, at most, a process looks for ended sessions to forget.
const COMPACT_EVERY_MS: Millis = 3_600_000;
/// How many ended sessions may pile up before they are forgotten.
const COMPACT_ABOVE: usize = 200;

/// A signed-in session, as kept in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The account's name.
    pub name: String,
    /// The token every change must carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: Millis,
}

/// The console's accounts and sign-in limits.
pub(crate) struct Auth {
    /// Account name → PHC hash.
    accounts: HashMap<String, String>,
    /// A hash with the accounts' parameters, checked for names that are no account (so that they
    /// cost the same time), made once in the background at start.
    dummy: Arc<OnceLock<String>>,
    dummy_params: (Algorithm, Params),
    by_name: DefaultKeyedRateLimiter<String>,
    by_addr: DefaultKeyedRateLimiter<String>,
    session_ms: Millis,
    /// When this process last looked for ended sessions.
    compacted: Mutex<Millis>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("accounts", &self.accounts.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Auth {
    pub(crate) fn new(config: &WebConfig) -> Auth {
        let per_minute = NonZeroU32::new(config.sign_in_per_minute).unwrap_or(NonZeroU32::MIN);
        let per_addr = per_minute.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN));
        // The dummy is made like the first account's hash (argon2id with default costs if none).
        let dummy_params = config
            .accounts
            .first()
            .and_then(|a| {
                PasswordHash::new(&a.password_hash)
                    .ok()
                    .and_then(|h| Some((Algorithm::try_from(h.algorithm).ok()?, Params::try_from(&h).ok()?)))
            })
            .unwrap_or((Algorithm::Argon2id, Params::default()));
        Auth {
            accounts: config.accounts.iter().map(|a| (a.name.clone(), a.password_hash.clone())).collect(),
            dummy: Arc::new(OnceLock::new()),
            dummy_params,
            by_name: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            by_addr: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_addr)),
            session_ms: Millis::from(config.session_hours).saturating_mul(3_600_000),
            compacted: Mutex::new(0),
        }
    }

    /// Makes the dummy hash in the background, so the first unknown name is not slower.
    pub(crate) fn prepare(&self) {
        let (dummy, params) = (self.dummy.clone(), self.dummy_params.clone());
        drop(tokio::task::spawn_blocking(move || {
            dummy.get_or_init(|| make_dummy(params));
        }));
    }

    /// Whether `name` and `address` may try to sign in now; else how long to wait.
    fn pace(&self, name: &str, address: &str) -> Result<(), WebError> {
        use governor::clock::{Clock, DefaultClock};
        let wait = |not_until: governor::NotUntil<_>| {
            let secs = not_until.wait_time_from(DefaultClock::default().now()).as_secs_f64().ceil();
            // Whole seconds, at least 1 (a float of a few seconds fits).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            WebError::TooMany((secs as u64).max(1))
        };
        // Names nobody has are limited too, one key each: bound what is remembered.
        if self.by_name.len() > 10_000 {
            self.by_name.retain_recent();
        }
        if self.by_addr.len() > 10_000 {
            self.by_addr.retain_recent();
        }
        self.by_addr.check_key(&address.to_string()).map_err(wait)?;
        let key: String = name.chars().take(64).collect::<String>().to_lowercase();
        self.by_name.check_key(&key).map_err(wait)
    }

    /// Whether `password` is `name`'s. Takes as long for a name that is no account.
    async fn verify(&self, name: &str, password: String) -> Result<bool, WebError> {
        let known = self.accounts.get(name).cloned();
        let (dummy, params) = (self.dummy.clone(), self.dummy_params.clone());
        tokio::task::spawn_blocking(move || {
            let hash = match &known {
                Some(h) => h.as_str(),
                None => dummy.get_or_init(|| make_dummy(params)).as_str(),
            };
            let matches = PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
            known.is_some() && matches
        })
        .await
        .map_err(|_| WebError::Config("the password check failed".into()))
    }

    /// Whether `name` is (still) an account.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.accounts.contains_key(name)
    }
}

/// A hash of a random password with `params`, for names that are no account.
fn make_dummy((algorithm, params): (Algorithm, Params)) -> String {
    let password = random_bytes::<16>();
    SaltString::encode_b64(&random_bytes::<16>())
        .and_then(|salt| Argon2::new(algorithm, Version::V0x13, params).hash_password(&password, &salt).map(|h| h.to_string()))
        .unwrap_or_default()
}

/// The store key of a session id: its SHA-256 (a copy of the store does not sign anyone in).
pub(crate) fn session_key(id: &str) -> String {
    B64.encode(Sha256::digest(id.as_bytes()))
}

/// The session cookie's value in a request, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_string))
        .filter(|v| !v.is_empty())
}

/// The live session kept under `key`, if any.
pub(crate) async fn session(web: &Web, key: &str) -> Result<Option<Session>, WebError> {
    let Some(value) = web.engine.store().get_value(SESSIONS, key).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str::<Session>(&value).ok().filter(|s| s.expires_at > now_ms() && web.console.auth.has(&s.name)))
}

/// Refuses a request sent by a page of another site: `Sec-Fetch-Site: cross-site`, or an
/// `Origin` other than the server's own (its `Host`, or the `X-Forwarded-Host` a proxy set).
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), WebError> {
    let refuse = || WebError::Forbidden("this request came from another site".into());
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if get("sec-fetch-site") == Some("cross-site") {
        return Err(refuse());
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let url = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()).ok_or_else(refuse)?;
    let Some(host) = url.host_str() else { return Err(refuse()) };
    let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
    let forms = [url.port().map_or_else(|| host.to_string(), |p| format!("{host}:{p}")), with_port.unwrap_or_default()];
    let own = [get("host"), get("x-forwarded-host").and_then(|h| h.split(',').next()).map(str::trim)]
        .into_iter()
        .flatten()
        .any(|h| forms.iter().any(|f| f.eq_ignore_ascii_case(h)));
    if own { Ok(()) } else { Err(refuse()) }
}

/// A JSON request body: refused unless sent as `application/json` (a form of another site
/// cannot be).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8], shape: &str) -> Result<T, WebError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(WebError::BadRequest("send JSON (Content-Type: application/json)".into()));
    }
    serde_json::from_slice(body).map_err(|_| WebError::BadRequest(format!("send JSON: {shape}")))
}

/// A signed-in agent, extracted from the session cookie. For anything but `GET` it also checks
/// the request's site and CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    /// The account's name.
    pub name: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session's store key.
    pub key: String,
}

impl Agent {
    /// Who the engine sees: `web:<name>`.
    pub(crate) fn actor(&self) -> Actor {
        Actor::new(format!("web:{}", self.name), self.name.clone())
    }
}

impl FromRequestParts<Arc<Web>> for Agent {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Agent, WebError> {
        let change = !matches!(parts.method, Method::GET | Method::HEAD);
        if change {
            same_origin(&parts.headers)?;
        }
        let id = cookie(&parts.headers).ok_or(WebError::Unauthorized)?;
        let key = session_key(&id);
        let s = session(web, &key).await?.ok_or(WebError::Unauthorized)?;
        if change {
            let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
            if sent.is_empty() || !bool::from(sent.ct_eq(s.csrf.as_bytes())) {
                return Err(WebError::Forbidden("the page's security token is missing or out of date: reload the page".into()));
            }
        }
        Ok(Agent { name: s.name, csrf: s.csrf, key })
    }
}

/// `Set-Cookie` for a session id, lasting `secs` (0: ended).
fn set_cookie(id: &str, secs: i64) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/console; Max-Age={secs}"))
        .map_err(|_| WebError::Config("a cookie that cannot be sent".into()))
}

/// What `GET /console/api/me` answers (and a sign-in).
fn me_json(web: &Web, agent: &Agent) -> serde_json::Value {
    let actor = agent.actor();
    json!({ "name": agent.name, "actor": actor.id, "csrf": agent.csrf, "is_agent": web.engine.is_agent(&actor) })
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
    password: String,
}

/// `POST /console/api/sign-in {name, password}`: a session cookie, and what `me` answers.
pub(crate) async fn sign_in(
    State(web): State<Arc<Web>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    same_origin(&headers)?;
    let SignIn { name, password } = json_body(&headers, &body, r#"{"name": "…", "password": "…"}"#)?;
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WebError::BadRequest("that password is too long".into()));
    }
    let auth = &web.console.auth;
    // Without the peer's address (a server not started with connect info), one key for all.
    let address = peer.map_or_else(|| "-".to_string(), |axum::Extension(ConnectInfo(a))| a.ip().to_string());
    auth.pace(&name, &address)?;
    if !auth.verify(&name, password).await? {
        // Only a name that is an account is logged (a password typed as the name is not).
        if auth.has(&name) {
            tracing::info!(agent = %name, "console: a sign-in failed");
        } else {
            tracing::info!("console: a sign-in with a name that is no account failed");
        }
        return Err(WebError::Forbidden(WRONG.into()));
    }
    let id = B64.encode(random_bytes::<32>());
    let now = now_ms();
    let session = Session { name: name.clone(), csrf: random_id(), expires_at: now.saturating_add(auth.session_ms) };
    let key = session_key(&id);
    let value = serde_json::to_string(&session).map_err(|e| WebError::BadRequest(e.to_string()))?;
    web.engine.store().set_value(SESSIONS, &key, &value).await?;
    tracing::info!(agent = %name, "console: signed in");
    forget_ended(&web, now);
    let agent = Agent { name, csrf: session.csrf, key };
    let mut res = Json(me_json(&web, &agent)).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie(&id, auth.session_ms / 1000)?);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `POST /console/api/sign-out`: the session ends, on every instance.
pub(crate) async fn sign_out(State(web): State<Arc<Web>>, agent: Agent) -> Result<Response, WebError> {
    let ended = Session { name: agent.name.clone(), csrf: String::new(), expires_at: 0 };
    let value = serde_json::to_string(&ended).map_err(|e| WebError::BadRequest(e.to_string()))?;
    web.engine.store().set_value(SESSIONS, &agent.key, &value).await?;
    tracing::info!(agent = %agent.name, "console: signed out");
    let mut res = Json(json!({ "ok": true })).into_response();
    res.headers_mut().insert(header::SET_COOKIE, set_cookie("", 0)?);
    Ok(res)
}

/// `GET /console/api/me`: `{name, actor, csrf, is_agent}`.
pub(crate) async fn me(State(web): State<Arc<Web>>, agent: Agent) -> Response {
    let mut res = Json(me_json(&web, &agent)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Forgets ended sessions once many have piled up, at most once an hour per process, in the
/// background. (The store deletes whole namespaces only: the live sessions are written back. A
/// sign-in on another instance at that very moment may be lost; its agent signs in again.)
fn forget_ended(web: &Arc<Web>, now: Millis) {
    {
        let mut last = web.console.auth.compacted.lock().unwrap_or_else(|p| p.into_inner());
        if now - *last < COMPACT_EVERY_MS {
            return;
        }
        *last = now;
    }
    let web = web.clone();
    tokio::spawn(async move {
        let store = web.engine.store();
        let Ok(all) = store.values(SESSIONS).await else { return };
        let total = all.len();
        let live: Vec<(String, String)> =
            all.into_iter().filter(|(_, v)| serde_json::from_str::<Session>(v).is_ok_and(|s| s.expires_at > now_ms())).collect();
        if total.saturating_sub(live.len()) <= COMPACT_ABOVE {
            return;
        }
        if store.delete_values(SESSIONS).await.is_ok() {
            let rows: Vec<(&str, &str, &str)> = live.iter().map(|(k, v)| (SESSIONS, k.as_str(), v.as_str())).collect();
            if let Err(e) = store.set_values(&rows).await {
                tracing::warn!(error = %e, "console: cannot write the live sessions back; their agents sign in again");
            }
        }
    });
}
