//! Telegram's 429s reach the engine's outbox as it needs them: a customer chat's as
//! `RateLimited` (that chat waits), the staff group's as `Paused` (one limit covers every ticket's
//! topic, so the whole desk waits). And the adapter's pacing keeps within the limits the fake
//! enforces.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{STAFF, TOKEN, en_customer, engine_config, okpay};
use switchboard_core::ChannelError;
use switchboard_core::Lang;
use switchboard_core::channel::{AgentDesk, Channel, TicketView};
use switchboard_core::engine::Engine;
use switchboard_core::store::MemoryStore;
use switchboard_core::types::{ConversationKey, DeskNotice, HandoffReason, Priority, Reply, Ticket, TicketStatus};
use switchboard_telegram::{Telegram, TelegramConfig};
use switchboard_testkit::telegram::{FakeLimits, FakeTelegram, Fault};

async fn connect(fake: &FakeTelegram) -> Arc<Telegram> {
    let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), engine_config());
    let config = TelegramConfig { staff_chat_id: Some(STAFF), api_url: Some(fake.api_url()), ..TelegramConfig::default() };
    Telegram::connect(engine, TOKEN, config).await.expect("connects")
}

fn view(id: i64) -> TicketView {
    TicketView {
        ticket: Ticket {
            id,
            conversation_id: id,
            key: ConversationKey { channel: "telegram".into(), chat: "4201".into() },
            customer_id: "4201".into(),
            customer_name: "Sam".into(),
            lang: Lang::En,
            reason: HandoffReason::CustomerRequest,
            priority: Priority::Normal,
            fields: vec![],
            status: TicketStatus::Queued,
            agent: None,
            created_at: 0,
            updated_at: 0,
        },
        recent: vec![],
    }
}

#[tokio::test]
async fn a_429_on_a_customer_chat_is_rate_limited_and_on_the_staff_group_paused() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    fake.add_forum(STAFF, "Staff");
    let sam = en_customer(4201);
    fake.push_text(&sam, "hi");
    let tg = connect(&fake).await;

    fake.fail("sendMessage", Some(sam.id), Fault::RateLimited(1), 1);
    let e = tg.channel().send("4201", &Reply::text("hello")).await.expect_err("a 429");
    assert!(matches!(e, ChannelError::RateLimited(d) if d == Duration::from_secs(1)), "{e:?}");

    let desk = tg.desk().expect("a desk");
    let note = DeskNotice::Note { agent: "Alice".into(), text: "call back".into() };
    desk.notify(&view(1), &note).await.expect("the topic opens and the note is posted");
    fake.fail("sendMessage", Some(STAFF), Fault::RateLimited(2), 1);
    let e = desk.notify(&view(1), &note).await.expect_err("a 429 on the group");
    assert!(matches!(e, ChannelError::Paused(d) if d == Duration::from_secs(2)), "the whole desk waits: {e:?}");
    fake.fail("createForumTopic", Some(STAFF), Fault::RateLimited(1), 1);
    let e = desk.notify(&view(2), &note).await.expect_err("a 429 on the group");
    assert!(matches!(e, ChannelError::Paused(d) if d == Duration::from_secs(1)), "{e:?}");
    // Afterwards (the throttle waits out the 429 itself) both go through.
    tg.channel().send("4201", &Reply::text("hello")).await.expect("sent");
    desk.notify(&view(2), &note).await.expect("posted");
    assert_eq!(fake.rate_limited(), 0, "only the injected 429s");
}

#[tokio::test]
async fn sends_keep_within_telegrams_limits() {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    fake.add_forum(STAFF, "Staff");
    fake.set_limits(Some(FakeLimits::telegram()));
    let tg = connect(&fake).await;
    let sam = en_customer(4301);
    fake.push_text(&sam, "hi");
    // Five messages to one chat at once, beyond its burst of 3: paced, none refused.
    let channel = tg.channel();
    let start = Instant::now();
    for i in 0..5 {
        channel.send("4301", &Reply::text(format!("part {i}"))).await.expect("sent");
    }
    assert_eq!(fake.rate_limited(), 0);
    let texts: Vec<String> = fake.sent_to(sam.id).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, (0..5).map(|i| format!("part {i}")).collect::<Vec<_>>());
    assert!(start.elapsed() >= Duration::from_secs(3), "one a second: {:?}", start.elapsed());
}
