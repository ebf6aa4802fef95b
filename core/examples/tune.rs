//! Tuning experiments: accuracy of the matcher on the Banking77 development split (stratified
//! 20 %, seed 42) and in 5-fold cross-validation of the whole training file with fold seeds 1 and 2
//! (ten folds in all). Knobs come from environment variables (`L2`, `MARGIN`, `EPOCHS`, `LR`,
//! `CW`, `WW`, `CMIN`, `CMAX`, `FOLDS`); with `WRITE=dir` each fold's training and test rows are
//! written as CSV so that `bench/baselines_cv.py` scores the scikit-learn baselines on the very
//! same folds.
//!
//! `cargo run --release -p switchboard-core --example tune -- ../shared/data/banking77/train.csv`
use switchboard_core::eval::{k_folds, load_csv, predict, select, stratified_split};
use switchboard_core::matcher::{Matcher, TrainConfig};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn acc(tr: &[switchboard_core::matcher::Example], te: &[switchboard_core::matcher::Example], cfg: &TrainConfig) -> f64 {
    let m = Matcher::train_with(tr, cfg);
    let p = predict(&m, te);
    p.iter().filter(|p| p.ranked.first().is_some_and(|s| s.label == p.gold)).count() as f64 / p.len() as f64
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
    let mean = cv.iter().sum::<f64>() / cv.len() as f64;
    println!("dev {:.2}  cv {:.2}  ({:?})", dev * 100.0, mean * 100.0, cv.iter().map(|a| (a * 1000.0).round() / 10.0).collect::<Vec<_>>());
}
