//! The `switchboard` binary: the command line over the core and the adapters.
//!
//! `chat` is a customer conversation in the terminal, `desk` the agents' side, `run` serves the
//! configured channels, `intents check|test` are for maintainers and `eval` scores the matcher.

mod cmd;
mod config;
mod http;
mod prometheus;
mod reload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Switchboard: a support bot that answers the common questions and hands the rest to people.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    /// Configuration file (default: ./switchboard.toml if it exists).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat with the bot in the terminal, as a customer.
    Chat(cmd::chat::ChatArgs),
    /// Work tickets in the terminal, as an agent.
    Desk(cmd::desk::DeskArgs),
    /// Serve the configured channels (Telegram, Discord).
    Run(cmd::run::RunArgs),
    /// Check and test intent packs.
    #[command(subcommand)]
    Intents(cmd::intents::IntentsCommand),
    /// Train the matcher on one set and score it on another.
    Eval(cmd::eval::EvalArgs),
    /// Mask secrets (card numbers, codes, passwords, ID numbers) in the lines of standard input.
    Redact(cmd::redact::RedactArgs),
    /// Erase a customer's data on request: transcripts, tickets' texts and details, undelivered messages.
    Forget(cmd::forget::ForgetArgs),
    /// What the bot did over a period: containment, handoffs, agent times, intents, satisfaction.
    Report(cmd::report::ReportArgs),
    /// Read a web console password on standard input and print its hash, for `password_hash` in
    /// `[[web.accounts]]`.
    ConsolePassword,
}

fn init_logging(default: &str) {
    let env = std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV).ok();
    let filter = tracing_subscriber::EnvFilter::try_new(log_directives(env.as_deref(), default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_directives(None, default)));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// The log directives: `RUST_LOG` when set, else `default`; either way serenity is held at `warn`
/// unless the directives name it, because its info-level spans carry whole gateway events and
/// request bodies, customers' message text among them (`RUST_LOG=info` would log it all).
fn log_directives(env: Option<&str>, default: &str) -> String {
    let chosen = env.map(str::trim).filter(|e| !e.is_empty()).unwrap_or(default);
    if chosen.contains("serenity") { chosen.to_string() } else { format!("{chosen},serenity=warn") }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(match cli.command {
        // (serenity is held at warn either way: see `log_directives`.)
        Command::Run(_) => "info",
        // One-off commands read whole periods (`report`, `intents suggest`): a streamed read
        // outlasting sqlx's 1 s "slow statement" threshold is expected, not worth a warning.
        _ => "warn,sqlx::query=error",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let load = || config::Config::load(cli.config.as_deref());
        match cli.command {
            Command::Chat(args) => cmd::chat::run(load()?, args).await,
            Command::Desk(args) => cmd::desk::run(load()?, args).await,
            Command::Run(args) => cmd::run::run(load()?, args).await,
            Command::Intents(c) => cmd::intents::run(load()?, c).await,
            Command::Redact(args) => cmd::redact::run(load()?, &args),
            Command::Forget(args) => cmd::forget::run(load()?, &args).await,
            Command::Report(args) => cmd::report::run(load()?, &args).await,
            Command::ConsolePassword => cmd::console_password::run(),
            Command::Eval(args) => {
                let cfg = load()?;
                cmd::eval::run(&args, cfg.matching).map(|()| ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause its effect already spells out
/// (our errors' messages include their source's, which `{:#}` would print twice).
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{describe, log_directives};

    #[test]
    fn serenity_stays_at_warn_unless_named() {
        assert_eq!(log_directives(None, "info"), "info,serenity=warn");
        assert_eq!(log_directives(Some("info"), "warn"), "info,serenity=warn");
        assert_eq!(log_directives(Some(" "), "warn"), "warn,serenity=warn");
        assert_eq!(log_directives(Some("debug,serenity=info"), "warn"), "debug,serenity=info", "an operator who names it decides");
        // The directives parse, and serenity's info events are then off.
        let filter = tracing_subscriber::EnvFilter::try_new(log_directives(Some("info"), "warn")).expect("valid directives");
        assert!(filter.to_string().contains("serenity=warn"), "{filter}");
    }

    #[test]
    fn describe_prints_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let pack = switchboard_core::PackError::Io { path: "intents/x/pack.toml".into(), source: io };
        let e = anyhow::Error::new(pack).context("cannot load the intent pack intents/x");
        assert_eq!(describe(&e), "cannot load the intent pack intents/x: cannot read intents/x/pack.toml: no such file");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&plain), "outer: inner");
    }
}
