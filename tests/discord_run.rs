//! `switchboard run` with `DISCORD_TOKEN` set serves Discord: the binary, configured only through
//! `SWITCHBOARD_DISCORD__*` variables, connects to the fake Discord on 127.0.0.1, registers the
//! agents' commands in the staff channel's guild, answers a DM, opens a ticket thread, and stops
//! cleanly on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use switchboard_testkit::discord::{self as fake, FakeDiscord, FakeUser};

const STAFF_CHANNEL: u64 = 800_000_000_000_000_001;
const STAFF_ROLE: u64 = 800_000_000_000_000_003;
const TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchboard_run_serves_discord() {
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    let fake = FakeDiscord::bind(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    })
    .await
    .expect("bind the fake Discord");
    fake.add_text_channel(STAFF_CHANNEL, "staff");
    let data = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD_DATA_DIR", data.path())
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env("DISCORD_TOKEN", fake::TOKEN)
        .env("SWITCHBOARD_DISCORD__API_URL", fake.url())
        .env("SWITCHBOARD_DISCORD__STAFF_CHANNEL_ID", STAFF_CHANNEL.to_string())
        .env("SWITCHBOARD_DISCORD__STAFF_ROLE_ID", STAFF_ROLE.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");

    let f = fake.clone();
    fake::eventually("the slash commands registered", TIMEOUT, || {
        (f.commands().len() == switchboard_discord::bot::commands().len() && f.gateway_stats().live).then_some(())
    })
    .await;
    let ann = FakeUser::new(42, "ann");
    let dm = fake.dm_channel(&ann);
    fake.dm(&ann, "my account is locked");
    fake::eventually("the answer", TIMEOUT, || f.posts(dm).into_iter().find(|p| p.text().contains("Forgot password"))).await;
    fake.dm(&ann, "human");
    let thread = fake::eventually("the ticket thread", TIMEOUT, || f.threads().first().cloned()).await;
    assert_eq!(thread.parent, STAFF_CHANNEL);
    // An agent answers once the thread shows its summary: by then the bot knows the thread's
    // ticket (it records the thread before it posts the summary).
    let summary = fake::eventually("the summary embed", TIMEOUT, || f.posts(thread.id).first().cloned()).await;
    assert!(!summary.embeds.is_empty(), "the thread starts with the summary embed");
    // The staff role from the environment is on the allowlist: a staff member's reply reaches ann.
    fake.say(thread.id, &FakeUser::new(7, "alice").with_role(STAFF_ROLE), "hello from alice");
    fake::eventually("the agent's reply", TIMEOUT, || f.posts(dm).into_iter().find(|p| p.text().contains("hello from alice"))).await;

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().expect("it exits");
    let logs = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{logs}");
    assert!(!logs.contains(fake::TOKEN), "the token is never logged");
    assert!(!logs.contains("hello from alice") && !logs.contains("account is locked"), "no message text in the logs: {logs}");
    let _ = stop.send(true);
}
