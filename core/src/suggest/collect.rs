//! Which customer messages went unanswered, read line by line from the store's stream.
//!
//! A customer message is *unanswered* when the bot
//!
//! - fell back on it (`fallback`: not understood);
//! - asked "did you mean…" about it (`clarify`) and the conversation's next dialogue outcome did
//!   not settle it: settled is an answer (of an intent other than the pack's catch-all), details
//!   being collected for an intent, or a handoff for an intent of the pack (the customer picked one
//!   of the choices, or rephrased and was understood). A fall-back, another "did you mean", a
//!   request for a person, calling a flow off, an answer of the catch-all, or the end of the period
//!   with nothing after it leave it unanswered. Outcomes that do not move the dialogue (a message
//!   of secrets alone, one the bot was not allowed to answer) are passed over;
//! - handed it to a person without an intent (`handoff` with no intent, or the catch-all's);
//! - answered it with the pack's catch-all intent (OKPay's `other_question`: "that's not something
//!   I can answer here"), which is the bot saying it has no answer.
//!
//! Pressed buttons (stored as `[label]`) and requests for a person ("human", "转人工") are never
//! candidates: they are not questions. A conversation repeating a message it already sent counts
//! it once. Memory: one entry per distinct message kept, one pending "did you mean" per
//! conversation, and one small key per (conversation, message) pair kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde::Serialize;

use super::cluster::key;
use crate::dialogue::{HUMAN_INTENT, is_human_request};
use crate::types::{Author, TranscriptEntry};

/// Why a message counts as unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The bot fell back: not understood.
    Fallback,
    /// "Did you mean…", and the conversation went on without an answer.
    Clarified,
    /// Handed to a person without an intent (or with the catch-all).
    Handoff,
    /// Answered with the pack's catch-all ("not something I can answer").
    CatchAll,
}

impl Reason {
    /// Words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Fallback => "fell back",
            Reason::Clarified => "clarified and not resolved",
            Reason::Handoff => "handed off without an intent",
            Reason::CatchAll => "answered as not answerable",
        }
    }
}

/// A distinct unanswered message.
#[derive(Clone, Debug, PartialEq)]
pub struct Unanswered {
    /// The text as the customer wrote it (already masked), first seen form.
    pub text: String,
    /// How many times it was sent (once per conversation).
    pub count: u64,
}

/// What [`Collector`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// Distinct messages, in first-seen order.
    pub messages: Vec<Unanswered>,
    /// Unanswered messages by reason (before grouping, repeats within a conversation counted once).
    pub by_reason: BTreeMap<Reason, u64>,
    /// Customer messages with an outcome read.
    pub read: u64,
}

impl Found {
    /// All unanswered messages, repeats counted.
    pub fn total(&self) -> u64 {
        self.messages.iter().map(|m| m.count).sum()
    }
}

/// Reads outcome lines in order and keeps the unanswered messages.
#[derive(Debug)]
pub struct Collector {
    catch_all: Option<String>,
    /// Per conversation, a "did you mean" message waiting for what came next.
    pending: HashMap<i64, String>,
    /// (conversation, message) pairs already kept.
    seen: HashSet<(i64, u64)>,
    index: HashMap<String, usize>,
    found: Found,
}

/// Outcomes that do not move the dialogue: they neither settle nor abandon a "did you mean".
const PASSING: &[&str] = &["hidden", "blocked", "limited", "ignored", "duplicate", "unsupported", "too_long", "silent", "waiting", "rated"];

impl Collector {
    /// A collector; `catch_all` is the pack's intent for questions it has no answer for.
    pub fn new(catch_all: Option<&str>) -> Collector {
        Collector {
            catch_all: catch_all.map(str::to_string),
            pending: HashMap::new(),
            seen: HashSet::new(),
            index: HashMap::new(),
            found: Found::default(),
        }
    }

    fn is_catch_all(&self, intent: Option<&str>) -> bool {
        intent.is_some() && intent == self.catch_all.as_deref()
    }

    /// Reads one line (lines of a conversation must come in order).
    pub fn push(&mut self, line: &TranscriptEntry) {
        let Some(outcome) = &line.outcome else { return };
        if line.author != Author::Customer {
            return;
        }
        self.found.read += 1;
        let action = outcome.action.as_str();
        if PASSING.contains(&action) {
            return;
        }
        let intent = outcome.intent.as_deref();
        let conv = line.conversation_id;
        if let Some(text) = self.pending.remove(&conv) {
            let settled = match action {
                "answer" => !self.is_catch_all(intent),
                "collect" => true,
                "handoff" => intent.is_some_and(|i| i != HUMAN_INTENT) && !self.is_catch_all(intent),
                _ => false,
            };
            if !settled {
                self.keep(conv, &text, Reason::Clarified);
            }
        }
        match action {
            "fallback" => self.keep(conv, &line.text, Reason::Fallback),
            "clarify" if is_question(&line.text) => {
                self.pending.insert(conv, line.text.clone());
            }
            "handoff" if intent.is_none() || self.is_catch_all(intent) => self.keep(conv, &line.text, Reason::Handoff),
            "answer" if self.is_catch_all(intent) => self.keep(conv, &line.text, Reason::CatchAll),
            _ => {}
        }
    }

    fn keep(&mut self, conv: i64, text: &str, reason: Reason) {
        if !is_question(text) {
            return;
        }
        let k = key(text);
        if k.is_empty() {
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        k.hash(&mut h);
        if !self.seen.insert((conv, h.finish())) {
            return;
        }
        *self.found.by_reason.entry(reason).or_default() += 1;
        match self.index.get(&k) {
            Some(&i) => self.found.messages[i].count += 1,
            None => {
                self.index.insert(k, self.found.messages.len());
                self.found.messages.push(Unanswered { text: text.trim().to_string(), count: 1 });
            }
        }
    }

    /// Ends the stream: a "did you mean" nothing followed stays unanswered.
    pub fn finish(mut self) -> Found {
        let mut left: Vec<(i64, String)> = std::mem::take(&mut self.pending).into_iter().collect();
        left.sort();
        for (conv, text) in left {
            self.keep(conv, &text, Reason::Clarified);
        }
        self.found
    }
}

/// Whether a customer line could be a question: not a pressed button or unreadable content alone
/// (`[label]`, `[photo]`), not a request for a person.
fn is_question(text: &str) -> bool {
    let t = text.trim();
    let bracketed = t.starts_with('[') && t.ends_with(']') && t[1..t.len() - 1].chars().all(|c| c != '[' && c != ']');
    !t.is_empty() && !bracketed && !is_human_request(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Outcome;

    fn line(conv: i64, text: &str, action: &str, intent: Option<&str>) -> TranscriptEntry {
        TranscriptEntry {
            id: 0,
            choices: Vec::new(),
            conversation_id: conv,
            ticket_id: None,
            author: Author::Customer,
            text: text.into(),
            at: 0,
            outcome: Some(Outcome { intent: intent.map(str::to_string), action: action.into() }),
        }
    }

    fn run(lines: &[TranscriptEntry]) -> Found {
        let mut c = Collector::new(Some("other_question"));
        for l in lines {
            c.push(l);
        }
        c.finish()
    }

    fn texts(f: &Found) -> Vec<(String, u64)> {
        f.messages.iter().map(|m| (m.text.clone(), m.count)).collect()
    }

    #[test]
    fn fallbacks_unmatched_handoffs_and_catch_all_answers_count() {
        let f = run(&[
            line(1, "what is the exchange rate", "fallback", None),
            line(1, "my account is locked", "answer", Some("account_locked")),
            line(2, "do you take bitcoin", "handoff", None),
            line(3, "fees for business accounts?", "handoff", Some("other_question")),
            line(4, "can I get a loan", "answer", Some("other_question")),
            line(5, "I was charged twice", "handoff", Some("transfer_failed")),
        ]);
        assert_eq!(
            texts(&f),
            [("what is the exchange rate", 1), ("do you take bitcoin", 1), ("fees for business accounts?", 1), ("can I get a loan", 1)]
                .map(|(t, n)| (t.to_string(), n))
        );
        assert_eq!(f.read, 6);
        assert_eq!(f.by_reason[&Reason::Handoff], 2);
        assert_eq!(f.by_reason[&Reason::CatchAll], 1);
    }

    #[test]
    fn a_clarify_counts_unless_the_next_outcome_settles_it() {
        let f = run(&[
            // Settled by an answer, by collecting details, by an intent's handoff.
            line(1, "transfer problem", "clarify", None),
            line(1, "[Transfer failed]", "answer", Some("transfer_failed")),
            line(2, "money thing", "clarify", None),
            line(2, "[Money not received]", "collect", Some("transfer_not_received")),
            line(3, "stolen?", "clarify", None),
            line(3, "[Account stolen]", "handoff", Some("account_stolen")),
            // Not settled: a fall-back, another clarify, a person, the catch-all, nothing after.
            line(4, "card question", "clarify", None),
            line(4, "[None of these]", "fallback", None),
            line(5, "limits", "clarify", None),
            line(5, "limits per day", "clarify", None),
            line(5, "human", "handoff", Some("human_agent")),
            line(6, "refund a payment", "clarify", None),
            line(6, "[Something else]", "answer", Some("other_question")),
            line(7, "update my phone", "clarify", None),
            // A message of secrets alone passes over the pending one.
            line(8, "verify my id", "clarify", None),
            line(8, "[code]", "hidden", None),
            line(8, "verify my identity", "answer", Some("account_security")),
        ]);
        let got: Vec<String> = texts(&f).into_iter().map(|(t, _)| t).collect();
        assert_eq!(got, ["card question", "limits", "limits per day", "refund a payment", "update my phone"]);
        assert_eq!(f.by_reason.get(&Reason::Clarified), Some(&5));
        assert_eq!(f.by_reason.get(&Reason::Fallback), None, "pressed buttons are not questions");
    }

    #[test]
    fn buttons_requests_for_a_person_and_repeats_are_left_out() {
        let f = run(&[
            line(1, "[Talk to a person]", "handoff", None),
            line(1, "转人工", "handoff", None),
            line(1, "  ", "fallback", None),
            line(1, "[photo]", "fallback", None),
            line(1, "[photo] is this receipt ok", "fallback", None),
            line(2, "Exchange rate?", "fallback", None),
            line(2, "exchange   RATE", "fallback", None),
            line(3, "exchange rate!", "fallback", None),
            line(4, "汇率多少", "fallback", None),
            line(5, "匯率多少", "fallback", None),
        ]);
        assert_eq!(texts(&f), [("[photo] is this receipt ok", 1), ("Exchange rate?", 2), ("汇率多少", 2)].map(|(t, n)| (t.to_string(), n)));
        assert_eq!(f.total(), 5);
    }

    #[test]
    fn bot_lines_and_lines_without_outcome_are_ignored() {
        let mut bot = line(1, "Sorry, I didn't get that", "fallback", None);
        bot.author = Author::Bot;
        let mut plain = line(1, "hello", "fallback", None);
        plain.outcome = None;
        let f = run(&[bot, plain]);
        assert_eq!(f, Found::default());
    }
}
