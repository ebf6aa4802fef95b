//! `switchboard intents check`, `test` and `explain`: the maintainers' checks on a pack, and what
//! the matcher makes of a message; `suggest` (in `suggest.rs`) groups what it did not answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use switchboard_core::dialogue::{Action, Ctx, DialogueState, Input};
use switchboard_core::matcher::{Decision, Example, Matcher, Thresholds};
use switchboard_core::pack::Pack;
use switchboard_core::script;
use switchboard_core::{Lang, dialogue, eval};

use crate::config::{Config, load_pack};

/// Pack commands.
#[derive(Debug, clap::Subcommand)]
pub enum IntentsCommand {
    /// Validate a pack, and warn about phrasings that, left out of training, would be answered as
    /// another intent or not offered among the "did you mean" choices.
    Check {
        /// The pack folder (default: the configured pack).
        dir: Option<PathBuf>,
    },
    /// Run the pack's conversation scripts (`<pack>/tests/*.toml`).
    Test {
        /// The pack folder (default: the configured pack).
        dir: Option<PathBuf>,
    },
    /// Show how messages are matched (with their secrets masked first, as the bot does): the three
    /// closest intents with their confidence, and what the bot does with the message at the
    /// configured thresholds.
    Explain {
        /// The messages (default: one per line from standard input).
        messages: Vec<String>,
        /// The pack folder (default: the configured pack).
        #[arg(long)]
        pack: Option<PathBuf>,
    },
    /// Group the customer messages the bot did not answer (fell back, "did you mean" left
    /// unresolved, handed off without an intent, answered as `other_question`) and say, for each
    /// group, whether it is new phrasings of an intent or a new intent (`--write DIR` drafts those).
    Suggest(crate::cmd::suggest::SuggestArgs),
}

pub async fn run(config: Config, cmd: IntentsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        IntentsCommand::Check { dir } => {
            let dir = dir.unwrap_or_else(|| config.pack.clone());
            let pack = load_pack(&dir, &config.values)?;
            let mut per_lang: BTreeMap<Lang, usize> = BTreeMap::new();
            for it in &pack.intents {
                for (l, t) in &it.text {
                    *per_lang.entry(*l).or_default() += t.examples.len();
                }
            }
            let langs = per_lang.iter().map(|(l, n)| format!("{l}: {n}")).collect::<Vec<_>>().join(", ");
            println!("{}: {} intents, {} examples ({langs})", dir.display(), pack.intents.len(), pack.examples().len());
            if !pack.redactor.custom().is_empty() {
                println!("[redact]: {} pattern(s) of the pack's own, besides the built-in rules", pack.redactor.custom().len());
            }
            let mut warnings = closer_elsewhere(&pack, 10, config.matching);
            warnings.extend(drafts(&pack));
            for w in &warnings {
                println!("warning: {w}");
            }
            println!("ok{}", if warnings.is_empty() { String::new() } else { format!(", with {} warnings", warnings.len()) });
            Ok(ExitCode::SUCCESS)
        }
        IntentsCommand::Test { dir } => {
            let dir = dir.unwrap_or_else(|| config.pack.clone());
            let pack = load_pack(&dir, &config.values)?;
            let scripts = script::load_scripts(&dir)?;
            let report = script::run(&pack, &scripts, &config.engine()).await;
            for f in &report.failures {
                println!("FAIL {f}");
            }
            println!(
                "{} conversations, {} steps: {} passed, {} failed",
                report.conversations,
                report.steps,
                report.steps.saturating_sub(report.failures.len()),
                report.failures.len()
            );
            Ok(if report.failures.is_empty() && report.conversations > 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        IntentsCommand::Explain { messages, pack } => {
            let pack = load_pack(pack.as_ref().unwrap_or(&config.pack), &config.values)?;
            let messages = if messages.is_empty() {
                std::io::stdin().lines().collect::<Result<Vec<_>, _>>().context("cannot read the messages from standard input")?
            } else {
                messages
            };
            let matcher = Matcher::train(&pack.examples());
            for m in messages.iter().filter(|m| !m.trim().is_empty()) {
                // As the bot reads it: secrets cut out first (and shown masked).
                let red = pack.redactor.redact(m);
                if red.nothing_else {
                    println!("{:?}\n→ only tells the customer their secret was hidden: the message holds nothing else", red.text);
                    continue;
                }
                print!("{}", explain(&pack, &matcher, config.matching, &red.text, &red.bare));
            }
            Ok(ExitCode::SUCCESS)
        }
        IntentsCommand::Suggest(args) => crate::cmd::suggest::run(&config, &args).await,
    }
}

/// Intents whose answer is still the placeholder of a draft from `intents suggest --write`.
fn drafts(pack: &Pack) -> Vec<String> {
    let mut out = Vec::new();
    for it in &pack.intents {
        for (lang, t) in &it.text {
            if switchboard_core::suggest::draft::is_draft_answer(&t.answer) {
                out.push(format!(
                    "{}: intent {} is a draft: its [{lang}] answer is still the placeholder to replace",
                    it.file.display(),
                    it.id
                ));
            }
        }
    }
    out
}

/// The closest intents to `text`, and what the bot does with it as the first message of a
/// conversation: the dialogue's own step, so this never disagrees with the bot. `shown` is the
/// message as printed (its secrets masked; `text` has them cut out, as the matcher reads it).
fn explain(pack: &Pack, matcher: &Matcher, t: Thresholds, shown: &str, text: &str) -> String {
    let lang = dialogue::choose_lang(Some(text), None, Lang::En);
    let label = |id: &str| pack.intent(id).and_then(|it| it.text(lang)).map_or(String::new(), |x| x.label.clone());
    let ranked = matcher.rank(text, 3);
    let mut out = format!("{shown:?}\n");
    for (i, s) in ranked.iter().enumerate() {
        out += &format!("  {}. {:<24} {:.3}  {}\n", i + 1, s.label, s.score, label(&s.label));
    }
    let (top, second) = (ranked.first().map_or(0.0, |s| s.score), ranked.get(1).map_or(0.0, |s| s.score));
    let why = format!(
        "top {top:.2}, lead {:.2}; answer at ≥ {:.2} with a lead ≥ {:.2}, offer at ≥ {:.2}",
        top - second,
        t.answer,
        t.margin,
        t.clarify
    );
    let ctx = Ctx { pack, matcher, thresholds: t };
    let step = dialogue::step(&DialogueState::default(), lang, Input::Text(text), &ctx);
    let intent = step.intent.as_deref().unwrap_or("-");
    let decision = match step.action {
        Action::Handoff if dialogue::is_human_request(text) => "→ hands off: a request for a person, whatever the scores".to_string(),
        Action::Handoff if intent == dialogue::HUMAN_INTENT => format!("→ hands off: a request for a person ({why})"),
        Action::Handoff => format!("→ answers {intent} and hands off to a person ({why})"),
        Action::Collect => format!("→ answers {intent} and asks for its details before handing off ({why})"),
        Action::Answer => format!("→ answers {intent} ({why})"),
        Action::Clarify => {
            let offered: Vec<&str> =
                step.replies.iter().flat_map(|r| &r.choices).filter_map(|c| c.payload.strip_prefix(dialogue::PAYLOAD_INTENT)).collect();
            format!("→ asks \"did you mean\": {} ({why})", offered.join(", "))
        }
        Action::Fallback => format!("→ falls back, asking to rephrase ({why})"),
        other => format!("→ {} ({why})", other.as_str()),
    };
    out + &decision + "\n"
}

/// Each example is scored by a matcher trained without its fold (chosen by a hash of its text, so
/// that an edit elsewhere does not move it to another fold). Those that rank another intent
/// first are reported with `file`, intent and the intent they look like, when the bot would get a
/// message like them wrong: answer it as the other intent, or ask "did you mean" without offering
/// their own. A near tie whose choices include the right intent is left out: it is noise from one
/// training run to the next, and the customer is offered the right answer anyway.
fn closer_elsewhere(pack: &Pack, folds: usize, thresholds: Thresholds) -> Vec<String> {
    let examples: Vec<(Example, PathBuf)> = pack
        .intents
        .iter()
        .flat_map(|it| {
            it.text.values().flat_map(|t| t.examples.iter().map(|e| (Example { text: e.clone(), label: it.id.clone() }, it.file.clone())))
        })
        .collect();
    let fold: Vec<usize> = examples.iter().map(|(e, _)| eval::fold_of(&e.text, folds)).collect();
    let mut out = Vec::new();
    for k in 0..folds {
        let train: Vec<Example> = examples.iter().zip(&fold).filter(|&(_, &f)| f != k).map(|((e, _), _)| e.clone()).collect();
        let m = Matcher::train(&train);
        for (e, file) in examples.iter().zip(&fold).filter(|&(_, &f)| f == k).map(|(x, _)| x) {
            let ranked = m.rank(&e.text, 3);
            let Some(top) = ranked.first().filter(|top| top.label != e.label) else { continue };
            let outcome = match thresholds.decide(&ranked) {
                Decision::Answer(_) => "a message like it would be answered as that",
                Decision::Clarify(ids) if !ids.contains(&e.label) => "its own intent would not be among the choices offered",
                _ => continue,
            };
            let own = m.rank(&e.text, m.labels().len()).into_iter().find(|s| s.label == e.label).map_or(0.0, |s| s.score);
            out.push(format!(
                "{}: {:?} (intent {}) sits closer to {} ({:.2}) than to its own intent ({:.2}): {outcome}",
                file.display(),
                e.text,
                e.label,
                top.label,
                top.score,
                own
            ));
        }
    }
    out
}
