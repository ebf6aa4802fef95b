//! `switchboard run` killed with SIGKILL while it answers Discord customers, and started again
//! over the same SQLite data: every customer gets every answer, once, in order. The fake Discord
//! answers slowly (a simulated round trip) and enforces Discord's rate limits, so that replies are
//! in flight when the process dies. A reply that Discord created but whose answer the dead process
//! never read is sent again by the next process with the same nonce, and the fake (like Discord,
//! with `enforce_nonce`) answers the message it has instead of showing another; questions the dead
//! process never read are read at the next gateway session (the adapter's catch-up).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_testkit::discord::{self as fake, FakeDiscord, FakeUser, Posted, RateLimits};

const STAFF_CHANNEL: u64 = 800_000_000_000_000_001;
const STAFF_ROLE: u64 = 800_000_000_000_000_003;
const CUSTOMERS: u64 = 30;
/// How long the binary may take to start (the pack is trained at start, in a debug build).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the answers may take once it runs.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Each round: two questions per customer, and a word only the answer to each contains.
const ROUNDS: [[(&str, &str); 2]; 2] = [
    [("my account is locked", "Forgot password"), ("how do I close my account", "confirmation email")],
    [("my transfer has been pending since yesterday", "transaction history"), ("I never received the email to reset my password", "spam")],
];

/// Starts `switchboard run` against the fake over the SQLite data in `data`, its logs appended
/// to `data/stderr.log`.
fn start(fake: &FakeDiscord, data: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("stderr.log")).expect("the log file");
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD_DATA_DIR", data)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_DELIVERY__INSTANCE")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env("DISCORD_TOKEN", fake::TOKEN)
        .env("SWITCHBOARD_DISCORD__API_URL", fake.url())
        .env("SWITCHBOARD_DISCORD__STAFF_CHANNEL_ID", STAFF_CHANNEL.to_string())
        .env("SWITCHBOARD_DISCORD__STAFF_ROLE_ID", STAFF_ROLE.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the binary runs")
}

/// Waits until the process's gateway session is live (a new IDENTIFY since `identifies`) and its
/// commands are registered.
async fn wait_ready(fake: &FakeDiscord, identifies: usize, logs: &Path) {
    let f = fake.clone();
    let ready = wait_for(START_TIMEOUT, || {
        let g = f.gateway_stats();
        (g.live && g.identifies > identifies && f.commands().len() == switchboard_discord::bot::commands().len()).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the binary did not connect: {}", read_logs(logs));
}

/// Polls `check` every 20 ms until it says `Some`, or `timeout` passes (then `None`).
async fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
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

/// SIGKILL: no shutdown, no lease released, nothing flushed but what SQLite committed.
fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("it dies");
    assert!(!status.success(), "killed, not exited: {status:?}");
}

/// The answers in each DM, as read.
fn answers(fake: &FakeDiscord, dms: &[u64]) -> Vec<Vec<Posted>> {
    dms.iter().map(|&dm| fake.posts(dm)).collect()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_every_customer_gets_every_answer_once_and_in_order() {
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    let fake = FakeDiscord::bind(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    })
    .await
    .expect("bind the fake Discord");
    fake.add_text_channel(STAFF_CHANNEL, "staff");
    fake.set_latency(Duration::from_millis(150));
    fake.set_rate_limits(Some(RateLimits::DISCORD));
    let data = tempfile::tempdir().expect("tempdir");
    let logs = data.path().join("stderr.log");
    let customers: Vec<FakeUser> = (0..CUSTOMERS).map(|i| FakeUser::new(5000 + i, &format!("customer{i}"))).collect();
    let dms: Vec<u64> = customers.iter().map(|c| fake.dm_channel(c)).collect();

    let mut child = start(&fake, data.path());
    wait_ready(&fake, 0, &logs).await;
    let mut kills = 0;
    for (round, questions) in ROUNDS.iter().enumerate() {
        let before: usize = answers(&fake, &dms).iter().map(Vec::len).sum();
        for (question, _) in questions {
            for c in &customers {
                fake.dm(c, question);
            }
        }
        let total = before + 2 * customers.len();
        // Killed once some answers of the round are out and some are not. A DM the process has
        // never handled a message in is one it cannot find again after a restart (Discord lists no
        // DMs; only a live gateway event tells of them): so in the first round the kill waits until
        // every customer has an answer, which shows their DM was handled.
        let f = fake.clone();
        let in_flight = wait_for(TIMEOUT, || {
            let posted = answers(&f, &dms);
            let n: usize = posted.iter().map(Vec::len).sum();
            let every_dm_known = round > 0 || posted.iter().all(|p| !p.is_empty());
            (n > before + 2 && every_dm_known).then_some(n)
        })
        .await;
        let Some(n) = in_flight else { panic!("no answers in round {round}: {}", read_logs(&logs)) };
        if n < total {
            kill(child);
            kills += 1;
            let stats = fake.rest_stats();
            eprintln!("round {round}: killed with {} of {} answers out ({stats:?})", n - before, total - before);
            let restarted = Instant::now();
            let identifies = fake.gateway_stats().identifies;
            child = start(&fake, data.path());
            wait_ready(&fake, identifies, &logs).await;
            let f = fake.clone();
            let done = wait_for(TIMEOUT, || (answers(&f, &dms).iter().map(Vec::len).sum::<usize>() >= total).then_some(())).await;
            if done.is_none() {
                let missing: Vec<usize> = answers(&fake, &dms).iter().map(Vec::len).collect();
                panic!("round {round}: not every answer came after the restart: {missing:?}\n{}", read_logs(&logs));
            }
            eprintln!("round {round}: every answer out {:?} after the restart", restarted.elapsed());
        } else {
            eprintln!("round {round}: every answer came before the kill; not killed");
        }
        let f = fake.clone();
        let done = wait_for(TIMEOUT, || (answers(&f, &dms).iter().map(Vec::len).sum::<usize>() >= total).then_some(())).await;
        assert!(done.is_some(), "round {round}: the answers did not all come: {}", read_logs(&logs));
    }
    assert!(kills >= 1, "the process was never killed with answers in flight");

    // Let anything still wrongly queued come out before looking.
    let f = fake.clone();
    let extra = wait_for(Duration::from_secs(2), || {
        (answers(&f, &dms).iter().map(Vec::len).sum::<usize>() > ROUNDS.len() * 2 * customers.len()).then_some(())
    })
    .await;
    let expected: Vec<&str> = ROUNDS.iter().flatten().map(|(_, answer)| *answer).collect();
    for (c, posted) in customers.iter().zip(answers(&fake, &dms)) {
        let texts: Vec<String> = posted.iter().map(Posted::text).collect();
        assert_eq!(texts.len(), expected.len(), "{}: every answer once: {texts:#?}", c.name);
        for (text, marker) in texts.iter().zip(&expected) {
            assert!(text.contains(marker), "{}: in order, {marker:?} expected: {texts:#?}", c.name);
        }
        let mut nonces: Vec<&str> = posted.iter().filter_map(|p| p.nonce.as_deref()).collect();
        assert_eq!(nonces.len(), posted.len(), "{}: every reply carries its nonce", c.name);
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(nonces.len(), posted.len(), "{}: no reply shown twice", c.name);
    }
    assert!(extra.is_none(), "nothing more came afterwards");
    let stats = fake.rest_stats();
    eprintln!("{kills} kill(s); {stats:?}");

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().expect("it exits");
    assert!(status.success(), "{}", read_logs(&logs));
    let _ = stop.send(true);
}
