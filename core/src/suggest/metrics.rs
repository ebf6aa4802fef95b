//! How well groups match known labels: adjusted Rand index, purity and coverage.

use std::collections::HashMap;
use std::hash::Hash;

fn pairs(n: u64) -> f64 {
    (n as f64) * (n.saturating_sub(1) as f64) / 2.0
}

/// The adjusted Rand index of two labellings of the same items (Hubert and Arabie, 1985): 1 for
/// the same partition, about 0 for a random one, negative below chance. As scikit-learn's
/// `adjusted_rand_score`, two partitions that are both a single group, or both all singletons,
/// score 1. Items beyond the shorter slice are ignored.
pub fn adjusted_rand_index<A: Eq + Hash, B: Eq + Hash>(truth: &[A], predicted: &[B]) -> f64 {
    let n = truth.len().min(predicted.len());
    if n < 2 {
        return 1.0;
    }
    let mut cells: HashMap<(&A, &B), u64> = HashMap::new();
    let mut rows: HashMap<&A, u64> = HashMap::new();
    let mut cols: HashMap<&B, u64> = HashMap::new();
    for (a, b) in truth.iter().zip(predicted).take(n) {
        *cells.entry((a, b)).or_default() += 1;
        *rows.entry(a).or_default() += 1;
        *cols.entry(b).or_default() += 1;
    }
    let index: f64 = cells.values().map(|&c| pairs(c)).sum();
    let sum_rows: f64 = rows.values().map(|&c| pairs(c)).sum();
    let sum_cols: f64 = cols.values().map(|&c| pairs(c)).sum();
    let expected = sum_rows * sum_cols / pairs(n as u64);
    let max = (sum_rows + sum_cols) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Purity of the groups that count (`counted[g]` for group `g`): the share of their items that
/// carry their group's most frequent true label. 0 when no item is in a counted group.
pub fn purity<A: Eq + Hash, B: Eq + Hash>(truth: &[A], predicted: &[B], counted: impl Fn(&B) -> bool) -> f64 {
    let mut per_group: HashMap<&B, HashMap<&A, u64>> = HashMap::new();
    for (a, b) in truth.iter().zip(predicted) {
        if counted(b) {
            *per_group.entry(b).or_default().entry(a).or_default() += 1;
        }
    }
    let total: u64 = per_group.values().flat_map(|m| m.values()).sum();
    if total == 0 {
        return 0.0;
    }
    let majority: u64 = per_group.values().map(|m| m.values().copied().max().unwrap_or(0)).sum();
    majority as f64 / total as f64
}

/// The share of items in groups that count.
pub fn coverage<B>(predicted: &[B], counted: impl Fn(&B) -> bool) -> f64 {
    if predicted.is_empty() {
        return 0.0;
    }
    predicted.iter().filter(|b| counted(b)).count() as f64 / predicted.len() as f64
}

/// How a grouping of labelled messages scores.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Score {
    /// Messages grouped.
    pub messages: usize,
    /// Groups of at least the minimum size.
    pub groups: usize,
    /// Adjusted Rand index over all messages, each message of a smaller group a group of its own.
    pub ari: f64,
    /// Purity of the groups of at least the minimum size.
    pub purity: f64,
    /// The share of messages in groups of at least the minimum size.
    pub coverage: f64,
}

/// Scores `assigned` (a group id per message) against `labels`: groups holding fewer than
/// `min_size` messages are left out of purity and coverage and count as singletons in the ARI.
pub fn score<A: Eq + Hash>(labels: &[A], assigned: &[usize], min_size: usize) -> Score {
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for &g in assigned {
        *sizes.entry(g).or_default() += 1;
    }
    let kept = |g: &usize| sizes.get(g).is_some_and(|&n| n >= min_size.max(1));
    // Messages of small groups: each its own group (ids past every real one).
    let top = assigned.iter().copied().max().unwrap_or(0) + 1;
    let predicted: Vec<usize> = assigned.iter().enumerate().map(|(i, g)| if kept(g) { *g } else { top + i }).collect();
    Score {
        messages: assigned.len(),
        groups: sizes.iter().filter(|(g, _)| kept(g)).count(),
        ari: adjusted_rand_index(labels, &predicted),
        purity: purity(labels, assigned, kept),
        coverage: coverage(assigned, kept),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn ari_known_values() {
        // scikit-learn's documented examples of adjusted_rand_score.
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 1]), 1.0));
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0), "label names do not matter");
        assert!(close(adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]), 0.571_428_571_428_571_4));
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]), 0.571_428_571_428_571_4));
        assert!(close(adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0));
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]), -0.5));
        // Worked by hand: truth {a,a,a,b,b,b}, predicted {x,x,y,y,y,y}: index 1+3 = 4 agreeing
        // pairs, expected 6·7/15 = 2.8, max 6.5: (4 - 2.8) / (6.5 - 2.8) = 0.324324…
        let ari = adjusted_rand_index(&["a", "a", "a", "b", "b", "b"], &["x", "x", "y", "y", "y", "y"]);
        assert!(close(ari, 1.2 / 3.7), "{ari}");
        // Degenerate cases score 1, as in scikit-learn.
        assert!(close(adjusted_rand_index(&[1, 1, 1], &[2, 2, 2]), 1.0));
        assert!(close(adjusted_rand_index(&[1, 2, 3], &[4, 5, 6]), 1.0));
        assert!(close(adjusted_rand_index::<u8, u8>(&[], &[]), 1.0));
    }

    #[test]
    fn a_score_leaves_small_groups_out() {
        // Two groups of three, one pair (below the minimum of 3).
        let labels = ["a", "a", "a", "b", "b", "b", "c", "c"];
        let s = score(&labels, &[0, 0, 0, 1, 1, 1, 2, 2], 3);
        assert_eq!((s.messages, s.groups), (8, 2));
        assert!(close(s.purity, 1.0) && close(s.coverage, 0.75));
        // The pair counts as two singletons: c's pair is missed, so ARI < 1.
        assert!(close(s.ari, adjusted_rand_index(&labels, &[0, 0, 0, 1, 1, 1, 5, 6])));
        assert!(s.ari < 1.0);
        assert!(close(score(&labels, &[0, 0, 0, 1, 1, 1, 2, 2], 2).ari, 1.0));
    }

    #[test]
    fn purity_and_coverage() {
        let truth = ["a", "a", "a", "b", "b", "c"];
        let pred = [1, 1, 2, 2, 2, 3];
        let big = |g: &i32| *g != 3;
        // Group 1: a,a (2 of 2); group 2: a,b,b (2 of 3); group 3 (not counted): c.
        assert!(close(purity(&truth, &pred, big), 4.0 / 5.0));
        assert!(close(coverage(&pred, big), 5.0 / 6.0));
        assert!(close(purity(&truth, &pred, |_| false), 0.0));
        assert!(close(coverage::<i32>(&[], |_| true), 0.0));
    }
}
