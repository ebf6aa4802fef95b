//! Ordered lanes for inbound updates: work for different lanes (chats, or topics of the staff
//! group) runs concurrently, at most a fixed number at once, while the work of one lane runs
//! strictly in the order it was submitted, one at a time. So one customer whose message waits
//! on a failing database or a slow engine holds up only their own chat.
//!
//! The order is fixed when [`Lanes::ordered`] is called (synchronously), not when the returned
//! future first runs, so the futures may be spawned as tasks in any order.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

/// A lane: a chat, and within a forum supergroup a topic.
pub(crate) type LaneKey = (i64, Option<i32>);

/// The lanes and the bound on concurrent work.
#[derive(Debug)]
pub(crate) struct Lanes {
    permits: Arc<Semaphore>,
    state: Mutex<LaneState>,
}

#[derive(Debug, Default)]
struct LaneState {
    /// Each lane's last submitted work: its number, and what completes when it is done.
    tails: HashMap<LaneKey, (u64, oneshot::Receiver<()>)>,
    next: u64,
}

/// A piece of work's place in its lane: on drop (done, failed, panicked or cancelled), the next
/// piece of the lane may go, and a lane with nothing after it is forgotten.
struct Turn {
    lanes: Arc<Lanes>,
    key: LaneKey,
    seq: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        let mut state = self.lanes.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.tails.get(&self.key).is_some_and(|(seq, _)| *seq == self.seq) {
            state.tails.remove(&self.key);
        }
    }
}

impl Lanes {
    /// Lanes running at most `concurrency` pieces of work at once (at least one).
    pub(crate) fn new(concurrency: usize) -> Arc<Lanes> {
        Arc::new(Lanes { permits: Arc::new(Semaphore::new(concurrency.max(1))), state: Mutex::new(LaneState::default()) })
    }

    /// `job`, to run after every piece of work submitted earlier to lane `key` and once a slot is
    /// free. Dropping the returned future lets the lane go on.
    pub(crate) fn ordered<F>(self: &Arc<Self>, key: LaneKey, job: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        let (done, finished) = oneshot::channel();
        let (seq, before) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.next += 1;
            let seq = state.next;
            let before = state.tails.insert(key, (seq, finished)).map(|(_, rx)| rx);
            (seq, before)
        };
        let turn = Turn { lanes: Arc::clone(self), key, seq, done: Some(done) };
        async move {
            let turn = turn;
            if let Some(before) = before {
                // An error means the earlier work was dropped: the lane goes on all the same.
                let _ = before.await;
            }
            // The semaphore is never closed.
            let _permit = turn.lanes.permits.clone().acquire_owned().await;
            let out = job.await;
            drop(turn);
            out
        }
    }

    /// Lanes with work submitted and not yet done (for tests).
    #[cfg(test)]
    fn busy(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tails.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_lane_is_in_order_and_lanes_run_side_by_side() {
        let lanes = Lanes::new(8);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Lane 1's first piece is slow; lane 2 must not wait for it, lane 1's second must.
        for (key, name, ms) in [(1, "1a", 500), (1, "1b", 10), (2, "2a", 10), (2, "2b", 10)] {
            let log = Arc::clone(&log);
            let job = lanes.ordered((key, None), async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap_or_else(|p| p.into_inner()).push(name);
            });
            tasks.push(job);
        }
        // Spawned in reverse: the order is the one of `ordered`, not of spawning.
        let handles: Vec<_> = tasks.into_iter().rev().map(tokio::spawn).collect();
        for h in handles {
            h.await.expect("no panic");
        }
        let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(log, ["2a", "2b", "1a", "1b"]);
        assert_eq!(lanes.busy(), 0, "finished lanes are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_a_dropped_piece_frees_its_lane() {
        let lanes = Lanes::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for chat in 0..6 {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            handles.push(tokio::spawn(lanes.ordered((chat, None), async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            })));
        }
        for h in handles {
            h.await.expect("no panic");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);

        let never = lanes.ordered((9, None), std::future::pending::<()>());
        let next = lanes.ordered((9, None), async { 7 });
        drop(never);
        assert_eq!(next.await, 7);
    }
}
