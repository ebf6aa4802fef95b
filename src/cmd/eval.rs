//! `switchboard eval`: trains the matcher on one set and scores it on another (a test set, a
//! development split of the training set, or k-fold cross-validation), optionally with typos and
//! the out-of-scope experiment, and prints the report as text or JSON.
//!
//! The metrics, splits and report live in `switchboard_core::eval`; this file only parses the
//! options, loads the data (an intents directory through the pack loader, or a `text,category`
//! CSV) and prints.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use switchboard_core::eval::{self, Report};
use switchboard_core::matcher::{Example, Thresholds};
use switchboard_core::pack::Pack;

/// Options of `switchboard eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Training data: an intents directory or a CSV with `text,category` columns.
    #[arg(long, value_name = "DIR|CSV")]
    pub train: PathBuf,
    /// Test data (intents directory or CSV). Without it, use --dev-split or --folds.
    #[arg(long, value_name = "DIR|CSV", conflicts_with_all = ["folds", "dev_split"])]
    pub test: Option<PathBuf>,
    /// K-fold cross-validation on the training data.
    #[arg(long, value_name = "K", conflicts_with = "dev_split")]
    pub folds: Option<usize>,
    /// Hold out this fraction of the training data (stratified, seeded) as the test set.
    #[arg(long, value_name = "F")]
    pub dev_split: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also score the test messages after the seeded typo generator (a quarter of the words of
    /// four letters or more get one edit) and report the drop.
    #[arg(long)]
    pub typos: bool,
    /// Out-of-scope experiment: train without N intents and report how their messages are handled
    /// at the answer threshold that keeps answered in-scope accuracy at --oos-target.
    #[arg(long, value_name = "N")]
    pub holdout_intents: Option<usize>,
    /// Required accuracy of answered in-scope messages in the out-of-scope experiment.
    #[arg(long, default_value_t = 0.97, value_name = "ACC")]
    pub oos_target: f64,
    /// Seed of the split, the folds, the typos and the held-out intents.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the split used (train.csv, dev.csv, dev_typos.csv) into this directory, e.g. for
    /// bench/baselines.py.
    #[arg(long, value_name = "DIR")]
    pub write_split: Option<PathBuf>,
}

/// Loads an intents directory (through the pack loader) or a CSV.
fn load(path: &Path) -> anyhow::Result<Vec<Example>> {
    let examples = if path.is_dir() {
        Pack::load(path).with_context(|| format!("loading the intents in {}", path.display()))?.examples()
    } else {
        eval::load_csv(path)?
    };
    if examples.is_empty() {
        bail!("{} has no examples", path.display());
    }
    Ok(examples)
}

/// Runs `switchboard eval`.
pub fn run(args: &EvalArgs, thresholds: Thresholds) -> anyhow::Result<()> {
    let data = load(&args.train)?;
    let seed = args.seed;
    // (protocol, train, test) runs; several for cross-validation.
    let mut runs: Vec<(Vec<Example>, Vec<Example>)> = Vec::new();
    let protocol;
    if let Some(test) = &args.test {
        protocol = format!("train {} / test {}", args.train.display(), test.display());
        runs.push((data.clone(), load(test)?));
    } else if let Some(k) = args.folds {
        if k < 2 || k > data.len() {
            bail!("--folds needs 2 ≤ K ≤ {} (the number of examples)", data.len());
        }
        protocol = format!("{k}-fold cross-validation of {} (seed {seed})", args.train.display());
        let folds = eval::k_folds(&data, k, seed);
        for (i, fold) in folds.iter().enumerate() {
            let train_idx: Vec<usize> = folds.iter().enumerate().filter(|&(j, _)| j != i).flat_map(|(_, f)| f.iter().copied()).collect();
            runs.push((eval::select(&data, &train_idx), eval::select(&data, fold)));
        }
    } else if let Some(f) = args.dev_split {
        if !(f > 0.0 && f < 1.0) {
            bail!("--dev-split needs a fraction between 0 and 1");
        }
        protocol = format!("stratified dev split {f} of {} (seed {seed})", args.train.display());
        let (tr, dev) = eval::stratified_split(&data, f, seed);
        runs.push((eval::select(&data, &tr), eval::select(&data, &dev)));
    } else {
        bail!("say what to score: --test <DIR|CSV>, --dev-split <F> or --folds <K>");
    }

    if let Some(n) = args.holdout_intents {
        let mut intents: Vec<&str> = runs[0].0.iter().chain(&runs[0].1).map(|e| e.label.as_str()).collect();
        intents.sort_unstable();
        intents.dedup();
        if n == 0 || n >= intents.len() {
            bail!("--holdout-intents needs 1 ≤ N ≤ {} (one fewer than the {} intents)", intents.len().saturating_sub(1), intents.len());
        }
        if !(args.oos_target > 0.0 && args.oos_target <= 1.0) {
            bail!("--oos-target needs an accuracy between 0 and 1, such as 0.97");
        }
    }

    if let Some(dir) = &args.write_split {
        let (train, test) = &runs[0];
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        eval::write_csv(&dir.join("train.csv"), train)?;
        eval::write_csv(&dir.join("dev.csv"), test)?;
        eval::write_csv(&dir.join("dev_typos.csv"), &eval::typo_set(test, seed))?;
        eprintln!("wrote train.csv, dev.csv and dev_typos.csv to {}", dir.display());
    }

    let (mut clean, mut typos) = (Vec::new(), Vec::new());
    let (mut train_ms, mut us, mut bytes, mut intents, mut train_n) = (0.0, 0.0, 0, 0, 0);
    for (train, test) in &runs {
        let r = eval::train_and_predict(train, test, args.typos, seed);
        train_ms += r.train_ms;
        us += r.us_per_message;
        bytes = bytes.max(r.model_bytes);
        intents = intents.max(r.intents);
        train_n = train_n.max(train.len());
        clean.extend(r.clean);
        typos.extend(r.typos.unwrap_or_default());
    }
    let n_runs = runs.len() as f64;
    let clean_m = eval::metrics(&clean, thresholds);
    let typos_m = args.typos.then(|| eval::metrics(&typos, thresholds));
    let drop = typos_m.as_ref().map(|t| (clean_m.accuracy - t.accuracy) * 100.0);
    let oos = match args.holdout_intents {
        Some(n) => {
            let (train, test) = &runs[0];
            Some(eval::out_of_scope(train, test, n, seed, thresholds, args.oos_target)?)
        }
        None => None,
    };
    let report = Report {
        protocol,
        train_examples: train_n,
        intents,
        train_ms: train_ms / n_runs,
        us_per_message: us / n_runs,
        model_bytes: bytes,
        clean: clean_m,
        typos: typos_m,
        typo_drop_points: drop,
        out_of_scope: oos,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", eval::render(&report));
    }
    Ok(())
}
