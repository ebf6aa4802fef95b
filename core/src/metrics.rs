//! What the bot does, counted: every metric Switchboard records, registered here in one place
//! ([`ALL`], described by [`describe`]), with one function per event that the engine, the agent
//! commands, the outbox and the pack's reload call.
//!
//! Only the [`metrics`] facade is used here (its macros, no I/O): a process that installs no
//! recorder pays next to nothing, and `switchboard run` installs the Prometheus exporter and serves
//! `GET /metrics`. Label values are bounded: channel and outbox target names (from the
//! configuration), the pack's intent ids (or `none`), outcome and reason names. Never a customer or
//! chat id, never a message's text.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::agents::{AgentCommand, AgentOutcome};
use crate::dialogue::Action;
use crate::engine::Handled;
use crate::pack::Pack;
use crate::store::Store;
use crate::types::{HandoffReason, Millis, Ticket, TicketEventKind, now_ms};
use crate::{EngineError, StoreError};

/// Customer messages handed to the engine and handled (redeliveries of a message already handled
/// are not counted again); labels `channel`.
pub const MESSAGES_IN: &str = "switchboard_messages_in_total";
/// Messages queued for customers; labels `channel`, `by` (`bot` or `agent`).
pub const REPLIES_OUT: &str = "switchboard_replies_out_total";
/// What the bot made of each message; labels `channel`, `intent`, `outcome`.
pub const OUTCOMES: &str = "switchboard_outcomes_total";
/// Tickets opened; labels `channel`, `reason`, `intent`.
pub const HANDOFFS: &str = "switchboard_handoffs_total";
/// Customers' ratings of the help after a ticket closed; labels `channel`, `score` (`1`–`5`).
pub const RATINGS: &str = "switchboard_ratings_total";
/// Tickets waiting in the queue; labels `priority`.
pub const QUEUE_LENGTH: &str = "switchboard_queue_length";
/// How long the oldest ticket in the queue has waited.
pub const QUEUE_OLDEST_WAIT: &str = "switchboard_queue_oldest_wait_seconds";
/// From a ticket's opening to its first agent reply; labels `channel`.
pub const FIRST_REPLY: &str = "switchboard_ticket_first_reply_seconds";
/// From a ticket's opening to its close; labels `channel`.
pub const TIME_TO_CLOSE: &str = "switchboard_ticket_close_seconds";
/// Outbox items delivered; labels `target`.
pub const OUTBOX_DELIVERED: &str = "switchboard_outbox_delivered_total";
/// Outbox items rescheduled for a later attempt; labels `target`.
pub const OUTBOX_RETRIED: &str = "switchboard_outbox_retried_total";
/// Outbox items given up on; labels `target`.
pub const OUTBOX_FAILED: &str = "switchboard_outbox_failed_total";
/// Outbox items not delivered yet.
pub const OUTBOX_PENDING: &str = "switchboard_outbox_pending";
/// The dialogue step (matching included) for one message's text.
pub const MATCHER: &str = "switchboard_matcher_seconds";
/// Store calls that failed; labels `op`.
pub const STORE_ERRORS: &str = "switchboard_store_errors_total";
/// Pack reloads tried; labels `result` (`ok` or `refused`).
pub const PACK_RELOADS: &str = "switchboard_pack_reloads_total";

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down: the last value set.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

impl Kind {
    /// Prometheus' name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, kind, labels, help text and, for histograms, bucket bounds.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The full name, `switchboard_…`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// The help text (`# HELP`).
    pub help: &'static str,
    /// Upper bounds of a histogram's buckets (empty for the others).
    pub buckets: &'static [f64],
    /// Its unit.
    pub unit: Unit,
}

/// Bucket bounds for the matcher's time, in seconds: a tenth of a millisecond to a few seconds.
const MATCHER_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// Bucket bounds for agents' times, in seconds: fifteen seconds to three days.
const AGENT_BUCKETS: &[f64] =
    &[15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0, 259_200.0];

/// Every metric Switchboard records.
pub const ALL: &[Metric] = &[
    Metric {
        name: MESSAGES_IN,
        kind: Kind::Counter,
        labels: &["channel"],
        help: "Customer messages handled, by channel (a redelivered message already handled is not counted again).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: REPLIES_OUT,
        kind: Kind::Counter,
        labels: &["channel", "by"],
        help: "Messages queued for customers, by channel and by whom: the bot (answers, questions, notices) or an agent.",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: OUTCOMES,
        kind: Kind::Counter,
        labels: &["channel", "intent", "outcome"],
        help: "What became of each customer message: outcome (answer, clarify, fallback, handoff, collect, cancel, silent, waiting, limited, blocked, …) by channel and intent id (none when no intent).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: HANDOFFS,
        kind: Kind::Counter,
        labels: &["channel", "reason", "intent"],
        help: "Tickets opened, by channel and reason: customer_request, repeated_fallback, or intent (with the intent's id).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: RATINGS,
        kind: Kind::Counter,
        labels: &["channel", "score"],
        help: "Customers' ratings of the help after a ticket closed, by channel and score (1 poor to 5 excellent).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: QUEUE_LENGTH,
        kind: Kind::Gauge,
        labels: &["priority"],
        help: "Tickets waiting in the queue for an agent, by priority (read from the store every few seconds).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: QUEUE_OLDEST_WAIT,
        kind: Kind::Gauge,
        labels: &[],
        help: "How long the oldest ticket waiting in the queue has waited, in seconds (0 when none waits).",
        buckets: &[],
        unit: Unit::Seconds,
    },
    Metric {
        name: FIRST_REPLY,
        kind: Kind::Histogram,
        labels: &["channel"],
        help: "Seconds from a ticket's opening to its first agent reply.",
        buckets: AGENT_BUCKETS,
        unit: Unit::Seconds,
    },
    Metric {
        name: TIME_TO_CLOSE,
        kind: Kind::Histogram,
        labels: &["channel"],
        help: "Seconds from a ticket's opening to its close.",
        buckets: AGENT_BUCKETS,
        unit: Unit::Seconds,
    },
    Metric {
        name: OUTBOX_DELIVERED,
        kind: Kind::Counter,
        labels: &["target"],
        help: "Outbox items delivered, by target (a channel, or desk:<name>).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: OUTBOX_RETRIED,
        kind: Kind::Counter,
        labels: &["target"],
        help: "Outbox items rescheduled for another attempt (a failed send, a rate limit, a paused target), by target.",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: OUTBOX_FAILED,
        kind: Kind::Counter,
        labels: &["target"],
        help: "Outbox items given up on (blocked by the recipient, refused, or out of attempts), by target.",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: OUTBOX_PENDING,
        kind: Kind::Gauge,
        labels: &["target"],
        help: "Outbox items not delivered yet, by target, in every instance sharing the database (read every few seconds).",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: MATCHER,
        kind: Kind::Histogram,
        labels: &[],
        help: "Seconds the dialogue step took for one message's text, matching included.",
        buckets: MATCHER_BUCKETS,
        unit: Unit::Seconds,
    },
    Metric {
        name: STORE_ERRORS,
        kind: Kind::Counter,
        labels: &["op"],
        help: "Store calls that failed, by operation: message, agent, outbox, housekeeping, gauges.",
        buckets: &[],
        unit: Unit::Count,
    },
    Metric {
        name: PACK_RELOADS,
        kind: Kind::Counter,
        labels: &["result"],
        help: "Intent pack reloads, by result: ok (swapped in) or refused (invalid; the running pack kept).",
        buckets: &[],
        unit: Unit::Count,
    },
];

/// Gives every metric its help text and unit in the current recorder, and starts the series whose
/// labels are known in advance at zero: call once, after the recorder is installed.
pub fn describe() {
    for m in ALL {
        match m.kind {
            Kind::Counter => describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => describe_histogram!(m.name, m.unit, m.help),
        }
    }
    // A series that first appears with its first event loses that event to `rate()`; these start
    // at zero instead (the channels' own start with [`channel_added`]).
    let _ = histogram!(MATCHER);
    for op in STORE_OPS {
        counter!(STORE_ERRORS, "op" => op).increment(0);
    }
    for result in ["ok", "refused"] {
        counter!(PACK_RELOADS, "result" => result).increment(0);
    }
}

/// The `op` label values of [`STORE_ERRORS`].
const STORE_OPS: [&str; 5] = ["message", "agent", "outbox", "housekeeping", "gauges"];

/// A channel registered with the engine: its series start at zero.
pub(crate) fn channel_added(channel: &str) {
    counter!(MESSAGES_IN, "channel" => channel.to_string()).increment(0);
    for by in ["bot", "agent"] {
        counter!(REPLIES_OUT, "channel" => channel.to_string(), "by" => by).increment(0);
    }
    let _ = histogram!(FIRST_REPLY, "channel" => channel.to_string());
    let _ = histogram!(TIME_TO_CLOSE, "channel" => channel.to_string());
    target_added(channel);
}

/// An outbox target (a channel, or `desk:<name>`) registered with the engine: its series start at
/// zero.
pub(crate) fn target_added(target: &str) {
    for name in [OUTBOX_DELIVERED, OUTBOX_RETRIED, OUTBOX_FAILED] {
        counter!(name, "target" => target.to_string()).increment(0);
    }
    gauge!(OUTBOX_PENDING, "target" => target.to_string()).set(0.0);
}

/// How often [`Gauges::refresh`] reads the store.
pub const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// The intent label: one of the pack's ids, `none`, or `other` for an id the pack does not have
/// (never anything a customer wrote).
fn intent_label(pack: &Pack, intent: Option<&str>) -> String {
    match intent {
        None => "none".into(),
        Some(id) if pack.intent(id).is_some() => id.to_string(),
        Some(_) => "other".into(),
    }
}

/// A customer message handled by [`Engine::handle`](crate::engine::Engine::handle): its
/// channel's message, outcome and bot replies, or the store error that stopped it. Returns
/// `result` unchanged.
pub(crate) fn handled(pack: &Pack, channel: &str, result: Result<Handled, EngineError>) -> Result<Handled, EngineError> {
    match &result {
        Ok(h) if h.action == Action::Duplicate => {}
        Ok(h) => {
            let channel = channel.to_string();
            counter!(MESSAGES_IN, "channel" => channel.clone()).increment(1);
            let intent = intent_label(pack, h.intent.as_deref());
            counter!(OUTCOMES, "channel" => channel.clone(), "intent" => intent, "outcome" => h.action.as_str()).increment(1);
            if !h.replies.is_empty() {
                counter!(REPLIES_OUT, "channel" => channel, "by" => "bot").increment(h.replies.len() as u64);
            }
        }
        Err(e) => engine_error("message", e),
    }
    result
}

/// A ticket opened for `reason`, committed.
pub(crate) fn handoff(pack: &Pack, channel: &str, reason: Option<&HandoffReason>) {
    let Some(reason) = reason else { return };
    let (reason, intent) = match reason {
        HandoffReason::CustomerRequest => ("customer_request", "none".to_string()),
        HandoffReason::RepeatedFallback => ("repeated_fallback", "none".to_string()),
        HandoffReason::Intent(id) => ("intent", intent_label(pack, Some(id))),
    };
    counter!(HANDOFFS, "channel" => channel.to_string(), "reason" => reason, "intent" => intent).increment(1);
}

/// Runs the dialogue step `f`, timing it when it reads a message's text (`text`); pressed buttons
/// are not matched and would only dilute the distribution.
pub(crate) fn matching<T>(text: bool, f: impl FnOnce() -> T) -> T {
    if !text {
        return f();
    }
    let start = std::time::Instant::now();
    let out = f();
    histogram!(MATCHER).record(start.elapsed().as_secs_f64());
    out
}

/// Seconds from `from` to `to` (both in ms), never negative.
fn seconds_between(from: Millis, to: Millis) -> f64 {
    to.saturating_sub(from).max(0) as f64 / 1000.0
}

/// An agent command's result: the store error that stopped it, if one did. Returns `result`.
pub(crate) fn agent(result: Result<AgentOutcome, EngineError>) -> Result<AgentOutcome, EngineError> {
    if let Err(e) = &result {
        engine_error("agent", e);
    }
    result
}

/// A ticket action committed: `after` is the ticket as it now is. A reply counts as a message
/// out and, when it is the ticket's first, observes the time to it (read from the ticket's
/// events, after the commit); a close observes the time to close.
pub(crate) async fn ticket_action(store: &dyn Store, cmd: &AgentCommand, after: &Ticket) {
    let channel = after.key.channel.clone();
    match cmd {
        AgentCommand::Reply(..) => {
            counter!(REPLIES_OUT, "channel" => channel.clone(), "by" => "agent").increment(1);
            match store.ticket_events(after.id).await {
                Ok(events) => {
                    let replies = events.iter().filter(|e| matches!(e.kind, TicketEventKind::AgentReply { .. })).count();
                    if replies == 1 {
                        histogram!(FIRST_REPLY, "channel" => channel).record(seconds_between(after.created_at, after.updated_at));
                    }
                }
                Err(e) => store_error("agent", &e),
            }
        }
        AgentCommand::Close(_) => {
            histogram!(TIME_TO_CLOSE, "channel" => channel).record(seconds_between(after.created_at, after.updated_at));
        }
        _ => {}
    }
}

/// What became of one outbox item's attempt at `target`: `delivered`, `retried` or `failed`.
pub(crate) fn outbox(target: &str, result: &'static str) {
    let name = match result {
        "delivered" => OUTBOX_DELIVERED,
        "failed" => OUTBOX_FAILED,
        _ => OUTBOX_RETRIED,
    };
    counter!(name, "target" => target.to_string()).increment(1);
}

/// A store call of kind `op` failed. A conflict, a duplicate or a lost lease is the store doing its
/// job, not an error.
pub(crate) fn store_error(op: &'static str, e: &StoreError) {
    if !matches!(e, StoreError::Conflict(_) | StoreError::Duplicate | StoreError::LeaseLost(_)) {
        counter!(STORE_ERRORS, "op" => op).increment(1);
    }
}

/// An engine call of kind `op` failed: counted when the store failed it.
pub(crate) fn engine_error(op: &'static str, e: &EngineError) {
    if let EngineError::Store(e) = e {
        store_error(op, e);
    }
}

/// A rating committed on a ticket of `channel`.
pub(crate) fn rated(channel: &str, score: u8) {
    const SCORES: [&str; 5] = ["1", "2", "3", "4", "5"];
    let Some(score) = SCORES.get(usize::from(score).wrapping_sub(1)) else { return };
    counter!(RATINGS, "channel" => channel.to_string(), "score" => *score).increment(1);
}

/// A pack reload tried: swapped in (`ok`) or refused.
pub(crate) fn pack_reload(ok: bool) {
    counter!(PACK_RELOADS, "result" => if ok { "ok" } else { "refused" }).increment(1);
}

/// The gauges read from the store (queue length and oldest wait, outbox pending), refreshed at
/// most every [`GAUGES_EVERY`] by the outbox loop: three counting queries, whatever the backlog.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    next: Option<tokio::time::Instant>,
    /// Targets with items pending at the last reading, set back to 0 when they drain.
    pending: std::collections::BTreeSet<String>,
}

impl Gauges {
    /// Reads the store and sets the gauges, unless they were set less than [`GAUGES_EVERY`] ago.
    pub(crate) async fn refresh(&mut self, store: &dyn Store) {
        let now = tokio::time::Instant::now();
        if self.next.is_some_and(|next| now < next) {
            return;
        }
        self.next = Some(now + GAUGES_EVERY);
        if let Err(e) = set_gauges(store, now_ms(), &mut self.pending).await {
            tracing::debug!(error = %e, "cannot read the queue and outbox for the metrics");
            store_error("gauges", &e);
        }
    }
}

/// The priorities' label values, indexed by `Priority as usize`.
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

async fn set_gauges(store: &dyn Store, now: Millis, seen: &mut std::collections::BTreeSet<String>) -> Result<(), StoreError> {
    let counts = store.queue_counts().await?;
    let backlog = store.backlog().await?;
    for (priority, n) in PRIORITIES.iter().zip(counts) {
        gauge!(QUEUE_LENGTH, "priority" => *priority).set(n as f64);
    }
    gauge!(QUEUE_OLDEST_WAIT).set(backlog.oldest_queued_at.map_or(0.0, |at| seconds_between(at, now)));
    for gone in seen.iter().filter(|t| !backlog.outbox_pending.contains_key(*t)) {
        gauge!(OUTBOX_PENDING, "target" => gone.clone()).set(0.0);
    }
    for (target, n) in &backlog.outbox_pending {
        gauge!(OUTBOX_PENDING, "target" => target.clone()).set(*n as f64);
    }
    *seen = backlog.outbox_pending.into_keys().collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::sync::Arc;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;
    use crate::channel::Recorder;
    use crate::engine::{Engine, EngineConfig};
    use crate::store::MemoryStore;
    use crate::types::{Actor, Content, Inbound, Priority};

    /// Every value recorded since the last snapshot, by metric name and sorted `label=value` pairs
    /// (the debugging recorder hands counters over and resets them).
    fn values(snap: &Snapshotter) -> HashMap<(String, Vec<String>), DebugValue> {
        snap.snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (_, key) = key.into_parts();
                let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
                labels.sort();
                ((key.name().to_string(), labels), value)
            })
            .collect()
    }

    fn count(values: &HashMap<(String, Vec<String>), DebugValue>, name: &str, labels: &[&str]) -> u64 {
        let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_string()).collect();
        labels.sort();
        match values.get(&(name.to_string(), labels)) {
            Some(DebugValue::Counter(n)) => *n,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
            None => 0,
        }
    }

    fn observations(values: &HashMap<(String, Vec<String>), DebugValue>, name: &str, labels: &[&str]) -> Vec<f64> {
        let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_string()).collect();
        labels.sort();
        match values.get(&(name.to_string(), labels)) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
            None => Vec::new(),
        }
    }

    fn okpay() -> Pack {
        Pack::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../intents/okpay")).unwrap()
    }

    fn message(customer: &str, n: u32, text: &str) -> Inbound {
        Inbound {
            channel: "web".into(),
            conversation: format!("chat-{customer}"),
            customer_id: format!("id-{customer}"),
            customer_name: "Mei".into(),
            content: Content::Text(text.into()),
            message_id: format!("{customer}:{n}"),
            at: 0,
            lang_hint: Some("en".into()),
            deleted: None,
        }
    }

    #[test]
    fn every_metric_is_named_and_described_once() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a metric is listed twice");
        for m in ALL {
            assert!(m.name.starts_with("switchboard_"), "{}", m.name);
            assert_eq!(m.kind == Kind::Counter, m.name.ends_with("_total"), "{}: counters, and only they, end in _total", m.name);
            assert_eq!(m.kind == Kind::Histogram, !m.buckets.is_empty(), "{}: histograms have buckets", m.name);
            assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}: buckets go up", m.name);
            assert!(!m.help.is_empty());
            assert!(!m.labels.iter().any(|l| l.contains("customer") || l.contains("chat") || l.contains("text")), "{}", m.name);
        }
    }

    /// Messages through an engine on the OKPay pack, an agent working the ticket, the outbox and
    /// the gauges: each moves its metrics, with bounded labels.
    #[tokio::test]
    async fn the_engine_counts_messages_outcomes_handoffs_agent_times_and_deliveries() {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        // The tokio test runtime runs on this thread only, so the thread's recorder sees it all.
        let _local = metrics::set_default_local_recorder(&recorder);
        describe();

        let config = EngineConfig { agents: vec!["desk:alice".into()], desks: vec!["staff".into()], ..EngineConfig::default() };
        let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), config);
        let channel = Arc::new(Recorder::new("web"));
        engine.add_channel(channel.clone());
        engine.add_desk(Arc::new(Recorder::new("staff")));
        // The channel's and the desk's series start at zero, before their first event.
        let v = values(&snap);
        for (name, label) in [(MESSAGES_IN, "channel=web"), (OUTBOX_DELIVERED, "target=web"), (OUTBOX_FAILED, "target=desk:staff")] {
            assert_eq!(v.get(&(name.to_string(), vec![label.to_string()])), Some(&DebugValue::Counter(0)), "{name} {label}");
        }
        assert!(v.contains_key(&(FIRST_REPLY.to_string(), vec!["channel=web".to_string()])));

        let answered = engine.handle(message("mei", 1, "my account is locked")).await.unwrap();
        assert_eq!((answered.action, answered.intent.as_deref()), (Action::Answer, Some("account_locked")));
        let fell_back = engine.handle(message("mei", 2, "qwxz vbnm plkj")).await.unwrap();
        assert_eq!(fell_back.action, Action::Fallback);
        // Written two minutes ago (a platform hands over a message's own time).
        let asked = Inbound { at: now_ms() - 120_000, ..message("mei", 3, "I want to talk to a human") };
        let handed = engine.handle(asked).await.unwrap();
        assert_eq!(handed.action, Action::Handoff);
        let ticket = handed.ticket_id.unwrap();
        // A redelivery is no new message.
        assert_eq!(engine.handle(message("mei", 3, "I want to talk to a human")).await.unwrap().action, Action::Duplicate);

        let v = values(&snap);
        assert_eq!(count(&v, MESSAGES_IN, &["channel=web"]), 3);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", "intent=account_locked", "outcome=answer"]), 1);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", "intent=none", "outcome=fallback"]), 1);
        let handoff_intent = handed.intent.as_deref().map_or("none".to_string(), str::to_string);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", &format!("intent={handoff_intent}"), "outcome=handoff"]), 1);
        assert_eq!(count(&v, HANDOFFS, &["channel=web", "reason=customer_request", "intent=none"]), 1);
        let bot_replies = (answered.replies.len() + fell_back.replies.len() + handed.replies.len()) as u64;
        assert_eq!(count(&v, REPLIES_OUT, &["by=bot", "channel=web"]), bot_replies);
        assert_eq!(observations(&v, MATCHER, &[]).len(), 3, "each text was matched once, and timed");
        // Nothing the customer wrote or is known by is a label.
        let private = ["id-mei", "chat-mei", "Mei", "my account is locked", "qwxz", "talk to a human"];
        for (_, labels) in v.keys() {
            assert!(!labels.iter().any(|l| private.iter().any(|p| l.contains(p))), "{labels:?}");
        }

        // The queue, as the outbox loop reads it.
        let mut gauges = Gauges::default();
        gauges.refresh(&**engine.store()).await;
        let v = values(&snap);
        let normal = PRIORITIES[Priority::Normal as usize];
        let queued: f64 = PRIORITIES.iter().map(|p| gauge_value(&v, QUEUE_LENGTH, &[&format!("priority={p}")])).sum();
        assert_eq!(queued, 1.0, "one ticket waits ({normal} or another priority)");
        assert!(gauge_value(&v, QUEUE_OLDEST_WAIT, &[]) >= 120.0, "it has waited since its message's time");
        assert_eq!(gauge_value(&v, OUTBOX_PENDING, &["target=web"]), bot_replies as f64);
        assert_eq!(gauge_value(&v, OUTBOX_PENDING, &["target=desk:staff"]), 1.0, "the ticket's opening");

        // Delivered: every item, counted per target; the pending gauges go back to zero.
        engine.flush().await.unwrap();
        let v = values(&snap);
        assert_eq!(count(&v, OUTBOX_DELIVERED, &["target=web"]), bot_replies);
        assert_eq!(count(&v, OUTBOX_DELIVERED, &["target=desk:staff"]), 1, "the ticket's opening");
        gauges.next = None;
        gauges.refresh(&**engine.store()).await;
        let v = values(&snap);
        assert_eq!(gauge_value(&v, OUTBOX_PENDING, &["target=web"]), 0.0);
        assert_eq!(gauge_value(&v, OUTBOX_PENDING, &["target=desk:staff"]), 0.0);

        // An agent answers twice, then closes: the first reply only is timed.
        let alice = Actor::new("desk:alice", "Alice");
        for text in ["Hello, I am here", "Let me check"] {
            engine.agent(&alice, AgentCommand::Reply(ticket, text.into())).await.unwrap();
        }
        engine.agent(&alice, AgentCommand::Close(ticket)).await.unwrap();
        let v = values(&snap);
        assert_eq!(count(&v, REPLIES_OUT, &["by=agent", "channel=web"]), 2);
        let first = observations(&v, FIRST_REPLY, &["channel=web"]);
        assert!(first.len() == 1 && (120.0..600.0).contains(&first[0]), "{first:?}");
        let closed = observations(&v, TIME_TO_CLOSE, &["channel=web"]);
        assert!(closed.len() == 1 && closed[0] >= first[0], "{closed:?}");

        // The customer rates the help: counted by channel and score.
        assert_eq!(engine.handle(message("mei", 5, "4")).await.unwrap().action, Action::Rated);
        let v = values(&snap);
        assert_eq!(count(&v, RATINGS, &["channel=web", "score=4"]), 1);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", "intent=none", "outcome=rated"]), 1);

        // A blocked customer's message is an outcome too.
        let block = AgentCommand::Block { ticket, duration: None, reason: String::new() };
        engine.agent(&alice, block).await.unwrap();
        assert_eq!(engine.handle(message("mei", 4, "hello?")).await.unwrap().action, Action::Blocked);
        let v = values(&snap);
        assert_eq!(count(&v, MESSAGES_IN, &["channel=web"]), 1);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", "intent=none", "outcome=blocked"]), 1);
        engine.flush().await.unwrap();

        // A failing send is retried, then given up on.
        channel.fail_next(vec![crate::ChannelError::Transient("down".into())]);
        engine.handle(message("li", 1, "my account is locked")).await.unwrap();
        engine.deliver_due().await.unwrap();
        channel.fail_next(vec![crate::ChannelError::Permanent("gone".into())]);
        engine.handle(message("wu", 1, "my account is locked")).await.unwrap();
        engine.deliver_due().await.unwrap();
        let v = values(&snap);
        assert_eq!(count(&v, OUTBOX_RETRIED, &["target=web"]), 1);
        assert_eq!(count(&v, OUTBOX_FAILED, &["target=web"]), 1);
    }

    fn gauge_value(values: &HashMap<(String, Vec<String>), DebugValue>, name: &str, labels: &[&str]) -> f64 {
        let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_string()).collect();
        labels.sort();
        match values.get(&(name.to_string(), labels)) {
            Some(DebugValue::Gauge(g)) => g.into_inner(),
            Some(other) => panic!("{name} is not a gauge: {other:?}"),
            None => 0.0,
        }
    }

    #[tokio::test]
    async fn flooded_and_blocked_messages_are_outcomes_and_reloads_are_counted() {
        let recorder = DebuggingRecorder::new();
        let snap = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let config = EngineConfig { customer_limit: crate::guard::CustomerLimit { burst: 1, per_minute: 1 }, ..EngineConfig::default() };
        let engine = Engine::new(Arc::new(MemoryStore::new()), okpay(), config);
        let now = now_ms();
        for n in 0..3 {
            engine.handle(Inbound { at: now, ..message("fast", n, "my account is locked") }).await.unwrap();
        }
        let v = values(&snap);
        assert_eq!(count(&v, MESSAGES_IN, &["channel=web"]), 3);
        assert_eq!(count(&v, OUTCOMES, &["channel=web", "intent=none", "outcome=limited"]), 2);

        // An invalid pack is refused, a valid one swapped in.
        let dir = tempfile::tempdir().unwrap();
        let watcher = crate::reload::PackWatcher::new(engine.clone(), dir.path().to_path_buf(), Default::default());
        assert!(watcher.reload_now().await.is_err());
        let v = values(&snap);
        assert_eq!(count(&v, PACK_RELOADS, &["result=refused"]), 1);
        assert_eq!(count(&v, PACK_RELOADS, &["result=ok"]), 0);
    }
}
