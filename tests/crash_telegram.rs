//! `switchboard run` stopped while it answers Telegram customers, and started again over the same
//! SQLite data and the same fake Bot API server: every customer gets every answer, in order.
//!
//! The fake answers after a simulated round trip and enforces Telegram's flood limits, so that
//! replies are in flight when the process stops.
//! - Killed with SIGKILL: Telegram has no idempotency key, so a reply the fake accepted but whose
//!   answer the dead process never recorded is sent again by the next process. The README's
//!   promise is checked: at most the one send in flight per chat is repeated (so at most
//!   `delivery.concurrency` in all), right after the restart, never anything else. The restarted
//!   process (the default instance name: host and data folder) takes its own leased chats back at
//!   once: the lease is set far longer than the test's deadline, so only that explains the rest
//!   arriving in time.
//! - Stopped with SIGTERM over a large backlog: the sends in flight finish, no more are taken, the
//!   process exits within `delivery.shutdown_grace` and a little more, and the next start delivers
//!   the rest without repeating anything.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::engine::{Brain, Engine, EngineConfig};
use switchboard_core::pack::Pack;
use switchboard_core::store::MemoryStore;
use switchboard_core::types::{Content, Inbound};
use switchboard_testkit::telegram::{FakeLimits, FakeTelegram, FakeUser, Sent};

const TOKEN: &str = "123456789:AAHcrash-Token_for_tests";
/// How long the binary may take to start (the pack is trained at start, in a debug build).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the answers may take once it runs.
const TIMEOUT: Duration = Duration::from_secs(60);
/// `delivery.concurrency` for the kill test: fewer than the customers, so that the bound on
/// repeats (one per chat in flight) is tighter than "one per chat".
const CONCURRENCY: usize = 8;
/// `delivery.lease_seconds`: far longer than the test waits, so that a restarted process that did
/// not take its own chats back at once would leave them stuck past the deadline.
const LEASE_SECS: u64 = 600;
/// FAQ questions, each answered with one message.
const QUESTIONS: [&str; 4] = [
    "my account is locked",
    "how do I close my account",
    "my transfer has been pending since yesterday",
    "I never received the email to reset my password",
];

/// The tests share two cores and time their stops: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn customer(i: i64) -> FakeUser {
    FakeUser::new(70_000 + i, &format!("customer{i}")).lang("en")
}

/// The questions customer `c` asks.
fn script(c: usize, messages: usize) -> Vec<&'static str> {
    (0..messages).map(|k| QUESTIONS[(c + k) % QUESTIONS.len()]).collect()
}

/// What the bot answers, in order, to each customer (by chat id) asking their `scripts`: worked
/// out by an engine over a memory store with the same pack the binary loads.
async fn expected(customers: &[FakeUser], scripts: &[Vec<&'static str>]) -> BTreeMap<i64, Vec<String>> {
    let pack = Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")).expect("the OKPay pack loads");
    let engine = Engine::with_brain(Arc::new(MemoryStore::new()), Arc::new(Brain::new(pack)), EngineConfig::default());
    let mut out = BTreeMap::new();
    for (c, questions) in customers.iter().zip(scripts) {
        let mut replies = Vec::new();
        for (i, q) in questions.iter().enumerate() {
            let handled = engine
                .handle(Inbound {
                    channel: switchboard_telegram::CHANNEL.into(),
                    conversation: c.id.to_string(),
                    customer_id: c.id.to_string(),
                    customer_name: c.first_name.clone(),
                    content: Content::Text((*q).into()),
                    message_id: format!("{}:{i}", c.id),
                    at: 0,
                    lang_hint: Some("en".into()),
                    deleted: None,
                })
                .await
                .expect("handled");
            replies.extend(handled.replies.into_iter().map(|r| r.text));
        }
        out.insert(c.id, replies);
    }
    out
}

/// A running `switchboard run`, killed if the test ends before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    /// SIGKILL: no shutdown, no lease released, nothing flushed but what SQLite committed.
    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        let status = self.0.wait().expect("it dies");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    }

    /// Waits up to `timeout` for the process to exit.
    async fn exited(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts `switchboard run` against the fake over the SQLite data in `data`, its logs appended
/// to `data/stderr.log`.
fn start(fake: &FakeTelegram, data: &Path, env: &[(&str, String)]) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("stderr.log")).expect("the log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD_DATA_DIR", data)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_DELIVERY__INSTANCE")
        .env_remove("DISCORD_TOKEN")
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("SWITCHBOARD_TELEGRAM__API_URL", fake.api_url())
        .env("SWITCHBOARD_TELEGRAM__POLL_TIMEOUT_SECS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running(cmd.spawn().expect("the binary runs"))
}

/// Waits until the process started with `getme_before` `getMe` calls behind it has connected
/// (its own `getMe`) and polls (a `getUpdates` after it); returns when its `getMe` arrived.
async fn wait_ready(fake: &FakeTelegram, getme_before: usize, logs: &Path) -> Instant {
    let ready = wait_for(START_TIMEOUT, || {
        let me = *fake.call_times("getMe").get(getme_before)?;
        fake.call_times("getUpdates").iter().any(|t| *t > me).then_some(me)
    })
    .await;
    ready.unwrap_or_else(|| panic!("the binary did not start polling: {}", read_logs(logs)))
}

/// Polls `check` every 20 ms until it says `Some`, or `timeout` passes (then `None`).
async fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_logs(logs: &Path) -> String {
    let text = std::fs::read_to_string(logs).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(60).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Messages the fake accepted for each customer's chat, in order.
fn received(fake: &FakeTelegram, customers: &[FakeUser]) -> BTreeMap<i64, Vec<Sent>> {
    let mut out: BTreeMap<i64, Vec<Sent>> = customers.iter().map(|c| (c.id, Vec::new())).collect();
    for s in fake.sent() {
        if let Some(v) = out.get_mut(&s.chat_id) {
            v.push(s);
        }
    }
    out
}

fn count(got: &BTreeMap<i64, Vec<Sent>>) -> usize {
    got.values().map(Vec::len).sum()
}

/// Every chat has at least its expected number of messages.
fn all_arrived(got: &BTreeMap<i64, Vec<Sent>>, want: &BTreeMap<i64, Vec<String>>) -> bool {
    want.iter().all(|(chat, w)| got.get(chat).is_some_and(|g| g.len() >= w.len()))
}

/// A message shown twice: the first copy and the repeat.
#[derive(Debug)]
struct Repeat {
    chat: i64,
    first: Instant,
    again: Instant,
}

/// Checks one chat against what it should have received: every expected message, in order, each
/// possibly followed at once by copies of itself (repeats, returned); anything else fails.
fn check_chat(chat: i64, got: &[Sent], want: &[String]) -> Vec<Repeat> {
    let texts: Vec<&str> = got.iter().map(|s| s.text.as_str()).collect();
    let mut next = 0;
    let mut repeats = Vec::new();
    for (i, s) in got.iter().enumerate() {
        if next < want.len() && s.text == want[next] {
            next += 1;
        } else if next > 0 && s.text == want[next - 1] && texts[i - 1] == s.text {
            repeats.push(Repeat { chat, first: got[i - 1].at, again: s.at });
        } else {
            panic!("chat {chat}: message {i} {:?} is out of order or unexpected;\nwant {want:#?}\ngot {texts:#?}", s.text);
        }
    }
    assert_eq!(next, want.len(), "chat {chat}: lost replies;\nwant {want:#?}\ngot {texts:#?}");
    repeats
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_every_customer_gets_every_answer_in_order_with_at_most_the_sends_in_flight_repeated() {
    let _serial = SERIAL.lock().await;
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let latency = Duration::from_millis(100);
    fake.set_latency(latency);
    fake.set_limits(Some(FakeLimits::telegram()));
    let data = tempfile::tempdir().expect("tempdir");
    let logs = data.path().join("stderr.log");
    let customers: Vec<FakeUser> = (0..30).map(customer).collect();
    let scripts: Vec<Vec<&str>> = customers.iter().map(|_| QUESTIONS[..2].to_vec()).collect();
    let want = expected(&customers, &scripts).await;
    let total: usize = want.values().map(Vec::len).sum();
    let env =
        [("SWITCHBOARD_DELIVERY__CONCURRENCY", CONCURRENCY.to_string()), ("SWITCHBOARD_DELIVERY__LEASE_SECONDS", LEASE_SECS.to_string())];

    let child = start(&fake, data.path(), &env);
    wait_ready(&fake, 0, &logs).await;
    for (c, questions) in customers.iter().zip(&scripts) {
        for q in questions {
            fake.push_text(c, q);
        }
    }
    // Killed once some answers are out and some are not: sends are then in flight. (The check
    // usually fires just after a burst the throttle let go, so every chat being worked has a
    // message the fake accepted and the process has not recorded: the bound is reached.)
    let out = wait_for(TIMEOUT, || {
        let n = count(&received(&fake, &customers));
        (n >= total / 4).then_some(n)
    })
    .await;
    let Some(out) = out else { panic!("no answers: {}", read_logs(&logs)) };
    assert!(out < total, "all {total} answers were out before the kill: nothing was in flight");
    child.kill();
    let before_kill = received(&fake, &customers);
    let killed = Instant::now();

    let getme = fake.call_times("getMe").len();
    let child = start(&fake, data.path(), &env);
    let restarted = wait_ready(&fake, getme, &logs).await;
    let done = wait_for(TIMEOUT, || Some(received(&fake, &customers)).filter(|got| all_arrived(got, &want))).await;
    let Some(got) = done else {
        let missing: Vec<(i64, usize)> = received(&fake, &customers).iter().map(|(c, s)| (*c, s.len())).collect();
        panic!("not every answer arrived after the restart (lease {LEASE_SECS} s): {missing:?}\n{}", read_logs(&logs));
    };
    let finished = Instant::now();
    // Anything still queued would show now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = {
        let later = received(&fake, &customers);
        assert_eq!(count(&later), count(&got), "more messages after every answer arrived");
        later
    };

    let mut repeats = Vec::new();
    for (chat, w) in &want {
        let r = check_chat(*chat, &got[chat], w);
        assert!(r.len() <= 1, "chat {chat}: more than the one send in flight repeated: {r:?}");
        repeats.extend(r);
    }
    // A repeat is a send the dead process had in flight: its first copy went out before the new
    // process connected, the repeat after.
    for r in &repeats {
        assert!(r.first < restarted && r.again > restarted, "a repeat not caused by the crash: {r:?}");
    }
    assert!(repeats.len() <= CONCURRENCY, "{} repeats, but at most {CONCURRENCY} sends are in flight at once", repeats.len());
    // The new process resumed at once: nothing waited for the (long) leases of the dead one.
    let first_resumed = got.values().flatten().filter(|s| s.at > restarted).map(|s| s.at).min();
    let chats_resumed = got.iter().filter(|(chat, s)| s.len() > before_kill[chat].len()).count();
    let logs_text = std::fs::read_to_string(&logs).unwrap_or_default();
    assert!(!logs_text.contains(TOKEN), "the token is never logged");
    eprintln!(
        "killed with {out} of {total} answers out; restart connected {:?} after the kill; {chats_resumed} chats resumed, the first send {:?} after connecting, all done {:?} after connecting; {} repeated ({:?}); {} answered 429",
        restarted.saturating_duration_since(killed),
        first_resumed.map(|t| t - restarted),
        finished - restarted,
        repeats.len(),
        repeats.iter().map(|r| r.chat).collect::<Vec<_>>(),
        fake.rate_limited(),
    );
    child.kill();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_large_backlog_exits_within_the_grace_and_the_rest_is_delivered_after_a_restart() {
    let _serial = SERIAL.lock().await;
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    fake.set_latency(Duration::from_millis(300));
    fake.set_limits(Some(FakeLimits::telegram()));
    let data = tempfile::tempdir().expect("tempdir");
    let logs = data.path().join("stderr.log");
    // 30 chats × 10 answers: Telegram's one message a second per chat makes it a 10 s backlog.
    let customers: Vec<FakeUser> = (0..30).map(customer).collect();
    let scripts: Vec<Vec<&str>> = (0..customers.len()).map(|c| script(c, 10)).collect();
    let want = expected(&customers, &scripts).await;
    let total: usize = want.values().map(Vec::len).sum();
    assert!(total >= 300, "{total} answers");
    let grace = Duration::from_secs(5);
    let env = [("SWITCHBOARD_DELIVERY__SHUTDOWN_GRACE", grace.as_secs().to_string())];

    let mut child = start(&fake, data.path(), &env);
    wait_ready(&fake, 0, &logs).await;
    for (c, questions) in customers.iter().zip(&scripts) {
        for q in questions {
            fake.push_text(c, q);
        }
    }
    let out = wait_for(TIMEOUT, || {
        let n = count(&received(&fake, &customers));
        (n >= 30).then_some(n)
    })
    .await;
    let Some(out) = out else { panic!("no answers: {}", read_logs(&logs)) };
    assert!(out < total / 2, "{out} of {total} answers out before SIGTERM: no backlog");
    let term = Instant::now();
    child.terminate();
    let status = child.exited(grace + Duration::from_secs(10)).await;
    let stopped = term.elapsed();
    let Some(status) = status else {
        panic!("still running {stopped:?} after SIGTERM: {}", read_logs(&logs));
    };
    assert!(status.success(), "{status:?}: {}", read_logs(&logs));
    // The grace, the run command's 2 s beyond it, and a little for the process to end.
    assert!(stopped < grace + Duration::from_secs(4), "exited {stopped:?} after SIGTERM (grace {grace:?})");
    let at_stop = count(&received(&fake, &customers));
    assert!(at_stop < total, "everything was delivered before the process stopped: the backlog was not left queued");

    let getme = fake.call_times("getMe").len();
    let mut child = start(&fake, data.path(), &env);
    let restarted = wait_ready(&fake, getme, &logs).await;
    let done = wait_for(TIMEOUT, || Some(received(&fake, &customers)).filter(|got| all_arrived(got, &want))).await;
    let Some(got) = done else {
        let missing: Vec<(i64, usize)> = received(&fake, &customers).iter().map(|(c, s)| (*c, s.len())).collect();
        panic!("not every answer arrived after the restart: {missing:?}\n{}", read_logs(&logs));
    };
    let finished = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&received(&fake, &customers)), count(&got), "more messages after every answer arrived");
    // A stop is not a crash: the sends in flight finished within the grace and were recorded, no
    // worker took another, so nothing is shown twice.
    let mut repeats = Vec::new();
    for (chat, w) in &want {
        repeats.extend(check_chat(*chat, &got[chat], w));
    }
    assert!(repeats.is_empty(), "a SIGTERM repeated messages: {repeats:?}");
    eprintln!(
        "SIGTERM with {out} of {total} answers out: exited after {stopped:?} with {at_stop} out; the restart delivered the rest in {:?}; {} repeated; {} answered 429",
        finished - restarted,
        repeats.len(),
        fake.rate_limited(),
    );
    child.terminate();
    let status = child.exited(grace + Duration::from_secs(10)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
