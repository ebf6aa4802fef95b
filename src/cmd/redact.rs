//! `switchboard redact`: reads lines on standard input and prints each with its secrets masked
//! (card numbers, security codes, one-time codes, passwords, resident ID numbers, and the pack's
//! own `[redact]` patterns), so maintainers can see what the masking keeps and what it hides.
//! `--explain` adds what was found to each line; `--eval FILE` measures the masking on a labelled
//! set instead (`tests/data/redaction.tsv`).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use switchboard_core::redact::set;

use crate::config::{Config, load_pack};

/// Options of `switchboard redact`.
#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    /// After each line, say what was hidden (`# Card, OneTimeCode`).
    #[arg(long)]
    pub explain: bool,
    /// The pack whose `[redact]` patterns apply too (default: the configured pack).
    #[arg(long)]
    pub pack: Option<PathBuf>,
    /// Instead of masking standard input, measure the masking on this labelled set and print the
    /// figures (secrets hidden, look-alikes kept) and every miss; fails if a secret stays visible.
    #[arg(long, value_name = "FILE")]
    pub eval: Option<PathBuf>,
}

/// Masks stdin to stdout, line by line, or scores a labelled set.
pub fn run(config: Config, args: &RedactArgs) -> anyhow::Result<ExitCode> {
    let pack = load_pack(args.pack.as_ref().unwrap_or(&config.pack), &config.values)?;
    let redactor = &pack.redactor;
    if let Some(file) = &args.eval {
        let src = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let labels: Vec<String> = redactor.custom().iter().filter_map(|p| p.label.clone()).collect();
        let cases = set::parse(&src, &labels).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let figures = set::score(redactor, &cases);
        println!(
            "{}: {} messages, masked with the built-in rules and {} pattern(s) of the pack {}",
            file.display(),
            cases.len(),
            redactor.custom().len(),
            pack.dir.display()
        );
        print!("{}", figures.report());
        return Ok(if figures.hidden == figures.secrets { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
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
