//! Poisson counts for a block of rates, regime by regime, so that each inner loop is short,
//! branch-predictable and free of calls in its common path.
//!
//! Order of the draws (this is what makes results reproducible): the rates are taken in
//! blocks of [`BLOCK`] in order; within a block, first every faint rate (`0 < λ < 1/8`) in
//! order takes one uniform, then every rate `1/8 ≤ λ < 32` in order takes two, then every
//! rate `λ ≥ 32` in order takes one PTRS round (two uniforms), then the rates whose round
//! missed the squeeze and failed the exact test, in order, take further rounds until accepted
//! (each rate's rounds consecutively).
//! Zero rates take none.

use std::cell::RefCell;

use super::poisson::{faint, tabled, Ptrs, FAINT_MAX_RATE, PTRS_MIN_RATE};
use super::rng::PatternRng;
use super::tables::tables;

/// Rates per block (a 64 × 64 pattern is one block).
pub const BLOCK: usize = 4096;

/// Working memory of the block sampler: index lists and a rate buffer. Its contents never
/// influence results; one per thread is kept ([`with_scratch`]) so patterns allocate nothing.
#[derive(Default)]
pub struct Scratch {
    faint: Vec<u32>,
    tabled: Vec<u32>,
    ptrs: Vec<u32>,
    /// PTRS rates whose first round missed the squeeze: index, rate, `u`, `v`.
    retry: Vec<(u32, f64, f64, f64)>,
    /// Rates of the current pattern block, for callers that start from amplitudes.
    pub rates: Vec<f64>,
}

impl Scratch {
    /// Lists long enough for a block of `n` rates (zero-filled only when they grow).
    fn reserve(&mut self, n: usize) {
        if self.faint.len() < n {
            self.faint.resize(n, 0);
            self.tabled.resize(n, 0);
            self.ptrs.resize(n, 0);
            self.retry.resize(n, (0, 0.0, 0.0, 0.0));
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is already in use).
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Replaces every rate of `x` by an exact Poisson count drawn from `rng` (see the module
/// docs for the order). Negative, NaN or infinite rates become NaN; zero becomes 0.
pub fn counts_in_place(x: &mut [f64], rng: &mut PatternRng, s: &mut Scratch) {
    for block in x.chunks_mut(BLOCK) {
        counts_block(block, None, rng, s);
    }
}

/// [`counts_in_place`] for rates `x = A²` formed from the `f32` amplitudes `roots` (same length):
/// identical results, using `A` as the exact `√λ`.
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

fn counts_block(x: &mut [f64], roots: Option<&[f32]>, rng: &mut PatternRng, s: &mut Scratch) {
    s.reserve(x.len());
    let (mut nf, mut nt, mut np) = (0usize, 0usize, 0usize);
    for (i, xi) in x.iter_mut().enumerate() {
        let lam = *xi;
        let is_faint = lam > 0.0 && lam < FAINT_MAX_RATE;
        let is_tabled = (FAINT_MAX_RATE..PTRS_MIN_RATE).contains(&lam);
        let is_ptrs = (PTRS_MIN_RATE..f64::INFINITY).contains(&lam);
        push(&mut s.faint, &mut nf, i as u32, is_faint);
        push(&mut s.tabled, &mut nt, i as u32, is_tabled);
        push(&mut s.ptrs, &mut np, i as u32, is_ptrs);
        if !(is_faint || is_tabled || is_ptrs) {
            *xi = if lam == 0.0 { 0.0 } else { f64::NAN };
        }
    }

    for &i in s.faint.get(..nf).unwrap_or_default() {
        if let Some(xi) = x.get_mut(i as usize) {
            let u = rng.next_f64();
            *xi = faint(rng, *xi, u);
        }
    }

    let t = tables();
    for &i in s.tabled.get(..nt).unwrap_or_default() {
        if let Some(xi) = x.get_mut(i as usize) {
            let u = [rng.next_f64(), rng.next_f64()];
            *xi = tabled(rng, t, *xi, u);
        }
    }

    // First PTRS round of every rate, without unpredictable branches; the rounds that miss the
    // squeeze are listed for the exact test.
    let root = |i: usize, lam: f64| match roots.and_then(|r| r.get(i)) {
        Some(&a) => f64::from(a),
        None => lam.sqrt(),
    };
    let mut nr = 0usize;
    for &i in s.ptrs.get(..np).unwrap_or_default() {
        if let Some(xi) = x.get_mut(i as usize) {
            let lam = *xi;
            let u = rng.next_f64() - 0.5;
            let v = rng.next_f64();
            let (k, fast) = Ptrs::with_root(lam, root(i as usize, lam)).round(u, v);
            *xi = k;
            if let Some(slot) = s.retry.get_mut(nr) {
                *slot = (i, lam, u, v);
            }
            nr += usize::from(!fast);
        }
    }
    // The exact test of those rounds; the rejected ones are compacted in place.
    let mut nq = 0usize;
    for m in 0..nr {
        let Some(&(i, lam, u, v)) = s.retry.get(m) else {
            break;
        };
        if let Some(xi) = x.get(i as usize) {
            let accept = Ptrs::with_root(lam, root(i as usize, lam)).slow_accept(*xi, u, v);
            if let Some(slot) = s.retry.get_mut(nq) {
                *slot = (i, lam, u, v);
            }
            nq += usize::from(!accept);
        }
    }
    // Fresh rounds for the rejected ones, in order.
    for &(i, lam, _, _) in s.retry.get(..nq).unwrap_or_default() {
        if let Some(xi) = x.get_mut(i as usize) {
            *xi = Ptrs::with_root(lam, root(i as usize, lam)).sample(rng);
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
        // PTRS: first rounds of both, then retries in order.
        let mut first = Vec::new();
        for i in [0, 4] {
            let u = r.next_f64() - 0.5;
            let v = r.next_f64();
            let c = Ptrs::new(rates[i]);
            let (k, fast) = c.round(u, v);
            want[i] = k;
            if !fast {
                first.push((i, u, v));
            }
        }
        for (i, u, v) in first {
            let c = Ptrs::new(rates[i]);
            if !c.slow_accept(want[i], u, v) {
                want[i] = c.sample(&mut r);
            }
        }
        assert_eq!(x, want);
        assert_eq!(rng, r);
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
