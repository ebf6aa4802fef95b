//! Office hours end to end, on the memory store and SQLite: a handoff while agents are at work
//! tells the customer their place in the queue; outside the hours the ticket still opens and the
//! customer is told when the team is back, with the time zone, in their language and script; a
//! reason staffed around the clock gets the queue; a week without openings is "closed until
//! further notice".

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use support::{Harness, okpay};
use switchboard_core::dialogue::Action;
use switchboard_core::engine::{Brain, EngineConfig, Handled};
use switchboard_core::hours::HoursConfig;
use switchboard_core::store::{MemoryStore, SqlStore, Store};
use switchboard_core::types::{Content, TicketStatus};

/// Shanghai (UTC+8, no daylight saving): weekdays 09:00-18:00, closed on 2026-03-10, stolen
/// accounts staffed around the clock.
fn shanghai() -> HoursConfig {
    toml::from_str(
        r#"
        time_zone = "Asia/Shanghai"
        mon = "09:00-18:00"
        tue = "09:00-18:00"
        wed = ["09:00-12:00", "13:00-18:00"]
        thu = "09:00-18:00"
        fri = "09:00-18:00"
        closed = ["2026-03-10"]
        always_staffed = ["account_stolen"]
        "#,
    )
    .unwrap()
}

fn harness(store: Arc<dyn Store>, hours: &HoursConfig) -> Harness {
    let config = EngineConfig { hours: Some(hours.build().unwrap()), ..support::config() };
    Harness::with_config(store, Arc::new(Brain::new(okpay())), config)
}

/// Milliseconds of a Shanghai wall-clock time in March 2026 (UTC+8).
fn shanghai_ms(day: i64, hour: i64, minute: i64) -> i64 {
    // 2026-03-01T00:00:00+08:00.
    1_772_294_400_000 + (day - 1) * 86_400_000 + hour * 3_600_000 + minute * 60_000
}

/// The customer in `chat` types `text` at `at`; returns what the engine did and the texts sent.
async fn say_at(h: &Harness, chat: &str, text: &str, at: i64) -> (Handled, Vec<String>) {
    let mut inbound = h.inbound(chat, Content::Text(text.into()));
    inbound.at = at;
    let handled = h.engine.handle(inbound).await.unwrap();
    h.engine.flush().await.unwrap();
    (handled, h.replies(chat).into_iter().map(|r| r.text).collect())
}

async fn open_closed_and_always_staffed(store: Arc<dyn Store>) {
    let h = harness(store, &shanghai());
    // Wednesday 4 March, 10:00: at work.
    let (done, told) = say_at(&h, "en-open", "human", shanghai_ms(4, 10, 0)).await;
    assert_eq!(done.action, Action::Handoff);
    assert!(told.last().unwrap().contains("number 1 in the queue"), "{told:?}");
    let (_, told) = say_at(&h, "zh-open", "转人工", shanghai_ms(4, 11, 0)).await;
    assert!(told.last().unwrap().contains("排在第 2 位"), "{told:?}");
    // Lunch, then the afternoon: back today at 13:00.
    let (_, told) = say_at(&h, "lunch", "human", shanghai_ms(4, 12, 30)).await;
    assert!(told.last().unwrap().contains("our team is back today at 13:00 (Asia/Shanghai)"), "{told:?}");

    // Friday 6 March, 20:00: the ticket opens, and the customer is told when the team is back.
    let (done, told) = say_at(&h, "en-closed", "human", shanghai_ms(6, 20, 0)).await;
    assert_eq!(done.action, Action::Handoff);
    let ticket = h.engine.store().ticket(done.ticket_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(ticket.status, TicketStatus::Queued, "the ticket opens all the same");
    let last = told.last().unwrap();
    assert!(last.contains("our team is back Monday 09:00 (Asia/Shanghai)") && !last.contains("queue"), "{told:?}");
    let (_, told) = say_at(&h, "zh-closed", "转人工", shanghai_ms(7, 9, 30)).await;
    let last = told.last().unwrap();
    assert!(last.contains("客服团队将于周一 09:00(Asia/Shanghai)回来") && !last.contains("排在"), "{told:?}");
    let (_, told) = say_at(&h, "hant-closed", "轉人工", shanghai_ms(7, 9, 30)).await;
    assert!(told.last().unwrap().contains("週一 09:00(Asia/Shanghai)"), "in traditional characters: {told:?}");
    // Writing again while they wait: reminded when the team is back, not of a place.
    let (again, told) = say_at(&h, "en-closed", "hello? anyone?", shanghai_ms(6, 20, 10)).await;
    assert_eq!(again.action, Action::Waiting);
    assert!(told[0].contains("our team is back Monday 09:00 (Asia/Shanghai)") && !told[0].contains("number"), "{told:?}");

    // A stolen account is staffed around the clock: the queue, at night too.
    let (done, told) = say_at(&h, "stolen", "someone hacked my account and took my money", shanghai_ms(6, 23, 0)).await;
    assert_eq!((done.action, done.intent.as_deref()), (Action::Handoff, Some("account_stolen")));
    assert!(told.last().unwrap().contains("number 1 in the queue"), "urgent, ahead of the others: {told:?}");
    let (_, told) = say_at(&h, "stolen-zh", "我的账号被盗了,有陌生交易", shanghai_ms(7, 3, 0)).await;
    assert!(told.last().unwrap().contains("排在第 2 位"), "{told:?}");

    // Monday 9 March, 18:30: Tuesday 10 is closed, so Wednesday.
    let (_, told) = say_at(&h, "holiday", "human", shanghai_ms(9, 18, 30)).await;
    assert!(told.last().unwrap().contains("back Wednesday 09:00 (Asia/Shanghai)"), "{told:?}");
}

#[tokio::test]
async fn the_right_message_open_closed_and_always_staffed_on_the_memory_store() {
    open_closed_and_always_staffed(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_right_message_open_closed_and_always_staffed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    open_closed_and_always_staffed(Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap())).await;
}

#[tokio::test]
async fn a_week_without_openings_is_closed_until_further_notice() {
    let hours: HoursConfig = toml::from_str("time_zone = \"Europe/Paris\"").unwrap();
    let h = harness(Arc::new(MemoryStore::new()), &hours);
    let (done, told) = say_at(&h, "en", "human", shanghai_ms(4, 10, 0)).await;
    assert_eq!(done.action, Action::Handoff);
    assert!(told.last().unwrap().contains("closed until further notice"), "{told:?}");
    let (_, told) = say_at(&h, "zh", "转人工", shanghai_ms(4, 10, 0)).await;
    assert!(told.last().unwrap().contains("恢复时间另行通知"), "{told:?}");
}
