//! The REST calls the outbox makes (message creation, ticket threads), with Discord's answers
//! turned into the outbox's decisions.
//!
//! On Discord's own API serenity's rate limiter paces every call (it waits out 429s itself). With
//! `discord.api_url` set (a rate-limiting proxy, or the fake) serenity's limiter is off, since it
//! would send straight to discord.com, and serenity's typed error drops what a 429 says; so there
//! the calls are made here over the same request builder and the 429 is read whole: `retry_after`
//! (body, seconds) or the `X-RateLimit-Reset-After` / `Retry-After` headers say how long, and
//! `global: true` or the `X-RateLimit-Global` / `X-RateLimit-Scope: global` headers say that
//! the whole bot must wait ([`ChannelError::Paused`]) rather than one channel
//! ([`ChannelError::RateLimited`]). What those answers say is remembered, so that until the
//! wait is over the same route (or, after a global 429, any route) is refused here at once instead
//! of asking again; and a route whose answer says its bucket is spent (`X-RateLimit-Remaining: 0`)
//! waits for its `X-RateLimit-Reset-After` the same way, as serenity's limiter would.
//!
//! Behind a proxy the calls are also paced ahead of time to Discord's global limit
//! ([`GLOBAL_PER_SECOND`] requests per second per bot), with one `governor` limiter shared by the
//! customer channel and the desk: a burst of replies waits its turn here, a few milliseconds each,
//! instead of collecting global 429s that would pause every destination. Waiting for the pace holds
//! no lock (it sleeps until the limiter's next free slot, then asks again) and holds up only the
//! call waiting, which is one destination's next item.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serenity::all::{ChannelId, CreateMessage, CreateThread, EditThread, Http};
use serenity::http::{ErrorResponse, HttpError, LightMethod, Request, Route};
use switchboard_core::ChannelError;

use crate::channel::map_error;

/// When Discord says "slow down" without a usable delay.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest wait a 429 is taken at its word for (a longer one is a ban or a broken proxy:
/// retrying after this is harmless).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Discord's global limit: requests per second per bot, over every route but interaction
/// callbacks. Calls behind a proxy are paced so that no second holds more ([`global_quota`]).
pub const GLOBAL_PER_SECOND: u32 = 50;

/// The pace that keeps any one second, wherever it starts, within `per_second` requests: a
/// burst of a twenty-fifth of them after a quiet spell, the rest spread evenly (the burst plus one
/// second's steady rate make `per_second`, so a busy bot sends at 48 a second of Discord's 50). Discord counts its second from a request of its
/// own choosing, so a steady `per_second` with a whole second's burst could send almost twice as
/// many in one of its seconds.
fn global_quota(per_second: u32) -> Quota {
    let burst = (per_second / 25).max(1);
    let steady = per_second.saturating_sub(burst).max(1);
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(steady).unwrap_or(one)).allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

/// What a created message or thread answers that the adapter needs: its id.
#[derive(Debug, Deserialize)]
struct Created<T> {
    id: T,
}

/// At most this many routes' waits are remembered (those over are forgotten first).
const MAX_ROUTES: usize = 4096;

/// What the last answers said about waiting, behind a proxy.
#[derive(Debug, Default)]
struct Pacing {
    /// Nothing is sent before this (a global 429).
    global_until: Option<Instant>,
    /// Nothing is sent on a route (by key) before this.
    routes: HashMap<String, Instant>,
}

impl Pacing {
    /// The wait before anything may be sent on `route` now, if any.
    fn wait(&self, route: &str, now: Instant) -> Option<ChannelError> {
        if let Some(until) = self.global_until.filter(|&u| u > now) {
            return Some(ChannelError::Paused(until - now));
        }
        let until = self.routes.get(route).copied().filter(|&u| u > now)?;
        Some(ChannelError::RateLimited(until - now))
    }

    fn route_waits(&mut self, route: &str, until: Instant, now: Instant) {
        if self.routes.len() >= MAX_ROUTES {
            self.routes.retain(|_, u| *u > now);
        }
        if self.routes.len() < MAX_ROUTES {
            self.routes.insert(route.to_string(), until);
        }
    }
}

/// REST calls over serenity's client, reading 429 answers whole behind a proxy.
#[derive(Clone)]
pub(crate) struct Api {
    http: Arc<Http>,
    /// Set when serenity's rate limiter is off (`api_url`): calls go through it, not serenity.
    direct: Option<reqwest::Client>,
    pacing: Arc<Mutex<Pacing>>,
    /// The pace of the global limit, for calls made here.
    global: Arc<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("direct", &self.direct.is_some()).finish_non_exhaustive()
    }
}

impl Api {
    /// Calls over `http`; made here, not by serenity, when its rate limiter is disabled.
    pub(crate) fn new(http: Arc<Http>) -> Api {
        let direct = if http.ratelimiter.is_none() {
            match reqwest::Client::builder().build() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot build an HTTP client; Discord's 429 answers are retried after 1 s");
                    None
                }
            }
        } else {
            None
        };
        Api { http, direct, pacing: Arc::default(), global: Arc::new(RateLimiter::direct(global_quota(GLOBAL_PER_SECOND))) }
    }

    /// Waits until the global pace lets one more request go, and takes that slot. Nothing is
    /// locked while waiting: a waiter sleeps until the limiter's next free slot and asks again
    /// (another waiter may have taken it meanwhile).
    async fn paced(&self) {
        loop {
            match self.global.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.global.clock().now());
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
    }

    fn pacing(&self) -> std::sync::MutexGuard<'_, Pacing> {
        self.pacing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts a message in a channel or thread. Once Discord answered 2xx the message exists,
    /// whatever the answer's body says.
    pub(crate) async fn send_message(&self, channel: ChannelId, msg: &CreateMessage) -> Result<(), ChannelError> {
        let req = Request::new(Route::ChannelMessages { channel_id: channel }, LightMethod::Post).body(Some(body(msg)?));
        self.call::<Option<serde::de::IgnoredAny>>(&format!("messages:{channel}"), req).await.map(|_| ())
    }

    /// Creates a thread in a text channel; returns its id.
    pub(crate) async fn create_thread(&self, channel: ChannelId, thread: &CreateThread<'_>) -> Result<ChannelId, ChannelError> {
        let req = Request::new(Route::ChannelThreads { channel_id: channel }, LightMethod::Post).body(Some(body(thread)?));
        self.call::<Created<ChannelId>>(&format!("threads:{channel}"), req).await.map(|c| c.id)
    }

    /// Edits a thread (archives and locks it).
    pub(crate) async fn edit_thread(&self, thread: ChannelId, edit: &EditThread<'_>) -> Result<(), ChannelError> {
        let req = Request::new(Route::Channel { channel_id: thread }, LightMethod::Patch).body(Some(body(edit)?));
        self.call::<Option<serde::de::IgnoredAny>>(&format!("channel:{thread}"), req).await.map(|_| ())
    }

    /// Makes a call on `route` (a key of the route and its channel, for remembered waits).
    async fn call<T: DeserializeOwned>(&self, route: &str, req: Request<'_>) -> Result<T, ChannelError> {
        let Some(client) = &self.direct else {
            return self.http.fire(req).await.map_err(|e| map_error(&e));
        };
        if let Some(wait) = self.pacing().wait(route, Instant::now()) {
            return Err(wait);
        }
        self.paced().await;
        // A 429 may have been heard while this call waited its turn.
        if let Some(wait) = self.pacing().wait(route, Instant::now()) {
            return Err(wait);
        }
        let result = self.direct_call(client, req).await;
        let now = Instant::now();
        match &result {
            Ok((_, Some(spent))) => self.pacing().route_waits(route, now + *spent, now),
            Err(ChannelError::Paused(d)) => self.pacing().global_until = Some(now + *d),
            Err(ChannelError::RateLimited(d)) => self.pacing().route_waits(route, now + *d, now),
            _ => {}
        }
        result.map(|(t, _)| t)
    }

    /// A call made here; with the answer, how long until the route's bucket refills if it is spent.
    async fn direct_call<T: DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        req: Request<'_>,
    ) -> Result<(T, Option<Duration>), ChannelError> {
        let method = req.method_ref().reqwest_method();
        let request = req.build(client, self.http.token(), self.http.proxy.as_deref()).map_err(|e| map_error(&e))?;
        let request = request.build().map_err(|e| ChannelError::Permanent(format!("cannot build a Discord request: {e}")))?;
        let response = client.execute(request).await.map_err(|e| ChannelError::Transient(format!("cannot reach Discord: {e}")))?;
        let status = response.status();
        if status.is_success() {
            let spent = spent(response.headers());
            let bytes = response.bytes().await.unwrap_or_default();
            let value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                // No body (204), or one cut short: what the caller needs may still be optional.
                Err(_) => {
                    serde_json::from_slice(b"null").map_err(|e| ChannelError::Permanent(format!("unexpected answer from Discord: {e}")))?
                }
            };
            return Ok((value, spent));
        }
        if status.as_u16() == 429 {
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(rate_limit(&headers, &bytes));
        }
        let e = serenity::Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse::from_response(response, method).await));
        Err(map_error(&e))
    }
}

/// How long until a route's bucket refills, when the answer says it is spent.
fn spent(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if header("x-ratelimit-remaining")? != "0" {
        return None;
    }
    let secs: f64 = header("x-ratelimit-reset-after")?.parse().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
}

fn body(what: &impl serde::Serialize) -> Result<Vec<u8>, ChannelError> {
    serde_json::to_vec(what).map_err(|e| ChannelError::Permanent(format!("cannot encode a Discord request: {e}")))
}

/// What a 429 answer means for the outbox: how long to wait, and whether for the one route
/// ([`ChannelError::RateLimited`]) or the whole bot ([`ChannelError::Paused`], Discord's global
/// limit).
pub fn rate_limit(headers: &HeaderMap, body: &[u8]) -> ChannelError {
    let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = body
        .get("retry_after")
        .and_then(serde_json::Value::as_f64)
        .or_else(|| header("x-ratelimit-reset-after").and_then(|v| v.parse().ok()))
        .or_else(|| header("retry-after").and_then(|v| v.parse().ok()))
        .filter(|s: &f64| s.is_finite() && *s >= 0.0);
    let wait = seconds.map_or(DEFAULT_RETRY_AFTER, |s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())));
    let global = body.get("global").and_then(serde_json::Value::as_bool) == Some(true)
        || header("x-ratelimit-global").is_some_and(|v| !v.eq_ignore_ascii_case("false"))
        || header("x-ratelimit-scope").is_some_and(|v| v.eq_ignore_ascii_case("global"));
    if global { ChannelError::Paused(wait) } else { ChannelError::RateLimited(wait) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, reqwest::header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn remembered_waits_refuse_at_once_until_they_are_over() {
        let now = Instant::now();
        let mut p = Pacing::default();
        assert!(p.wait("messages:1", now).is_none());
        p.route_waits("messages:1", now + Duration::from_secs(2), now);
        assert!(matches!(p.wait("messages:1", now), Some(ChannelError::RateLimited(d)) if d == Duration::from_secs(2)));
        assert!(p.wait("messages:2", now).is_none(), "another channel goes on");
        assert!(p.wait("messages:1", now + Duration::from_secs(2)).is_none(), "over");
        p.global_until = Some(now + Duration::from_secs(1));
        assert!(matches!(p.wait("messages:2", now), Some(ChannelError::Paused(d)) if d == Duration::from_secs(1)));
        for i in 0..2 * MAX_ROUTES {
            p.route_waits(&format!("messages:{i}"), now + Duration::from_millis(1), now);
        }
        assert!(p.routes.len() <= MAX_ROUTES, "bounded");
        let spent_headers = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset-after", "4.5")]);
        assert_eq!(spent(&spent_headers), Some(Duration::from_millis(4500)));
        assert_eq!(spent(&headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset-after", "4.5")])), None);
    }

    #[tokio::test]
    async fn the_global_pace_keeps_every_second_within_the_limit() {
        let limiter = RateLimiter::direct(global_quota(GLOBAL_PER_SECOND));
        // A burst goes at once, then the rest of a second's share, and no more.
        let mut taken = 0;
        while limiter.check().is_ok() {
            taken += 1;
        }
        assert_eq!(taken, GLOBAL_PER_SECOND / 25);
        let q = global_quota(GLOBAL_PER_SECOND);
        let per_second = Duration::from_secs(1).as_nanos() / q.replenish_interval().as_nanos();
        assert_eq!(u128::from(q.burst_size().get()) + per_second, u128::from(GLOBAL_PER_SECOND));
        assert_eq!(global_quota(1).burst_size().get(), 1, "a tiny limit still lets one go");
        assert_eq!(global_quota(0).burst_size().get(), 1);
        // A waiter is let through after about one slot.
        let api = Api::new(Arc::new(serenity::http::HttpBuilder::new("t").ratelimiter_disabled(true).build()));
        let started = Instant::now();
        for _ in 0..GLOBAL_PER_SECOND / 25 + 2 {
            api.paced().await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(30) && elapsed < Duration::from_millis(500), "{elapsed:?}");
    }

    #[test]
    fn a_route_429_waits_its_retry_after() {
        let body = br#"{"message":"You are being rate limited.","retry_after":2.5,"global":false}"#;
        let e = rate_limit(&headers(&[("retry-after", "3"), ("x-ratelimit-scope", "user")]), body);
        assert!(matches!(e, ChannelError::RateLimited(d) if d == Duration::from_millis(2500)), "{e:?}");
    }

    #[test]
    fn a_global_429_pauses_the_bot() {
        let body = br#"{"message":"You are being rate limited.","retry_after":0.5,"global":true}"#;
        assert!(matches!(rate_limit(&HeaderMap::new(), body), ChannelError::Paused(d) if d == Duration::from_millis(500)));
        let by_header = rate_limit(&headers(&[("x-ratelimit-global", "true"), ("retry-after", "2")]), b"");
        assert!(matches!(by_header, ChannelError::Paused(d) if d == Duration::from_secs(2)), "{by_header:?}");
        let by_scope = rate_limit(&headers(&[("x-ratelimit-scope", "global"), ("x-ratelimit-reset-after", "0.25")]), b"{}");
        assert!(matches!(by_scope, ChannelError::Paused(d) if d == Duration::from_millis(250)), "{by_scope:?}");
    }

    #[test]
    fn a_429_without_a_usable_delay_waits_the_default_and_a_huge_one_is_capped() {
        assert!(matches!(rate_limit(&HeaderMap::new(), b"not json"), ChannelError::RateLimited(d) if d == DEFAULT_RETRY_AFTER));
        let negative = rate_limit(&HeaderMap::new(), br#"{"retry_after":-1}"#);
        assert!(matches!(negative, ChannelError::RateLimited(d) if d == DEFAULT_RETRY_AFTER));
        let huge = rate_limit(&HeaderMap::new(), br#"{"retry_after":1e12}"#);
        assert!(matches!(huge, ChannelError::RateLimited(d) if d == MAX_RETRY_AFTER));
    }
}
