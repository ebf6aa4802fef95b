//! `switchboard intents suggest [--since 30d] [--min-size 3] [--json] [--write DIR]`: the
//! customer messages the bot did not answer over a period, read from the configured store as a
//! stream, grouped (Chinese and English alike), each group with its closest phrasings, the pack's
//! nearest intent and a verdict: new phrasings of that intent, or a new intent, of which `--write`
//! drafts the file. The work is in `switchboard_core::suggest`; this file parses, prints, writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use switchboard_core::matcher::Matcher;
use switchboard_core::pack::Pack;
use switchboard_core::suggest::{self, Known, Settings, Verdict, draft};
use switchboard_core::types::now_ms;

use crate::config::{Config, load_pack};

/// `intents suggest`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SuggestArgs {
    /// The period to read, back from now: `30d`, `12h`, `2w`.
    #[arg(long, default_value = "30d", value_name = "PERIOD", value_parser = crate::cmd::period::period)]
    pub since: Duration,
    /// The smallest group shown, in messages; smaller groups are left out as noise.
    #[arg(long, default_value = "3", value_name = "N", value_parser = min_size)]
    pub min_size: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write a draft intent file (`<id>.toml`, the pack's format, a placeholder answer to replace)
    /// for each group judged a new intent into this folder, with a copy of the pack's `pack.toml`
    /// if it has none, so that `switchboard intents check DIR` reads it. Not the pack the bot
    /// runs: it would answer with the placeholders.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
    /// The pack folder (default: the configured pack).
    #[arg(long, value_name = "DIR")]
    pub pack: Option<PathBuf>,
}

/// Reads `--min-size`: at least 1.
fn min_size(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("a group holds at least 1 message; give 1 or more (3 by default)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number; give 1 or more (3 by default)".into()),
    }
}

/// Whether two paths name the same folder (as far as the file system can tell).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub async fn run(config: &Config, args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    let now = now_ms();
    let start = match crate::cmd::period::start(args.since, now) {
        Ok(start) => start,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let pack_dir = args.pack.clone().unwrap_or_else(|| config.pack.clone());
    if let Some(dir) = &args.write
        && (same_dir(dir, &config.pack) || same_dir(dir, &pack_dir))
    {
        eprintln!(
            "error: --write {} is the pack itself: a running bot would load the drafts and answer with their placeholders; \
             write them to another folder, fill them in, then move them into the pack",
            dir.display()
        );
        return Ok(ExitCode::from(2));
    }
    let pack = load_pack(&pack_dir, &config.values)?;
    let matcher = Matcher::train(&pack.examples());
    let known = Known::from_pack(&pack, &matcher);
    let settings = Settings { min_size: args.min_size, ..Settings::default() };
    let store = config.open_store().await?;
    let found = suggest::from_store(&*store, start, now + 1, &known, &settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{found}");
    }
    if let Some(dir) = &args.write {
        let notes = write_drafts(dir, &pack_dir, &pack, &found.groups)?;
        for line in notes {
            // With --json, standard output stays one JSON document.
            if args.json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a draft for each group judged a new intent into `dir` (and `pack.toml`, copied from
/// `pack_dir`, if `dir` has none); returns what to tell the maintainer.
fn write_drafts(dir: &Path, pack_dir: &Path, pack: &Pack, groups: &[suggest::Group]) -> anyhow::Result<Vec<String>> {
    let new: Vec<(usize, &suggest::Group)> = groups.iter().enumerate().filter(|(_, g)| g.verdict == Verdict::NewIntent).collect();
    if new.is_empty() {
        return Ok(vec![format!("no group was judged a new intent: nothing written to {}", dir.display())]);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut notes = Vec::new();
    let pack_toml = dir.join("pack.toml");
    // Drafts already in the folder (an earlier run's) keep their phrasings: a pack refuses a
    // phrasing listed under two intents.
    let existing = if pack_toml.exists() { Pack::load(dir).ok() } else { None };
    if !pack_toml.exists() {
        std::fs::copy(pack_dir.join("pack.toml"), &pack_toml)
            .with_context(|| format!("cannot copy {} to {}", pack_dir.join("pack.toml").display(), pack_toml.display()))?;
        notes.push(format!("copied {} to {}", pack_dir.join("pack.toml").display(), pack_toml.display()));
    }
    let taken = suggest::taken_phrasings(std::iter::once(pack).chain(existing.as_ref()));
    let mut written = Vec::new();
    for (i, g) in new {
        let id = draft::draft_id(g, i + 1, |id| pack.intent(id).is_some() || dir.join(format!("{id}.toml")).exists());
        match draft::draft(g, &id, &pack.languages, &taken) {
            Some(text) => {
                let file = dir.join(format!("{id}.toml"));
                std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
                written.push(format!("{id}.toml"));
            }
            None => notes.push(format!(
                "group {}: every phrasing is an example already (of the pack, or of a draft in the folder); no draft",
                i + 1
            )),
        }
    }
    if written.is_empty() {
        return Ok(notes);
    }
    notes.push(format!(
        "wrote {} draft intent{} to {}: {}",
        written.len(),
        if written.len() == 1 { "" } else { "s" },
        dir.display(),
        written.join(", ")
    ));
    notes.push(format!(
        "replace their placeholder answers, then run `switchboard intents check {}` and move them into the pack",
        dir.display()
    ));
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_size_is_read_or_refused() {
        assert_eq!(min_size("3"), Ok(3));
        assert!(min_size("0").unwrap_err().contains("at least 1"));
        assert!(min_size("-1").unwrap_err().contains("whole number"));
    }
}
