//! The engine end to end through a recording fake channel and desk: answers in the customer's
//! language, clarification and fallback, handoff with collected fields and priorities, agent
//! actions, duplicates, bad input, delivery retries and a restart over the same SQLite file.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Harness, alice, answer, bob, okpay};
use switchboard_core::channel::Recorded;
use switchboard_core::dialogue::{Action, PAYLOAD_HUMAN_FALLBACK, Phrase};
use switchboard_core::engine::{AgentCommand, AgentOutcome, Engine, EngineConfig};
use switchboard_core::matcher::Decision;
use switchboard_core::pack::Pack;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{
    Actor, Author, Content, DeskNotice, HandoffReason, MAX_AGENT_CHARS, MAX_MESSAGE_CHARS, Owner, Priority, TicketEventKind, TicketStatus,
};
use switchboard_core::{ChannelError, EngineError, Lang};

fn memory() -> Harness {
    Harness::new(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn answers_a_locked_account_in_the_customers_language() {
    let h = memory();
    let pack = okpay();
    let zh = h.say("c1", "我的账号被锁了").await;
    assert_eq!((zh.action, zh.intent.as_deref(), zh.lang), (Action::Answer, Some("account_locked"), Lang::Zh));
    let replies = h.replies("c1");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].text, answer(&pack, "account_locked", Lang::Zh));
    assert!(!replies[0].choices.is_empty(), "follow-up choices are offered");

    let en = h.say("c2", "my account is locked").await;
    assert_eq!((en.action, en.intent.as_deref(), en.lang), (Action::Answer, Some("account_locked"), Lang::En));
    assert_eq!(h.replies("c2")[0].text, answer(&pack, "account_locked", Lang::En));
}

#[tokio::test]
async fn typos_traditional_characters_and_invisible_characters_still_match() {
    let h = memory();
    for (text, intent) in [
        ("my acount is lockd", "account_locked"),
        ("帳號被鎖了", "account_locked"),
        ("我的\u{200b}账号\u{202e}被锁了", "account_locked"),
        ("ｍｙ ａｃｃｏｕｎｔ ｉｓ ｌｏｃｋｅｄ", "account_locked"),
        ("my transfer failed", "transfer_failed"),
    ] {
        let got = h.say("c", text).await;
        assert_eq!(got.intent.as_deref(), Some(intent), "{text:?} → {got:?}");
    }
}

#[tokio::test]
async fn a_button_press_answers_that_intent() {
    let h = memory();
    h.say("c", "my account is locked").await;
    let choice = h.replies("c")[0].choices[0].clone();
    let pressed = h.press("c", &choice.payload).await;
    assert_eq!(pressed.action, Action::Answer);
    assert_eq!(Some(choice.payload.trim_start_matches("intent:")), pressed.intent.as_deref());
    // Typing the choice's number does the same.
    h.say("c", "my account is locked").await;
    h.replies("c");
    let typed = h.say("c", "1").await;
    assert_eq!(typed.intent, pressed.intent);
}

#[tokio::test]
async fn small_talk_is_never_offered_as_a_did_you_mean_choice() {
    let h = memory();
    // Close to both account security and thanks: only the question is offered.
    let text = "thanks, is my account safe";
    let Decision::Clarify(close) = h.engine.config().thresholds.decide(&h.engine.brain().matcher.rank(text, 3)) else {
        panic!("the matcher is unsure about {text:?}")
    };
    assert!(close.iter().any(|id| id == "thanks") && close.iter().any(|id| id == "account_security"), "{close:?}");
    let r = h.say("c", text).await;
    assert_eq!(r.action, Action::Clarify);
    let payloads: Vec<&str> = r.replies[0].choices.iter().map(|c| c.payload.as_str()).collect();
    assert_eq!(payloads, ["intent:account_security", "none"]);
    assert!(okpay().intents.iter().filter(|it| it.small_talk).count() >= 4, "greeting, thanks, ok and goodbye are small talk");
}

#[tokio::test]
async fn unclear_messages_fall_back_then_offer_a_person() {
    let h = memory();
    let first = h.say("c", "qwxz vbnm plkj").await;
    assert_eq!(first.action, Action::Fallback);
    let r = h.replies("c");
    assert_eq!(r[0].text, Phrase::Fallback.text(Lang::En));
    assert!(r[0].choices.is_empty());
    let second = h.say("c", "zzzz yyyy").await;
    assert_eq!(second.action, Action::Fallback);
    let r = h.replies("c");
    assert_eq!(r[0].text, Phrase::FallbackOffer.text(Lang::En));
    assert_eq!(r[0].choices[0].payload, PAYLOAD_HUMAN_FALLBACK);
    let handed = h.press("c", PAYLOAD_HUMAN_FALLBACK).await;
    assert_eq!(handed.action, Action::Handoff);
    let t = h.engine.store().ticket(handed.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(t.reason, HandoffReason::RepeatedFallback);
}

#[tokio::test]
async fn a_fallback_streak_is_broken_by_an_answer() {
    let h = memory();
    h.say("c", "qwxz vbnm plkj").await;
    h.say("c", "thank you").await;
    h.replies("c");
    h.say("c", "zzzz yyyy").await;
    assert_eq!(h.replies("c")[0].text, Phrase::Fallback.text(Lang::En), "not the offer: the streak restarted");
}

#[tokio::test]
async fn asking_for_a_person_opens_a_ticket_and_the_bot_goes_silent() {
    let h = memory();
    h.say("c", "我的账号被锁了").await;
    let handed = h.say("c", "转人工").await;
    assert_eq!(handed.action, Action::Handoff);
    let tid = handed.ticket_id.unwrap();
    let replies = h.replies("c");
    assert!(replies.last().unwrap().text.contains("第 1 位"), "the customer is told their place: {replies:?}");

    let store = h.engine.store();
    let t = store.ticket(tid).await.unwrap().unwrap();
    assert_eq!((t.status, t.reason.clone(), t.lang), (TicketStatus::Queued, HandoffReason::CustomerRequest, Lang::Zh));
    let notices = h.desk.take();
    let summary = notices
        .iter()
        .find_map(|n| match n {
            Recorded::Notice { notice: DeskNotice::Opened, summary, .. } => summary.clone(),
            _ => None,
        })
        .expect("the desk was told");
    assert!(summary.contains(&format!("Ticket #{tid}")) && summary.contains("我的账号被锁了"), "{summary}");
    assert!(summary.contains("Language: zh (simplified characters)"), "{summary}");

    // While queued, messages go to the ticket and the desk, never answered by the bot.
    let silent = h.say("c", "还在吗?我的账号被锁了").await;
    assert_eq!(silent.action, Action::Silent);
    assert!(h.replies("c").is_empty());
    let events = store.ticket_events(tid).await.unwrap();
    assert!(events.iter().any(|e| e.kind == TicketEventKind::CustomerMessage { text: "还在吗?我的账号被锁了".into() }));
    assert!(matches!(h.desk.take().as_slice(), [Recorded::Notice { notice: DeskNotice::CustomerMessage { .. }, .. }]));

    // Still nobody on it five minutes later: the customer is reminded of their place, once.
    let other = h.say("d", "human").await;
    assert_eq!(other.action, Action::Handoff);
    h.replies("d");
    let waiting = h.say_later("c", "有人吗", 6).await;
    assert_eq!((waiting.action, waiting.ticket_id), (Action::Waiting, Some(tid)));
    let told = h.replies("c");
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].text.contains("第 1 位"), "{told:?}");
    assert_eq!(h.say_later("c", "???", 7).await.action, Action::Silent, "not again within five minutes");
    assert!(h.replies("c").is_empty());
    let d = h.say_later("d", "hello? anyone there?", 12).await;
    assert_eq!(d.action, Action::Waiting);
    assert!(h.replies("d")[0].text.contains("number 2"), "behind the earlier ticket");
    // Once an agent has it, the bot stays silent whatever the time.
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    h.replies("c");
    assert_eq!(h.say_later("c", "还在吗", 60).await.action, Action::Silent);
    assert!(h.replies("c").is_empty());
    let events = store.ticket_events(tid).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| matches!(e.kind, TicketEventKind::CustomerMessage { .. })).count(),
        4,
        "every message is on the ticket"
    );
}

#[tokio::test]
async fn agents_claim_reply_note_release_and_close() {
    let h = memory();
    let tid = h.say("c", "human").await.ticket_id.unwrap();
    h.replies("c");
    let e = &h.engine;

    let AgentOutcome::Queue(q) = e.agent(&alice(), AgentCommand::Queue).await.unwrap() else { panic!("queue") };
    assert_eq!(q.iter().map(|t| t.id).collect::<Vec<_>>(), vec![tid]);

    e.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    let err = e.agent(&bob(), AgentCommand::Claim(tid)).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidTicketState { .. }), "{err}");
    assert!(err.to_string().contains("is already with Alice (desk:alice)"), "the holder by name: {err}");
    let err = e.agent(&bob(), AgentCommand::Reply(tid, "hi".into())).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidTicketState { .. }), "only the owner answers: {err}");
    e.agent(&alice(), AgentCommand::Reply(tid, "Hello, I'm Alice. Let me check.".into())).await.unwrap();
    e.agent(&alice(), AgentCommand::Note(tid, "customer seems upset".into())).await.unwrap();
    // Too long even to split into a few platform messages: refused with the reason, never cut
    // behind the agent's back.
    for cmd in [AgentCommand::Reply(tid, "好".repeat(MAX_AGENT_CHARS + 1)), AgentCommand::Note(tid, "x".repeat(MAX_AGENT_CHARS + 9))] {
        let err = e.agent(&alice(), cmd).await.unwrap_err();
        assert!(matches!(err, EngineError::BadCommand(_)) && err.to_string().contains("characters long"), "{err}");
    }
    e.flush().await.unwrap();
    let seen: Vec<String> = h.replies("c").into_iter().map(|r| r.text).collect();
    assert!(seen.iter().any(|t| t.contains("Alice")), "the customer is told who joined: {seen:?}");
    assert!(seen.contains(&"Hello, I'm Alice. Let me check.".to_string()));
    assert!(!seen.iter().any(|t| t.contains("upset")), "notes never reach the customer");
    let conv = e.store().conversation(e.store().ticket(tid).await.unwrap().unwrap().conversation_id).await.unwrap().unwrap();
    assert_eq!(conv.owner, Owner::Agent("desk:alice".into()));

    // The customer's answer reaches the ticket, not the bot.
    assert_eq!(h.say("c", "thanks, my account is locked").await.action, Action::Silent);
    assert!(h.replies("c").is_empty());

    e.agent(&alice(), AgentCommand::Release(tid)).await.unwrap();
    let t = e.store().ticket(tid).await.unwrap().unwrap();
    assert_eq!((t.status, t.agent.clone()), (TicketStatus::Queued, None));
    e.agent(&bob(), AgentCommand::Claim(tid)).await.unwrap();
    e.agent(&bob(), AgentCommand::Close(tid)).await.unwrap();
    e.flush().await.unwrap();
    let seen: Vec<String> = h.replies("c").into_iter().map(|r| r.text).collect();
    // Back with the bot, then asked to rate the help.
    assert_eq!(seen[seen.len() - 2..], [Phrase::BackToBot.text(Lang::En), Phrase::RatingAsk.text(Lang::En)]);
    assert_eq!(e.store().ticket(tid).await.unwrap().unwrap().status, TicketStatus::Closed);
    assert!(e.agent(&bob(), AgentCommand::Reply(tid, "late".into())).await.is_err(), "a closed ticket takes no replies");

    // Back with the bot.
    let again = h.say("c", "my account is locked").await;
    assert_eq!(again.action, Action::Answer);

    let kinds: Vec<&'static str> = e
        .store()
        .ticket_events(tid)
        .await
        .unwrap()
        .iter()
        .map(|ev| match ev.kind {
            TicketEventKind::Opened => "opened",
            TicketEventKind::Claimed { .. } => "claimed",
            TicketEventKind::Released { .. } => "released",
            TicketEventKind::CustomerMessage { .. } => "customer",
            TicketEventKind::AgentReply { .. } => "reply",
            TicketEventKind::Note { .. } => "note",
            TicketEventKind::DeliveryFailed { .. } => "failed",
            TicketEventKind::Closed { .. } => "closed",
            TicketEventKind::Blocked { .. } => "blocked",
            TicketEventKind::Unblocked { .. } => "unblocked",
            TicketEventKind::Rated { .. } => "rated",
            TicketEventKind::Erased { .. } => "erased",
        })
        .collect();
    assert_eq!(kinds, vec!["opened", "claimed", "reply", "note", "customer", "released", "claimed", "closed"]);
    let AgentOutcome::Detail(d) = e.agent(&alice(), AgentCommand::Show(tid)).await.unwrap() else { panic!("detail") };
    assert!(d.transcript.iter().any(|l| l.author == Author::Agent("desk:alice".into())));
}

#[tokio::test]
async fn only_allowlisted_agents_act_and_customers_cannot_read_tickets() {
    let h = memory();
    let tid = h.say("c", "human").await.ticket_id.unwrap();
    let stranger = Actor::new("telegram:999", "Mallory");
    for cmd in [AgentCommand::Queue, AgentCommand::Show(tid), AgentCommand::Claim(tid), AgentCommand::Close(tid)] {
        assert!(matches!(h.engine.agent(&stranger, cmd).await, Err(EngineError::NotAnAgent)));
    }
    // A customer typing an agent command is just a customer message.
    let other = h.say("c2", "/claim 1").await;
    assert_ne!(other.action, Action::Silent);
    assert_eq!(h.engine.store().ticket(tid).await.unwrap().unwrap().status, TicketStatus::Queued);
    assert!(matches!(h.engine.agent(&alice(), AgentCommand::Claim(tid + 100)).await, Err(EngineError::NoSuchTicket(_))));
    // Roles admit too.
    let role = Actor { id: "discord:1".into(), name: "R".into(), roles: vec!["desk:alice".into()] };
    assert!(h.engine.is_agent(&role));
}

#[tokio::test]
async fn money_not_received_collects_the_details_then_hands_off() {
    let h = memory();
    let first = h.say("c", "I sent money but it never arrived").await;
    assert_eq!((first.action, first.intent.as_deref()), (Action::Collect, Some("transfer_not_received")));
    assert_eq!(h.say("c", "yesterday at 3pm").await.action, Action::Collect);
    let bad = h.say("c", "a lot").await;
    assert_eq!(bad.action, Action::Collect, "an invalid amount is asked again");
    assert_eq!(bad.replies[0].text, Phrase::InvalidField.text(Lang::En));
    assert_eq!(h.say("c", "200 USD").await.action, Action::Collect);
    let done = h.say("c", "TX-884213").await;
    assert_eq!(done.action, Action::Handoff);
    let t = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(t.reason, HandoffReason::Intent("transfer_not_received".into()));
    let fields: Vec<(&str, &str)> = t.fields.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect();
    assert_eq!(fields, vec![("time", "yesterday at 3pm"), ("amount", "200 USD"), ("transaction_id", "TX-884213")]);
    let summary = h.desk.take().into_iter().find_map(|n| match n {
        Recorded::Notice { summary: Some(s), .. } => Some(s),
        _ => None,
    });
    assert!(summary.unwrap().contains("transaction_id: TX-884213"));
}

#[tokio::test]
async fn a_question_asked_while_details_are_collected_is_answered_and_the_details_kept() {
    let h = memory();
    h.say("c", "I sent money but it never arrived").await;
    assert_eq!(h.say("c", "yesterday at 3pm").await.action, Action::Collect);
    // Not an amount, but a question the bot answers: answered, then the amount is asked again.
    let aside = h.say("c", "how do I close my account?").await;
    assert_eq!((aside.action, aside.intent.as_deref()), (Action::Answer, Some("close_account")));
    assert_eq!(aside.replies[0].text, answer(&okpay(), "close_account", Lang::En));
    assert!(aside.replies.iter().all(|r| r.choices.is_empty()), "no follow-up buttons in place of the question");
    let again = &aside.replies.last().unwrap().text;
    assert!(again.starts_with(Phrase::Resume.text(Lang::En)) && again.contains("How much"), "{again}");
    // Asking for a person in other words hands off with what was collected, even where the
    // words could pass for the detail asked for (an amount has a digit).
    let done = h.say("c", "can I please speak to a real person, it's been 3 days").await;
    assert_eq!(done.action, Action::Handoff);
    let t = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(t.reason, HandoffReason::Intent("transfer_not_received".into()));
    let fields: Vec<(&str, &str)> = t.fields.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect();
    assert_eq!(fields, vec![("time", "yesterday at 3pm")]);
}

#[tokio::test]
async fn a_customer_writing_traditional_chinese_is_answered_in_it() {
    let h = memory();
    let pack = okpay();
    let first = h.say("t", "我的帳號被鎖了,怎麼辦").await;
    assert_eq!((first.action, first.intent.as_deref(), first.lang), (Action::Answer, Some("account_locked"), Lang::Zh));
    let replies = h.replies("t");
    let expected = switchboard_core::hant::to_traditional(&answer(&pack, "account_locked", Lang::Zh));
    assert_ne!(expected, answer(&pack, "account_locked", Lang::Zh), "the answer has characters that differ");
    assert_eq!(replies[0].text, expected);
    assert!(replies[0].text.contains("密碼") && !replies[0].text.contains("密码"), "{}", replies[0].text);
    assert!(replies[0].choices.iter().all(|c| c.label == switchboard_core::hant::to_traditional(&c.label)), "buttons too");
    // Nothing in a message tells the script (a shared word, a code): it stays traditional, through
    // the queue, the agent's arrival and the return to the bot.
    let tid = h.say("t", "人工客服").await.ticket_id.unwrap();
    let queued = h.replies("t");
    assert!(queued.iter().any(|r| r.text.contains("轉接") && r.text.contains("排在第")), "{queued:?}");
    let summary = h.desk.take().into_iter().find_map(|n| match n {
        Recorded::Notice { notice: DeskNotice::Opened, summary, .. } => summary,
        _ => None,
    });
    assert!(summary.unwrap().contains("Language: zh (traditional characters)"), "the agent is told to answer in them");
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    assert!(h.replies("t")[0].text.contains("將為您處理"));
    h.engine.agent(&alice(), AgentCommand::Close(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    assert_eq!(h.replies("t")[0].text, switchboard_core::hant::to_traditional(Phrase::BackToBot.text(Lang::Zh)));
    // Writing simplified characters switches back; other conversations never change.
    h.say("t", "我的账号被锁了").await;
    assert_eq!(h.replies("t")[0].text, answer(&pack, "account_locked", Lang::Zh));
    // What the customer writes to a person counts too: the bot's words at the end follow it.
    let tid = h.say("t", "人工").await.ticket_id.unwrap();
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    assert_eq!(h.say("t", "謝謝,我在這裡等著").await.action, Action::Silent);
    h.engine.agent(&alice(), AgentCommand::Close(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    let after: Vec<String> = h.replies("t").into_iter().map(|r| r.text).collect();
    assert_eq!(after[after.len() - 2], switchboard_core::hant::to_traditional(Phrase::BackToBot.text(Lang::Zh)));
    assert_eq!(after[after.len() - 1], switchboard_core::hant::to_traditional(Phrase::RatingAsk.text(Lang::Zh)));
    h.say("s", "我的账号被锁了").await;
    assert_eq!(h.replies("s")[0].text, answer(&pack, "account_locked", Lang::Zh));
    // Words both scripts share: the platform's language tag decides.
    let mut tagged = h.inbound("u", Content::Text("人工客服".into()));
    tagged.lang_hint = Some("zh-TW".into());
    h.engine.handle(tagged).await.unwrap();
    h.engine.flush().await.unwrap();
    assert!(h.replies("u").iter().any(|r| r.text.contains("轉接")));
}

#[tokio::test]
async fn a_switch_to_a_flow_that_leads_to_a_person_keeps_the_details_collected() {
    let h = memory();
    h.say("c", "I sent money but it never arrived").await;
    h.say("c", "yesterday at 3pm").await;
    h.say("c", "200 USD").await;
    let stolen = h.say("c", "wait, someone hacked my account and changed my password!").await;
    assert_eq!((stolen.action, stolen.intent.as_deref()), (Action::Handoff, Some("account_stolen")));
    let t = h.engine.store().ticket(stolen.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((t.reason, t.priority), (HandoffReason::Intent("account_stolen".into()), Priority::Urgent));
    let fields: Vec<(&str, &str)> = t.fields.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect();
    assert_eq!(fields, vec![("time", "yesterday at 3pm"), ("amount", "200 USD")]);
}

#[tokio::test]
async fn a_detail_the_new_flow_also_needs_is_not_asked_again() {
    // A pack whose stolen-account flow asks when it happened and how to call the customer back.
    let dir = tempfile::tempdir().unwrap();
    support::copy_pack(dir.path());
    let file = dir.path().join("account_stolen.toml");
    let mut src = std::fs::read_to_string(&file).unwrap();
    src.push_str(
        "\n[[collect]]\nname = \"time\"\npattern = '[0-9]'\nen = \"When did it happen?\"\nzh = \"什么时候发生的?\"\n\
         \n[[collect]]\nname = \"phone\"\npattern = '[0-9]{6,}'\nen = \"Which phone number can we call you on?\"\nzh = \"我们打哪个电话联系您?\"\n",
    );
    std::fs::write(&file, src).unwrap();
    let h = Harness::with_pack(Arc::new(MemoryStore::new()), Pack::load(dir.path()).unwrap());
    h.say("c", "I sent money but it never arrived").await;
    h.say("c", "yesterday at 3pm").await;
    let stolen = h.say("c", "wait, someone hacked my account and changed my password!").await;
    assert_eq!((stolen.action, stolen.intent.as_deref()), (Action::Collect, Some("account_stolen")));
    assert!(h.replies("c").last().unwrap().text.contains("phone number"), "the time is known already");
    let done = h.say("c", "0123456789").await;
    assert_eq!(done.action, Action::Handoff);
    let t = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
    let fields: Vec<(&str, &str)> = t.fields.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect();
    assert_eq!(fields, vec![("time", "yesterday at 3pm"), ("phone", "0123456789")]);
}

#[tokio::test]
async fn an_earlier_button_pressed_while_details_are_collected_keeps_them() {
    let h = memory();
    let pending = h.say("c", "my transfer has been pending for days").await;
    assert_eq!(pending.intent.as_deref(), Some("transfer_pending"));
    let buttons = h.replies("c").pop().unwrap().choices;
    let payload = |id: &str| buttons.iter().find(|c| c.payload.ends_with(id)).unwrap().payload.clone();
    assert_eq!(h.press("c", &payload("transfer_not_received")).await.action, Action::Collect);
    h.say("c", "yesterday at 3pm").await;
    h.replies("c");
    // The same message's "Contact support" button, pressed now: answered, then the amount again.
    let aside = h.press("c", &payload("contact_support")).await;
    assert_eq!((aside.action, aside.intent.as_deref()), (Action::Answer, Some("contact_support")));
    let replies = h.replies("c");
    assert_eq!(replies[0].text, answer(&okpay(), "contact_support", Lang::En));
    assert!(replies.last().unwrap().text.contains("How much"), "{replies:?}");
    // "Talk to a person" from an earlier fallback hands off with what was collected.
    let done = h.press("c", PAYLOAD_HUMAN_FALLBACK).await;
    assert_eq!(done.action, Action::Handoff);
    let t = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(t.reason, HandoffReason::Intent("transfer_not_received".into()));
    assert_eq!(t.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec!["time"]);
}

#[tokio::test]
async fn a_stolen_account_gets_the_steps_and_jumps_the_queue() {
    let h = memory();
    let normal = h.say("a", "human").await.ticket_id.unwrap();
    let stolen = h.say("b", "我的账号被盗了,有陌生交易").await;
    assert_eq!((stolen.action, stolen.intent.as_deref()), (Action::Handoff, Some("account_stolen")));
    let replies = h.replies("b");
    assert_eq!(replies[0].text, answer(&okpay(), "account_stolen", Lang::Zh), "the immediate steps come first");
    assert!(replies[1].text.contains("第 1 位"), "urgent goes ahead of the normal ticket: {}", replies[1].text);
    let t = h.engine.store().ticket(stolen.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(t.priority, Priority::Urgent);
    let AgentOutcome::Queue(q) = h.engine.agent(&alice(), AgentCommand::Queue).await.unwrap() else { panic!() };
    assert_eq!(q.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t.id, normal]);
}

#[tokio::test]
async fn handled_ids_are_remembered_for_the_retention_period_then_forgotten() {
    let h = memory();
    // The harness dates its messages in 2023: far older than the week handled ids are kept.
    let old = h.inbound("r", Content::Text("my account is locked".into()));
    let mut recent = h.inbound("r", Content::Text("my transfer failed".into()));
    recent.at = switchboard_core::types::now_ms();
    assert_eq!(h.engine.handle(old.clone()).await.unwrap().action, Action::Answer);
    assert_eq!(h.engine.handle(recent.clone()).await.unwrap().action, Action::Answer);
    assert_eq!(h.engine.housekeep().await.unwrap().handled_ids, 1, "only the old id is forgotten");
    assert_eq!(h.engine.housekeep().await.unwrap().handled_ids, 0);
    assert_eq!(h.engine.handle(recent).await.unwrap().action, Action::Duplicate, "a recent redelivery is still refused");
    assert_ne!(h.engine.handle(old).await.unwrap().action, Action::Duplicate, "the old id was forgotten");
}

/// Housekeeping applies `[retention]`: transcript lines past it go, in batches; tickets closed
/// longer ago lose their texts; what is recent stays.
#[tokio::test]
async fn housekeeping_deletes_old_transcripts_and_erases_old_closed_tickets() {
    let day = std::time::Duration::from_secs(86_400);
    let retention = switchboard_core::engine::Retention { transcript: Some(day), closed_tickets: Some(std::time::Duration::ZERO) };
    let config = EngineConfig { retention, ..support::config() };
    let h = Harness::with_config(Arc::new(MemoryStore::new()), Arc::new(switchboard_core::engine::Brain::new(okpay())), config);
    // The harness dates its messages in 2023; this one is written now.
    assert_eq!(h.say("old", "my account is locked").await.action, Action::Answer);
    let mut recent = h.inbound("new", Content::Text("my transfer failed".into()));
    recent.at = switchboard_core::types::now_ms();
    assert_eq!(h.engine.handle(recent).await.unwrap().action, Action::Answer);
    let tid = h.say("t", "转人工").await.ticket_id.unwrap();
    h.engine.agent(&alice(), AgentCommand::Reply(tid, "Hello, I am on it".into())).await.unwrap();
    h.engine.agent(&alice(), AgentCommand::Close(tid)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let done = h.engine.housekeep().await.unwrap();
    assert_eq!(done.erased_tickets, 1, "{done:?}");
    assert!(done.transcript_lines >= 2, "the old question and its answer: {done:?}");
    let (old, new) = (h.conversation("old").await, h.conversation("new").await);
    assert!(h.engine.store().transcript(old.id, 100).await.unwrap().is_empty());
    assert_eq!(h.engine.store().transcript(new.id, 100).await.unwrap().len(), 2, "written now: kept");
    let events = h.engine.store().ticket_events(tid).await.unwrap();
    assert!(!events.iter().any(|e| format!("{:?}", e.kind).contains("Hello, I am on it")), "{events:?}");
    let again = h.engine.housekeep().await.unwrap();
    assert_eq!((again.transcript_lines, again.erased_tickets), (0, 0), "each once");
}

#[tokio::test]
async fn a_duplicate_delivery_is_answered_once() {
    let h = memory();
    let msg = h.inbound("c", Content::Text("my account is locked".into()));
    let first = h.engine.handle(msg.clone()).await.unwrap();
    let second = h.engine.handle(msg).await.unwrap();
    h.engine.flush().await.unwrap();
    assert_eq!(first.action, Action::Answer);
    assert_eq!(second.action, Action::Duplicate);
    assert_eq!(h.replies("c").len(), 1);
    let conv = h.engine.store().open_conversation(switchboard_core::store::NewConversation {
        key: switchboard_core::types::ConversationKey { channel: support::CHANNEL.into(), chat: "c".into() },
        customer_id: String::new(),
        customer_name: String::new(),
        lang: Lang::En,
        at: 0,
    });
    let conv = conv.await.unwrap();
    assert_eq!(h.engine.store().transcript(conv.id, 100).await.unwrap().len(), 2, "one customer line, one answer");
}

#[tokio::test]
async fn bad_input_is_handled_without_losing_anything() {
    let h = memory();
    assert_eq!(h.say("c", "   \n\t ").await.action, Action::Ignored);
    assert_eq!(h.say("c", "\u{200b}\u{feff}").await.action, Action::Ignored);
    assert!(h.replies("c").is_empty());

    let long = "账".repeat(MAX_MESSAGE_CHARS + 500);
    let got = h.say("c", &long).await;
    assert_eq!(got.action, Action::TooLong);
    assert_eq!(h.replies("c")[0].text, Phrase::TooLong.text(Lang::Zh));

    let photo = h.engine.handle(h.inbound("c", Content::Unsupported("photo".into()))).await.unwrap();
    h.engine.flush().await.unwrap();
    assert_eq!(photo.action, Action::Unsupported);
    assert_eq!(h.replies("c")[0].text, Phrase::TextOnly.text(Lang::Zh));

    assert!(h.all_tickets().await.is_empty(), "no ticket was opened");
    let conv = h.conversation("c").await;
    let lines = h.engine.store().transcript(conv.id, 100).await.unwrap();
    let customer: Vec<&str> = lines.iter().filter(|l| l.author == Author::Customer).map(|l| l.text.as_str()).collect();
    assert_eq!(customer.len(), 2, "ignored messages are not stored, the others are");
    assert_eq!(customer[0].chars().count(), MAX_MESSAGE_CHARS, "stored cut");
    assert_eq!(customer[1], "[photo]");
}

#[tokio::test]
async fn a_photo_with_a_caption_is_answered_from_the_caption_and_kept_with_it() {
    let h = memory();
    let pack = okpay();
    let captioned = |text: &str| Content::Captioned { kind: "photo".into(), text: text.into() };
    let got = h.engine.handle(h.inbound("c", captioned("my transfer failed, see the screenshot"))).await.unwrap();
    h.engine.flush().await.unwrap();
    assert_eq!((got.action, got.intent.as_deref()), (Action::Answer, Some("transfer_failed")));
    assert_eq!(h.replies("c")[0].text, answer(&pack, "transfer_failed", Lang::En));
    // A caption of blanks is a photo without words.
    let blank = h.engine.handle(h.inbound("c", captioned(" \u{200b} "))).await.unwrap();
    assert_eq!(blank.action, Action::Unsupported);
    h.replies("c");

    // While a person has the ticket, the words and the photo's mention reach the desk together.
    let tid = h.say("c", "human").await.ticket_id.unwrap();
    h.desk.take();
    let silent = h.engine.handle(h.inbound("c", captioned("this is the error I get"))).await.unwrap();
    assert_eq!(silent.action, Action::Silent);
    let events = h.engine.store().ticket_events(tid).await.unwrap();
    assert!(events.iter().any(|e| e.kind == TicketEventKind::CustomerMessage { text: "[photo] this is the error I get".into() }));
    h.engine.flush().await.unwrap();
    assert!(h.desk.take().iter().any(|n| matches!(n,
        Recorded::Notice { notice: DeskNotice::CustomerMessage { text }, .. } if text == "[photo] this is the error I get")));

    let conv = h.engine.store().ticket(tid).await.unwrap().unwrap().conversation_id;
    let lines = h.engine.store().transcript(conv, 100).await.unwrap();
    let customer: Vec<&str> = lines.iter().filter(|l| l.author == Author::Customer).map(|l| l.text.as_str()).collect();
    assert_eq!(customer, ["[photo] my transfer failed, see the screenshot", "[photo]", "human", "[photo] this is the error I get"]);
}

#[tokio::test]
async fn failed_sends_are_retried_and_a_blocked_customer_is_recorded() {
    let h = memory();
    h.rec.fail_next(vec![ChannelError::Transient("timeout".into()), ChannelError::RateLimited(std::time::Duration::from_millis(1))]);
    h.engine.handle(h.inbound("c", Content::Text("my account is locked".into()))).await.unwrap();
    for _ in 0..200 {
        h.engine.flush().await.unwrap();
        if !h.rec.sent_to("c").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(h.replies("c").len(), 1, "delivered after two failures");

    let tid = h.say("b", "human").await.ticket_id.unwrap();
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.rec.fail_next(vec![ChannelError::Blocked("bot was blocked by the user".into())]);
    h.engine.flush().await.unwrap();
    let events = h.engine.store().ticket_events(tid).await.unwrap();
    assert!(events.iter().any(|e| matches!(&e.kind, TicketEventKind::DeliveryFailed { .. })), "{events:?}");
    assert!(h.engine.store().outbox_pending().await.unwrap().is_empty(), "not retried forever");

    // The undeliverable item is kept for inspection for the retention period, then forgotten.
    assert_eq!(h.engine.housekeep().await.unwrap().failed_items, 0, "kept for 30 days");
    let config = EngineConfig { failed_retention: std::time::Duration::ZERO, ..support::config() };
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let later = Engine::new(h.engine.store().clone(), okpay(), config);
    assert_eq!(later.housekeep().await.unwrap().failed_items, 1);
    assert_eq!(later.housekeep().await.unwrap().failed_items, 0);
    assert!(
        h.engine.store().ticket_events(tid).await.unwrap().iter().any(|e| matches!(&e.kind, TicketEventKind::DeliveryFailed { .. })),
        "the ticket keeps the record"
    );
}

#[tokio::test]
async fn concurrent_messages_on_one_conversation_are_all_kept() {
    let h = Arc::new(memory());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move { h.engine.handle(h.inbound("c", Content::Text(format!("hello {i}")))).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let customer = h.engine.store().transcript(1, 1000).await.unwrap().into_iter().filter(|l| l.author == Author::Customer).count();
    assert_eq!(customer, 20);
}

#[tokio::test]
async fn a_restart_keeps_the_queue_owners_transcripts_and_pending_replies() {
    let dir = tempfile::tempdir().unwrap();
    let (urgent, normal, claimed_conv);
    {
        let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
        let h = Harness::new(store.clone());
        normal = h.say("a", "转人工").await.ticket_id.unwrap();
        urgent = h.say("b", "someone hacked my account and took my money").await.ticket_id.unwrap();
        h.engine.agent(&alice(), AgentCommand::Claim(normal)).await.unwrap();
        claimed_conv = store.ticket(normal).await.unwrap().unwrap().conversation_id;
        // A reply that cannot be delivered before the "crash".
        h.rec.fail_next((0..10).map(|_| ChannelError::Transient("down".into())).collect());
        h.engine.agent(&alice(), AgentCommand::Reply(normal, "我来帮您处理".into())).await.unwrap();
        let _ = h.engine.deliver_due().await;
        store.close().await;
    }
    let store = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let h = Harness::new(store.clone());
    let AgentOutcome::Queue(q) = h.engine.agent(&alice(), AgentCommand::Queue).await.unwrap() else { panic!() };
    assert_eq!(
        q.iter().map(|t| (t.id, t.status)).collect::<Vec<_>>(),
        vec![(urgent, TicketStatus::Queued), (normal, TicketStatus::Assigned)]
    );
    let conv = store.conversation(claimed_conv).await.unwrap().unwrap();
    assert_eq!(conv.owner, Owner::Agent("desk:alice".into()));
    let lines = store.transcript(claimed_conv, 100).await.unwrap();
    assert_eq!(lines.first().map(|l| l.text.as_str()), Some("转人工"));
    assert_eq!(lines.last().map(|l| l.text.as_str()), Some("我来帮您处理"));
    // The undelivered reply goes out after the restart (once its retry is due).
    for _ in 0..200 {
        h.engine.flush().await.unwrap();
        if h.rec.sent_to("a").iter().any(|r| r.text == "我来帮您处理") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(h.rec.sent_to("a").iter().any(|r| r.text == "我来帮您处理"));
    // And the bot stays silent for the claimed customer.
    assert_eq!(h.say("a", "你好").await.action, Action::Silent);
}

#[tokio::test]
async fn names_that_would_reorder_text_are_cleaned_for_agents_and_customers() {
    let h = memory();
    let mut inbound = h.inbound("bidi", Content::Text("转人工".into()));
    inbound.customer_name = "\u{202E}nimda\u{202C} Eve\u{200B}".into();
    let tid = h.engine.handle(inbound).await.unwrap().ticket_id.unwrap();
    h.engine.flush().await.unwrap();
    let t = h.engine.store().ticket(tid).await.unwrap().unwrap();
    assert_eq!(t.customer_name, "nimda Eve", "no bidirectional or invisible characters reach a desk");
    let agent = Actor::new("desk:alice", "Al\u{2067}ice\u{2069}\nx");
    h.engine.agent(&agent, AgentCommand::Claim(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    let joined = h.replies("bidi").into_iter().map(|r| r.text).find(|t| t.contains("已接入")).unwrap();
    assert!(joined.contains("客服 Alice x 已接入"), "{joined}");
}

#[tokio::test]
async fn a_button_pressed_while_queued_shows_agents_its_label() {
    let h = memory();
    let pack = okpay();
    let tid = h.say("btn", "转人工").await.ticket_id.unwrap();
    h.desk.take();
    // A button from an earlier answer, pressed while the ticket waits.
    assert_eq!(h.press("btn", "intent:account_locked").await.action, Action::Silent);
    let label = pack.intent("account_locked").unwrap().text(Lang::Zh).unwrap().label.clone();
    let texts: Vec<String> = h
        .desk
        .notices()
        .into_iter()
        .filter_map(|(t, n)| match n {
            DeskNotice::CustomerMessage { text } if t == tid => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![format!("[{label}]")]);
}

#[tokio::test]
async fn every_way_of_asking_for_a_person_gives_one_reason() {
    let h = memory();
    for (chat, text) in [("r1", "转人工"), ("r2", "human please"), ("r3", "can I talk to a real person")] {
        let done = h.say(chat, text).await;
        assert_eq!(done.action, Action::Handoff, "{text}");
        let t = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
        assert_eq!(t.reason, HandoffReason::CustomerRequest, "{text}");
    }
}

#[tokio::test]
async fn a_customer_with_an_open_ticket_is_told_their_long_message_was_cut() {
    let h = memory();
    let tid = h.say("c", "human").await.ticket_id.unwrap();
    h.replies("c");
    h.desk.take();
    let cut_lines = |h: &Harness| -> Vec<String> {
        h.desk
            .take()
            .into_iter()
            .filter_map(|n| match n {
                Recorded::Notice { notice: DeskNotice::CustomerMessage { text }, .. } => Some(text),
                _ => None,
            })
            .collect()
    };
    let marker = format!(" [cut at {MAX_MESSAGE_CHARS} characters]");

    // Queued: told, in their language, and the desk still gets the first 4,000 with the marker.
    let got = h.say("c", &"账".repeat(MAX_MESSAGE_CHARS + 500)).await;
    assert_eq!(got.action, Action::TooLong);
    assert_eq!(got.ticket_id, Some(tid), "the message went to the ticket");
    let told: Vec<String> = h.replies("c").into_iter().map(|r| r.text).collect();
    assert_eq!(told, [Phrase::TooLong.text(Lang::Zh)]);
    assert_eq!(cut_lines(&h), [format!("{}{marker}", "账".repeat(MAX_MESSAGE_CHARS))]);

    // With an agent: the same, in the customer's script (traditional here) and nothing from the bot else.
    h.engine.agent(&alice(), AgentCommand::Claim(tid)).await.unwrap();
    h.engine.flush().await.unwrap();
    h.replies("c");
    h.desk.take();
    let got = h.say("c", &"帳號".repeat(MAX_MESSAGE_CHARS)).await;
    assert_eq!(got.action, Action::TooLong);
    let told: Vec<String> = h.replies("c").into_iter().map(|r| r.text).collect();
    let traditional = switchboard_core::hant::to_traditional(Phrase::TooLong.text(Lang::Zh));
    assert_ne!(traditional, Phrase::TooLong.text(Lang::Zh));
    assert_eq!(told, [traditional]);
    assert_eq!(cut_lines(&h), [format!("{}{marker}", "帳號".repeat(MAX_MESSAGE_CHARS / 2))]);

    // In English, likewise; a message within the limit still reaches the agent alone.
    h.say("c", &"word ".repeat(MAX_MESSAGE_CHARS)).await;
    let told: Vec<String> = h.replies("c").into_iter().map(|r| r.text).collect();
    assert_eq!(told, [Phrase::TooLong.text(Lang::En)]);
    assert!(cut_lines(&h)[0].ends_with(&marker));
    assert_eq!(h.say("c", "are you there?").await.action, Action::Silent);
    assert!(h.replies("c").is_empty());
    let events = h.engine.store().ticket_events(tid).await.unwrap();
    let cut = events.iter().filter(|e| matches!(&e.kind, TicketEventKind::CustomerMessage { text } if text.ends_with(&marker))).count();
    assert_eq!(cut, 3, "the ticket's history keeps the cut text with the marker");
}

#[tokio::test]
async fn secrets_are_masked_before_anything_is_stored_or_shown_and_the_customer_is_told() {
    let h = memory();
    let pack = okpay();
    // A card number pasted into a question still gets that question's answer.
    let got = h.say("s", "my account is locked, my card 4242 4242 4242 4242 and my password is hunter2").await;
    assert_eq!(got.intent.as_deref(), Some("account_locked"));
    let replies: Vec<String> = h.replies("s").into_iter().map(|r| r.text).collect();
    assert_eq!(replies[0], Phrase::SecretHidden.text(Lang::En), "told first");
    assert_eq!(replies[1], answer(&pack, "account_locked", Lang::En));
    let conv = h.conversation("s").await;
    let lines: Vec<String> = h.engine.store().transcript(conv.id, 100).await.unwrap().into_iter().map(|l| l.text).collect();
    assert_eq!(lines[0], "my account is locked, my card [card •••• 4242] and my password is [password]");
    assert!(lines.iter().all(|l| !l.contains("4242 4242") && !l.contains("hunter2")), "{lines:?}");

    // While queued, the desk sees the placeholder, never the code; in Chinese, the notice is too.
    let tid = h.say("q", "转人工").await.ticket_id.unwrap();
    h.replies("q");
    h.desk.take();
    h.say("q", "验证码 384920 输进去没用").await;
    assert_eq!(h.replies("q")[0].text, Phrase::SecretHidden.text(Lang::Zh));
    let relayed: Vec<String> = h
        .desk
        .notices()
        .into_iter()
        .filter_map(|(t, n)| match n {
            DeskNotice::CustomerMessage { text } if t == tid => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(relayed, ["验证码 [code] 输进去没用"]);
    // Look-alikes are left as written, and nobody is told anything.
    let plain = h.say("p", "order 4242424242424241 failed, I sent 1,500.00 USD on 2026-12-01").await;
    assert!(plain.replies.iter().all(|r| r.text != Phrase::SecretHidden.text(Lang::En)));
}
