//! Hot reload of the intent pack: when a file of the pack changes (checked every two seconds) or
//! the process gets SIGHUP, the pack is loaded and a new matcher trained; an invalid pack is
//! refused with its errors logged, and the running one kept.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchboard_core::engine::{Brain, Engine};

use crate::cmd::run::Shutdown;
use crate::config::Config;

/// The newest modification time of the pack's files (and their count, so deletions count too).
fn fingerprint(dir: &Path) -> Option<(SystemTime, usize)> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut n = 0;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") {
            n += 1;
            if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
    }
    Some((newest, n))
}

/// Loads the configured pack and swaps it in; keeps the old one if the new one is invalid.
pub fn reload(engine: &Engine, config: &Config) -> bool {
    match config.load_pack() {
        Ok(pack) => {
            let intents = pack.intents.len();
            engine.replace_brain(Arc::new(Brain::new(pack)));
            tracing::info!(intents, "intent pack reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the edited intent pack is invalid; keeping the running one");
            false
        }
    }
}

/// Watches the pack until shutdown.
pub async fn watch(engine: Arc<Engine>, config: Config, shutdown: Shutdown) {
    let mut last = fingerprint(&config.pack);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        #[cfg(unix)]
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_recv = std::future::pending::<()>();
        let forced = tokio::select! {
            () = &mut stop => return,
            () = hup_recv => true,
            () = tokio::time::sleep(Duration::from_secs(2)) => false,
        };
        let now = fingerprint(&config.pack);
        if forced || now != last {
            last = now;
            reload(&engine, &config);
        }
    }
}
