//! Starts the Telegram adapter for `switchboard run` when `TELEGRAM_BOT_TOKEN` is set: the
//! customer channel `"telegram"`, the desk `"telegram"` when `telegram.staff_chat_id` is
//! configured, and either long polling (the default) or, with `telegram.webhook_url`, the webhook
//! route mounted in the app's HTTP server.

use std::sync::Arc;

use anyhow::Context;
use switchboard_core::engine::Engine;
use switchboard_telegram::{TOKEN_ENV, Telegram, TelegramConfig, WEBHOOK_SECRET_ENV, webhook_secret};
use tokio::task::JoinHandle;

use super::run::{Shutdown, token_from_env};
use crate::config::Config;

/// The adapter's tasks, or none when `TELEGRAM_BOT_TOKEN` is unset or empty. The token is never logged.
pub async fn start(
    engine: &Arc<Engine>,
    config: &Config,
    http: &mut axum::Router,
    shutdown: Shutdown,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let Some(token) = token_from_env(TOKEN_ENV) else {
        return Ok(Vec::new());
    };
    let tg_config = TelegramConfig::from_table(&config.telegram)?;
    let webhook = tg_config.webhook_url.is_some();
    if webhook && config.http_listen.is_none() {
        anyhow::bail!("telegram.webhook_url needs http_listen: the webhook is served by the app's HTTP server");
    }
    let tg = Telegram::connect(engine.clone(), &token, tg_config).await.context("cannot start the Telegram adapter")?;
    if webhook {
        let secret = webhook_secret(std::env::var(WEBHOOK_SECRET_ENV).ok().as_deref(), &token)?;
        let router = tg.webhook(&secret).await.context("cannot set the Telegram webhook")?;
        *http = std::mem::take(http).merge(router);
        Ok(Vec::new())
    } else {
        Ok(vec![tokio::spawn(tg.run_polling(shutdown.wait()))])
    }
}
