//! Webhook mode: the fake Bot API pushes updates to the webhook route mounted in the app's own
//! HTTP server, with Telegram's secret header; a request without the right secret is refused.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{TOKEN, answer, en_customer, engine_config, eventually, okpay};
use switchboard_core::Lang;
use switchboard_core::engine::Engine;
use switchboard_core::store::MemoryStore;
use switchboard_telegram::{Telegram, TelegramConfig};
use switchboard_testkit::telegram::{FakeTelegram, post_json};

#[tokio::test]
async fn webhook_mode_receives_updates_through_the_apps_http_server() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
    let url = format!("http://{}/telegram/webhook", listener.local_addr().expect("an address"));
    let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), engine_config());
    let config = TelegramConfig { webhook_url: Some(url.clone()), api_url: Some(fake.api_url()), ..TelegramConfig::default() };
    let tg = Telegram::connect(engine.clone(), TOKEN, config).await.expect("connects");
    let (stop, rx) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let router = tg.webhook("s3cret_Secret").await.expect("the webhook is set");
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" })).merge(router);
    let sd = shutdown();
    let server = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(sd).await });
    let outbox = tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), shutdown()));
    assert_eq!(fake.webhook().as_deref(), Some(url.as_str()));
    let set = fake.calls("setWebhook");
    assert_eq!(set[0]["secret_token"], "s3cret_Secret");

    let sam = en_customer(2001);
    fake.push_text(&sam, "my account is locked");
    let sent = eventually("the answer", || fake.sent_to(sam.id).into_iter().next()).await;
    assert_eq!(sent.text, answer("account_locked", Lang::En));
    assert_eq!(fake.webhook_deliveries(), 1);

    // Without Telegram's secret, an update is refused and never reaches the engine.
    let forged = serde_json::json!({ "update_id": 1, "message": {
        "message_id": 1, "date": 0, "chat": { "id": 2002, "type": "private", "first_name": "Eve" },
        "from": { "id": 2002, "is_bot": false, "first_name": "Eve" }, "text": "human" } });
    assert_eq!(post_json(&url, Some("wrong"), &forged).await.expect("posted"), 401);
    assert_eq!(post_json(&url, None, &forged).await.expect("posted"), 401);
    // With the secret but not an update: a clear refusal, and the server goes on.
    let not_an_update = serde_json::json!({ "hello": "world" });
    assert_eq!(post_json(&url, Some("s3cret_Secret"), &not_an_update).await.expect("posted"), 400);
    fake.push_text(&sam, "thanks");
    eventually("the next answer", || fake.sent_to(sam.id).get(1).cloned()).await;

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), outbox).await.expect("stops").expect("no panic");
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    // The webhook stays set for other instances.
    assert!(fake.webhook().is_some());
    assert!(fake.sent_to(2002).is_empty());
}
