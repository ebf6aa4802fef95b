//! The two traits adapters implement — [`Channel`] (where customers are) and [`AgentDesk`] (where
//! agents work) — plus what every adapter needs alike: the ticket summary text, splitting long
//! messages at a platform's limit, and [`Recorder`], an in-memory channel and desk for tests.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::ChannelError;
use crate::types::{Author, DeskNotice, Reply, Ticket, TranscriptEntry};

/// A platform customers write on. The core sends replies through it.
#[async_trait]
pub trait Channel: Send + Sync + std::fmt::Debug {
    /// The name inbound messages carry in [`crate::types::Inbound::channel`].
    fn name(&self) -> &str;
    /// Sends a reply to a platform conversation. Split long text, render choices as buttons, and
    /// never let customer or agent text inject formatting or mentions.
    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError>;
    /// Sends a reply carrying `nonce`, a key unique to this outbox item that stays the same across
    /// retries, restarts and instances: a platform that creates messages idempotently (Discord's
    /// `nonce` with `enforce_nonce`) uses it so a retry after a crash is not shown twice. The
    /// engine calls this one; by default it is [`Channel::send`].
    async fn send_once(&self, chat: &str, reply: &Reply, nonce: &str) -> Result<(), ChannelError> {
        let _ = nonce;
        self.send(chat, reply).await
    }
    /// Whether this channel shows its customers the conversation's transcript itself (the web
    /// chat reads the stored lines after the last one a page has, and is told of new ones by
    /// [`crate::engine::Engine::transcript_updates`]). Replies to such a channel's customers are
    /// then not queued in the outbox by this process: the transcript line written in the same
    /// commit is their delivery. A process without the channel still queues them, and the
    /// channel's [`Channel::send`] then only has to wake its pages.
    fn shows_transcript(&self) -> bool {
        false
    }
}

/// The longest text one platform message may hold, as the platform measures it. Adapters export
/// theirs (`switchboard_telegram::TEXT_LIMIT`…); the engine splits long replies and desk notices
/// into parts within it before they are queued, one outbox item per part, so a restart resumes at
/// the right part on any instance.
#[derive(Debug, Clone, Copy)]
pub struct TextLimit {
    /// The most units one message may hold (leave room for what the adapter adds, such as a
    /// mention or an agent's name).
    pub max: usize,
    /// How the platform counts: [`chars_len`], or the adapter's own measure (Telegram counts
    /// UTF-16 units, Discord the text as escaped).
    pub measure: fn(&str) -> usize,
}

impl TextLimit {
    /// `text` in parts within the limit ([`split_message`]).
    pub fn split(&self, text: &str) -> Vec<String> {
        split_message(text, self.max, self.measure)
    }
}

/// A ticket with what a desk needs to show it.
#[derive(Debug, Clone)]
pub struct TicketView {
    /// The ticket.
    pub ticket: Ticket,
    /// The last messages of its conversation (filled for [`DeskNotice::Opened`]).
    pub recent: Vec<TranscriptEntry>,
}

/// Where agents work (a staff group, a staff channel). The core notifies it of ticket changes.
#[async_trait]
pub trait AgentDesk: Send + Sync + std::fmt::Debug {
    /// A name for logs.
    fn name(&self) -> &str;
    /// Shows a ticket event. Errors are retried like customer messages.
    async fn notify(&self, view: &TicketView, notice: &DeskNotice) -> Result<(), ChannelError>;
    /// Shows a ticket event caused by `by` (the acting agent's actor id; `None` for the customer or
    /// the system), so a desk can skip echoing what its own agents just wrote there. The engine
    /// calls this one; by default it is [`AgentDesk::notify`].
    async fn notify_by(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>) -> Result<(), ChannelError> {
        let _ = by;
        self.notify(view, notice).await
    }
    /// [`AgentDesk::notify_by`] with the outbox item's idempotency key (see [`Channel::send_once`]).
    /// The engine calls this one; by default it is [`AgentDesk::notify_by`].
    async fn notify_once(&self, view: &TicketView, notice: &DeskNotice, by: Option<&str>, nonce: &str) -> Result<(), ChannelError> {
        let _ = nonce;
        self.notify_by(view, notice, by).await
    }
}

impl TicketView {
    /// The customer's language, and for Chinese the script of their latest message that tells
    /// (`zh (traditional characters)`), so an agent answers as the bot did.
    pub fn language(&self) -> String {
        let script = (self.ticket.lang == crate::Lang::Zh)
            .then(|| {
                self.recent.iter().rev().filter(|e| e.author == Author::Customer).find_map(|e| crate::hant::writes_traditional(&e.text))
            })
            .flatten();
        match script {
            Some(true) => format!("{} (traditional characters)", self.ticket.lang),
            Some(false) => format!("{} (simplified characters)", self.ticket.lang),
            None => self.ticket.lang.to_string(),
        }
    }
}

/// The plain-text summary of a ticket that desks post when it opens.
pub fn ticket_summary(view: &TicketView) -> String {
    let t = &view.ticket;
    let mut s = format!(
        "Ticket #{} — {}\nChannel: {}\nCustomer: {} ({})\nLanguage: {}\nReason: {}\nPriority: {}\n",
        t.id,
        t.customer_name,
        t.key.channel,
        t.customer_name,
        t.customer_id,
        view.language(),
        t.reason,
        t.priority.as_str()
    );
    if !t.fields.is_empty() {
        s.push_str("Details:\n");
        for f in &t.fields {
            s.push_str(&format!("  {}: {}\n", f.name, f.value));
        }
    }
    if !view.recent.is_empty() {
        s.push_str("Last messages:\n");
        for e in &view.recent {
            let who = match &e.author {
                Author::Customer => "customer",
                Author::Bot => "bot",
                Author::Agent(_) => "agent",
            };
            s.push_str(&format!("  [{who}] {}\n", one_line(&e.text, 300)));
        }
    }
    s.trim_end().to_string()
}

/// Why a ticket was opened, in the same words on every desk: the intent's id, `not understood`,
/// or `asked for a person`.
pub fn reason_text(reason: &crate::types::HandoffReason) -> String {
    match reason {
        crate::types::HandoffReason::Intent(id) => id.clone(),
        crate::types::HandoffReason::RepeatedFallback => "not understood".into(),
        crate::types::HandoffReason::CustomerRequest => "asked for a person".into(),
    }
}

/// A short title for a ticket (thread or topic names): `#12 Alice · transfer_not_received`.
pub fn ticket_title(t: &Ticket, max_chars: usize) -> String {
    let urgent = if t.priority == crate::types::Priority::Urgent { "🔴 " } else { "" };
    one_line(&format!("{urgent}#{} {} · {}", t.id, t.customer_name, reason_text(&t.reason)), max_chars)
}

/// One ticket of a queue listing, with what every desk shows of it; each desk renders it its own
/// way (the [`Display`](std::fmt::Display) form is the plain one), adding links or mentions.
#[derive(Debug, Clone)]
pub struct QueueLine<'a> {
    /// The ticket.
    pub ticket: &'a Ticket,
    /// The agent who has it (actor id), if assigned.
    pub holder: Option<&'a str>,
    /// [`reason_text`].
    pub reason: String,
    /// Whole minutes since it opened.
    pub waiting_minutes: i64,
}

impl<'a> QueueLine<'a> {
    /// The line for `ticket` at time `now`.
    pub fn new(ticket: &'a Ticket, now: crate::types::Millis) -> QueueLine<'a> {
        let holder = match (&ticket.status, &ticket.agent) {
            (crate::types::TicketStatus::Assigned, Some(a)) => Some(a.as_str()),
            _ => None,
        };
        QueueLine { ticket, holder, reason: reason_text(&ticket.reason), waiting_minutes: (now - ticket.created_at).max(0) / 60_000 }
    }

    /// `🔴 ` for an urgent ticket, else nothing.
    pub fn urgent_mark(&self) -> &'static str {
        if self.ticket.priority == crate::types::Priority::Urgent { "🔴 " } else { "" }
    }
}

impl std::fmt::Display for QueueLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.ticket;
        let who = match self.holder {
            Some(a) => format!("with {a}"),
            None => t.status.as_str().to_string(),
        };
        write!(
            f,
            "{}#{} {} · {} · {} · {} · {} · {} min",
            self.urgent_mark(),
            t.id,
            t.priority.as_str(),
            who,
            one_line(&t.customer_name, 40),
            self.reason,
            t.key.channel,
            self.waiting_minutes
        )
    }
}

/// A person's name as shown to others (agents, customers): control, zero-width and bidirectional
/// formatting characters removed (a name with U+202E would reorder a thread title or a `name:`
/// prefix), on one line, at most 64 characters; `fallback` when nothing is left.
pub fn display_name(name: &str, fallback: &str) -> String {
    let cleaned = crate::matcher::normalize::clean(name);
    let flat = one_line(cleaned.split_whitespace().collect::<Vec<_>>().join(" ").trim(), 64);
    if flat.is_empty() { fallback.to_string() } else { flat }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Splits text into pieces of at most `max` characters (as the platform counts them: `len_of`),
/// preferring to cut at a newline, then at a space. Never returns an empty piece unless `text` is
/// empty.
pub fn split_message(text: &str, max: usize, len_of: fn(&str) -> usize) -> Vec<String> {
    let max = max.max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    while len_of(rest) > max {
        // The longest prefix within the limit.
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            let next = i + c.len_utf8();
            if len_of(&rest[..next]) > max {
                break;
            }
            end = next;
        }
        if end == 0 {
            // A single character over the limit: take it anyway rather than loop forever.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let head = &rest[..end];
        let cut = head.rfind('\n').filter(|&i| i > end / 2).or_else(|| head.rfind(' ').filter(|&i| i > end / 2)).map_or(end, |i| i + 1);
        pieces.push(rest[..cut].trim_end().to_string());
        rest = &rest[cut..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces.retain(|p| !p.is_empty() || text.is_empty());
    pieces
}

/// Length in Unicode scalar values.
pub fn chars_len(s: &str) -> usize {
    s.chars().count()
}

/// What a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// A reply sent to a customer chat.
    Sent {
        /// Chat.
        chat: String,
        /// Reply.
        reply: Reply,
    },
    /// A desk notice.
    Notice {
        /// Ticket id.
        ticket: i64,
        /// Notice.
        notice: DeskNotice,
        /// The summary text, for `Opened`.
        summary: Option<String>,
    },
}

/// A channel and desk that records everything, for tests and conversation scripts. It can be told
/// to fail the next sends.
#[derive(Debug)]
pub struct Recorder {
    name: String,
    log: Mutex<Vec<Recorded>>,
    failures: Mutex<Vec<ChannelError>>,
}

impl Recorder {
    /// A recorder for the channel `name`.
    pub fn new(name: impl Into<String>) -> Recorder {
        Recorder { name: name.into(), log: Mutex::new(Vec::new()), failures: Mutex::new(Vec::new()) }
    }

    /// Everything recorded so far.
    pub fn log(&self) -> Vec<Recorded> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes everything recorded so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replies sent to `chat`, in order.
    pub fn sent_to(&self, chat: &str) -> Vec<Reply> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Recorded::Sent { chat: c, reply } if c == chat => Some(reply),
                _ => None,
            })
            .collect()
    }

    /// Desk notices, in order.
    pub fn notices(&self) -> Vec<(i64, DeskNotice)> {
        self.log()
            .into_iter()
            .filter_map(|r| match r {
                Recorded::Notice { ticket, notice, .. } => Some((ticket, notice)),
                _ => None,
            })
            .collect()
    }

    /// The next sends fail with these errors, in order.
    pub fn fail_next(&self, errors: Vec<ChannelError>) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).extend(errors);
    }

    fn next_failure(&self) -> Option<ChannelError> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_empty() { None } else { Some(f.remove(0)) }
    }
}

#[async_trait]
impl Channel for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, chat: &str, reply: &Reply) -> Result<(), ChannelError> {
        if let Some(e) = self.next_failure() {
            return Err(e);
        }
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(Recorded::Sent { chat: chat.to_string(), reply: reply.clone() });
        Ok(())
    }
}

#[async_trait]
impl AgentDesk for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, view: &TicketView, notice: &DeskNotice) -> Result<(), ChannelError> {
        let summary = matches!(notice, DeskNotice::Opened).then(|| ticket_summary(view));
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(Recorded::Notice {
            ticket: view.ticket.id,
            notice: notice.clone(),
            summary,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Telegram's measure, to test splitting by a measure other than characters.
    fn utf16_len(s: &str) -> usize {
        s.encode_utf16().count()
    }

    #[test]
    fn splits_at_the_limit_preferring_newlines() {
        let text = format!("{}\n{}", "a".repeat(30), "b".repeat(30));
        let parts = split_message(&text, 40, chars_len);
        assert_eq!(parts, vec!["a".repeat(30), "b".repeat(30)]);
        let long = "字".repeat(9000);
        let parts = split_message(&long, 4096, utf16_len);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| utf16_len(p) <= 4096));
        assert_eq!(parts.concat(), long);
        // Emoji are two UTF-16 units: never cut through one.
        let emoji = "😀".repeat(3000);
        let parts = split_message(&emoji, 4096, utf16_len);
        assert!(parts.iter().all(|p| utf16_len(p) <= 4096));
        assert_eq!(parts.concat(), emoji);
        assert_eq!(split_message("short", 10, chars_len), vec!["short"]);
    }

    #[test]
    fn display_names_lose_what_reorders_or_hides_text() {
        assert_eq!(display_name("\u{202E}evil\u{202C} name\n", "x"), "evil name");
        assert_eq!(display_name("a\u{2066}b\u{200B}c", "x"), "abc");
        assert_eq!(display_name(" \u{200F} ", "Customer"), "Customer");
        assert_eq!(display_name(&"长".repeat(100), "x").chars().count(), 64);
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
