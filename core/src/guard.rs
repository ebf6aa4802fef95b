//! Who is not answered, and why: customers an agent blocked (stored per customer, with the
//! ticket event that records it, in one commit) and customers who write faster than the
//! per-customer token bucket allows (kept in this process's memory). Either way their messages
//! are still stored in the transcript; the engine only stops answering and relaying them.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use crate::types::Millis;

/// The key-value namespace where blocks are kept, by [`customer_key`].
pub const BLOCKS: &str = "customer.blocks";

/// How a customer is named across conversations: `channel:platform user id`.
pub fn customer_key(channel: &str, customer_id: &str) -> String {
    format!("{channel}:{customer_id}")
}

/// An agent's block on a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The agent's actor id.
    pub by: String,
    /// When it was set.
    pub at: Millis,
    /// Until when; `None` until an agent lifts it.
    pub until: Option<Millis>,
    /// Why, in the agent's words (may be empty).
    pub reason: String,
    /// Lifted by an agent (`unblock`); kept so the value says who lifted it.
    #[serde(default)]
    pub lifted: bool,
}

impl Block {
    /// Whether it holds at `at`.
    pub fn holds(&self, at: Millis) -> bool {
        !self.lifted && self.until.is_none_or(|u| at < u)
    }

    /// Reads a stored block; a value that does not parse is no block (and is logged).
    pub fn parse(value: &str) -> Option<Block> {
        match serde_json::from_str(value) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(error = %e, "a stored customer block does not parse; ignored");
                None
            }
        }
    }
}

/// How a block reads on every desk, after "<agent> blocked the customer": ` until 2026-12-05
/// 10:00 UTC: sends spam` or ` until unblocked`.
pub fn block_terms(until: Option<Millis>, reason: &str) -> String {
    let until = match until.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => format!(" until {}", t.format("%Y-%m-%d %H:%M UTC")),
        None => " until unblocked".to_string(),
    };
    let reason = crate::channel::display_name(reason, "");
    if reason.is_empty() { until } else { format!("{until}: {reason}") }
}

/// How long the blocks read from the store are trusted before they are read again: a block set
/// on another instance holds here within this.
pub const BLOCKS_FRESH: Duration = Duration::from_secs(5);

/// The blocks in force, read whole from the store at most every [`BLOCKS_FRESH`] (there are few;
/// reading one per message would cost every message a round trip).
#[derive(Debug, Default)]
pub struct BlockCache {
    read: tokio::sync::Mutex<Option<(std::time::Instant, std::collections::HashMap<String, Block>)>>,
}

impl BlockCache {
    /// `customer`'s block, if any, as of at most [`BLOCKS_FRESH`] ago.
    pub async fn get(&self, store: &dyn crate::store::Store, customer: &str) -> Result<Option<Block>, crate::StoreError> {
        let mut read = self.read.lock().await;
        let stale = read.as_ref().is_none_or(|(at, _)| at.elapsed() >= BLOCKS_FRESH);
        if stale {
            let blocks = store.values(BLOCKS).await?.into_iter().filter_map(|(k, v)| Block::parse(&v).map(|b| (k, b))).collect();
            *read = Some((std::time::Instant::now(), blocks));
        }
        Ok(read.as_ref().and_then(|(_, blocks)| blocks.get(customer).cloned()))
    }

    /// Reads the blocks again on the next message (after this process changed one).
    pub async fn forget(&self) {
        *self.read.lock().await = None;
    }
}

/// Reads an agent's block duration: `30m`, `2h`, `7d`, `1week`; a clear error otherwise.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("\"{}\" is not a duration ({e}); write it as 30m, 2h, 7d", text.trim()))?;
    if d < Duration::from_secs(60) {
        return Err(format!("\"{}\" is shorter than a minute", text.trim()));
    }
    if d > Duration::from_secs(3650 * 24 * 3600) {
        return Err(format!("\"{}\" is longer than ten years; leave the duration out to block until unblocked", text.trim()));
    }
    Ok(d)
}

/// Reads a desk's `block` arguments, `[duration] [reason…]`: a first word that reads as a
/// duration is one (`2h spam` blocks for two hours), a first word that starts like one but does
/// not read is an error (`2x spam`), anything else is all reason (blocked until unblocked).
pub fn block_args(text: &str) -> Result<(Option<Duration>, String), String> {
    let text = text.trim();
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if first.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok((Some(parse_duration(first)?), rest.trim().to_string()));
    }
    Ok((None, text.to_string()))
}

/// How fast one customer may write before the bot stops answering them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerLimit {
    /// Messages a customer may send in a burst.
    pub burst: u32,
    /// Messages per minute the burst refills at; zero turns the limit off.
    pub per_minute: u32,
}

impl Default for CustomerLimit {
    fn default() -> Self {
        CustomerLimit { burst: 10, per_minute: 20 }
    }
}

/// The per-customer token buckets of this process.
#[derive(Debug)]
pub struct FloodGate {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl FloodGate {
    /// Buckets with this limit (none when `per_minute` or `burst` is zero).
    pub fn new(limit: CustomerLimit) -> FloodGate {
        let limiter = match (NonZeroU32::new(limit.per_minute), NonZeroU32::new(limit.burst)) {
            (Some(rate), Some(burst)) => Some(DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))),
            _ => None,
        };
        FloodGate { limiter }
    }

    /// Takes a token for `customer`; `false` when they are over the limit.
    pub fn allow(&self, customer: &str) -> bool {
        self.limiter.as_ref().is_none_or(|l| l.check_key(&customer.to_string()).is_ok())
    }

    /// Forgets buckets that are full again (run by housekeeping, so memory follows the customers
    /// writing now, not every customer ever seen).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_customer_is_held_alone() {
        let gate = FloodGate::new(CustomerLimit { burst: 3, per_minute: 1 });
        assert!((0..3).all(|_| gate.allow("telegram:1")));
        assert!(!gate.allow("telegram:1"));
        assert!(gate.allow("telegram:2"), "another customer has their own bucket");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let gate = FloodGate::new(CustomerLimit { burst: 0, per_minute: 0 });
        assert!((0..1000).all(|_| gate.allow("telegram:1")));
    }

    #[test]
    fn blocks_hold_until_they_end_or_are_lifted() {
        let b = Block { by: "desk:alice".into(), at: 0, until: Some(1000), reason: String::new(), lifted: false };
        assert!(b.holds(999));
        assert!(!b.holds(1000));
        let forever = Block { until: None, ..b.clone() };
        assert!(forever.holds(i64::MAX));
        assert!(!Block { lifted: true, ..forever }.holds(0));
        assert_eq!(Block::parse(&serde_json::to_string(&b).unwrap_or_default()), Some(b));
        assert_eq!(Block::parse("{not json"), None);
    }

    #[test]
    fn block_arguments_are_a_duration_then_a_reason() {
        assert_eq!(block_args("2h sends spam links"), Ok((Some(Duration::from_secs(7200)), "sends spam links".into())));
        assert_eq!(block_args("  abusive to staff "), Ok((None, "abusive to staff".into())));
        assert_eq!(block_args(""), Ok((None, String::new())));
        assert_eq!(block_args("30m"), Ok((Some(Duration::from_secs(1800)), String::new())));
        assert!(block_args("2x spam").is_err());
    }

    #[test]
    fn block_terms_read_well() {
        assert_eq!(block_terms(None, ""), " until unblocked");
        assert_eq!(block_terms(Some(86_400_000), "spam\u{202e}"), " until 1970-01-02 00:00 UTC: spam");
    }

    #[test]
    fn durations_are_read_with_clear_errors() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 7d "), Ok(Duration::from_secs(7 * 86400)));
        assert!(parse_duration("soon").unwrap_err().contains("30m, 2h, 7d"));
        assert!(parse_duration("5s").unwrap_err().contains("shorter than a minute"));
        assert!(parse_duration("100years").unwrap_err().contains("longer than ten years"));
    }
}
