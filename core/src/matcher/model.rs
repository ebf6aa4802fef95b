//! The scorer: sparse per-label weights stored feature-major, and calibrated probabilities.
//!
//! Scoring a message touches only the weights of the message's own features (a CSR row per
//! feature listing `(label, weight)`), so its cost does not grow with the number of labels beyond
//! the final softmax. Confidences are a softmax over the labels' logits plus a constant "none of
//! these" logit, so that a message with no evidence for any label gets low confidence everywhere.

use super::features::SparseVec;

/// Training knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Initial learning rate (decays linearly to zero).
    pub lr: f32,
    /// L2 regularisation strength.
    pub l2: f32,
    /// Labels whose gradient is smaller than this are not updated for an example.
    pub grad_eps: f32,
    /// Trained weights smaller than this in magnitude are dropped.
    pub prune: f32,
    /// Seed of the example order.
    pub seed: u64,
    /// Let every feature carry a weight for every label (otherwise only for labels whose examples
    /// contain the feature).
    pub full_support: bool,
    /// Multiplies the logits before the softmax (inverse temperature).
    pub scale: f32,
    /// Logit of the implicit "none of these" outcome, before scaling.
    pub null_logit: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            epochs: 10,
            lr: 1.0,
            l2: 1e-5,
            grad_eps: 1e-3,
            prune: 1e-4,
            seed: 42,
            full_support: false,
            scale: 1.0,
            null_logit: 0.0,
        }
    }
}

/// Sparse feature-major weights with per-label bias.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    n_classes: usize,
    /// `offsets[f]..offsets[f + 1]` indexes `cls`/`w` for feature `f`.
    offsets: Vec<u32>,
    cls: Vec<u32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    scale: f32,
    null_logit: f32,
}

/// A tiny deterministic generator for the example order.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// In-place softmax; returns nothing useful for empty input.
fn softmax(z: &mut [f32]) {
    let max = z.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    let mut sum = 0.0;
    for s in z.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    if sum > 0.0 && sum.is_finite() {
        for s in z.iter_mut() {
            *s /= sum;
        }
    }
}

impl Model {
    /// Trains multinomial logistic regression by SGD on TF-IDF vectors `xs` with labels `y` in
    /// `0..n_classes`. Weights live only on supported `(feature, label)` pairs, stored
    /// feature-major; labels whose gradient is negligible for an example are skipped.
    pub(crate) fn train(
        xs: &[SparseVec],
        y: &[u32],
        n_classes: usize,
        dim: usize,
        cfg: &ModelConfig,
    ) -> Model {
        let mut pairs: Vec<(u32, u32, f32)> = Vec::new();
        if cfg.full_support {
            for f in 0..dim as u32 {
                pairs.extend((0..n_classes as u32).map(|c| (f, c, 0.0)));
            }
        } else {
            for (x, &c) in xs.iter().zip(y) {
                pairs.extend(x.iter().map(|&(f, _)| (f, c, 0.0)));
            }
        }
        let support = Model::from_entries(merge_triplets(pairs), n_classes, dim, vec![0.0; n_classes], 1.0, 0.0);
        let Model { offsets, cls, w: mut v, mut bias, .. } = support;
        let mut s = 1.0f32;
        let n = xs.len().min(y.len());
        let total = (cfg.epochs * n).max(1) as f32;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix(cfg.seed);
        let mut p = vec![0f32; n_classes];
        let mut touched: Vec<(u32, u32, f32)> = Vec::new();
        let mut t = 0usize;
        for _ in 0..cfg.epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let lr = cfg.lr * (1.0 - t as f32 / total).max(0.0) + 1e-4;
                t += 1;
                p.copy_from_slice(&bias);
                touched.clear();
                for &(f, x) in &xs[i] {
                    let (a, b) = (offsets[f as usize] as usize, offsets[f as usize + 1] as usize);
                    for j in a..b {
                        let c = cls[j];
                        p[c as usize] += s * v[j] * x;
                        touched.push((j as u32, c, x));
                    }
                }
                softmax(&mut p);
                let yi = y[i] as usize;
                p[yi] -= 1.0;
                for (bc, &g) in bias.iter_mut().zip(&p) {
                    *bc -= lr * g;
                }
                let step = lr / s;
                for &(j, c, x) in &touched {
                    let g = p[c as usize];
                    if g.abs() > cfg.grad_eps {
                        v[j as usize] -= step * g * x;
                    }
                }
                s *= 1.0 - lr * cfg.l2;
                if s < 1e-3 {
                    for w in v.iter_mut() {
                        *w *= s;
                    }
                    s = 1.0;
                }
            }
        }
        let mut entries: Vec<(u32, u32, f32)> = Vec::with_capacity(v.len());
        for f in 0..dim {
            let (a, b) = (offsets[f] as usize, offsets[f + 1] as usize);
            for j in a..b {
                let w = v[j] * s;
                if w.abs() >= cfg.prune {
                    entries.push((f as u32, cls[j], w));
                }
            }
        }
        Model::from_entries(entries, n_classes, dim, bias, cfg.scale, cfg.null_logit)
    }

    /// Builds the CSR layout from `(feature, class, weight)` entries sorted by feature then class.
    fn from_entries(
        entries: Vec<(u32, u32, f32)>,
        n_classes: usize,
        dim: usize,
        bias: Vec<f32>,
        scale: f32,
        null_logit: f32,
    ) -> Model {
        let mut offsets = vec![0u32; dim + 1];
        for &(f, _, _) in &entries {
            if let Some(o) = offsets.get_mut(f as usize + 1) {
                *o += 1;
            }
        }
        for i in 0..dim {
            offsets[i + 1] += offsets[i];
        }
        let cls = entries.iter().map(|e| e.1).collect();
        let w = entries.iter().map(|e| e.2).collect();
        Model { n_classes, offsets, cls, w, bias, scale, null_logit }
    }

    /// Number of stored weights.
    pub(crate) fn nnz(&self) -> usize {
        self.w.len()
    }

    /// Approximate heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.offsets.capacity() + self.cls.capacity() + self.w.capacity() + self.bias.capacity())
            * 4
    }

    /// Raw linear scores of every label.
    fn logits(&self, x: &SparseVec) -> Vec<f32> {
        let mut z = self.bias.clone();
        z.resize(self.n_classes, 0.0);
        for &(f, v) in x {
            let f = f as usize;
            let (Some(&a), Some(&b)) = (self.offsets.get(f), self.offsets.get(f + 1)) else {
                continue;
            };
            let (a, b) = (a as usize, b as usize);
            for (&c, &w) in self.cls[a..b].iter().zip(&self.w[a..b]) {
                if let Some(s) = z.get_mut(c as usize) {
                    *s += v * w;
                }
            }
        }
        z
    }

    /// The `k` most probable labels with their probabilities, highest first, ties by label id.
    pub(crate) fn top_k(&self, x: &SparseVec, k: usize) -> Vec<(u32, f32)> {
        if self.n_classes == 0 || k == 0 {
            return Vec::new();
        }
        let z = self.logits(x);
        let null = self.null_logit * self.scale;
        let max = z.iter().fold(null, |m, &s| m.max(s * self.scale));
        let mut sum = (null - max).exp();
        for &s in &z {
            sum += (s * self.scale - max).exp();
        }
        let order = top_indices(&z, k);
        order
            .into_iter()
            .map(|c| {
                let p = (z[c as usize] * self.scale - max).exp() / sum;
                (c, if p.is_finite() { p } else { 0.0 })
            })
            .collect()
    }
}

/// Indices of the `k` largest values, descending, ties by lower index.
fn top_indices(z: &[f32], k: usize) -> Vec<u32> {
    let k = k.min(z.len());
    let better = |a: (u32, f32), b: (u32, f32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &s) in z.iter().enumerate() {
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        let cand = (i as u32, s);
        if best.len() == k {
            match best.last() {
                Some(&last) if better(cand, last) => {
                    best.pop();
                }
                _ => continue,
            }
        }
        let pos = best.iter().position(|&b| better(cand, b)).unwrap_or(best.len());
        best.insert(pos, cand);
    }
    best.into_iter().map(|(i, _)| i).collect()
}

/// Sorts `(feature, class, value)` triplets and sums duplicates.
fn merge_triplets(mut trip: Vec<(u32, u32, f32)>) -> Vec<(u32, u32, f32)> {
    trip.sort_unstable_by_key(|&(f, c, _)| (f, c));
    let mut out: Vec<(u32, u32, f32)> = Vec::with_capacity(trip.len() / 2);
    for (f, c, v) in trip {
        match out.last_mut() {
            Some(last) if last.0 == f && last.1 == c => last.2 += v,
            _ => out.push((f, c, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_indices_orders_and_breaks_ties() {
        assert_eq!(top_indices(&[0.1, 0.5, 0.5, f32::NAN, 0.9], 3), vec![4, 1, 2]);
        assert_eq!(top_indices(&[1.0], 5), vec![0]);
        assert!(top_indices(&[], 2).is_empty());
    }
}
