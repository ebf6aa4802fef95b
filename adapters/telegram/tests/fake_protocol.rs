//! The fake Bot API server against the real teloxide client: every method the adapter uses, the
//! update kinds it reads, long-polling semantics and the error envelopes (429 `retry_after`, 403,
//! 5xx), so the end-to-end suite runs against something that behaves like Telegram; and, for
//! benchmarks, its simulated round trip and its flood limits answered with real 429s.

mod support;

use std::time::{Duration, Instant};

use support::eventually;
use switchboard_testkit::telegram::{BOT_USERNAME, FakeLimits, FakeTelegram, FakeUser, Fault};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MediaKind, MessageId, MessageKind, ThreadId, UpdateKind};
use teloxide::{ApiError, RequestError};

const TOKEN: &str = "424242:fake-Protocol_token";

async fn fake_and_bot() -> (FakeTelegram, Bot) {
    let fake = FakeTelegram::start(TOKEN).await.expect("the fake starts");
    let url = url::Url::parse(&fake.api_url()).expect("a URL");
    (fake, Bot::new(TOKEN).set_api_url(url))
}

#[tokio::test]
async fn get_me_and_a_wrong_token() {
    let (fake, bot) = fake_and_bot().await;
    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.user.username.as_deref(), Some(BOT_USERNAME));
    assert!(me.user.is_bot);
    let wrong = Bot::new("1:wrong").set_api_url(url::Url::parse(&fake.api_url()).expect("a URL"));
    let e = wrong.get_me().await.expect_err("a wrong token is refused");
    assert!(matches!(e, RequestError::Api(ApiError::InvalidToken)), "{e:?}");
}

#[tokio::test]
async fn updates_of_every_kind_the_adapter_reads_deserialize() {
    let (fake, bot) = fake_and_bot().await;
    let user = FakeUser::new(501, "Mei").lang("zh-hans");
    let agent = FakeUser::new(601, "Agent");
    fake.push_text(&user, "/start");
    fake.push_photo(&user, Some("look"));
    fake.push_sticker(&user);
    let sent = bot
        .send_message(ChatId(501), "pick one")
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("A", "intent:a")]]))
        .await
        .expect("sendMessage");
    let cb = fake.push_callback(&user, i64::from(sent.id.0), "intent:a");
    fake.add_forum(-100777, "Staff");
    let topic = bot.create_forum_topic(ChatId(-100777), "#1 Mei").await.expect("createForumTopic");
    fake.push_group_text(-100777, Some(i64::from(topic.thread_id.0.0)), &agent, "hello");

    let updates = bot.get_updates().timeout(0).await.expect("getUpdates");
    assert_eq!(updates.len(), 5);
    assert!(updates.iter().all(|u| !matches!(u.kind, UpdateKind::Error(_))), "{updates:#?}");
    let UpdateKind::Message(m) = &updates[0].kind else { panic!("a message") };
    assert_eq!((m.text(), m.chat.is_private()), (Some("/start"), true));
    assert_eq!(m.from.as_ref().and_then(|f| f.language_code.as_deref()), Some("zh-hans"));
    let UpdateKind::Message(m) = &updates[1].kind else { panic!("a message") };
    assert!(matches!(&m.kind, MessageKind::Common(c) if matches!(c.media_kind, MediaKind::Photo(_))));
    let UpdateKind::Message(m) = &updates[2].kind else { panic!("a message") };
    assert!(matches!(&m.kind, MessageKind::Common(c) if matches!(c.media_kind, MediaKind::Sticker(_))));
    let UpdateKind::CallbackQuery(q) = &updates[3].kind else { panic!("a callback query") };
    assert_eq!((q.id.0.as_str(), q.data.as_deref()), (cb.as_str(), Some("intent:a")));
    assert!(q.message.as_ref().is_some_and(|m| m.chat().is_private()));
    let UpdateKind::Message(m) = &updates[4].kind else { panic!("a message") };
    assert!(m.is_topic_message && m.chat.is_supergroup());
    assert_eq!(m.thread_id, Some(topic.thread_id));

    bot.answer_callback_query(q.id.clone()).await.expect("answerCallbackQuery");
    assert_eq!(fake.answered_callbacks(), vec![cb]);
    let again = bot.answer_callback_query(q.id.clone()).await;
    assert!(again.is_err(), "a query is answered once");
}

#[tokio::test]
async fn long_polling_honours_offset_and_timeout() {
    let (fake, bot) = fake_and_bot().await;
    let user = FakeUser::new(502, "Bo");
    // Nothing there: waits about the timeout.
    let t = Instant::now();
    let none = bot.get_updates().timeout(1).await.expect("getUpdates");
    assert!(none.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());

    // A waiting poll returns as soon as an update arrives.
    let waiting = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(20).await }
    });
    // The fake records a call just before it starts waiting, with no await in between: on this
    // single-threaded runtime, once the second call shows, the poll is parked waiting.
    eventually("the second getUpdates to be waiting", || (fake.call_times("getUpdates").len() == 2).then_some(())).await;
    let t = Instant::now();
    let first = fake.push_text(&user, "hi");
    let got = waiting.await.expect("joined").expect("getUpdates");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let id = i32::try_from(got[0].id.0).expect("small id");
    assert!(first > 0);

    // Unconfirmed updates come back; an offset past them confirms them.
    assert_eq!(bot.get_updates().timeout(0).await.expect("getUpdates").len(), 1);
    fake.push_text(&user, "again");
    let next = bot.get_updates().offset(id + 1).timeout(0).await.expect("getUpdates");
    assert_eq!(next.len(), 1);
    assert_eq!(fake.pending_updates(), 1);
}

#[tokio::test]
async fn errors_come_in_telegrams_envelopes() {
    let (fake, bot) = fake_and_bot().await;
    let user = FakeUser::new(503, "Cy");
    fake.push_text(&user, "hi");
    fake.fail("sendMessage", Some(503), Fault::RateLimited(3), 1);
    let e = bot.send_message(ChatId(503), "x").await.expect_err("429");
    assert!(matches!(e, RequestError::RetryAfter(s) if s.seconds() == 3), "{e:?}");
    bot.send_message(ChatId(503), "x").await.expect("the fault was used up");

    fake.block(503);
    let e = bot.send_message(ChatId(503), "x").await.expect_err("403");
    assert!(matches!(e, RequestError::Api(ApiError::BotBlocked)), "{e:?}");

    let e = bot.send_message(ChatId(504), "x").await.expect_err("never wrote to the bot");
    assert!(matches!(e, RequestError::Api(_)), "{e:?}");
    let e = bot.send_message(ChatId(-100999), "x").await.expect_err("unknown group");
    assert!(matches!(e, RequestError::Api(ApiError::ChatNotFound)), "{e:?}");

    let user2 = FakeUser::new(505, "Di");
    fake.push_text(&user2, "hi");
    let e = bot.send_message(ChatId(505), "字".repeat(4097)).await.expect_err("too long");
    assert!(matches!(e, RequestError::Api(ApiError::MessageIsTooLong)), "{e:?}");
    bot.send_message(ChatId(505), "字".repeat(4096)).await.expect("at the limit");

    fake.add_forum(-100888, "Staff");
    let e = bot.send_message(ChatId(-100888), "x").message_thread_id(ThreadId(MessageId(9999))).await.expect_err("no such topic");
    assert!(e.to_string().contains("thread not found"), "{e}");
    let topic = bot.create_forum_topic(ChatId(-100888), "t").await.expect("createForumTopic");
    bot.close_forum_topic(ChatId(-100888), topic.thread_id).await.expect("closeForumTopic");
    assert!(fake.topics(-100888)[0].closed);
    assert!(bot.close_forum_topic(ChatId(-100888), topic.thread_id).await.is_err(), "TOPIC_NOT_MODIFIED");
}

#[tokio::test]
async fn a_server_error_is_a_transient_failure_without_the_token() {
    use switchboard_core::ChannelError;
    use switchboard_core::channel::Channel;
    use switchboard_core::types::Reply;

    // teloxide waits 10 s before reading a 5xx answer; this test pays that once.
    let (fake, bot) = fake_and_bot().await;
    let user = FakeUser::new(506, "Ed");
    fake.push_text(&user, "hi");
    fake.fail("sendMessage", None, Fault::ServerError, 1);
    let store = std::sync::Arc::new(switchboard_core::store::MemoryStore::new());
    let pack = switchboard_core::pack::Pack::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../intents/okpay"))
        .expect("the pack");
    let engine = switchboard_core::engine::Engine::new(store, pack, Default::default());
    drop(bot);
    let config = switchboard_telegram::TelegramConfig { api_url: Some(fake.api_url()), ..Default::default() };
    let tg = switchboard_telegram::Telegram::connect(engine, TOKEN, config).await.expect("connects");
    let channel = tg.channel();
    let e = channel.send("506", &Reply::text("hello")).await.expect_err("a 500");
    assert!(matches!(&e, ChannelError::Transient(why) if why.contains("Internal Server Error")), "{e:?}");
    channel.send("506", &Reply::text("hello")).await.expect("then it works");
    let e = channel.send("nope", &Reply::text("hello")).await.expect_err("not a chat id");
    assert!(matches!(e, ChannelError::Permanent(_)));
    // A network failure (nothing listens any more) carries no token. The fake shuts down in the
    // background: sends may still reach it until it has, so wait for the first one that fails.
    drop(fake);
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        match channel.send("506", &Reply::text("hello")).await {
            Err(e) => break e,
            Ok(()) => assert!(Instant::now() < deadline, "the stopped fake still answers"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(matches!(&e, ChannelError::Transient(_)), "{e:?}");
    assert!(!e.to_string().contains("fake-Protocol_token"), "{e}");
}

#[tokio::test]
async fn the_fake_simulates_a_round_trip_and_enforces_telegrams_limits() {
    let (fake, bot) = fake_and_bot().await;
    fake.set_latency(Duration::from_millis(200));
    let t = Instant::now();
    bot.get_me().await.expect("getMe");
    assert!(t.elapsed() >= Duration::from_millis(200), "{:?}", t.elapsed());
    fake.set_latency(Duration::ZERO);

    // One chat: a burst of 3, then about one a second.
    fake.set_limits(Some(FakeLimits::telegram()));
    let user = FakeUser::new(507, "Fa");
    fake.push_text(&user, "hi");
    for i in 0..3 {
        bot.send_message(ChatId(507), format!("burst {i}")).await.expect("within the burst");
    }
    let e = bot.send_message(ChatId(507), "too soon").await.expect_err("over the chat's limit");
    assert!(matches!(e, RequestError::RetryAfter(s) if s.seconds() == 1), "{e:?}");
    assert_eq!(fake.rate_limited(), 1);
    // The wait is the scenario: past the announced second, the chat has a token again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    bot.send_message(ChatId(507), "later").await.expect("a token is back");
    let sent = fake.sent_to(507);
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["burst 0", "burst 1", "burst 2", "later"], "the refused one is not delivered");
    assert!(sent.windows(2).all(|w| w[0].at <= w[1].at));

    // The whole bot: here 5 a second.
    fake.set_limits(Some(FakeLimits { per_second: 5, ..FakeLimits::telegram() }));
    for id in 600..605 {
        fake.push_text(&FakeUser::new(id, "U"), "hi");
        bot.send_message(ChatId(id), "x").await.expect("within the bot's limit");
    }
    fake.push_text(&FakeUser::new(605, "U"), "hi");
    let e = bot.send_message(ChatId(605), "x").await.expect_err("over the bot's limit");
    assert!(matches!(e, RequestError::RetryAfter(_)), "{e:?}");

    // A group: here 2 a minute.
    fake.add_forum(-100555, "Staff");
    fake.set_limits(Some(FakeLimits { group_per_minute: 2, chat_burst: 10, ..FakeLimits::telegram() }));
    bot.send_message(ChatId(-100555), "one").await.expect("within the group's limit");
    bot.send_message(ChatId(-100555), "two").await.expect("within the group's limit");
    let e = bot.send_message(ChatId(-100555), "three").await.expect_err("over the group's limit");
    assert!(matches!(e, RequestError::RetryAfter(s) if (29..=30).contains(&s.seconds())), "{e:?}");
    assert_eq!(fake.rate_limited(), 3);
    fake.set_limits(None);
    bot.send_message(ChatId(-100555), "three").await.expect("no limits any more");
}
