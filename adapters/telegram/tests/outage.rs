//! A database outage loses no customer message: while the store is unreachable, long polling stays
//! at the update it could not store and asks for it again, and the webhook answers Telegram 503 so
//! that Telegram delivers it again. When the store is back, the message is answered once and is in
//! the transcript. The store is down for longer than the adapter's own retries of one update, so
//! an adapter that gave up on the update (or acknowledged it before storing it) fails these tests.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{TOKEN, answer, en_customer, engine_config, eventually, okpay};
use switchboard_core::Lang;
use switchboard_core::engine::Engine;
use switchboard_core::store::{MemoryStore, NewConversation, Store};
use switchboard_core::types::{Author, ConversationKey};
use switchboard_telegram::{CHANNEL, Telegram, TelegramConfig};
use switchboard_testkit::faulty::Faulty;
use switchboard_testkit::telegram::{FakeTelegram, FakeUser};
use tokio::sync::watch;

/// Long enough for every retry the adapter makes of one update on its own.
const OUTAGE: Duration = Duration::from_secs(5);

fn stopper() -> (watch::Sender<bool>, impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {
    let (stop, rx) = watch::channel(false);
    let shutdown = move || {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    (stop, shutdown)
}

/// The customer's lines in the transcript.
async fn customer_lines(store: &dyn Store, user: &FakeUser) -> Vec<String> {
    let conv = store
        .open_conversation(NewConversation {
            key: ConversationKey { channel: CHANNEL.into(), chat: user.id.to_string() },
            customer_id: String::new(),
            customer_name: String::new(),
            lang: Lang::En,
            at: 0,
        })
        .await
        .expect("the store is up");
    let lines = store.transcript(conv.id, 100).await.expect("the store is up");
    lines.into_iter().filter(|l| l.author == Author::Customer).map(|l| l.text).collect()
}

/// Takes the store down, has `user` write `text`, checks that nothing is answered during the
/// outage, brings the store back and returns once the answer has arrived.
async fn through_an_outage(fake: &FakeTelegram, store: &Faulty<MemoryStore>, user: &FakeUser, text: &str) {
    let before = fake.sent_to(user.id).len();
    store.set_down(true);
    fake.push_text(user, text);
    eventually("the adapter to hit the failing store", || (store.refused() > 3).then_some(())).await;
    // The wait is the scenario: the store stays down for OUTAGE, past the adapter's own retries.
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(fake.sent_to(user.id).len(), before, "nothing can be answered while the store is down");
    store.set_down(false);
    let sent = eventually("the answer after the outage", || fake.sent_to(user.id).get(before).cloned()).await;
    assert_eq!(sent.text, answer("account_locked", Lang::En));
}

#[tokio::test]
async fn polling_keeps_an_update_it_could_not_store() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let engine = Engine::new(store.clone(), okpay(), engine_config());
    let config = TelegramConfig { api_url: Some(fake.api_url()), poll_timeout_secs: 1, ..TelegramConfig::default() };
    let tg = Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects");
    let (stop, shutdown) = stopper();
    let poll = tokio::spawn(Arc::clone(&tg).run_polling(shutdown()));
    let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown()));

    let sam = en_customer(3001);
    fake.push_text(&sam, "hello");
    eventually("the greeting", || fake.sent_to(sam.id).into_iter().next()).await;
    through_an_outage(&fake, &store, &sam, "my account is locked").await;
    assert_eq!(customer_lines(store.as_ref(), &sam).await, ["hello", "my account is locked"], "stored once, in order");
    // And the poller moved on: the next message is answered as usual.
    fake.push_text(&sam, "my account is locked");
    eventually("the next answer", || fake.sent_to(sam.id).get(2).cloned()).await;

    let _ = stop.send(true);
    for t in [poll, outbox] {
        tokio::time::timeout(Duration::from_secs(10), t).await.expect("stops").expect("no panic");
    }
}

#[tokio::test]
async fn the_webhook_answers_telegram_only_once_the_update_is_stored() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
    let url = format!("http://{}/telegram/webhook", listener.local_addr().expect("an address"));
    let store = Arc::new(Faulty::new(MemoryStore::new()));
    let engine = Engine::new(store.clone(), okpay(), engine_config());
    let config = TelegramConfig { webhook_url: Some(url), api_url: Some(fake.api_url()), ..TelegramConfig::default() };
    let tg = Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects");
    let router = tg.webhook("s3cret_Secret").await.expect("the webhook is set");
    let (stop, shutdown) = stopper();
    let sd = shutdown();
    let server = tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(sd).await });
    let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown()));

    let mei = en_customer(3002);
    through_an_outage(&fake, &store, &mei, "my account is locked").await;
    assert_eq!(customer_lines(store.as_ref(), &mei).await, ["my account is locked"]);
    assert_eq!(fake.webhook_deliveries(), 1, "acknowledged once, after it was stored");

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), outbox).await.expect("stops").expect("no panic");
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
