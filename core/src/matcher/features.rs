//! Sparse TF-IDF features of a message: tokens, token n-grams and character n-grams.
//!
//! Normalised text is split into tokens: runs of letters and digits (Latin words) and single Han
//! characters (Chinese has no spaces, so every ideograph is a token and token bigrams/trigrams are
//! Chinese words and phrases). Features are token unigrams and bigrams (and trigrams inside Han
//! runs) in the *word* group and character 2–4-grams of each padded Latin word in the *char*
//! group. Each feature is a 64-bit hash; the vocabulary maps hashes seen in training to dense ids.
//! Values are sublinear TF times smoothed IDF, each group L2-normalised and weighted. The ids of
//! each training word's own features (its unigram and character n-grams) are kept per word, so a
//! known word costs one lookup rather than one per n-gram.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::lang::is_han;
use super::normalize::normalize;
use super::spell::Speller;

/// A hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Builds [`IdentityHasher`]s.
pub(crate) type IdentityBuild = BuildHasherDefault<IdentityHasher>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn fnv_byte(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

#[inline]
fn fnv_char(mut h: u64, c: char) -> u64 {
    let mut buf = [0u8; 4];
    for &b in c.encode_utf8(&mut buf).as_bytes() {
        h = fnv_byte(h, b);
    }
    h
}

/// Final avalanche so that the low bits used by hash tables are well mixed.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit hash of a string.
pub(crate) fn hash_str(s: &str) -> u64 {
    mix(s.bytes().fold(FNV_OFFSET, fnv_byte))
}

/// Feature kinds, hashed in as a prefix so that equal strings of different kinds differ.
const KIND_UNI: u8 = 1;
const KIND_BI: u8 = 2;
const KIND_TRI: u8 = 3;
const KIND_CHAR: u8 = 4;

/// Feature groups, normalised separately.
pub(crate) const GROUP_WORD: u8 = 0;
pub(crate) const GROUP_CHAR: u8 = 1;

/// A token of normalised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) text: String,
    pub(crate) han: bool,
}

/// Splits normalised text into Latin words (letters and digits) and single Han characters
/// (traditional and simplified variants folded together); everything else separates tokens.
pub(crate) fn tokenize(norm: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in norm.chars() {
        if is_han(c) {
            if !cur.is_empty() {
                out.push(Token { text: std::mem::take(&mut cur), han: false });
            }
            out.push(Token { text: super::hanzi::fold(c).to_string(), han: true });
        } else if c.is_alphanumeric() {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(Token { text: std::mem::take(&mut cur), han: false });
        }
    }
    if !cur.is_empty() {
        out.push(Token { text: cur, han: false });
    }
    out
}

/// Tunable shape of the features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatConfig {
    pub char_min: usize,
    pub char_max: usize,
    pub word_bigrams: bool,
    pub han_trigrams: bool,
    pub word_weight: f32,
    pub char_weight: f32,
}

impl Default for FeatConfig {
    fn default() -> Self {
        FeatConfig { char_min: 2, char_max: 4, word_bigrams: true, han_trigrams: true, word_weight: 1.0, char_weight: 1.0 }
    }
}

/// Calls `f(hash, group)` for every feature occurrence of the tokens: each token's unigram, the
/// bigram (and Han trigram) starting at it, and its character n-grams.
pub(crate) fn for_each_feature(cfg: &FeatConfig, toks: &[Token], mut f: impl FnMut(u64, u8)) {
    let mut chars: Vec<char> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        f(unigram(t), GROUP_WORD);
        for_each_pair_feature(cfg, toks, i, &mut f);
        for_each_char_feature(cfg, t, &mut chars, &mut f);
    }
}

#[inline]
fn kind(k: u8) -> u64 {
    fnv_byte(FNV_OFFSET, k)
}

/// The hash of a token's unigram feature.
#[inline]
fn unigram(t: &Token) -> u64 {
    mix(t.text.bytes().fold(kind(KIND_UNI), fnv_byte))
}

/// The features that span tokens and start at token `i`: its bigram with the next token and,
/// inside a run of Han characters, its trigram.
fn for_each_pair_feature(cfg: &FeatConfig, toks: &[Token], i: usize, mut f: impl FnMut(u64, u8)) {
    let Some(t) = toks.get(i) else { return };
    if cfg.word_bigrams
        && let Some(n) = toks.get(i + 1)
    {
        let h = t.text.bytes().fold(kind(KIND_BI), fnv_byte);
        let h = n.text.bytes().fold(fnv_byte(h, b' '), fnv_byte);
        f(mix(h), GROUP_WORD);
    }
    if cfg.han_trigrams
        && t.han
        && let (Some(a), Some(b)) = (toks.get(i + 1), toks.get(i + 2))
        && a.han
        && b.han
    {
        let h = t.text.bytes().fold(kind(KIND_TRI), fnv_byte);
        let h = a.text.bytes().fold(h, fnv_byte);
        let h = b.text.bytes().fold(h, fnv_byte);
        f(mix(h), GROUP_WORD);
    }
}

/// The character n-grams of a Latin token padded with spaces (`chars` is scratch space).
fn for_each_char_feature(cfg: &FeatConfig, t: &Token, chars: &mut Vec<char>, mut f: impl FnMut(u64, u8)) {
    if t.han || cfg.char_max < cfg.char_min || cfg.char_min == 0 {
        return;
    }
    chars.clear();
    chars.push(' ');
    chars.extend(t.text.chars());
    chars.push(' ');
    for s in 0..chars.len() {
        let mut h = kind(KIND_CHAR);
        for (n, &c) in chars[s..].iter().take(cfg.char_max).enumerate() {
            h = fnv_char(h, c);
            if n + 1 >= cfg.char_min {
                f(mix(h), GROUP_CHAR);
            }
        }
    }
}

/// Appends the vocabulary ids of a token's own features (unigram and character n-grams).
fn own_features(cfg: &FeatConfig, vocab: &HashMap<u64, u32, IdentityBuild>, t: &Token, chars: &mut Vec<char>, ids: &mut Vec<u32>) {
    let mut push = |h: u64, _: u8| {
        if let Some(&id) = vocab.get(&h) {
            ids.push(id);
        }
    };
    push(unigram(t), GROUP_WORD);
    for_each_char_feature(cfg, t, chars, push);
}

/// A sparse feature vector: `(feature id, value)` sorted by id.
pub(crate) type SparseVec = Vec<(u32, f32)>;

/// Vocabulary, IDF weights and spelling correction learnt from training texts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Featurizer {
    pub(crate) cfg: FeatConfig,
    vocab: HashMap<u64, u32, IdentityBuild>,
    idf: Vec<f32>,
    group: Vec<u8>,
    speller: Speller,
    /// Every Latin token seen in training, by [`hash_str`], to the range of `token_feats` that
    /// holds the ids of its own features (unigram and character n-grams): a known word costs one
    /// lookup instead of one per n-gram.
    token_cache: HashMap<u64, (u32, u32), IdentityBuild>,
    token_feats: Vec<u32>,
}

impl Featurizer {
    /// Learns the vocabulary from tokenised training texts (every feature seen at least once).
    pub(crate) fn fit(cfg: FeatConfig, docs: &[Vec<Token>]) -> Featurizer {
        let mut vocab: HashMap<u64, u32, IdentityBuild> = HashMap::default();
        let mut df: Vec<u32> = Vec::new();
        let mut group: Vec<u8> = Vec::new();
        let mut last_doc: Vec<u32> = Vec::new();
        let mut words: Vec<(String, u32)> = Vec::new();
        let mut word_ids: HashMap<u64, usize, IdentityBuild> = HashMap::default();
        for (d, toks) in docs.iter().enumerate() {
            let d = d as u32;
            for_each_feature(&cfg, toks, |h, g| {
                let id = *vocab.entry(h).or_insert_with(|| {
                    df.push(0);
                    group.push(g);
                    last_doc.push(u32::MAX);
                    (df.len() - 1) as u32
                });
                let id = id as usize;
                if last_doc[id] != d {
                    last_doc[id] = d;
                    df[id] += 1;
                }
            });
            for t in toks.iter().filter(|t| !t.han && t.text.chars().all(char::is_alphabetic)) {
                let h = hash_str(&t.text);
                let i = *word_ids.entry(h).or_insert_with(|| {
                    words.push((t.text.clone(), 0));
                    words.len() - 1
                });
                words[i].1 += 1;
            }
        }
        let n = docs.len() as f32;
        let idf = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        let speller = Speller::build(words.iter().map(|(w, f)| (w.as_str(), *f)));
        let mut feat = Featurizer { cfg, vocab, idf, group, speller, ..Featurizer::default() };
        let mut chars = Vec::new();
        for t in docs.iter().flatten().filter(|t| !t.han) {
            let h = hash_str(&t.text);
            if feat.token_cache.contains_key(&h) {
                continue;
            }
            let a = feat.token_feats.len() as u32;
            own_features(&feat.cfg, &feat.vocab, t, &mut chars, &mut feat.token_feats);
            feat.token_cache.insert(h, (a, feat.token_feats.len() as u32));
        }
        feat
    }

    /// Number of features in the vocabulary.
    pub(crate) fn dim(&self) -> usize {
        self.idf.len()
    }

    /// Number of words known to the spelling corrector.
    pub(crate) fn words(&self) -> usize {
        self.speller.len()
    }

    /// Approximate heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.vocab.capacity() * 13
            + self.idf.capacity() * 4
            + self.group.capacity()
            + self.speller.heap_bytes()
            + self.token_cache.capacity() * 17
            + self.token_feats.capacity() * 4
    }

    /// Tokenises a message, replacing unknown words by their spelling correction.
    pub(crate) fn tokens_corrected(&self, text: &str) -> Vec<Token> {
        let mut toks = tokenize(&normalize(text));
        for t in toks.iter_mut().filter(|t| !t.han) {
            if let Some(c) = self.speller.correct(&t.text) {
                t.text = c.to_string();
            }
        }
        toks
    }

    /// The TF-IDF vector of tokens (unknown features dropped).
    pub(crate) fn vectorize(&self, toks: &[Token]) -> SparseVec {
        let mut ids: Vec<u32> = Vec::with_capacity(64 + toks.len() * 24);
        let mut chars = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let cached = if t.han { None } else { self.token_cache.get(&hash_str(&t.text)) };
            match cached {
                Some(&(a, b)) => ids.extend_from_slice(&self.token_feats[a as usize..b as usize]),
                None => own_features(&self.cfg, &self.vocab, t, &mut chars, &mut ids),
            }
            for_each_pair_feature(&self.cfg, toks, i, |h, _| {
                if let Some(&id) = self.vocab.get(&h) {
                    ids.push(id);
                }
            });
        }
        ids.sort_unstable();
        let mut v: SparseVec = Vec::with_capacity(ids.len());
        let mut norms = [0f32; 2];
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let mut j = i + 1;
            while j < ids.len() && ids[j] == id {
                j += 1;
            }
            let tf = (j - i) as f32;
            let val = (1.0 + tf.ln()) * self.idf[id as usize];
            norms[usize::from(self.group[id as usize] & 1)] += val * val;
            v.push((id, val));
            i = j;
        }
        let scale = [
            if norms[0] > 0.0 { self.cfg.word_weight / norms[0].sqrt() } else { 0.0 },
            if norms[1] > 0.0 { self.cfg.char_weight / norms[1].sqrt() } else { 0.0 },
        ];
        for (id, val) in v.iter_mut() {
            *val *= scale[usize::from(self.group[*id as usize] & 1)];
        }
        v
    }

    /// Normalise, tokenise, correct and vectorise a message.
    pub(crate) fn features(&self, text: &str) -> SparseVec {
        self.vectorize(&self.tokens_corrected(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_mixed_scripts() {
        let t = tokenize(&normalize("我的Card丢了, can't pay 2x"));
        let texts: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        let f = |c: char| super::super::hanzi::fold(c).to_string();
        assert_eq!(texts, [f('我'), f('的'), "card".into(), f('丢'), f('了'), "can".into(), "t".into(), "pay".into(), "2x".into()]);
        assert!(t[0].han && !t[2].han);
    }

    #[test]
    fn cached_word_features_are_the_features_of_the_word() {
        let docs: Vec<Vec<Token>> =
            ["my card is lost", "where is my new card", "卡丢了怎么办", "card 2x top-up"].iter().map(|s| tokenize(s)).collect();
        let f = Featurizer::fit(FeatConfig::default(), &docs);
        for text in ["my card is lost", "lost card unknownword 2x", "my 卡 is lost", "top up", ""] {
            let toks = tokenize(text);
            let mut want: Vec<u32> = Vec::new();
            for_each_feature(&f.cfg, &toks, |h, _| want.extend(f.vocab.get(&h)));
            want.sort_unstable();
            want.dedup();
            let got: Vec<u32> = f.vectorize(&toks).iter().map(|&(id, _)| id).collect();
            assert_eq!(got, want, "{text}");
        }
        assert!(f.token_cache.len() >= 9, "every Latin training token is cached");
    }

    #[test]
    fn vectors_are_normalised_per_group() {
        let docs: Vec<Vec<Token>> = ["my card is lost", "卡丢了怎么办"].iter().map(|s| tokenize(s)).collect();
        let f = Featurizer::fit(FeatConfig::default(), &docs);
        let v = f.features("My CARD is lost!!");
        let norm: f32 = v.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 2.0).abs() < 1e-4, "{norm}");
        let z = f.features("卡丢了");
        assert!(!z.is_empty());
        assert!(f.features("").is_empty());
        assert!(f.features("🙂🙂").is_empty());
    }
}
