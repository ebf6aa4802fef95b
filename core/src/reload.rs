//! Hot reload of the intent pack: when a file of the pack changes (checked every `every`), or
//! when [`PackWatcher::reload_now`] is called (the binary wires SIGHUP to it), the pack is loaded
//! and a new matcher trained off the async threads; an invalid pack is refused with its errors
//! logged, and the running one kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::PackError;
use crate::engine::{Brain, Engine};
use crate::pack::Pack;

/// The newest modification time of the pack's TOML files and their count (so deletions count).
fn fingerprint(dir: &Path) -> Option<(SystemTime, usize)> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut n = 0;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.path().extension().is_some_and(|x| x == "toml") {
            n += 1;
            if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
    }
    Some((newest, n))
}

/// Reloads one pack folder into one engine.
#[derive(Debug, Clone)]
pub struct PackWatcher {
    engine: Arc<Engine>,
    dir: PathBuf,
    values: BTreeMap<String, String>,
}

impl PackWatcher {
    /// Watches `dir`, applying `values` (configuration overrides) to every load.
    pub fn new(engine: Arc<Engine>, dir: PathBuf, values: BTreeMap<String, String>) -> PackWatcher {
        PackWatcher { engine, dir, values }
    }

    /// Loads and trains the pack now; on success swaps it in, on failure keeps the running one.
    pub async fn reload_now(&self) -> Result<usize, PackError> {
        let dir = self.dir.clone();
        let values = self.values.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Pack::load(&dir).map(|mut pack| {
                pack.set_values(values);
                Brain::new(pack)
            })
        })
        .await
        .map_err(|e| PackError::Io { path: self.dir.display().to_string(), source: std::io::Error::other(e.to_string()) })?;
        match loaded {
            Ok(brain) => {
                let n = brain.pack.intents.len();
                self.engine.replace_brain(Arc::new(brain));
                tracing::info!(intents = n, "intent pack reloaded");
                Ok(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "the edited intent pack is invalid; keeping the running one");
                Err(e)
            }
        }
    }

    /// Polls the folder every `every` until `shutdown` completes, reloading on change.
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last = fingerprint(&self.dir);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(every) => {}
            }
            let now = fingerprint(&self.dir);
            if now != last {
                last = now;
                let _ = self.reload_now().await;
            }
        }
    }
}
