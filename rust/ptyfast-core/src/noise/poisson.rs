//! Exact Poisson sampling for one rate at a time: inversion for small rates, Hörmann's
//! transformed rejection (PTRS) with a cancellation-free log-probability for large ones.

use super::rng::PatternRng;

/// Rates below this use inversion; from here on PTRS, whose constants are valid for `λ ≥ 10`.
pub const PTRS_MIN_RATE: f64 = 10.0;

/// Inversion restarts with a fresh uniform past this count. `P(X > 100)` for `λ < 10` is below
/// 1e-60, so this only catches a uniform that falls in the rounding gap between the computed
/// cumulative sum and 1 (probability ~1e-15): restarting samples exactly conditional on not
/// landing there.
const INVERSION_CAP: u32 = 100;

/// PTRS gives up after this many rejections (never reached for a finite rate: each round
/// accepts with probability > 0.8) and returns NaN rather than loop forever on garbage input.
const PTRS_MAX_ROUNDS: u32 = 10_000;

/// `ln(k!)` for `k < 16`, correctly rounded.
const LN_FACT: [f64; 16] = [
    0.0,
    0.0,
    std::f64::consts::LN_2,
    1.791_759_469_228_055,
    3.178_053_830_347_945_8,
    4.787_491_742_782_046,
    6.579_251_212_010_101,
    8.525_161_361_065_415,
    10.604_602_902_745_25,
    12.801_827_480_081_469,
    15.104_412_573_075_516,
    17.502_307_845_873_887,
    19.987_214_495_661_885,
    22.552_163_853_123_425,
    25.191_221_182_738_68,
    27.899_271_383_840_89,
];

/// `ln(2π) / 2`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// One exact Poisson sample for `rate`, as an integer-valued `f64`.
///
/// `rate == 0` gives exactly 0 without consuming randomness. Rates below [`PTRS_MIN_RATE`] use
/// inversion by sequential search (one uniform; `exp(-λ)` is skipped when the uniform is below
/// its lower bound `1 − λ`, the common case for the faint pixels of a diffraction pattern);
/// larger rates use PTRS (two uniforms per round, ~1.1 rounds, a logarithm only in the ~15 %
/// of rounds that miss the squeeze). For rates above 2^53 the count is the exact sample rounded
/// to the nearest `f64`.
///
/// Negative, NaN or infinite rates return NaN (callers validate first).
#[inline]
pub fn poisson(rng: &mut PatternRng, rate: f64) -> f64 {
    if rate < PTRS_MIN_RATE {
        if rate > 0.0 {
            inversion(rng, rate)
        } else if rate == 0.0 {
            0.0
        } else {
            f64::NAN
        }
    } else if rate < f64::INFINITY {
        ptrs(rng, rate)
    } else {
        f64::NAN
    }
}

/// `min{k : u < F(k)}` for one uniform `u`, `F` summed term by term (`0 < λ < 10`).
#[inline]
fn inversion(rng: &mut PatternRng, lam: f64) -> f64 {
    loop {
        let u = rng.next_f64();
        // exp(-λ) ≥ 1 − λ, so u < 1 − λ already decides k = 0.
        if u < 1.0 - lam {
            return 0.0;
        }
        let mut p = (-lam).exp();
        let mut f = p;
        let mut k = 0u32;
        while u >= f {
            k += 1;
            if k > INVERSION_CAP {
                break;
            }
            p *= lam / f64::from(k);
            f += p;
        }
        if k <= INVERSION_CAP {
            return f64::from(k);
        }
    }
}

/// PTRS (W. Hörmann, "The transformed rejection method for generating Poisson random
/// variables", Insurance: Mathematics and Economics 12, 1993), `λ ≥ 10`.
///
/// The candidate `k = ⌊(2a/u_s + b)·U + λ + 0.43⌋` is formed as `⌊λ⌋ + ⌊(2a/u_s + b)·U +
/// frac(λ) + 0.43⌋` so that it is exact even where `λ` is large enough for `+ λ` to round.
#[inline]
fn ptrs(rng: &mut PatternRng, lam: f64) -> f64 {
    let slam = lam.sqrt();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    let lam_int = lam.floor();
    let lam_frac_shift = (lam - lam_int) + 0.43;
    for _ in 0..PTRS_MAX_ROUNDS {
        let u = rng.next_f64() - 0.5;
        let v = rng.next_f64();
        let us = 0.5 - u.abs();
        let j = ((2.0 * a / us + b) * u + lam_frac_shift).floor();
        if us >= 0.07 && v <= vr {
            return lam_int + j;
        }
        let k = lam_int + j;
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let log_hat = (v * inv_alpha / (a / (us * us) + b)).ln();
        // j − frac(λ) = k − λ without the rounding of k − λ at large λ.
        if log_hat <= ln_pmf(k, lam, j - (lam - lam_int)) {
            return k;
        }
    }
    f64::NAN
}

/// `ln P(X = k)` for `X ~ Poisson(λ)`, given `d = k − λ` accurately.
///
/// For `k ≥ 16` it uses Loader's saddle-point form `−stirlerr(k) − bd0(k, λ) − ln(2πk)/2`
/// (C. Loader, "Fast and accurate computation of binomial probabilities", 2000), where
/// `bd0 = k ln(k/λ) + λ − k` is summed without cancellation, so the result keeps full
/// relative accuracy for any `λ` (the naive `k ln λ − λ − lnΓ(k+1)` loses ~`ulp(λ)`).
fn ln_pmf(k: f64, lam: f64, d: f64) -> f64 {
    if k < 16.0 {
        let lf = LN_FACT.get(k as usize).copied().unwrap_or(0.0);
        return k * lam.ln() - lam - lf;
    }
    -stirlerr(k) - bd0(k, lam, d) - (HALF_LN_2PI + 0.5 * k.ln())
}

/// `ln k! − [(k + ½) ln k − k + ½ ln 2π]` for `k ≥ 16` (Stirling series; the first omitted
/// term is below 1e-16 there).
fn stirlerr(k: f64) -> f64 {
    let r = 1.0 / k;
    let r2 = r * r;
    r * (1.0 / 12.0
        - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 * (1.0 / 1188.0)))))
}

/// `k ln(k/λ) + λ − k` (≥ 0) with `d = k − λ`.
///
/// Close to `λ`, with `v = d/(k + λ)`: `k ln(k/λ) = 2k·atanh(v)` and `2kv − d = dv`, so
/// `bd0 = dv + 2k(v³/3 + v⁵/5 + …)`, every term of one sign.
fn bd0(k: f64, lam: f64, d: f64) -> f64 {
    let v = d / (k + lam);
    if v.abs() < 0.1 {
        let v2 = v * v;
        let mut term = 2.0 * k * v;
        let mut sum = d * v;
        let mut n = 1.0;
        // |v| < 0.1: each term is < 1/100 of the previous, 16 terms reach 1e-32 relative.
        for _ in 0..16 {
            term *= v2;
            n += 2.0;
            let next = sum + term / n;
            if next == sum {
                break;
            }
            sum = next;
        }
        sum
    } else {
        k * (d / lam).ln_1p() - d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive `ln P(X = k)`, `ln k!` summed term by term (fine for moderate `λ` and `k`).
    fn ln_pmf_naive(k: u64, lam: f64) -> f64 {
        let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
        k as f64 * lam.ln() - lam - ln_fact
    }

    #[test]
    fn zero_rate_is_zero_and_draws_nothing() {
        let mut r = PatternRng::new(1, 2);
        let before = r.clone();
        assert_eq!(poisson(&mut r, 0.0), 0.0);
        assert_eq!(poisson(&mut r, -0.0), 0.0);
        assert_eq!(r, before);
    }

    #[test]
    fn invalid_rates_give_nan() {
        let mut r = PatternRng::new(1, 2);
        for lam in [-1.0, -1e-300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(poisson(&mut r, lam).is_nan(), "{lam}");
        }
    }

    #[test]
    fn ln_pmf_matches_naive() {
        for &lam in &[10.0, 17.3, 100.0, 1234.5] {
            for k in [0u64, 1, 5, 15, 16, 17, 30, 90, 100, 110, 1000, 1300, 2000] {
                let kf = k as f64;
                let got = ln_pmf(kf, lam, kf - lam);
                let want = ln_pmf_naive(k, lam);
                // The naive sum of ~k logarithms cancels down from ~k·ln(λ) + λ: allow its
                // rounding, not ours.
                let tol = 4e-15 * (2.0 * kf * lam.ln() + lam).max(1.0);
                assert!((got - want).abs() < tol, "λ={lam} k={k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn ln_pmf_normalises() {
        for lam in [10.0f64, 55.5, 1e3, 1e6] {
            let s = lam.sqrt();
            let lo = (lam - 12.0 * s).max(0.0) as u64;
            let hi = (lam + 12.0 * s) as u64;
            let total: f64 = (lo..=hi)
                .map(|k| {
                    let kf = k as f64;
                    ln_pmf(kf, lam, kf - lam).exp()
                })
                .sum();
            assert!((total - 1.0).abs() < 1e-12, "λ={lam}: {total}");
        }
    }

    #[test]
    fn ln_pmf_large_rate_is_stable() {
        // At the mode of a huge rate, ln P ≈ −ln(2πλ)/2 (Stirling); naive form would be off.
        let lam = 1e15;
        let got = ln_pmf(lam, lam, 0.0);
        let want = -0.5 * (2.0 * std::f64::consts::PI * lam).ln() - 1.0 / (12.0 * lam);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    fn moments(lam: f64, n: usize, seed: u64) -> (f64, f64) {
        let mut r = PatternRng::new(seed, 0);
        let xs: Vec<f64> = (0..n).map(|_| poisson(&mut r, lam)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    #[test]
    fn mean_and_variance() {
        let n = 200_000;
        for (i, &lam) in [1e-3, 0.5, 1.0, 3.0, 9.99, 10.0, 25.0, 1e3, 1e6, 1e9, 1e12]
            .iter()
            .enumerate()
        {
            let (m, v) = moments(lam, n, 100 + i as u64);
            // Standard errors: mean sqrt(λ/n); variance ≈ sqrt((2λ² + λ)/n).
            let se_m = (lam / n as f64).sqrt();
            let se_v = ((2.0 * lam * lam + lam) / n as f64).sqrt();
            assert!((m - lam).abs() < 5.0 * se_m, "λ={lam}: mean {m}");
            assert!((v - lam).abs() < 5.0 * se_v, "λ={lam}: var {v}");
        }
    }

    #[test]
    fn samples_are_non_negative_integers() {
        let mut r = PatternRng::new(5, 5);
        for &lam in &[1e-6, 0.3, 2.0, 9.5, 10.0, 11.0, 300.0, 7e7, 3e15] {
            for _ in 0..2_000 {
                let k = poisson(&mut r, lam);
                assert!(k >= 0.0 && k == k.floor(), "λ={lam}: {k}");
            }
        }
    }

    #[test]
    fn huge_rates_stay_finite() {
        let mut r = PatternRng::new(5, 6);
        for &lam in &[1e20, 1e40, 1.1e77, 1e300] {
            let k = poisson(&mut r, lam);
            assert!(
                k.is_finite() && (k / lam - 1.0).abs() < 1e-6,
                "λ={lam}: {k}"
            );
        }
    }

    /// Pearson chi-square of `n` samples against the exact pmf, bins merged left to right until
    /// each expects ≥ 5 (the remainder joins the last bin). Returns `(χ², degrees of freedom)`.
    fn chi2(lam: f64, n: usize, seed: u64) -> (f64, usize) {
        let mut r = PatternRng::new(seed, 0);
        let kmax = 80usize;
        let mut counts = vec![0f64; kmax + 1];
        for _ in 0..n {
            counts[(poisson(&mut r, lam) as usize).min(kmax)] += 1.0;
        }
        let mut expect: Vec<f64> = (0..kmax)
            .map(|k| n as f64 * ln_pmf_naive(k as u64, lam).exp())
            .collect();
        expect.push((n as f64 - expect.iter().sum::<f64>()).max(0.0));
        let mut bins: Vec<(f64, f64)> = Vec::new();
        let (mut o, mut e) = (0.0, 0.0);
        for k in 0..=kmax {
            o += counts[k];
            e += expect[k];
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

    /// Wilson–Hilferty approximation of the χ² quantile with upper tail 1e-4.
    fn chi2_crit(dof: usize) -> f64 {
        let d = dof as f64;
        let h = 2.0 / (9.0 * d);
        d * (1.0 - h + 3.719 * h.sqrt()).powi(3)
    }

    #[test]
    fn chi_square_around_switch() {
        for (i, &lam) in [0.05, 1.0, 4.0, 9.999, 10.0, 10.001, 12.0, 30.0]
            .iter()
            .enumerate()
        {
            let (chi2, dof) = chi2(lam, 200_000, 7 + i as u64);
            assert!(chi2 < chi2_crit(dof), "λ={lam}: χ²={chi2} dof={dof}");
        }
    }
}
