//! Starts the Discord adapter for `switchboard run` when `DISCORD_TOKEN` is set: the customer
//! channel `"discord"`, the desk `"discord"` when `discord.staff_channel_id` is configured, the
//! gateway connection and the worker that hands its events to the engine.

use std::sync::Arc;

use anyhow::Context;
use switchboard_core::engine::Engine;
use switchboard_discord::{Discord, DiscordConfig, TOKEN_ENV};
use tokio::task::JoinHandle;

use super::run::{Shutdown, token_from_env};
use crate::config::Config;

/// The adapter's tasks, or none when `DISCORD_TOKEN` is unset or empty. The token is never logged.
pub async fn start(engine: &Arc<Engine>, config: &Config, shutdown: Shutdown) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let Some(token) = token_from_env(TOKEN_ENV) else {
        return Ok(Vec::new());
    };
    let discord_config = DiscordConfig::from_table(&config.discord)?;
    let discord = Discord::connect(engine.clone(), &token, discord_config).await.context("cannot start the Discord adapter")?;
    Ok(discord.spawn(shutdown.wait())?)
}
