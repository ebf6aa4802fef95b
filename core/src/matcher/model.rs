//! The scorer: multinomial logistic regression over sparse TF-IDF features, trained by SGD
//! (deterministic example order, linearly decaying learning rate, L2, additive margin), plus a
//! small share of a multinomial naive Bayes log-likelihood over the same features, with weights
//! stored feature-major and calibrated probabilities.
//!
//! The naive Bayes part is a different kind of model (generative: how often each label's examples
//! use a feature) and errs on different messages than the discriminative one, so their sum beats
//! either; it adds little scoring time, because its log-probabilities are folded into the
//! same weight matrix (one weight per feature and label it was seen with) plus one number per
//! label times the message's feature mass.
//!
//! During training a feature seen with many labels has a dense row (one weight per label, added
//! with a vectorisable loop) and a feature seen with few labels a sparse list of `(label, weight)`;
//! when the whole matrix is small (up to a million weights, such as a pack of a dozen labels)
//! every row is dense, so every feature can also vote *against* labels (on Banking77's 77 labels,
//! dense rows only for features seen with at least 5 % of the labels score as well and train
//! faster). The passes run through `pulp`'s run-time dispatch, so the row loops use AVX2 where the
//! CPU has it (with the same arithmetic, so the same model). After training every row is centred
//! on its median (a part all labels share, kept as one number per feature) and small deviations
//! are pruned, at most `max_row` per feature, so scoring a message touches only a few weights per
//! feature even with thousands of labels. Confidences are a softmax over the labels' logits plus a
//! "none of these" logit, set relative to how far training examples rise above a featureless
//! message, so that a message with little evidence for any label gets low confidence everywhere
//! whatever the size of the pack.

use super::features::SparseVec;

/// Training knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Fewer passes for large packs: at most this many example updates in all (but at least
    /// two passes).
    pub max_steps: usize,
    /// More passes for small packs: at least this many example updates in all.
    pub min_steps: usize,
    /// Initial learning rate (decays linearly).
    pub lr: f32,
    /// L2 regularisation strength.
    pub l2: f32,
    /// Sparse weights of labels whose gradient is smaller than this are not updated.
    pub grad_eps: f32,
    /// Trained weights whose typical contribution to a logit (weight times the feature's mean
    /// value where it occurs) is smaller than this are dropped, after centring.
    pub prune: f32,
    /// At most this many labels keep a weight for one feature (the largest after centring), which
    /// bounds the cost of a feature when there are thousands of labels.
    pub max_row: usize,
    /// Seed of the example order.
    pub seed: u64,
    /// If features × labels is at most this, every feature gets a dense row.
    pub dense_budget: usize,
    /// Otherwise a feature gets a dense row when it occurs with at least this share of labels.
    pub dense_share: f32,
    /// Additive margin: during training the true label's logit is lowered by this much, which
    /// pushes for a margin as a support vector machine does.
    pub margin: f32,
    /// Multiplies the logits before the softmax (inverse temperature).
    pub scale: f32,
    /// Logit of the implicit "none of these" outcome above the mean label bias (the logit of a
    /// message without any known feature), as a share of the typical lift of a training example's
    /// true label over that, before scaling.
    pub null_logit: f32,
    /// Weight of the multinomial naive Bayes log-likelihood added to the logits (0 disables it).
    pub nb_weight: f32,
    /// Additive smoothing of the naive Bayes feature probabilities.
    pub nb_alpha: f32,
    /// Whether the naive Bayes part includes the label priors.
    pub nb_prior: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            epochs: 10,
            max_steps: 400_000,
            min_steps: 50_000,
            lr: 1.0,
            l2: 1e-5,
            grad_eps: 1e-3,
            prune: 0.003,
            max_row: 32,
            seed: 42,
            dense_budget: 1 << 20,
            dense_share: 0.05,
            margin: 2.0,
            scale: 0.9,
            null_logit: 0.5,
            nb_weight: 0.05,
            nb_alpha: 0.01,
            nb_prior: true,
        }
    }
}

const NO_ROW: u32 = u32::MAX;

/// Feature-major weights: dense rows for features seen with many labels, sparse lists otherwise.
#[derive(Debug, Clone, Default)]
struct Weights {
    n_classes: usize,
    /// Dense row of each feature, or `NO_ROW`.
    row: Vec<u32>,
    /// Weight every label has for the feature besides the stored ones (rows are centred before
    /// pruning, so only weights that differ from the centre are kept).
    center: Vec<f32>,
    /// `rows × n_classes` weights.
    dense: Vec<f32>,
    /// `sp_off[f]..sp_off[f + 1]` indexes `sp_cls`/`sp_w` for feature `f`.
    sp_off: Vec<u32>,
    sp_cls: Vec<u32>,
    sp_w: Vec<f32>,
}

#[inline(always)]
fn axpy(z: &mut [f32], a: f32, row: &[f32]) {
    for (s, &w) in z.iter_mut().zip(row) {
        *s += a * w;
    }
}

impl Weights {
    /// `z += mul * W'^T x` where `W'` is `W` without the centres; returns `mul * centre^T x`,
    /// the part every label shares.
    #[inline]
    fn accumulate(&self, x: &SparseVec, mul: f32, z: &mut [f32]) -> f32 {
        let c = self.n_classes;
        let mut shared = 0.0;
        for &(f, v) in x {
            let f = f as usize;
            let Some(&r) = self.row.get(f) else { continue };
            shared += mul * v * self.center.get(f).copied().unwrap_or(0.0);
            if r != NO_ROW {
                let a = r as usize * c;
                if let Some(row) = self.dense.get(a..a + c) {
                    axpy(z, mul * v, row);
                }
            } else {
                let (a, b) = (self.sp_off[f] as usize, self.sp_off[f + 1] as usize);
                for (&k, &w) in self.sp_cls[a..b].iter().zip(&self.sp_w[a..b]) {
                    if let Some(s) = z.get_mut(k as usize) {
                        *s += mul * v * w;
                    }
                }
            }
        }
        shared
    }

    fn nnz(&self) -> usize {
        self.dense.len() + self.sp_w.len()
    }

    fn heap_bytes(&self) -> usize {
        (self.row.capacity()
            + self.center.capacity()
            + self.dense.capacity()
            + self.sp_off.capacity()
            + self.sp_cls.capacity()
            + self.sp_w.capacity())
            * 4
    }
}

/// Trained weights, biases and calibration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    weights: Weights,
    bias: Vec<f32>,
    scale: f32,
    null_logit: f32,
    /// Per-label weight of a message's total feature mass (the naive Bayes normaliser).
    mass: Vec<f32>,
    /// The CPU's widest SIMD instruction set, detected once when training rather than per message.
    arch: pulp::Arch,
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

/// In-place softmax.
#[inline(always)]
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

/// The SGD passes of [`Model::train`], as an operation [`pulp`] runs with the best instruction set
/// of the CPU (everything it calls is inlined into it).
struct Sgd<'a> {
    xs: &'a [SparseVec],
    y: &'a [u32],
    n: usize,
    c_n: usize,
    epochs: usize,
    cfg: &'a ModelConfig,
    w: &'a mut Weights,
    bias: &'a mut [f32],
    /// Scale of all weights (L2 decay is applied to it rather than to every weight).
    s: &'a mut f32,
}

impl pulp::WithSimd for Sgd<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Sgd { xs, y, n, c_n, epochs, cfg, w, bias, s: scale } = self;
        let mut s = *scale;
        let total = (epochs * n).max(1) as f32;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix(cfg.seed);
        let mut p = vec![0f32; c_n];
        let mut touched: Vec<(u32, u32, f32)> = Vec::new();
        let mut dense_rows: Vec<(u32, f32)> = Vec::new();
        let mut active: Vec<(usize, f32)> = Vec::new();
        let mut t = 0usize;
        for _ in 0..epochs {
            rng.shuffle(&mut order);
            for &i in &order {
                let lr = cfg.lr * (1.0 - t as f32 / total).max(0.0) + 1e-4;
                t += 1;
                p.copy_from_slice(bias);
                touched.clear();
                dense_rows.clear();
                for &(f, x) in &xs[i] {
                    let r = w.row[f as usize];
                    if r != NO_ROW {
                        let a = r as usize * c_n;
                        axpy(&mut p, s * x, &w.dense[a..a + c_n]);
                        dense_rows.push((r, x));
                    } else {
                        let (a, b) = (w.sp_off[f as usize] as usize, w.sp_off[f as usize + 1] as usize);
                        for j in a..b {
                            let c = w.sp_cls[j];
                            p[c as usize] += s * w.sp_w[j] * x;
                            touched.push((j as u32, c, x));
                        }
                    }
                }
                p[y[i] as usize] -= cfg.margin;
                softmax(&mut p);
                p[y[i] as usize] -= 1.0;
                for (bc, &g) in bias.iter_mut().zip(&p) {
                    *bc -= lr * g;
                }
                let step = lr / s;
                // Most labels' gradients are negligible once training is under way: update only
                // the others, unless they are many.
                active.clear();
                active.extend((0..c_n).filter(|&c| p[c].abs() > cfg.grad_eps).map(|c| (c, p[c])));
                if active.len() * 4 > c_n {
                    for &(r, x) in &dense_rows {
                        let a = r as usize * c_n;
                        axpy(&mut w.dense[a..a + c_n], -step * x, &p);
                    }
                } else {
                    for &(r, x) in &dense_rows {
                        let row = &mut w.dense[r as usize * c_n..(r as usize + 1) * c_n];
                        for &(c, g) in &active {
                            row[c] -= step * x * g;
                        }
                    }
                }
                for &(j, c, x) in &touched {
                    let g = p[c as usize];
                    if g.abs() > cfg.grad_eps {
                        w.sp_w[j as usize] -= step * g * x;
                    }
                }
                s *= 1.0 - lr * cfg.l2;
                if s < 1e-3 {
                    w.dense.iter_mut().chain(w.sp_w.iter_mut()).for_each(|v| *v *= s);
                    s = 1.0;
                }
            }
        }
        *scale = s;
    }
}

impl Model {
    /// Trains multinomial logistic regression by SGD on TF-IDF vectors `xs` with labels `y` in
    /// `0..n_classes`, deterministically.
    pub(crate) fn train(xs: &[SparseVec], y: &[u32], n_classes: usize, dim: usize, cfg: &ModelConfig) -> Model {
        let c_n = n_classes;
        let n = xs.len().min(y.len());
        // Which labels each feature occurs with.
        let pairs = feature_label_sums(&xs[..n], &y[..n], dim, c_n);
        let mut count = vec![0u32; dim];
        for &(f, _, _) in &pairs {
            if let Some(k) = count.get_mut(f as usize) {
                *k += 1;
            }
        }
        let all_dense = dim.saturating_mul(c_n) <= cfg.dense_budget;
        let min_share = (cfg.dense_share * c_n as f32).ceil().max(2.0) as u32;
        let mut w =
            Weights { n_classes: c_n, row: vec![NO_ROW; dim], center: vec![0.0; dim], sp_off: vec![0; dim + 1], ..Weights::default() };
        let mut rows = 0u32;
        for (f, &k) in count.iter().enumerate() {
            if all_dense || k >= min_share {
                w.row[f] = rows;
                rows += 1;
            }
        }
        w.dense = vec![0.0; rows as usize * c_n];
        for &(f, c, _) in &pairs {
            if w.row[f as usize] == NO_ROW {
                w.sp_off[f as usize + 1] += 1;
                w.sp_cls.push(c);
            }
        }
        for f in 0..dim {
            w.sp_off[f + 1] += w.sp_off[f];
        }
        w.sp_w = vec![0.0; w.sp_cls.len()];

        let mut bias = vec![0f32; c_n];
        let mut s = 1.0f32;
        let epochs = cfg.epochs.min(cfg.max_steps / n.max(1)).max(2.min(cfg.epochs)).max(cfg.min_steps.div_ceil(n.max(1)));
        // The passes run in a version compiled for the widest SIMD instructions this CPU has
        // (detected at run time), so that the row updates are vectorised as far as it allows.
        let arch = pulp::Arch::new();
        arch.dispatch(Sgd { xs, y, n, c_n, epochs, cfg, w: &mut w, bias: &mut bias, s: &mut s });
        w.dense.iter_mut().chain(w.sp_w.iter_mut()).for_each(|v| *v *= s);
        // Naive Bayes: label c's log-likelihood of x is Σ_f x_f ln((N_cf + α) / (N_c + αV)) with
        // N_cf the summed value of feature f in c's examples and N_c = Σ_f N_cf. Split as
        // Σ_f x_f ln(1 + N_cf / α) (non-zero only where f was seen with c: added to those
        // weights) plus (Σ_f x_f) ln(α / (N_c + αV)) (the per-label `mass` weight).
        let mut mass = Vec::new();
        if cfg.nb_weight > 0.0 && dim > 0 {
            let (b, alpha) = (cfg.nb_weight, cfg.nb_alpha);
            let mut n_c = vec![0f32; c_n];
            let mut next_sp = w.sp_off.clone();
            for &(f, c, v) in &pairs {
                n_c[c as usize] += v;
                let add = b * (1.0 + v / alpha).ln();
                let r = w.row[f as usize];
                if r != NO_ROW {
                    w.dense[r as usize * c_n + c as usize] += add;
                } else {
                    let j = next_sp[f as usize] as usize;
                    next_sp[f as usize] += 1;
                    w.sp_w[j] += add;
                }
            }
            let v_n = dim as f32;
            // Only how labels differ matters; the part all labels share is dropped.
            mass = n_c.iter().map(|&nc| b * (alpha / (nc + alpha * v_n)).ln()).collect();
            let mean = mass.iter().sum::<f32>() / c_n.max(1) as f32;
            mass.iter_mut().for_each(|m| *m -= mean);
            if cfg.nb_prior {
                let mut cnt = vec![0f32; c_n];
                for &c in &y[..n] {
                    cnt[c as usize] += 1.0;
                }
                for (bc, k) in bias.iter_mut().zip(cnt) {
                    *bc += b * ((k + 1.0) / (n as f32 + c_n as f32)).ln();
                }
            }
        }
        // Mean value of each feature where it occurs, to judge what a weight contributes.
        let mut mean_x = vec![0f32; dim];
        let mut occ = vec![0u32; dim];
        for x in xs {
            for &(f, v) in x {
                if let (Some(m), Some(o)) = (mean_x.get_mut(f as usize), occ.get_mut(f as usize)) {
                    *m += v;
                    *o += 1;
                }
            }
        }
        for (m, &o) in mean_x.iter_mut().zip(&occ) {
            *m /= o.max(1) as f32;
        }
        let mean_bias = if c_n == 0 { 0.0 } else { bias.iter().sum::<f32>() / c_n as f32 };
        let mut model =
            Model { weights: prune(w, &mean_x, cfg.prune, cfg.max_row), bias, scale: cfg.scale, null_logit: mean_bias, mass, arch };
        // How far above a featureless message the true label's logit typically is on the training
        // examples: the unit in which the "none of these" logit is set, so that its meaning does
        // not depend on the size of the pack.
        let labelled: Vec<(&SparseVec, u32)> = xs.iter().zip(y.iter().copied()).collect();
        let mut lifts: Vec<f32> = super::par_map(&labelled, |&(x, c)| {
            let (z, shared) = model.logits(x);
            z.get(c as usize).map_or(0.0, |&v| v + shared - mean_bias)
        });
        lifts.sort_unstable_by(f32::total_cmp);
        let typical = lifts.get(lifts.len() / 2).copied().unwrap_or(0.0).max(1.0);
        model.null_logit = mean_bias + cfg.null_logit * typical;
        model
    }

    /// Labels' logits without the part they all share, and that shared part.
    fn logits(&self, x: &SparseVec) -> (Vec<f32>, f32) {
        let mut z = self.bias.clone();
        let shared = self.weights.accumulate(x, 1.0, &mut z);
        if !self.mass.is_empty() {
            let dim = self.weights.row.len();
            let m: f32 = x.iter().filter(|&&(f, _)| (f as usize) < dim).map(|&(_, v)| v).sum();
            axpy(&mut z, m, &self.mass);
        }
        (z, shared)
    }

    /// Number of stored weights.
    pub(crate) fn nnz(&self) -> usize {
        self.weights.nnz()
    }

    /// Number of dense weight rows.
    pub(crate) fn dense_rows(&self) -> usize {
        self.weights.dense.len() / self.weights.n_classes.max(1)
    }

    /// Approximate heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.weights.heap_bytes() + (self.bias.capacity() + self.mass.capacity()) * 4
    }

    /// The `k` most probable labels with their probabilities, highest first, ties by label id.
    pub(crate) fn top_k(&self, x: &SparseVec, k: usize) -> Vec<(u32, f32)> {
        if self.bias.is_empty() || k == 0 {
            return Vec::new();
        }
        let (z, shared) = self.logits(x);
        // Labels' logits are `z + shared`; compare the null outcome on the same footing.
        let null = (self.null_logit - shared) * self.scale;
        let max = z.iter().fold(null, |m, &s| m.max(s * self.scale));
        let sum = (null - max).exp() + self.arch.dispatch(ExpSum { z: &z, scale: self.scale, max });
        top_indices(&z, k)
            .into_iter()
            .map(|c| {
                let p = (z[c as usize] * self.scale - max).exp() / sum;
                (c, if p.is_finite() { p } else { 0.0 })
            })
            .collect()
    }
}

/// `Σ exp(z·scale − max)`, as an operation [`pulp`] runs with the best instruction set of the CPU:
/// with thousands of labels the exponentials are a good part of scoring a message.
struct ExpSum<'a> {
    z: &'a [f32],
    scale: f32,
    max: f32,
}

impl pulp::WithSimd for ExpSum<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> f32 {
        let ExpSum { z, scale, max } = self;
        // Eight running sums, so that the loop vectorises.
        let mut acc = [0f32; 8];
        let chunks = z.chunks_exact(8);
        let rest = chunks.remainder();
        for ch in chunks {
            for (a, &v) in acc.iter_mut().zip(ch) {
                *a += fast_exp(v * scale - max);
            }
        }
        rest.iter().map(|&v| fast_exp(v * scale - max)).sum::<f32>() + acc.iter().sum::<f32>()
    }
}

/// `e^x` to within a few parts in 10⁷ (a degree-6 polynomial on the reduced argument times a power
/// of two), written so that it vectorises; below −87 it is about 0 (also for NaN), above 88 it
/// saturates at `e^88`.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Not `clamp`: `max` turns NaN into −87 (so its term is 0) where `clamp` would keep NaN.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(88.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Centres every dense row on its median (all labels share that part, which does not change the
/// ranking), drops weights whose typical contribution (times the feature's mean value) is within
/// `tau` of the centre's, and turns rows left mostly empty into sparse lists.
fn prune(w: Weights, mean_x: &[f32], tau: f32, max_row: usize) -> Weights {
    let c_n = w.n_classes;
    let dim = w.row.len();
    let mut out =
        Weights { n_classes: c_n, row: vec![NO_ROW; dim], center: vec![0.0; dim], sp_off: vec![0; dim + 1], ..Weights::default() };
    let mut rows = 0u32;
    let mut sorted: Vec<f32> = Vec::with_capacity(c_n);
    for f in 0..dim {
        let r = w.row[f];
        let mx = mean_x.get(f).copied().unwrap_or(0.0);
        let eps = if mx > 0.0 { tau / mx } else { f32::INFINITY };
        if r != NO_ROW {
            let a = r as usize * c_n;
            let row = &w.dense[a..a + c_n];
            sorted.clear();
            sorted.extend_from_slice(row);
            sorted.sort_unstable_by(f32::total_cmp);
            let m = sorted.get(c_n / 2).copied().unwrap_or(0.0);
            out.center[f] = m;
            let eps = eps.max(kth_largest_deviation(row, m, max_row));
            let nz = row.iter().filter(|v| (*v - m).abs() >= eps).count();
            if nz * 3 > c_n {
                out.row[f] = rows;
                rows += 1;
                out.dense.extend(row.iter().map(|v| v - m));
            } else {
                for (c, &v) in row.iter().enumerate() {
                    if (v - m).abs() >= eps {
                        out.sp_cls.push(c as u32);
                        out.sp_w.push(v - m);
                    }
                }
            }
        } else {
            let (a, b) = (w.sp_off[f] as usize, w.sp_off[f + 1] as usize);
            let eps = eps.max(kth_largest_deviation(&w.sp_w[a..b], 0.0, max_row));
            for j in a..b {
                if w.sp_w[j].abs() >= eps {
                    out.sp_cls.push(w.sp_cls[j]);
                    out.sp_w.push(w.sp_w[j]);
                }
            }
        }
        out.sp_off[f + 1] = out.sp_cls.len() as u32;
    }
    out
}

/// The `k`-th largest `|v - m|` of `row` (0 when the row has at most `k` values), so that keeping
/// deviations `>=` it keeps about `k` values.
fn kth_largest_deviation(row: &[f32], m: f32, k: usize) -> f32 {
    if row.len() <= k || k == 0 {
        return 0.0;
    }
    let mut dev: Vec<f32> = row.iter().map(|v| (v - m).abs()).collect();
    let (_, kth, _) = dev.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    *kth
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

/// The summed value of every feature in every label's examples, as `(feature, label, sum)`
/// sorted by feature and then label, for the pairs that occur. Linear time: examples are bucketed
/// by feature, and each feature's labels summed in a scratch row.
fn feature_label_sums(xs: &[SparseVec], y: &[u32], dim: usize, c_n: usize) -> Vec<(u32, u32, f32)> {
    let mut start = vec![0usize; dim + 1];
    for x in xs {
        for &(f, _) in x.iter().filter(|&&(f, _)| (f as usize) < dim) {
            start[f as usize + 1] += 1;
        }
    }
    for f in 0..dim {
        start[f + 1] += start[f];
    }
    let mut next = start.clone();
    let mut by_feature = vec![(0u32, 0f32); start[dim]];
    for (x, &c) in xs.iter().zip(y) {
        for &(f, v) in x.iter().filter(|&&(f, _)| (f as usize) < dim) {
            by_feature[next[f as usize]] = (c, v);
            next[f as usize] += 1;
        }
    }
    let mut sum: Vec<Option<f32>> = vec![None; c_n];
    let mut seen: Vec<u32> = Vec::new();
    let mut out = Vec::with_capacity(by_feature.len() / 2);
    for f in 0..dim {
        for &(c, v) in &by_feature[start[f]..start[f + 1]] {
            let Some(acc) = sum.get_mut(c as usize) else { continue };
            match acc {
                Some(a) => *a += v,
                None => {
                    *acc = Some(v);
                    seen.push(c);
                }
            }
        }
        seen.sort_unstable();
        for &c in &seen {
            if let Some(v) = sum[c as usize].take() {
                out.push((f as u32, c, v));
            }
        }
        seen.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_label_sums_sum_each_pair_once_in_order() {
        let xs: Vec<SparseVec> = vec![vec![(2, 0.5), (0, 1.0)], vec![(2, 0.25)], vec![(1, 2.0), (2, 1.0), (9, 4.0)], vec![(0, 3.0)]];
        let y = [1, 1, 0, 1];
        assert_eq!(feature_label_sums(&xs, &y, 3, 2), vec![(0, 1, 4.0), (1, 0, 2.0), (2, 0, 1.0), (2, 1, 0.75)]);
        assert!(feature_label_sums(&[], &[], 3, 2).is_empty());
    }

    #[test]
    fn fast_exp_matches_exp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (fast_exp(x), x.exp());
            assert!(((got - want) / want).abs() < 1e-6, "{x}: {got} vs {want}");
            x += 0.0137;
        }
        assert!(fast_exp(f32::NAN) < 1e-37 && fast_exp(f32::NEG_INFINITY) < 1e-37);
        assert!(fast_exp(1000.0).is_finite());
        let z = [0.5f32, -3.0, 2.0, 7.5, -40.0, 1.0, 0.0, 3.3, 9.0, -1.0, 4.4];
        let want: f32 = z.iter().map(|&v| (v * 0.9 - 8.1).exp()).sum();
        let got = pulp::Arch::new().dispatch(ExpSum { z: &z, scale: 0.9, max: 8.1 });
        assert!(((got - want) / want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn top_indices_orders_and_breaks_ties() {
        assert_eq!(top_indices(&[0.1, 0.5, 0.5, f32::NAN, 0.9], 3), vec![4, 1, 2]);
        assert_eq!(top_indices(&[1.0], 5), vec![0]);
        assert!(top_indices(&[], 2).is_empty());
    }

    #[test]
    fn naive_bayes_adds_its_log_likelihood_to_the_logits() {
        // Label 0's examples carry more feature mass than label 1's; both share feature 0.
        let a: SparseVec = vec![(0, 0.5), (1, 0.6), (2, 0.6)];
        let b: SparseVec = vec![(0, 0.5), (3, 0.4)];
        let xs = vec![a.clone(), b.clone(), a, b];
        let y = [0, 1, 0, 1];
        let msg: SparseVec = vec![(0, 0.5), (3, 0.2)];
        let base = ModelConfig { prune: 0.0, nb_weight: 0.0, ..ModelConfig::default() };
        let with_nb = ModelConfig { nb_weight: 1.0, ..base };
        let gap = |cfg: &ModelConfig| {
            let (z, _) = Model::train(&xs, &y, 2, 4, cfg).logits(&msg);
            f64::from(z[1] - z[0])
        };
        // Hand-computed multinomial naive Bayes (equal priors): ln θ_cf = ln((N_cf + α) / (N_c + αV)).
        let alpha = 0.01f64;
        let n_cf = [[1.0, 1.2, 1.2, 0.0], [1.0, 0.0, 0.0, 0.8]];
        let ll = |c: usize| {
            let n_c: f64 = n_cf[c].iter().sum();
            msg.iter().map(|&(f, v)| f64::from(v) * ((n_cf[c][f as usize] + alpha) / (n_c + alpha * 4.0)).ln()).sum::<f64>()
        };
        let expected = ll(1) - ll(0);
        assert!(expected > 1.0, "the example favours label 1 under naive Bayes: {expected}");
        let added = gap(&with_nb) - gap(&base);
        assert!((added - expected).abs() < 1e-3, "naive Bayes added {added}, expected {expected}");
    }
}
