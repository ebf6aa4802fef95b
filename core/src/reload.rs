//! Hot reload of the intent pack: when a file of the pack changes (checked every `every`), or
//! when [`PackWatcher::reload_now`] is called (the binary wires SIGHUP to it), the pack is loaded
//! and a new matcher trained off the async threads; an invalid pack is refused with its errors
//! logged, and the running one kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::PackError;
use crate::engine::{Brain, Engine};
use crate::pack::Pack;

/// A digest of the pack's TOML files, names and contents: any edit changes it, however coarse the
/// file system's modification times (1–2 s on some), and so does adding or removing a file. Packs
/// are a few dozen kilobytes, so reading them at every poll is cheap.
fn fingerprint(dir: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    Some(h.finish())
}

/// Reloads one pack folder into one engine.
#[derive(Debug, Clone)]
pub struct PackWatcher {
    engine: Arc<Engine>,
    dir: PathBuf,
    values: BTreeMap<String, String>,
    /// Loads tried so far, and how many of them were refused.
    tried: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    /// The files as they were when the watcher was made (the pack the engine runs).
    baseline: Option<u64>,
}

impl PackWatcher {
    /// Watches `dir`, applying `values` (configuration overrides) to every load.
    pub fn new(engine: Arc<Engine>, dir: PathBuf, values: BTreeMap<String, String>) -> PackWatcher {
        let baseline = fingerprint(&dir);
        PackWatcher { engine, dir, values, tried: Arc::new(AtomicU64::new(0)), refused: Arc::new(AtomicU64::new(0)), baseline }
    }

    /// How many loads were tried (on change, or asked for), and how many of them were refused:
    /// what tests (and logs) wait on instead of guessing how long a reload takes.
    pub fn loads(&self) -> (u64, u64) {
        (self.tried.load(Ordering::SeqCst), self.refused.load(Ordering::SeqCst))
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
        self.tried.fetch_add(1, Ordering::SeqCst);
        match loaded {
            Ok(brain) => {
                let n = brain.pack.intents.len();
                self.engine.replace_brain(Arc::new(brain));
                crate::metrics::pack_reload(true);
                tracing::info!(intents = n, "intent pack reloaded");
                Ok(n)
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                crate::metrics::pack_reload(false);
                tracing::error!(error = %e, "the edited intent pack is invalid; keeping the running one");
                Err(e)
            }
        }
    }

    /// Polls the folder every `every` until `shutdown` completes, reloading on change.
    pub async fn run(self, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last = self.baseline;
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
