//! End to end: the real engine and OKPay pack, the real adapter and teloxide client, and a fake
//! Telegram Bot API server on 127.0.0.1. Customers write in private chats; agents work tickets in
//! the staff group's forum topics.

mod support;

use std::sync::Arc;

use support::*;
use switchboard_core::Lang;
use switchboard_core::channel::Recorder;
use switchboard_core::dialogue::Phrase;
use switchboard_core::engine::AgentCommand;
use switchboard_core::types::{Actor, Content, Inbound, Owner, TicketEventKind, TicketStatus};
use switchboard_telegram::utf16_len;
use switchboard_telegram::{OFFSET_KEY, OFFSET_NS};
use switchboard_testkit::telegram::{FakeUser, Fault};

#[tokio::test]
async fn answers_a_locked_account_in_chinese_and_in_english() {
    let h = Harness::start().await;
    let mei = zh_customer(1001);
    let sam = en_customer(1002);
    h.fake.push_text(&mei, "我的账号被锁了");
    h.fake.push_text(&sam, "my account is locked");

    let zh = h.customer_got(&mei, 1).await;
    assert_eq!(zh[0].text, answer("account_locked", Lang::Zh));
    assert!(!zh[0].buttons.is_empty(), "follow-ups come as inline buttons");
    assert!(zh[0].buttons.iter().all(|b| b.callback_data.len() <= 64));
    let en = h.customer_got(&sam, 1).await;
    assert_eq!(en[0].text, answer("account_locked", Lang::En));
    // Plain text only: nothing can inject formatting.
    assert!(h.fake.sent().iter().all(|s| s.parse_mode.is_none()));
}

#[tokio::test]
async fn a_button_press_is_handled_as_that_choice_and_answered() {
    let h = Harness::start().await;
    let sam = en_customer(1003);
    h.fake.push_text(&sam, "/start");
    let greeting = h.customer_got(&sam, 1).await;
    assert_eq!(greeting[0].text, answer("greeting", Lang::En));
    assert!(!greeting[0].buttons.is_empty(), "/start offers the top topics as buttons");

    h.fake.push_text(&sam, "my account is locked");
    let sent = h.customer_got(&sam, 2).await;
    let with_buttons = &sent[1];
    let button = with_buttons.buttons.iter().find(|b| b.callback_data.starts_with("intent:")).expect("an intent button").clone();
    let intent = button.callback_data.trim_start_matches("intent:").to_string();
    let query = h.fake.push_callback(&sam, with_buttons.message_id, &button.callback_data);

    let sent = h.customer_got(&sam, 3).await;
    assert_eq!(sent[2].text, answer(&intent, Lang::En), "the press answers the chosen intent");
    eventually("the callback answered", || h.fake.answered_callbacks().contains(&query).then_some(())).await;
}

#[tokio::test]
async fn help_and_messages_the_bot_cannot_read() {
    let h = Harness::start().await;
    let mei = zh_customer(1004);
    h.fake.push_text(&mei, "/help");
    let help = h.customer_got(&mei, 1).await;
    assert!(help[0].text.contains("人工"), "{}", help[0].text);
    let sam = en_customer(1005);
    h.fake.push_text(&sam, "/help");
    let help = h.customer_got(&sam, 1).await;
    assert!(help[0].text.contains("human"), "{}", help[0].text);

    h.fake.push_sticker(&sam);
    let sent = h.customer_got(&sam, 2).await;
    assert_eq!(sent[1].text, Phrase::TextOnly.text(Lang::En));
    // A photo's caption is the customer's words: answered, and kept beside the photo.
    h.fake.push_photo(&sam, Some("my transfer failed, here is the screenshot"));
    let sent = h.customer_got(&sam, 3).await;
    assert_eq!(sent[2].text, answer("transfer_failed", Lang::En));
    assert!(h.engine.store().tickets(&[TicketStatus::Queued]).await.expect("store").is_empty(), "answered, no ticket");

    // A Telegram app in traditional Chinese: help and answers in traditional characters, even to
    // words both scripts share.
    let lin = FakeUser::new(1007, "小林").lang("zh-hant");
    h.fake.push_text(&lin, "/help");
    let help = h.customer_got(&lin, 1).await;
    assert!(help[0].text.contains("轉人工") && !help[0].text.contains("转人工"), "{}", help[0].text);
    h.fake.push_text(&lin, "你好");
    let hello = h.customer_got(&lin, 2).await;
    assert_eq!(hello[1].text, switchboard_core::hant::to_traditional(&answer("greeting", Lang::Zh)));
    assert_ne!(hello[1].text, answer("greeting", Lang::Zh));
}

#[tokio::test]
async fn an_escalation_opens_a_topic_and_messages_flow_both_ways() {
    let h = Harness::start().await;
    let mei = zh_customer(1006);
    h.fake.push_text(&mei, "我的账号被锁了");
    h.customer_got(&mei, 1).await;
    let (ticket, thread) = h.escalate(&mei).await;
    assert_eq!(ticket.key.channel, "telegram");
    assert_eq!(ticket.key.chat, "1006");

    // The topic is named after the ticket and starts with its summary.
    let topic = h.fake.topics(STAFF).into_iter().find(|t| t.thread_id == thread).expect("the topic");
    assert!(topic.name.starts_with(&format!("#{} 小明", ticket.id)), "{}", topic.name);
    let posted = h.topic_texts(thread);
    assert!(posted[0].starts_with(&format!("Ticket #{}", ticket.id)), "{posted:?}");
    assert!(posted[0].contains("Channel: telegram") && posted[0].contains("我的账号被锁了"), "{}", posted[0]);
    // The customer was told they are queued.
    assert!(h.to_customer(&mei).len() >= 2);

    // The customer writes: it shows in the topic, and the bot stays silent.
    let before = h.to_customer(&mei).len();
    h.fake.push_text(&mei, "还在吗?我急着用钱");
    h.topic_says(thread, "👤 小明: 还在吗?我急着用钱").await;

    // The agent answers in the topic: the ticket is claimed and the customer gets the answer.
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "您好,我是 Alice,马上帮您解锁。");
    let sent = h.customer_got(&mei, before + 2).await;
    assert_eq!(sent[before].text, "客服 Alice 已接入,将为您处理。");
    assert_eq!(sent[before + 1].text, "您好,我是 Alice,马上帮您解锁。");
    h.topic_says(thread, "✋ Alice claimed").await;
    h.settle().await;
    // The agent's own message is not echoed back into the topic.
    assert!(!h.topic_texts(thread).iter().any(|t| t.contains("马上帮您解锁")), "{:?}", h.topic_texts(thread));
    let t = h.ticket(ticket.id).await;
    assert_eq!((t.status, t.agent.as_deref()), (TicketStatus::Assigned, Some("telegram:9001")));

    // /queue lists it, with a link to its topic.
    let queue = h.barrier().await;
    assert!(queue.contains(&format!("#{}", ticket.id)) && queue.contains("https://t.me/c/1234567890/"), "{queue}");
}

#[tokio::test]
async fn a_ticket_from_another_channel_is_worked_in_its_topic() {
    let h = Harness::start().await;
    let web = Arc::new(Recorder::new("web"));
    h.engine.add_channel(web.clone());
    let inbound = Inbound {
        channel: "web".into(),
        conversation: "w-1".into(),
        customer_id: "w-1".into(),
        customer_name: "Web Visitor".into(),
        content: Content::Text("I want a human".into()),
        message_id: "w-1-1".into(),
        at: 0,
        lang_hint: None,
        deleted: None,
    };
    h.engine.handle(inbound).await.expect("handled");
    let thread = h.topic("Web Visitor").await;
    h.topic_says(thread, "Channel: web").await;
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "Hello from Telegram");
    eventually("the reply on the web channel", || web.sent_to("w-1").iter().any(|r| r.text == "Hello from Telegram").then_some(())).await;
}

#[tokio::test]
async fn a_non_agent_is_ignored_and_the_ticket_untouched() {
    let h = Harness::start().await;
    let mei = zh_customer(1007);
    let (ticket, thread) = h.escalate(&mei).await;
    let events = h.events(ticket.id).await;
    let to_customer = h.to_customer(&mei).len();
    let in_topic = h.topic_texts(thread).len();

    h.fake.push_group_text(STAFF, Some(thread), &non_agent(), "/claim");
    h.fake.push_group_text(STAFF, Some(thread), &non_agent(), "/close");
    h.fake.push_group_text(STAFF, Some(thread), &non_agent(), "I can help you, send me your password");
    h.fake.push_group_text(STAFF, None, &non_agent(), "/queue");
    h.barrier().await;

    assert_eq!(h.events(ticket.id).await, events, "nothing happened to the ticket");
    let t = h.ticket(ticket.id).await;
    assert_eq!((t.status, t.agent), (TicketStatus::Queued, None));
    assert_eq!(h.to_customer(&mei).len(), to_customer, "nothing reached the customer");
    assert_eq!(h.topic_texts(thread).len(), in_topic, "no answer to a non-agent");
    let general = h.fake.sent_to(STAFF).into_iter().filter(|s| s.thread_id.is_none()).count();
    assert_eq!(general, 1, "only the agent's /queue was answered");
}

#[tokio::test]
async fn a_note_never_reaches_the_customer() {
    let h = Harness::start().await;
    let sam = en_customer(1008);
    h.fake.push_text(&sam, "human please");
    let thread = h.topic("Sam").await;
    h.settle().await;
    let ticket = h.open_ticket().await;
    let before = h.to_customer(&sam).len();

    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/note customer sounds upset, check the 3 failed logins");
    h.topic_says(thread, &format!("📝 Note added to ticket #{}", ticket.id)).await;
    h.barrier().await;
    let notes: Vec<_> = h.events(ticket.id).await.into_iter().filter(|e| matches!(e.kind, TicketEventKind::Note { .. })).collect();
    assert_eq!(notes.len(), 1, "the note is on the ticket");
    assert_eq!(h.to_customer(&sam).len(), before, "the customer got nothing");
    assert!(!h.fake.sent().iter().any(|s| s.chat_id == sam.id && s.text.contains("upset")));

    // An empty note is refused, with the engine's words, in the topic.
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/note");
    h.topic_says(thread, "⚠️ the message is empty").await;
    // Commands outside a ticket's topic are explained.
    h.fake.push_group_text(STAFF, None, &agent(), "/claim");
    eventually("the hint", || {
        h.fake.sent_to(STAFF).into_iter().find(|s| s.thread_id.is_none() && s.text.contains("inside a ticket's topic"))
    })
    .await;
}

#[tokio::test]
async fn closing_closes_the_topic_and_returns_the_customer_to_the_bot() {
    let h = Harness::start().await;
    let sam = en_customer(1009);
    h.fake.push_text(&sam, "I want to talk to a human");
    let thread = h.topic("Sam").await;
    h.settle().await;
    let ticket = h.open_ticket().await;

    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/claim");
    h.topic_says(thread, "✋ Alice claimed").await;
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/close");
    h.topic_says(thread, "✅ Alice closed").await;
    eventually("the topic closed", || h.fake.topics(STAFF).into_iter().find(|t| t.thread_id == thread && t.closed)).await;
    let back = Phrase::BackToBot.text(Lang::En);
    eventually("the customer told", || h.texts_to(&sam).contains(&back.to_string()).then_some(())).await;
    assert_eq!(h.ticket(ticket.id).await.status, TicketStatus::Closed);

    // Asked to rate the help, with five buttons; a press goes on the ticket and into its closed topic.
    let ask = Phrase::RatingAsk.text(Lang::En);
    let asked = eventually("asked to rate", || h.to_customer(&sam).into_iter().find(|s| s.text == ask)).await;
    assert_eq!(
        asked.buttons.iter().map(|b| b.callback_data.as_str()).collect::<Vec<_>>(),
        ["rate:1", "rate:2", "rate:3", "rate:4", "rate:5"]
    );
    h.fake.push_callback(&sam, asked.message_id, "rate:5");
    let thanks = Phrase::RatingThanks.text(Lang::En);
    eventually("thanked", || h.texts_to(&sam).contains(&thanks.to_string()).then_some(())).await;
    h.topic_says(thread, "⭐ The customer rated the help on ticket").await;
    let rated = h.events(ticket.id).await.into_iter().filter(|e| matches!(e.kind, TicketEventKind::Rated { score: 5, .. })).count();
    assert_eq!(rated, 1);

    // The bot answers again.
    let n = h.to_customer(&sam).len();
    h.fake.push_text(&sam, "my account is locked");
    let sent = h.customer_got(&sam, n + 1).await;
    assert_eq!(sent[n].text, answer("account_locked", Lang::En));

    // Writing in the closed ticket's topic says so instead of reaching the customer.
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "one more thing");
    h.topic_says(thread, "is closed").await;
    h.settle().await;
    assert!(!h.texts_to(&sam).contains(&"one more thing".to_string()));
}

#[tokio::test]
async fn a_restart_answers_nothing_twice_and_keeps_the_topics() {
    let h = Harness::start().await;
    let sam = en_customer(1010);
    h.fake.push_text(&sam, "my account is locked");
    let sent = h.customer_got(&sam, 1).await;
    let button = sent[0].buttons[0].clone();
    h.fake.push_callback(&sam, sent[0].message_id, &button.callback_data);
    h.customer_got(&sam, 2).await;
    let mei = zh_customer(1011);
    let (ticket, thread) = h.escalate(&mei).await;
    let offset = h.engine.store().get_value(OFFSET_NS, OFFSET_KEY).await.expect("store").expect("the offset is stored");
    assert_eq!(offset, h.fake.next_update_id().to_string(), "the offset is one past the last update");
    let sam_before = h.to_customer(&sam).len();
    let mei_before = h.to_customer(&mei).len();

    // A clean restart: polling resumes at the stored offset.
    let h = h.restart().await;
    h.fake.push_text(&sam, "thanks");
    let sent = h.customer_got(&sam, sam_before + 1).await;
    assert_eq!(sent[sam_before].text, answer("thanks", Lang::En));
    // The topic mapping survived: the agent's message still reaches the customer.
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "我来处理");
    let sent = h.customer_got(&mei, mei_before + 2).await;
    assert_eq!(sent[mei_before + 1].text, "我来处理");
    h.settle().await;

    // A crash before the offset was stored: Telegram delivers everything again, customer
    // messages and button presses included. Customer messages are answered once.
    let first_update = h.fake.calls("getUpdates").len();
    assert!(first_update > 0);
    let sam_now = h.to_customer(&sam).len();
    let mei_now = h.to_customer(&mei).len();
    let topic_now = h.topic_texts(thread).len();
    h.engine.store().set_value(OFFSET_NS, OFFSET_KEY, "").await.expect("store");
    h.fake.redeliver_from(0);
    let h = h.restart().await;
    h.settle().await;
    h.barrier().await;
    assert_eq!(h.to_customer(&sam).len(), sam_now, "nothing re-answered: {:?}", h.texts_to(&sam));
    assert_eq!(h.fake.topics(STAFF).len(), 1, "no second topic");
    let t = h.ticket(ticket.id).await;
    assert_eq!(t.status, TicketStatus::Assigned);
    assert_eq!(h.to_customer(&mei).len(), mei_now, "the agent's reply not sent twice");
    assert_eq!(h.topic_texts(thread).len(), topic_now, "no customer message posted twice");
}

#[tokio::test]
async fn a_burst_of_rate_limits_loses_nothing_and_keeps_the_order() {
    let h = Harness::start().await;
    let sam = en_customer(1012);
    // Say hello first so the chat exists, then rate-limit the next sends to it.
    h.fake.push_text(&sam, "hello");
    h.customer_got(&sam, 1).await;
    h.settle().await;
    h.fake.fail("sendMessage", Some(sam.id), Fault::RateLimited(1), 3);
    let questions =
        ["my account is locked", "my transfer failed", "I never got the password reset email", "how do I close my account", "thanks"];
    for q in questions {
        h.fake.push_text(&sam, q);
    }
    let sent = h.customer_got(&sam, 1 + questions.len()).await;
    h.settle().await;
    let expected = ["account_locked", "transfer_failed", "reset_email_missing", "close_account", "thanks"].map(|i| answer(i, Lang::En));
    let got: Vec<&str> = sent[1..].iter().map(|s| s.text.as_str()).collect();
    assert_eq!(got, expected.iter().map(String::as_str).collect::<Vec<_>>(), "all delivered, in order");
    assert_eq!(h.to_customer(&sam).len(), 1 + questions.len(), "none twice");
    let rate_limited = h.fake.calls("sendMessage").len() - h.fake.sent().len();
    assert!(rate_limited >= 3, "the 429s were hit");
}

#[tokio::test]
async fn a_customer_who_blocked_the_bot_is_recorded_on_the_ticket_and_not_retried() {
    let h = Harness::start().await;
    let mei = zh_customer(1013);
    let (ticket, thread) = h.escalate(&mei).await;
    h.fake.block(mei.id);
    let calls_before = h.fake.calls("sendMessage").into_iter().filter(|c| c["chat_id"] == mei.id).count();

    h.fake.push_group_text(STAFF, Some(thread), &agent(), "您好?");
    // One notice per undeliverable message (the claim notice and the reply). Waited for before
    // settling: the engine marks an item failed and queues its desk notice in two steps, so the
    // outbox can look empty in between.
    eventually("two delivery failures in the topic", || {
        (h.topic_texts(thread).iter().filter(|t| t.contains("could not be delivered")).count() >= 2).then_some(())
    })
    .await;
    h.settle().await;
    let failed: Vec<_> =
        h.events(ticket.id).await.into_iter().filter(|e| matches!(e.kind, TicketEventKind::DeliveryFailed { .. })).collect();
    assert!(!failed.is_empty(), "the failure is on the ticket");
    if let TicketEventKind::DeliveryFailed { reason } = &failed[0].kind {
        assert!(reason.contains("blocked"), "{reason}");
    }
    // One attempt per message (the claim notice and the reply), no retries.
    let calls = h.fake.calls("sendMessage").into_iter().filter(|c| c["chat_id"] == mei.id).count();
    assert_eq!(calls - calls_before, 2, "not retried");
    assert!(h.engine.store().outbox_pending().await.expect("outbox").is_empty());
}

#[tokio::test]
async fn a_reply_over_telegrams_limit_is_split() {
    let h = Harness::start().await;
    let sam = en_customer(1014);
    h.fake.push_text(&sam, "human");
    let thread = h.topic("Sam").await;
    h.settle().await;
    let ticket = h.open_ticket().await;
    // From the terminal desk: 2,500 emoji are 5,000 UTF-16 units, over Telegram's 4,096.
    let long: String = "😀".repeat(2000) + "\n" + &"好".repeat(1000);
    assert!(utf16_len(&long) > 4096);
    h.engine.agent(&Actor::new("desk:alice", "Alice"), AgentCommand::Reply(ticket.id, long.clone())).await.expect("replied");
    let n = h.to_customer(&sam).len();
    h.settle().await;
    let sent = h.to_customer(&sam);
    assert!(n >= 2);
    let parts: Vec<&str> = sent.iter().skip_while(|s| !s.text.starts_with('😀')).map(|s| s.text.as_str()).collect();
    assert_eq!(parts.len(), 2, "split in two");
    assert!(parts.iter().all(|p| utf16_len(p) <= 4096));
    assert_eq!(parts.concat(), long.replace('\n', ""));
    // The desk's echo of a reply from another desk is split too.
    let echo: Vec<String> = h.topic_texts(thread).into_iter().filter(|t| t.contains('😀') || t.starts_with('好')).collect();
    assert!(echo.len() >= 2, "{}", echo.len());
    assert_eq!(h.engine.store().ticket(ticket.id).await.expect("store").map(|t| t.agent), Some(Some("desk:alice".into())));
}

#[tokio::test]
async fn a_customer_message_on_an_assigned_ticket_goes_to_the_agent_not_the_bot() {
    let h = Harness::start().await;
    let sam = en_customer(1015);
    let (ticket, thread) = h.escalate(&sam).await;
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/claim");
    h.topic_says(thread, "claimed").await;
    h.fake.push_photo(&sam, None);
    h.topic_says(thread, "👤 Sam: [photo]").await;
    h.fake.push_photo(&sam, Some("this is the error I get"));
    h.topic_says(thread, "👤 Sam: [photo] this is the error I get").await;
    h.fake.push_group_photo(STAFF, thread, &agent());
    h.topic_says(thread, "Only text is relayed").await;
    h.settle().await;
    let conv = h.engine.store().conversation(ticket.conversation_id).await.expect("store").expect("conversation");
    assert_eq!(conv.owner, Owner::Agent("telegram:9001".into()));
}

#[tokio::test]
async fn an_agent_blocks_and_unblocks_a_customer_from_the_topic() {
    let h = Harness::start().await;
    let sam = en_customer(1031);
    h.fake.push_text(&sam, "human please");
    let thread = h.topic("Sam").await;
    h.settle().await;
    let ticket = h.open_ticket().await;

    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/block 2x spam");
    h.topic_says(thread, "⚠️ \"2x\" is not a duration").await;
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/block 7d sends spam links");
    h.topic_says(thread, "blocked the customer until").await;
    h.settle().await;
    let before = h.to_customer(&sam).len();
    let relayed = h.topic_texts(thread).len();
    h.fake.push_text(&sam, "you cannot block me");
    // Handled (the update is confirmed) and nothing is left to deliver.
    h.settle().await;
    assert_eq!(h.to_customer(&sam).len(), before, "not answered");
    assert_eq!(h.topic_texts(thread).len(), relayed, "not relayed to the topic");
    let events = h.events(ticket.id).await;
    assert!(
        events.iter().any(|e| matches!(&e.kind, TicketEventKind::Blocked { reason, until: Some(_), .. } if reason == "sends spam links"))
    );
    // A customer cannot lift it: only agents are heard in the staff group.
    h.fake.push_group_text(STAFF, Some(thread), &agent(), "/unblock");
    h.topic_says(thread, "unblocked the customer").await;
    h.fake.push_text(&sam, "sorry");
    h.topic_says(thread, "sorry").await;
}
