//! How well `switchboard intents suggest` groups unanswered questions (issue 17), on Banking77.
//!
//! Protocol: the stratified 80/20 development split of the Banking77 training file (seed 42, as
//! `switchboard eval --dev-split 0.2`). Intents are put in the out-of-scope experiment's order
//! (`eval::intents_in_holdout_order`, seed 42): the first ten are **held out** (the evaluation),
//! intents 10–39, in three sets of ten, are the **tuning** intents, on which every knob of the
//! grouping and the verdict was chosen (`SWEEP=1` prints the grids). The matcher is trained on the 80 % side without the ten intents of the run; the 20 %
//! side's messages of those ten intents are fed as unanswered messages and grouped; adjusted Rand
//! index, purity and coverage (share of messages in groups of at least `--min-size`, 3) score the
//! groups against the true intents. A second experiment scores the verdicts on what the bot would
//! really not answer among the messages of the ten left-out intents and of ten *thin* intents (kept
//! in training with only five examples each: intents the pack has, short of the words customers
//! use): a group of new-intent messages should be "a new intent", one of a thin intent's messages
//! "new phrasings of" that intent. Thin sets: intents 40–49 with the held-out run, 50–59, 60–69 and
//! 70–76 with the tuning runs.
//!
//! Also: the OKPay pack's own examples, per language, grouped the same way (15 intents; Chinese
//! and English), a check that Chinese groups as well as English.
//!
//! ```sh
//! cargo run --release -p switchboard-core --example suggest_eval -- ../shared/data/banking77/train.csv --write /tmp/suggest
//! python3 bench/suggest_baseline.py /tmp/suggest     # the scikit-learn baseline on the same messages
//! SWEEP=1 cargo run --release -p switchboard-core --example suggest_eval   # the tuning grids (tuning intents only)
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use switchboard_core::eval::{intents_in_holdout_order, load_csv, predict, select, stratified_split, write_csv};
use switchboard_core::matcher::{Decision, Example, Matcher, Thresholds};
use switchboard_core::pack::Pack;
use switchboard_core::suggest::metrics::{Score, score};
use switchboard_core::suggest::{self, ClusterConfig, Found, Known, Settings, Unanswered, VecConfig, Verdict, cluster::key};

fn show(name: &str, s: &Score) {
    println!(
        "  {name:<44} ARI {:.3}  purity {:.3}  coverage {:.3}  ({} groups ≥ min-size, {} messages)",
        s.ari, s.purity, s.coverage, s.groups, s.messages
    );
}

fn grouping(msgs: &[Example], settings: &Settings, matcher: Option<&Matcher>) -> Score {
    let texts: Vec<&str> = msgs.iter().map(|e| e.text.as_str()).collect();
    let labels: Vec<&str> = msgs.iter().map(|e| e.label.as_str()).collect();
    score(&labels, &suggest::assign(&texts, settings, matcher), settings.min_size as usize)
}

/// The matcher trained on `train` without the intents of `left_out`.
fn without(train: &[Example], left_out: &[String]) -> Matcher {
    Matcher::train(&train.iter().filter(|e| !left_out.contains(&e.label)).cloned().collect::<Vec<_>>())
}

/// Mean ARI, purity and coverage over the tuning sets.
fn mean(scores: &[Score]) -> (f64, f64, f64) {
    let n = scores.len().max(1) as f64;
    (
        scores.iter().map(|s| s.ari).sum::<f64>() / n,
        scores.iter().map(|s| s.purity).sum::<f64>() / n,
        scores.iter().map(|s| s.coverage).sum::<f64>() / n,
    )
}

/// Verdict figures of one run: new-intent messages judged "a new intent", thin-intent messages
/// judged "new phrasings" of their own intent, messages in reported groups of each kind, messages
/// of each kind fed.
struct Verdicts {
    new_right: u64,
    new_in_groups: u64,
    new_fed: u64,
    old_right: u64,
    old_in_groups: u64,
    old_fed: u64,
    score: Score,
}

/// Feeds what the bot trained without `left_out` would not answer among `dev`, groups it and
/// judges the groups.
/// Keeps [`THIN_EXAMPLES`] training examples of each `thin` intent: an intent the pack has, short
/// of the words customers use for it.
const THIN_EXAMPLES: usize = 5;

fn verdicts(train: &[Example], dev: &[Example], left_out: &[String], thin: &[String], settings: &Settings) -> Verdicts {
    let is_new = |e: &Example| left_out.contains(&e.label);
    let mut kept: HashMap<&str, usize> = HashMap::new();
    let tr: Vec<Example> = train
        .iter()
        .filter(|e| !is_new(e))
        .filter(|e| {
            let n = kept.entry(e.label.as_str()).or_default();
            *n += 1;
            !thin.contains(&e.label) || *n <= THIN_EXAMPLES
        })
        .cloned()
        .collect();
    let m = Matcher::train(&tr);
    let t = Thresholds::default();
    // What the bot would not answer among the messages of the left-out and the thin intents.
    let fed: Vec<Example> = predict(&m, dev)
        .into_iter()
        .zip(dev)
        .filter(|(_, e)| is_new(e) || thin.contains(&e.label))
        .filter(|(p, _)| !matches!(t.decide(&p.ranked), Decision::Answer(_)))
        .map(|(_, e)| e.clone())
        .collect();
    let mut labels_of: HashMap<String, Vec<&Example>> = HashMap::new();
    let mut found = Found::default();
    for e in &fed {
        let k = key(&e.text);
        let entry = labels_of.entry(k).or_default();
        if entry.is_empty() {
            found.messages.push(Unanswered { text: e.text.clone(), count: 0 });
        }
        entry.push(e);
    }
    for u in &mut found.messages {
        u.count = labels_of[&key(&u.text)].len() as u64;
    }
    let known = Known { matcher: &m, examples: tr.clone(), catch_all: None };
    let (groups, _) = suggest::suggest(&found, &known, settings);
    let mut v = Verdicts {
        new_right: 0,
        new_in_groups: 0,
        new_fed: fed.iter().filter(|e| is_new(e)).count() as u64,
        old_right: 0,
        old_in_groups: 0,
        old_fed: fed.iter().filter(|e| !is_new(e)).count() as u64,
        score: grouping(&fed, settings, Some(&m)),
    };
    for g in &groups {
        for (text, _) in &g.phrasings {
            for e in &labels_of[&key(text)] {
                if is_new(e) {
                    v.new_in_groups += 1;
                    v.new_right += u64::from(g.verdict == Verdict::NewIntent);
                } else {
                    v.old_in_groups += 1;
                    v.old_right += u64::from(g.verdict == Verdict::NewPhrasings(e.label.clone()));
                }
            }
        }
    }
    v
}

fn pct(a: u64, b: u64) -> String {
    if b == 0 { "-".into() } else { format!("{:.1} %", 100.0 * a as f64 / b as f64) }
}

fn show_verdicts(name: &str, v: &Verdicts) {
    println!("  {name}: fed {} new-intent + {} thin-intent unanswered messages", v.new_fed, v.old_fed);
    show("grouping (true label: the intent)", &v.score);
    println!(
        "    \"a new intent\" for new-intent messages in groups: {}/{} = {}",
        v.new_right,
        v.new_in_groups,
        pct(v.new_right, v.new_in_groups)
    );
    println!(
        "    \"new phrasings of <its intent>\" for thin-intent messages in groups: {}/{} = {}",
        v.old_right,
        v.old_in_groups,
        pct(v.old_right, v.old_in_groups)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = PathBuf::from("../shared/data/banking77/train.csv");
    let mut write: Option<PathBuf> = None;
    let mut pack_dir = PathBuf::from("intents/okpay");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--write" => write = args.next().map(PathBuf::from),
            "--pack" => pack_dir = args.next().map(PathBuf::from).unwrap_or(pack_dir),
            _ => path = PathBuf::from(a),
        }
    }
    let all = match load_csv(&path) {
        Ok(all) => all,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (tr, dv) = stratified_split(&all, 0.2, 42);
    let (train, dev) = (select(&all, &tr), select(&all, &dv));
    let order = intents_in_holdout_order(&train, &dev, 42);
    let held: Vec<String> = order[..10].to_vec();
    // Three tuning sets of ten intents each, after the held-out ones.
    let tunes: Vec<Vec<String>> = (1..4).map(|k| order[k * 10..(k + 1) * 10].to_vec()).collect();
    // Thin intents (kept with five training examples), for the verdict experiment: set 0 with the
    // held-out intents, sets 1–3 with the tuning sets.
    let thin_held: Vec<String> = order[40..50].to_vec();
    let thins: Vec<Vec<String>> = (0..3).map(|k| order[50 + k * 10..(60 + k * 10).min(order.len())].to_vec()).collect();
    let of = |set: &[String]| dev.iter().filter(|e| set.contains(&e.label)).cloned().collect::<Vec<Example>>();
    let held_msgs = of(&held);
    let tune_msgs: Vec<Vec<Example>> = tunes.iter().map(|t| of(t)).collect();
    println!("Banking77 {}: {} training / {} development messages (stratified 20 %, seed 42)", path.display(), train.len(), dev.len());
    println!("held-out intents (evaluation, {} messages): {}", held_msgs.len(), held.join(", "));
    for (k, (t, m)) in tunes.iter().zip(&tune_msgs).enumerate() {
        println!("tuning intents, set {} ({} messages): {}", k + 1, m.len(), t.join(", "));
    }
    if let Some(dir) = &write {
        let mut ok = std::fs::create_dir_all(dir).is_ok() && write_csv(&dir.join("heldout.csv"), &held_msgs).is_ok();
        for (k, m) in tune_msgs.iter().enumerate() {
            ok = ok && write_csv(&dir.join(format!("tune{}.csv", k + 1)), m).is_ok();
        }
        if !ok {
            eprintln!("cannot write to {}", dir.display());
            std::process::exit(2);
        }
        println!("wrote heldout.csv, tune1.csv, tune2.csv and tune3.csv to {}", dir.display());
    }
    let settings = Settings::default();
    let held_matcher = without(&train, &held);
    let tune_matchers: Vec<Matcher> = tunes.iter().map(|t| without(&train, t)).collect();

    if std::env::var("SWEEP").is_ok() {
        println!(
            "\n== tuning grid (mean over the three tuning sets): stopwords × pieces weight × intents weight × threshold × shared word"
        );
        for stopwords in [true, false] {
            for cw in [0.5f32, 1.0, 2.0, 3.0] {
                for iw in [0.0f32, 0.3, 0.5] {
                    for th in [0.1f32, 0.12, 0.14, 0.16, 0.2, 0.25, 0.3] {
                        for sw in [0.0f32, 0.5] {
                            let s = Settings {
                                vectors: VecConfig { char_weight: cw, stopwords },
                                cluster: ClusterConfig { threshold: th, shared_word: sw, ..settings.cluster },
                                intent_weight: iw,
                                ..settings
                            };
                            let scores: Vec<Score> =
                                tune_msgs.iter().zip(&tune_matchers).map(|(m, mt)| grouping(m, &s, Some(mt))).collect();
                            let (ari, purity, coverage) = mean(&scores);
                            println!(
                                "  stopwords {stopwords:<5} pieces {cw:.2} intents {iw:.2} threshold {th:.2} shared word {sw:.1}: ARI {ari:.3} purity {purity:.3} coverage {coverage:.3}"
                            );
                        }
                    }
                }
            }
        }
        println!("\n== verdict grid (sum over the three tuning sets): agreement × confidence × example similarity");
        for agree in [0.0f32, 0.3, 0.5, 0.7] {
            for conf in [0.2f32, 0.3, 0.4, 0.5, 2.0] {
                for sim in [0.4f32, 0.5, 0.6, 0.7, 0.8, 2.0] {
                    let s = Settings { phrasing_agreement: agree, phrasing_confidence: conf, phrasing_similarity: sim, ..settings };
                    let vs: Vec<Verdicts> = tunes.iter().zip(&thins).map(|(t, th)| verdicts(&train, &dev, t, th, &s)).collect();
                    let sum = |f: fn(&Verdicts) -> u64| vs.iter().map(f).sum::<u64>();
                    println!(
                        "  agreement {agree:.1} confidence {conf:.1} similarity {sim:.1}: new → new intent {}, thin → own intent {}",
                        pct(sum(|v| v.new_right), sum(|v| v.new_in_groups)),
                        pct(sum(|v| v.old_right), sum(|v| v.old_in_groups))
                    );
                }
            }
        }
    }

    println!(
        "\n== grouping (threshold {}, pieces weight {}, stopwords {}, intents weight {}, min-size {})",
        settings.cluster.threshold, settings.vectors.char_weight, settings.vectors.stopwords, settings.intent_weight, settings.min_size
    );
    show("held-out intents' messages (evaluation)", &grouping(&held_msgs, &settings, Some(&held_matcher)));
    let words_only = Settings { intent_weight: 0.0, ..settings };
    show("  the same, words only (no matcher features)", &grouping(&held_msgs, &words_only, None));
    for (k, (m, mt)) in tune_msgs.iter().zip(&tune_matchers).enumerate() {
        show(&format!("tuning set {}", k + 1), &grouping(m, &settings, Some(mt)));
    }

    println!("\n== verdicts on what the bot would not answer (default matcher thresholds) among the messages of ten");
    println!("   left-out intents and ten thin intents (trained on {THIN_EXAMPLES} examples each)");
    show_verdicts("held-out intents left out, thin set 0 kept thin (evaluation)", &verdicts(&train, &dev, &held, &thin_held, &settings));
    for (k, t) in tunes.iter().enumerate() {
        show_verdicts(
            &format!("tuning set {} left out, thin set {} kept thin", k + 1, k + 1),
            &verdicts(&train, &dev, t, &thins[k], &settings),
        );
    }

    match Pack::load(&pack_dir) {
        Ok(pack) => {
            println!("\n== the {} pack's examples, grouped per language ({} intents)", pack.name, pack.intents.len());
            for lang in switchboard_core::Lang::ALL {
                let msgs: Vec<Example> = pack
                    .intents
                    .iter()
                    .flat_map(|it| {
                        it.text
                            .get(&lang)
                            .into_iter()
                            .flat_map(|t| t.examples.iter().map(|x| Example { text: x.clone(), label: it.id.clone() }))
                    })
                    .collect();
                show(&format!("{lang}, words only"), &grouping(&msgs, &words_only, None));
            }
        }
        Err(e) => println!("\n(no pack at {}: {e})", pack_dir.display()),
    }
}
