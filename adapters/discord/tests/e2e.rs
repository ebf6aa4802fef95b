//! End to end: the real serenity client of the adapter against the fake Discord on 127.0.0.1
//! (REST through the proxy setting, gateway over `ws://`), the real engine and the OKPay pack.
//! Every wait polls a condition with a generous timeout; nothing sleeps to assert. A check that
//! nothing more was sent comes after `Harness::settle`, which waits for the adapter to have handled
//! every event the fake sent it (`Progress`) and for the outbox to drain. The few sleeps left are
//! the scenario itself (how long an outage lasts, a wait Discord told the client), each says so.

mod common;

use std::time::Duration;

use common::{Harness, STAFF_CHANNEL, SUPPORT_CHANNEL, TIMEOUT, agent, customer};
use serde_json::json;
use switchboard_core::store::MemoryStore;
use switchboard_core::types::{Author, TicketEventKind, TicketStatus};
use switchboard_testkit::discord::{self as fake, Failure, Posted};
use switchboard_testkit::faulty::Faulty;

fn assert_pings_nobody(posts: &[Posted]) {
    for p in posts {
        assert!(!p.could_ping(), "the bot's message could ping someone: {p:?}");
        assert_eq!(p.allowed_mentions["parse"], json!([]), "allowed_mentions.parse must be empty: {p:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_answers_a_dm_in_chinese_and_in_english() {
    let h = Harness::start().await;
    let zh = customer(101, "小王");
    let en = customer(102, "ann");
    h.fake.dm(&zh, "我的账号被锁了");
    h.fake.dm(&en, "my account is locked");

    let zh_reply = h.wait_text(h.dm_channel(&zh), "找回密码").await;
    assert!(zh_reply.buttons.iter().any(|b| b == "intent:reset_email_missing"), "follow-ups are buttons: {:?}", zh_reply.buttons);
    let en_reply = h.wait_text(h.dm_channel(&en), "Forgot password").await;
    assert!(!en_reply.buttons.is_empty());
    // Answered once each, in the customer's language, pinging nobody.
    h.settle().await;
    assert_eq!(h.fake.posts(h.dm_channel(&zh)).len(), 1);
    assert_eq!(h.fake.posts(h.dm_channel(&en)).len(), 1);
    assert!(!h.texts(h.dm_channel(&en))[0].contains("找回密码"));
    assert_pings_nobody(&h.fake.all_posts());
    // A picture is not text: the customer is told so.
    h.fake.dm_picture(&en, "");
    h.wait_text(h.dm_channel(&en), "only read text").await;
    // A picture with words: the words are answered, and the transcript keeps both.
    h.fake.dm_picture(&en, "my transfer failed, here is the screenshot");
    h.wait_text(h.dm_channel(&en), "A failed transfer is most often caused").await;
    let lines = h.transcript_of(&h.dm_channel(&en).to_string()).await;
    assert!(lines.iter().any(|l| l.text == "[attachment] my transfer failed, here is the screenshot"), "{lines:?}");
    assert!(h.fake.unknown_routes().is_empty(), "{:?}", h.fake.unknown_routes());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_support_channel_is_answered_there() {
    let h = Harness::start().await;
    let ann = customer(201, "ann");
    let bob = customer(202, "bob");
    // Without a mention the bot stays out of the conversation.
    h.fake.say(SUPPORT_CHANNEL, &bob, "my account is locked, anyone?");
    h.fake.mention(SUPPORT_CHANNEL, &ann, "my account is locked");
    let reply = h.wait_text(SUPPORT_CHANNEL, "Forgot password").await;
    // Addressed to ann with a mention that pings nobody; the bot's own mention is not in the text.
    assert!(reply.content.starts_with("<@201> "), "{}", reply.content);
    assert_pings_nobody(&[reply]);
    // Only the mention: the bot says hello, to bob, in his own conversation.
    h.fake.mention(SUPPORT_CHANNEL, &bob, "");
    let f = h.fake.clone();
    fake::eventually("a greeting for bob", TIMEOUT, || f.posts(SUPPORT_CHANNEL).into_iter().find(|p| p.content.starts_with("<@202> ")))
        .await;
    h.settle().await;
    assert_eq!(h.fake.posts(SUPPORT_CHANNEL).len(), 2, "{:?}", h.texts(SUPPORT_CHANNEL));
    // One conversation per customer in the channel.
    for user in ["201", "202"] {
        let transcript = h.transcript_of(&format!("{SUPPORT_CHANNEL}:{user}")).await;
        assert_eq!(transcript.len(), 2, "{user}: {transcript:?}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_during_a_database_outage_are_answered_in_order_when_it_ends() {
    let store = std::sync::Arc::new(Faulty::new(MemoryStore::new()));
    let h = Harness::start_with(store.clone(), None).await;
    let ann = customer(251, "ann");
    let dm = h.dm_channel(&ann);
    store.set_down(true);
    let first = h.fake.dm(&ann, "my account is locked");
    let second = h.fake.dm(&ann, "thanks");
    // Both reached the adapter, which now holds them: Discord will not deliver them again.
    h.wait_received(first, 1).await;
    h.wait_received(second, 1).await;
    // The scenario, not a wait for a condition: the outage lasts a while (several of the adapter's
    // retries, 0.25 s, 0.5 s, 1 s apart).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(store.refused() > 0);
    assert_eq!((h.progress.handled(first), h.progress.handled(second)), (0, 0), "still held");
    assert!(h.fake.posts(dm).is_empty(), "nothing can be answered while the store is down");
    store.set_down(false);
    let posts = h.wait_posts("both answers", dm, 2).await;
    assert!(
        posts[0].text().contains("Forgot password"),
        "the locked-account answer first: {:?}",
        posts.iter().map(Posted::text).collect::<Vec<_>>()
    );
    let transcript = h.transcript_of(&dm.to_string()).await;
    let said: Vec<&str> = transcript.iter().filter(|e| e.author == Author::Customer).map(|e| e.text.as_str()).collect();
    assert_eq!(said, ["my account is locked", "thanks"], "each message stored once, in order");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_press_is_the_customer_choosing_it() {
    let h = Harness::start().await;
    let ann = customer(301, "ann");
    let dm = h.dm_channel(&ann);
    h.fake.dm(&ann, "my account is locked");
    h.wait_text(dm, "Forgot password").await;
    let click = h.fake.click(dm, &ann, "intent:reset_email_missing");
    // Acknowledged as a deferred update, and answered with that intent.
    let ack = h.wait_response(click).await;
    assert_eq!(ack["type"], json!(6));
    let posts = h.wait_posts("the chosen answer", dm, 2).await;
    let chosen = posts[1].text();
    assert!(chosen.contains("reset email"), "the reset_email_missing answer: {chosen}");
    let transcript = h.transcript_of(&dm.to_string()).await;
    assert!(transcript.iter().any(|e| e.text.starts_with('[')), "the press is in the transcript as a choice: {transcript:?}");
    h.settle().await;
    assert_eq!(h.fake.posts(dm).len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_opens_a_thread_and_messages_flow_both_ways() {
    let h = Harness::start().await;
    let ann = customer(401, "ann");
    let alice = agent(451, "alice");
    let dm = h.dm_channel(&ann);
    let (ticket, thread) = h.escalate(&ann).await;
    assert_eq!(thread.parent, STAFF_CHANNEL);
    assert!(thread.name.starts_with(&format!("#{} ann", ticket.id)), "{}", thread.name);
    let summary = &h.fake.posts(thread.id)[0].embeds[0];
    let fields = summary["fields"].as_array().cloned().unwrap_or_default();
    let field = |name: &str| fields.iter().find(|f| f["name"] == name).map(|f| f["value"].as_str().unwrap_or_default().to_string());
    assert_eq!(field("Channel").as_deref(), Some("discord"));
    assert!(field("Customer").is_some_and(|c| c.contains("ann") && c.contains("401")));
    assert!(field("Priority").is_some());
    assert!(field("Reason").is_some());
    assert!(summary["description"].as_str().is_some_and(|d| d.contains("转人工")), "the last messages are in the summary: {summary}");
    // The customer is told their place in the queue.
    h.wait_text(dm, "排在第").await;

    // The customer writes: it shows in the thread.
    h.fake.dm(&ann, "还在吗?我的转账一直没到");
    h.wait_text(thread.id, "我的转账一直没到").await;
    // An agent writes in the thread: it goes to the customer, after the "joined" line.
    h.fake.say(thread.id, &alice, "您好,我是 Alice,马上帮您查。");
    h.wait_text(dm, "我是 Alice").await;
    let texts = h.texts(dm);
    let joined = texts.iter().position(|t| t.contains("alice") && t.contains("已接入")).expect("the joined line");
    let answer = texts.iter().position(|t| t.contains("我是 Alice")).expect("the answer");
    assert!(joined < answer, "{texts:?}");
    // The thread shows the claim but does not echo alice's own message.
    h.wait_text(thread.id, "claimed this ticket").await;
    h.settle().await;
    assert!(!h.texts(thread.id).iter().any(|t| t.contains("马上帮您查")), "no echo: {:?}", h.texts(thread.id));
    let t = h.ticket(ticket.id).await;
    assert_eq!(t.status, TicketStatus::Assigned);
    assert_eq!(t.agent.as_deref(), Some("discord:451"));
    // The customer again: still the thread, the bot stays silent.
    let before = h.fake.posts(dm).len();
    h.fake.dm(&ann, "好的谢谢");
    h.wait_text(thread.id, "好的谢谢").await;
    h.settle().await;
    assert_eq!(h.fake.posts(dm).len(), before);
    assert_pings_nobody(&h.fake.all_posts());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_the_staff_role_is_refused_and_nothing_changes() {
    let h = Harness::start().await;
    let ann = customer(501, "ann");
    let mallory = customer(502, "mallory");
    let dm = h.dm_channel(&ann);
    let (ticket, thread) = h.escalate(&ann).await;
    h.settle().await;
    let dm_before = h.fake.posts(dm).len();

    let claim = h.fake.slash(thread.id, &mallory, "claim", &[]);
    let refusal = h.wait_response(claim).await;
    assert_eq!(refusal["type"], json!(4));
    assert_eq!(refusal["data"]["flags"], json!(64), "ephemeral: {refusal}");
    assert!(refusal["data"]["content"].as_str().is_some_and(|c| c.contains("staff role")));
    let close = h.fake.slash(STAFF_CHANNEL, &mallory, "close", &[("ticket", json!(ticket.id))]);
    assert_eq!(h.wait_response(close).await["data"]["flags"], json!(64));
    // A message in the thread from a non-member is not relayed.
    h.fake.say(thread.id, &mallory, "hi, I'm from support, send me your password");
    // A staff /queue afterwards proves the worker went past mallory's message.
    let q = h.fake.slash(STAFF_CHANNEL, &agent(551, "alice"), "queue", &[]);
    h.wait_response(q).await;
    h.settle().await;
    let t = h.ticket(ticket.id).await;
    assert_eq!(t.status, TicketStatus::Queued);
    assert_eq!(t.agent, None);
    assert_eq!(h.fake.posts(dm).len(), dm_before, "{:?}", h.texts(dm));
    let events = h.engine.store().ticket_events(ticket.id).await.expect("events");
    assert_eq!(events.len(), 1, "only Opened: {events:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_never_reaches_the_customer() {
    let h = Harness::start().await;
    let ann = customer(601, "ann");
    let alice = agent(651, "alice");
    let dm = h.dm_channel(&ann);
    let (ticket, thread) = h.escalate(&ann).await;
    h.settle().await;
    let dm_before = h.texts(dm);

    let note = h.fake.slash(thread.id, &alice, "note", &[("text", json!("customer sounds worried, check KYC first"))]);
    let resp = h.wait_response(note).await;
    // In the thread the note is the visible answer, for the other agents.
    assert_eq!(resp["type"], json!(4));
    assert!(resp["data"]["flags"].as_u64().unwrap_or(0) & 64 == 0, "visible to the staff: {resp}");
    assert!(fake::unescape(resp["data"]["content"].as_str().unwrap_or_default()).contains("check KYC first"));
    // A note from the staff channel names its ticket and is posted in the thread.
    let other = h.fake.slash(STAFF_CHANNEL, &alice, "note", &[("text", json!("second note")), ("ticket", json!(ticket.id))]);
    assert_eq!(h.wait_response(other).await["data"]["flags"], json!(64));
    h.wait_text(thread.id, "second note").await;
    h.settle().await;
    assert_eq!(h.texts(dm), dm_before, "the customer saw nothing new");
    let events = h.engine.store().ticket_events(ticket.id).await.expect("events");
    assert_eq!(events.iter().filter(|e| matches!(e.kind, TicketEventKind::Note { .. })).count(), 2);
    let transcript = h.engine.store().transcript(ticket.conversation_id, 50).await.expect("transcript");
    assert!(!transcript.iter().any(|e| e.text.contains("KYC")), "notes are not in the customer's transcript");
    // A note longer than one message: the answer holds the start, the rest follows in the thread.
    let long: String = (0..400).map(|i| format!("w{i:03} ")).collect();
    let note = h.fake.slash(thread.id, &alice, "note", &[("text", json!(long.trim_end()))]);
    let first = fake::unescape(h.wait_response(note).await["data"]["content"].as_str().unwrap_or_default());
    assert!(first.contains("w000") && !first.contains("w399"), "{first}");
    let rest = h.wait_text(thread.id, "w399").await;
    let shown: Vec<String> =
        format!("{first} {}", rest.text()).split_whitespace().filter(|w| w.starts_with('w')).map(str::to_string).collect();
    assert_eq!(shown, long.split_whitespace().map(str::to_string).collect::<Vec<_>>(), "nothing cut");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_archives_the_thread_and_returns_the_customer_to_the_bot() {
    let h = Harness::start().await;
    let ann = customer(701, "ann");
    let alice = agent(751, "alice");
    let dm = h.dm_channel(&ann);
    let (ticket, thread) = h.escalate(&ann).await;
    let claim = h.fake.slash(thread.id, &alice, "claim", &[]);
    assert_eq!(h.wait_response(claim).await["data"]["flags"], json!(64));
    h.wait_text(dm, "已接入").await;
    h.fake.say(thread.id, &alice, "问题已经处理好了");
    h.wait_text(dm, "问题已经处理好了").await;

    let close = h.fake.slash(thread.id, &alice, "close", &[]);
    h.wait_response(close).await;
    h.wait_text(dm, "回到了智能助手").await;
    h.wait_text(thread.id, "closed this ticket").await;
    let f = h.fake.clone();
    let id = thread.id;
    fake::eventually("the thread archived and locked", TIMEOUT, || f.threads().into_iter().find(|t| t.id == id && t.archived && t.locked))
        .await;
    assert_eq!(h.ticket(ticket.id).await.status, TicketStatus::Closed);
    // Asked to rate the help, with five buttons; a click goes on the ticket and into the thread,
    // which is archived and locked again.
    let asked = h.wait_text(dm, "满意吗").await;
    assert_eq!(asked.buttons, ["rate:1", "rate:2", "rate:3", "rate:4", "rate:5"]);
    h.fake.click(dm, &ann, "rate:4");
    h.wait_text(dm, "感谢您的评价").await;
    h.wait_text(thread.id, "rated the help").await;
    fake::eventually("the thread archived and locked again", TIMEOUT, || {
        let rated = f.posts(id).iter().any(|p| p.content.contains("rated the help"));
        f.threads().into_iter().find(|t| rated && t.id == id && t.archived && t.locked)
    })
    .await;
    let events = h.engine.store().ticket_events(ticket.id).await.expect("the store answers");
    assert!(events.iter().any(|e| matches!(e.kind, switchboard_core::types::TicketEventKind::Rated { score: 4, .. })), "{events:?}");
    // The bot answers again.
    h.fake.dm(&ann, "my account is locked");
    h.wait_text(dm, "Forgot password").await;
    // Closing again is refused politely.
    let again = h.fake.slash(thread.id, &alice, "close", &[]);
    assert!(h.wait_response(again).await["data"]["content"].as_str().is_some_and(|c| c.contains("closed")));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_drop_mid_conversation_loses_nothing_and_answers_once() {
    let h = Harness::start().await;
    let ann = customer(801, "ann");
    let alice = agent(851, "alice");
    let dm = h.dm_channel(&ann);
    let f = h.fake.clone();
    fake::eventually("two heartbeats acknowledged", TIMEOUT, || (f.gateway_stats().heartbeats >= 2).then_some(())).await;
    let first = h.fake.dm(&ann, "my account is locked");
    h.wait_text(dm, "Forgot password").await;
    let (ticket, thread) = h.escalate(&ann).await;
    h.fake.say(thread.id, &alice, "hello from alice");
    h.wait_text(dm, "hello from alice").await;

    // The connection drops; while the client is away the customer and the agent keep writing.
    h.fake.pause_gateway(true);
    h.fake.drop_gateway();
    fake::eventually("the connection down", TIMEOUT, || (!f.gateway_stats().live).then_some(())).await;
    h.fake.dm(&ann, "are you still there? my transfer is missing");
    h.fake.say(thread.id, &alice, "yes, checking your transfer now");
    h.fake.dm(&ann, "thanks, it was 500 yuan");
    // Discord may deliver an already handled message again after a resume.
    h.fake.redeliver(first);
    h.fake.pause_gateway(false);

    fake::eventually("the session resumed", TIMEOUT, || (f.gateway_stats().resumes == 1 && f.gateway_stats().live).then_some(())).await;
    h.wait_text(thread.id, "it was 500 yuan").await;
    h.wait_text(dm, "checking your transfer now").await;
    h.settle().await;
    let stats = h.fake.gateway_stats();
    assert_eq!(stats.identifies, 1, "resumed, not a new session: {stats:?}");
    assert!(stats.replayed >= 4, "{stats:?}");
    // Nothing lost, nothing twice.
    let thread_texts = h.texts(thread.id);
    for needle in ["my transfer is missing", "it was 500 yuan"] {
        assert_eq!(thread_texts.iter().filter(|t| t.contains(needle)).count(), 1, "{needle}: {thread_texts:?}");
    }
    let missing = thread_texts.iter().position(|t| t.contains("my transfer is missing"));
    let yuan = thread_texts.iter().position(|t| t.contains("it was 500 yuan"));
    assert!(missing < yuan, "in order: {thread_texts:?}");
    let dm_texts = h.texts(dm);
    assert_eq!(dm_texts.iter().filter(|t| t.contains("checking your transfer now")).count(), 1, "{dm_texts:?}");
    assert_eq!(
        dm_texts.iter().filter(|t| t.contains("Forgot password")).count(),
        1,
        "the redelivered message was answered once: {dm_texts:?}"
    );
    let events = h.engine.store().ticket_events(ticket.id).await.expect("events");
    assert_eq!(events.iter().filter(|e| matches!(e.kind, TicketEventKind::CustomerMessage { .. })).count(), 2, "{events:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_the_bot_sends_can_ping_anyone() {
    let h = Harness::start().await;
    let ann = customer(901, "ann");
    let alice = agent(951, "alice");
    let dm = h.dm_channel(&ann);
    let (_, thread) = h.escalate(&ann).await;
    h.fake.dm(&ann, "@everyone @here <@&800000000000000003> <@951> **urgent**");
    let relayed = h.wait_text(thread.id, "@everyone").await;
    assert!(relayed.content.contains("\\@everyone"), "escaped: {}", relayed.content);
    assert!(relayed.content.contains("\\<\\@&800000000000000003\\>"), "{}", relayed.content);
    assert!(relayed.content.contains("\\*\\*urgent\\*\\*"), "{}", relayed.content);
    h.fake.say(thread.id, &alice, "@everyone look: <@901>");
    let to_customer = h.wait_text(dm, "look:").await;
    assert!(to_customer.content.contains("\\@everyone"));
    h.fake.mention(SUPPORT_CHANNEL, &customer(902, "eve"), "@everyone @here");
    h.wait_posts("an answer in the support channel", SUPPORT_CHANNEL, 1).await;
    h.settle().await;
    assert_pings_nobody(&h.fake.all_posts());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_messages_are_split_at_2000_characters() {
    let h = Harness::start().await;
    let ann = customer(1001, "ann");
    let alice = agent(1051, "alice");
    let dm = h.dm_channel(&ann);
    let (_, thread) = h.escalate(&ann).await;
    h.settle().await;
    let before = h.fake.posts(dm).len();
    // An agent with a longer limit writes 3,500 characters (with markdown to escape).
    let long: String = (0..350).map(|i| format!("line_{i:03}. ")).collect::<String>();
    assert!(long.chars().count() >= 3500);
    h.fake.say(thread.id, &alice, &long);
    let f = h.fake.clone();
    let parts = fake::eventually("the long answer", TIMEOUT, || {
        let p = f.posts(dm);
        let text: String = p[before..].iter().filter(|p| !p.text().contains("已接入")).map(Posted::text).collect::<Vec<_>>().join(" ");
        (text.contains("line_349.")).then_some(p[before..].iter().filter(|p| !p.text().contains("已接入")).cloned().collect::<Vec<_>>())
    })
    .await;
    assert!(parts.len() >= 2, "split: {}", parts.len());
    assert!(parts.iter().all(|p| p.content.chars().count() <= 2000));
    let rejoined: String = parts.iter().map(Posted::text).collect::<Vec<_>>().join(" ");
    assert_eq!(rejoined.split_whitespace().collect::<Vec<_>>(), long.split_whitespace().collect::<Vec<_>>(), "nothing lost");
    // The customer's long message reaches the thread split too.
    let from_customer = "转账记录".repeat(900);
    h.fake.dm(&ann, &from_customer);
    let f = h.fake.clone();
    let id = thread.id;
    let pieces = fake::eventually("the long customer message in the thread", TIMEOUT, || {
        let p: Vec<Posted> = f.posts(id).into_iter().filter(|p| p.text().contains("转账记录")).collect();
        // Each part is a line of its own in the thread, starting with the customer's name.
        let joined: String = p.iter().map(|p| p.text().trim_start_matches("**ann:** ").to_string()).collect();
        (joined.matches("转账记录").count() == 900).then_some(p)
    })
    .await;
    assert!(pieces.iter().all(|p| p.text().starts_with("**ann:** ")), "{:?}", pieces.iter().map(Posted::text).collect::<Vec<_>>());
    assert!(pieces.len() >= 2);
    assert!(pieces.iter().all(|p| p.content.chars().count() <= 2000));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_and_blocked_customers_reported() {
    let h = Harness::start().await;
    let ann = customer(1101, "ann");
    let alice = agent(1151, "alice");
    let dm = h.dm_channel(&ann);
    // Rate limited, then a server error: the reply still arrives, once.
    h.fake.fail_next_posts(&[Failure::RateLimited(0.05), Failure::ServerError]);
    h.fake.dm(&ann, "my account is locked");
    h.wait_text(dm, "Forgot password").await;
    h.settle().await;
    assert_eq!(h.fake.posts(dm).len(), 1);

    // The customer closes their DMs: the agent's reply cannot be delivered, and the thread says so.
    let (ticket, thread) = h.escalate(&ann).await;
    h.settle().await;
    h.fake.block_dms(&ann);
    h.fake.say(thread.id, &alice, "can you send me the transaction id?");
    h.wait_text(thread.id, "could not be delivered").await;
    let events = h.engine.store().ticket_events(ticket.id).await.expect("events");
    assert!(events.iter().any(|e| matches!(e.kind, TicketEventKind::DeliveryFailed { .. })), "{events:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_lists_tickets_for_staff() {
    let h = Harness::start().await;
    let (t1, _) = h.escalate(&customer(1201, "ann")).await;
    let (t2, _) = h.escalate(&customer(1202, "bob")).await;
    let alice = agent(1251, "alice");
    let q = h.fake.slash(STAFF_CHANNEL, &alice, "queue", &[]);
    let resp = h.wait_response(q).await;
    assert_eq!(resp["data"]["flags"], json!(64));
    let text = fake::unescape(resp["data"]["content"].as_str().unwrap_or_default());
    assert!(text.contains(&format!("#{}", t1.id)) && text.contains(&format!("#{}", t2.id)), "{text}");
    // Each line says why and for how long, in the words of every desk.
    assert!(text.contains("asked for a person") && text.contains(" min"), "{text}");
    // Outside a thread, a ticket command needs the number.
    let claim = h.fake.slash(STAFF_CHANNEL, &alice, "claim", &[]);
    assert!(h.wait_response(claim).await["data"]["content"].as_str().is_some_and(|c| c.contains("ticket number")));
    let claim = h.fake.slash(STAFF_CHANNEL, &alice, "claim", &[("ticket", json!(t2.id))]);
    h.wait_response(claim).await;
    let t = h.ticket(t2.id).await;
    assert_eq!(t.agent.as_deref(), Some("discord:1251"));
    let commands: Vec<String> = h.fake.commands().iter().filter_map(|c| c["name"].as_str().map(str::to_string)).collect();
    assert_eq!(commands, ["claim", "release", "note", "close", "block", "unblock", "queue"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, stop_fake) = Harness::lasting_fake().await;
    let ann = customer(1301, "ann");
    let alice = agent(1351, "alice");
    let dm = fake.dm_channel(&ann);

    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    let (ticket, thread) = h.escalate(&ann).await;
    h.fake.say(thread.id, &alice, "hello, I'm on it");
    h.wait_text(dm, "I'm on it").await;
    h.settle().await;
    h.stop().await;
    // Written while the bot is stopped: Discord will not send these events to the next session.
    fake.say(thread.id, &alice, "written while the bot was away");
    fake.say(thread.id, &customer(1399, "nosy"), "not staff: never relayed");

    // A new process over the same database: the thread still belongs to the ticket, and what the
    // agent wrote meanwhile reaches the customer (the allowlist checks the roles looked up).
    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    h.wait_text(dm, "written while the bot was away").await;
    h.fake.say(thread.id, &alice, "back after the restart");
    h.wait_text(dm, "back after the restart").await;
    h.settle().await;
    let texts = h.texts(dm);
    assert_eq!(texts.iter().filter(|t| t.contains("while the bot was away") || t.contains("I'm on it")).count(), 2, "once each: {texts:?}");
    assert!(!texts.iter().any(|t| t.contains("never relayed")), "{texts:?}");
    h.fake.dm(&ann, "great");
    h.wait_text(thread.id, "great").await;
    assert_eq!(h.fake.threads().len(), 1, "no second thread");
    assert_eq!(h.ticket(ticket.id).await.agent.as_deref(), Some("discord:1351"));
    h.stop().await;
    let _ = stop_fake.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_bot_was_stopped_are_answered_when_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, stop_fake) = Harness::lasting_fake().await;
    let ann = customer(1401, "ann");
    let bob = customer(1402, "bob");
    let dm = fake.dm_channel(&ann);

    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    h.fake.dm(&ann, "hello");
    h.wait_posts("the greeting", dm, 1).await;
    h.fake.mention(SUPPORT_CHANNEL, &bob, "hello");
    h.wait_posts("bob's greeting", SUPPORT_CHANNEL, 1).await;
    h.settle().await;
    h.stop().await;

    // Nobody is connected: Discord keeps the messages but will not send their events again.
    fake.dm(&ann, "my account is locked");
    fake.dm(&ann, "my transfer failed");
    fake.say(SUPPORT_CHANNEL, &bob, "anyone around?");
    fake.mention(SUPPORT_CHANNEL, &bob, "my account is locked");

    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    let posts = h.wait_posts("the answers to what ann wrote meanwhile", dm, 3).await;
    assert!(posts[1].text().contains("Forgot password") && posts[2].text().contains("A failed transfer"), "in order: {posts:?}");
    let reply = h.wait_text(SUPPORT_CHANNEL, "Forgot password").await;
    assert!(reply.content.starts_with("<@1402> "), "in bob's own conversation there: {}", reply.content);
    h.settle().await;
    assert_eq!(h.fake.posts(SUPPORT_CHANNEL).len(), 2, "the message without a mention is left alone: {:?}", h.texts(SUPPORT_CHANNEL));
    let lines = h.transcript_of(&dm.to_string()).await;
    assert_eq!(lines.iter().filter(|l| l.author == switchboard_core::types::Author::Customer).count(), 3, "{lines:?}");
    // Live messages still flow once caught up.
    h.fake.dm(&ann, "thanks");
    h.wait_posts("the answer to thanks", dm, 4).await;
    h.settle().await;
    h.stop().await;

    // Another start reads nothing twice.
    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    h.fake.dm(&ann, "my account is locked");
    h.wait_posts("a live answer after the third start", dm, 5).await;
    h.settle().await;
    assert_eq!(h.fake.posts(dm).len(), 5, "{:?}", h.texts(dm));
    assert_eq!(h.fake.posts(SUPPORT_CHANNEL).len(), 2);
    assert!(h.fake.unknown_routes().is_empty(), "{:?}", h.fake.unknown_routes());
    h.stop().await;
    let _ = stop_fake.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_errors_map_onto_the_outboxs_decisions() {
    use switchboard_core::ChannelError;
    use switchboard_core::channel::Channel;
    use switchboard_core::types::Reply;
    use switchboard_discord::DiscordChannel;

    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let f = fake::FakeDiscord::bind(async move {
        let _ = rx.wait_for(|s| *s).await;
    })
    .await
    .expect("fake");
    let channel = DiscordChannel::new(switchboard_discord::rest_client(fake::TOKEN, Some(&f.url())));
    let ann = customer(1401, "ann");
    let dm = f.dm_channel(&ann).to_string();
    let hi = Reply::text("hi");
    f.fail_next_posts(&[Failure::RateLimited(0.5), Failure::GloballyRateLimited(0.25), Failure::ServerError, Failure::Forbidden(50013)]);
    let limited = channel.send(&dm, &hi).await;
    assert!(matches!(limited, Err(ChannelError::RateLimited(d)) if d == Duration::from_millis(500)), "retry_after honoured: {limited:?}");
    let asked = f.rest_stats().requests;
    assert!(matches!(channel.send(&dm, &hi).await, Err(ChannelError::RateLimited(_))), "refused without asking");
    assert_eq!(f.rest_stats().requests, asked);
    // What is tested, not a wait for a condition: the client asks again once the retry_after it
    // was told has passed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused = channel.send(&dm, &hi).await;
    assert!(matches!(paused, Err(ChannelError::Paused(d)) if d == Duration::from_millis(250)), "a global 429 pauses the bot: {paused:?}");
    // Until the waits are over the client refuses by itself, without asking.
    let asked = f.rest_stats().requests;
    assert!(matches!(channel.send(&dm, &hi).await, Err(ChannelError::Paused(_))));
    assert_eq!(f.rest_stats().requests, asked);
    // Likewise: the pause the global 429 told.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(channel.send(&dm, &hi).await, Err(ChannelError::Transient(_))));
    assert!(matches!(channel.send(&dm, &hi).await, Err(ChannelError::Transient(_))), "missing permissions: retried until fixed");
    assert!(matches!(channel.send("999", &hi).await, Err(ChannelError::Permanent(_))), "unknown channel");
    assert!(matches!(channel.send("not-a-channel", &hi).await, Err(ChannelError::Permanent(_))));
    f.block_dms(&ann);
    assert!(matches!(channel.send(&dm, &hi).await, Err(ChannelError::Blocked(_))));
    let wrong_token = DiscordChannel::new(switchboard_discord::rest_client("wrong", Some(&f.url())));
    assert!(matches!(wrong_token.send("999", &hi).await, Err(ChannelError::Transient(_))), "a rejected token is not the message's fault");
    assert!(f.all_posts().is_empty());
    // A long reply that fails half-way: its retry (same nonce) creates only the pieces missing.
    let bob = customer(1402, "bob");
    let bob_dm = f.dm_channel(&bob);
    let long = Reply::text("word ".repeat(900));
    f.fail_posts_after(1, &[Failure::ServerError]);
    assert!(matches!(channel.send_once(&bob_dm.to_string(), &long, "7001").await, Err(ChannelError::Transient(_))));
    assert_eq!(f.posts(bob_dm).len(), 1);
    channel.send_once(&bob_dm.to_string(), &long, "7001").await.expect("the retry");
    let posts = f.posts(bob_dm);
    assert_eq!(posts.len(), 3, "three pieces, the first not shown twice");
    let nonces: Vec<Option<String>> = posts.iter().map(|p| p.nonce.clone()).collect();
    assert_eq!(nonces, [Some("7001".into()), Some("7001.1".into()), Some("7001.2".into())]);
    let words: usize = posts.iter().map(|p| p.text().split_whitespace().count()).sum();
    assert_eq!(words, 900);
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_at_start() {
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let f = fake::FakeDiscord::bind(async move {
        let _ = rx.wait_for(|s| *s).await;
    })
    .await
    .expect("fake");
    let pack = switchboard_core::pack::Pack::load(&common::pack_dir()).expect("pack");
    let engine = switchboard_core::engine::Engine::new(
        std::sync::Arc::new(switchboard_core::store::MemoryStore::new()),
        pack,
        common::engine_config(),
    );
    let config = switchboard_discord::DiscordConfig { api_url: Some(f.url()), ..Default::default() };
    let err = switchboard_discord::Discord::connect(engine, "not-the-token", config).await.expect_err("refused");
    assert!(matches!(err, switchboard_discord::Error::Unauthorized), "{err}");
    assert!(!err.to_string().contains("not-the-token"));
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_messages_are_handled_in_the_order_they_were_sent() {
    // serenity hands events that arrive together to separate tasks; before the worker restored
    // Discord's order, about four pairs in ten were swapped.
    let h = Harness::start().await;
    for i in 0..10u64 {
        let ann = customer(900 + i, "ann");
        let dm = h.dm_channel(&ann);
        h.fake.dm(&ann, "my account is locked");
        h.fake.dm(&ann, "thanks");
        let posts = h.wait_posts("both answers", dm, 2).await;
        assert!(posts[0].text().contains("Forgot password"), "answered in order: {:?}", posts.iter().map(Posted::text).collect::<Vec<_>>());
        let transcript = h.transcript_of(&dm.to_string()).await;
        let said: Vec<&str> = transcript.iter().filter(|e| e.author == Author::Customer).map(|e| e.text.as_str()).collect();
        assert_eq!(said, ["my account is locked", "thanks"]);
    }
    h.stop().await;
}

/// A fake Discord of its own, and the sender that stops it.
async fn bare_fake() -> (fake::FakeDiscord, tokio::sync::watch::Sender<bool>) {
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let f = fake::FakeDiscord::bind(async move {
        let _ = rx.wait_for(|s| *s).await;
    })
    .await
    .expect("fake");
    (f, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_with_the_same_nonce_shows_the_message_once() {
    use switchboard_core::channel::Channel;
    use switchboard_core::types::Reply;
    use switchboard_discord::DiscordChannel;

    let (f, stop) = bare_fake().await;
    let channel = DiscordChannel::new(switchboard_discord::rest_client(fake::TOKEN, Some(&f.url())));
    let ann = customer(1501, "ann");
    let dm = f.dm_channel(&ann);
    // Discord takes the message but the answer is lost: the outbox retries with the same nonce.
    f.fail_next_posts(&[Failure::Lost]);
    assert!(channel.send_once(&dm.to_string(), &Reply::text("hello"), "42").await.is_err());
    channel.send_once(&dm.to_string(), &Reply::text("hello"), "42").await.expect("the retry");
    let posts = f.posts(dm);
    assert_eq!(posts.len(), 1, "shown once: {posts:?}");
    assert_eq!(posts[0].nonce.as_deref(), Some("42"));
    assert_eq!(f.rest_stats().nonce_replays, 1);
    // Another item (another nonce) with the same text is another message.
    channel.send_once(&dm.to_string(), &Reply::text("hello"), "43").await.expect("sent");
    assert_eq!(f.posts(dm).len(), 2);
    // Without a nonce the fake, like Discord, has no way to tell: the retry shows it twice.
    f.fail_next_posts(&[Failure::Lost]);
    assert!(channel.send(&dm.to_string(), &Reply::text("bye")).await.is_err());
    channel.send(&dm.to_string(), &Reply::text("bye")).await.expect("sent");
    assert_eq!(f.posts(dm).iter().filter(|p| p.text() == "bye").count(), 2);
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_does_not_repeat_a_reply_or_a_thread_post() {
    let h = Harness::start().await;
    let ann = customer(1551, "ann");
    let alice = agent(1552, "alice");
    let dm = h.dm_channel(&ann);
    h.fake.fail_next_posts(&[Failure::Lost]);
    h.fake.dm(&ann, "my account is locked");
    h.wait_text(dm, "Forgot password").await;
    h.settle().await;
    assert_eq!(h.fake.posts(dm).len(), 1, "answered once though the first answer was lost");
    let (_, thread) = h.escalate(&ann).await;
    h.settle().await;
    // The customer writes; the thread post's answer is lost; it shows once.
    h.fake.fail_next_posts_in(thread.id, &[Failure::Lost]);
    h.fake.dm(&ann, "the transfer id is 12345");
    h.wait_text(thread.id, "12345").await;
    h.settle().await;
    let relayed = h.fake.posts(thread.id).iter().filter(|p| p.text().contains("12345")).count();
    assert_eq!(relayed, 1);
    assert!(h.fake.posts(thread.id).iter().filter(|p| p.embeds.is_empty()).all(|p| p.nonce.is_some()), "thread posts carry nonces");
    let _ = alice;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_enforces_discords_rate_limits_and_simulates_the_round_trip() {
    use switchboard_core::ChannelError;
    use switchboard_core::channel::Channel;
    use switchboard_core::types::Reply;
    use switchboard_discord::DiscordChannel;

    let (f, stop) = bare_fake().await;
    let channel = DiscordChannel::new(switchboard_discord::rest_client(fake::TOKEN, Some(&f.url())));
    let ann = customer(1601, "ann");
    let dm = f.dm_channel(&ann).to_string();
    f.set_rate_limits(Some(fake::RateLimits::DISCORD));
    // Five messages per channel, then a 429 for that channel's bucket until its window ends.
    for i in 0..5 {
        channel.send(&dm, &Reply::text(format!("m{i}"))).await.expect("within the channel's limit");
    }
    // The fifth answer said the bucket is spent: the sixth waits without asking.
    match channel.send(&dm, &Reply::text("m5")).await {
        Err(ChannelError::RateLimited(d)) => assert!(d > Duration::ZERO && d <= Duration::from_secs(5), "{d:?}"),
        other => panic!("expected the channel to wait: {other:?}"),
    }
    assert_eq!(f.rest_stats().route_limited, 0, "not asked");
    // A client that did not hear it (another process) asks, and gets the channel's 429.
    let other = DiscordChannel::new(switchboard_discord::rest_client(fake::TOKEN, Some(&f.url())));
    match other.send(&dm, &Reply::text("m5")).await {
        Err(ChannelError::RateLimited(d)) => assert!(d > Duration::ZERO && d <= Duration::from_secs(5), "{d:?}"),
        other => panic!("expected a channel 429: {other:?}"),
    }
    assert_eq!(f.rest_stats().route_limited, 1);
    // Other channels are not held by it; 50 requests a second overall, then a global 429. A
    // client paces itself to that limit, so many clients (as many processes would) make the burst.
    let clients: Vec<DiscordChannel> =
        (0..60).map(|_| DiscordChannel::new(switchboard_discord::rest_client(fake::TOKEN, Some(&f.url())))).collect();
    let dms: Vec<String> = (0..60u64).map(|i| f.dm_channel(&customer(1700 + i, "c")).to_string()).collect();
    let mut paused = None;
    for (client, c) in clients.iter().zip(&dms) {
        if let Err(e) = client.send(c, &Reply::text("hi")).await {
            paused = Some(e);
            break;
        }
    }
    assert!(matches!(paused, Some(ChannelError::Paused(d)) if d <= Duration::from_secs(1)), "{paused:?}");
    assert!(f.rest_stats().global_limited >= 1);
    // Within that second this client is told to pause too, and then waits out the pause it was
    // told without asking.
    assert!(matches!(channel.send(&dms[59], &Reply::text("x")).await, Err(ChannelError::Paused(_))));
    f.set_rate_limits(None);
    let asked = f.rest_stats().requests;
    let told = match channel.send(&dm, &Reply::text("x")).await {
        Err(ChannelError::Paused(d)) => d,
        other => panic!("expected the remembered pause: {other:?}"),
    };
    assert_eq!(f.rest_stats().requests, asked, "not asked");
    // Waits out the pause the client was told (the fake no longer limits) before the next part.
    tokio::time::sleep(told).await;
    // A simulated round trip.
    f.set_latency(Duration::from_millis(200));
    let bob = f.dm_channel(&customer(1602, "bob"));
    let started = std::time::Instant::now();
    channel.send(&bob.to_string(), &Reply::text("slow")).await.expect("sent");
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    let texts: Vec<String> = f.posts(dm.parse().expect("id")).iter().map(Posted::text).collect();
    assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"], "in order, the refused ones not created");
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_waiting_on_storage_holds_up_only_its_own_channel() {
    use switchboard_discord::bot::shard_of;
    use switchboard_discord::serenity::all::ChannelId;

    let store = std::sync::Arc::new(Faulty::new(MemoryStore::new()));
    let h = Harness::start_with(store.clone(), None).await;
    let ann = customer(1801, "ann");
    let ann_dm = h.dm_channel(&ann);
    // Bob's DM is on another queue than Ann's.
    let (bob, bob_dm) = (1802..1900)
        .map(|id| customer(id, "bob"))
        .map(|b| {
            let dm = h.dm_channel(&b);
            (b, dm)
        })
        .find(|(_, dm)| shard_of(ChannelId::new(*dm), None) != shard_of(ChannelId::new(ann_dm), None))
        .expect("another queue");
    store.set_down(true);
    let ann_msg = h.fake.dm(&ann, "my account is locked");
    h.wait_received(ann_msg, 1).await;
    // Ann's message is retried with a growing wait (0.25, 0.5, 1, 2, 4 s…) while storage is down:
    // tried at about 0, 0.25, 0.75, 1.75, 3.75 and 7.75 s. The outage's length is the scenario
    // (it makes Ann's next wait long), not a wait for a condition.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let bob_msg = h.fake.dm(&bob, "my account is locked");
    h.wait_received(bob_msg, 1).await;
    store.set_down(false);
    // Bob's next try comes within half a second; Ann's only at about 7.75 s, after her wait.
    h.wait_text(bob_dm, "Forgot password").await;
    assert_eq!(h.progress.handled(ann_msg), 0, "Bob was answered while Ann's message still waited its turn");
    assert!(h.fake.posts(ann_dm).is_empty());
    h.wait_text(ann_dm, "Forgot password").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_a_queues_size_waits_for_room_and_loses_nothing() {
    use switchboard_core::store::{NewConversation, Store};
    use switchboard_core::types::ConversationKey;

    let store = std::sync::Arc::new(Faulty::new(MemoryStore::new()));
    let h = Harness::start_with(store.clone(), None).await;
    let ann = customer(1901, "ann");
    let dm = h.dm_channel(&ann);
    // Storage is down: the first message waits, the rest fill its worker's batch and its queue,
    // and then wait for room.
    store.set_down(true);
    let n = 2 * switchboard_discord::bot::SHARD_QUEUE + 30;
    let ids: Vec<u64> = (0..n).map(|i| h.fake.dm(&ann, &format!("message number {i}"))).collect();
    // Every one reached the gateway handler; more than the worker's batch and its queue hold, so
    // the last ones wait there for room, and none is handled while storage is down.
    for &id in &ids {
        h.wait_received(id, 1).await;
    }
    assert!(ids.iter().all(|&id| h.progress.handled(id) == 0));
    store.set_down(false);
    for &id in &ids {
        h.wait_handled(id, 1).await;
    }
    let new = NewConversation {
        key: ConversationKey { channel: "discord".into(), chat: dm.to_string() },
        customer_id: String::new(),
        customer_name: String::new(),
        lang: switchboard_core::Lang::En,
        at: 0,
    };
    let conv = store.open_conversation(new).await.expect("the conversation");
    let said: Vec<String> = store
        .transcript(conv.id, 1000)
        .await
        .expect("the transcript")
        .into_iter()
        .filter(|e| e.author == Author::Customer)
        .map(|e| e.text)
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("message number {i}")).collect();
    assert_eq!(said, expected, "every message once, in the order sent");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_answer_was_lost_is_not_repeated_by_the_next_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fake, stop_fake) = Harness::lasting_fake().await;
    let ann = customer(2001, "ann");
    let dm = fake.dm_channel(&ann);
    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    // Discord creates the reply but the answer is lost (as when the process dies right then), and
    // the retry is told to wait: the process stops with the reply still in its outbox.
    fake.fail_next_posts(&[Failure::Lost, Failure::RateLimited(2.0)]);
    fake.dm(&ann, "my account is locked");
    let f = fake.clone();
    fake::eventually("the lost answer and the 429", TIMEOUT, || (f.rest_stats().injected_failures == 2).then_some(())).await;
    assert_eq!(fake.posts(dm).len(), 1, "created once");
    assert!(!h.engine.store().outbox_pending().await.expect("outbox").is_empty(), "not marked delivered");
    h.stop().await;
    // The next process sends it again with the same nonce: Discord answers the message it has.
    let h = Harness::start_sqlite(dir.path(), Some(fake.clone())).await;
    h.settle().await;
    let posts = fake.posts(dm);
    assert_eq!(posts.len(), 1, "shown once: {:?}", posts.iter().map(Posted::text).collect::<Vec<_>>());
    assert!(posts[0].text().contains("Forgot password"));
    assert_eq!(fake.rest_stats().nonce_replays, 1);
    h.stop().await;
    let _ = stop_fake.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_discords_rate_limits_every_reply_arrives_once_and_in_order() {
    let h = Harness::start().await;
    h.fake.set_latency(Duration::from_millis(20));
    h.fake.set_rate_limits(Some(fake::RateLimits::DISCORD));
    let customers: Vec<_> = (0..40u64).map(|i| customer(2100 + i, "c")).collect();
    let dms: Vec<u64> = customers.iter().map(|c| h.dm_channel(c)).collect();
    for c in &customers {
        h.fake.dm(c, "my account is locked");
    }
    for c in &customers {
        h.fake.dm(c, "thanks");
    }
    let started = std::time::Instant::now();
    for &dm in &dms {
        h.wait_posts("both answers", dm, 2).await;
    }
    h.settle().await;
    for &dm in &dms {
        let texts = h.texts(dm);
        assert_eq!(texts.len(), 2, "once each: {texts:?}");
        assert!(texts[0].contains("Forgot password"), "in order: {texts:?}");
    }
    let stats = h.fake.rest_stats();
    eprintln!("80 replies in {:?} under Discord's limits: {stats:?}", started.elapsed());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_replies_is_paced_to_the_global_limit_instead_of_hitting_it() {
    let h = Harness::start().await;
    h.fake.set_latency(Duration::from_millis(20));
    h.fake.set_rate_limits(Some(fake::RateLimits::DISCORD));
    // Far more replies than the global limit lets go in a second, at once.
    let customers: Vec<_> = (0..100u64).map(|i| customer(2200 + i, "c")).collect();
    let dms: Vec<u64> = customers.iter().map(|c| h.dm_channel(c)).collect();
    for c in &customers {
        h.fake.dm(c, "my account is locked");
    }
    for c in &customers {
        h.fake.dm(c, "how do I close my account");
    }
    let started = std::time::Instant::now();
    for &dm in &dms {
        h.wait_posts("both answers", dm, 2).await;
    }
    let took = started.elapsed();
    h.settle().await;
    for &dm in &dms {
        let texts = h.texts(dm);
        assert_eq!(texts.len(), 2, "once each: {texts:?}");
        assert!(texts[0].contains("Forgot password"), "in order: {texts:?}");
        assert!(texts[1].contains("Before closing your account"), "in order: {texts:?}");
    }
    let stats = h.fake.rest_stats();
    eprintln!("200 replies in {took:?} under Discord's limits: {stats:?}");
    assert!(stats.global_limited <= 2, "paced, not refused: {stats:?}");
    assert_eq!(stats.nonce_replays, 0, "nothing was sent twice: {stats:?}");
    // Paced, not serialised: about the global limit's rate.
    assert!(took < Duration::from_secs(15), "{took:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_posted_in_a_support_channel_is_deleted_there_or_the_customer_is_asked_to() {
    let h = Harness::start().await;
    let ann = customer(2101, "ann");
    let id = h.fake.mention(SUPPORT_CHANNEL, &ann, "my card 4111 1111 1111 1111 was charged twice");
    let reply = h.wait_text(SUPPORT_CHANNEL, "deleted the message").await;
    assert!(reply.content.starts_with("<@2101> "), "{}", reply.content);
    assert_eq!(h.fake.deleted_messages(), vec![(SUPPORT_CHANNEL, id)], "the message is gone from the channel");
    let transcript = h.transcript_of(&format!("{SUPPORT_CHANNEL}:2101")).await;
    assert!(transcript.iter().all(|l| !l.text.contains("4111 1111")), "{transcript:?}");
    assert!(transcript.iter().any(|l| l.text.contains("[card •••• 1111]")), "{transcript:?}");

    // Without Manage Messages: the reply asks the customer to delete it.
    h.fake.deny_manage_messages(SUPPORT_CHANNEL);
    let bob = customer(2102, "bob");
    h.fake.mention(SUPPORT_CHANNEL, &bob, "验证码是 384920 还是登不上");
    let reply = h.wait_text(SUPPORT_CHANNEL, "请您立即自己删除").await;
    assert!(reply.content.starts_with("<@2102> "), "{}", reply.content);
    assert_eq!(h.fake.deleted_messages().len(), 1);

    // In a DM nothing is deleted: only the two of them read it.
    let dm = h.dm_channel(&ann);
    h.fake.dm(&ann, "my password is hunter2");
    let reply = h.wait_text(dm, "For your safety").await;
    assert!(!reply.content.contains("deleted"), "{}", reply.content);
    assert_eq!(h.fake.deleted_messages().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_blocks_and_unblocks_a_customer_with_slash_commands() {
    let h = Harness::start().await;
    let ann = customer(2201, "ann");
    let alice = agent(2251, "alice");
    let (ticket, thread) = h.escalate(&ann).await;
    h.settle().await;
    let bad = h.fake.slash(thread.id, &alice, "block", &[("duration", json!("soon"))]);
    assert!(fake::unescape(h.wait_response(bad).await["data"]["content"].as_str().unwrap_or_default()).contains("30m, 2h, 7d"));
    let block = h.fake.slash(thread.id, &alice, "block", &[("duration", json!("2h")), ("reason", json!("abusive"))]);
    assert!(fake::unescape(h.wait_response(block).await["data"]["content"].as_str().unwrap_or_default()).contains("is blocked"));
    let notice = h.wait_text(thread.id, "blocked the customer until").await;
    assert!(notice.text().contains("abusive"), "{}", notice.text());
    // A customer (without the staff role) cannot lift it.
    let sneaky = h.fake.slash(thread.id, &ann, "unblock", &[]);
    assert!(fake::unescape(h.wait_response(sneaky).await["data"]["content"].as_str().unwrap_or_default()).contains("staff role"));
    let events = h.engine.store().ticket_events(ticket.id).await.expect("events");
    assert!(events.iter().any(|e| matches!(&e.kind, TicketEventKind::Blocked { reason, until: Some(_), .. } if reason == "abusive")));
    let unblock = h.fake.slash(thread.id, &alice, "unblock", &[]);
    assert!(fake::unescape(h.wait_response(unblock).await["data"]["content"].as_str().unwrap_or_default()).contains("unblocked"));
    h.stop().await;
}
