//! Tickets worked across channels, over one engine: a Telegram or a web chat customer's ticket
//! answered in a Discord thread (Discord the agents' desk, the other only a customer channel), and
//! the web console and a Discord thread sharing one owner. Every adapter is the real one; Telegram
//! and Discord run against their fakes on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_core::engine::{Engine, EngineConfig, RetryPolicy};
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, Store};
use switchboard_core::types::TicketStatus;
use switchboard_discord::{Discord, DiscordConfig};
use switchboard_telegram::{Telegram, TelegramConfig};
use switchboard_testkit::discord::{self as dfake, FakeDiscord};
use switchboard_testkit::telegram::{FakeTelegram, FakeUser as TgUser};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TG_TOKEN: &str = "123456789:AAHcross-channel-test";
const STAFF_CHANNEL: u64 = 800_000_000_000_000_001;
const STAFF_ROLE: u64 = 800_000_000_000_000_003;
const TIMEOUT: Duration = Duration::from_secs(20);

fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// One engine whose agents' desk is Discord: the fake Discord with its staff channel, the real
/// Discord adapter connected and ready, and the outbox running. Each test adds its customer
/// channel (`telegram`, the web channel) beside it.
struct Rig {
    stop: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    engine: Arc<Engine>,
    discord: FakeDiscord,
    tasks: Vec<JoinHandle<()>>,
}

impl Rig {
    /// `agents` and `desks` beside the staff role and the Discord desk.
    async fn start(agents: &[&str], desks: &[&str]) -> Rig {
        let (stop, stop_rx) = watch::channel(false);
        let discord = FakeDiscord::bind(stopped(&stop_rx)).await.expect("the fake Discord");
        discord.add_text_channel(STAFF_CHANNEL, "staff");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let pack = Pack::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents/okpay")).expect("the pack");
        let config = EngineConfig {
            agents: std::iter::once(format!("discord-role:{STAFF_ROLE}")).chain(agents.iter().map(|a| a.to_string())).collect(),
            desks: std::iter::once("discord").chain(desks.iter().copied()).map(String::from).collect(),
            retry: RetryPolicy { base: Duration::from_millis(20), max: Duration::from_millis(200), max_attempts: 20 },
            ..EngineConfig::default()
        };
        let engine = Engine::new(store, pack, config);
        let dc_config = DiscordConfig {
            staff_channel_id: Some(STAFF_CHANNEL),
            staff_role_id: Some(STAFF_ROLE),
            support_channel_ids: Vec::new(),
            staff_guild_id: None,
            api_url: Some(discord.url()),
        };
        let adapter = Discord::connect(engine.clone(), dfake::TOKEN, dc_config).await.expect("Discord connects");
        let mut tasks = vec![tokio::spawn(Arc::clone(&engine).run_outbox(Duration::from_millis(25), stopped(&stop_rx)))];
        tasks.extend(adapter.spawn(stopped(&stop_rx)).expect("the Discord tasks"));
        dfake::eventually("Discord ready", TIMEOUT, || {
            (discord.gateway_stats().live && discord.commands().len() == switchboard_discord::bot::commands().len()).then_some(())
        })
        .await;
        Rig { stop, stop_rx, engine, discord, tasks }
    }

    /// The fake Telegram and the real Telegram adapter polling it, as a customer channel.
    async fn telegram(&mut self) -> FakeTelegram {
        let fake = FakeTelegram::start(TG_TOKEN).await.expect("the fake Telegram");
        let config = TelegramConfig { staff_chat_id: None, api_url: Some(fake.api_url()), poll_timeout_secs: 1, webhook_url: None };
        let tg = Telegram::connect(self.engine.clone(), TG_TOKEN, config).await.expect("Telegram connects");
        self.tasks.push(tokio::spawn(tg.run_polling(stopped(&self.stop_rx))));
        fake
    }

    async fn shut_down(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_customer_is_answered_from_a_discord_thread() {
    let mut rig = Rig::start(&[], &[]).await;
    let telegram_fake = rig.telegram().await;
    let (discord, engine) = (&rig.discord, &rig.engine);

    // The customer asks for a person on Telegram: the ticket opens as a thread on Discord.
    let customer = TgUser::new(5001, "小明").lang("zh-hans");
    telegram_fake.push_text(&customer, "转人工");
    let thread = dfake::eventually("the ticket thread on Discord", TIMEOUT, || discord.threads().first().cloned()).await;
    let summary = dfake::eventually("the summary", TIMEOUT, || discord.posts(thread.id).first().cloned()).await;
    let channel_field = summary.embeds[0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Channel").unwrap()["value"].clone();
    assert_eq!(channel_field, json!("telegram"));
    let tf = telegram_fake.state().clone();
    dfake::eventually("the queue message on Telegram", TIMEOUT, || tf.sent_to(customer.id).into_iter().find(|s| s.text.contains("排在第")))
        .await;

    // The customer writes again on Telegram: it shows in the Discord thread.
    telegram_fake.push_text(&customer, "我的转账还没到账");
    dfake::eventually("the customer's message in the thread", TIMEOUT, || {
        discord.posts(thread.id).into_iter().find(|p| p.text().contains("我的转账还没到账"))
    })
    .await;

    // A Discord agent answers in the thread: the customer reads it on Telegram.
    let alice = dfake::FakeUser::new(451, "alice").with_role(STAFF_ROLE);
    discord.say(thread.id, &alice, "您好,我是 Alice,正在为您查询。");
    dfake::eventually("the agent's answer on Telegram", TIMEOUT, || {
        tf.sent_to(customer.id).into_iter().find(|s| s.text.contains("正在为您查询"))
    })
    .await;
    let texts: Vec<String> = tf.sent_to(customer.id).into_iter().map(|s| s.text).collect();
    assert!(texts.iter().any(|t| t.contains("alice") && t.contains("已接入")), "{texts:?}");

    // Closing from Discord hands the Telegram customer back to the bot.
    let close = discord.slash(thread.id, &alice, "close", &[]);
    dfake::eventually("the close answered", TIMEOUT, || discord.response(close)).await;
    dfake::eventually("back with the bot on Telegram", TIMEOUT, || {
        tf.sent_to(customer.id).into_iter().find(|s| s.text.contains("回到了智能助手"))
    })
    .await;
    dfake::eventually("the thread archived", TIMEOUT, || discord.threads().into_iter().find(|t| t.archived && t.locked)).await;
    let tickets = engine.store().tickets(&[TicketStatus::Closed]).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].key.channel, "telegram");

    rig.shut_down().await;
}

/// A web chat customer's ticket worked in a Discord thread: the web channel shows the agent's
/// reply live on the customer's socket, and the close hands them back to the bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_customer_is_answered_from_a_discord_thread() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let mut rig = Rig::start(&[], &[]).await;
    let web = switchboard_web::Web::start(
        rig.engine.clone(),
        switchboard_web::WebConfig::default(),
        Some("cross-channel secret, 32+ chars long"),
        rig.stop_rx.clone(),
    )
    .await
    .expect("the web channel");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = web.router();
    let serving = stopped(&rig.stop_rx);
    rig.tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(serving).await;
    }));
    let (discord, engine) = (&rig.discord, &rig.engine);

    // The customer asks for a person in the web chat.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/chat/ws")).await.expect("the chat socket");
    let frame = |v: serde_json::Value| Message::Text(v.to_string().into());
    ws.send(frame(json!({"type": "hello", "token": null, "after": 0, "lang": "en-GB"}))).await.unwrap();
    ws.send(frame(json!({"type": "send", "id": "w1", "text": "I want to talk to a human"}))).await.unwrap();
    let thread = dfake::eventually("the ticket thread on Discord", TIMEOUT, || discord.threads().first().cloned()).await;
    let summary = dfake::eventually("the summary", TIMEOUT, || discord.posts(thread.id).first().cloned()).await;
    let channel_field = summary.embeds[0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Channel").unwrap()["value"].clone();
    assert_eq!(channel_field, json!("web"));

    // A Discord agent answers in the thread; the web page gets it without asking; closing
    // returns the customer to the bot.
    let alice = dfake::FakeUser::new(451, "alice").with_role(STAFF_ROLE);
    discord.say(thread.id, &alice, "Hello from Discord, I am on it.");
    let mut seen = Vec::new();
    let mut wait_for = async |want: &str, seen: &mut Vec<(String, String)>| {
        tokio::time::timeout(TIMEOUT, async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let f: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    if f["type"] == "line" {
                        let line = (f["from"].as_str().unwrap().to_string(), f["text"].as_str().unwrap().to_string());
                        seen.push(line.clone());
                        if line.1.contains(want) {
                            return line;
                        }
                    }
                }
            }
            panic!("the socket closed");
        })
        .await
        .unwrap_or_else(|_| panic!("{want:?} within {TIMEOUT:?}: saw {seen:?}"))
    };
    let reply = wait_for("Hello from Discord", &mut seen).await;
    assert_eq!(reply.0, "agent");
    let close = discord.slash(thread.id, &alice, "close", &[]);
    dfake::eventually("the close answered", TIMEOUT, || discord.response(close)).await;
    let back = wait_for("back with", &mut seen).await;
    assert_eq!(back.0, "bot", "{seen:?}");
    let tickets = engine.store().tickets(&[TicketStatus::Closed]).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].key.channel, "web");

    rig.shut_down().await;
}

/// One owner between the web console and a Discord thread: a Telegram customer's ticket claimed
/// in the browser is refused to a Discord agent (a message in the thread and `/claim`), the
/// console's reply reaches Telegram, and once released the Discord agent's claim is refused to the
/// console in turn. Every adapter is the real one, over one engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_a_discord_thread_share_one_owner() {
    use axum::http::StatusCode;
    use switchboard_testkit::console::{Browser, password_hash};

    const PASSWORD: &str = "alice-Pa55word-for-the-console";
    let mut rig = Rig::start(&["web:alice"], &["web"]).await;
    let telegram_fake = rig.telegram().await;
    let web_config = switchboard_web::WebConfig {
        accounts: vec![switchboard_web::config::Account { name: "alice".into(), password_hash: password_hash(PASSWORD) }],
        ..Default::default()
    };
    let web =
        switchboard_web::Web::start(rig.engine.clone(), web_config, Some("cross-channel secret, 32+ chars long"), rig.stop_rx.clone())
            .await
            .expect("the web channel");
    let app = web.router();
    let discord = &rig.discord;

    // The console in alice's browser: signed in, with its cookie and CSRF token.
    let mut alice = Browser::default();
    let signed_in = alice.sign_in(&app, "alice", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);

    // A Telegram customer asks for a person: the ticket is a thread on Discord and in the console's queue.
    let customer = TgUser::new(5002, "Tess").lang("en");
    telegram_fake.push_text(&customer, "I want to talk to a human");
    let thread = dfake::eventually("the ticket thread on Discord", TIMEOUT, || discord.threads().first().cloned()).await;
    let queue = alice.get(&app, "/console/api/queue").await.json;
    let id = queue["tickets"][0]["id"].as_i64().expect("the ticket in the console's queue");
    assert_eq!(queue["tickets"][0]["channel"], "telegram");
    let path = |action: &str| format!("/console/api/tickets/{id}/{action}");

    // alice claims it in the browser: the Discord thread is told, and a Discord agent can neither
    // answer in the thread nor claim it.
    let r = alice.post(&app, &path("claim"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    dfake::eventually("the claim told in the thread", TIMEOUT, || {
        discord.posts(thread.id).into_iter().find(|p| p.text().contains("alice** claimed this ticket"))
    })
    .await;
    let bob = dfake::FakeUser::new(452, "bob").with_role(STAFF_ROLE);
    discord.say(thread.id, &bob, "bob from Discord here");
    let refusal = dfake::eventually("the refusal in the thread", TIMEOUT, || {
        discord.posts(thread.id).into_iter().find(|p| p.text().contains("Not sent to the customer"))
    })
    .await;
    assert!(refusal.text().contains("web:alice"), "{}", refusal.text());
    let claim = discord.slash(thread.id, &bob, "claim", &[]);
    let answer = dfake::eventually("the /claim answered", TIMEOUT, || discord.response(claim)).await;
    assert!(answer["data"]["content"].as_str().is_some_and(|c| c.contains("already with") && c.contains("web:alice")), "{answer}");

    // alice's reply reaches the customer on Telegram; bob's never did.
    let r = alice.post(&app, &path("reply"), json!({"text": "Hello Tess, Alice from the console."})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let tf = telegram_fake.state().clone();
    dfake::eventually("the console's reply on Telegram", TIMEOUT, || {
        tf.sent_to(customer.id).into_iter().find(|s| s.text.contains("Alice from the console"))
    })
    .await;
    assert!(!tf.sent_to(customer.id).iter().any(|s| s.text.contains("bob from Discord")));

    // alice releases it; bob claims it on Discord; now the console is refused and shows bob.
    let r = alice.post(&app, &path("release"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let claim = discord.slash(thread.id, &bob, "claim", &[]);
    let answer = dfake::eventually("bob's /claim answered", TIMEOUT, || discord.response(claim)).await;
    assert!(!answer["data"]["content"].as_str().unwrap_or_default().contains("⚠️"), "{answer}");
    let shown = alice.get(&app, &format!("/console/api/tickets/{id}")).await.json;
    assert_eq!(shown["ticket"]["holder"]["id"], format!("discord:{}", bob.id), "{shown}");
    let r = alice.post(&app, &path("reply"), json!({"text": "alice again"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.json["error"].as_str().is_some_and(|e| e.contains("is with")), "{}", r.text);
    assert_eq!(alice.post(&app, &path("close"), json!({})).await.status, StatusCode::CONFLICT);
    assert!(!tf.sent_to(customer.id).iter().any(|s| s.text.contains("alice again")));

    // bob closes it from Discord: the console sees it closed and the customer is back with the bot.
    let close = discord.slash(thread.id, &bob, "close", &[]);
    dfake::eventually("the close answered", TIMEOUT, || discord.response(close)).await;
    dfake::eventually("back with the bot on Telegram", TIMEOUT, || {
        tf.sent_to(customer.id).into_iter().find(|s| s.text.contains("back with"))
    })
    .await;
    let shown = alice.get(&app, &format!("/console/api/tickets/{id}")).await.json;
    assert_eq!(shown["ticket"]["status"], "closed", "{shown}");
    let history: Vec<(String, String)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["what"].as_str().unwrap().to_string(), e["agent"]["id"].as_str().unwrap_or_default().to_string()))
        .collect();
    let bob_id = format!("discord:{}", bob.id);
    let want: Vec<(String, String)> =
        [("opened", ""), ("claimed", "web:alice"), ("released", "web:alice"), ("claimed", &bob_id), ("closed", &bob_id)]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(history, want);

    rig.shut_down().await;
}
