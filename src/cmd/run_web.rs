//! Starts the web channel for `switchboard run` when `http_listen` is set (and `web.enabled` is not
//! false): the chat widget (`/widget.js`, `/chat`), the channel `"web"`, and the agents' console
//! (`/console`, the desk `"web"`), mounted in the app's HTTP server.

use std::sync::Arc;

use anyhow::Context;
use switchboard_core::engine::Engine;
use switchboard_web::token::SECRET_ENV;
use switchboard_web::{Web, WebConfig};

use super::run::Shutdown;
use crate::config::Config;

/// Mounts the web channel's routes in `http`; whether it is on.
pub async fn start(engine: &Arc<Engine>, config: &Config, http: &mut axum::Router, shutdown: Shutdown) -> anyhow::Result<bool> {
    let web_config = WebConfig::from_table(&config.web)?;
    if !config.web_enabled() {
        return Ok(false);
    }
    let secret = std::env::var(SECRET_ENV).ok();
    let web =
        Web::start(engine.clone(), web_config, secret.as_deref(), shutdown.receiver()).await.context("cannot start the web channel")?;
    *http = std::mem::take(http).merge(web.router());
    tracing::info!("web chat at /chat (widget: /widget.js), agents' console at /console");
    Ok(true)
}
