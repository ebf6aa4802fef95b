//! Trying again what failed only because storage did not answer: an adapter that got a customer's
//! message keeps it and hands it to the engine again, with growing pauses, until it is stored,
//! the adapter stops, or its patience runs out; anything else is not retried. Every adapter's
//! inbound path uses this one loop.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How long to keep trying.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// The first pause.
    pub first: Duration,
    /// The longest pause (each one doubles up to it).
    pub max: Duration,
    /// Give up after this many attempts (`None`: no limit).
    pub attempts: Option<u32>,
    /// Give up once this much time has gone by (`None`: no limit).
    pub for_at_most: Option<Duration>,
}

/// How trying again ended without success.
#[derive(Debug)]
pub enum Unstored<E> {
    /// The adapter is stopping: the work is left for the next start (or the platform's redelivery).
    Stopped,
    /// Storage kept failing past the patience; the last error.
    GaveUp(E),
    /// A failure trying again will not fix.
    Failed(E),
}

/// Runs `op` until it succeeds, retrying while `is_transient` says the failure may pass, with
/// pauses from `patience`, and stopping early when `stop` turns true. `on_retry` is told each
/// failure that will be retried, its attempt number and the pause before the next one (for logs).
pub async fn until_stored<T, E, F, Fut>(
    patience: Patience,
    mut stop: Option<watch::Receiver<bool>>,
    is_transient: impl Fn(&E) -> bool,
    mut op: F,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Result<T, Unstored<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut wait = patience.first;
    let mut attempt: u32 = 1;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !is_transient(&e) => return Err(Unstored::Failed(e)),
            Err(e) => e,
        };
        if patience.attempts.is_some_and(|n| attempt >= n) || patience.for_at_most.is_some_and(|d| started.elapsed() + wait >= d) {
            return Err(Unstored::GaveUp(e));
        }
        let stopping = stop.as_ref().is_some_and(|s| *s.borrow());
        if stopping {
            return Err(Unstored::Stopped);
        }
        on_retry(&e, attempt, wait);
        match stop.as_mut() {
            Some(s) => {
                tokio::select! {
                    stopped = async { s.wait_for(|s| *s).await.is_ok() } => {
                        if stopped {
                            return Err(Unstored::Stopped);
                        }
                        // Nobody can stop it any more: just wait.
                        tokio::time::sleep(wait).await;
                    }
                    () = tokio::time::sleep(wait) => {}
                }
            }
            None => tokio::time::sleep(wait).await,
        }
        wait = (wait * 2).min(patience.max);
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn patience() -> Patience {
        Patience { first: Duration::from_millis(10), max: Duration::from_millis(40), attempts: None, for_at_most: None }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_with_growing_pauses_until_it_works() {
        let calls = AtomicU32::new(0);
        let mut pauses = Vec::new();
        let got: Result<u32, Unstored<&str>> = until_stored(
            patience(),
            None,
            |e: &&str| *e == "down",
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 4 { Err("down") } else { Ok(n) }
            },
            |_, attempt, wait| pauses.push((attempt, wait.as_millis())),
        )
        .await;
        assert_eq!(got.ok(), Some(4));
        assert_eq!(pauses, [(1, 10), (2, 20), (3, 40), (4, 40)], "doubling, capped");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_on_other_failures_on_the_limits_and_on_stop() {
        let failed: Result<(), _> =
            until_stored(patience(), None, |e: &&str| *e == "down", || async { Err("bad input") }, |_, _, _| {}).await;
        assert!(matches!(failed, Err(Unstored::Failed("bad input"))));
        let limited = Patience { attempts: Some(3), ..patience() };
        let calls = AtomicU32::new(0);
        let gave_up: Result<(), _> = until_stored(
            limited,
            None,
            |_: &&str| true,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("down")
            },
            |_, _, _| {},
        )
        .await;
        assert!(matches!(gave_up, Err(Unstored::GaveUp("down"))));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let timed = Patience { for_at_most: Some(Duration::from_millis(50)), ..patience() };
        let gave_up: Result<(), _> = until_stored(timed, None, |_: &&str| true, || async { Err("down") }, |_, _, _| {}).await;
        assert!(matches!(gave_up, Err(Unstored::GaveUp("down"))));

        let (tx, rx) = watch::channel(false);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let _ = tx.send(true);
        });
        let stopped: Result<(), _> = until_stored(patience(), Some(rx), |_: &&str| true, || async { Err("down") }, |_, _, _| {}).await;
        assert!(matches!(stopped, Err(Unstored::Stopped)));
        stopper.await.unwrap();
    }
}
