//! Spelling correction of out-of-vocabulary words against the training vocabulary.
//!
//! A symmetric-delete index (every vocabulary word and every word with one character removed)
//! finds, in a handful of hash look-ups, the vocabulary words within one edit (insertion,
//! deletion, substitution or swap of neighbours) of a misspelled word; `strsim`'s optimal string
//! alignment distance confirms the candidate and the most frequent one wins.

use std::collections::HashMap;

use super::features::{IdentityBuild, hash_str};

/// Words shorter than this (in characters) are never corrected: too many real words are one edit
/// apart from each other.
pub(crate) const MIN_CORRECT_LEN: usize = 4;

/// The vocabulary of training words with a one-edit symmetric-delete index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Speller {
    words: Vec<String>,
    freq: Vec<u32>,
    ids: HashMap<u64, u32, IdentityBuild>,
    deletes: HashMap<u64, Vec<u32>, IdentityBuild>,
}

impl Speller {
    /// Builds the index from `(word, frequency)` pairs in a deterministic order.
    pub(crate) fn build<'a>(words: impl IntoIterator<Item = (&'a str, u32)>) -> Speller {
        let mut sp = Speller::default();
        for (w, f) in words {
            let h = hash_str(w);
            if let Some(&id) = sp.ids.get(&h) {
                sp.freq[id as usize] = sp.freq[id as usize].saturating_add(f);
                continue;
            }
            let id = sp.words.len() as u32;
            sp.words.push(w.to_string());
            sp.freq.push(f);
            sp.ids.insert(h, id);
            if w.chars().count() >= MIN_CORRECT_LEN - 1 {
                for_each_delete(w, |d| {
                    let list = sp.deletes.entry(hash_str(d)).or_default();
                    if list.last() != Some(&id) {
                        list.push(id);
                    }
                });
            }
        }
        sp
    }

    /// True when `word` is in the vocabulary.
    pub(crate) fn contains(&self, word: &str) -> bool {
        self.ids.contains_key(&hash_str(word))
    }

    /// Number of distinct words.
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    /// Approximate heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        let words: usize = self.words.iter().map(|w| w.capacity() + 24).sum();
        let dels: usize = self.deletes.values().map(|v| v.capacity() * 4 + 24 + 8).sum();
        words + self.freq.capacity() * 4 + self.ids.capacity() * 12 + dels
    }

    /// The most frequent vocabulary word within one edit of `word`, if `word` itself is unknown,
    /// long enough and purely alphabetic. Ties go to the word seen first in training.
    pub(crate) fn correct(&self, word: &str) -> Option<&str> {
        let n = word.chars().count();
        if n < MIN_CORRECT_LEN || !word.chars().all(char::is_alphabetic) || self.contains(word) {
            return None;
        }
        let mut best: Option<u32> = None;
        let consider = |id: u32, best: &mut Option<u32>| {
            let better = match *best {
                None => true,
                Some(b) => {
                    let (fi, fb) = (self.freq[id as usize], self.freq[b as usize]);
                    fi > fb || (fi == fb && id < b)
                }
            };
            if better && strsim::osa_distance(word, &self.words[id as usize]) <= 1 {
                *best = Some(id);
            }
        };
        // `word` lost a character: it is a delete of some vocabulary word.
        if let Some(list) = self.deletes.get(&hash_str(word)) {
            for &id in list {
                consider(id, &mut best);
            }
        }
        for_each_delete(word, |d| {
            let h = hash_str(d);
            // `word` gained a character.
            if let Some(&id) = self.ids.get(&h) {
                consider(id, &mut best);
            }
            // Substitution or swap: both share a delete.
            if let Some(list) = self.deletes.get(&h) {
                for &id in list {
                    consider(id, &mut best);
                }
            }
        });
        best.map(|id| self.words[id as usize].as_str())
    }
}

/// Calls `f` with every distinct string obtained by removing one character of `word`.
fn for_each_delete(word: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::with_capacity(word.len());
    let mut prev: Option<char> = None;
    for (i, c) in word.char_indices() {
        // Removing either of two equal neighbours gives the same string.
        if prev == Some(c) {
            continue;
        }
        prev = Some(c);
        buf.clear();
        buf.push_str(&word[..i]);
        buf.push_str(&word[i + c.len_utf8()..]);
        f(&buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Speller {
        Speller::build([("card", 5), ("transfer", 3), ("cart", 1), ("refund", 2), ("arrived", 2)])
    }

    #[test]
    fn corrects_single_edits() {
        let s = sp();
        assert_eq!(s.correct("trnasfer"), Some("transfer")); // swap
        assert_eq!(s.correct("trasfer"), Some("transfer")); // drop
        assert_eq!(s.correct("transferr"), Some("transfer")); // double
        assert_eq!(s.correct("refumd"), Some("refund")); // neighbour key
        assert_eq!(s.correct("arived"), Some("arrived"));
        assert_eq!(s.correct("carx"), Some("card")); // more frequent than "cart"
    }

    #[test]
    fn leaves_known_short_and_far_words() {
        let s = sp();
        assert_eq!(s.correct("card"), None);
        assert_eq!(s.correct("crd"), None);
        assert_eq!(s.correct("banana"), None);
        assert_eq!(s.correct("tranzfre"), None);
        assert_eq!(s.correct("12345"), None);
        assert_eq!(s.correct(""), None);
    }
}
