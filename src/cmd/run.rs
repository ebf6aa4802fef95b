//! `switchboard run`: serves the configured channels until Ctrl-C (or SIGTERM): the adapters, the
//! outbox, the pack's hot reload and, when `http_listen` is set, the HTTP server (health check and
//! webhooks).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::engine::Engine;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Options of `switchboard run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Resolves when the process is asked to stop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The bot token in the environment variable `var`, trimmed, or `None` (and the adapter is off)
/// when it is unset or blank. The token itself is never logged.
pub(crate) fn token_from_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => {
            tracing::debug!("{var} is not set: that adapter is off");
            None
        }
    }
}

impl Shutdown {
    /// A shutdown signal and the sender that triggers it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// The signal as a watch receiver (`true` once shutdown is triggered).
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    /// Waits until shutdown is triggered (or its sender is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

async fn signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn run(config: Config, _args: RunArgs) -> anyhow::Result<ExitCode> {
    let pack = config.load_pack()?;
    let store = config.open_store().await?;
    let engine = Engine::new(store, pack, config.engine());
    let (stop, shutdown) = Shutdown::new();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut http = crate::http::app(engine.clone());
    // Metrics: recorded from here on, served at `/metrics` (with `http_listen`).
    let metrics = crate::prometheus::install()?;
    http = http.merge(crate::prometheus::routes(metrics.clone()));
    tasks.push(tokio::spawn(crate::prometheus::upkeep(metrics, shutdown.clone())));

    // Adapters: each starts when its token is in the environment.
    let adapters_before = tasks.len();
    // (adapter start lines go here)
    tasks.extend(super::run_telegram::start(&engine, &config, &mut http, shutdown.clone()).await?);
    tasks.extend(super::run_discord::start(&engine, &config, shutdown.clone()).await?);
    let web = super::run_web::start(&engine, &config, &mut http, shutdown.clone()).await?;
    if tasks.len() == adapters_before && !web {
        tracing::warn!("no chat platform is configured: set TELEGRAM_BOT_TOKEN and/or DISCORD_TOKEN, or http_listen for the web chat");
    } else if config.engine().desks.is_empty() {
        tracing::warn!(
            "no agent desk on a chat platform (telegram.staff_chat_id, discord.staff_channel_id): tickets can be worked only with `switchboard desk` on this database"
        );
    }

    tasks.push(tokio::spawn(crate::reload::watch(engine.clone(), config.clone(), shutdown.clone())));
    if let Some(addr) = config.http_listen {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "HTTP server listening");
        let sd = shutdown.clone();
        let app = std::mem::take(&mut http);
        tasks.push(tokio::spawn(async move {
            // The peer's address reaches the handlers (the console limits sign-in attempts per address).
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(sd.wait()).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
    }
    let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_secs(1), shutdown.clone().wait()));
    tracing::info!(pack = %config.pack.display(), "switchboard is running");
    signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    // Adapters stop taking messages and the outbox gives sends in flight their grace period, all
    // at once; whatever is still running a little after that is abandoned (nothing is lost: it
    // is stored, and the next start resumes it).
    let bound = engine.config().delivery.shutdown_grace + Duration::from_secs(2);
    let all = futures_util::future::join_all(tasks.into_iter().chain(std::iter::once(outbox)));
    if tokio::time::timeout(bound, all).await.is_err() {
        tracing::warn!(
            after_ms = bound.as_millis() as u64,
            "stopped without waiting longer for unfinished work; it resumes at the next start"
        );
    }
    Ok(ExitCode::SUCCESS)
}
