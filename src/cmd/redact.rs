//! `switchboard redact`: reads lines on standard input and prints each with its secrets masked
//! (card numbers, security codes, one-time codes, passwords, resident ID numbers), so maintainers
//! can see what the masking keeps and what it hides. `--explain` adds what was found to each line.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use switchboard_core::redact::Redactor;

/// Options of `switchboard redact`.
#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    /// After each line, say what was hidden (`# card, code`).
    #[arg(long)]
    pub explain: bool,
}

/// Masks stdin to stdout, line by line.
pub fn run(args: &RedactArgs) -> anyhow::Result<ExitCode> {
    let redactor = Redactor::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line?;
        let red = redactor.redact(&line);
        if args.explain && !red.found.is_empty() {
            let what: Vec<String> = red.found.iter().map(|s| format!("{s:?}")).collect();
            writeln!(out, "{}\t# {}", red.text, what.join(", "))?;
        } else {
            writeln!(out, "{}", red.text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
