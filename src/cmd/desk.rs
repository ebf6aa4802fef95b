//! `switchboard desk`: the agents' side in a terminal, over the same database as the bot. Run one
//! command (`switchboard desk claim 3`) or, without one, an interactive desk that reads commands
//! line by line and shows new tickets and customer messages as they arrive.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::engine::{AgentCommand, AgentOutcome, Engine};
use switchboard_core::types::{Actor, Author, Ticket, TicketEventKind, TicketStatus, now_ms};
use switchboard_core::{EngineError, channel};
use tokio::io::AsyncBufReadExt;

use crate::config::Config;

/// Options of `switchboard desk`.
#[derive(Debug, clap::Args)]
pub struct DeskArgs {
    /// Your agent name; you act as `desk:<name>`, which the allowlist must admit.
    #[arg(long, env = "USER", default_value = "agent")]
    pub agent: String,
    /// One command to run; without it the desk is interactive.
    #[command(subcommand)]
    pub command: Option<DeskCommand>,
}

/// Desk commands. Interactively, type them without the `switchboard desk` prefix.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DeskCommand {
    /// List waiting and assigned tickets, urgent first, then oldest.
    Queue,
    /// Show a ticket: details, history and transcript.
    Show { ticket: i64 },
    /// Take a ticket; the bot goes silent and you answer the customer.
    Claim { ticket: i64 },
    /// Send a message to the ticket's customer.
    Reply {
        ticket: i64,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Add an internal note the customer never sees.
    Note {
        ticket: i64,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Put the ticket back in the queue.
    Release { ticket: i64 },
    /// Close the ticket; the customer is back with the bot.
    Close { ticket: i64 },
    /// Block the ticket's customer: `block N [2h|7d…] [reason]`; their messages are kept, not answered.
    Block {
        ticket: i64,
        #[arg(num_args = 0..)]
        text: Vec<String>,
    },
    /// Lift the block on the ticket's customer.
    Unblock { ticket: i64 },
}

impl DeskCommand {
    fn to_agent(&self) -> Result<AgentCommand, String> {
        Ok(match self {
            DeskCommand::Queue => AgentCommand::Queue,
            DeskCommand::Show { ticket } => AgentCommand::Show(*ticket),
            DeskCommand::Claim { ticket } => AgentCommand::Claim(*ticket),
            DeskCommand::Reply { ticket, text } => AgentCommand::Reply(*ticket, text.join(" ")),
            DeskCommand::Note { ticket, text } => AgentCommand::Note(*ticket, text.join(" ")),
            DeskCommand::Release { ticket } => AgentCommand::Release(*ticket),
            DeskCommand::Close { ticket } => AgentCommand::Close(*ticket),
            DeskCommand::Block { ticket, text } => {
                let (duration, reason) = switchboard_core::guard::block_args(&text.join(" "))?;
                AgentCommand::Block { ticket: *ticket, duration, reason }
            }
            DeskCommand::Unblock { ticket } => AgentCommand::Unblock(*ticket),
        })
    }

    /// Parses an interactive line: `reply 3 any text, kept as typed`.
    fn parse_line(line: &str) -> Result<Option<DeskCommand>, String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let ticket = |s: &str| s.trim_start_matches('#').parse::<i64>().map_err(|_| format!("{word}: expected a ticket number, got {s:?}"));
        let (num, text) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(n, t)| (n, t.trim()));
        let with_text = |t: &str| if t.is_empty() { Err(format!("{word}: the text is missing")) } else { Ok(vec![t.to_string()]) };
        Ok(Some(match word {
            "queue" | "q" => DeskCommand::Queue,
            "show" => DeskCommand::Show { ticket: ticket(num)? },
            "claim" => DeskCommand::Claim { ticket: ticket(num)? },
            "reply" | "r" => DeskCommand::Reply { ticket: ticket(num)?, text: with_text(text)? },
            "note" => DeskCommand::Note { ticket: ticket(num)?, text: with_text(text)? },
            "release" => DeskCommand::Release { ticket: ticket(num)? },
            "close" => DeskCommand::Close { ticket: ticket(num)? },
            "block" => DeskCommand::Block { ticket: ticket(num)?, text: if text.is_empty() { vec![] } else { vec![text.to_string()] } },
            "unblock" => DeskCommand::Unblock { ticket: ticket(num)? },
            _ => {
                return Err(format!(
                    "unknown command {word:?}; try: queue, show N, claim N, reply N text, note N text, release N, close N, block N [2h] [reason], unblock N, help, quit"
                ));
            }
        }))
    }
}

/// The interactive commands, one per line, each with its variant's doc comment.
fn interactive_help() -> String {
    use clap::Subcommand;
    let cmd = DeskCommand::augment_subcommands(clap::Command::new("desk"));
    let mut out = String::new();
    for sc in cmd.get_subcommands() {
        let args: Vec<&str> = sc.get_arguments().map(|a| if a.get_id() == "ticket" { "N" } else { "text" }).collect();
        let usage = std::iter::once(sc.get_name()).chain(args).collect::<Vec<_>>().join(" ");
        out.push_str(&format!("  {usage:<16} {}\n", sc.get_about().map(|a| a.to_string()).unwrap_or_default()));
    }
    out.push_str(&format!("  {:<16} {}\n", "quit", "Leave the desk (tickets stay as they are)"));
    out
}

fn ago(at: i64) -> String {
    let s = (now_ms() - at).max(0) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

fn ticket_line(t: &Ticket) -> String {
    format!(
        "#{:<4} {:<7} {:<9} {:<9} {:<20} {:<28} {}{}",
        t.id,
        t.priority.as_str(),
        t.status.as_str(),
        t.key.channel,
        channel::one_line(&t.customer_name, 20),
        channel::one_line(&channel::reason_text(&t.reason), 28),
        ago(t.created_at),
        t.agent.as_deref().map(|a| format!("  ({a})")).unwrap_or_default()
    )
}

fn print_outcome(outcome: &AgentOutcome) {
    match outcome {
        AgentOutcome::Queue(tickets) if tickets.is_empty() => println!("The queue is empty."),
        AgentOutcome::Queue(tickets) => {
            for t in tickets {
                println!("{}", ticket_line(t));
            }
        }
        AgentOutcome::Detail(d) => {
            println!("{}", channel::ticket_summary(&channel::TicketView { ticket: d.ticket.clone(), recent: Vec::new() }));
            println!("Status: {}{}", d.ticket.status.as_str(), d.ticket.agent.as_deref().map(|a| format!(" ({a})")).unwrap_or_default());
            println!("History:");
            for e in &d.events {
                println!("  {} {}", ago(e.at), describe(&e.kind));
            }
            println!("Transcript:");
            for e in &d.transcript {
                let who = match &e.author {
                    Author::Customer => "customer".to_string(),
                    Author::Bot => "bot".to_string(),
                    Author::Agent(a) => a.clone(),
                };
                println!("  [{who}] {}", e.text);
            }
        }
        AgentOutcome::Done(t) => println!("ok: {}", ticket_line(t)),
    }
}

fn describe(kind: &TicketEventKind) -> String {
    match kind {
        TicketEventKind::Opened => "opened".into(),
        TicketEventKind::Claimed { agent } => format!("claimed by {agent}"),
        TicketEventKind::Released { agent } => format!("released by {agent}"),
        TicketEventKind::CustomerMessage { text } => format!("customer: {text}"),
        TicketEventKind::AgentReply { agent, text } => format!("{agent}: {text}"),
        TicketEventKind::Note { agent, text } => format!("note by {agent}: {text}"),
        TicketEventKind::DeliveryFailed { reason } => format!("delivery failed: {reason}"),
        TicketEventKind::Closed { agent } => format!("closed by {agent}"),
        TicketEventKind::Blocked { agent, until, reason } => {
            format!("customer blocked by {agent}{}", switchboard_core::guard::block_terms(*until, reason))
        }
        TicketEventKind::Unblocked { agent } => format!("customer unblocked by {agent}"),
        TicketEventKind::Rated { score, comment } => {
            format!("rated {score}/5 by the customer{}", comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default())
        }
        TicketEventKind::Erased { by } => format!("customer's data erased by {by}"),
    }
}

pub async fn run(config: Config, args: DeskArgs) -> anyhow::Result<ExitCode> {
    let pack = config.load_pack()?;
    let store = config.open_store().await?;
    let engine = Engine::new(store, pack, config.engine());
    let actor = Actor::new(format!("desk:{}", args.agent), args.agent.clone());
    if !engine.is_agent(&actor) {
        anyhow::bail!("{} is not on the agent allowlist ([agents] allow in switchboard.toml)", actor.id);
    }
    if let Some(cmd) = args.command {
        let cmd = match cmd.to_agent() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        return Ok(match engine.agent(&actor, cmd).await {
            Ok(outcome) => {
                print_outcome(&outcome);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                if let EngineError::Store(inner) = &e {
                    tracing::error!(error = %inner, "desk command failed");
                }
                ExitCode::FAILURE
            }
        });
    }

    println!(
        "Switchboard desk — you are {}. Commands: queue, show N, claim N, reply N text, note N text, release N, close N, block N [2h] [reason], unblock N, help, quit.",
        actor.id
    );
    let watcher = tokio::spawn(watch(engine.clone(), actor.clone()));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if matches!(line.trim(), "quit" | "exit") {
            break;
        }
        if matches!(line.trim(), "help" | "?") {
            print!("{}", interactive_help());
            continue;
        }
        match DeskCommand::parse_line(&line) {
            Ok(None) => {}
            Ok(Some(cmd)) => match cmd.to_agent() {
                Ok(cmd) => match engine.agent(&actor, cmd).await {
                    Ok(o) => print_outcome(&o),
                    Err(e) => println!("error: {e}"),
                },
                Err(e) => println!("error: {e}"),
            },
            Err(msg) => println!("{msg}"),
        }
    }
    watcher.abort();
    Ok(ExitCode::SUCCESS)
}

/// Prints new tickets and new customer messages on the agent's tickets as they arrive, and the
/// rating a customer gives once the agent closed their ticket.
async fn watch(engine: Arc<Engine>, actor: Actor) {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut first = true;
    loop {
        if let Ok(tickets) = engine.store().tickets(&[TicketStatus::Queued, TicketStatus::Assigned]).await {
            let open: std::collections::HashSet<i64> = tickets.iter().map(|t| t.id).collect();
            // Tickets closed since: followed while their customer may rate the help.
            let closed: Vec<i64> = seen.keys().filter(|id| !open.contains(id)).copied().collect();
            for id in closed {
                let ticket = engine.store().ticket(id).await.ok().flatten();
                let Some(t) = ticket.filter(|t| {
                    t.status == TicketStatus::Closed
                        && now_ms().saturating_sub(t.updated_at) <= switchboard_core::dialogue::RATING_WINDOW_MS
                }) else {
                    seen.remove(&id);
                    continue;
                };
                let Ok(events) = engine.store().ticket_events(id).await else { continue };
                let before = seen.insert(id, events.len()).unwrap_or(events.len());
                if t.agent.as_deref() == Some(actor.id.as_str()) {
                    for e in events.iter().skip(before).filter(|e| matches!(e.kind, TicketEventKind::Rated { .. })) {
                        println!("* #{} {}", t.id, describe(&e.kind));
                    }
                }
            }
            for t in tickets {
                let events = engine.store().ticket_events(t.id).await.unwrap_or_default();
                let before = seen.insert(t.id, events.len());
                if first {
                    continue;
                }
                match before {
                    None => println!("* new ticket: {}", ticket_line(&t)),
                    Some(n) if t.agent.as_deref() == Some(actor.id.as_str()) => {
                        for e in events.iter().skip(n) {
                            if let TicketEventKind::CustomerMessage { text } = &e.kind {
                                println!("* #{} customer: {text}", t.id);
                            }
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        first = false;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactive_lines_parse() {
        assert!(
            matches!(DeskCommand::parse_line("reply #3 hello  there"), Ok(Some(DeskCommand::Reply { ticket: 3, ref text })) if text == &vec!["hello  there".to_string()])
        );
        assert!(matches!(DeskCommand::parse_line("claim 7"), Ok(Some(DeskCommand::Claim { ticket: 7 }))));
        assert!(matches!(DeskCommand::parse_line("  "), Ok(None)));
        assert!(DeskCommand::parse_line("reply 3").is_err());
        assert!(DeskCommand::parse_line("claim x").is_err());
        assert!(DeskCommand::parse_line("dance").is_err());
    }
}
