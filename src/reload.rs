//! Wires the pack's hot reload into `switchboard run`: file changes (polled every two seconds)
//! and SIGHUP both reload; see [`switchboard_core::reload`].

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::engine::Engine;
use switchboard_core::reload::PackWatcher;

use crate::cmd::run::Shutdown;
use crate::config::Config;

/// Watches the configured pack until shutdown.
pub async fn watch(engine: Arc<Engine>, config: Config, shutdown: Shutdown) {
    let watcher = PackWatcher::new(engine, config.pack.clone(), config.values.clone());
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        let w = watcher.clone();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            let stop = sd.wait();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return,
                    _ = hup.recv() => {
                        let _ = w.reload_now().await;
                    }
                }
            }
        });
    }
    watcher.run(Duration::from_secs(2), shutdown.wait()).await;
}
