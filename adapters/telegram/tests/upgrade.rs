//! Data an earlier version stored is moved at start, on SQLite and PostgreSQL: the staff messages
//! already acted on, which it kept as values (namespace `telegram.staff_done`, never pruned), become
//! handled message ids of `STAFF_PROCESSED`, dated at the upgrade, and a staff message marked so
//! is still not acted on again. (The core's migration 0002 once did this move; the database is
//! otherwise as today's migrations leave it, as 0002 and 0003 do not touch the values.)

#![allow(clippy::unwrap_used)]

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use support::{STAFF, TOKEN, agent, engine_config, eventually, okpay};
use switchboard_core::engine::Engine;
use switchboard_core::store::{SqlStore, Store};
use switchboard_core::types::now_ms;
use switchboard_telegram::{STAFF_PROCESSED, Telegram, TelegramConfig};
use switchboard_testkit::store_suite::fresh_postgres;
use switchboard_testkit::telegram::FakeTelegram;
use tokio::sync::watch;

/// The namespace earlier versions kept the marks in.
const OLD_NS: &str = "telegram.staff_done";

async fn staff_marks_move_at_start(store: Arc<dyn Store>) {
    // As an earlier version left them: the first message of the staff group, and one of another.
    store.set_values(&[(OLD_NS, &format!("{STAFF}:1"), "1"), (OLD_NS, "-1009:7", "1")]).await.expect("the store is up");
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    fake.add_forum(STAFF, "Staff");
    let engine = Engine::new(store.clone(), okpay(), engine_config());
    let config = TelegramConfig { staff_chat_id: Some(STAFF), api_url: Some(fake.api_url()), poll_timeout_secs: 1, webhook_url: None };
    let upgraded_after = now_ms();
    let tg = Telegram::connect(engine.clone(), TOKEN, config.clone()).await.expect("connects");

    for key in [format!("{STAFF}:1"), "-1009:7".to_string()] {
        assert!(store.is_processed(STAFF_PROCESSED, &key).await.unwrap(), "{key} moved to the handled ids");
    }
    assert!(store.values(OLD_NS).await.unwrap().is_empty(), "and the old values are gone");
    assert_eq!(store.prune_processed(upgraded_after).await.unwrap(), 0, "dated at the upgrade, not 1970");
    // Once: connecting again moves nothing and loses nothing.
    drop(Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects again"));
    assert!(store.is_processed(STAFF_PROCESSED, &format!("{STAFF}:1")).await.unwrap());

    // The staff message marked by the earlier version is still skipped; the next one is answered.
    let (stop, rx) = watch::channel(false);
    let shutdown = move || -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    };
    let poll = tokio::spawn(Arc::clone(&tg).run_polling(shutdown()));
    assert_eq!(fake.push_group_text(STAFF, None, &agent(), "/queue"), 1, "the message the old mark names");
    fake.push_group_text(STAFF, None, &agent(), "/queue");
    let general = || fake.sent_to(STAFF).into_iter().filter(|s| s.thread_id.is_none()).count();
    eventually("the answer to the second /queue", || (general() > 0).then_some(())).await;
    eventually("every update handled", || (fake.pending_updates() == 0).then_some(())).await;
    assert_eq!(general(), 1, "the first /queue was handled before the upgrade: not again");
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), poll).await.expect("stops").expect("no panic");
}

#[tokio::test]
async fn sqlite_staff_marks_move_at_start() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let store = SqlStore::open_sqlite(dir.path()).await.expect("SQLite opens");
    staff_marks_move_at_start(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_staff_marks_move_at_start() {
    let store = SqlStore::connect(&fresh_postgres().await).await.expect("PostgreSQL opens");
    staff_marks_move_at_start(Arc::new(store)).await;
}
