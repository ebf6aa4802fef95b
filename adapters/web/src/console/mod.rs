//! The agents' web console: `/console`, a static page (`assets/console.*`) over a small JSON API
//! under `/console/api/`. Agents sign in with an account of `[web]` (`auth.rs`: argon2 hashes,
//! sessions kept in the store, CSRF tokens, rate-limited sign-in), work the queue and tickets as
//! `web:<name>` through [`Engine::agent`](switchboard_core::engine::Engine::agent) (`api.rs`),
//! and are told of changes live by the desk `web` over Server-Sent Events (`desk.rs`).

mod api;
mod auth;
mod desk;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::{Web, WebConfig};

pub use auth::{COOKIE, SESSIONS};

/// The console page.
pub const CONSOLE_HTML: &str = include_str!("../../assets/console.html");
/// The console page's script.
pub const CONSOLE_JS: &str = include_str!("../../assets/console.js");
/// The console page's style.
pub const CONSOLE_CSS: &str = include_str!("../../assets/console.css");

/// The console's state: its accounts and sign-in limits, and its desk.
#[derive(Debug)]
pub struct Console {
    auth: auth::Auth,
    desk: Arc<desk::WebDesk>,
}

impl Console {
    /// The console of these settings.
    pub fn new(config: &WebConfig) -> Console {
        Console { auth: auth::Auth::new(config), desk: Arc::new(desk::WebDesk::new()) }
    }
}

/// Starts what the console runs beside the server: its desk, which the engine tells of every
/// ticket change (when the desk `web` is configured) and which passes them on to open pages.
pub fn start(web: &Arc<Web>) {
    web.console.auth.prepare();
    web.engine.add_desk(web.console.desk.clone());
}

/// The console's routes: the page, its script and style, and the API.
pub fn routes(web: Arc<Web>) -> Router {
    Router::new()
        .route("/console", get(|| async { crate::page(CONSOLE_HTML, &Web::csp("'none'")) }))
        .route("/console/app.js", get(|| async { crate::asset("application/javascript; charset=utf-8", CONSOLE_JS) }))
        .route("/console/app.css", get(|| async { crate::asset("text/css; charset=utf-8", CONSOLE_CSS) }))
        .route("/console/api/sign-in", post(auth::sign_in))
        .route("/console/api/sign-out", post(auth::sign_out))
        .route("/console/api/me", get(auth::me))
        .route("/console/api/queue", get(api::queue))
        .route("/console/api/tickets/{id}", get(api::show))
        .route("/console/api/tickets/{id}/claim", post(api::claim))
        .route("/console/api/tickets/{id}/release", post(api::release))
        .route("/console/api/tickets/{id}/close", post(api::close))
        .route("/console/api/tickets/{id}/reply", post(api::reply))
        .route("/console/api/tickets/{id}/note", post(api::note))
        .route("/console/api/events", get(desk::events))
        .with_state(web)
}
