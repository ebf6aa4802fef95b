//! `switchboard report [--since 7d] [--json]`: what the bot did over a period, from the store —
//! containment, handoffs, agent times, intents and outcomes, satisfaction, unanswered messages.
//! Readable in a terminal; `--json` for tools.

use std::process::ExitCode;
use std::time::Duration;

use switchboard_core::report;
use switchboard_core::types::now_ms;

use crate::config::Config;

/// `report`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The period, back from now: `24h`, `7d`, `30d`, `2w`.
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads `--since`: a positive duration that starts after 1970.
pub fn since(text: &str, now: i64) -> Result<i64, String> {
    let d: Duration =
        humantime::parse_duration(text.trim()).map_err(|e| format!("--since {text:?} is not a duration ({e}); write it as 24h, 7d, 2w"))?;
    if d.is_zero() {
        return Err(format!("--since {text:?} is an empty period; give a duration such as 7d"));
    }
    let ms =
        i64::try_from(d.as_millis()).ok().filter(|ms| *ms <= now).ok_or_else(|| format!("--since {text:?} reaches back before 1970"))?;
    Ok(now - ms)
}

pub async fn run(config: Config, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let now = now_ms();
    let start = match since(&args.since, now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = config.open_store().await?;
    let r = report::build(&*store, start, now + 1).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{r}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_positive_duration_after_1970() {
        let now = 1_800_000_000_000;
        assert_eq!(since("7d", now), Ok(now - 7 * 86_400_000));
        assert!(since("soon", now).unwrap_err().contains("24h, 7d, 2w"));
        assert!(since("0s", now).unwrap_err().contains("empty period"));
        assert!(since("100years", now).unwrap_err().contains("before 1970"));
    }
}
