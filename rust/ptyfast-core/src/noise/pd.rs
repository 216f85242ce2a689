//! Exact Poisson sampling for `λ ≥ 10` by Ahrens and Dieter's method PD ("Computer generation
//! of Poisson deviates from modified normal distributions", ACM TOMS 8, 1982), with every
//! acceptance test evaluated from exact probabilities. This is the large-rate sampler planned
//! for a faster stream (issue 11); no stream uses it yet.
//!
//! **The method.** Write `μ = λ`, `s = √μ`, `p_k` the Poisson probabilities and `q_k =
//! P(k ≤ μ + sT < k + 1)` (`T` standard normal) the probability of the normal cell `[k, k + 1)`.
//!
//! 1. *Normal step.* Draw `T` (exact ziggurat) and a uniform `U`; `G = μ + sT`. If `G ≥ 0`,
//!    `K = ⌊G⌋` is accepted with probability `min(1, p_K / q_K)`:
//!    * at once when `K ≥ L = ⌊μ − 1.1484⌋`, where `p_K ≥ q_K`;
//!    * by the squeeze `6μ²·U ≥ (μ − K)³`, which implies the next test;
//!    * else when `(1 − U)·q_K ≤ p_K`.
//!
//!    So the normal step yields `k` with probability `min(p_k, q_k)`.
//! 2. *Residual step*, when the normal step rejects (also for `G < 0`): repeat until accepted:
//!    `E ~ Exp(1)`, `V` uniform on `[−1, 1)`, `T = 1.8 + E·sign(V)` (a double exponential
//!    around 1.8, `sign(0) = +`); if `T > −0.6744`, `K = ⌊μ + sT⌋` is accepted when
//!    `c·|V| ≤ e^E·(p_K − q_K)` with `c = 0.1069/μ`. It yields `k` with probability
//!    proportional to `max(p_k − q_k, 0)`, whose total is the rejection probability of step 1,
//!    so `K ~ Poisson(μ)` exactly.
//!
//! The constants are PD's. The inequalities the method needs, for `μ ≥ 10`: `p_k ≥ q_k` for
//! `k ≥ L` (near the centre `p_k/q_k − 1 ≈ 1/(12μ)`); `(1 − (μ − k)³/(6μ²))·q_k ≤ p_k` for
//! `k < L`; `p_k ≤ q_k` for every cell reaching below `T = −0.6744`; and `e^{|T − 1.8|}·(p_k −
//! q_k) ≤ c` (the hat). PD's paper proves them for its approximations of `p_k` and `q_k`; the
//! tests check them for the exact values over a grid of `μ`.
//!
//! PD's own steps P, Q, E, F evaluate `p_k` and `q_k` by truncated series. Here `ln(p_k/q_k)` is
//! formed without cancellation ([`Pd::ln_ratio`]): near the centre as a sum of terms that are
//! each small and accurate to a few ulps of themselves (Loader's deviance split off its
//! quadratic part, Stirling's remainder, and the Taylor series of the normal cell), so the
//! tests decide correctly except when a uniform falls within ~1e-16 of a boundary, as in the
//! other samplers of this module.
//!
//! **Randomness.** [`Pd::sample`] takes 64-bit words from `next`: `w0` for the first
//! ziggurat try of `T`, `w1` for `U` (`unit(w1)`), then the words a rejected ziggurat try
//! needs, then two per residual round (`E = −ln(1 − unit(w))`, `V = 2·unit(w') − 1`).

use super::poisson::{ln_pmf, stirlerr, HALF_LN_2PI, LN_FACT};
use super::rng::unit;
use crate::normal::{ziggurat, ziggurat_from};

/// Smallest rate PD's constants are valid for.
pub const PD_MIN_RATE: f64 = 10.0;

/// `L = ⌊μ − A_L⌋` is the first count accepted without a test.
const A_L: f64 = 1.1484;
/// The residual step's double exponential is centred here (in units of `s`)…
const T_MID: f64 = 1.8;
/// … and cut below here.
const T_CUT: f64 = -0.6744;
/// `c = C_HAT / μ` bounds the residual under the hat.
const C_HAT: f64 = 0.1069;
/// The residual step gives up after this many rounds (never reached for a valid rate: a round
/// accepts with probability ≳ 0.1) and returns NaN rather than loop on garbage.
const MAX_ROUNDS: u32 = 100_000;

/// PD's constants for one rate `μ ≥ 10`.
#[derive(Clone, Copy, Debug)]
pub struct Pd {
    mu: f64,
    s: f64,
    /// `⌊μ − 1.1484⌋`.
    big_l: f64,
    /// `6μ²`.
    d6: f64,
    /// `0.1069 / μ`.
    c: f64,
}

impl Pd {
    /// The sampler of `Poisson(mu)`, for a finite `mu ≥ PD_MIN_RATE` (callers check).
    pub fn new(mu: f64) -> Self {
        Pd {
            mu,
            s: mu.sqrt(),
            big_l: (mu - A_L).floor(),
            d6: 6.0 * mu * mu,
            c: C_HAT / mu,
        }
    }

    /// One exact sample, an integer-valued `f64`, from the words `next` gives (module docs).
    pub fn sample(&self, next: &mut impl FnMut() -> u64) -> f64 {
        let (w0, w1) = (next(), next());
        let t = ziggurat_from(w0, next, ziggurat());
        let u = unit(w1);
        match self.normal_step(t, u) {
            (k, true) => k,
            (k, false) => self.settle(k, u, next),
        }
    }

    /// Step 1 up to the squeeze, from `T` and `U`: `(K, accepted)`. `K` is negative when
    /// `G < 0` (then it is not accepted).
    #[inline(always)]
    pub(super) fn normal_step(&self, t: f64, u: f64) -> (f64, bool) {
        let g = self.mu + self.s * t;
        let k = g.floor();
        let d = self.mu - k;
        let accept = k >= self.big_l || (k >= 0.0 && self.d6 * u >= d * d * d);
        (k, accept)
    }

    /// The rest of a sample whose normal step was not accepted by [`Self::normal_step`]:
    /// the exact test of step 1, then the residual step.
    pub(super) fn settle(&self, k: f64, u: f64, next: &mut impl FnMut() -> u64) -> f64 {
        if k >= 0.0 && 1.0 - u <= self.ln_ratio(k).0.exp() {
            return k;
        }
        for _ in 0..MAX_ROUNDS {
            let e = -(1.0 - unit(next())).ln();
            let v = 2.0 * unit(next()) - 1.0;
            let t = if v >= 0.0 { T_MID + e } else { T_MID - e };
            if t <= T_CUT {
                continue;
            }
            let k = (self.mu + self.s * t).floor();
            if self.c * v.abs() <= self.scaled_excess(k, e) {
                return k;
            }
        }
        f64::NAN
    }

    /// `e^E·(p_k − q_k)`, accurate relative to the larger of the two terms.
    fn scaled_excess(&self, k: f64, e: f64) -> f64 {
        let (ln_r, ln_q) = self.ln_ratio(k);
        if ln_r > 0.0 {
            (e + ln_q + ln_r).exp() * -(-ln_r).exp_m1()
        } else {
            (e + ln_q).exp() * ln_r.exp_m1()
        }
    }

    /// `(ln(p_k/q_k), ln q_k)` for a count `k ≥ 0`.
    ///
    /// With `x = k − μ`, `v = x/μ`, the cell's centre `t = (x + ½)/s` and half-width `h =
    /// 1/(2s)`: `ln q_k = −ln s − ½ln 2π − t²/2 + ln S(h, t)` ([`ln_cell_factor`]). Within
    /// `|v| < ¼` (and `k ≥ 1`), Loader's `ln p_k = −½ln(2πk) − stirlerr(k) − bd0` with `bd0 =
    /// x²/(2μ) + μ·D(v)` gives
    /// `ln(p_k/q_k) = −½(ln(1 + v) − v) + 1/(8μ) − stirlerr(k) − μ·D(v) − ln S`,
    /// every term small and accurate; farther out, `ln p_k − ln q_k` directly, whose terms are
    /// then large and far apart.
    pub(super) fn ln_ratio(&self, k: f64) -> (f64, f64) {
        let (mu, s) = (self.mu, self.s);
        let x = k - mu;
        let v = x / mu;
        let t = (x + 0.5) / s;
        let ln_s = ln_cell_factor(0.5 / s, t);
        let ln_q = -s.ln() - HALF_LN_2PI - 0.5 * t * t + ln_s;
        let ln_r = if k >= 1.0 && v.abs() < 0.25 {
            -0.5 * (v.ln_1p() - v) + 0.125 / mu - stirlerr_any(k) - mu * deviance_tail(v) - ln_s
        } else {
            ln_pmf(k, mu, x) - ln_q
        };
        (ln_r, ln_q)
    }
}

/// `ln k! − [(k + ½) ln k − k + ½ ln 2π]` for an integer `k ≥ 1`.
fn stirlerr_any(k: f64) -> f64 {
    match LN_FACT.get(k as usize) {
        Some(&lf) if k < 16.0 => lf - ((k + 0.5) * k.ln() - k + HALF_LN_2PI),
        _ => stirlerr(k),
    }
}

/// `D(v) = (1 + v)ln(1 + v) − v − v²/2 = Σ_{n≥3} (−1)ⁿ vⁿ/(n(n − 1))` for `|v| < ¼`, by its
/// series (terms past `n = 40` are below 1e-24 of the first).
fn deviance_tail(v: f64) -> f64 {
    let mut sum = 0.0;
    for n in (3..=40u32).rev() {
        let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
        sum = sum * v + sign / f64::from(n * (n - 1));
    }
    sum * v * v * v
}

/// `ln S` where `∫_{t−h}^{t+h} φ = 2h·φ(t)·S` (`φ` the standard normal density):
/// `S = Σ_{n≥0} h^{2n} He_{2n}(t)/(2n + 1)!` (Taylor expansion of `φ` about `t`, with `He` the
/// probabilists' Hermite polynomials), summed until the terms no longer matter. The series is
/// entire; for the `h ≤ 0.16` and `|t| ≲ 40` met here it converges within ~40 terms.
fn ln_cell_factor(h: f64, t: f64) -> f64 {
    let h2 = h * h;
    let (mut he_prev, mut he) = (1.0f64, t); // He_{j−1}, He_j
    let mut coef = 1.0; // h^{2n}/(2n + 1)!
    let mut sum = 0.0; // S − 1
    for n in 1..=60u32 {
        // Two steps of He_{j+1} = t·He_j − j·He_{j−1}, from j = 2n − 1.
        let j = f64::from(2 * n - 1);
        let next = t * he - j * he_prev;
        (he_prev, he) = (next, t * next - (j + 1.0) * he);
        // he_prev = He_{2n}, he = He_{2n+1}.
        coef *= h2 / (f64::from(2 * n) * f64::from(2 * n + 1));
        let term = coef * he_prev;
        sum += term;
        if f64::from(n) > h * t.abs() + 2.0 && term.abs() <= 1e-18 * (1.0 + sum).abs() {
            break;
        }
    }
    sum.ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::PatternRng;

    /// `ln P(X = k)` with `ln k!` summed term by term (accurate to ~1e-13 for the `k` here).
    fn ln_pmf_naive(k: f64, mu: f64) -> f64 {
        let ln_fact: f64 = (2..=k as u64).map(|i| (i as f64).ln()).sum();
        k * mu.ln() - mu - ln_fact
    }

    /// `q_k` by composite Simpson integration of the normal density over the cell.
    fn cell_simpson(k: f64, mu: f64) -> f64 {
        let s = mu.sqrt();
        let (a, b) = ((k - mu) / s, (k + 1.0 - mu) / s);
        let n = 2000;
        let hh = (b - a) / f64::from(n);
        let f = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mut acc = f(a) + f(b);
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            acc += w * f(a + f64::from(i) * hh);
        }
        acc * hh / 3.0
    }

    #[test]
    fn ln_ratio_matches_direct_computation() {
        for mu in [10.0, 10.5, 17.25, 33.3, 100.0, 1000.0, 4321.5] {
            let pd = Pd::new(mu);
            let s = f64::sqrt(mu);
            let lo = (mu - 9.0 * s).max(0.0).floor();
            let mut k = lo;
            while k <= mu + 12.0 * s {
                let (ln_r, ln_q) = pd.ln_ratio(k);
                let q = cell_simpson(k, mu);
                let want_q = q.ln();
                let want_r = ln_pmf_naive(k, mu) - want_q;
                // Simpson's sum is good to ~1e-14; the naive log-probability cancels down from
                // ~k·ln μ + μ: allow its rounding, not ours.
                let tol_q = 1e-13 * (1.0 + want_q.abs());
                let tol_r = tol_q + 4e-15 * (2.0 * k * mu.ln() + mu);
                assert!(
                    (ln_q - want_q).abs() < tol_q,
                    "μ={mu} k={k}: ln q {ln_q} vs {want_q}"
                );
                assert!(
                    (ln_r - want_r).abs() < tol_r,
                    "μ={mu} k={k}: ln r {ln_r} vs {want_r}"
                );
                k += 1.0;
            }
        }
    }

    #[test]
    fn ln_ratio_is_continuous_across_its_two_forms() {
        // At |v| = ¼ both forms apply; they must agree to far below the decisions' scale.
        for mu in [10.0, 64.0, 1e3, 1e5, 1e7] {
            let pd = Pd::new(mu);
            for k in [(0.75 * mu).ceil(), (1.25 * mu).floor() - 1.0] {
                let near = pd.ln_ratio(k).0;
                let x = k - mu;
                let (ln_r_direct, _) = {
                    let s = pd.s;
                    let t = (x + 0.5) / s;
                    let ln_q = -s.ln() - HALF_LN_2PI - 0.5 * t * t + ln_cell_factor(0.5 / s, t);
                    (ln_pmf(k, mu, x) - ln_q, ln_q)
                };
                let tol = 1e-12 * (1.0 + near.abs());
                assert!(
                    (near - ln_r_direct).abs() < tol,
                    "μ={mu} k={k}: {near} vs {ln_r_direct}"
                );
            }
        }
    }

    #[test]
    fn centre_ratio_is_one_plus_one_twelfth_over_mu() {
        // The asymptotic p_k/q_k − 1 ≈ 1/(12μ) at k ≈ μ: a check of the cancellation-free form
        // where a naive difference of logarithms would have no correct digit.
        for mu in [1e6, 1e9, 1e12] {
            let pd = Pd::new(mu);
            let r = pd.ln_ratio(mu.floor()).0 * mu;
            assert!((r - 1.0 / 12.0).abs() < 1e-3, "μ={mu}: μ·ln r = {r}");
        }
    }

    /// The four inequalities the method needs (module docs), for the exact `p_k`, `q_k`.
    #[test]
    fn pd_inequalities_hold_for_exact_probabilities() {
        let mut mus: Vec<f64> = (0..=540).map(|i| 10.0 + f64::from(i) * 0.1).collect();
        mus.extend((0..=120).map(|i| 64.0 * 10f64.powf(f64::from(i) / 20.0)));
        for mu in mus {
            let pd = Pd::new(mu);
            let s = pd.s;
            let lo = (mu - 12.0 * s).max(0.0).floor();
            let mut k = lo;
            let mut worst_hat: f64 = 0.0;
            while k <= mu + 40.0 * s {
                let (ln_r, ln_q) = pd.ln_ratio(k);
                let (a, b) = ((k - mu) / s, (k + 1.0 - mu) / s);
                if k >= pd.big_l {
                    assert!(
                        ln_r >= 0.0,
                        "immediate acceptance: μ={mu} k={k} ln r={ln_r}"
                    );
                } else {
                    let x = (mu - k).powi(3) / pd.d6;
                    if x < 1.0 {
                        // (1 − x)·q ≤ p.
                        assert!((-x).ln_1p() <= ln_r, "squeeze: μ={mu} k={k}");
                    }
                }
                if a <= T_CUT {
                    assert!(ln_r <= 0.0, "cut: μ={mu} k={k} ln r={ln_r}");
                }
                if b > T_CUT && ln_r > 0.0 {
                    let lo_t = a.max(T_CUT);
                    let far = (lo_t - T_MID).abs().max((b - T_MID).abs());
                    let excess = (far + ln_q + ln_r).exp() * -(-ln_r).exp_m1();
                    worst_hat = worst_hat.max(excess / pd.c);
                }
                k += 1.0;
            }
            assert!(worst_hat <= 1.0, "hat: μ={mu}: {worst_hat}");
        }
    }

    fn words(seed: u64) -> impl FnMut() -> u64 {
        let mut r = PatternRng::new(seed, 0);
        move || r.next_u64()
    }

    /// Pearson χ² of `counts` (observations of k = 0, 1, …) against `expect`, merging bins
    /// left to right until each expects ≥ 5. Returns `(χ², dof)`.
    fn chi2(counts: &[f64], expect: &[f64]) -> (f64, usize) {
        let mut bins: Vec<(f64, f64)> = Vec::new();
        let (mut o, mut e) = (0.0, 0.0);
        for (&c, &x) in counts.iter().zip(expect) {
            o += c;
            e += x;
            if e >= 5.0 {
                bins.push((o, e));
                (o, e) = (0.0, 0.0);
            }
        }
        if let Some(last) = bins.last_mut() {
            last.0 += o;
            last.1 += e;
        }
        let chi2 = bins.iter().map(|(o, e)| (o - e).powi(2) / e).sum();
        (chi2, bins.len() - 1)
    }

    /// Wilson–Hilferty χ² quantile with upper tail 1e-4.
    fn chi2_crit(dof: usize) -> f64 {
        let d = dof as f64;
        let h = 2.0 / (9.0 * d);
        d * (1.0 - h + 3.719 * h.sqrt()).powi(3)
    }

    /// Counts of `n` samples over `[lo, hi]` (outside: the end bins), and the exact expectation.
    fn histogram(
        mu: f64,
        n: usize,
        mut draw: impl FnMut() -> f64,
        weight: impl Fn(f64) -> f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let s = mu.sqrt();
        let lo = (mu - 7.0 * s).max(0.0).floor();
        let hi = (mu + 8.0 * s).ceil();
        let bins = (hi - lo) as usize + 1;
        let mut counts = vec![0.0; bins];
        for _ in 0..n {
            let k = draw();
            assert!(k >= 0.0 && k == k.floor(), "μ={mu}: sample {k}");
            let i = ((k.clamp(lo, hi) - lo) as usize).min(bins - 1);
            counts[i] += 1.0;
        }
        let w: Vec<f64> = (0..bins).map(|i| weight(lo + i as f64)).collect();
        let total: f64 = w.iter().sum();
        let expect = w.iter().map(|x| x / total * n as f64).collect();
        (counts, expect)
    }

    #[test]
    fn samples_follow_the_poisson_law() {
        for (i, mu) in [10.0, 10.5, 13.7, 31.9, 32.0, 100.0, 1e3, 1e5, 1e7]
            .into_iter()
            .enumerate()
        {
            let pd = Pd::new(mu);
            let mut next = words(100 + i as u64);
            let n = 300_000;
            let (counts, expect) = histogram(
                mu,
                n,
                || pd.sample(&mut next),
                |k| ln_pmf(k, mu, k - mu).exp(),
            );
            let (c, dof) = chi2(&counts, &expect);
            assert!(c < chi2_crit(dof), "μ={mu}: χ²={c} dof={dof}");
        }
    }

    /// The residual step alone must give `max(p_k − q_k, 0)`, normalised: the whole-law test
    /// above sees it only through the few per cent of samples that reach it.
    #[test]
    fn residual_step_follows_the_excess() {
        for (i, mu) in [10.0, 23.4, 1e3, 1e6].into_iter().enumerate() {
            let pd = Pd::new(mu);
            let mut next = words(200 + i as u64);
            let n = 200_000;
            // K = −1 (G < 0) goes straight to the residual step.
            let (counts, expect) = histogram(
                mu,
                n,
                || pd.settle(-1.0, 0.0, &mut next),
                |k| {
                    let (ln_r, ln_q) = pd.ln_ratio(k);
                    (ln_q.exp() * ln_r.exp_m1()).max(0.0)
                },
            );
            let (c, dof) = chi2(&counts, &expect);
            assert!(c < chi2_crit(dof), "μ={mu}: χ²={c} dof={dof}");
        }
    }

    #[test]
    fn normal_step_accepts_min_of_p_and_q() {
        // The fraction of samples settled by step 1 is Σ min(p_k, q_k).
        for (i, mu) in [10.0, 40.0, 1e4].into_iter().enumerate() {
            let pd = Pd::new(mu);
            let mut next = words(300 + i as u64);
            let zig = ziggurat();
            let n = 400_000;
            let mut accepted = 0usize;
            for _ in 0..n {
                let (w0, w1) = (next(), next());
                let t = ziggurat_from(w0, &mut next, zig);
                let u = unit(w1);
                let (k, fast) = pd.normal_step(t, u);
                let exact = k >= 0.0 && 1.0 - u <= pd.ln_ratio(k).0.exp();
                assert!(
                    !fast || exact,
                    "μ={mu}: squeeze accepted k={k} u={u}, exact test not"
                );
                accepted += usize::from(fast || exact);
            }
            let s = mu.sqrt();
            let mut want = 0.0;
            let mut k = (mu - 12.0 * s).max(0.0).floor();
            while k <= mu + 12.0 * s {
                let (ln_r, ln_q) = pd.ln_ratio(k);
                want += ln_q.exp() * ln_r.min(0.0).exp();
                k += 1.0;
            }
            let got = accepted as f64 / n as f64;
            let sd = (want * (1.0 - want) / n as f64).sqrt();
            assert!(
                (got - want).abs() < 5.0 * sd,
                "μ={mu}: {got} vs {want} ± {sd}"
            );
        }
    }
}
