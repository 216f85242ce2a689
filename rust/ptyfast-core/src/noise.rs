//! Exact Poisson observation, one random stream per pattern.
//!
//! An amplitude `A` (`f32`) is observed as `sqrt(K)` with `K ~ Poisson(λ = A²)`: `λ` is formed
//! in `f64` (exactly: a squared `f32` fits), `K` is an integer-valued `f64`, and `sqrt(K)` is
//! rounded once to `f32`. `λ = 0` gives exactly 0. Every sample comes from the exact Poisson
//! law (no normal approximation at any rate, up to the 2^-53 granularity of the uniforms and
//! the ~1e-16 accuracy of the probabilities):
//!
//! | rate           | method                                                         | uniforms |
//! |----------------|----------------------------------------------------------------|----------|
//! | `λ = 0`        | 0                                                              | 0        |
//! | `0 < λ < 1/8`  | inversion; `k = 0` below a polynomial lower bound of `exp(−λ)` | 1        |
//! | `1/8 ≤ λ < 32` | `λ = m/8 + r`: table inversion for `m/8`, the faint case `r`   | 2        |
//! | `λ ≥ 32`       | Hörmann's PTRS transformed rejection, exact test when needed   | 2/round  |
//!
//! The tables hold the cumulative distributions of the 256 rates `m/8 < 32` (built once per
//! process, ~180 kB). PTRS takes 1.1–1.3 rounds on average; its exact acceptance test uses a
//! cancellation-free log-probability (Loader's saddle-point form) valid for any `λ`, evaluated
//! with rigorous error bounds so that the library logarithm is needed only when the two sides
//! are within ~1e-6 of each other. Above 2^53 a count is the exact sample rounded to `f64`.
//! Details in the `poisson`, `tables` and `block` submodules.
//!
//! **Streams.** Pattern `i` of a call with `seed` and `first_index` draws from its own
//! [`PatternRng`], derived from `(seed, first_index + i)` alone (index arithmetic wraps modulo
//! 2^64): `key` = first SplitMix64 output of `seed`; `z` = SplitMix64 output number `index` of
//! `key`, i.e. `mix64(key + (index + 1)·0x9E3779B97F4A7C15)`; the four words of a xoshiro256++
//! state are the first four SplitMix64 outputs of `z`. Uniforms are the top 53 bits of an
//! output scaled by 2^-53. Within a pattern the pixels are taken in C order in blocks of
//! [`BLOCK`], regime by regime (the exact order is in the `block` submodule). So a dataset
//! simulated in one call, in chunks (`first_index`), or on any number of threads is
//! bit-identical; no random state lives in a thread (only scratch buffers do). `exp`/`ln` come
//! from the platform's libm, so bit-identity across platforms is not promised: a sample can
//! differ only when a uniform falls within an ulp of a decision boundary.
//!
//! Parallelism is over patterns (rayon); a pattern is the unit of work.

mod block;
mod poisson;
mod rng;
mod tables;

use ndarray::{Array1, Array3, ArrayView1, ArrayView3};
use rayon::prelude::*;

pub use self::block::BLOCK;
use self::block::{counts_from_amplitudes, counts_in_place, with_scratch, Scratch};
pub use self::poisson::{poisson, FAINT_MAX_RATE, PTRS_MIN_RATE};
pub use self::rng::PatternRng;
use crate::{Error, Result};

/// `sqrt(Poisson(A²))` for every amplitude of an `(M, N, N)` stack (any `(M, H, W)` works),
/// pattern `i` on stream `(seed, first_index + i)`, in parallel over patterns.
///
/// # Errors
/// [`Error::InvalidArgument`] (`amplitudes`) on a negative or non-finite amplitude.
pub fn poisson_amplitudes(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
) -> Result<Array3<f32>> {
    let mut out = amplitudes.as_standard_layout().into_owned();
    let (_, h, w) = out.dim();
    let data = out
        .as_slice_mut()
        .ok_or_else(|| Error::Unsupported("amplitudes: standard layout expected".into()))?;
    if let Some((i, a)) = first_invalid(data) {
        return Err(Error::invalid(
            "amplitudes",
            "finite and non-negative",
            format!("{a} at flat index {i}"),
        ));
    }
    let pattern = h * w;
    if pattern > 0 {
        data.par_chunks_mut(pattern)
            .enumerate()
            .for_each(|(i, chunk)| {
                observe_pattern(chunk, seed, first_index.wrapping_add(i as u64))
            });
    }
    Ok(out)
}

/// Poisson counts for a vector of rates, all drawn from stream `(seed, stream)` in the order
/// of the module docs. Counts are integer-valued `f64` (rounded to the nearest `f64` above
/// 2^53).
///
/// # Errors
/// [`Error::InvalidArgument`] (`rates`) on a negative or non-finite rate.
pub fn poisson_counts(rates: ArrayView1<'_, f64>, seed: u64, stream: u64) -> Result<Array1<f64>> {
    let mut out = rates.as_standard_layout().into_owned();
    let x = out
        .as_slice_mut()
        .ok_or_else(|| Error::Unsupported("rates: standard layout expected".into()))?;
    if let Some((i, r)) = first_invalid(x) {
        return Err(Error::invalid(
            "rates",
            "finite and non-negative",
            format!("{r} at index {i}"),
        ));
    }
    let mut rng = PatternRng::new(seed, stream);
    with_scratch(|s| counts_in_place(x, &mut rng, s));
    Ok(out)
}

/// `out = sqrt(counts)` rounded to `f32`. Below 2^24 every count is exact in `f32`, and the
/// correctly rounded `f32` square root equals the `f64` one rounded to `f32` (double rounding
/// is innocuous for square roots when 53 ≥ 2·24 + 2), so such blocks take the cheaper
/// single-precision path with identical results.
#[inline(always)]
fn write_roots(out: &mut [f32], counts: &[f64]) {
    const EXACT_F32: f64 = 16_777_216.0; // 2^24
    if counts
        .iter()
        .fold(true, |small, &k| small & (k < EXACT_F32))
    {
        for (a, &k) in out.iter_mut().zip(counts) {
            *a = (k as f32).sqrt();
        }
    } else {
        for (a, &k) in out.iter_mut().zip(counts) {
            *a = k.sqrt() as f32;
        }
    }
}

/// Index and value of the first negative, NaN or infinite entry. A branch-free pass per chunk
/// first, so that the common all-valid case runs at memory speed.
fn first_invalid<T: Copy + Into<f64>>(values: &[T]) -> Option<(usize, f64)> {
    let bad = |v: T| {
        let v: f64 = v.into();
        !(0.0..f64::INFINITY).contains(&v)
    };
    let mut offset = 0;
    for chunk in values.chunks(1024) {
        if chunk.iter().fold(false, |any, &v| any | bad(v)) {
            return chunk
                .iter()
                .enumerate()
                .find(|&(_, &v)| bad(v))
                .map(|(i, &v)| (offset + i, v.into()));
        }
        offset += chunk.len();
    }
    None
}

/// Replaces each amplitude of one pattern by `sqrt(Poisson(A²))`, drawing from stream
/// `(seed, index)` in the order of the module docs. Used by the fused simulation; infallible:
/// amplitudes are finite and non-negative by construction there, and any that is not becomes
/// NaN.
pub fn observe_pattern(amplitudes: &mut [f32], seed: u64, index: u64) {
    with_scratch(|scratch| observe_with(amplitudes, seed, index, scratch));
}

/// Replaces each rate of one pattern (`f64`, finite and `≥ 0`) by an exact Poisson count drawn
/// from stream `(seed, index)`, in the order of the module docs: the counts whose square roots
/// [`observe_pattern`] writes when the rates are its squared amplitudes. Infallible: an invalid
/// rate becomes NaN.
pub fn counts_from_rates(rates: &mut [f64], seed: u64, index: u64) {
    with_scratch(|scratch| counts_with(rates, seed, index, scratch));
}

crate::simd::multiversion! {
    /// [`counts_from_rates`] with this thread's scratch, per instruction-set level.
    fn counts_with(rates: &mut [f64], seed: u64, index: u64, scratch: &mut Scratch) {
        let mut rng = PatternRng::new(seed, index);
        counts_in_place(rates, &mut rng, scratch);
    }
}

crate::simd::multiversion! {
    /// [`observe_pattern`] with this thread's scratch, compiled per instruction-set level
    /// ([`crate::simd`]).
    fn observe_with(amplitudes: &mut [f32], seed: u64, index: u64, scratch: &mut Scratch) {
        let mut rng = PatternRng::new(seed, index);
        let mut rates = std::mem::take(&mut scratch.rates);
        for chunk in amplitudes.chunks_mut(BLOCK) {
            rates.resize(chunk.len(), 0.0);
            for (r, &a) in rates.iter_mut().zip(chunk.iter()) {
                let a = f64::from(a);
                // a < 0 would square to a valid rate; NaN fails the test too.
                *r = if a >= 0.0 { a * a } else { f64::NAN };
            }
            counts_from_amplitudes(&mut rates, chunk, &mut rng, scratch);
            write_roots(chunk, &rates);
        }
        scratch.rates = rates;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array};

    fn pattern_stack(m: usize, n: usize) -> Array3<f32> {
        // Rates spanning 0 .. 1e8 over the pixels, different per pattern.
        Array::from_shape_fn((m, n, n), |(p, r, c)| {
            let t = ((r * n + c) as f32 / (n * n) as f32) * 16.0 - 8.0 + p as f32 * 0.01;
            if (r + c) % 7 == 0 {
                0.0
            } else {
                10f32.powf(t / 2.0)
            }
        })
    }

    #[test]
    fn zero_amplitudes_stay_zero() {
        let a = Array3::<f32>::zeros((3, 4, 4));
        let out = poisson_amplitudes(a.view(), 1, 0).ok();
        assert_eq!(out, Some(a));
    }

    #[test]
    fn every_instruction_set_gives_the_same_counts() {
        use crate::simd::{with_cap, Level};
        // Rates across all regimes, two block lengths (a 64 x 64 pattern and a ragged one).
        for n in [64usize, 71] {
            let a = pattern_stack(3, n);
            let run = |cap| {
                with_cap(cap, || {
                    let mut out = a.clone();
                    for (i, mut p) in out.outer_iter_mut().enumerate() {
                        if let Some(s) = p.as_slice_mut() {
                            observe_pattern(s, 21, i as u64);
                        }
                    }
                    out
                })
            };
            let base = run(Level::Baseline);
            assert_eq!(run(Level::Avx2), base, "avx2, n={n}");
            assert_eq!(run(Level::Avx512), base, "avx512, n={n}");
        }
    }

    #[test]
    fn squares_are_integers() {
        let a = pattern_stack(4, 16);
        let out = poisson_amplitudes(a.view(), 9, 0).unwrap();
        assert_eq!(out.dim(), a.dim());
        for (&x, &o) in a.iter().zip(out.iter()) {
            let k = f64::from(o) * f64::from(o);
            if x == 0.0 {
                assert_eq!(o, 0.0);
            } else if k < 1e6 {
                assert!((k - k.round()).abs() < 1e-6 * k.max(1.0), "{x} -> {o}");
            }
        }
    }

    #[test]
    fn streams_are_deterministic() {
        let a = pattern_stack(5, 8);
        let x = poisson_amplitudes(a.view(), 42, 0).unwrap();
        let y = poisson_amplitudes(a.view(), 42, 0).unwrap();
        let z = poisson_amplitudes(a.view(), 43, 0).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Each pattern has its own stream: identical inputs, different noise.
        let same = Array3::from_elem((2, 8, 8), 3.0f32);
        let o = poisson_amplitudes(same.view(), 1, 0).unwrap();
        assert_ne!(o.slice(s![0, .., ..]), o.slice(s![1, .., ..]));
    }

    #[test]
    fn chunking_and_threads_do_not_matter() {
        let a = pattern_stack(13, 8);
        let whole = poisson_amplitudes(a.view(), 7, 100).unwrap();
        let head = poisson_amplitudes(a.slice(s![..5, .., ..]), 7, 100).unwrap();
        let tail = poisson_amplitudes(a.slice(s![5.., .., ..]), 7, 105).unwrap();
        assert_eq!(whole.slice(s![..5, .., ..]), head);
        assert_eq!(whole.slice(s![5.., .., ..]), tail);
        // One pattern at a time, serially, through the fused-simulation entry point.
        let mut serial = a.clone();
        for (i, mut p) in serial.outer_iter_mut().enumerate() {
            if let Some(sl) = p.as_slice_mut() {
                observe_pattern(sl, 7, 100 + i as u64);
            }
        }
        assert_eq!(whole, serial);
        // A single-thread pool gives the same bytes.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build();
        if let Ok(pool) = one {
            let single = pool.install(|| poisson_amplitudes(a.view(), 7, 100).unwrap());
            assert_eq!(whole, single);
        }
    }

    #[test]
    fn non_standard_layout_input() {
        let a = pattern_stack(3, 6);
        let t = a.view().reversed_axes(); // (6, 6, 3), Fortran order
        let owned = t.as_standard_layout().into_owned();
        let x = poisson_amplitudes(t, 3, 0).unwrap();
        let y = poisson_amplitudes(owned.view(), 3, 0).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn counts_match_sampler() {
        let rates = Array1::from(vec![0.0, 0.5, 12.0, 1e6]);
        let got = poisson_counts(rates.view(), 5, 2).unwrap();
        let mut rng = PatternRng::new(5, 2);
        let want: Vec<f64> = rates.iter().map(|&r| poisson(&mut rng, r)).collect();
        assert_eq!(got.to_vec(), want);
        assert_eq!(got[0], 0.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let mut a = Array3::<f32>::ones((2, 3, 3));
        a[[1, 2, 0]] = -1.0;
        match poisson_amplitudes(a.view(), 0, 0) {
            Err(Error::InvalidArgument { name, got, .. }) => {
                assert_eq!(name, "amplitudes");
                assert!(got.contains("-1"), "{got}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        a[[1, 2, 0]] = f32::NAN;
        assert!(poisson_amplitudes(a.view(), 0, 0).is_err());
        for bad in [-0.5, f64::NAN, f64::INFINITY] {
            let r = Array1::from(vec![1.0, bad]);
            match poisson_counts(r.view(), 0, 0) {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "rates"),
                other => panic!("expected an error, got {other:?}"),
            }
        }
        let mut p = [1.0f32, -2.0, f32::NAN, 0.0];
        observe_pattern(&mut p, 0, 0);
        assert!(p[1].is_nan() && p[2].is_nan() && p[3] == 0.0);
    }

    #[test]
    fn empty_inputs() {
        let a = Array3::<f32>::zeros((0, 4, 4));
        assert_eq!(poisson_amplitudes(a.view(), 0, 0).ok(), Some(a));
        let b = Array3::<f32>::zeros((2, 0, 4));
        assert_eq!(poisson_amplitudes(b.view(), 0, 0).ok(), Some(b));
        let r = Array1::<f64>::zeros(0);
        assert_eq!(poisson_counts(r.view(), 0, 0).ok(), Some(r));
    }
}
