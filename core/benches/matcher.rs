//! Criterion benchmarks of the intent matcher (issue 3's speed targets): ranking one message on
//! the Banking77 model, training on Banking77 from cold (CSV load included), and ranking one
//! message on a synthetic pack ten times larger (100k examples, 1,000 intents). Model memory is
//! printed once per model.
//!
//! The data is `../shared/data/banking77/train.csv` beside the repository, or the CSV named by
//! `SWITCHBOARD_BANKING77`. Run with `cargo bench -p switchboard-core --bench matcher`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_core::eval;
use switchboard_core::matcher::{Example, Matcher};

fn banking77_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SWITCHBOARD_BANKING77") {
        return Some(PathBuf::from(p));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("../../shared/data/banking77/train.csv"),
        root.join("../shared/data/banking77/train.csv"),
        PathBuf::from("/work/shared/data/banking77/train.csv"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn banking77() -> Option<Vec<Example>> {
    let path = banking77_path()?;
    match eval::load_csv(&path) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipping matcher benchmarks: {e}");
            None
        }
    }
}

/// Ranks the messages one at a time, cycling through them.
fn bench_rank(c: &mut Criterion, name: &str, m: &Matcher, messages: &[Example]) {
    let mut i = 0usize;
    c.bench_function(name, |b| {
        b.iter(|| {
            let e = &messages[i % messages.len()];
            i += 1;
            black_box(m.rank(black_box(&e.text), 3))
        })
    });
}

fn benches(c: &mut Criterion) {
    let Some(data) = banking77() else {
        eprintln!("skipping matcher benchmarks: Banking77 train.csv not found (set SWITCHBOARD_BANKING77)");
        return;
    };
    // Banking77: the model of the development split (as `switchboard eval --dev-split 0.2`).
    let (tr, dev) = eval::stratified_split(&data, 0.2, 42);
    let (train, test) = (eval::select(&data, &tr), eval::select(&data, &dev));
    let m = Matcher::train(&train);
    eprintln!("banking77 model: {m:?}, ≈ {:.1} MiB", m.memory_bytes() as f64 / 1048576.0);
    bench_rank(c, "rank/banking77", &m, &test);
    let typos = eval::typo_set(&test, 42);
    bench_rank(c, "rank/banking77_typos", &m, &typos);

    if let Some(path) = banking77_path() {
        c.bench_function("train/banking77_10k_from_csv", |b| {
            b.iter(|| {
                let d = eval::load_csv(&path).unwrap_or_default();
                black_box(Matcher::train(&d))
            })
        });
    }

    // Synthetic pack ten times larger: 100k examples, 1,000 intents, messages held out.
    // 102 messages per intent: 100 to train on, 2 held out to rank.
    let all = eval::synthetic_pack(&data, 1000, 102, 7);
    let mut pack: Vec<Example> = Vec::with_capacity(100_000);
    let mut held: Vec<Example> = Vec::with_capacity(2_000);
    for (i, e) in all.into_iter().enumerate() {
        if i % 102 < 100 { pack.push(e) } else { held.push(e) }
    }
    let t = std::time::Instant::now();
    let big = Matcher::train(&pack);
    eprintln!(
        "synthetic model: {big:?}, ≈ {:.1} MiB, trained in {:.1} s",
        big.memory_bytes() as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    bench_rank(c, "rank/synthetic_100k_1000", &big, &held);
}

criterion_group! {
    name = matcher;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(matcher);
