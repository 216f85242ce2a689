//! Exact Poisson sampling, one rate at a time, and the building blocks that
//! [`super::block`] runs over whole blocks of pixels.
//!
//! Three regimes, all exact (no normal approximation):
//! * faint, `0 < λ < 1/8`: inversion of one uniform; `k = 0` is decided without `exp` when the
//!   uniform lies below a polynomial lower bound of `exp(−λ)` (all but ~λ of the time), and
//!   `k = 1` likewise between polynomial bounds of `F(0)` and `F(1)` (all but ~λ²/2);
//! * `1/8 ≤ λ < 32`: `λ` is split exactly as `m/8 + r` (`m` integer, `0 ≤ r < 1/8`) and,
//!   Poisson variables being additive, `Poisson(m/8) + Poisson(r)` is drawn with two uniforms:
//!   one inversion of a precomputed cumulative table ([`super::tables`]) and one faint draw;
//! * `λ ≥ 32`: Hörmann's PTRS transformed rejection, two uniforms per round. The exact test
//!   is needed only in the 20–45 % of rounds that miss the squeeze; it compares the log of the
//!   hat with a log-probability evaluated without cancellation for any `λ`, both computed
//!   cheaply with rigorous error bounds ([`Ptrs::quick_verdict`]), and falls back to library
//!   logarithms ([`Ptrs::exact_accept`]) only when the two are too close to call.

use super::rng::Uniforms;
use super::tables::{Tables, STEPS};

/// Upper end of the faint regime: the table step `1 / STEPS`.
pub const FAINT_MAX_RATE: f64 = 1.0 / STEPS as f64;

/// Rates from here on use PTRS (whose constants are valid for `λ ≥ 10`); below, tables.
pub const PTRS_MIN_RATE: f64 = super::tables::TABLE_MAX_RATE;

/// The faint search restarts with a fresh uniform past this count. `P(X > 40)` for `λ < 1/8`
/// is below 1e-80, so this only catches a uniform in the rounding gap between the computed
/// cumulative sum and 1 (probability ~1e-16): restarting samples exactly conditional on not
/// landing there.
const FAINT_CAP: u32 = 40;

/// PTRS gives up after this many rejections (never reached for a finite rate: each round
/// accepts with probability > 0.6) and returns NaN rather than loop forever on garbage input.
pub(super) const PTRS_MAX_ROUNDS: u32 = 10_000;

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
/// `rate == 0` gives exactly 0 without consuming randomness; a faint rate (`< 1/8`) takes one
/// uniform, a rate below 32 two, a larger one two per PTRS round. Above 2^53 the count is
/// the exact sample rounded to the nearest `f64`. Negative, NaN or infinite rates return NaN
/// (callers validate first).
#[inline]
pub fn poisson<U: Uniforms>(rng: &mut U, rate: f64) -> f64 {
    if rate < FAINT_MAX_RATE {
        if rate > 0.0 {
            let u = rng.next_f64();
            faint(rng, rate, u)
        } else if rate == 0.0 {
            0.0
        } else {
            f64::NAN
        }
    } else if rate < PTRS_MIN_RATE {
        let u = [rng.next_f64(), rng.next_f64()];
        tabled(rng, super::tables::tables(), rate, u)
    } else if rate < f64::INFINITY {
        let c = Ptrs::new(rate);
        let u = rng.next_f64() - 0.5;
        let v = rng.next_f64();
        let (k, fast) = c.round(u, v);
        if fast || c.slow_accept(k, u, v) {
            k
        } else {
            c.sample(rng)
        }
    } else {
        f64::NAN
    }
}

/// Poisson(`r`), `0 ≤ r < 1/8`, by inversion of the uniform `u` (more uniforms only in the
/// ~1e-16 event that `u` falls in the rounding gap of the cumulative sum).
#[inline(always)]
pub(super) fn faint<U: Uniforms>(rng: &mut U, r: f64, u: f64) -> f64 {
    if u < faint_zero_bound(r) {
        0.0
    } else {
        faint_search(rng, r, u)
    }
}

/// A uniform below this gives `k = 0` for Poisson(`r`), `0 ≤ r ≤ 1/8`, without `exp`:
/// `exp(−r) ≥ 1 − r + r²/2 − r³/6` (alternating series), less a 2^-52 margin for the rounding
/// of the polynomial, so `k = 0` is only decided here when it is certain.
#[inline(always)]
pub(super) fn faint_zero_bound(r: f64) -> f64 {
    1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0))) - f64::EPSILON
}

/// `min{k : u < F(k)}` by summing the probabilities of Poisson(`r`) term by term, restarting
/// with a fresh uniform in the ~1e-16 event of [`FAINT_CAP`]. Kept out of line so that `exp`
/// is never hoisted into the common path.
#[cold]
#[inline(never)]
fn faint_search<U: Uniforms>(rng: &mut U, r: f64, mut u: f64) -> f64 {
    loop {
        if let Some(k) = faint_search_once(r, u) {
            return k;
        }
        u = rng.next_f64();
    }
}

/// One pass of [`faint_search`]: the count, or `None` where the uniform falls in the rounding
/// gap and a fresh one must be drawn.
#[cold]
#[inline(never)]
pub(super) fn faint_search_once(r: f64, u: f64) -> Option<f64> {
    if faint_is_one(r, u) {
        return Some(1.0);
    }
    faint_search_exp(r, u)
}

/// Whether [`faint_search_exp`] certainly returns 1 (most of the faint counts above 0), decided
/// without `exp`: for `0 ≤ r ≤ 1/8` the alternating series bound `exp(−r)` between
/// `1 − r + r²/2 − r³/6` and `1 − r + r²/2`, so `u` is above the computed `F(0) = exp(−r)` when
/// it is above the upper bound, and below the computed `F(1) = exp(−r) + exp(−r)·r` when it
/// is below `(1 − r + r²/2 − r³/6)(1 + r)`, each widened by margins (4 and 8 ulps of 1) that
/// exceed the rounding of the library `exp`, of the sum and of the polynomials. Where it says
/// no, the search decides, so the count is the search's in every case. Branch-free (`&`, no
/// short circuit), so that it vectorises inside [`faint_quick`].
#[inline(always)]
fn faint_is_one(r: f64, u: f64) -> bool {
    let upper0 = 1.0 - r * (1.0 - r * 0.5) + 4.0 * f64::EPSILON;
    let lower1 = faint_zero_bound(r) * (1.0 + r) - 8.0 * f64::EPSILON;
    (0.0..=FAINT_MAX_RATE).contains(&r) & (u >= upper0) & (u < lower1)
}

/// The faint count of `u` where it is decided by the polynomial bounds alone, as
/// `(count, decided)`: `(0, true)` below [`faint_zero_bound`], `(1, true)` where
/// [`faint_is_one`] holds, else `(·, false)` and [`faint_search_once`] must be asked. The same
/// counts as the search (tested), without branches or calls, so that a word of rates
/// vectorises (the `k = 1` cases, ~`r` of all, no longer leave the dense pass).
#[inline(always)]
pub(super) fn faint_quick(r: f64, u: f64) -> (f64, bool) {
    let zero = u < faint_zero_bound(r);
    (if zero { 0.0 } else { 1.0 }, zero | faint_is_one(r, u))
}

/// [`faint_search_once`] with `exp`: the terms of the cumulative sum, as the definition.
#[cold]
#[inline(never)]
fn faint_search_exp(r: f64, u: f64) -> Option<f64> {
    let p0 = (-r).exp();
    let (mut p, mut f, mut k) = (p0, p0, 0u32);
    while u >= f && k <= FAINT_CAP {
        k += 1;
        p *= r / f64::from(k);
        f += p;
    }
    (k <= FAINT_CAP).then_some(f64::from(k))
}

/// Poisson(`λ`), `1/8 ≤ λ < 32` (any `0 ≤ λ < 32` works), from two uniforms:
/// `Poisson(m/8) + Poisson(r)` with `λ = m/8 + r`, `0 ≤ r < 1/8`.
#[inline(always)]
pub(super) fn tabled<U: Uniforms>(rng: &mut U, t: &Tables, lam: f64, u: [f64; 2]) -> f64 {
    let (m, r) = split_rate(lam);
    t.sample(m, u[0]) + faint(rng, r, u[1])
}

/// `λ = m/8 + r` with `m` integer and `0 ≤ r < 1/8`, exactly, for `0 ≤ λ < 32`.
#[inline(always)]
pub(super) fn split_rate(lam: f64) -> (usize, f64) {
    let scaled = lam * STEPS as f64; // exact (power of two)
    let m = floor_small(scaled);
    let r = (scaled - f64::from(m)) * FAINT_MAX_RATE; // exact
    (m as usize, r)
}

/// `⌊x⌋` for `0 ≤ x < 2^31`, exactly, without the saturation checks of an `as` conversion
/// (which lengthen the table sampler's scalar loop): adding 2^52 rounds to the nearest
/// integer, which lands in the low bits, then one step down if that overshot. Outside that
/// range the result is unspecified (but defined: no panic).
#[inline(always)]
pub(super) fn floor_small(x: f64) -> u32 {
    const SHIFT: f64 = 4_503_599_627_370_496.0; // 2^52
    let near = (x + SHIFT).to_bits() as u32;
    near.wrapping_sub(u32::from(f64::from(near) > x))
}

/// `⌊x⌋` for every `f64` (of a zero: `+0`), by the processor's rounding instruction if `HW`
/// (callers pass `true` only where it has one: x86-64-v3 and up), else without a libm call or
/// branch (baseline x86-64 has no rounding instruction), so that loops using it vectorise at
/// every level. The two give the same bits for every input (tested).
#[inline(always)]
pub(super) fn floor_on<const HW: bool>(x: f64) -> f64 {
    if HW {
        // `+ 0.0` turns `−0` into `+0`, as below; it changes nothing else.
        x.floor() + 0.0
    } else {
        floor(x)
    }
}

/// [`floor_on`] without a rounding instruction: adding and subtracting `2^52` with the sign of
/// `x` rounds to the nearest integer for `|x| < 2^52` (the sum lies where doubles are spaced by
/// 1), then one step down if that overshot; from `2^52` on every `f64` is an integer.
#[inline(always)]
fn floor(x: f64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    let shift = TWO_POW_52.copysign(x);
    let y = (x + shift) - shift;
    let y = y - f64::from(u8::from(y > x));
    if x.abs() < TWO_POW_52 {
        y
    } else {
        x
    }
}

/// PTRS (W. Hörmann, "The transformed rejection method for generating Poisson random
/// variables", Insurance: Mathematics and Economics 12, 1993) for one rate `λ ≥ 10`.
///
/// The candidate `k = ⌊(2a/u_s + b)·U + λ + 0.43⌋` is formed as `⌊λ⌋ + ⌊(2a/u_s + b)·U +
/// frac(λ) + 0.43⌋`, exact even where `λ` is large enough for `+ λ` to round.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ptrs {
    lam: f64,
    slam: f64,
    lam_int: f64,
    lam_frac: f64,
    a: f64,
    b: f64,
}

impl Ptrs {
    /// Constants for rate `lam`.
    #[inline(always)]
    pub(super) fn new(lam: f64) -> Self {
        Self::with_root(lam, lam.sqrt())
    }

    /// Constants for rate `lam` given `slam = √lam`. A caller that formed `lam = A²` from an
    /// `f32` amplitude passes `A`: the square is exact in `f64`, so `A` *is* `sqrt(lam)` and
    /// the result is identical, one square root cheaper.
    #[inline(always)]
    pub(super) fn with_root(lam: f64, slam: f64) -> Self {
        Self::with_root_on::<false>(lam, slam)
    }

    /// [`Ptrs::with_root`], its floor taken by [`floor_on`]`::<HW>`.
    #[inline(always)]
    pub(super) fn with_root_on<const HW: bool>(lam: f64, slam: f64) -> Self {
        let b = 0.931 + 2.53 * slam;
        let lam_int = floor_on::<HW>(lam);
        Ptrs {
            lam,
            slam,
            lam_int,
            lam_frac: lam - lam_int,
            a: -0.059 + 0.02483 * b,
            b,
        }
    }

    /// One round from `u ∈ [−½, ½)` and `v ∈ [0, 1)`: the candidate and whether the squeeze
    /// `u_s ≥ 0.07, v ≤ v_r = 0.9277 − 3.6224/(b − 2)` already accepts it (tested as
    /// `(0.9277 − v)(b − 2) ≥ 3.6224`, one division fewer; `b > 2` here).
    #[inline(always)]
    pub(super) fn round(&self, u: f64, v: f64) -> (f64, bool) {
        self.round_on::<false>(u, v)
    }

    /// [`Ptrs::round`], its floor taken by [`floor_on`]`::<HW>`.
    #[inline(always)]
    pub(super) fn round_on<const HW: bool>(&self, u: f64, v: f64) -> (f64, bool) {
        let us = 0.5 - u.abs();
        let j = floor_on::<HW>((2.0 * self.a / us + self.b) * u + (self.lam_frac + 0.43));
        let squeeze = us >= 0.07 && (0.9277 - v) * (self.b - 2.0) >= 3.6224;
        (self.lam_int + j, squeeze)
    }

    /// The exact test of a round that missed the squeeze: `k ≥ 0`, the `u_s < 0.013` cut, then
    /// `ln(v·α⁻¹ / (a/u_s² + b)) ≤ ln P(X = k)` with `α⁻¹ = 1.1239 + 1.1328/(b − 3.4)`.
    #[inline]
    pub(super) fn slow_accept(&self, k: f64, u: f64, v: f64) -> bool {
        let (decided, accept) = self.quick_verdict(k, u, v);
        if decided {
            accept
        } else {
            self.exact_accept(k, u, v)
        }
    }

    /// The exact test without branches or calls, so that batches of it vectorise:
    /// `(decided, accept)`. Both sides of `ln(hat·√λ) ≤ ln P(X = k) + ½ln λ` are evaluated
    /// cheaply with rigorous error bounds, and a verdict is given only when they are further
    /// apart than those bounds (all but ~1e-5 of the time for large `λ`); it is then the exact
    /// verdict, not an estimate. Otherwise (or for `k = 0`, or `|k − λ| > 0.42(k + λ)`)
    /// [`Ptrs::exact_accept`] must be asked.
    ///
    /// `ln P(X = k) + ½ln λ = −stirlerr(k) − ½ln(2π) − g`, `g = (k + ½)·ln(k/λ) − (k − λ)`
    /// (see [`g_term`]); `stirlerr(k) ∈ [1/(12k) − 1/(360k³), 1/(12k)]`; `g` uses four terms
    /// of its series in `w = t²` and bounds the rest; `ln(hat·√λ)` comes from [`ln_approx`].
    #[inline(always)]
    pub(super) fn quick_verdict(&self, k: f64, u: f64, v: f64) -> (bool, bool) {
        let us = 0.5 - u.abs();
        let cut = k < 0.0 || (us < 0.013 && v > us);
        let (num, den) = self.hat(us, v);
        let (ln_y, ln_ok) = ln_approx(num * self.slam / den);
        // k − λ without the rounding of the subtraction at large λ.
        let d = (k - self.lam_int) - self.lam_frac;
        // One division for both 1/(12k) and t = d/(k + λ).
        let inv = 1.0 / (k * (k + self.lam));
        let t = d * k * inv;
        let st = (k + self.lam) * inv * (1.0 / 12.0);
        let w = t * t;
        let c = (2.0 * k + 1.0) * t * w;
        let g =
            t * (d + 1.0) + c * (1.0 / 3.0 + w * (1.0 / 5.0 + w * (1.0 / 7.0 + w * (1.0 / 9.0))));
        let rhs = -(st + HALF_LN_2PI + g);
        // Σ_{j≥4} w^j/(2j+3) ≤ w⁴/(11(1 − w)) < w⁴/9 for w < 2/11; 4.8·st³ = 1/(360k³).
        let err =
            LN_APPROX_ERR + c.abs() * (w * w) * (w * w) * (1.0 / 9.0) + 4.8 * st * st * st + 1e-9;
        let usable = ln_ok & (k >= 1.0) & (w < 0.18);
        let sure_accept = ln_y + err <= rhs;
        let sure_reject = ln_y - err > rhs;
        let decided = cut | (usable & (sure_accept | sure_reject));
        (decided, !cut & sure_accept)
    }

    /// `hat = v·α⁻¹/(a/u_s² + b)` as `(numerator, denominator)`:
    /// `v·(1.1239(b − 3.4) + 1.1328)·u_s² / ((b − 3.4)(a + b·u_s²))`.
    #[inline(always)]
    fn hat(&self, us: f64, v: f64) -> (f64, f64) {
        let us2 = us * us;
        let b34 = self.b - 3.4;
        (
            v * (1.1239 * b34 + 1.1328) * us2,
            b34 * (self.a + self.b * us2),
        )
    }

    /// The exact test with library logarithms, for the cases [`Ptrs::quick_verdict`] leaves.
    #[cold]
    #[inline(never)]
    pub(super) fn exact_accept(&self, k: f64, u: f64, v: f64) -> bool {
        let us = 0.5 - u.abs();
        if k < 0.0 || (us < 0.013 && v > us) {
            return false;
        }
        let (num, den) = self.hat(us, v);
        let d = (k - self.lam_int) - self.lam_frac;
        if k < 16.0 {
            (num / den).ln() <= ln_pmf(k, self.lam, d)
        } else {
            (num * self.slam / den).ln() <= -(stirlerr(k) + HALF_LN_2PI + g_term(k, self.lam, d))
        }
    }

    /// Fresh rounds until one is accepted.
    #[inline(never)]
    pub(super) fn sample<U: Uniforms>(&self, rng: &mut U) -> f64 {
        for _ in 0..PTRS_MAX_ROUNDS {
            let u = rng.next_f64() - 0.5;
            let v = rng.next_f64();
            let (k, fast) = self.round(u, v);
            if fast || self.slow_accept(k, u, v) {
                return k;
            }
        }
        f64::NAN
    }
}

/// The exact tests of many missed rounds at once: `(decided[j], accept[j])` is
/// `Ptrs::with_root(lam[j], slam[j]).quick_verdict(k[j], u[j], v[j])`. Branch-free, so the
/// compiler vectorises it.
#[inline(always)]
pub(super) fn ptrs_verdicts<const HW: bool>(
    lam: &[f64],
    slam: &[f64],
    u: &[f64],
    v: &[f64],
    k: &[f64],
    decided: &mut [bool],
    accept: &mut [bool],
) {
    let inputs = lam.iter().zip(slam).zip(u).zip(v).zip(k);
    let outputs = decided.iter_mut().zip(accept.iter_mut());
    for (((((&l, &s), &uj), &vj), &kj), (dj, aj)) in inputs.zip(outputs) {
        (*dj, *aj) = Ptrs::with_root_on::<HW>(l, s).quick_verdict(kj, uj, vj);
    }
}

/// PTRS rounds of many rates at once: for each `j`, `(k[j], squeeze[j])` is
/// `Ptrs::with_root(lam[j], slam[j]).round(u[j], v[j])`, bit for bit. Branch-free, so the
/// compiler vectorises it.
#[inline(always)]
pub(super) fn ptrs_rounds(
    lam: &[f64],
    slam: &[f64],
    u: &[f64],
    v: &[f64],
    k: &mut [f64],
    squeeze: &mut [bool],
) {
    let inputs = lam.iter().zip(slam).zip(u).zip(v);
    for ((((&l, &s), &uj), &vj), (kj, qj)) in inputs.zip(k.iter_mut().zip(squeeze.iter_mut())) {
        (*kj, *qj) = Ptrs::with_root(l, s).round(uj, vj);
    }
}

/// `ln P(X = k)` for `X ~ Poisson(λ)`, given `d = k − λ` accurately.
///
/// For `k ≥ 16` it uses Loader's saddle-point form `−stirlerr(k) − bd0(k, λ) − ln(2πk)/2`
/// (C. Loader, "Fast and accurate computation of binomial probabilities", 2000), where
/// `bd0 = k ln(k/λ) + λ − k` is summed without cancellation, so the result keeps full
/// relative accuracy for any `λ` (the naive `k ln λ − λ − lnΓ(k+1)` loses ~`ulp(λ)`).
pub(super) fn ln_pmf(k: f64, lam: f64, d: f64) -> f64 {
    if k < 16.0 {
        let lf = LN_FACT.get(k as usize).copied().unwrap_or(0.0);
        return k * lam.ln() - lam - lf;
    }
    -stirlerr(k) - bd0(k, lam, d) - (HALF_LN_2PI + 0.5 * k.ln())
}

/// `ln k! − [(k + ½) ln k − k + ½ ln 2π]` for `k ≥ 16` (Stirling series; the first omitted
/// term is below 1e-16 there). Estrin's scheme, for a short dependency chain.
#[inline(always)]
fn stirlerr(k: f64) -> f64 {
    let r = 1.0 / k;
    let r2 = r * r;
    let r4 = r2 * r2;
    let lo = 1.0 / 12.0 - r2 * (1.0 / 360.0);
    let hi = (1.0 / 1260.0 - r2 * (1.0 / 1680.0)) + r4 * (1.0 / 1188.0);
    r * (lo + r4 * hi)
}

/// `k ln(k/λ) + λ − k` (≥ 0) with `d = k − λ`: the deviance term of Loader's form.
///
/// Close to `λ`, with `v = d/(k + λ)`: `k ln(k/λ) = 2k·atanh(v)` and `2kv − d = dv`, so
/// `bd0 = dv + 2k(v³/3 + v⁵/5 + …)`, every term of one sign.
fn bd0(k: f64, lam: f64, d: f64) -> f64 {
    let v = d / (k + lam);
    if v.abs() < 0.1 {
        let w = v * v;
        d * v + 2.0 * k * v * w * atanh_tail(w)
    } else {
        k * (d / lam).ln_1p() - d
    }
}

/// `½ln(k/λ) + bd0(k, λ) = (k + ½)·ln(k/λ) − d` with `d = k − λ`, without cancellation.
///
/// With `t = d/(k + λ)`, `ln(k/λ) = 2·atanh(t)`, and `(2k + 1)t − d = t(d + 1)`, so
/// `g = t(d + 1) + (2k + 1)·t³·(1/3 + t²/5 + t⁴/7 + …)`.
fn g_term(k: f64, lam: f64, d: f64) -> f64 {
    let t = d / (k + lam);
    let w = t * t;
    if w < ATANH_TAIL_MAX_W {
        t * (d + 1.0) + (2.0 * k + 1.0) * t * w * atanh_tail(w)
    } else {
        (k + 0.5) * (d / lam).ln_1p() - d
    }
}

/// [`atanh_tail`] is accurate for `w` below this (`|t| < 1/3`).
const ATANH_TAIL_MAX_W: f64 = 1.0 / 9.0;

/// `Σ_{j=0…16} w^j/(2j + 3) = 1/3 + w/5 + … + w¹⁶/35`, i.e. `(atanh(t) − t)/t³` with `w = t²`,
/// for `0 ≤ w < 1/9`; the omitted terms are below 1e-17 of the sum. Estrin's scheme.
#[inline(always)]
fn atanh_tail(w: f64) -> f64 {
    let c = |j: u32| 1.0 / f64::from(2 * j + 3);
    let w2 = w * w;
    let w4 = w2 * w2;
    let w8 = w4 * w4;
    let p = |j: u32| c(j) + w * c(j + 1);
    let q = |j: u32| p(j) + w2 * p(j + 2);
    let r = |j: u32| q(j) + w4 * q(j + 4);
    (r(0) + w8 * r(8)) + (w8 * w8) * c(16)
}

/// Bound on `|ln y − ln_approx(y)|` for positive normal `y`: the series truncation
/// (`2|s|·s⁶/(7(1 − s²)) ≤ 1.3e-6` for `|s| ≤ 0.1716`) plus rounding.
const LN_APPROX_ERR: f64 = 1.5e-6;

/// `ln y` to within [`LN_APPROX_ERR`] from the bits of `y`, without a library call or table,
/// and whether `y` is a positive normal number (else the value is meaningless).
///
/// `y = 2^e·m` with `m ∈ [1/√2, √2)`, `s = (m − 1)/(m + 1)`, `ln m = 2·atanh(s) ≈ 2s(1 + s²/3 +
/// s⁴/5)`.
#[inline(always)]
fn ln_approx(y: f64) -> (f64, bool) {
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    let ok = (f64::MIN_POSITIVE..f64::INFINITY).contains(&y);
    let bits = y.to_bits();
    // Exponent as an exact f64, without an integer conversion (which would not vectorise).
    let e = f64::from_bits((bits >> 52) | 0x4330_0000_0000_0000) - (TWO_POW_52 + 1023.0);
    let m = f64::from_bits((bits & MANTISSA) | ONE);
    let big = m > std::f64::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1.0) } else { (m, e) };
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let ln_m = 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0)));
    (e * std::f64::consts::LN_2 + ln_m, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faint_ones_without_exp_are_the_searchs() {
        // Uniforms spread over [F(0) − 64 ulp, F(1) + 64 ulp] and near both computed ends.
        let mut rng = crate::noise::PatternRng::new(9, 9);
        let mut quick = 0;
        let mut undecided = 0usize;
        for i in 0..200_000 {
            let r = match i % 4 {
                0 => rng.next_f64() * FAINT_MAX_RATE,
                1 => FAINT_MAX_RATE * (1.0 - rng.next_f64() * 1e-3),
                2 => rng.next_f64() * 1e-6,
                _ => f64::from(i % 128) / 1024.0,
            };
            let f0 = (-r).exp();
            let f1 = f0 + f0 * r;
            let u = match i % 5 {
                0 => f0 + (rng.next_f64() - 0.5) * 128.0 * f64::EPSILON,
                1 => f1 + (rng.next_f64() - 0.5) * 128.0 * f64::EPSILON,
                _ => f0 - 64.0 * f64::EPSILON + rng.next_f64() * (f1 - f0 + 128.0 * f64::EPSILON),
            };
            let u = (u * 9_007_199_254_740_992.0).floor() / 9_007_199_254_740_992.0; // 2^-53 grid
            if !(0.0..1.0).contains(&u) {
                continue;
            }
            if faint_is_one(r, u) {
                quick += 1;
                assert_eq!(faint_search_exp(r, u), Some(1.0), "r={r} u={u}");
            }
            assert_eq!(
                faint_search_once(r, u),
                faint_search_exp(r, u),
                "r={r} u={u}"
            );
            let (k, decided) = faint_quick(r, u);
            if decided {
                assert_eq!(Some(k), faint_search_exp(r, u), "quick: r={r} u={u}");
            }
            // Every uniform: decided ones are the search's, and ~all of k ≤ 1 is decided.
            let u2 = rng.next_f64();
            let (k2, d2) = faint_quick(r, u2);
            if d2 {
                assert_eq!(Some(k2), faint_search_exp(r, u2), "quick: r={r} u={u2}");
            } else {
                undecided += 1;
            }
        }
        assert!(quick > 100_000, "{quick}");
        // Left to the search: k ≥ 2 (< r²/2 ≤ 0.8 %) and the margins around the bounds.
        assert!(undecided < 200_000 / 100, "{undecided}");
    }

    #[test]
    fn floor_small_is_the_floor() {
        let mut r = crate::noise::PatternRng::new(5, 5);
        let mut xs = vec![0.0, 0.5, 1.0, 1.5, 2.5, 255.999_999_999, 2_147_483_647.0];
        for k in [1.0f64, 2.0, 3.0, 7.0, 64.0, 255.0, 1e6, 2_147_483_646.0] {
            xs.extend([k, k.next_down(), k.next_up(), k - 0.5, k + 0.5]);
        }
        for _ in 0..100_000 {
            let u = r.next_f64();
            xs.extend([u, u * 64.0, u * 256.0, u * 2_147_483_648.0]);
        }
        for x in xs
            .into_iter()
            .filter(|x| (0.0..2_147_483_648.0).contains(x))
        {
            assert_eq!(f64::from(floor_small(x)), x.floor(), "{x}");
        }
    }

    #[test]
    fn floors_are_the_floor_at_every_magnitude() {
        let p52 = 4_503_599_627_370_496.0f64;
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for m in [
            1.0f64,
            10.0,
            2.0f64.powi(31),
            p52 / 4.0,
            p52 / 2.0,
            p52,
            2.0 * p52,
            1e300,
        ] {
            for k in [
                m,
                m.next_down(),
                m.next_up(),
                m - 0.5,
                m + 0.5,
                1.5 * m,
                1.5 * m + 0.5,
            ] {
                xs.extend([k, -k]);
            }
        }
        let mut r = PatternRng::new(5, 6);
        for _ in 0..100_000 {
            let (u, e) = (r.next_f64() - 0.5, r.next_f64() * 120.0);
            xs.push(u * 2.0f64.powf(e));
        }
        for x in xs {
            let want = x.floor() + 0.0;
            assert_eq!(floor(x).to_bits(), want.to_bits(), "{x}");
            assert_eq!(floor_on::<true>(x).to_bits(), want.to_bits(), "{x}");
        }
        assert!(floor(f64::NAN).is_nan() && floor_on::<true>(f64::NAN).is_nan());
        // The half-integers of [2^51, 2^52) are not integers (they were kept as they were).
        assert_eq!(floor(p52 / 2.0 + 0.5), p52 / 2.0);
    }

    use crate::noise::rng::PatternRng;

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
    fn slow_test_form_matches_ln_pmf() {
        // −stirlerr − ½ln(2π) − ½ln λ − g must be ln P(X = k), on both sides of |v| = 0.1.
        for lam in [32.0f64, 40.5, 1e3, 1e6, 1e9, 1e13] {
            let s = lam.sqrt();
            for z in [-9.0, -5.0, -1.0, -0.01, 0.0, 0.3, 2.0, 6.0, 10.0] {
                let k = (lam + z * s).round().max(16.0);
                let d = k - lam;
                let want = ln_pmf(k, lam, d);
                let got = -(stirlerr(k) + HALF_LN_2PI + g_term(k, lam, d)) - 0.5 * lam.ln();
                let tol = 1e-13 * want.abs().max(1.0);
                assert!((got - want).abs() < tol, "λ={lam} k={k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn ln_approx_within_bound() {
        let mut r = PatternRng::new(3, 3);
        let mut worst = 0.0f64;
        for i in 0..400_000 {
            let y = match i % 4 {
                0 => r.next_f64(),
                1 => r.next_f64() * 1e-30,
                2 => (r.next_f64() - 0.5) * 1e6 + 5e5 + 1e-300,
                _ => 1.0 + (r.next_f64() - 0.5) * 1e-9,
            };
            if y > 0.0 {
                let (l, ok) = ln_approx(y);
                assert!(ok, "{y}");
                worst = worst.max((l - y.ln()).abs());
            }
        }
        assert!(worst < LN_APPROX_ERR, "{worst}");
        for m in [std::f64::consts::SQRT_2, 1.0, 2.0 - 1e-16, 0.75] {
            assert!((ln_approx(m).0 - m.ln()).abs() < LN_APPROX_ERR, "{m}");
        }
        for y in [0.0, -1.0, f64::INFINITY, f64::NAN, f64::MIN_POSITIVE / 2.0] {
            assert!(!ln_approx(y).1, "{y}");
        }
    }

    #[test]
    fn quick_verdict_agrees_with_exact_test() {
        let mut r = PatternRng::new(4, 4);
        let mut undecided = 0usize;
        let mut total = 0usize;
        for lam in [32.0, 33.7, 100.0, 1e3, 1e5, 1e9, 1e14] {
            let c = Ptrs::new(lam);
            for _ in 0..50_000 {
                let u = r.next_f64() - 0.5;
                let v = r.next_f64();
                let (k, fast) = c.round(u, v);
                if fast {
                    continue;
                }
                total += 1;
                let (decided, accept) = c.quick_verdict(k, u, v);
                if decided {
                    assert_eq!(accept, c.exact_accept(k, u, v), "λ={lam} k={k} u={u} v={v}");
                } else {
                    undecided += 1;
                }
            }
        }
        // Left to the library logarithm: a small fraction of the slow rounds.
        assert!(undecided * 50 < total, "{undecided} of {total}");
    }

    #[test]
    fn atanh_tail_matches_series() {
        for t in [0.0f64, 1e-8, 1e-3, 0.05, 0.1, 0.2, 0.3, 0.333] {
            let w = t * t;
            let want: f64 = (0..200).map(|j| w.powi(j) / f64::from(2 * j + 3)).sum();
            assert!(
                (atanh_tail(w) - want).abs() <= 2.0 * f64::EPSILON * want,
                "t={t}"
            );
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
