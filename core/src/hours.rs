//! Office hours: when agents are at work, in one time zone, so that a customer handed off while
//! nobody is there is told when the team is back rather than a place in a queue nobody works.
//!
//! Pure: a week of opening times (several per day; one that ends at or before it starts runs
//! past midnight, e.g. `22:00-02:00`), closed dates, and the reasons whose tickets are staffed
//! around the clock. Times are civil times in the configured IANA time zone, with its daylight
//! saving rules ([`jiff`]); a time skipped by a change of clocks counts as the time after it.
//! A closed date is closed all day, the part of an opening running into it from the day
//! before included.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::Lang;
use crate::types::{HandoffReason, Millis};

/// The keys of the days of the week, Monday first, as written in the configuration.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes in a day; `24:00` as the end of an opening.
const DAY: u16 = 24 * 60;

/// One opening on a day, in minutes after midnight. An `end` at or before `start` runs past
/// midnight into the next day; `end` is `1440` for `24:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// When it opens.
    pub start: u16,
    /// When it closes.
    pub end: u16,
}

impl Span {
    /// Reads `HH:MM-HH:MM` (`24:00` only as the end). An end before the start runs past midnight.
    pub fn parse(text: &str) -> Result<Span, String> {
        let bad = || format!("{text:?} is not HH:MM-HH:MM");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let start = minutes(a).ok_or_else(bad)?;
        let end = minutes(b).ok_or_else(bad)?;
        if start >= DAY {
            return Err(format!("{text:?} opens at 24:00; write 00:00 on the next day"));
        }
        if start == end {
            return Err(format!("{text:?} opens and closes at the same time"));
        }
        Ok(Span { start, end })
    }

    /// Whether it runs past midnight.
    pub fn overnight(self) -> bool {
        self.end <= self.start
    }
}

/// `HH:MM` (or `H:MM`) as minutes after midnight; `24:00` is 1440.
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let digits = |s: &str, max_len: usize| !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Reads a day's openings: one `HH:MM-HH:MM`, or several separated by commas.
pub fn parse_spans(text: &str) -> Result<Vec<Span>, String> {
    let spans: Vec<Span> = text.split(',').filter(|p| !p.trim().is_empty()).map(Span::parse).collect::<Result<_, _>>()?;
    if spans.is_empty() {
        return Err(format!("{text:?} is not HH:MM-HH:MM (leave the day out to keep it closed)"));
    }
    Ok(spans)
}

/// Reads a date written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let bad = || format!("{text:?} is not a date (YYYY-MM-DD)");
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let number = |s: &str, len: usize| if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<i16>().ok() } else { None };
    let (Some(y), Some(m), Some(d)) = (number(y, 4), number(m, 2), number(d, 2)) else { return Err(bad()) };
    let (Ok(m), Ok(d)) = (i8::try_from(m), i8::try_from(d)) else { return Err(bad()) };
    Date::new(y, m, d).map_err(|_| bad())
}

/// What a ticket's reason is called in `always_staffed`: its intent id, or `customer_request`,
/// `repeated_fallback`.
pub fn reason_key(reason: &HandoffReason) -> &str {
    match reason {
        HandoffReason::Intent(id) => id,
        HandoffReason::CustomerRequest => "customer_request",
        HandoffReason::RepeatedFallback => "repeated_fallback",
    }
}

/// When the team is next at work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opening {
    /// They are now.
    Now,
    /// At this instant, which is this civil time in the office's time zone.
    At {
        /// The instant.
        at: Millis,
        /// The office's clock then.
        local: DateTime,
    },
    /// No opening time is planned: closed until further notice.
    NotPlanned,
}

/// When agents are at work.
#[derive(Clone, Debug)]
pub struct OfficeHours {
    tz: TimeZone,
    tz_name: String,
    /// Openings by day of the week, Monday first.
    week: [Vec<Span>; 7],
    closed: BTreeSet<Date>,
    always_staffed: Vec<String>,
}

impl OfficeHours {
    /// Closed every day, in the IANA time zone `name` (e.g. `Asia/Shanghai`), until opening times
    /// are added with [`OfficeHours::open_on`].
    pub fn new(name: &str) -> Result<OfficeHours, String> {
        let name = name.trim();
        let tz = TimeZone::get(name).map_err(|_| format!("{name:?} is not a known time zone (an IANA name such as \"Asia/Shanghai\")"))?;
        Ok(OfficeHours { tz, tz_name: name.to_string(), week: Default::default(), closed: BTreeSet::new(), always_staffed: Vec::new() })
    }

    /// Opens on a day of the week (0: Monday … 6: Sunday) at these times, besides any already set.
    pub fn open_on(mut self, day: usize, spans: impl IntoIterator<Item = Span>) -> OfficeHours {
        if let Some(d) = self.week.get_mut(day) {
            d.extend(spans);
        }
        self
    }

    /// Closes on `date` (all day).
    pub fn closed_on(mut self, date: Date) -> OfficeHours {
        self.closed.insert(date);
        self
    }

    /// Tickets for `reason` (an intent id, `customer_request` or `repeated_fallback`) are staffed
    /// around the clock.
    pub fn always_staffed(mut self, reason: &str) -> OfficeHours {
        self.always_staffed.push(reason.trim().to_string());
        self
    }

    /// The IANA name of the time zone.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// The reasons staffed around the clock.
    pub fn always_staffed_reasons(&self) -> &[String] {
        &self.always_staffed
    }

    /// The openings that start on `date`, as instants; one running into a closed date ends at
    /// its midnight. None on a closed date.
    fn openings(&self, date: Date) -> Vec<(Timestamp, Timestamp)> {
        if self.closed.contains(&date) {
            return Vec::new();
        }
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        let Ok(next) = date.tomorrow() else { return Vec::new() };
        let next_closed = self.closed.contains(&next);
        self.week[day]
            .iter()
            .filter_map(|span| {
                let start = self.instant(date, span.start)?;
                let end = match (span.overnight() || span.end == DAY, next_closed) {
                    (false, _) => self.instant(date, span.end)?,
                    (true, true) => self.instant(next, 0)?,
                    (true, false) => self.instant(next, span.end % DAY)?,
                };
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The instant the office's clock shows `minutes` after midnight on `date` (a time skipped by
    /// a change of clocks: the one after it; a time shown twice: the first).
    fn instant(&self, date: Date, minutes: u16) -> Option<Timestamp> {
        let (h, m) = (i8::try_from(minutes / 60).ok()?, i8::try_from(minutes % 60).ok()?);
        self.tz.to_timestamp(date.at(h, m, 0, 0)).ok()
    }

    fn local_date(&self, at: Timestamp) -> Date {
        self.tz.to_datetime(at).date()
    }

    /// Whether agents are at work at `at`.
    pub fn is_open(&self, at: Millis) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(at) else { return true };
        let today = self.local_date(ts);
        // An opening that began yesterday may still run.
        [today.yesterday().ok(), Some(today)].into_iter().flatten().any(|d| self.openings(d).iter().any(|(s, e)| *s <= ts && ts < *e))
    }

    /// When agents are next at work, from `at`.
    pub fn next_open(&self, at: Millis) -> Opening {
        if self.is_open(at) {
            return Opening::Now;
        }
        let Ok(ts) = Timestamp::from_millisecond(at) else { return Opening::Now };
        if self.week.iter().all(Vec::is_empty) {
            return Opening::NotPlanned;
        }
        // A week with openings opens within a week of any run of closed dates.
        let mut date = self.local_date(ts);
        for _ in 0..self.closed.len() + 15 {
            if let Some(start) = self.openings(date).into_iter().map(|(s, _)| s).filter(|s| *s > ts).min() {
                return Opening::At { at: start.as_millisecond(), local: self.tz.to_datetime(start) };
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        Opening::NotPlanned
    }

    /// `None` when a ticket for `reason` opened at `at` is worked right away (the office is open,
    /// or the reason is staffed around the clock); else when agents are next at work.
    pub fn away(&self, reason: &HandoffReason, at: Millis) -> Option<Opening> {
        // Asking for a person is the pack's `human_agent` intent too.
        let also = matches!(reason, HandoffReason::CustomerRequest).then_some(crate::dialogue::HUMAN_INTENT);
        if self.always_staffed.iter().any(|r| r == reason_key(reason) || Some(r.as_str()) == also) {
            return None;
        }
        match self.next_open(at) {
            Opening::Now => None,
            later => Some(later),
        }
    }

    /// When the team is back, in words for a customer writing at `now`: `Monday 09:00
    /// (Asia/Shanghai)`, `today 13:30 (…)`, the date too when it is a week or more away;
    /// `None` when no opening is planned.
    pub fn back_at(&self, opening: &Opening, lang: Lang, now: Millis) -> Option<String> {
        let Opening::At { local, .. } = opening else { return None };
        let today = Timestamp::from_millisecond(now).map(|t| self.local_date(t)).unwrap_or(local.date());
        let mut days_away = None;
        let mut d = today;
        for n in 0..7 {
            if d == local.date() {
                days_away = Some(n);
                break;
            }
            match d.tomorrow() {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        let weekday = usize::try_from(local.date().weekday().to_monday_zero_offset()).unwrap_or(0);
        let time = format!("{:02}:{:02}", local.hour(), local.minute());
        let tz = &self.tz_name;
        Some(match (lang, days_away) {
            (Lang::En, Some(0)) => format!("today at {time} ({tz})"),
            (Lang::En, Some(_)) => format!("{} {time} ({tz})", EN_DAYS[weekday]),
            (Lang::En, None) => format!("{} {} {} {time} ({tz})", EN_DAYS[weekday], local.day(), EN_MONTHS[month(local)]),
            (Lang::Zh, Some(0)) => format!("今天 {time}({tz})"),
            (Lang::Zh, Some(_)) => format!("{} {time}({tz})", ZH_DAYS[weekday]),
            (Lang::Zh, None) => format!("{}月{}日({}){time}({tz})", local.month(), local.day(), ZH_DAYS[weekday]),
        })
    }
}

fn month(dt: &DateTime) -> usize {
    usize::try_from(dt.month() - 1).unwrap_or(0).min(11)
}

const EN_DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const ZH_DAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
const EN_MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/// A day's openings as configured: one string (`"09:00-18:00"`, or several separated by
/// commas) or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SpanList {
    /// `"09:00-12:00, 13:00-18:00"`.
    One(String),
    /// `["09:00-12:00", "13:00-18:00"]`.
    Many(Vec<String>),
}

/// `[hours]` as written in the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    /// The IANA time zone the times are in (required).
    pub time_zone: Option<String>,
    /// Monday's openings; a day left out is closed.
    pub mon: Option<SpanList>,
    /// Tuesday's.
    pub tue: Option<SpanList>,
    /// Wednesday's.
    pub wed: Option<SpanList>,
    /// Thursday's.
    pub thu: Option<SpanList>,
    /// Friday's.
    pub fri: Option<SpanList>,
    /// Saturday's.
    pub sat: Option<SpanList>,
    /// Sunday's.
    pub sun: Option<SpanList>,
    /// Dates closed all day, `YYYY-MM-DD`.
    #[serde(default)]
    pub closed: Vec<String>,
    /// Reasons (intent ids, `customer_request`, `repeated_fallback`) staffed around the clock.
    #[serde(default)]
    pub always_staffed: Vec<String>,
}

/// A mistake in `[hours]`, naming its key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hours.{key}: {message}")]
pub struct HoursError {
    /// The key, under `hours.`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl HoursConfig {
    /// The office hours, or the first mistake.
    pub fn build(&self) -> Result<OfficeHours, HoursError> {
        let err = |key: &str, message: String| HoursError { key: key.to_string(), message };
        let name = self
            .time_zone
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| err("time_zone", "is required: an IANA name such as \"Asia/Shanghai\"".into()))?;
        let mut hours = OfficeHours::new(name).map_err(|m| err("time_zone", m))?;
        let days = [&self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun];
        for (i, (key, spans)) in DAYS.iter().zip(days).enumerate() {
            let spans = match spans {
                None => continue,
                Some(SpanList::One(s)) => parse_spans(s),
                Some(SpanList::Many(list)) => {
                    list.iter().map(|s| parse_spans(s)).collect::<Result<Vec<_>, _>>().map(|v| v.into_iter().flatten().collect())
                }
            }
            .map_err(|m| err(key, m))?;
            hours = hours.open_on(i, spans);
        }
        for date in &self.closed {
            hours = hours.closed_on(parse_date(date).map_err(|m| err("closed", m))?);
        }
        for reason in &self.always_staffed {
            if reason.trim().is_empty() {
                return Err(err("always_staffed", "an empty reason (write an intent id, customer_request or repeated_fallback)".into()));
            }
            hours = hours.always_staffed(reason);
        }
        Ok(hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Millis {
        TimeZone::get(tz).unwrap().to_timestamp(jiff::civil::date(y, mo, d).at(h, mi, 0, 0)).unwrap().as_millisecond()
    }

    fn weekdays(tz: &str, span: &str) -> OfficeHours {
        let spans = parse_spans(span).unwrap();
        (0..5).fold(OfficeHours::new(tz).unwrap(), |h, d| h.open_on(d, spans.clone()))
    }

    fn local(opening: &Opening) -> String {
        match opening {
            Opening::At { local, .. } => local.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn spans_parse_and_bad_ones_say_why() {
        assert_eq!(Span::parse("09:00-18:00"), Ok(Span { start: 540, end: 1080 }));
        assert_eq!(Span::parse(" 9:30 - 24:00 "), Ok(Span { start: 570, end: 1440 }));
        assert!(Span::parse("22:00-02:00").unwrap().overnight());
        assert_eq!(parse_spans("09:00-12:00, 13:00-18:00").unwrap().len(), 2);
        for bad in ["9-18", "25:00-26:00", "09:00-18:60", "09:00", "0900-1800", "09:00-18:00-19:00", "", "ab:cd-ef:gh", "09:000-18:00"] {
            let e = parse_spans(bad).unwrap_err();
            assert!(e.contains("HH:MM-HH:MM"), "{bad}: {e}");
        }
        assert!(Span::parse("10:00-10:00").unwrap_err().contains("same time"));
        assert!(Span::parse("24:00-02:00").unwrap_err().contains("24:00"));
        assert_eq!(parse_date("2026-12-25").unwrap(), jiff::civil::date(2026, 12, 25));
        for bad in ["2026-02-30", "2026-13-01", "26-12-25", "2026/12/25", "christmas"] {
            assert!(parse_date(bad).unwrap_err().contains("YYYY-MM-DD"), "{bad}");
        }
        assert!(OfficeHours::new("Mars/Olympus_Mons").unwrap_err().contains("not a known time zone"));
    }

    #[test]
    fn open_within_the_days_hours_and_next_opening_after_the_weekend() {
        let h = weekdays("Asia/Shanghai", "09:00-12:00, 13:00-18:00");
        // Wednesday 2026-03-04.
        assert!(h.is_open(ms("Asia/Shanghai", 2026, 3, 4, 9, 0)));
        assert!(h.is_open(ms("Asia/Shanghai", 2026, 3, 4, 17, 59)));
        assert!(!h.is_open(ms("Asia/Shanghai", 2026, 3, 4, 12, 30)), "lunch");
        assert!(!h.is_open(ms("Asia/Shanghai", 2026, 3, 4, 18, 0)), "the end is exclusive");
        assert_eq!(local(&h.next_open(ms("Asia/Shanghai", 2026, 3, 4, 12, 30))), "2026-03-04T13:00:00");
        assert_eq!(local(&h.next_open(ms("Asia/Shanghai", 2026, 3, 4, 7, 0))), "2026-03-04T09:00:00");
        assert_eq!(h.next_open(ms("Asia/Shanghai", 2026, 3, 4, 10, 0)), Opening::Now);
        // Friday evening: Monday morning.
        let friday = ms("Asia/Shanghai", 2026, 3, 6, 19, 0);
        let next = h.next_open(friday);
        assert_eq!(local(&next), "2026-03-09T09:00:00");
        assert_eq!(h.back_at(&next, Lang::En, friday).unwrap(), "Monday 09:00 (Asia/Shanghai)");
        assert_eq!(h.back_at(&next, Lang::Zh, friday).unwrap(), "周一 09:00(Asia/Shanghai)");
        let lunch = ms("Asia/Shanghai", 2026, 3, 4, 12, 30);
        assert_eq!(h.back_at(&h.next_open(lunch), Lang::En, lunch).unwrap(), "today at 13:00 (Asia/Shanghai)");
        // The same instant seen from UTC is the same answer.
        assert_eq!(h.next_open(ms("UTC", 2026, 3, 6, 11, 0)), next);
    }

    #[test]
    fn daylight_saving_changes_keep_the_local_opening_time() {
        // New York moves its clocks forward on Sunday 2026-03-08 and back on Sunday 2026-11-01.
        let h = weekdays("America/New_York", "09:00-17:00");
        let before = h.next_open(ms("America/New_York", 2026, 3, 6, 18, 0));
        let after = h.next_open(ms("America/New_York", 2026, 3, 7, 12, 0));
        assert_eq!((local(&before), local(&after)), ("2026-03-09T09:00:00".into(), "2026-03-09T09:00:00".into()));
        let Opening::At { at, .. } = before else { panic!() };
        // 09:00 EDT is 13:00 UTC (it was 14:00 UTC the Friday before).
        assert_eq!(at, ms("UTC", 2026, 3, 9, 13, 0));
        assert!(h.is_open(ms("UTC", 2026, 3, 9, 13, 0)));
        assert!(!h.is_open(ms("UTC", 2026, 3, 6, 13, 30)), "08:30 EST");
        assert!(h.is_open(ms("UTC", 2026, 11, 2, 14, 30)), "09:30 EST after the change back");
        assert!(!h.is_open(ms("UTC", 2026, 11, 2, 13, 30)), "08:30 EST");
        // An opening inside the skipped hour opens at the first time after it.
        let night = OfficeHours::new("America/New_York").unwrap().open_on(6, parse_spans("02:30-05:00").unwrap());
        let Opening::At { at, local: l } = night.next_open(ms("America/New_York", 2026, 3, 8, 0, 0)) else { panic!() };
        assert_eq!(at, ms("UTC", 2026, 3, 8, 7, 30), "03:30 EDT");
        assert_eq!(l.to_string(), "2026-03-08T03:30:00");
    }

    #[test]
    fn closed_dates_skip_to_the_next_open_day() {
        let h = weekdays("Asia/Shanghai", "09:00-18:00")
            .closed_on(parse_date("2026-12-25").unwrap())
            .closed_on(parse_date("2026-12-28").unwrap());
        // Thursday 24 December, evening: Friday 25 is closed, then the weekend, then Monday 28 is closed.
        let eve = ms("Asia/Shanghai", 2026, 12, 24, 20, 0);
        assert!(!h.is_open(ms("Asia/Shanghai", 2026, 12, 25, 10, 0)));
        let next = h.next_open(eve);
        assert_eq!(local(&next), "2026-12-29T09:00:00");
        assert_eq!(h.back_at(&next, Lang::En, eve).unwrap(), "Tuesday 09:00 (Asia/Shanghai)");
        // A week or more away: with the date.
        let far = weekdays("Asia/Shanghai", "09:00-18:00");
        let far = (1..=14).fold(far, |h, d| h.closed_on(jiff::civil::date(2027, 1, d)));
        let new_year = ms("Asia/Shanghai", 2026, 12, 31, 20, 0);
        let next = far.next_open(new_year);
        assert_eq!(local(&next), "2027-01-15T09:00:00");
        assert_eq!(far.back_at(&next, Lang::En, new_year).unwrap(), "Friday 15 January 09:00 (Asia/Shanghai)");
        assert_eq!(far.back_at(&next, Lang::Zh, new_year).unwrap(), "1月15日(周五)09:00(Asia/Shanghai)");
    }

    #[test]
    fn overnight_openings_run_past_midnight_but_not_into_a_closed_date() {
        let h = OfficeHours::new("Europe/Berlin")
            .unwrap()
            .open_on(0, parse_spans("22:00-02:00").unwrap())
            .open_on(1, parse_spans("22:00-02:00").unwrap())
            .closed_on(jiff::civil::date(2026, 3, 10));
        // Monday 2026-03-09 22:00 to Tuesday 02:00.
        assert!(h.is_open(ms("Europe/Berlin", 2026, 3, 9, 23, 0)));
        assert!(h.is_open(ms("Europe/Berlin", 2026, 3, 2, 23, 30)));
        assert!(h.is_open(ms("Europe/Berlin", 2026, 3, 3, 1, 59)), "Tuesday morning, from Monday night");
        assert!(!h.is_open(ms("Europe/Berlin", 2026, 3, 3, 2, 0)));
        // Tuesday 10 March is closed: Monday's night ends at midnight, Tuesday's does not start.
        assert!(!h.is_open(ms("Europe/Berlin", 2026, 3, 10, 1, 0)));
        assert!(!h.is_open(ms("Europe/Berlin", 2026, 3, 10, 23, 0)));
        assert_eq!(local(&h.next_open(ms("Europe/Berlin", 2026, 3, 10, 1, 0))), "2026-03-16T22:00:00");
        // A day open until 24:00.
        let late = OfficeHours::new("UTC").unwrap().open_on(2, parse_spans("20:00-24:00").unwrap());
        assert!(late.is_open(ms("UTC", 2026, 3, 4, 23, 59)));
        assert!(!late.is_open(ms("UTC", 2026, 3, 5, 0, 0)));
    }

    #[test]
    fn a_week_without_openings_is_closed_until_further_notice() {
        let h = OfficeHours::new("Asia/Shanghai").unwrap();
        let at = ms("Asia/Shanghai", 2026, 3, 4, 10, 0);
        assert!(!h.is_open(at));
        assert_eq!(h.next_open(at), Opening::NotPlanned);
        assert_eq!(h.back_at(&Opening::NotPlanned, Lang::En, at), None);
    }

    #[test]
    fn always_staffed_reasons_are_never_away() {
        let h = weekdays("Asia/Shanghai", "09:00-18:00").always_staffed("account_stolen").always_staffed("customer_request");
        let night = ms("Asia/Shanghai", 2026, 3, 4, 23, 0);
        assert_eq!(h.away(&HandoffReason::Intent("account_stolen".into()), night), None);
        assert_eq!(h.away(&HandoffReason::CustomerRequest, night), None);
        assert!(matches!(h.away(&HandoffReason::Intent("transfer_failed".into()), night), Some(Opening::At { .. })));
        assert!(matches!(h.away(&HandoffReason::RepeatedFallback, night), Some(Opening::At { .. })));
        assert_eq!(h.away(&HandoffReason::RepeatedFallback, ms("Asia/Shanghai", 2026, 3, 4, 10, 0)), None);
        let by_intent = weekdays("UTC", "09:00-18:00").always_staffed("human_agent");
        assert_eq!(by_intent.away(&HandoffReason::CustomerRequest, night), None, "asking for a person is the human_agent intent");
    }

    #[test]
    fn the_configuration_names_the_key_of_each_mistake() {
        let base = HoursConfig { time_zone: Some("Asia/Shanghai".into()), ..HoursConfig::default() };
        let with = |f: &dyn Fn(&mut HoursConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c.build().map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(with(&|_| {}), Ok(()));
        assert_eq!(with(&|c| c.mon = Some(SpanList::One("9-18".into()))).unwrap_err(), "hours.mon: \"9-18\" is not HH:MM-HH:MM");
        assert!(
            with(&|c| c.sat = Some(SpanList::Many(vec!["10:00-14:00".into(), "25:00-26:00".into()])))
                .unwrap_err()
                .starts_with("hours.sat: \"25:00-26:00\"")
        );
        assert!(
            with(&|c| c.time_zone = Some("Asia/Shangai".into()))
                .unwrap_err()
                .starts_with("hours.time_zone: \"Asia/Shangai\" is not a known")
        );
        assert!(with(&|c| c.time_zone = None).unwrap_err().starts_with("hours.time_zone: is required"));
        assert_eq!(with(&|c| c.closed = vec!["2026-02-30".into()]).unwrap_err(), "hours.closed: \"2026-02-30\" is not a date (YYYY-MM-DD)");
        assert!(with(&|c| c.always_staffed = vec![" ".into()]).unwrap_err().starts_with("hours.always_staffed:"));
    }
}
