//! The agents' desk: a staff supergroup with topics. Each ticket gets a forum topic named after
//! it that starts with the ticket's summary; the ticket's events are posted there, and closing the
//! ticket closes the topic. Ticket ↔ topic mappings live in the engine store's key-value space, so
//! they survive restarts and are shared by every instance.
//!
//! All topics are in one group, under one Telegram limit (20 messages a minute per group): a 429
//! on the staff group is [`ChannelError::Paused`], so the engine holds every ticket's notices, not
//! only the one that hit it.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::channel::{AgentDesk, TicketView, ticket_summary, ticket_title};
use switchboard_core::guard;

use crate::send::utf16_len;
use switchboard_core::store::Store;
use switchboard_core::types::DeskNotice;
use switchboard_core::{ChannelError, StoreError};
use teloxide::prelude::*;
use teloxide::types::{MessageId, ThreadId};

use crate::error::{Failure, short};
use crate::send::Outbound;

/// Key-value namespace: `<staff chat>:<ticket id>` → forum topic (message thread) id.
pub const TOPIC_NS: &str = "telegram.topic";
/// Key-value namespace: `<staff chat>:<thread id>` → ticket id.
pub const TOPIC_TICKET_NS: &str = "telegram.topic_ticket";

/// Telegram's limit on a topic name.
const MAX_TOPIC_NAME: usize = 128;

/// Names in a notice's prefix are cut to this many characters (at most twice as many UTF-16
/// units), so a prefix fits in [`crate::DESK_PREFIX_ROOM`].
pub(crate) const MAX_NAME: usize = 64;

/// The forum topic of `ticket` in `staff`, if one was opened.
pub async fn topic_of(store: &dyn Store, staff: i64, ticket: i64) -> Result<Option<i32>, StoreError> {
    Ok(store.get_value(TOPIC_NS, &format!("{staff}:{ticket}")).await?.and_then(|v| v.parse().ok()))
}

/// The ticket whose forum topic is `thread` in `staff`.
pub async fn ticket_of(store: &dyn Store, staff: i64, thread: i32) -> Result<Option<i64>, StoreError> {
    Ok(store.get_value(TOPIC_TICKET_NS, &format!("{staff}:{thread}")).await?.and_then(|v| v.parse().ok()))
}

/// Records both directions in one transaction (the same layout as the core's
/// [`TicketLinks`](switchboard_core::links::TicketLinks) with scope `"{staff}:"`).
async fn remember(store: &dyn Store, staff: i64, ticket: i64, thread: i32) -> Result<(), StoreError> {
    let (place_key, ticket_key) = (format!("{staff}:{thread}"), format!("{staff}:{ticket}"));
    let (ticket_text, thread_text) = (ticket.to_string(), thread.to_string());
    store.set_values(&[(TOPIC_TICKET_NS, &place_key, &ticket_text), (TOPIC_NS, &ticket_key, &thread_text)]).await
}

async fn forget(store: &dyn Store, staff: i64, ticket: i64) -> Result<(), StoreError> {
    // An empty value parses as no topic; the reverse mapping stays for messages in the old topic.
    store.set_value(TOPIC_NS, &format!("{staff}:{ticket}"), "").await
}

/// A topic name within Telegram's limit (which counts UTF-16 units).
pub(crate) fn topic_name(view: &TicketView) -> String {
    let mut max = MAX_TOPIC_NAME;
    loop {
        let name = ticket_title(&view.ticket, max);
        if utf16_len(&name) <= MAX_TOPIC_NAME || max <= 8 {
            return name;
        }
        max -= 4;
    }
}

/// What a notice looks like in the ticket's topic; `None` for the summary (posted on its own).
pub(crate) fn notice_text(view: &TicketView, notice: &DeskNotice) -> Option<String> {
    let t = &view.ticket;
    let name = |n: &str| short(n, MAX_NAME);
    Some(match notice {
        DeskNotice::Opened => return None,
        DeskNotice::CustomerMessage { text } => format!("👤 {}: {text}", name(&t.customer_name)),
        DeskNotice::AgentReply { agent, text } => format!("💬 {} → customer: {text}", name(agent)),
        DeskNotice::Note { agent, text } => format!("📝 Note by {} (not sent to the customer): {text}", name(agent)),
        DeskNotice::Claimed { agent } => format!("✋ {agent} claimed ticket #{}.", t.id),
        DeskNotice::Released { agent } => format!("↩️ {agent} released ticket #{} back to the queue.", t.id),
        DeskNotice::Closed { agent } => format!("✅ {agent} closed ticket #{}. The customer is back with the bot.", t.id),
        DeskNotice::DeliveryFailed { reason } => format!("⚠️ A message could not be delivered to the customer: {reason}"),
        DeskNotice::Blocked { agent, until, reason } => {
            format!("🚫 {agent} blocked the customer{}. Their messages are kept but not answered.", guard::block_terms(*until, reason))
        }
        DeskNotice::Unblocked { agent } => format!("🔓 {agent} unblocked the customer."),
        DeskNotice::Rated { score, comment } => format!(
            "⭐ The customer rated the help on ticket #{} {score}/5{}",
            t.id,
            comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
    })
}

/// The staff supergroup. Registered with the engine as the desk `"telegram"`.
#[derive(Debug)]
pub struct TelegramDesk {
    out: Arc<Outbound>,
    store: Arc<dyn Store>,
    staff: i64,
}

impl TelegramDesk {
    pub(crate) fn new(out: Arc<Outbound>, store: Arc<dyn Store>, staff: i64) -> TelegramDesk {
        TelegramDesk { out, store, staff }
    }

    /// The ticket's topic, opened (with the summary as its first message) if it has none yet.
    async fn topic(&self, view: &TicketView) -> Result<i32, ChannelError> {
        let store = self.store.as_ref();
        if let Some(thread) = topic_of(store, self.staff, view.ticket.id).await.map_err(transient)? {
            return Ok(thread);
        }
        let req = self.out.bot().create_forum_topic(ChatId(self.staff), topic_name(view));
        let topic = self.out.call(req).await.map_err(|f| self.desk_error(f))?;
        let thread = topic.thread_id.0.0;
        remember(store, self.staff, view.ticket.id, thread).await.map_err(transient)?;
        tracing::info!(ticket = view.ticket.id, thread, "opened a forum topic for the ticket");
        Ok(thread)
    }

    async fn post(&self, view: &TicketView, thread: i32, text: &str) -> Result<(), ChannelError> {
        match self.out.send(self.staff, Some(thread), text, &[]).await {
            Ok(()) => Ok(()),
            Err(f) => Err(self.post_failed(view, f).await),
        }
    }

    /// What a failed post in a ticket's topic means for the engine.
    async fn post_failed(&self, view: &TicketView, f: Failure) -> ChannelError {
        match f {
            Failure::Permanent(why) if why.contains("thread not found") => {
                // Someone deleted the topic: open a new one on the retry.
                if let Err(e) = forget(self.store.as_ref(), self.staff, view.ticket.id).await {
                    return transient(e);
                }
                ChannelError::Transient(format!("the topic of ticket #{} is gone; opening a new one", view.ticket.id))
            }
            f => self.desk_error(f),
        }
    }

    fn desk_error(&self, f: Failure) -> ChannelError {
        desk_error(self.staff, f)
    }

    /// Posts in a ticket's topic that may be closed: the bot, an admin, may write there; should
    /// Telegram refuse (`TOPIC_CLOSED`), the topic is reopened for the post and closed again.
    async fn post_in_closed(&self, view: &TicketView, thread: i32, text: &str) -> Result<(), ChannelError> {
        match self.out.send(self.staff, Some(thread), text, &[]).await {
            Err(Failure::Permanent(why)) if why.contains("TOPIC_CLOSED") => {
                let topic = ThreadId(MessageId(thread));
                self.out.call(self.out.bot().reopen_forum_topic(ChatId(self.staff), topic)).await.map_err(|f| self.desk_error(f))?;
                self.post(view, thread, text).await?;
                self.out.call(self.out.bot().close_forum_topic(ChatId(self.staff), topic)).await.map_err(|f| self.desk_error(f))?;
                Ok(())
            }
            Err(f) => Err(self.post_failed(view, f).await),
            Ok(()) => Ok(()),
        }
    }
}

/// How a failed request to the staff group reaches the engine: a 429 covers the whole group, so
/// every ticket's topic waits ([`ChannelError::Paused`]).
fn desk_error(staff: i64, f: Failure) -> ChannelError {
    match &f {
        Failure::RateLimited(wait) => {
            tracing::warn!(
                staff_chat = staff,
                wait_ms = wait.as_millis() as u64,
                "Telegram rate-limited the staff group; every ticket waits"
            );
            return ChannelError::Paused(*wait);
        }
        Failure::Blocked(why) | Failure::Permanent(why) => {
            tracing::error!(staff_chat = staff, error = %why, "the Telegram staff group refused a message: is the bot an admin with \"manage topics\" in a supergroup with topics on?");
        }
        Failure::Transient(_) => {}
    }
    f.into()
}

fn transient(e: StoreError) -> ChannelError {
    ChannelError::Transient(e.to_string())
}

#[async_trait]
impl AgentDesk for TelegramDesk {
    fn name(&self) -> &str {
        crate::DESK
    }

    async fn notify(&self, view: &TicketView, notice: &DeskNotice) -> Result<(), ChannelError> {
        self.notify_by(view, notice, None).await
    }

    async fn notify_by(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>) -> Result<(), ChannelError> {
        // What a Telegram agent wrote is already in the topic: don't echo it.
        let from_here = by.is_some_and(|b| b.starts_with(crate::ACTOR_PREFIX));
        if from_here && matches!(notice, DeskNotice::AgentReply { .. } | DeskNotice::Note { .. }) {
            return Ok(());
        }
        let known = topic_of(self.store.as_ref(), self.staff, view.ticket.id).await.map_err(transient)?.is_some();
        if !known && matches!(notice, DeskNotice::Rated { .. }) {
            // Rated after the close: a ticket that never had a topic here needs none now.
            return Ok(());
        }
        let thread = self.topic(view).await?;
        if !known || matches!(notice, DeskNotice::Opened) {
            // A new topic starts with the summary (also when the ticket predates this desk).
            self.post(view, thread, &ticket_summary(view)).await?;
        }
        let Some(text) = notice_text(view, notice) else { return Ok(()) };
        if matches!(notice, DeskNotice::Rated { .. }) {
            // Rated after the close: the topic is closed, and only admins may still write there.
            return self.post_in_closed(view, thread, &text).await;
        }
        self.post(view, thread, &text).await?;
        if matches!(notice, DeskNotice::Closed { .. }) {
            let req = self.out.bot().close_forum_topic(ChatId(self.staff), ThreadId(MessageId(thread)));
            match self.out.call(req).await {
                Ok(_) => {}
                // Already closed by hand: fine.
                Err(Failure::Permanent(why)) if why.contains("TOPIC_NOT_MODIFIED") => {}
                Err(f) => return Err(self.desk_error(f)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Lang;
    use switchboard_core::types::{ConversationKey, HandoffReason, Priority, Ticket, TicketStatus};

    fn view(name: &str) -> TicketView {
        TicketView {
            ticket: Ticket {
                id: 7,
                conversation_id: 1,
                key: ConversationKey { channel: "telegram".into(), chat: "42".into() },
                customer_id: "42".into(),
                customer_name: name.into(),
                lang: Lang::En,
                reason: HandoffReason::CustomerRequest,
                priority: Priority::Urgent,
                fields: vec![],
                status: TicketStatus::Queued,
                agent: None,
                created_at: 0,
                updated_at: 0,
            },
            recent: vec![],
        }
    }

    #[test]
    fn topic_names_fit_telegrams_limit() {
        let name = topic_name(&view(&"😀".repeat(200)));
        assert!(utf16_len(&name) <= MAX_TOPIC_NAME, "{}", utf16_len(&name));
        assert!(name.starts_with("🔴 #7"));
        assert_eq!(topic_name(&view("Alice")), "🔴 #7 Alice · asked for a person");
    }

    #[test]
    fn a_rating_shows_its_score_and_comment() {
        let rated = DeskNotice::Rated { score: 4, comment: Some("thanks, fast".into()) };
        assert_eq!(notice_text(&view("Alice"), &rated).unwrap(), "⭐ The customer rated the help on ticket #7 4/5: thanks, fast");
        let bare = DeskNotice::Rated { score: 2, comment: None };
        assert_eq!(notice_text(&view("Alice"), &bare).unwrap(), "⭐ The customer rated the help on ticket #7 2/5");
    }
}
