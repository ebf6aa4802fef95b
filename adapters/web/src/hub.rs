//! Which open chat pages show which conversation, and waking them when its transcript grows:
//! from this process's commits at once ([`Engine::transcript_updates`]), from other instances on
//! the same database within [`POLL`] (one query for all pages: [`Store::transcript_touched`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::engine::Engine;
use tokio::sync::{broadcast, watch};

/// How often other instances' lines are looked for.
pub const POLL: Duration = Duration::from_secs(1);
/// How many line ids before the newest seen are looked at again.
const LOOK_BACK: i64 = 256;

/// What a page is woken with: a change count, and the newest line id when it is known (a page
/// that has it already reads nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wake {
    /// Bumped at every wake.
    pub generation: u64,
    /// The conversation's newest line, if the waker knew it.
    pub newest: Option<i64>,
}

/// The pages open on each conversation.
#[derive(Debug, Default)]
pub struct Hub {
    pages: Mutex<HashMap<i64, watch::Sender<Wake>>>,
}

impl Hub {
    /// A receiver woken when conversation `id` has new lines.
    pub fn watch(&self, id: i64) -> watch::Receiver<Wake> {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        pages.entry(id).or_insert_with(|| watch::channel(Wake::default()).0).subscribe()
    }

    /// Wakes the pages of conversation `id`.
    pub fn poke(&self, id: i64, newest: Option<i64>) {
        let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = pages.get(&id) {
            tx.send_modify(|w| {
                w.generation += 1;
                w.newest = newest;
            });
        }
    }

    /// How many conversations have a page open.
    pub fn open(&self) -> usize {
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Forgets conversations no page shows any more.
    fn sweep(&self) {
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, tx| tx.receiver_count() > 0);
    }

    /// Wakes pages until `shutdown`: at once for this process's commits, within [`POLL`] for
    /// other instances'.
    pub async fn run(self: Arc<Self>, engine: Arc<Engine>, shutdown: impl std::future::Future<Output = ()>) {
        let mut local = engine.transcript_updates();
        let mut head = engine.store().transcript_head().await.unwrap_or(0);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                got = local.recv() => match got {
                    Ok(id) => self.poke(id, None),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too many at once to name: every page reads what it lacks.
                        let ids: Vec<i64> = self.pages.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
                        for id in ids {
                            self.poke(id, None);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    self.sweep();
                    if self.open() == 0 {
                        head = engine.store().transcript_head().await.unwrap_or(head);
                        continue;
                    }
                    // A little before the newest line seen: on PostgreSQL a line with a lower id
                    // can commit after a higher one. Pages that have a line read nothing again.
                    match engine.store().transcript_touched(head.saturating_sub(LOOK_BACK), 10_000).await {
                        Ok(touched) => {
                            for (id, newest) in touched {
                                self.poke(id, Some(newest));
                                head = head.max(newest);
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "web: cannot look for other instances' lines"),
                    }
                }
            }
        }
    }
}
