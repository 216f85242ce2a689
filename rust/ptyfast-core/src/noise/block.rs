//! Poisson counts for a block of rates, regime by regime, so that each inner loop is short,
//! branch-predictable and free of calls in its common path.
//!
//! Order of the draws (this is what makes results reproducible): the rates are taken in
//! blocks of [`BLOCK`] in order; within a block, first every faint rate (`0 < λ < 1/8`) in
//! order takes one uniform, then every rate `1/8 ≤ λ < 32` in order takes two, then every
//! rate `λ ≥ 32` in order takes one PTRS round (two uniforms); then, as long as some round was
//! rejected (it missed the squeeze and failed the exact test), every rate whose round was
//! rejected takes a new round, in order.
//! Zero rates take none.

use std::cell::RefCell;

use super::poisson::{
    faint, ptrs_rounds, ptrs_verdicts, tabled, Ptrs, FAINT_MAX_RATE, PTRS_MAX_ROUNDS, PTRS_MIN_RATE,
};
use super::rng::PatternRng;
use super::tables::tables;

/// Rates per block (a 64 × 64 pattern is one block).
pub const BLOCK: usize = 4096;

/// Working memory of the block sampler: index lists and buffers. Its contents never influence
/// results; one per thread is kept ([`with_scratch`]) so patterns allocate nothing.
#[derive(Default)]
pub struct Scratch {
    /// The regime of each rate of the block (a [`regime`] constant).
    regime: Vec<u8>,
    /// PTRS rates: their indices, then those still in play.
    ptrs: Vec<u32>,
    /// Rates of the current pattern block, for callers that start from amplitudes.
    pub rates: Vec<f64>,
    /// PTRS rates in play: rate, square root, uniforms, candidate, squeeze or verdict flags.
    lam: Vec<f64>,
    slam: Vec<f64>,
    uv: Vec<(f64, f64)>,
    k: Vec<f64>,
    flag: Vec<bool>,
    accept: Vec<bool>,
}

impl Scratch {
    /// Buffers long enough for a block of `n` rates (zero-filled only when they grow).
    fn reserve(&mut self, n: usize) {
        if self.ptrs.len() < n {
            self.regime.resize(n, 0);
            self.ptrs.resize(n, 0);
            self.lam.resize(n, 0.0);
            self.slam.resize(n, 0.0);
            self.uv.resize(n, (0.0, 0.0));
            self.k.resize(n, 0.0);
            self.flag.resize(n, false);
            self.accept.resize(n, false);
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is already in use).
#[inline(always)]
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Replaces every rate of `x` by an exact Poisson count drawn from `rng` (see the module
/// docs for the order). Negative, NaN or infinite rates become NaN; zero becomes 0.
#[inline(always)]
pub fn counts_in_place(x: &mut [f64], rng: &mut PatternRng, s: &mut Scratch) {
    for block in x.chunks_mut(BLOCK) {
        counts_block(block, None, rng, s);
    }
}

/// [`counts_in_place`] for rates `x = A²` formed from the `f32` amplitudes `roots` (same length):
/// identical results, using `A` as the exact `√λ`.
#[inline(always)]
pub fn counts_from_amplitudes(x: &mut [f64], roots: &[f32], rng: &mut PatternRng, s: &mut Scratch) {
    for (block, r) in x.chunks_mut(BLOCK).zip(roots.chunks(BLOCK)) {
        counts_block(block, Some(r), rng, s);
    }
}

/// Writes `i` at `list[*n]` and advances `n` if `keep`: branch-free compaction.
#[inline(always)]
fn push(list: &mut [u32], n: &mut usize, i: u32, keep: bool) {
    if let Some(slot) = list.get_mut(*n) {
        *slot = i;
    }
    *n += usize::from(keep);
}

/// The regimes of the module docs, as stored in [`Scratch`]. A rate in none of the three (zero
/// or invalid) takes no uniform.
mod regime {
    pub const NONE: u8 = 0;
    pub const FAINT: u8 = 1;
    pub const TABLED: u8 = 2;
    pub const PTRS: u8 = 3;
}

#[inline(always)]
fn counts_block(x: &mut [f64], roots: Option<&[f32]>, rng: &mut PatternRng, s: &mut Scratch) {
    s.reserve(x.len());
    let regimes = s.regime.get_mut(..x.len()).unwrap_or_default();
    // One branch-free pass classifies every rate and settles the zero and invalid ones.
    for (xi, r) in x.iter_mut().zip(regimes.iter_mut()) {
        let lam = *xi;
        let is_faint = lam > 0.0 && lam < FAINT_MAX_RATE;
        let is_tabled = (FAINT_MAX_RATE..PTRS_MIN_RATE).contains(&lam);
        let is_ptrs = (PTRS_MIN_RATE..f64::INFINITY).contains(&lam);
        *r = u8::from(is_faint) * regime::FAINT
            + u8::from(is_tabled) * regime::TABLED
            + u8::from(is_ptrs) * regime::PTRS;
        // The count of a rate in no regime: +0 for a zero (also −0), NaN for the invalid.
        let none = if lam == 0.0 { 0.0 } else { f64::NAN };
        *xi = if *r == regime::NONE { none } else { lam };
    }

    // Then each regime in turn, its rates in order. These branches predict well where regimes
    // come in runs (a smooth pattern); speckled patterns mispredict more, but no worse than the
    // index lists this replaced.
    for (xi, &r) in x.iter_mut().zip(regimes.iter()) {
        if r == regime::FAINT {
            let u = rng.next_f64();
            *xi = faint(rng, *xi, u);
        }
    }

    let t = tables();
    for (xi, &r) in x.iter_mut().zip(regimes.iter()) {
        if r == regime::TABLED {
            let u = [rng.next_f64(), rng.next_f64()];
            *xi = tabled(rng, t, *xi, u);
        }
    }

    let mut np = 0usize;
    for (i, &r) in regimes.iter().enumerate() {
        push(&mut s.ptrs, &mut np, i as u32, r == regime::PTRS);
    }
    ptrs_pass(x, roots, np, rng, s);
}

/// The PTRS rates of a block (`s.ptrs[..np]`), in rounds over the whole set so that no inner
/// loop branches on a random outcome: one round each; the exact test for the rounds that
/// missed the squeeze; a new round for those it rejected; and so on.
#[inline(always)]
fn ptrs_pass(
    x: &mut [f64],
    roots: Option<&[f32]>,
    np: usize,
    rng: &mut PatternRng,
    s: &mut Scratch,
) {
    let Scratch {
        ptrs: idx,
        lam,
        slam,
        uv,
        k,
        flag,
        accept,
        ..
    } = s;
    for (j, &i) in idx.iter().take(np).enumerate() {
        let l = x.get(i as usize).copied().unwrap_or(f64::NAN);
        let r = match roots.and_then(|r| r.get(i as usize)) {
            Some(&a) => f64::from(a),
            None => l.sqrt(),
        };
        if let (Some(lj), Some(sj)) = (lam.get_mut(j), slam.get_mut(j)) {
            (*lj, *sj) = (l, r);
        }
    }
    let mut n = np; // rates whose latest round awaits a verdict
    let mut fresh = np; // rates needing a new round (all, at first)
    for _ in 0..PTRS_MAX_ROUNDS {
        // A new round for each of the first `fresh` rates, in order.
        let m = fresh.min(lam.len());
        for d in uv.iter_mut().take(m) {
            *d = (rng.next_f64() - 0.5, rng.next_f64());
        }
        ptrs_rounds(&lam[..m], &slam[..m], &uv[..m], &mut k[..m], &mut flag[..m]);
        // Keep the rounds the squeeze did not accept (compacted in place).
        n = 0;
        for j in 0..m {
            if let Some(xi) = x.get_mut(idx[j] as usize) {
                *xi = k[j];
            }
            (idx[n], lam[n], slam[n], uv[n], k[n]) = (idx[j], lam[j], slam[j], uv[j], k[j]);
            n += usize::from(!flag[j]);
        }
        if n == 0 {
            return;
        }
        // The exact test of those; the library logarithm only where the bracket is too wide.
        ptrs_verdicts(
            &lam[..n],
            &slam[..n],
            &uv[..n],
            &k[..n],
            &mut flag[..n],
            &mut accept[..n],
        );
        fresh = 0;
        for j in 0..n {
            let ok = if flag[j] {
                accept[j]
            } else {
                Ptrs::with_root(lam[j], slam[j]).exact_accept(k[j], uv[j].0, uv[j].1)
            };
            (idx[fresh], lam[fresh], slam[fresh]) = (idx[j], lam[j], slam[j]);
            fresh += usize::from(!ok);
        }
        if fresh == 0 {
            return;
        }
        n = fresh;
    }
    for &i in idx.iter().take(n) {
        if let Some(xi) = x.get_mut(i as usize) {
            *xi = f64::NAN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::poisson::poisson;

    #[test]
    fn regimes_follow_the_documented_order() {
        // One rate per regime, in reverse order; replay the documented draw order by hand.
        let rates = [1e3, 5.5, 0.01, 0.0, 77.0, 0.05];
        let mut x = rates;
        let mut rng = PatternRng::new(11, 4);
        counts_in_place(&mut x, &mut rng, &mut Scratch::default());

        let mut r = PatternRng::new(11, 4);
        let mut want = [0.0; 6];
        for i in [2, 5] {
            want[i] = poisson(&mut r, rates[i]);
        }
        want[1] = poisson(&mut r, rates[1]);
        // PTRS: a round for every rate still in play, in order, until all are accepted.
        let mut live = vec![0usize, 4];
        while !live.is_empty() {
            let mut next = Vec::new();
            for &i in &live {
                let c = Ptrs::new(rates[i]);
                let u = r.next_f64() - 0.5;
                let v = r.next_f64();
                let (k, fast) = c.round(u, v);
                want[i] = k;
                if !fast && !c.slow_accept(k, u, v) {
                    next.push(i);
                }
            }
            live = next;
        }
        assert_eq!(x, want);
        assert_eq!(rng, r);
    }

    #[test]
    fn ptrs_batches_follow_the_documented_order() {
        // Many PTRS rates, so that several take more than one round.
        let rates: Vec<f64> = (0..500).map(|i| 32.0 + (i as f64) * 7.3).collect();
        let mut x = rates.clone();
        counts_in_place(&mut x, &mut PatternRng::new(8, 1), &mut Scratch::default());
        let mut r = PatternRng::new(8, 1);
        let mut want = vec![0.0; rates.len()];
        let mut live: Vec<usize> = (0..rates.len()).collect();
        let mut rounds = 0;
        while !live.is_empty() {
            rounds += 1;
            let mut draws = Vec::new();
            for &i in &live {
                let u = r.next_f64() - 0.5;
                draws.push((i, u, r.next_f64()));
            }
            live.clear();
            for (i, u, v) in draws {
                let c = Ptrs::new(rates[i]);
                let (k, fast) = c.round(u, v);
                want[i] = k;
                if !fast && !c.slow_accept(k, u, v) {
                    live.push(i);
                }
            }
        }
        assert!(rounds > 2, "{rounds}");
        assert_eq!(x, want);
    }

    #[test]
    fn invalid_and_zero() {
        let mut x = [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, 2.0];
        counts_in_place(&mut x, &mut PatternRng::new(0, 0), &mut Scratch::default());
        assert_eq!(x[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(x[1].to_bits(), 0.0f64.to_bits());
        assert!(x[2].is_nan() && x[3].is_nan() && x[4].is_nan());
        assert!(x[5] >= 0.0);
    }

    #[test]
    fn blocks_continue_the_stream() {
        // Two blocks' worth of one rate: the same as two calls sharing the generator.
        let mut x = vec![3.0; BLOCK + 10];
        let mut rng = PatternRng::new(2, 2);
        counts_in_place(&mut x, &mut rng, &mut Scratch::default());
        let mut r = PatternRng::new(2, 2);
        let mut a = vec![3.0; BLOCK];
        let mut b = vec![3.0; 10];
        let mut s = Scratch::default();
        counts_in_place(&mut a, &mut r, &mut s);
        counts_in_place(&mut b, &mut r, &mut s);
        a.extend(b);
        assert_eq!(x, a);
    }
}
