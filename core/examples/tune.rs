//! Tuning experiments: accuracy and balanced accuracy (mean per-intent recall) of the matcher on
//! the Banking77 development split (stratified 20 %, seed 42) and in 5-fold cross-validation of the
//! whole training file with fold seeds 1 and 2 (ten folds in all). Knobs come from environment
//! variables (`L2`, `MARGIN`, `EPOCHS`, `LR`, `NB` (naive Bayes weight), `NBA` (its smoothing),
//! `NBP` (0: no priors), `CW`, `WW`, `CMIN`, `CMAX`, `FOLDS`); with `WRITE=dir` each fold's
//! training and test rows are written as CSV so that `bench/baselines_cv.py` scores the
//! scikit-learn baselines on the very same folds.
//!
//! `cargo run --release -p switchboard-core --example tune -- ../shared/data/banking77/train.csv`
use switchboard_core::eval::{k_folds, load_csv, metrics, predict, select, stratified_split};
use switchboard_core::matcher::{Matcher, Thresholds, TrainConfig};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Accuracy and balanced accuracy (mean per-intent recall: the accuracy expected on a test set
/// with equally many messages per intent), from `eval::metrics`.
fn acc(tr: &[switchboard_core::matcher::Example], te: &[switchboard_core::matcher::Example], cfg: &TrainConfig) -> (f64, f64) {
    let m = metrics(&predict(&Matcher::train_with(tr, cfg), te), Thresholds::default());
    let recalls: Vec<f64> = m.per_intent.iter().filter(|i| i.support > 0).map(|i| i.recall).collect();
    (m.accuracy, recalls.iter().sum::<f64>() / recalls.len().max(1) as f64)
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or("../shared/data/banking77/train.csv".into());
    let all = match load_csv(path.as_ref()) {
        Ok(all) => all,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut cfg = TrainConfig::default();
    cfg.feat.char_weight = env("CW", cfg.feat.char_weight);
    cfg.feat.word_weight = env("WW", cfg.feat.word_weight);
    cfg.feat.char_min = env("CMIN", cfg.feat.char_min);
    cfg.feat.char_max = env("CMAX", cfg.feat.char_max);
    cfg.model.l2 = env("L2", cfg.model.l2);
    cfg.model.margin = env("MARGIN", cfg.model.margin);
    cfg.model.epochs = env("EPOCHS", cfg.model.epochs);
    cfg.model.lr = env("LR", cfg.model.lr);
    cfg.model.nb_weight = env("NB", cfg.model.nb_weight);
    cfg.model.nb_alpha = env("NBA", cfg.model.nb_alpha);
    cfg.model.nb_prior = env("NBP", 1u8) == 1;
    let (tr, dv) = stratified_split(&all, 0.2, 42);
    let dev = acc(&select(&all, &tr), &select(&all, &dv), &cfg);
    let folds = env("FOLDS", 5usize);
    let mut cv = Vec::new();
    for seed in [1u64, 2] {
        let fs = k_folds(&all, folds, seed);
        for (i, f) in fs.iter().enumerate() {
            let rest: Vec<usize> = fs.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, g)| g.iter().copied()).collect();
            if let Ok(dir) = std::env::var("WRITE") {
                for (side, rows) in [("train", &rest), ("test", f)] {
                    if let Err(e) = switchboard_core::eval::write_csv(format!("{dir}/s{seed}f{i}_{side}.csv").as_ref(), &select(&all, rows))
                    {
                        eprintln!("{e}");
                        std::process::exit(2);
                    }
                }
            }
            cv.push(acc(&select(&all, &rest), &select(&all, f), &cfg));
        }
    }
    let mean = |f: fn(&(f64, f64)) -> f64| cv.iter().map(f).sum::<f64>() / cv.len().max(1) as f64 * 100.0;
    println!(
        "dev {:.2} (balanced {:.2})  cv {:.2} (balanced {:.2})  ({:?})",
        dev.0 * 100.0,
        dev.1 * 100.0,
        mean(|a| a.0),
        mean(|a| a.1),
        cv.iter().map(|a| (a.0 * 1000.0).round() / 10.0).collect::<Vec<_>>()
    );
}
