//! `switchboard forget --customer CHANNEL:ID`: erases one customer's data on request (a right to
//! erasure): their conversations' transcripts and state, their tickets' texts and details (the
//! tickets are closed and kept, without the customer's ids, so reports still count them), and
//! undelivered messages to them. Says what it removed; a customer the store does not know changes
//! nothing and exits with 2.

use std::process::ExitCode;

use switchboard_core::store::Erased;
use switchboard_core::types::now_ms;

use crate::config::Config;

/// `forget`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ForgetArgs {
    /// The customer, as `channel:platform user id` (`telegram:123456789`, `discord:80351110224678912`),
    /// as shown on their tickets.
    #[arg(long)]
    pub customer: String,
    /// Who asks, for the tickets' history (default: `$USER`).
    #[arg(long, env = "USER", default_value = "operator")]
    pub by: String,
}

/// Reads `channel:id`, refusing anything else with a clear message.
fn customer(text: &str) -> Result<(&str, &str), String> {
    let text = text.trim();
    // The id is after the last colon (the terminal's channels are `cli:<chat>` themselves).
    match text.rsplit_once(':') {
        Some((c, id)) if !c.is_empty() && !id.trim().is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_:".contains(ch)) => {
            Ok((c, id.trim()))
        }
        _ => Err(format!("--customer {text:?}: expected CHANNEL:ID, such as telegram:123456789")),
    }
}

/// What was removed, in words.
pub fn report(who: &str, e: &Erased) -> String {
    format!(
        "Erased {who}: {} conversation(s) emptied, {} transcript line(s) deleted, {} ticket(s) without their texts and details \
         (kept closed, for counts), {} undelivered message(s) dropped.",
        e.conversations, e.transcript_lines, e.tickets, e.outbox_items
    )
}

pub async fn run(config: Config, args: &ForgetArgs) -> anyhow::Result<ExitCode> {
    let (channel, id) = match customer(&args.customer) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = config.open_store().await?;
    let erased = store.erase_customer(channel, id, &format!("operator:{}", args.by), now_ms()).await?;
    if erased == Erased::default() {
        eprintln!("error: no customer {channel}:{id} in the store; nothing was changed");
        return Ok(ExitCode::from(2));
    }
    // Ids only: never what the customer wrote.
    tracing::info!(customer = %format!("{channel}:{id}"), by = %args.by, "erased a customer's data on request");
    println!("{}", report(&format!("{channel}:{id}"), &erased));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_channel_and_id() {
        assert_eq!(customer(" telegram:42 "), Ok(("telegram", "42")));
        assert_eq!(customer("discord:80351110224678912"), Ok(("discord", "80351110224678912")));
        assert_eq!(customer("cli:ann:ann"), Ok(("cli:ann", "ann")));
        for bad in ["42", ":42", "telegram:", "tele gram:4", ""] {
            assert!(customer(bad).unwrap_err().contains("CHANNEL:ID"), "{bad}");
        }
    }
}
