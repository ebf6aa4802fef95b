//! `switchboard intents suggest`: the questions the bot did not answer, grouped, so that a
//! maintainer sees which intents are missing and which intents miss phrasings.
//!
//! 1. [`collect`] reads the store's outcome lines as a stream and keeps only the unanswered
//!    customer messages (fallbacks, unresolved "did you mean", handoffs without an intent,
//!    catch-all answers), one entry per distinct message ([`Collector`]).
//! 2. [`cluster`] groups them in Chinese and English alike (TF-IDF over the matcher's own
//!    normalisation, Han character bigrams, average-linkage clustering).
//! 3. Each group of at least `min_size` messages gets its closest phrasings, the nearest intent of
//!    the pack with the matcher's mean confidence and the similarity of its nearest example, and a
//!    verdict: new phrasings of that intent, or a new intent ([`Verdict`]).
//! 4. [`draft`] writes a new intent's draft file in the pack's format.
//!
//! Only message texts (masked on the inbound path, before they were stored) reach the output:
//! never a conversation, customer or channel id.

pub mod cluster;
pub mod collect;
pub mod draft;
pub mod metrics;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use futures_util::StreamExt;
use serde::Serialize;

pub use cluster::{Cluster, ClusterConfig, SparseVec, VecConfig, Vectorizer};
pub use collect::{Collector, Found, Reason, Unanswered};

use crate::matcher::{Example, Matcher};
use crate::pack::Pack;
use crate::store::Store;
use crate::types::Millis;
use crate::{Lang, StoreError};

/// The intent id of OKPay's catch-all for questions it has no answer for; a pack with an intent
/// of this id has its answers counted as unanswered.
pub const CATCH_ALL: &str = "other_question";

/// How many phrasings of each group are shown.
pub const SHOWN_PHRASINGS: usize = 5;

/// Knobs of the grouping and the verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Smallest group reported (in messages); smaller ones are left out as noise.
    pub min_size: u64,
    /// The vectors.
    pub vectors: VecConfig,
    /// The clustering.
    pub cluster: ClusterConfig,
    /// Weight of the matcher's view of a message (its confidence in each of the pack's intents,
    /// top ten, the catch-all left out) joined to its words' unit vector: messages the matcher
    /// confuses with the same intents are alike. 0: words only.
    pub intent_weight: f32,
    /// "New phrasings" of the nearest intent needs the matcher to rank it first for at least
    /// this share of the group's messages…
    pub phrasing_agreement: f32,
    /// …and its mean confidence in it to reach this…
    pub phrasing_confidence: f32,
    /// …or the group's centroid to be this similar to one of that intent's examples.
    pub phrasing_similarity: f32,
}

impl Default for Settings {
    fn default() -> Self {
        // The verdict's thresholds were chosen on Banking77 intents other than the ten evaluated
        // (BENCHMARKS.md, "Suggestions").
        Settings {
            min_size: 3,
            vectors: VecConfig::default(),
            cluster: ClusterConfig::default(),
            intent_weight: 0.3,
            phrasing_agreement: 0.5,
            phrasing_confidence: 0.4,
            phrasing_similarity: 0.7,
        }
    }
}

/// What the pack already knows: the matcher, the examples, which intent is the catch-all.
#[derive(Debug)]
pub struct Known<'a> {
    /// The matcher trained on the pack.
    pub matcher: &'a Matcher,
    /// The pack's example phrasings.
    pub examples: Vec<Example>,
    /// The intent for questions the pack has no answer for, if it has one.
    pub catch_all: Option<String>,
}

impl<'a> Known<'a> {
    /// From a pack and the matcher trained on it; the catch-all is [`CATCH_ALL`] if the pack has it.
    pub fn from_pack(pack: &Pack, matcher: &'a Matcher) -> Known<'a> {
        Known { matcher, examples: pack.examples(), catch_all: pack.intent(CATCH_ALL).map(|i| i.id.clone()) }
    }
}

/// The pack's intent nearest to a group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Nearest {
    /// Its id.
    pub intent: String,
    /// The matcher's mean confidence in it over the group's messages.
    pub confidence: f32,
    /// The share of the group's messages the matcher ranks it first for.
    pub agreement: f32,
    /// Cosine similarity of the group's centroid to the intent's closest example.
    pub example_similarity: f32,
}

/// What to do about a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "intent", rename_all = "snake_case")]
pub enum Verdict {
    /// The messages ask what an intent answers, in words it does not know yet.
    NewPhrasings(String),
    /// The pack has no answer for them.
    NewIntent,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::NewPhrasings(id) => write!(f, "new phrasings of {id}: add them as examples"),
            Verdict::NewIntent => f.write_str("a new intent"),
        }
    }
}

/// A group of similar unanswered messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Messages in it (repeats counted).
    pub size: u64,
    /// Its distinct phrasings with how often each was sent, closest to the centroid first.
    pub phrasings: Vec<(String, u64)>,
    /// The language most of its messages are in.
    pub lang: Option<Lang>,
    /// The pack's nearest intent.
    pub nearest: Option<Nearest>,
    /// New phrasings or a new intent.
    pub verdict: Verdict,
}

impl Group {
    /// The phrasings shown ([`SHOWN_PHRASINGS`] closest to the centroid).
    pub fn shown(&self) -> impl Iterator<Item = &str> {
        self.phrasings.iter().take(SHOWN_PHRASINGS).map(|(t, _)| t.as_str())
    }
}

impl Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            size: u64,
            phrasings: Vec<&'a str>,
            distinct_phrasings: usize,
            language: Option<Lang>,
            nearest: &'a Option<Nearest>,
            #[serde(flatten)]
            verdict: &'a Verdict,
            advice: String,
        }
        View {
            size: self.size,
            phrasings: self.shown().collect(),
            distinct_phrasings: self.phrasings.len(),
            language: self.lang,
            nearest: &self.nearest,
            verdict: &self.verdict,
            advice: self.verdict.to_string(),
        }
        .serialize(s)
    }
}

/// The suggestions of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suggestions {
    /// Start of the period, Unix milliseconds.
    pub since: Millis,
    /// Its end (exclusive).
    pub until: Millis,
    /// Customer messages read (with an outcome).
    pub read: u64,
    /// Unanswered messages among them (repeats within a conversation counted once).
    pub unanswered: u64,
    /// By reason.
    pub by_reason: BTreeMap<Reason, u64>,
    /// The smallest group reported.
    pub min_size: u64,
    /// Groups of at least `min_size` messages, largest first.
    pub groups: Vec<Group>,
    /// Unanswered messages in smaller groups, left out.
    pub left_out: u64,
}

/// Groups `texts` (each sent `weights[i]` times): the clusters of [`cluster::cluster`] over the
/// vectors of [`Vectorizer::fit`] (joined with `matcher`'s view of each message, the catch-all
/// intent left out, when [`Settings::intent_weight`] is set); returns the vectorizer and the
/// words' vectors too.
pub fn group_texts(
    texts: &[&str],
    weights: &[u64],
    settings: &Settings,
    matcher: Option<&Matcher>,
    catch_all: Option<&str>,
) -> (Vectorizer, Vec<SparseVec>, Vec<Cluster>) {
    let (v, vecs) = Vectorizer::fit(texts, settings.vectors);
    let clusters = match matcher.filter(|_| settings.intent_weight > 0.0) {
        Some(m) => {
            let index: HashMap<&str, u32> = m.labels().iter().enumerate().map(|(i, l)| (l.as_str(), i as u32)).collect();
            let offset = v.dim();
            let joined: Vec<SparseVec> = texts
                .iter()
                .zip(&vecs)
                .map(|(t, x)| {
                    let mut p: Vec<(u32, f32)> = m
                        .rank(&cluster::without_brackets(t), INTENT_FEATURES)
                        .into_iter()
                        // The catch-all says "none of the pack's topics", not which topic.
                        .filter(|s| Some(s.label.as_str()) != catch_all)
                        .filter_map(|s| index.get(s.label.as_str()).map(|&i| (offset + i, s.score)))
                        .collect();
                    p.sort_unstable_by_key(|f| f.0);
                    // The confidences as they are (not scaled to unit length): a message the
                    // matcher has no idea about (near-uniform, low confidences) gets little of it.
                    x.add_scaled(&SparseVec(p), settings.intent_weight).unit()
                })
                .collect();
            cluster::cluster(&joined, weights, &settings.cluster)
        }
        None => cluster::cluster(&vecs, weights, &settings.cluster),
    };
    let clusters = cluster::dissolve_wordless(clusters, &vecs, weights, settings.cluster.shared_word, |f| v.is_word(f));
    (v, vecs, clusters)
}

/// How many of the matcher's intents join a message's vector (its top ones).
const INTENT_FEATURES: usize = 10;

/// The group of each of `texts` (numbered largest first), grouped as [`suggest`] groups them:
/// messages that read the same ([`cluster::key`]) are one message sent several times.
pub fn assign(texts: &[&str], settings: &Settings, matcher: Option<&Matcher>) -> Vec<usize> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut distinct: Vec<&str> = Vec::new();
    let mut weights: Vec<u64> = Vec::new();
    let of: Vec<usize> = texts
        .iter()
        .map(|t| {
            *index.entry(cluster::key(t)).or_insert_with(|| {
                distinct.push(t);
                weights.push(0);
                distinct.len() - 1
            })
        })
        .collect();
    for &d in &of {
        weights[d] += 1;
    }
    let (_, _, clusters) = group_texts(&distinct, &weights, settings, matcher, None);
    let mut group = vec![0usize; distinct.len()];
    for (g, c) in clusters.iter().enumerate() {
        for &m in &c.members {
            group[m] = g;
        }
    }
    of.iter().map(|&d| group[d]).collect()
}

/// Groups the unanswered messages found and judges each group of at least `settings.min_size`:
/// returns those groups, largest first, and how many messages the smaller ones hold.
pub fn suggest(found: &Found, known: &Known<'_>, settings: &Settings) -> (Vec<Group>, u64) {
    let texts: Vec<&str> = found.messages.iter().map(|m| m.text.as_str()).collect();
    let weights: Vec<u64> = found.messages.iter().map(|m| m.count).collect();
    let (vectorizer, vecs, clusters) = group_texts(&texts, &weights, settings, Some(known.matcher), known.catch_all.as_deref());
    let mut left_out = 0;
    let mut groups = Vec::new();
    // Example vectors, by intent, made once and only if some group needs them.
    let mut example_vecs: Option<HashMap<&str, Vec<SparseVec>>> = None;
    for c in clusters {
        if c.size < settings.min_size.max(1) {
            left_out += c.size;
            continue;
        }
        let phrasings: Vec<(String, u64)> = c.members.iter().map(|&i| (texts[i].to_string(), weights[i])).collect();
        // The centroid of the words alone, to compare with examples' words.
        let centroid = c.members.iter().fold(SparseVec::default(), |s, &i| s.add_scaled(&vecs[i], weights[i] as f32)).unit();
        let nearest = nearest(&phrasings, &centroid, known, &vectorizer, &mut example_vecs);
        let verdict = match &nearest {
            Some(n)
                if Some(&n.intent) != known.catch_all.as_ref()
                    && n.agreement >= settings.phrasing_agreement
                    && (n.confidence >= settings.phrasing_confidence || n.example_similarity >= settings.phrasing_similarity) =>
            {
                Verdict::NewPhrasings(n.intent.clone())
            }
            _ => Verdict::NewIntent,
        };
        groups.push(Group { size: c.size, lang: majority_lang(&phrasings), phrasings, nearest, verdict });
    }
    (groups, left_out)
}

/// The language most of `phrasings`' messages are in.
fn majority_lang(phrasings: &[(String, u64)]) -> Option<Lang> {
    let mut n: BTreeMap<Lang, u64> = BTreeMap::new();
    for (t, c) in phrasings {
        if let Some(l) = crate::matcher::lang::detect(t) {
            *n.entry(l).or_default() += c;
        }
    }
    n.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(l, _)| l)
}

/// The intent with the highest mean confidence over the group's messages (each ranked on its
/// own, top three), with that confidence, how often it was ranked first, and the similarity of
/// the group's centroid to its closest example.
fn nearest<'k>(
    phrasings: &[(String, u64)],
    centroid: &SparseVec,
    known: &'k Known<'_>,
    vectorizer: &Vectorizer,
    example_vecs: &mut Option<HashMap<&'k str, Vec<SparseVec>>>,
) -> Option<Nearest> {
    let mut mean: HashMap<String, f64> = HashMap::new();
    let mut first: HashMap<String, u64> = HashMap::new();
    let total: u64 = phrasings.iter().map(|p| p.1).sum();
    for (text, count) in phrasings {
        let ranked = known.matcher.rank(&cluster::without_brackets(text), 3);
        if let Some(top) = ranked.first() {
            *first.entry(top.label.clone()).or_default() += count;
        }
        for s in ranked {
            *mean.entry(s.label).or_default() += f64::from(s.score) * *count as f64;
        }
    }
    let (intent, sum) = mean.into_iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    let vecs = example_vecs.get_or_insert_with(|| {
        let mut by: HashMap<&str, Vec<SparseVec>> = HashMap::new();
        for e in &known.examples {
            by.entry(e.label.as_str()).or_default().push(vectorizer.transform(&e.text));
        }
        by
    });
    let example_similarity = vecs.get(intent.as_str()).map_or(0.0, |v| v.iter().map(|x| x.dot(centroid)).fold(0.0f32, f32::max));
    Some(Nearest {
        confidence: (sum / total.max(1) as f64) as f32,
        agreement: first.get(&intent).copied().unwrap_or(0) as f32 / total.max(1) as f32,
        example_similarity,
        intent,
    })
}

/// Reads the store's outcome lines of `[since, until)` as a stream, keeping only the unanswered
/// messages, then groups and judges them.
pub async fn from_store(
    store: &dyn Store,
    since: Millis,
    until: Millis,
    known: &Known<'_>,
    settings: &Settings,
) -> Result<Suggestions, StoreError> {
    let mut collector = Collector::new(known.catch_all.as_deref());
    let mut lines = store.outcome_lines(since, until);
    while let Some(line) = lines.next().await {
        collector.push(&line?);
    }
    drop(lines);
    let found = collector.finish();
    let (groups, left_out) = suggest(&found, known, settings);
    Ok(Suggestions {
        since,
        until,
        read: found.read,
        unanswered: found.total(),
        by_reason: found.by_reason.clone(),
        min_size: settings.min_size,
        groups,
        left_out,
    })
}

/// A time as `2026-12-04 10:30 UTC`.
pub fn date(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

impl fmt::Display for Suggestions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unanswered == 0 {
            return writeln!(f, "no unanswered messages since {} ({} customer messages read)", date(self.since), self.read);
        }
        let reasons: Vec<String> = self.by_reason.iter().map(|(r, n)| format!("{n} {}", r.describe())).collect();
        writeln!(
            f,
            "{} unanswered messages since {} ({} customer messages read): {}",
            self.unanswered,
            date(self.since),
            self.read,
            reasons.join(", ")
        )?;
        let grouped: u64 = self.groups.iter().map(|g| g.size).sum();
        writeln!(
            f,
            "{} group{} of {} or more ({grouped} messages); {} message{} in smaller groups left out",
            self.groups.len(),
            if self.groups.len() == 1 { "" } else { "s" },
            self.min_size,
            self.left_out,
            if self.left_out == 1 { "" } else { "s" }
        )?;
        for (i, g) in self.groups.iter().enumerate() {
            writeln!(f)?;
            writeln!(f, "{}. {} messages: {}", i + 1, g.size, g.verdict)?;
            for (text, n) in g.phrasings.iter().take(SHOWN_PHRASINGS) {
                let times = if *n > 1 { format!("  (×{n})") } else { String::new() };
                writeln!(f, "   {text:?}{times}")?;
            }
            if g.phrasings.len() > SHOWN_PHRASINGS {
                writeln!(f, "   … and {} more phrasings", g.phrasings.len() - SHOWN_PHRASINGS)?;
            }
            match &g.nearest {
                Some(n) => writeln!(
                    f,
                    "   nearest intent: {} (confidence {:.2}, ranked first for {:.0} %, closest example {:.2})",
                    n.intent,
                    n.confidence,
                    n.agreement * 100.0,
                    n.example_similarity
                )?,
                None => writeln!(f, "   nearest intent: none")?,
            }
        }
        Ok(())
    }
}

/// The example phrasings of `packs` after normalisation, each with its intent: what a draft must
/// not list again (a pack refuses a phrasing listed under two intents).
pub fn taken_phrasings<'p>(packs: impl IntoIterator<Item = &'p Pack>) -> HashMap<String, String> {
    use crate::matcher::normalize::normalize;
    let mut taken = HashMap::new();
    for pack in packs {
        for e in pack.examples() {
            taken.entry(normalize(&e.text)).or_insert(e.label);
        }
    }
    taken
}

/// The distinct phrasings of `group` fit to be examples of a new intent: not longer than an
/// example may be, not in `taken` ([`taken_phrasings`]), not repeated; and the phrasings left out
/// because another intent has them, with that intent.
pub fn usable_examples(group: &Group, taken: &HashMap<String, String>) -> (Vec<String>, Vec<(String, String)>) {
    use crate::matcher::normalize::normalize;
    let mut seen: HashSet<String> = HashSet::new();
    let (mut fresh, mut elsewhere) = (Vec::new(), Vec::new());
    for (text, _) in &group.phrasings {
        let norm = normalize(text);
        if norm.is_empty() || text.chars().count() > crate::pack::MAX_EXAMPLE_CHARS || !seen.insert(norm.clone()) {
            continue;
        }
        match taken.get(&norm) {
            Some(id) => elsewhere.push((text.clone(), id.clone())),
            None => fresh.push(text.clone()),
        }
    }
    (fresh, elsewhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: &str) -> Example {
        Example { text: text.into(), label: label.into() }
    }

    fn known_examples() -> Vec<Example> {
        let mut v = Vec::new();
        for t in [
            "my account is locked",
            "I can't log in, my account got locked",
            "locked out of my account",
            "account locked after wrong password",
            "why is my account blocked",
            "我的账号被锁了",
            "账户被冻结了怎么办",
        ] {
            v.push(ex(t, "account_locked"));
        }
        for t in ["my transfer failed", "the payment did not go through", "transfer error", "转账失败了", "付款失败"] {
            v.push(ex(t, "transfer_failed"));
        }
        for t in ["what are your fees", "how do I sign up", "is there a mobile app", "手续费是多少", "怎么注册"] {
            v.push(ex(t, "other_question"));
        }
        v
    }

    fn found(msgs: &[(&str, u64)]) -> Found {
        Found {
            messages: msgs.iter().map(|(t, n)| Unanswered { text: t.to_string(), count: *n }).collect(),
            by_reason: BTreeMap::new(),
            read: 0,
        }
    }

    #[test]
    fn groups_get_a_nearest_intent_and_a_verdict() {
        let examples = known_examples();
        let m = Matcher::train(&examples);
        let known = Known { matcher: &m, examples: examples.clone(), catch_all: Some("other_question".into()) };
        let f = found(&[
            ("can I pay with bitcoin", 2),
            ("do you accept bitcoin", 1),
            ("bitcoin payments?", 1),
            ("my acount is lockd", 1),
            ("account locked, can't log in", 2),
            ("locked account help", 1),
            ("比特币可以付款吗", 1),
            ("支持比特币吗", 1),
            ("能用比特币付吗", 1),
            ("what's the weather", 1),
        ]);
        let (groups, left_out) = suggest(&f, &known, &Settings::default());
        assert_eq!(left_out, 1, "{groups:#?}");
        assert_eq!(groups.len(), 3, "{groups:#?}");
        let by_first = |word: &str| groups.iter().find(|g| g.phrasings.iter().any(|(t, _)| t.contains(word))).expect(word);
        let locked = by_first("locked");
        assert_eq!(locked.size, 4);
        assert_eq!(locked.verdict, Verdict::NewPhrasings("account_locked".into()), "{locked:#?}");
        assert_eq!(locked.lang, Some(Lang::En));
        let bitcoin = by_first("bitcoin");
        assert_eq!(bitcoin.size, 4);
        assert_eq!(bitcoin.verdict, Verdict::NewIntent, "{bitcoin:#?}");
        assert_eq!(bitcoin.phrasings[0].0, "can I pay with bitcoin", "the most frequent of equally close phrasings first");
        let zh = by_first("比特币");
        assert_eq!((zh.size, zh.lang, zh.verdict.clone()), (3, Some(Lang::Zh), Verdict::NewIntent));
        assert_eq!(Verdict::NewPhrasings("x".into()).to_string(), "new phrasings of x: add them as examples");
        assert_eq!(Verdict::NewIntent.to_string(), "a new intent");
    }

    #[test]
    fn json_shape_of_a_group() {
        let g = Group {
            size: 4,
            phrasings: vec![("a".into(), 3), ("b".into(), 1)],
            lang: Some(Lang::En),
            nearest: Some(Nearest { intent: "x".into(), confidence: 0.5, agreement: 1.0, example_similarity: 0.25 }),
            verdict: Verdict::NewPhrasings("x".into()),
        };
        let v = serde_json::to_value(&g).expect("json");
        assert_eq!(v["size"], 4);
        assert_eq!(v["phrasings"], serde_json::json!(["a", "b"]));
        assert_eq!(v["distinct_phrasings"], 2);
        assert_eq!(v["language"], "en");
        assert_eq!(v["nearest"]["intent"], "x");
        assert_eq!(v["verdict"], "new_phrasings");
        assert_eq!(v["intent"], "x");
        assert_eq!(v["advice"], "new phrasings of x: add them as examples");
        let n = serde_json::to_value(Group { verdict: Verdict::NewIntent, nearest: None, ..g }).expect("json");
        assert_eq!(n["verdict"], "new_intent");
        assert!(n.get("intent").is_none(), "{n}");
        assert!(n["nearest"].is_null());
    }

    #[test]
    fn text_report_and_empty_period() {
        let empty = Suggestions {
            since: 1_764_806_400_000,
            until: 1_767_398_400_000,
            read: 12,
            unanswered: 0,
            by_reason: BTreeMap::new(),
            min_size: 3,
            groups: vec![],
            left_out: 0,
        };
        assert_eq!(empty.to_string(), "no unanswered messages since 2025-12-04 00:00 UTC (12 customer messages read)\n");
        let one = Suggestions {
            unanswered: 5,
            by_reason: [(Reason::Fallback, 5)].into_iter().collect(),
            groups: vec![Group {
                size: 4,
                phrasings: (0..7).map(|i| (format!("p{i}"), if i == 0 { 2 } else { 1 })).collect(),
                lang: Some(Lang::En),
                nearest: None,
                verdict: Verdict::NewIntent,
            }],
            left_out: 1,
            ..empty
        };
        let text = one.to_string();
        assert!(text.starts_with("5 unanswered messages since 2025-12-04 00:00 UTC (12 customer messages read): 5 fell back\n"), "{text}");
        assert!(text.contains("1 group of 3 or more (4 messages); 1 message in smaller groups left out"), "{text}");
        assert!(text.contains("1. 4 messages: a new intent\n   \"p0\"  (×2)\n"), "{text}");
        assert!(text.contains("\"p4\"\n   … and 2 more phrasings\n   nearest intent: none"), "{text}");
        assert!(!text.contains("p5"), "{text}");
    }
}
