//! Inbound updates against the fake Bot API: the poller's backoff after a failed `getUpdates` is
//! the one it logs (teloxide's hidden 10 s sleep on a 5xx is not in it), and updates of different
//! chats are handled concurrently while each chat's stay in order, with the stored offset never
//! passing an update that is still being handled. The webhook, too, handles another chat's update
//! while one chat's is slow.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{TOKEN, answer, en_customer, engine_config, eventually, okpay};
use switchboard_core::Lang;
use switchboard_core::engine::Engine;
use switchboard_core::store::MemoryStore;
use switchboard_telegram::{OFFSET_KEY, OFFSET_NS, Telegram, TelegramConfig};
use switchboard_testkit::telegram::{FakeTelegram, Fault, post_json};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

struct Running {
    engine: Arc<Engine>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn run(fake: &FakeTelegram) -> Running {
    let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), engine_config());
    let config = TelegramConfig { api_url: Some(fake.api_url()), poll_timeout_secs: 5, ..TelegramConfig::default() };
    let tg = Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects");
    let (stop, rx) = watch::channel(false);
    let shutdown = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let tasks = vec![
        tokio::spawn(Arc::clone(&tg).run_polling(shutdown())),
        tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown())),
    ];
    Running { engine, stop, tasks }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), t).await.expect("stops in time").expect("no panic");
        }
    }
}

// A current-thread runtime (the default): the scoped log subscriber sees every task.
#[tokio::test]
async fn after_a_server_error_the_poller_waits_what_it_logs() {
    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_ansi(false).with_writer(buf.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    fake.fail("getUpdates", None, Fault::ServerError, 2);
    let running = run(&fake).await;
    let times = eventually("three getUpdates calls", || Some(fake.call_times("getUpdates")).filter(|t| t.len() >= 3)).await;
    // The logged waits: 1 s after the first failure, 2 s after the second.
    let logs = buf.text();
    let logged: Vec<&str> = logs.lines().filter(|l| l.contains("getUpdates failed")).collect();
    assert_eq!(logged.len(), 2, "{logs}");
    assert!(logged[0].contains("wait_ms=1000") && logged[1].contains("wait_ms=2000"), "{logged:#?}");
    // And the measured ones, without teloxide's 10 s on a 5xx.
    let gaps = [times[1] - times[0], times[2] - times[1]];
    for (gap, logged) in gaps.iter().zip([1000, 2000]) {
        let logged = Duration::from_millis(logged);
        assert!(*gap >= logged && *gap < logged + Duration::from_millis(600), "waited {gap:?}, logged {logged:?}");
    }
    // Then polling goes on as usual.
    let sam = en_customer(4001);
    fake.push_text(&sam, "my account is locked");
    let sent = eventually("the answer", || fake.sent_to(sam.id).into_iter().next()).await;
    assert_eq!(sent.text, answer("account_locked", Lang::En));
    running.stop().await;
}

#[tokio::test]
async fn a_slow_chat_holds_up_only_itself_and_the_offset_waits_for_it() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let running = run(&fake).await;
    let slow = en_customer(4101);
    let quick = en_customer(4102);
    fake.push_text(&slow, "hello");
    eventually("the greeting", || fake.sent_to(slow.id).into_iter().next()).await;

    // The slow chat's /help is answered inside its update's handling, and Telegram answers it
    // 500: teloxide holds that request 10 s. The chat's next message waits behind it; the other
    // chat does not.
    fake.fail("sendMessage", Some(slow.id), Fault::ServerError, 1);
    let help_update = fake.next_update_id();
    let start = Instant::now();
    fake.push_text(&slow, "/help");
    fake.push_text(&slow, "my account is locked");
    fake.push_text(&quick, "my account is locked");
    let sent = eventually("the other chat's answer", || fake.sent_to(quick.id).into_iter().next()).await;
    assert!(start.elapsed() < Duration::from_secs(4), "the other chat waited {:?}", start.elapsed());
    assert_eq!(sent.text, answer("account_locked", Lang::En));
    assert_eq!(fake.sent_to(slow.id).len(), 1, "the slow chat's next message waits for its /help");

    // Its update is not handled yet: neither the stored offset nor Telegram's passed it.
    let stored = running.engine.store().get_value(OFFSET_NS, OFFSET_KEY).await.expect("store").unwrap_or_default();
    assert!(stored.parse::<i64>().unwrap_or(0) <= help_update, "stored offset {stored} passed update {help_update}");
    assert!(fake.pending_updates() >= 1);

    // Then the slow chat gets its answers, in order, once each.
    let texts = eventually("the slow chat's answers", || {
        let texts: Vec<String> = fake.sent_to(slow.id).into_iter().map(|s| s.text).collect();
        (texts.len() >= 3).then_some(texts)
    })
    .await;
    assert!(texts[1].contains("human"), "help first: {texts:?}");
    assert_eq!(texts[2], answer("account_locked", Lang::En));
    eventually("every update confirmed", || (fake.pending_updates() == 0).then_some(())).await;
    let stored = running.engine.store().get_value(OFFSET_NS, OFFSET_KEY).await.expect("store");
    assert_eq!(stored, Some(fake.next_update_id().to_string()));
    // Nothing twice: each chat's updates are handled in order, so the answer to one more /help
    // in each chat proves every earlier update of it was handled; with the outbox empty too,
    // nothing is left that could still be sent.
    fake.push_text(&slow, "/help");
    fake.push_text(&quick, "/help");
    let slow_texts = eventually("the slow chat's last /help answer", || {
        let texts: Vec<String> = fake.sent_to(slow.id).into_iter().map(|s| s.text).collect();
        (texts.len() > 3).then_some(texts)
    })
    .await;
    let quick_texts = eventually("the other chat's /help answer", || {
        let texts: Vec<String> = fake.sent_to(quick.id).into_iter().map(|s| s.text).collect();
        (texts.len() > 1).then_some(texts)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !running.engine.store().outbox_pending().await.expect("outbox").is_empty() {
        assert!(Instant::now() < deadline, "timed out waiting for the outbox to empty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(slow_texts[3], texts[1], "{slow_texts:?}");
    assert_eq!(quick_texts[1], texts[1], "{quick_texts:?}");
    assert_eq!(fake.sent_to(slow.id).len(), 4, "nothing twice");
    assert_eq!(fake.sent_to(quick.id).len(), 2, "nothing twice");
    running.stop().await;
}

#[tokio::test]
async fn the_webhook_answers_another_chat_while_one_is_slow() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
    let url = format!("http://{}/telegram/webhook", listener.local_addr().expect("an address"));
    let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), engine_config());
    let config = TelegramConfig { webhook_url: Some(url.clone()), api_url: Some(fake.api_url()), ..TelegramConfig::default() };
    let tg = Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects");
    let router = tg.webhook("s3cret_Secret").await.expect("the webhook is set");
    let (stop, rx) = watch::channel(false);
    let shutdown = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let sd = shutdown();
    let server = tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(sd).await });
    let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown()));

    let slow = en_customer(4401);
    let quick = en_customer(4402);
    fake.push_text(&quick, "hello");
    eventually("the greeting", || fake.sent_to(quick.id).into_iter().next()).await;
    // The fake delivers the slow chat's /help to the webhook; its answer gets a 500, which
    // teloxide holds 10 s.
    fake.fail("sendMessage", Some(slow.id), Fault::ServerError, 1);
    fake.push_text(&slow, "/help");
    eventually("the /help being handled", || fake.calls("sendMessage").iter().any(|c| c["chat_id"] == slow.id).then_some(())).await;
    // Meanwhile Telegram sends the other chat's update on another connection.
    let update = serde_json::json!({ "update_id": 900_001, "message": {
        "message_id": 900, "date": chrono::Utc::now().timestamp(), "text": "my account is locked",
        "chat": { "id": quick.id, "type": "private", "first_name": "Sam" },
        "from": { "id": quick.id, "is_bot": false, "first_name": "Sam", "language_code": "en" } } });
    let start = Instant::now();
    assert_eq!(post_json(&url, Some("s3cret_Secret"), &update).await.expect("posted"), 200);
    let sent = eventually("the other chat's answer", || fake.sent_to(quick.id).get(1).cloned()).await;
    assert!(start.elapsed() < Duration::from_secs(4), "the other chat waited {:?}", start.elapsed());
    assert_eq!(sent.text, answer("account_locked", Lang::En));
    assert!(fake.sent_to(slow.id).is_empty(), "the slow chat is still waiting");
    eventually("the slow chat's help", || fake.sent_to(slow.id).into_iter().next()).await;

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), outbox).await.expect("stops").expect("no panic");
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
