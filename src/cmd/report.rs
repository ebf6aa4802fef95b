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
    #[arg(long, default_value = "7d", value_name = "PERIOD", value_parser = crate::cmd::period::period)]
    pub since: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: Config, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let now = now_ms();
    let start = match crate::cmd::period::start(args.since, now) {
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
