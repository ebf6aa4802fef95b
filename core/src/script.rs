//! Conversation scripts ("customer says → bot does") kept beside a pack in `tests/*.toml`, and
//! the runner behind `switchboard intents test`: each conversation runs against a fresh in-memory
//! engine and every step's checks are compared with what the bot actually did.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::channel::Recorder;
use crate::engine::{Brain, Engine, EngineConfig};
use crate::pack::Pack;
use crate::store::MemoryStore;
use crate::types::{Content, Inbound, Reply};
use crate::{Lang, PackError};

/// A file of conversations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptFile {
    /// The conversations.
    #[serde(default)]
    pub conversation: Vec<Conversation>,
}

/// One scripted conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    /// What it checks.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<ScriptStep>,
}

/// One customer turn and what the bot must do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// What the customer types.
    pub user: Option<String>,
    /// Press this quick-reply choice (1-based) of the bot's previous replies instead of typing.
    pub press: Option<usize>,
    /// The intent the bot answers or hands off for.
    pub intent: Option<String>,
    /// What the bot does (`answer`, `clarify`, `fallback`, `collect`, `handoff`, `silent`).
    pub action: Option<String>,
    /// The replies' language.
    pub lang: Option<String>,
    /// Text the replies must contain.
    pub contains: Option<String>,
}

/// One failed check.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The script file.
    pub file: PathBuf,
    /// The conversation.
    pub conversation: String,
    /// 1-based step.
    pub step: usize,
    /// What differed.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: \"{}\" step {}: {}", self.file.display(), self.conversation, self.step, self.message)
    }
}

/// The result of running a pack's scripts.
#[derive(Debug, Default)]
pub struct Report {
    /// Conversations run.
    pub conversations: usize,
    /// Steps run.
    pub steps: usize,
    /// Failed checks.
    pub failures: Vec<Failure>,
}

/// Loads every `tests/*.toml` of the pack in `dir`.
pub fn load_scripts(dir: &Path) -> Result<Vec<(PathBuf, ScriptFile)>, PackError> {
    let tests = dir.join("tests");
    let io = |path: &Path, source| PackError::Io { path: path.display().to_string(), source };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&tests) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&tests, e)),
    };
    files.sort();
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).map_err(|e| io(&f, e))?;
        match toml::from_str::<ScriptFile>(&src) {
            Ok(s) => out.push((f, s)),
            Err(e) => {
                let line = e.span().map_or(0, |s| src[..s.start.min(src.len())].matches('\n').count() + 1);
                issues.push(crate::error::PackIssue { file: f.display().to_string(), line, message: e.message().to_string() });
            }
        }
    }
    if issues.is_empty() { Ok(out) } else { Err(PackError::Invalid(issues)) }
}

/// Runs every conversation of `scripts` against `pack`, each in a fresh in-memory engine.
pub async fn run(pack: &Pack, scripts: &[(PathBuf, ScriptFile)], config: &EngineConfig) -> Report {
    let brain = Arc::new(Brain::new(pack.clone()));
    let mut report = Report::default();
    for (file, script) in scripts {
        for conv in &script.conversation {
            report.conversations += 1;
            let store = Arc::new(MemoryStore::new());
            let engine = Engine::with_brain(store, brain.clone(), config.clone());
            let rec = Arc::new(Recorder::new("script"));
            engine.add_channel(rec.clone());
            let mut last: Vec<Reply> = Vec::new();
            for (i, step) in conv.steps.iter().enumerate() {
                report.steps += 1;
                let fail = |message: String| Failure { file: file.clone(), conversation: conv.name.clone(), step: i + 1, message };
                let content = match (&step.user, step.press) {
                    (Some(u), None) => Content::Text(u.clone()),
                    (None, Some(n)) => match last.iter().flat_map(|r| r.choices.iter()).nth(n.wrapping_sub(1)) {
                        Some(c) => Content::Choice(c.payload.clone()),
                        None => {
                            report.failures.push(fail(format!("there is no choice {n} to press")));
                            break;
                        }
                    },
                    _ => {
                        report.failures.push(fail("a step needs exactly one of `user` or `press`".into()));
                        break;
                    }
                };
                let inbound = Inbound {
                    channel: "script".into(),
                    conversation: "c".into(),
                    customer_id: "customer".into(),
                    customer_name: "Script".into(),
                    content,
                    message_id: format!("m{i}"),
                    at: 0,
                    lang_hint: None,
                    deleted: None,
                };
                let handled = match engine.handle(inbound).await {
                    Ok(h) => h,
                    Err(e) => {
                        report.failures.push(fail(format!("the engine failed: {e}")));
                        break;
                    }
                };
                let said: String = handled.replies.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n");
                if let Some(want) = &step.action
                    && want != handled.action.as_str()
                {
                    report.failures.push(fail(format!(
                        "expected action {want}, got {} (bot said: {})",
                        handled.action.as_str(),
                        short(&said)
                    )));
                }
                if let Some(want) = &step.intent
                    && handled.intent.as_deref() != Some(want.as_str())
                {
                    report.failures.push(fail(format!(
                        "expected intent {want}, got {} ({}; bot said: {})",
                        handled.intent.as_deref().unwrap_or("none"),
                        handled.action.as_str(),
                        short(&said)
                    )));
                }
                if let Some(want) = &step.lang
                    && Lang::parse(want) != Some(handled.lang)
                {
                    report.failures.push(fail(format!("expected language {want}, got {}", handled.lang)));
                }
                if let Some(want) = &step.contains
                    && !said.contains(want.as_str())
                {
                    report.failures.push(fail(format!("expected the reply to contain {want:?}, bot said: {}", short(&said))));
                }
                last = handled.replies;
            }
        }
    }
    report
}

fn short(s: &str) -> String {
    crate::channel::one_line(s, 120)
}
