//! Switchboard's website channel: a chat widget for a company's site and a console for its
//! agents, both served by the app's HTTP server (`switchboard run` with `http_listen`).
//!
//! - **Customers** (`chat.rs`): a site adds `<script src="https://bot.example.com/widget.js"
//!   async></script>` and gets a chat bubble opening the same page as `/chat`. The page talks to
//!   `/chat/ws` (JSON frames over a WebSocket); a signed visitor token (`token.rs`) brings it back
//!   to its conversation after a reload or a restart, and the conversation's transcript is what it
//!   shows: it catches up from the last line it has, in order, once (`hub.rs` wakes it).
//! - **Agents** (`console/`): `/console`, with accounts from `[web]`, argon2 password hashes,
//!   sessions in HttpOnly, Secure, SameSite=Strict cookies, CSRF tokens and rate-limited sign-in;
//!   agents act as `web:<name>` through the engine's allowlist, like every other desk.
//!
//! Every page is static source in `assets/`, served with a Content-Security-Policy that allows
//! no inline script; every text a customer or agent wrote is put on a page as text.

pub mod channel;
pub mod chat;
pub mod config;
pub mod console;
mod error;
pub mod hub;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::{DefaultKeyedRateLimiter, Quota};
use switchboard_core::engine::Engine;
use tokio::sync::watch;

pub use chat::CHANNEL;
pub use config::WebConfig;
pub use error::WebError;

/// The desk name of the console (its notices' outbox target is `desk:web`).
pub const DESK: &str = "web";

/// The web channel's shared state.
#[derive(Debug)]
pub struct Web {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: WebConfig,
    pub(crate) signer: token::Signer,
    pub(crate) hub: Arc<hub::Hub>,
    pub(crate) shutdown: watch::Receiver<bool>,
    visitors: DefaultKeyedRateLimiter<String>,
    pub(crate) console: console::Console,
}

impl Web {
    /// The web channel over `engine`: registers the `web` channel and the console's desk with
    /// it, and starts waking pages (until `shutdown` turns true). `secret` is
    /// `SWITCHBOARD_WEB_SECRET`, if set.
    pub async fn start(
        engine: Arc<Engine>,
        config: WebConfig,
        secret: Option<&str>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Web>, WebError> {
        let signer = token::Signer::load(secret, &**engine.store()).await?;
        let hub = Arc::new(hub::Hub::default());
        engine.add_channel(Arc::new(channel::WebChannel { hub: hub.clone(), store: engine.store().clone() }));
        let quota = Quota::per_minute(std::num::NonZeroU32::new(config.messages_per_minute).unwrap_or(std::num::NonZeroU32::MIN))
            .allow_burst(std::num::NonZeroU32::new(config.burst).unwrap_or(std::num::NonZeroU32::MIN));
        let console = console::Console::new(&config);
        let web = Arc::new(Web {
            engine: engine.clone(),
            config,
            signer,
            hub: hub.clone(),
            shutdown: shutdown.clone(),
            visitors: DefaultKeyedRateLimiter::keyed(quota),
            console,
        });
        console::start(&web);
        let mut stop = shutdown;
        tokio::spawn(hub.run(engine, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        Ok(web)
    }

    /// Whether visitor `id` may send a message now; else how long to wait.
    pub(crate) fn pace(&self, id: &str) -> Result<(), Duration> {
        use governor::clock::Clock;
        self.visitors
            .check_key(&id.to_string())
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// Whether a page of `origin` may open the chat: the bot's own pages (`host`) and
    /// `web.allowed_origins`.
    fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        match origin {
            // Not a browser (a browser always sends it on a WebSocket): nothing to protect.
            None => true,
            Some(o) => {
                let own = host.is_some_and(|h| {
                    url::Url::parse(o).ok().is_some_and(|u| {
                        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                        u.host_str().is_some_and(|oh| format!("{oh}{port}").eq_ignore_ascii_case(h))
                    })
                });
                own || self.config.allows_origin(o)
            }
        }
    }

    /// The routes: `/widget.js`, `/chat` (and its script, style and socket), `/console/…`.
    pub fn router(self: &Arc<Self>) -> Router {
        let chat = Router::new()
            .route("/widget.js", get(widget_js))
            .route("/chat", get(chat_page))
            .route("/chat/app.js", get(|| async { asset("application/javascript; charset=utf-8", CHAT_JS) }))
            .route("/chat/app.css", get(|| async { asset("text/css; charset=utf-8", CHAT_CSS) }))
            .route("/chat/ws", get(chat_socket))
            .with_state(self.clone());
        chat.merge(console::routes(self.clone()))
    }

    /// The Content-Security-Policy of a page: scripts, styles and connections from this server
    /// only (no inline script), framed by `frame_ancestors`.
    pub(crate) fn csp(frame_ancestors: &str) -> String {
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
        )
    }
}

/// The widget's loader: the bubble and its panel (an iframe of `/chat`).
pub const WIDGET_JS: &str = include_str!("../assets/widget.js");
/// The chat page.
pub const CHAT_HTML: &str = include_str!("../assets/chat.html");
/// The chat page's script.
pub const CHAT_JS: &str = include_str!("../assets/chat.js");
/// The chat page's style.
pub const CHAT_CSS: &str = include_str!("../assets/chat.css");

/// A static asset with its type, cached briefly.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// An HTML page with the security headers.
pub(crate) fn page(body: &'static str, csp: &str) -> Response {
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], body).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn widget_js() -> Response {
    let mut res = asset("application/javascript; charset=utf-8", WIDGET_JS);
    // Any site may load the loader; only allowed ones may show the chat in it (frame-ancestors).
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

async fn chat_page(State(web): State<Arc<Web>>) -> Response {
    let mut ancestors = vec!["'self'".to_string()];
    ancestors.extend(web.config.allowed_origins.iter().cloned());
    page(CHAT_HTML, &Web::csp(&ancestors.join(" ")))
}

async fn chat_socket(State(web): State<Arc<Web>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !web.origin_allowed(origin, host) {
        tracing::info!(origin = origin.unwrap_or(""), "web: refused a chat from a site not in web.allowed_origins");
        return WebError::Forbidden("this site may not use the chat".into()).into_response();
    }
    // A small read buffer (it grows for a larger frame): the library's default, 128 KiB zeroed at
    // the first read, was nearly all of an open page's memory.
    ws.read_buffer_size(chat::READ_BUFFER_BYTES)
        .max_message_size(chat::MAX_FRAME_BYTES)
        .max_frame_size(chat::MAX_FRAME_BYTES)
        .on_upgrade(move |socket| chat::serve(web, socket))
}
