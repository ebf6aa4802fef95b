//! [`Progress`]: what the workers have done (events received and handled, background posts in
//! flight), for health checks and tests that must wait on proof rather than sleep.

use super::*;

/// How many recent gateway events [`Progress`] remembers.
pub const PROGRESS_RECENT: usize = 4096;

/// What the workers have done, for health checks and tests: how many times each recent gateway
/// event (a message or interaction id; the last [`PROGRESS_RECENT`] ids) reached the handler and
/// was handled, and how many of the bot's own posts (slash command answers, warnings in threads)
/// are still being sent in the background. An event counts as handled once its worker is done
/// with it: the engine has committed it (its replies wait in the outbox) or it was ignored.
#[derive(Debug, Default)]
pub struct Progress {
    events: std::sync::Mutex<RecentEvents>,
    background: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
pub(super) struct RecentEvents {
    /// Per id: (received, handled).
    pub(super) counts: std::collections::HashMap<u64, (u32, u32)>,
    /// Ids, oldest first, to forget the oldest.
    pub(super) order: std::collections::VecDeque<u64>,
}

impl Progress {
    pub(super) fn events(&self) -> std::sync::MutexGuard<'_, RecentEvents> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn count(&self, id: u64, f: impl FnOnce(&mut (u32, u32))) {
        let mut ev = self.events();
        if !ev.counts.contains_key(&id) {
            if ev.order.len() >= PROGRESS_RECENT
                && let Some(old) = ev.order.pop_front()
            {
                ev.counts.remove(&old);
            }
            ev.order.push_back(id);
        }
        f(ev.counts.entry(id).or_default());
    }

    pub(super) fn received_event(&self, id: u64) {
        self.count(id, |c| c.0 = c.0.saturating_add(1));
    }

    pub(super) fn handled_event(&self, id: u64) {
        self.count(id, |c| c.1 = c.1.saturating_add(1));
    }

    /// How many times the event `id` (a message or interaction id) reached the gateway handler.
    pub fn received(&self, id: u64) -> u32 {
        self.events().counts.get(&id).map_or(0, |c| c.0)
    }

    /// How many times the event `id` was handled (a redelivered message counts again).
    pub fn handled(&self, id: u64) -> u32 {
        self.events().counts.get(&id).map_or(0, |c| c.1)
    }

    /// The bot's own posts still being sent in the background (outside the outbox).
    pub fn background(&self) -> usize {
        self.background.load(Ordering::SeqCst)
    }

    /// Counts a background send until the returned guard drops.
    pub(super) fn background_send(self: &Arc<Self>) -> BackgroundSend {
        self.background.fetch_add(1, Ordering::SeqCst);
        BackgroundSend(self.clone())
    }
}

/// A background send in progress (see [`Progress::background`]).
pub(super) struct BackgroundSend(Arc<Progress>);

impl Drop for BackgroundSend {
    fn drop(&mut self) {
        self.0.background.fetch_sub(1, Ordering::SeqCst);
    }
}
