//! What the bot did over a period, from the store, for support leads (`switchboard report`):
//! conversations, the share the bot settled without a person (containment), handoffs by reason
//! and channel, time to first agent reply and to close (median, p90), per-intent volumes and
//! outcomes, satisfaction scores, and the most frequent messages the bot did not understand.
//! Read as streams and folded as they come, so a store with millions of transcript lines is
//! never held in memory; only counts, one id per conversation and distinct unanswered texts are.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::StreamExt;
use serde::Serialize;

use crate::StoreError;
use crate::channel::reason_text;
use crate::matcher::normalize::clean;
use crate::store::Store;
use crate::types::{Millis, TicketEventKind, TicketStatus};

/// How many unanswered messages the report lists.
pub const TOP_UNANSWERED: usize = 10;

/// A period's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The period, `[since, until)`, in Unix milliseconds.
    pub since: Millis,
    /// End of the period.
    pub until: Millis,
    /// Conversations with at least one customer message in the period.
    pub conversations: u64,
    /// Customer messages in the period.
    pub messages: u64,
    /// Conversations in which no ticket was opened in the period.
    pub settled_by_bot: u64,
    /// `settled_by_bot / conversations` (0 when there were none).
    pub containment: f64,
    /// Tickets opened in the period.
    pub tickets: u64,
    /// Tickets opened, by reason (`asked for a person`, `not understood`, an intent id).
    pub handoffs_by_reason: BTreeMap<String, u64>,
    /// Tickets opened, by channel.
    pub handoffs_by_channel: BTreeMap<String, u64>,
    /// Seconds from a ticket's opening to the first agent reply.
    pub first_reply: Durations,
    /// Seconds from a ticket's opening to its close.
    pub close: Durations,
    /// Per intent (or `(none)`), how many messages ended in each outcome (`answer`, `clarify`…).
    pub intents: BTreeMap<String, BTreeMap<String, u64>>,
    /// Satisfaction ratings given in the period.
    pub satisfaction: Satisfaction,
    /// The most frequent messages the bot did not understand, with how often.
    pub top_unanswered: Vec<(String, u64)>,
}

/// A distribution of durations, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    /// How many.
    pub count: u64,
    /// The median, if any.
    pub median: Option<f64>,
    /// The 90th percentile, if any.
    pub p90: Option<f64>,
}

impl Durations {
    fn of(mut secs: Vec<f64>) -> Durations {
        secs.sort_by(f64::total_cmp);
        let at = |q: f64| -> Option<f64> {
            if secs.is_empty() {
                return None;
            }
            // Nearest rank.
            let rank = ((q * secs.len() as f64).ceil() as usize).clamp(1, secs.len());
            Some(secs[rank - 1])
        };
        Durations { count: secs.len() as u64, median: at(0.5), p90: at(0.9) }
    }
}

/// Customers' ratings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// How many ratings.
    pub count: u64,
    /// Their mean, 1–5.
    pub mean: Option<f64>,
    /// How many of each score, 1 to 5.
    pub scores: [u64; 5],
}

/// Builds the report of `[since, until)` from `store`.
pub async fn build(store: &dyn Store, since: Millis, until: Millis) -> Result<Report, StoreError> {
    let mut r = Report { since, until, ..Report::default() };
    let mut conversations: HashSet<i64> = HashSet::new();
    let mut unanswered: HashMap<String, u64> = HashMap::new();
    let mut lines = store.outcome_lines(since, until);
    while let Some(line) = lines.next().await {
        let line = line?;
        let Some(outcome) = line.outcome else { continue };
        r.messages += 1;
        conversations.insert(line.conversation_id);
        let intent = outcome.intent.unwrap_or_else(|| "(none)".into());
        *r.intents.entry(intent).or_default().entry(outcome.action.clone()).or_default() += 1;
        if outcome.action == "fallback" {
            let text = clean(&line.text).trim().to_lowercase();
            if !text.is_empty() {
                *unanswered.entry(text).or_default() += 1;
            }
        }
    }
    drop(lines);
    r.conversations = conversations.len() as u64;

    let all = [TicketStatus::Queued, TicketStatus::Assigned, TicketStatus::Closed];
    let mut opened: HashMap<i64, Millis> = HashMap::new();
    let mut with_ticket: HashSet<i64> = HashSet::new();
    for t in store.tickets(&all).await?.into_iter().filter(|t| t.created_at >= since && t.created_at < until) {
        r.tickets += 1;
        *r.handoffs_by_reason.entry(reason_text(&t.reason)).or_default() += 1;
        *r.handoffs_by_channel.entry(t.key.channel.clone()).or_default() += 1;
        opened.insert(t.id, t.created_at);
        with_ticket.insert(t.conversation_id);
    }
    r.settled_by_bot = conversations.iter().filter(|c| !with_ticket.contains(c)).count() as u64;
    r.containment = if r.conversations == 0 { 0.0 } else { r.settled_by_bot as f64 / r.conversations as f64 };

    let (mut first_reply, mut close) = (Vec::new(), Vec::new());
    let mut replied: HashSet<i64> = HashSet::new();
    let mut ratings: Vec<u8> = Vec::new();
    let mut events = store.ticket_events_since(since);
    while let Some(e) = events.next().await {
        let e = e?;
        let Some(&start) = opened.get(&e.ticket_id) else { continue };
        let secs = (e.at - start).max(0) as f64 / 1000.0;
        match e.kind {
            TicketEventKind::AgentReply { .. } if replied.insert(e.ticket_id) => first_reply.push(secs),
            TicketEventKind::Closed { .. } => close.push(secs),
            TicketEventKind::Rated { score, .. } if (1..=5).contains(&score) && e.at < until => ratings.push(score),
            _ => {}
        }
    }
    r.first_reply = Durations::of(first_reply);
    r.close = Durations::of(close);
    for s in &ratings {
        r.satisfaction.scores[usize::from(*s) - 1] += 1;
    }
    r.satisfaction.count = ratings.len() as u64;
    r.satisfaction.mean = (!ratings.is_empty()).then(|| ratings.iter().map(|s| f64::from(*s)).sum::<f64>() / ratings.len() as f64);

    let mut top: Vec<(String, u64)> = unanswered.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_UNANSWERED);
    r.top_unanswered = top;
    Ok(r)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = |ms: Millis| {
            chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
        };
        let secs = |s: Option<f64>| match s {
            None => "—".to_string(),
            Some(s) if s < 120.0 => format!("{s:.0} s"),
            Some(s) if s < 7200.0 => format!("{:.1} min", s / 60.0),
            Some(s) => format!("{:.1} h", s / 3600.0),
        };
        writeln!(f, "Switchboard report, {} to {}", day(self.since), day(self.until))?;
        writeln!(f)?;
        writeln!(f, "Conversations        {:>8}", self.conversations)?;
        writeln!(f, "Customer messages    {:>8}", self.messages)?;
        writeln!(f, "Settled by the bot   {:>8}  ({:.1} % containment)", self.settled_by_bot, 100.0 * self.containment)?;
        writeln!(f, "Tickets opened       {:>8}", self.tickets)?;
        for (what, by) in [("reason", &self.handoffs_by_reason), ("channel", &self.handoffs_by_channel)] {
            if !by.is_empty() {
                writeln!(f, "  by {what}:")?;
                for (k, n) in by {
                    writeln!(f, "    {k:<28} {n:>6}")?;
                }
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "Time to first agent reply  median {:>9}   p90 {:>9}   ({} tickets)",
            secs(self.first_reply.median),
            secs(self.first_reply.p90),
            self.first_reply.count
        )?;
        writeln!(
            f,
            "Time to close              median {:>9}   p90 {:>9}   ({} tickets)",
            secs(self.close.median),
            secs(self.close.p90),
            self.close.count
        )?;
        writeln!(f)?;
        match self.satisfaction.mean {
            Some(mean) => writeln!(
                f,
                "Satisfaction         {mean:.2} / 5 from {} ratings (1★ {} · 2★ {} · 3★ {} · 4★ {} · 5★ {})",
                self.satisfaction.count,
                self.satisfaction.scores[0],
                self.satisfaction.scores[1],
                self.satisfaction.scores[2],
                self.satisfaction.scores[3],
                self.satisfaction.scores[4]
            )?,
            None => writeln!(f, "Satisfaction         no ratings")?,
        }
        if !self.intents.is_empty() {
            writeln!(f)?;
            writeln!(f, "Intents (messages by outcome)")?;
            let mut rows: Vec<(&String, u64, &BTreeMap<String, u64>)> =
                self.intents.iter().map(|(k, v)| (k, v.values().sum::<u64>(), v)).collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            for (intent, total, outcomes) in rows {
                let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
                writeln!(f, "  {intent:<28} {total:>6}   {}", parts.join(", "))?;
            }
        }
        if !self.top_unanswered.is_empty() {
            writeln!(f)?;
            writeln!(f, "Most frequent messages the bot did not understand (see `switchboard intents suggest`)")?;
            for (text, n) in &self.top_unanswered {
                writeln!(f, "  {n:>5} × {}", crate::channel::one_line(text, 80))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Durations::of((1..=10).map(f64::from).collect());
        assert_eq!((d.count, d.median, d.p90), (10, Some(5.0), Some(9.0)));
        assert_eq!(Durations::of(vec![]), Durations::default());
        assert_eq!(Durations::of(vec![7.0]).p90, Some(7.0));
    }
}
