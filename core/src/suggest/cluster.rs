//! Grouping similar messages: TF-IDF vectors read the way the matcher reads text, and
//! average-linkage agglomerative clustering cut at a cosine similarity.
//!
//! **Vectors.** A message is normalised and tokenised as the matcher does
//! ([`crate::matcher::normalize::normalize`], Latin words and single Han characters with
//! traditional and simplified forms folded together); bracketed spans such as `[card •••• 4242]`
//! or `[photo]` (masked secrets, what came with the words) are left out. Features come in two
//! groups, each TF-IDF weighted (sublinear TF, smoothed IDF over the messages grouped) and
//! L2-normalised, then joined with [`VecConfig::char_weight`] and normalised again:
//!
//! - *words*: each Latin word (all-digit tokens such as amounts are left out, and so are, with
//!   [`VecConfig::stopwords`], a short list of English function words), and each pair of
//!   neighbouring Han characters: Chinese has no spaces, and character bigrams are its words;
//! - *pieces*: character trigrams of each padded Latin word (`" refund "` → ` re`, `ref`, …, so
//!   typos and word forms still meet), and single Han characters.
//!
//! **Clustering.** Average linkage with cosine similarity: two groups merge while the mean
//! similarity of their members' pairs reaches the threshold. With unit vectors, that mean is
//! `S_A · S_B / (n_A n_B)` for the groups' (count-weighted) vector sums `S` and sizes `n`, so it
//! is exact for repeated messages too (a message sent 9 times weighs 9). Up to [`EXACT_LIMIT`]
//! distinct messages are clustered exactly (nearest-neighbour chain over a similarity matrix,
//! O(n²) time and memory); beyond, a single leader pass first gathers messages at a higher
//! similarity ([`ClusterConfig::leader`]) into small groups, and those are clustered exactly.
//! Deterministic: the same messages in the same order give the same groups.

use std::collections::HashMap;

use crate::matcher::normalize::normalize;

/// The most distinct messages (or leader groups) clustered exactly: the similarity matrix holds
/// `n (n - 1) / 2` numbers (32 MB at 4,000).
pub const EXACT_LIMIT: usize = 4000;

/// A sparse vector: `(feature, weight)` sorted by feature.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseVec(pub Vec<(u32, f32)>);

impl SparseVec {
    /// The dot product.
    pub fn dot(&self, other: &SparseVec) -> f32 {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j, mut s) = (0, 0, 0.0f32);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += a[i].1 * b[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }

    /// The Euclidean norm.
    pub fn norm(&self) -> f32 {
        self.0.iter().map(|(_, w)| w * w).sum::<f32>().sqrt()
    }

    /// `self + k · other`.
    pub fn add_scaled(&self, other: &SparseVec, k: f32) -> SparseVec {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1 + k * y.1));
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    out.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    out.push((y.0, k * y.1));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        SparseVec(out)
    }

    /// This vector scaled to unit length (a zero vector stays zero).
    pub fn unit(&self) -> SparseVec {
        let n = self.norm();
        if n > 0.0 { SparseVec(self.0.iter().map(|&(f, w)| (f, w / n)).collect()) } else { self.clone() }
    }
}

/// The shape of the vectors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VecConfig {
    /// Weight of the *pieces* group (Latin character trigrams, single Han characters) against the
    /// *words* group (Latin words, Han character bigrams), which weighs 1.
    pub char_weight: f32,
    /// Leave out a short list of English function words ("the", "my", "how"…).
    pub stopwords: bool,
}

impl Default for VecConfig {
    fn default() -> Self {
        // Chosen on Banking77 intents other than the ten evaluated (BENCHMARKS.md, "Suggestions").
        VecConfig { char_weight: 2.0, stopwords: false }
    }
}

/// English function words: frequent in every question, telling none apart.
pub(crate) const STOPWORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does", "for",
    "from", "get", "had", "has", "have", "hi", "how", "i", "i'm", "if", "im", "in", "is", "it", "its", "me", "my", "of", "on", "or",
    "please", "so", "that", "the", "there", "this", "to", "was", "what", "when", "where", "which", "why", "will", "with", "would", "you",
    "your",
];

const GROUP_WORD: u8 = 0;
const GROUP_PIECE: u8 = 1;

fn fnv(bytes: impl IntoIterator<Item = u8>, kind: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `text` without bracketed spans (`[card •••• 4242]`, `[photo]`): placeholders, not words.
pub fn without_brackets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if depth > 0 {
        // An unclosed bracket is text, not a placeholder.
        return text.to_string();
    }
    out
}

/// The tokens of `text` as the matcher reads them: normalised, Latin words and single Han
/// characters (variants folded); bracketed spans left out.
pub fn tokens(text: &str) -> Vec<(String, bool)> {
    crate::matcher::tokenize(&normalize(&without_brackets(text))).into_iter().map(|t| (t.text, t.han)).collect()
}

/// A key two messages share when they read the same: their tokens, space-separated.
pub fn key(text: &str) -> String {
    tokens(text).into_iter().map(|(t, _)| t).collect::<Vec<_>>().join(" ")
}

/// Feature hashes of `text` with their group, repeated as often as they occur.
fn raw_features(text: &str, cfg: &VecConfig) -> Vec<(u64, u8)> {
    let toks = tokens(text);
    let mut out = Vec::new();
    for (i, (t, han)) in toks.iter().enumerate() {
        if *han {
            out.push((fnv(t.bytes(), 2), GROUP_PIECE));
            if let Some((n, true)) = toks.get(i + 1) {
                out.push((fnv(t.bytes().chain(n.bytes()), 3), GROUP_WORD));
            }
            continue;
        }
        if t.chars().all(|c| c.is_numeric()) || (cfg.stopwords && STOPWORDS.contains(&t.as_str())) {
            continue;
        }
        out.push((fnv(t.bytes(), 1), GROUP_WORD));
        let padded: Vec<char> = std::iter::once(' ').chain(t.chars()).chain(std::iter::once(' ')).collect();
        for w in padded.windows(3) {
            let s: String = w.iter().collect();
            out.push((fnv(s.bytes(), 4), GROUP_PIECE));
        }
    }
    out
}

/// TF-IDF weighting fitted on a set of messages.
#[derive(Clone, Debug)]
pub struct Vectorizer {
    cfg: VecConfig,
    vocab: HashMap<u64, u32>,
    idf: Vec<f32>,
    /// Whether each feature is of the *words* group.
    word: Vec<bool>,
    /// IDF of a feature none of the fitted messages has.
    unseen_idf: f32,
}

impl Vectorizer {
    /// Fits the IDF on `texts` and returns their vectors (unit length; an empty message gives
    /// the zero vector).
    pub fn fit(texts: &[&str], cfg: VecConfig) -> (Vectorizer, Vec<SparseVec>) {
        let raw: Vec<Vec<(u64, u8)>> = texts.iter().map(|t| raw_features(t, &cfg)).collect();
        let mut vocab: HashMap<u64, u32> = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        let mut word: Vec<bool> = Vec::new();
        for doc in &raw {
            let mut seen: Vec<(u64, u8)> = doc.clone();
            seen.sort_unstable();
            seen.dedup();
            for (h, g) in seen {
                let id = *vocab.entry(h).or_insert_with(|| {
                    df.push(0);
                    word.push(g == GROUP_WORD);
                    (df.len() - 1) as u32
                });
                df[id as usize] += 1;
            }
        }
        let n = texts.len() as f32;
        let idf = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        let v = Vectorizer { cfg, vocab, idf, word, unseen_idf: (1.0 + n).ln() + 1.0 };
        let vecs = raw.iter().map(|r| v.weigh(r)).collect();
        (v, vecs)
    }

    /// How many features the fitted messages have (ids `0..dim`).
    pub fn dim(&self) -> u32 {
        self.idf.len() as u32
    }

    /// Whether feature `id` is of the *words* group (a Latin word, a Han bigram).
    pub fn is_word(&self, id: u32) -> bool {
        self.word.get(id as usize).copied().unwrap_or(false)
    }

    /// The vector of another message with the fitted IDF (features the fitted messages never
    /// had count towards its length, but no other vector has them).
    pub fn transform(&self, text: &str) -> SparseVec {
        self.weigh(&raw_features(text, &self.cfg))
    }

    fn weigh(&self, raw: &[(u64, u8)]) -> SparseVec {
        let mut tf: HashMap<(u64, u8), u32> = HashMap::new();
        for &f in raw {
            *tf.entry(f).or_default() += 1;
        }
        let mut groups: [Vec<(Option<u32>, f32)>; 2] = [Vec::new(), Vec::new()];
        for ((h, g), n) in tf {
            let id = self.vocab.get(&h).copied();
            let idf = id.map_or(self.unseen_idf, |i| self.idf[i as usize]);
            groups[g as usize].push((id, (1.0 + (n as f32).ln()) * idf));
        }
        let mut out: Vec<(u32, f32)> = Vec::new();
        let mut total = 0.0f32;
        for (g, feats) in groups.iter().enumerate() {
            let norm = feats.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            if norm == 0.0 {
                continue;
            }
            let k = if g == GROUP_WORD as usize { 1.0 } else { self.cfg.char_weight } / norm;
            for &(id, w) in feats {
                total += (k * w) * (k * w);
                if let Some(id) = id {
                    out.push((id, k * w));
                }
            }
        }
        out.sort_unstable_by_key(|&(f, _)| f);
        let total = total.sqrt();
        if total > 0.0 {
            out.iter_mut().for_each(|(_, w)| *w /= total);
        }
        SparseVec(out)
    }
}

/// How messages are grouped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterConfig {
    /// Groups merge while the mean cosine similarity of their members' pairs is at least this.
    pub threshold: f32,
    /// Beyond [`EXACT_LIMIT`] distinct messages, the similarity at which the leader pass first
    /// gathers them (never below `threshold`).
    pub leader: f32,
    /// A group is kept only if some word (a Latin word, a Han bigram) is in at least this share of
    /// its messages; otherwise its messages stand alone (letters and confusion alike are not a
    /// topic: noise such as "asdf qwer" is left out). 0: off.
    pub shared_word: f32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        // Chosen on Banking77 intents other than the ten evaluated (BENCHMARKS.md, "Suggestions").
        ClusterConfig { threshold: 0.14, leader: 0.6, shared_word: 0.5 }
    }
}

/// A group of messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Indices of its messages, closest to the group's centroid first.
    pub members: Vec<usize>,
    /// Each member's cosine similarity to the centroid, in the same order.
    pub closeness: Vec<f32>,
    /// The sum of its members' weights.
    pub size: u64,
    /// The centroid, unit length.
    pub centroid: SparseVec,
}

/// Groups unit vectors `vecs` (message `i` counting `weights[i]` times) by average linkage cut at
/// `cfg.threshold`. Every message is in exactly one cluster; clusters come largest first (ties:
/// lowest first member index).
pub fn cluster(vecs: &[SparseVec], weights: &[u64], cfg: &ClusterConfig) -> Vec<Cluster> {
    let n = vecs.len().min(weights.len());
    // Start groups: one per message, or the leader pass's groups.
    let mut start: Vec<Vec<usize>> = if n <= EXACT_LIMIT { (0..n).map(|i| vec![i]).collect() } else { leaders(vecs, weights, cfg) };
    // Only the EXACT_LIMIT largest start groups take part in the exact pass; the rest (messages
    // like no other, when there are so many) stay as they are.
    let mut rest: Vec<Vec<usize>> = Vec::new();
    if start.len() > EXACT_LIMIT {
        let w = |g: &Vec<usize>| g.iter().map(|&i| weights[i]).sum::<u64>();
        start.sort_by(|a, b| w(b).cmp(&w(a)).then(a[0].cmp(&b[0])));
        rest = start.split_off(EXACT_LIMIT);
    }
    let sums: Vec<SparseVec> =
        start.iter().map(|g| g.iter().fold(SparseVec::default(), |s, &i| s.add_scaled(&vecs[i], weights[i] as f32))).collect();
    let sizes: Vec<f64> = start.iter().map(|g| g.iter().map(|&i| weights[i] as f64).sum()).collect();
    let merged = average_linkage(&sums, &sizes, cfg.threshold);
    let mut groups: Vec<Vec<usize>> = merged.into_iter().map(|parts| parts.into_iter().flat_map(|p| start[p].clone()).collect()).collect();
    groups.extend(rest);
    let mut out: Vec<Cluster> = groups
        .into_iter()
        .map(|mut members| {
            members.sort_unstable();
            let sum = members.iter().fold(SparseVec::default(), |s, &i| s.add_scaled(&vecs[i], weights[i] as f32));
            let centroid = sum.unit();
            let mut scored: Vec<(usize, f32)> = members.iter().map(|&i| (i, vecs[i].dot(&centroid))).collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(weights[b.0].cmp(&weights[a.0])).then(a.0.cmp(&b.0)));
            Cluster {
                size: members.iter().map(|&i| weights[i]).sum(),
                members: scored.iter().map(|s| s.0).collect(),
                closeness: scored.iter().map(|s| s.1).collect(),
                centroid,
            }
        })
        .collect();
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.members.iter().min().cmp(&b.members.iter().min())));
    out
}

/// Dissolves the clusters of more than one message in which no word feature (`is_word`) is in at
/// least `share` of the messages (by weight): each of their messages becomes a cluster of its own.
/// `vecs` are the messages' vectors the words are read from. Keeps the order of [`cluster`].
pub fn dissolve_wordless(
    clusters: Vec<Cluster>,
    vecs: &[SparseVec],
    weights: &[u64],
    share: f32,
    is_word: impl Fn(u32) -> bool,
) -> Vec<Cluster> {
    if share <= 0.0 {
        return clusters;
    }
    let mut out: Vec<Cluster> = Vec::with_capacity(clusters.len());
    for c in clusters {
        if c.members.len() < 2 {
            out.push(c);
            continue;
        }
        let mut count: HashMap<u32, u64> = HashMap::new();
        for &m in &c.members {
            for &(f, _) in vecs[m].0.iter().filter(|(f, _)| is_word(*f)) {
                *count.entry(f).or_default() += weights[m];
            }
        }
        let best = count.values().copied().max().unwrap_or(0);
        if best as f64 >= f64::from(share) * c.size as f64 {
            out.push(c);
        } else {
            out.extend(c.members.iter().map(|&m| Cluster {
                members: vec![m],
                closeness: vec![1.0],
                size: weights[m],
                centroid: vecs[m].unit(),
            }));
        }
    }
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.members.iter().min().cmp(&b.members.iter().min())));
    out
}

/// The leader pass: messages, heaviest first, join the most similar leader at `cfg.leader` or
/// more, or lead a group of their own (at most [`EXACT_LIMIT`] × 4 leaders; past that, a message
/// like no leader stays alone).
fn leaders(vecs: &[SparseVec], weights: &[u64], cfg: &ClusterConfig) -> Vec<Vec<usize>> {
    let at = cfg.leader.max(cfg.threshold);
    let mut order: Vec<usize> = (0..vecs.len()).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut leads: Vec<usize> = Vec::new(); // the group of each leader
    let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
    let mut score: Vec<f32> = Vec::new();
    let mut touched: Vec<u32> = Vec::new();
    for i in order {
        for &(f, w) in &vecs[i].0 {
            if let Some(p) = postings.get(&f) {
                for &(l, lw) in p {
                    if score[l as usize] == 0.0 {
                        touched.push(l);
                    }
                    score[l as usize] += w * lw;
                }
            }
        }
        let best = touched.iter().map(|&l| (l, score[l as usize])).max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        for &l in &touched {
            score[l as usize] = 0.0;
        }
        touched.clear();
        match best {
            Some((l, s)) if s >= at => groups[leads[l as usize]].push(i),
            _ if leads.len() < EXACT_LIMIT * 4 => {
                let l = leads.len() as u32;
                for &(f, w) in &vecs[i].0 {
                    postings.entry(f).or_default().push((l, w));
                }
                leads.push(groups.len());
                score.push(0.0);
                groups.push(vec![i]);
            }
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// Index of pair `(i, j)`, `i < j`, in a condensed upper-triangular matrix of `n` rows.
#[inline]
fn tri(n: usize, i: usize, j: usize) -> usize {
    i * (2 * n - i - 1) / 2 + (j - i - 1)
}

/// Average-linkage clustering of groups given by their vector sums and sizes, merging while the
/// linkage similarity `S_A · S_B / (n_A n_B)` is at least `threshold`. Returns the clusters as
/// lists of input indices, each ascending, in order of their smallest index.
fn average_linkage(sums: &[SparseVec], sizes: &[f64], threshold: f32) -> Vec<Vec<usize>> {
    let n = sums.len();
    if n == 0 {
        return Vec::new();
    }
    // The similarity matrix, from an inverted index (only pairs sharing a feature cost anything).
    let mut sim = vec![0.0f32; n * (n - 1) / 2];
    let mut postings: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
    for (i, s) in sums.iter().enumerate() {
        for &(f, w) in &s.0 {
            postings.entry(f).or_default().push((i as u32, w));
        }
    }
    let mut acc = vec![0.0f32; n];
    for (i, s) in sums.iter().enumerate() {
        for &(f, w) in &s.0 {
            if let Some(p) = postings.get(&f) {
                let from = p.partition_point(|&(j, _)| j as usize <= i);
                for &(j, wj) in &p[from..] {
                    acc[j as usize] += w * wj;
                }
            }
        }
        for j in i + 1..n {
            sim[tri(n, i, j)] = (f64::from(acc[j]) / (sizes[i] * sizes[j]).max(f64::MIN_POSITIVE)) as f32;
            acc[j] = 0.0;
        }
    }
    let get = |sim: &[f32], a: usize, b: usize| if a < b { sim[tri(n, a, b)] } else { sim[tri(n, b, a)] };

    let mut size: Vec<f64> = sizes.to_vec();
    let mut active = vec![true; n]; // still a cluster of its own (not merged into another)
    let mut done = vec![false; n]; // can reach no other cluster at the threshold any more
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut chain: Vec<usize> = Vec::new();
    let mut next_start = 0usize;
    loop {
        if chain.is_empty() {
            while next_start < n && (!active[next_start] || done[next_start]) {
                next_start += 1;
            }
            if next_start == n {
                break;
            }
            chain.push(next_start);
        }
        let a = chain[chain.len() - 1];
        let prev = chain.len().checked_sub(2).map(|p| chain[p]);
        // The nearest other live cluster; a tie goes to the chain's previous element, then to
        // the lowest index (so the chain always ends).
        let mut best: Option<(usize, f32)> = None;
        for c in 0..n {
            if c == a || !active[c] || done[c] {
                continue;
            }
            let s = get(&sim, a, c);
            let better = match best {
                None => true,
                Some((b, bs)) => s > bs || (s == bs && Some(c) == prev && Some(b) != prev),
            };
            if better {
                best = Some((c, s));
            }
        }
        match best {
            Some((b, s)) if s >= threshold => {
                if Some(b) == prev {
                    chain.pop();
                    chain.pop();
                    let (keep, gone) = (a.min(b), a.max(b));
                    let (wk, wg) = (size[keep], size[gone]);
                    #[allow(clippy::needless_range_loop)] // `c` indexes the triangle as well
                    for c in 0..n {
                        if c == keep || c == gone || !active[c] {
                            continue;
                        }
                        let v = ((wk * f64::from(get(&sim, keep, c)) + wg * f64::from(get(&sim, gone, c))) / (wk + wg)) as f32;
                        let idx = if keep < c { tri(n, keep, c) } else { tri(n, c, keep) };
                        sim[idx] = v;
                    }
                    size[keep] = wk + wg;
                    active[gone] = false;
                    let moved = std::mem::take(&mut members[gone]);
                    members[keep].extend(moved);
                    next_start = next_start.min(keep);
                } else {
                    chain.push(b);
                }
            }
            // Nothing reaches the threshold: never will (a merged cluster's similarity is a mean
            // of its parts'), so this cluster is final.
            _ => {
                done[a] = true;
                chain.pop();
            }
        }
    }
    let mut out: Vec<Vec<usize>> = (0..n)
        .filter(|&i| active[i])
        .map(|i| {
            let mut m = std::mem::take(&mut members[i]);
            m.sort_unstable();
            m
        })
        .collect();
    out.sort_by_key(|m| m[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups of `texts` at the default settings, each sorted, sorted.
    fn groups(texts: &[&str]) -> Vec<Vec<String>> {
        let (_, vecs) = Vectorizer::fit(texts, VecConfig::default());
        let weights = vec![1; texts.len()];
        let mut out: Vec<Vec<String>> = cluster(&vecs, &weights, &ClusterConfig::default())
            .into_iter()
            .map(|c| {
                let mut m: Vec<String> = c.members.iter().map(|&i| texts[i].to_string()).collect();
                m.sort();
                m
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn sparse_arithmetic() {
        let a = SparseVec(vec![(1, 1.0), (3, 2.0)]);
        let b = SparseVec(vec![(0, 5.0), (3, 1.0), (4, 1.0)]);
        assert_eq!(a.dot(&b), 2.0);
        assert_eq!(a.add_scaled(&b, 2.0), SparseVec(vec![(0, 10.0), (1, 1.0), (3, 4.0), (4, 2.0)]));
        assert!((a.unit().norm() - 1.0).abs() < 1e-6);
        assert_eq!(SparseVec::default().unit(), SparseVec::default());
    }

    #[test]
    fn brackets_and_keys() {
        assert_eq!(without_brackets("paid with [card •••• 4242] twice"), "paid with   twice");
        assert_eq!(without_brackets("[photo] my screen"), "  my screen");
        assert_eq!(without_brackets("a [ b"), "a [ b");
        assert_eq!(key("  What's the EXCHANGE rate?? "), key("what s the exchange rate"));
        // Traditional and simplified characters read the same.
        assert_eq!(key("匯率是多少"), key("汇率是多少"));
    }

    #[test]
    fn vectors_are_unit_and_similar_messages_are_close() {
        let texts = ["what is the exchange rate", "exchange rate for euros", "my card was stolen", "", "12345"];
        let (v, vecs) = Vectorizer::fit(&texts, VecConfig::default());
        assert!((vecs[0].norm() - 1.0).abs() < 1e-5);
        assert_eq!(vecs[3], SparseVec::default(), "an empty message has no features");
        assert_eq!(vecs[4], SparseVec::default(), "nor has a number alone");
        assert!(vecs[0].dot(&vecs[1]) > 0.3);
        assert!(vecs[0].dot(&vecs[2]) < 0.05);
        // A typo still shares most character trigrams.
        let typo = v.transform("exchnage rate");
        assert!(typo.dot(&vecs[0]) > 0.2, "{}", typo.dot(&vecs[0]));
        assert!(typo.norm() <= 1.0 + 1e-5);
    }

    #[test]
    fn two_clear_groups_in_english() {
        let texts = [
            "what is the exchange rate for euros",
            "which exchange rate do you use",
            "exchange rate to dollars today",
            "how good is your exchange rate",
            "can I pay with bitcoin",
            "do you accept bitcoin payments",
            "bitcoin payment possible?",
            "paying in bitcoin",
        ];
        let g = groups(&texts);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert!(g.iter().all(|grp| grp.len() == 4), "{g:#?}");
        assert!(g.iter().any(|grp| grp.iter().all(|t| t.contains("exchange"))), "{g:#?}");
    }

    #[test]
    fn two_clear_groups_in_chinese() {
        let texts = [
            "汇率是怎么算的",
            "今天美元汇率多少",
            "你们的汇率是多少",
            "欧元汇率怎么算",
            "可以用比特币付款吗",
            "支持比特币支付吗",
            "比特币能付款吗",
            "怎么用比特币付",
        ];
        let g = groups(&texts);
        assert_eq!(g.len(), 2, "{g:#?}");
        assert!(g.iter().any(|grp| grp.len() == 4 && grp.iter().all(|t| t.contains("汇率"))), "{g:#?}");
        assert!(g.iter().any(|grp| grp.len() == 4 && grp.iter().all(|t| t.contains("比特币"))), "{g:#?}");
    }

    #[test]
    fn unrelated_messages_stay_alone() {
        let texts = ["exchange rate for euros", "exchange rate today", "my cat is orange", "weather in paris", "bitcoin"];
        let g = groups(&texts);
        assert_eq!(g.len(), 4, "{g:#?}");
        assert!(g.contains(&vec!["exchange rate for euros".to_string(), "exchange rate today".to_string()]), "{g:#?}");
    }

    #[test]
    fn weights_count_and_members_are_ordered_by_closeness() {
        let texts = ["exchange rate euros", "exchange rate dollars", "exchange rate", "rate of exchange for my euros please"];
        let (_, vecs) = Vectorizer::fit(&texts, VecConfig::default());
        let c = cluster(&vecs, &[5, 1, 2, 1], &ClusterConfig { threshold: 0.1, ..ClusterConfig::default() });
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!(c[0].size, 9);
        assert!(c[0].closeness.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(c[0].members.len(), 4);
    }

    #[test]
    fn average_linkage_matches_brute_force() {
        // Random-ish vectors: the chain's result equals a naive "merge the closest pair" loop.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        let vecs: Vec<SparseVec> = (0..40)
            .map(|_| {
                let mut f: Vec<(u32, f32)> = (0..4).map(|_| (next() % 12, 1.0 + (next() % 3) as f32)).collect();
                f.sort_by_key(|x| x.0);
                f.dedup_by_key(|x| x.0);
                SparseVec(f).unit()
            })
            .collect();
        let sizes = vec![1.0; vecs.len()];
        for threshold in [0.2f32, 0.4, 0.6] {
            let fast = average_linkage(&vecs, &sizes, threshold);
            // Naive: repeatedly merge the pair with the highest mean pairwise similarity.
            let mut cl: Vec<Vec<usize>> = (0..vecs.len()).map(|i| vec![i]).collect();
            loop {
                let mut best: Option<(usize, usize, f32)> = None;
                for a in 0..cl.len() {
                    for b in a + 1..cl.len() {
                        let mut s = 0.0f32;
                        for &i in &cl[a] {
                            for &j in &cl[b] {
                                s += vecs[i].dot(&vecs[j]);
                            }
                        }
                        let s = s / (cl[a].len() * cl[b].len()) as f32;
                        if best.is_none_or(|(_, _, bs)| s > bs) {
                            best = Some((a, b, s));
                        }
                    }
                }
                match best {
                    Some((a, b, s)) if s >= threshold => {
                        let moved = cl.remove(b);
                        cl[a].extend(moved);
                    }
                    _ => break,
                }
            }
            let mut slow: Vec<Vec<usize>> = cl
                .into_iter()
                .map(|mut m| {
                    m.sort_unstable();
                    m
                })
                .collect();
            slow.sort_by_key(|m| m[0]);
            assert_eq!(fast, slow, "threshold {threshold}");
        }
    }

    #[test]
    fn the_leader_pass_keeps_groups_apart() {
        // More distinct messages than the exact limit: two topics, each in many variants.
        let mut texts: Vec<String> = Vec::new();
        for i in 0..(EXACT_LIMIT / 2 + 50) {
            // Distinct texts (numbers are no features) in a few wordings.
            texts.push(format!("exchange rate for {i} {}", ["euros", "dollars", "pounds"][i % 3]));
            texts.push(format!("can I pay {i} in bitcoin {}", ["wallet", "coins", "crypto"][i % 3]));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (_, vecs) = Vectorizer::fit(&refs, VecConfig::default());
        let c = cluster(&vecs, &vec![1; refs.len()], &ClusterConfig::default());
        assert_eq!(c.len(), 2, "{:?}", c.iter().map(|c| c.size).collect::<Vec<_>>());
        for g in &c {
            let topic = |i: usize| refs[i].contains("bitcoin");
            assert!(g.members.iter().all(|&i| topic(i) == topic(g.members[0])));
        }
    }
}
