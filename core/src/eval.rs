//! Evaluation of the intent matcher: CSV loading, deterministic stratified splits and k-folds, a
//! seeded typo generator, metrics (accuracy, macro-F1, per-intent precision/recall/F1,
//! confusions, how [`Thresholds`] split messages into answered / clarified / fallback), the
//! out-of-scope experiment, and report structs that serialise to JSON and render as text.
//!
//! Everything here is pure and deterministic for a given seed: the only I/O is reading the CSV
//! file a caller names ([`load_csv`]) and writing split CSVs ([`write_csv`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::matcher::lang::{self, Lang};
use crate::matcher::{Decision, Example, Matcher, Scored, Thresholds};

/// Errors from loading or writing evaluation data.
#[derive(Debug)]
pub enum EvalError {
    /// The file could not be read or written.
    Io(String),
    /// The CSV is malformed or lacks the text/label columns.
    Csv(String),
    /// An experiment was asked for with arguments it cannot run with.
    Invalid(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Io(m) => write!(f, "i/o error: {m}"),
            EvalError::Csv(m) => write!(f, "bad CSV: {m}"),
            EvalError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EvalError {}

/// Column names accepted for the message text and the label.
const TEXT_COLUMNS: [&str; 3] = ["text", "message", "utterance"];
const LABEL_COLUMNS: [&str; 4] = ["category", "label", "intent", "labels"];

/// Reads a CSV with a header naming a text column (`text`, `message`, `utterance`) and a label
/// column (`category`, `label`, `intent`). Rows with an empty text or label are skipped.
pub fn load_csv(path: &Path) -> Result<Vec<Example>, EvalError> {
    let mut rdr =
        csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| EvalError::Io(format!("{}: {e}", path.display())))?;
    let headers = rdr.headers().map_err(|e| EvalError::Csv(e.to_string()))?.clone();
    let find = |names: &[&str]| headers.iter().position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)));
    let (Some(ti), Some(li)) = (find(&TEXT_COLUMNS), find(&LABEL_COLUMNS)) else {
        return Err(EvalError::Csv(format!(
            "{}: header needs a text column ({}) and a label column ({})",
            path.display(),
            TEXT_COLUMNS.join("/"),
            LABEL_COLUMNS.join("/")
        )));
    };
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| EvalError::Csv(format!("{}: {e}", path.display())))?;
        let (t, l) = (rec.get(ti).unwrap_or("").trim(), rec.get(li).unwrap_or("").trim());
        // A row without its text or label is a broken file (an unclosed quote swallows the rows
        // after it into one field): say where, rather than score on fewer rows than it has.
        if t.is_empty() || l.is_empty() {
            let line = rec.position().map_or(0, |p| p.line());
            let what = if t.is_empty() { "text" } else { "label" };
            return Err(EvalError::Csv(format!("{}: line {line}: the row has no {what}", path.display())));
        }
        out.push(Example { text: t.to_string(), label: l.to_string() });
    }
    Ok(out)
}

/// Writes examples as a `text,category` CSV.
pub fn write_csv(path: &Path, examples: &[Example]) -> Result<(), EvalError> {
    let io = |e: csv::Error| EvalError::Io(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    w.write_record(["text", "category"]).map_err(io)?;
    for e in examples {
        w.write_record([e.text.as_str(), e.label.as_str()]).map_err(io)?;
    }
    w.flush().map_err(|e| EvalError::Io(format!("{}: {e}", path.display())))
}

/// The fold (of `folds`, at least 1) that `text` falls in, by a hash of the text alone: an
/// example keeps its fold when others are added, removed or reordered, so a check run by folds
/// (`intents check`) does not move its findings with every unrelated edit.
pub fn fold_of(text: &str, folds: usize) -> usize {
    let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    Rng::new(seed).below(folds.max(1))
}

/// SplitMix64: a small, fast, seedable generator, so splits are reproducible everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Indices of the examples grouped by label, labels in first-seen order.
fn by_label(examples: &[Example]) -> Vec<Vec<usize>> {
    let mut order: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        let g = *order.entry(e.label.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// A deterministic stratified split: for every label (in first-seen order) its example indices
/// are shuffled with a generator seeded by `seed`, and `round(n * dev_fraction)` of them (at least
/// one when the label has two or more examples, never all) go to the development side. Returns
/// `(train, dev)` index lists, each in ascending order.
pub fn stratified_split(examples: &[Example], dev_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let frac = if dev_fraction.is_finite() { dev_fraction.clamp(0.0, 1.0) } else { 0.0 };
    let mut rng = Rng::new(seed);
    let (mut train, mut dev) = (Vec::new(), Vec::new());
    for mut g in by_label(examples) {
        rng.shuffle(&mut g);
        let n = g.len();
        let mut d = (n as f64 * frac).round() as usize;
        if n >= 2 && frac > 0.0 {
            d = d.clamp(1, n - 1);
        } else if n < 2 {
            d = 0;
        }
        dev.extend_from_slice(&g[..d]);
        train.extend_from_slice(&g[d..]);
    }
    train.sort_unstable();
    dev.sort_unstable();
    (train, dev)
}

/// Deterministic stratified k-fold assignment: every label's shuffled examples are dealt round
/// robin to the folds (continuing where the previous label stopped). Returns each fold's indices,
/// ascending. `k` is clamped to at least 2.
pub fn k_folds(examples: &[Example], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let k = k.max(2);
    let mut rng = Rng::new(seed);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0usize;
    for mut g in by_label(examples) {
        rng.shuffle(&mut g);
        for i in g {
            folds[next % k].push(i);
            next += 1;
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    folds
}

/// Picks the examples at `idx`.
pub fn select(examples: &[Example], idx: &[usize]) -> Vec<Example> {
    idx.iter().filter_map(|&i| examples.get(i).cloned()).collect()
}

/// QWERTY neighbours of each lower-case letter.
fn neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "ryfg",
        'y' => "tugh",
        'u' => "yihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "ol",
        'a' => "qwsz",
        's' => "weadzx",
        'd' => "erfsxc",
        'f' => "rtdgcv",
        'g' => "tyfhvb",
        'h' => "yugjbn",
        'j' => "uihknm",
        'k' => "iojlm",
        'l' => "opk",
        'z' => "asx",
        'x' => "zsdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        _ => "",
    }
}

/// One random edit of a word: swap two neighbours, drop a letter, double a letter, or replace a
/// letter by a QWERTY neighbour.
fn edit_word(w: &[char], rng: &mut Rng) -> Vec<char> {
    let mut out = w.to_vec();
    let n = w.len();
    if n < 2 {
        return out;
    }
    match rng.below(4) {
        0 => {
            let i = rng.below(n - 1);
            out.swap(i, i + 1);
        }
        1 => {
            out.remove(rng.below(n));
        }
        2 => {
            let i = rng.below(n);
            out.insert(i, w[i]);
        }
        _ => {
            let i = rng.below(n);
            let lower = w[i].to_ascii_lowercase();
            let nb: Vec<char> = neighbours(lower).chars().collect();
            if let Some(&r) = nb.get(rng.below(nb.len())) {
                out[i] = if w[i].is_ascii_uppercase() { r.to_ascii_uppercase() } else { r };
            }
        }
    }
    out
}

/// Adds typos to a message: every run of four or more ASCII letters gets, with probability
/// `rate`, one random edit (swap, drop, double or keyboard neighbour). Deterministic for a given `seed`.
pub fn add_typos(text: &str, rate: f64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            let word = &chars[i..j];
            if word.len() >= 4 && rng.unit() < rate {
                out.extend(edit_word(word, &mut rng));
            } else {
                out.extend(word);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The typo'd copy of a test set used by `--typos`: a quarter of the words of four letters or
/// more get one edit, seeded per message.
pub fn typo_set(examples: &[Example], seed: u64) -> Vec<Example> {
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| Example {
            text: add_typos(&e.text, 0.25, seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            label: e.label.clone(),
        })
        .collect()
}

/// A made-up word of two or three syllables, for synthetic intents.
fn pseudo_word(rng: &mut Rng) -> String {
    const ONSETS: [&str; 16] = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st"];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ou"];
    let syllables = 2 + rng.below(2);
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS[rng.below(ONSETS.len())]);
        w.push_str(VOWELS[rng.below(VOWELS.len())]);
    }
    if rng.below(2) == 0 {
        w.push_str(["n", "x", "r", "s"][rng.below(4)]);
    }
    w
}

/// A deterministic synthetic pack of `intents` intents with `per_intent` examples each, built
/// from real messages: intent `i` reuses the messages of base intent `i mod B` (B = the labels of
/// `base`) and mixes in two words of its own (a product or feature name, say) at random
/// positions, sometimes dropping a word; so intents sharing a base differ only by their own
/// words, as product-specific questions in a large pack do. Labels are `<base>__<i / B>`.
pub fn synthetic_pack(base: &[Example], intents: usize, per_intent: usize, seed: u64) -> Vec<Example> {
    let groups = by_label(base);
    if groups.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(intents * per_intent);
    for i in 0..intents {
        let g = &groups[i % groups.len()];
        let Some(&first) = g.first() else { continue };
        let label = format!("{}__{}", base[first].label, i / groups.len());
        let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        let own = [pseudo_word(&mut rng), pseudo_word(&mut rng)];
        for _ in 0..per_intent {
            let text = &base[g[rng.below(g.len())]].text;
            let mut words: Vec<&str> = text.split_whitespace().collect();
            if words.len() > 3 && rng.below(3) == 0 {
                words.remove(rng.below(words.len()));
            }
            words.insert(rng.below(words.len() + 1), &own[0]);
            if rng.below(2) == 0 {
                words.insert(rng.below(words.len() + 1), &own[1]);
            }
            out.push(Example { text: words.join(" "), label: label.clone() });
        }
    }
    out
}

/// A scored test message.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The message.
    pub text: String,
    /// Its true label.
    pub gold: String,
    /// The matcher's top labels.
    pub ranked: Vec<Scored>,
}

impl Prediction {
    fn top(&self) -> Option<&str> {
        self.ranked.first().map(|s| s.label.as_str())
    }
    fn correct(&self) -> bool {
        self.top() == Some(self.gold.as_str())
    }
}

/// Ranks every test message (top 3).
pub fn predict(m: &Matcher, test: &[Example]) -> Vec<Prediction> {
    test.iter().map(|e| Prediction { text: e.text.clone(), gold: e.label.clone(), ranked: m.rank(&e.text, 3) }).collect()
}

/// Predictions of one train/test run, with timings.
#[derive(Debug, Clone)]
pub struct Run {
    /// Predictions on the clean test messages.
    pub clean: Vec<Prediction>,
    /// Predictions on the typo'd copies, when asked for.
    pub typos: Option<Vec<Prediction>>,
    /// Milliseconds to train (featurise, fit, index).
    pub train_ms: f64,
    /// Mean microseconds per ranked message.
    pub us_per_message: f64,
    /// Approximate model memory, bytes.
    pub model_bytes: usize,
    /// Distinct intents in training.
    pub intents: usize,
}

/// Trains on `train`, ranks `test` (and its typo'd copy when `typos` is set, seeded by `seed`).
pub fn train_and_predict(train: &[Example], test: &[Example], typos: bool, seed: u64) -> Run {
    let t0 = std::time::Instant::now();
    let m = Matcher::train(train);
    let train_ms = t0.elapsed().as_secs_f64() * 1e3;
    let typo_test = typos.then(|| typo_set(test, seed));
    let t1 = std::time::Instant::now();
    let clean = predict(&m, test);
    let typos = typo_test.map(|t| predict(&m, &t));
    let n = test.len() * if typos.is_some() { 2 } else { 1 };
    let us_per_message = if n == 0 { 0.0 } else { t1.elapsed().as_secs_f64() * 1e6 / n as f64 };
    Run { clean, typos, train_ms, us_per_message, model_bytes: m.memory_bytes(), intents: m.labels().len() }
}

/// Precision, recall and F1 of one intent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntentMetrics {
    /// The intent label.
    pub label: String,
    /// Test messages of this intent.
    pub support: usize,
    /// Correct / predicted as this intent.
    pub precision: f64,
    /// Correct / support.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// A frequent confusion.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    /// True label.
    pub gold: String,
    /// Predicted label.
    pub predicted: String,
    /// How many test messages.
    pub count: usize,
    /// Up to three of those messages.
    pub examples: Vec<String>,
}

/// How the thresholds split the test set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DecisionSplit {
    /// The thresholds applied.
    pub thresholds: Thresholds,
    /// Messages answered directly.
    pub answered: usize,
    /// Of those, answered with the right intent.
    pub answered_correct: usize,
    /// `answered_correct / answered` (1 when nothing was answered).
    pub answered_accuracy: f64,
    /// Messages that got a "did you mean" choice.
    pub clarified: usize,
    /// Of those, the right intent was among the choices.
    pub clarified_contains_gold: usize,
    /// Messages that fell back.
    pub fallback: usize,
}

/// Accuracy of one language's messages.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LangMetrics {
    /// `zh`, `en` or `other`.
    pub lang: String,
    /// Messages.
    pub n: usize,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Macro-F1 over the intents present.
    pub macro_f1: f64,
}

/// Metrics of one scored test set.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    /// Test messages.
    pub n: usize,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Correct label among the top 3.
    pub top3_accuracy: f64,
    /// Unweighted mean F1 over the intents (true or predicted).
    pub macro_f1: f64,
    /// Per-intent precision/recall/F1, in label order.
    pub per_intent: Vec<IntentMetrics>,
    /// The most frequent confusions.
    pub confusions: Vec<Confusion>,
    /// The thresholds' split.
    pub decisions: DecisionSplit,
    /// Per detected language.
    pub per_language: Vec<LangMetrics>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Per-intent metrics and macro-F1 over the union of true and predicted labels.
fn prf(preds: &[&Prediction]) -> (Vec<IntentMetrics>, f64) {
    let mut stats: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new(); // support, predicted, correct
    for p in preds {
        stats.entry(p.gold.as_str()).or_default().0 += 1;
        if let Some(t) = p.top() {
            let s = stats.entry(t).or_default();
            s.1 += 1;
            if p.correct() {
                s.2 += 1;
            }
        }
    }
    let per: Vec<IntentMetrics> = stats
        .into_iter()
        .map(|(l, (sup, pred, ok))| {
            let (p, r) = (ratio(ok, pred), ratio(ok, sup));
            let f1 = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
            IntentMetrics { label: l.to_string(), support: sup, precision: p, recall: r, f1 }
        })
        .collect();
    let macro_f1 = if per.is_empty() { 0.0 } else { per.iter().map(|m| m.f1).sum::<f64>() / per.len() as f64 };
    (per, macro_f1)
}

/// Applies the thresholds to every prediction.
pub fn decision_split(preds: &[Prediction], t: Thresholds) -> DecisionSplit {
    let mut d = DecisionSplit {
        thresholds: t,
        answered: 0,
        answered_correct: 0,
        answered_accuracy: 1.0,
        clarified: 0,
        clarified_contains_gold: 0,
        fallback: 0,
    };
    for p in preds {
        match t.decide(&p.ranked) {
            Decision::Answer(l) => {
                d.answered += 1;
                if l == p.gold {
                    d.answered_correct += 1;
                }
            }
            Decision::Clarify(ls) => {
                d.clarified += 1;
                if ls.contains(&p.gold) {
                    d.clarified_contains_gold += 1;
                }
            }
            Decision::Fallback => d.fallback += 1,
        }
    }
    if d.answered > 0 {
        d.answered_accuracy = ratio(d.answered_correct, d.answered);
    }
    d
}

/// All metrics of a scored test set.
pub fn metrics(preds: &[Prediction], t: Thresholds) -> Metrics {
    let all: Vec<&Prediction> = preds.iter().collect();
    let (per_intent, macro_f1) = prf(&all);
    let correct = preds.iter().filter(|p| p.correct()).count();
    let top3 = preds.iter().filter(|p| p.ranked.iter().take(3).any(|s| s.label == p.gold)).count();
    let mut conf: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for p in preds.iter().filter(|p| !p.correct()) {
        conf.entry((p.gold.as_str(), p.top().unwrap_or("(none)"))).or_default().push(&p.text);
    }
    let mut confusions: Vec<Confusion> = conf
        .into_iter()
        .map(|((g, pr), ex)| Confusion {
            gold: g.to_string(),
            predicted: pr.to_string(),
            count: ex.len(),
            examples: ex.iter().take(3).map(|s| s.to_string()).collect(),
        })
        .collect();
    confusions.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.gold.cmp(&b.gold)).then_with(|| a.predicted.cmp(&b.predicted)));
    confusions.truncate(10);
    let mut langs: BTreeMap<String, Vec<&Prediction>> = BTreeMap::new();
    for p in preds {
        let l = lang::detect(&p.text).map_or("other", Lang::as_str);
        langs.entry(l.to_string()).or_default().push(p);
    }
    let per_language = langs
        .into_iter()
        .map(|(lang, ps)| {
            let ok = ps.iter().filter(|p| p.correct()).count();
            let (_, mf1) = prf(&ps);
            LangMetrics { lang, n: ps.len(), accuracy: ratio(ok, ps.len()), macro_f1: mf1 }
        })
        .collect();
    Metrics {
        n: preds.len(),
        accuracy: ratio(correct, preds.len()),
        top3_accuracy: ratio(top3, preds.len()),
        macro_f1,
        per_intent,
        confusions,
        decisions: decision_split(preds, t),
        per_language,
    }
}

/// Result of the out-of-scope experiment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutOfScope {
    /// Intents left out of training.
    pub held_out: Vec<String>,
    /// In-scope test messages.
    pub in_scope: usize,
    /// Messages of the held-out intents (from both sides of the split).
    pub out_of_scope: usize,
    /// Required accuracy of answered in-scope messages.
    pub target_answered_accuracy: f64,
    /// The lowest answer threshold meeting the target (clarify and margin as configured).
    pub answer_threshold: f32,
    /// In-scope messages answered at that threshold.
    pub in_scope_answered: f64,
    /// Their accuracy.
    pub in_scope_answered_accuracy: f64,
    /// Share of out-of-scope messages answered (wrongly, by construction).
    pub oos_answered: f64,
    /// Share of out-of-scope messages that got a "did you mean" choice.
    pub oos_clarified: f64,
    /// Share of out-of-scope messages that fell back.
    pub oos_fallback: f64,
    /// Share of out-of-scope messages not answered (clarified or fallback).
    pub oos_not_answered: f64,
}

/// The intents of `train` and `test` in the order the out-of-scope experiment holds them out with
/// `seed`: the first N are its N held-out intents (also `intents suggest`'s evaluation, which
/// holds out the first ten and tunes on the next ten).
pub fn intents_in_holdout_order(train: &[Example], test: &[Example], seed: u64) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for e in train.iter().chain(test) {
        if !labels.contains(&e.label) {
            labels.push(e.label.clone());
        }
    }
    let mut rng = Rng::new(seed ^ 0x005C_0DE0);
    rng.shuffle(&mut labels);
    labels
}

/// Trains on all but `holdout` intents (chosen with `seed`) and measures how the out-of-scope
/// messages are handled at the lowest answer threshold whose answered in-scope accuracy reaches
/// `target`. Refuses a `holdout` that leaves no intent out or none in, and a `target` outside
/// (0, 1].
pub fn out_of_scope(
    train: &[Example],
    test: &[Example],
    holdout: usize,
    seed: u64,
    t: Thresholds,
    target: f64,
) -> Result<OutOfScope, EvalError> {
    let labels = intents_in_holdout_order(train, test, seed);
    if holdout == 0 || holdout >= labels.len() {
        return Err(EvalError::Invalid(format!(
            "holding out {holdout} of {} intents leaves none out or none in: it needs 1 ≤ N ≤ {}",
            labels.len(),
            labels.len().saturating_sub(1)
        )));
    }
    if !(target > 0.0 && target <= 1.0) {
        return Err(EvalError::Invalid(format!("the target answered accuracy {target} is not in (0, 1]")));
    }
    let held: Vec<String> = labels.into_iter().take(holdout).collect();
    let is_held = |e: &Example| held.contains(&e.label);
    let tr: Vec<Example> = train.iter().filter(|e| !is_held(e)).cloned().collect();
    let ins: Vec<Example> = test.iter().filter(|e| !is_held(e)).cloned().collect();
    let oos: Vec<Example> = train.iter().chain(test).filter(|e| is_held(e)).cloned().collect();
    let m = Matcher::train(&tr);
    let pin = predict(&m, &ins);
    let pout = predict(&m, &oos);
    // Candidate thresholds: every distinct top score, from high to low.
    let mut cands: Vec<f32> = pin.iter().filter_map(|p| p.ranked.first().map(|s| s.score)).collect();
    cands.push(1.0);
    cands.sort_by(|a, b| b.total_cmp(a));
    cands.dedup();
    let mut best = (1.0f32, decision_split(&pin, Thresholds { answer: 1.0, ..t }));
    for &c in &cands {
        let th = Thresholds { answer: c, clarify: t.clarify.min(c), margin: t.margin };
        let d = decision_split(&pin, th);
        if d.answered == 0 || d.answered_accuracy >= target {
            best = (c, d);
        }
    }
    let th = Thresholds { answer: best.0, clarify: t.clarify.min(best.0), margin: t.margin };
    let dout = decision_split(&pout, th);
    let n = pout.len();
    Ok(OutOfScope {
        held_out: held.clone(),
        in_scope: pin.len(),
        out_of_scope: n,
        target_answered_accuracy: target,
        answer_threshold: best.0,
        in_scope_answered: ratio(best.1.answered, pin.len()),
        in_scope_answered_accuracy: best.1.answered_accuracy,
        oos_answered: ratio(dout.answered, n),
        oos_clarified: ratio(dout.clarified, n),
        oos_fallback: ratio(dout.fallback, n),
        oos_not_answered: ratio(dout.clarified + dout.fallback, n),
    })
}

/// Everything `switchboard eval` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// How the test set was obtained (`test file`, `dev split 0.2 seed 42`, `5-fold`).
    pub protocol: String,
    /// Training examples (per fold for cross-validation).
    pub train_examples: usize,
    /// Distinct intents in training.
    pub intents: usize,
    /// Milliseconds to train (mean per fold).
    pub train_ms: f64,
    /// Mean microseconds per ranked message (single thread, including the typo'd set if any).
    pub us_per_message: f64,
    /// Approximate memory of the trained model, bytes.
    pub model_bytes: usize,
    /// Metrics on the clean test messages.
    pub clean: Metrics,
    /// Metrics on the same messages with typos (`--typos`).
    pub typos: Option<Metrics>,
    /// Accuracy drop in points from clean to typo'd.
    pub typo_drop_points: Option<f64>,
    /// The out-of-scope experiment (`--holdout-intents`).
    pub out_of_scope: Option<OutOfScope>,
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn render_metrics(out: &mut String, title: &str, m: &Metrics, per_intent: bool) {
    let _ = writeln!(out, "== {title} ({} messages)", m.n);
    let _ = writeln!(out, "accuracy {}   top-3 {}   macro-F1 {}", pct(m.accuracy), pct(m.top3_accuracy), pct(m.macro_f1));
    for l in &m.per_language {
        let _ = writeln!(out, "  {:<5} n={:<6} accuracy {}  macro-F1 {}", l.lang, l.n, pct(l.accuracy), pct(l.macro_f1));
    }
    let d = &m.decisions;
    let _ = writeln!(
        out,
        "thresholds answer={:.3} clarify={:.3} margin={:.3}: answered {} ({}, accuracy {}), clarified {} ({}, right intent offered {}), fallback {} ({})",
        d.thresholds.answer,
        d.thresholds.clarify,
        d.thresholds.margin,
        d.answered,
        pct(ratio(d.answered, m.n)),
        pct(d.answered_accuracy),
        d.clarified,
        pct(ratio(d.clarified, m.n)),
        pct(ratio(d.clarified_contains_gold, d.clarified)),
        d.fallback,
        pct(ratio(d.fallback, m.n)),
    );
    if per_intent {
        let w = m.per_intent.iter().map(|i| i.label.chars().count()).max().unwrap_or(6).max(6);
        let _ = writeln!(out, "{:<w$}  support  precision  recall     F1", "intent");
        for i in &m.per_intent {
            let _ = writeln!(out, "{:<w$}  {:>7}  {:>9}  {:>7}  {:>7}", i.label, i.support, pct(i.precision), pct(i.recall), pct(i.f1));
        }
    }
    if !m.confusions.is_empty() {
        let _ = writeln!(out, "most frequent confusions (true -> predicted):");
        for c in &m.confusions {
            let _ = writeln!(out, "  {:>3} x {} -> {}", c.count, c.gold, c.predicted);
            for e in &c.examples {
                let _ = writeln!(out, "        \"{}\"", crate::matcher::normalize::clean(e).replace('\n', " "));
            }
        }
    }
}

/// Renders a report as plain text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "protocol: {}; {} training examples, {} intents; train {:.1} ms; {:.2} µs/message; model ≈ {:.1} MiB",
        r.protocol,
        r.train_examples,
        r.intents,
        r.train_ms,
        r.us_per_message,
        r.model_bytes as f64 / (1024.0 * 1024.0)
    );
    render_metrics(&mut out, "clean", &r.clean, true);
    if let Some(t) = &r.typos {
        render_metrics(&mut out, "with typos", t, false);
    }
    if let Some(d) = r.typo_drop_points {
        let _ = writeln!(out, "typo accuracy drop: {d:.2} points");
    }
    if let Some(o) = &r.out_of_scope {
        let _ = writeln!(
            out,
            "== out of scope: {} intents held out ({} messages), {} in-scope test messages",
            o.held_out.len(),
            o.out_of_scope,
            o.in_scope
        );
        let _ = writeln!(out, "  held out: {}", o.held_out.join(", "));
        let _ = writeln!(
            out,
            "  answer threshold {:.3} keeps answered in-scope accuracy {} (target {}), answering {} of in-scope",
            o.answer_threshold,
            pct(o.in_scope_answered_accuracy),
            pct(o.target_answered_accuracy),
            pct(o.in_scope_answered)
        );
        let _ = writeln!(
            out,
            "  out-of-scope messages: fallback {}, clarified {}, answered {} (not answered {})",
            pct(o.oos_fallback),
            pct(o.oos_clarified),
            pct(o.oos_answered),
            pct(o.oos_not_answered)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_keeps_its_fold_and_folds_are_even() {
        let texts: Vec<String> = (0..1000).map(|i| format!("example number {i}")).collect();
        let mut sizes = [0usize; 10];
        for t in &texts {
            let f = fold_of(t, 10);
            assert_eq!(f, fold_of(t, 10), "the same text, the same fold");
            sizes[f] += 1;
        }
        assert!(sizes.iter().all(|&n| (60..=140).contains(&n)), "{sizes:?}");
        assert_eq!(fold_of("anything", 1), 0);
        assert_eq!(fold_of("anything", 0), 0);
    }

    fn ex(text: &str, label: &str) -> Example {
        Example { text: text.into(), label: label.into() }
    }

    fn data() -> Vec<Example> {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(ex(&format!("where is my card number {i}"), "card"));
            v.push(ex(&format!("I want a refund please {i}"), "refund"));
        }
        v.push(ex("single", "lonely"));
        v
    }

    #[test]
    fn split_is_stratified_deterministic_and_disjoint() {
        let d = data();
        let (tr, dev) = stratified_split(&d, 0.2, 7);
        assert_eq!((tr.len(), dev.len()), (17, 4));
        assert_eq!(stratified_split(&d, 0.2, 7), (tr.clone(), dev.clone()));
        assert!(dev.iter().all(|i| !tr.contains(i)));
        assert_eq!(dev.iter().filter(|&&i| d[i].label == "card").count(), 2);
        assert!(tr.iter().any(|&i| d[i].label == "lonely"));
        assert_ne!(stratified_split(&d, 0.2, 8).1, dev);
    }

    #[test]
    fn folds_partition_everything() {
        let d = data();
        let f = k_folds(&d, 5, 1);
        assert_eq!(f.len(), 5);
        let mut all: Vec<usize> = f.concat();
        all.sort_unstable();
        assert_eq!(all, (0..d.len()).collect::<Vec<_>>());
        assert!(f.iter().all(|x| x.iter().filter(|&&i| d[i].label == "card").count() == 2));
    }

    #[test]
    fn typos_edit_long_words_only_and_deterministically() {
        let s = "I lost my card yesterday, what now?";
        let a = add_typos(s, 1.0, 3);
        assert_eq!(a, add_typos(s, 1.0, 3));
        assert_ne!(a, s);
        assert!(a.starts_with("I ") && a.contains(" my ") && a.ends_with(" now?"));
        assert_eq!(a.split(' ').count(), s.split(' ').count());
        assert_eq!(add_typos(s, 0.0, 3), s);
        assert_eq!(add_typos("我的卡 🙂", 1.0, 3), "我的卡 🙂");
        let t = typo_set(&[ex(s, "x")], 1);
        assert_eq!(t[0].label, "x");
    }

    #[test]
    fn metrics_count_correctly() {
        let sc = |l: &str, s: f32| Scored { label: l.into(), score: s };
        let preds = vec![
            Prediction { text: "a1".into(), gold: "a".into(), ranked: vec![sc("a", 0.9), sc("b", 0.05)] },
            Prediction { text: "a2".into(), gold: "a".into(), ranked: vec![sc("b", 0.4), sc("a", 0.35)] },
            Prediction { text: "b1".into(), gold: "b".into(), ranked: vec![sc("b", 0.1), sc("a", 0.05)] },
        ];
        let t = Thresholds { answer: 0.5, clarify: 0.2, margin: 0.1 };
        let m = metrics(&preds, t);
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.top3_accuracy - 1.0).abs() < 1e-9);
        // a: P=1 R=0.5 F1=2/3; b: P=0.5 R=1 F1=2/3.
        assert!((m.macro_f1 - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.confusions.len(), 1);
        assert_eq!((m.confusions[0].gold.as_str(), m.confusions[0].predicted.as_str()), ("a", "b"));
        let d = &m.decisions;
        assert_eq!((d.answered, d.answered_correct, d.clarified, d.clarified_contains_gold, d.fallback), (1, 1, 1, 1, 1));
        let r = Report {
            protocol: "test".into(),
            train_examples: 3,
            intents: 2,
            train_ms: 1.0,
            us_per_message: 1.0,
            model_bytes: 10,
            clean: m.clone(),
            typos: Some(m),
            typo_drop_points: Some(0.0),
            out_of_scope: None,
        };
        assert!(render(&r).contains("accuracy 66.67%"));
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn out_of_scope_runs() {
        let d = data();
        let (tr, dev) = stratified_split(&d, 0.3, 1);
        let (tr, dev) = (select(&d, &tr), select(&d, &dev));
        let o = out_of_scope(&tr, &dev, 1, 1, Thresholds::default(), 0.97).expect("runs");
        assert_eq!(o.held_out.len(), 1);
        let labels = d.iter().map(|e| e.label.as_str()).collect::<std::collections::BTreeSet<_>>().len();
        for bad in [0, labels, labels + 5] {
            let e = out_of_scope(&tr, &dev, bad, 1, Thresholds::default(), 0.97).expect_err("refused");
            assert!(e.to_string().contains("1 ≤ N"), "{e}");
        }
        assert!(out_of_scope(&tr, &dev, 1, 1, Thresholds::default(), 97.0).is_err(), "a percentage is not a share");
        assert!(o.out_of_scope > 0);
        assert!((0.0..=1.0).contains(&o.oos_not_answered));
    }

    #[test]
    fn synthetic_pack_is_deterministic_and_sized() {
        let d = data();
        let a = synthetic_pack(&d, 9, 4, 5);
        assert_eq!(a.len(), 36);
        let labels: std::collections::BTreeSet<&str> = a.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels.len(), 9);
        let b = synthetic_pack(&d, 9, 4, 5);
        assert!(a.iter().zip(&b).all(|(x, y)| x.text == y.text && x.label == y.label));
        assert!(synthetic_pack(&[], 9, 4, 5).is_empty());
    }

    #[test]
    fn csv_round_trip() {
        let dir = std::env::temp_dir().join(format!("sb-eval-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("x.csv");
        let d = vec![ex("hello, \"world\"", "greet"), ex("我的卡", "card")];
        assert!(write_csv(&p, &d).is_ok());
        let back = load_csv(&p).unwrap_or_default();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].text, "hello, \"world\"");
        assert_eq!(back[1].label, "card");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load_csv(Path::new("/nonexistent/x.csv")).is_err());
    }

    #[test]
    fn csv_rows_without_text_or_label_are_errors_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let check = |body: &str, want: &str| {
            let p = dir.path().join("bad.csv");
            std::fs::write(&p, body).expect("write");
            match load_csv(&p) {
                Err(EvalError::Csv(m)) => assert!(m.ends_with(want), "{m}"),
                other => panic!("{body:?}: {other:?}"),
            }
        };
        check("text,category\nhello,greet\n\"unclosed,greet\nbye,leave\n", "line 3: the row has no label");
        check("text,category\nhello,greet\n,greet\n", "line 3: the row has no text");
        check("category,text\ngreet\n", "line 2: the row has no text");
    }
}
