//! `--since`, as `report` and `intents suggest` read it: a positive duration back from now
//! (`24h`, `7d`, `30d`, `2w`), refused with a clear message when it is not one or reaches back
//! before 1970.

use std::time::Duration;

/// Reads `--since` (a clap value parser): a positive duration.
pub fn period(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| format!("not a duration ({e}); write it as 30d, 12h or 2w"))?;
    if d.is_zero() {
        return Err("an empty period; give a duration such as 30d".into());
    }
    Ok(d)
}

/// When a period of `since` back from `now` starts (ms), unless that is before 1970.
pub fn start(since: Duration, now: i64) -> Result<i64, String> {
    i64::try_from(since.as_millis())
        .ok()
        .filter(|ms| *ms <= now)
        .map(|ms| now - ms)
        .ok_or_else(|| format!("--since {} reaches back before 1970", humantime::format_duration(since)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_a_positive_duration_after_1970() {
        assert_eq!(period("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(period("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(period("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(period("soon").unwrap_err().contains("30d, 12h or 2w"));
        assert!(period("0s").unwrap_err().contains("empty period"));
        let now = 1_800_000_000_000;
        assert_eq!(start(Duration::from_secs(7 * 86_400), now), Ok(now - 7 * 86_400_000));
        assert!(start(period("100years").unwrap_or_default(), now).unwrap_err().contains("before 1970"));
    }
}
