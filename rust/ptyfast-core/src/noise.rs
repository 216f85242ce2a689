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
//! process, ~230 kB). PTRS takes 1.1–1.3 rounds on average; its exact acceptance test uses a
//! cancellation-free log-probability (Loader's saddle-point form) valid for any `λ`, evaluated
//! with rigorous error bounds so that the library logarithm is needed only when the two sides
//! are within ~1e-6 of each other. Above 2^53 a count is the exact sample rounded to `f64`.
//! Details in the `poisson`, `tables` and `block` submodules.
//!
//! **Streams.** Pattern `i` of a call with `seed` and `first_index` draws from its own
//! generator, derived from `(seed, first_index + i)` alone (index arithmetic wraps modulo
//! 2^64), so a dataset simulated in one call, in chunks (`first_index`), or on any number of
//! threads is bit-identical; no random state lives in a thread (only scratch buffers do).
//! Two streams exist, chosen by [`PoissonStream`]; both sample the exact law above with the
//! same methods and differ only in where the uniforms come from:
//!
//! * **v1** (the default; its bits never change): one [`PatternRng`]. `key` = first SplitMix64
//!   output of `seed`; `z` = SplitMix64 output number `index` of `key`, i.e. `mix64(key +
//!   (index + 1)·0x9E3779B97F4A7C15)`; the four words of a xoshiro256++ state are the first four
//!   SplitMix64 outputs of `z`. Within a block the faint rates take their uniforms first, then
//!   the tabled ones, then the first PTRS rounds, each regime in pixel order.
//! * **v2**: one [`LanesRng`], eight xoshiro256++ generators interleaved (output `n` is output
//!   `n / 8` of lane `n % 8`), whose steps vectorise. `key` = `mix64(k1 ^ 0x706f6973736e7632)`
//!   with `k1` the first SplitMix64 output of `seed`; `z = mix64(key + (index + 1)·γ)`; lane
//!   `l`'s state is SplitMix64 outputs `4l + 1 … 4l + 4` of `z`. Within a block of `n` pixels
//!   the first `2n` uniforms are keyed by position: pixel `j` owns `(U[2j], U[2j + 1])` for its
//!   first draw (a faint pixel uses the first), so no pixel's draw depends on the regimes of
//!   the others.
//!
//! In both, a uniform is the top 53 bits of an output scaled by 2^-53, the pixels are taken in
//! C order in blocks of [`BLOCK`], and rejected PTRS rounds take fresh pairs after the first
//! draws, in pixel order (the exact orders are in the `block` submodule). `exp`/`ln` come from
//! the platform's libm, so bit-identity across platforms is not promised: a sample can differ
//! only when a uniform falls within an ulp of a decision boundary. Results are identical at
//! every instruction-set level ([`crate::simd`]).
//!
//! Parallelism is over patterns (rayon); a pattern is the unit of work.

mod block;
mod poisson;
mod rng;
mod tables;

use std::mem::MaybeUninit;

use ndarray::{Array1, Array3, ArrayView1, ArrayView3, ArrayViewMut3};
use rayon::prelude::*;

pub use self::block::BLOCK;
use self::block::{
    as_uninit, counts_in_place, observe_in_place, observe_to, with_scratch, Sampling, Scratch,
};
pub use self::poisson::{poisson, FAINT_MAX_RATE, PTRS_MIN_RATE};
pub use self::rng::{LanesRng, PatternRng, Uniforms};
use crate::{Error, Result};

/// Which random stream the Poisson sampler draws from (module docs, "Streams"). Both give
/// exact Poisson samples; for the same `(seed, index)` they give different ones. `V1` is the
/// default and never changes its bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PoissonStream {
    /// One xoshiro256++ generator per pattern ([`PatternRng`]): the original stream.
    #[default]
    V1,
    /// Eight interleaved xoshiro256++ generators per pattern ([`LanesRng`]), faster.
    V2,
}

impl PoissonStream {
    /// Every stream, oldest first.
    pub const ALL: [PoissonStream; 2] = [PoissonStream::V1, PoissonStream::V2];

    /// The stream's name, `"v1"` or `"v2"` (the name recorded in provenance is
    /// `"poisson-" + name`).
    pub fn name(self) -> &'static str {
        match self {
            PoissonStream::V1 => "v1",
            PoissonStream::V2 => "v2",
        }
    }

    /// The stream called `name` (`"v1"` or `"v2"`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`stream`) on any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::invalid("stream", "\"v1\" or \"v2\"", format!("{name:?}")))
    }
}

/// Exact Poisson counts of one pattern's rates: `out[q] ~ Poisson(rates[q])`, drawn from
/// `stream`'s generator for `(seed, index)` in the order of the module docs, so the result
/// depends on nothing else (not on the thread, nor on other patterns). This is the entry point
/// of a per-pattern pipeline stage; with [`PoissonStream::V1`] and `rates = A²` of `f32`
/// amplitudes `A` it gives the counts whose square roots [`observe_pattern`] returns.
///
/// Counts are integer-valued `f64` (rounded to the nearest `f64` above 2^53); a zero rate
/// gives +0 and draws nothing; a negative, NaN or infinite rate gives NaN (validate first).
///
/// # Errors
/// [`Error::InvalidArgument`] (`out`) when `out` and `rates` differ in length.
pub fn sample_counts(
    stream: PoissonStream,
    rates: &[f64],
    seed: u64,
    index: u64,
    out: &mut [f64],
) -> Result<()> {
    if out.len() != rates.len() {
        return Err(Error::invalid(
            "out",
            format!("{} counts (one per rate)", rates.len()),
            out.len().to_string(),
        ));
    }
    out.copy_from_slice(rates);
    with_scratch(|s| match stream {
        PoissonStream::V1 => counts_v1(out, seed, index, s),
        PoissonStream::V2 => counts_v2(out, seed, index, s),
    });
    Ok(())
}

/// `sqrt(Poisson(A²))` for every amplitude of an `(M, N, N)` stack (any `(M, H, W)` works),
/// pattern `i` on `stream`'s generator for `(seed, first_index + i)`, in parallel over
/// patterns.
///
/// # Errors
/// [`Error::InvalidArgument`] (`amplitudes`) on a negative or non-finite amplitude.
pub fn poisson_amplitudes(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
    stream: PoissonStream,
) -> Result<Array3<f32>> {
    let mut out = crate::runtime::uninit::<f32, _>(amplitudes.raw_dim(), "amplitudes")?;
    poisson_amplitudes_into_uninit(amplitudes, seed, first_index, stream, out.view_mut())?;
    // SAFETY: the call succeeded, so it wrote every value of `out`.
    Ok(unsafe { out.assume_init() })
}

/// [`poisson_amplitudes`] into a caller-provided C-contiguous output of the same shape, for
/// callers that split the patterns into pieces (pattern `i` of the piece uses `first_index +
/// i`). It spares the whole-stack copy and the separate validation pass: each pattern is
/// checked while it is in cache, then read once and its observed values written straight to
/// their place in `out` (no copy into `out` first); both steps run at the processor's
/// instruction-set level ([`crate::simd`]). `amplitudes` is not modified.
///
/// Several patterns run in parallel, so call it inside [`crate::runtime::install`]; a single
/// pattern runs on the calling thread and touches no thread pool, so it needs none.
///
/// # Errors
/// [`Error::InvalidArgument`] (`amplitudes`) on a negative or non-finite amplitude, naming the
/// first one in C order (`out` then holds unspecified values); (`out`) when `out` is not
/// C-contiguous or its shape differs (checked before any work).
pub fn poisson_amplitudes_into(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
    stream: PoissonStream,
    mut out: ArrayViewMut3<'_, f32>,
) -> Result<()> {
    let dst = out_slice(&amplitudes, &mut out)?;
    amplitudes_to(amplitudes, seed, first_index, stream, as_uninit(dst))
}

/// [`poisson_amplitudes_into`] into an output whose values need not be initialised (as from
/// [`crate::runtime::uninit`]): on success every value of `out` is written.
///
/// # Errors
/// As [`poisson_amplitudes_into`]; on an error `out` may be partly written.
pub fn poisson_amplitudes_into_uninit(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
    stream: PoissonStream,
    mut out: ArrayViewMut3<'_, MaybeUninit<f32>>,
) -> Result<()> {
    let dst = out_slice(&amplitudes, &mut out)?;
    amplitudes_to(amplitudes, seed, first_index, stream, dst)
}

/// `out` as one C-ordered slice, if it has the shape of `amplitudes` and is C-contiguous.
fn out_slice<'a, T>(
    amplitudes: &ArrayView3<'_, f32>,
    out: &'a mut ArrayViewMut3<'_, T>,
) -> Result<&'a mut [T]> {
    if out.dim() != amplitudes.dim() {
        return Err(Error::invalid(
            "out",
            format!("shape {:?} (as amplitudes)", amplitudes.dim()),
            format!("{:?}", out.dim()),
        ));
    }
    out.as_slice_mut()
        .ok_or_else(|| Error::invalid("out", "a C-contiguous array", "a strided array"))
}

/// The work of [`poisson_amplitudes_into`] once `dst` (the output, C order) is checked.
fn amplitudes_to(
    amplitudes: ArrayView3<'_, f32>,
    seed: u64,
    first_index: u64,
    stream: PoissonStream,
    dst: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let (_, h, w) = amplitudes.dim();
    let input = amplitudes.as_standard_layout();
    let src = input
        .as_slice()
        .ok_or_else(|| Error::Unsupported("amplitudes: standard layout expected".into()))?;
    let pattern = h * w;
    if pattern == 0 {
        return Ok(());
    }
    let one = |i: usize, chunk: &mut [MaybeUninit<f32>], a: &[f32]| {
        let index = first_index.wrapping_add(i as u64);
        with_scratch(|scratch| match stream {
            PoissonStream::V1 => checked_v1(a, chunk, seed, index, scratch),
            PoissonStream::V2 => checked_v2(a, chunk, seed, index, scratch),
        })
        .map(|(j, v)| (i * pattern + j, v))
    };
    // One pattern is one task: done on this thread, touching no thread pool (documented on
    // the public functions, so that callers may skip `runtime::install` for it).
    let first_bad = if src.len() == pattern {
        one(0, dst, src)
    } else {
        dst.par_chunks_mut(pattern)
            .zip(src.par_chunks(pattern))
            .enumerate()
            .filter_map(|(i, (chunk, a))| one(i, chunk, a))
            .min_by_key(|&(j, _)| j)
    };
    match first_bad {
        Some((j, v)) => Err(Error::invalid(
            "amplitudes",
            "finite and non-negative",
            format!("{v} at flat index {j}"),
        )),
        None => Ok(()),
    }
}

/// Poisson counts for a vector of rates, all drawn from `stream`'s generator for `(seed,
/// index)` in the order of the module docs. Counts are integer-valued `f64` (rounded to the
/// nearest `f64` above 2^53). Sequential, on the calling thread: it touches no thread pool.
///
/// # Errors
/// [`Error::InvalidArgument`] (`rates`) on a negative or non-finite rate.
pub fn poisson_counts(
    rates: ArrayView1<'_, f64>,
    seed: u64,
    index: u64,
    stream: PoissonStream,
) -> Result<Array1<f64>> {
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
    with_scratch(|s| match stream {
        PoissonStream::V1 => counts_v1(x, seed, index, s),
        PoissonStream::V2 => counts_v2(x, seed, index, s),
    });
    Ok(out)
}

/// Index and value of the first negative, NaN or infinite entry. A branch-free pass per chunk
/// first, so that the common all-valid case runs at memory speed.
#[inline(always)]
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

/// Replaces each amplitude of one pattern by `sqrt(Poisson(A²))`, drawing from stream v1 of
/// `(seed, index)` in the order of the module docs. Used by the fused simulation; infallible:
/// amplitudes are finite and non-negative by construction there, and any that is not becomes
/// NaN.
pub fn observe_pattern(amplitudes: &mut [f32], seed: u64, index: u64) {
    observe_pattern_with(PoissonStream::V1, amplitudes, seed, index);
}

/// [`observe_pattern`] on the generator of `stream`.
pub fn observe_pattern_with(stream: PoissonStream, amplitudes: &mut [f32], seed: u64, index: u64) {
    with_scratch(|scratch| match stream {
        PoissonStream::V1 => observe_v1(amplitudes, seed, index, scratch),
        PoissonStream::V2 => observe_v2(amplitudes, seed, index, scratch),
    });
}

/// The body of [`observe_pattern_with`] for one generator.
#[inline(always)]
fn observe_body<U: Sampling>(amplitudes: &mut [f32], rng: &mut U, scratch: &mut Scratch) {
    observe_in_place(amplitudes, rng, scratch);
}

// The per-pattern bodies, compiled per instruction-set level ([`crate::simd`]).
crate::simd::multiversion! {
    /// [`observe_body`] on stream v1.
    fn observe_v1(amplitudes: &mut [f32], seed: u64, index: u64, scratch: &mut Scratch) {
        observe_body(amplitudes, &mut PatternRng::new(seed, index), scratch);
    }
}

/// Replaces each rate of one pattern (`f64`, finite and `≥ 0`) by an exact Poisson count drawn
/// from stream v1 of `(seed, index)`, in the order of the module docs: the counts whose square
/// roots [`observe_pattern`] writes when the rates are its squared amplitudes. Infallible: an
/// invalid rate becomes NaN. ([`sample_counts`] is the same for either stream.)
pub fn counts_from_rates(rates: &mut [f64], seed: u64, index: u64) {
    with_scratch(|scratch| counts_v1(rates, seed, index, scratch));
}

/// [`counts_from_rates`] on the generator of `stream`: in place, infallible (an invalid rate
/// becomes NaN), the counts [`sample_counts`] writes for the same arguments.
pub fn counts_from_rates_with(stream: PoissonStream, rates: &mut [f64], seed: u64, index: u64) {
    with_scratch(|scratch| match stream {
        PoissonStream::V1 => counts_v1(rates, seed, index, scratch),
        PoissonStream::V2 => counts_v2(rates, seed, index, scratch),
    });
}

crate::simd::multiversion! {
    /// [`observe_body`] on stream v2.
    fn observe_v2(amplitudes: &mut [f32], seed: u64, index: u64, scratch: &mut Scratch) {
        observe_body(amplitudes, &mut LanesRng::new(seed, index), scratch);
    }
}

/// One pattern of [`poisson_amplitudes_into`]: the first invalid amplitude of `src` (then
/// `dst` is left as it was), else `dst` = the observed `src`, read and written in one pass.
#[inline(always)]
fn checked_body<U: Sampling>(
    src: &[f32],
    dst: &mut [MaybeUninit<f32>],
    rng: &mut U,
    scratch: &mut Scratch,
) -> Option<(usize, f64)> {
    let bad = first_invalid(src);
    if bad.is_none() {
        observe_to(src, dst, rng, scratch);
    }
    bad
}

crate::simd::multiversion! {
    /// [`checked_body`] on stream v1.
    fn checked_v1(
        src: &[f32],
        dst: &mut [MaybeUninit<f32>],
        seed: u64,
        index: u64,
        scratch: &mut Scratch,
    ) -> Option<(usize, f64)> {
        checked_body(src, dst, &mut PatternRng::new(seed, index), scratch)
    }
}

crate::simd::multiversion! {
    /// [`checked_body`] on stream v2.
    fn checked_v2(
        src: &[f32],
        dst: &mut [MaybeUninit<f32>],
        seed: u64,
        index: u64,
        scratch: &mut Scratch,
    ) -> Option<(usize, f64)> {
        checked_body(src, dst, &mut LanesRng::new(seed, index), scratch)
    }
}

crate::simd::multiversion! {
    /// Counts in place on stream v1.
    fn counts_v1(x: &mut [f64], seed: u64, index: u64, scratch: &mut Scratch) {
        counts_in_place(x, &mut PatternRng::new(seed, index), scratch);
    }
}

crate::simd::multiversion! {
    /// Counts in place on stream v2.
    fn counts_v2(x: &mut [f64], seed: u64, index: u64, scratch: &mut Scratch) {
        counts_in_place(x, &mut LanesRng::new(seed, index), scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array};
    use PoissonStream::V1;

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
        let out = poisson_amplitudes(a.view(), 1, 0, V1).ok();
        assert_eq!(out, Some(a));
    }

    #[test]
    fn every_instruction_set_gives_the_same_counts() {
        use crate::simd::{with_cap, Level};
        // Rates across all regimes, two block lengths (a 64 x 64 pattern and a ragged one).
        for stream in PoissonStream::ALL {
            for n in [64usize, 71] {
                let a = pattern_stack(3, n);
                let run = |cap| {
                    with_cap(cap, || {
                        let mut out = a.clone();
                        let mut counts = Vec::new();
                        for (i, mut p) in out.outer_iter_mut().enumerate() {
                            if let Some(s) = p.as_slice_mut() {
                                let rates: Vec<f64> = s
                                    .iter()
                                    .map(|&v| f64::from(v) * f64::from(v) * 0.7)
                                    .collect();
                                let mut k = vec![0.0; rates.len()];
                                let r = sample_counts(stream, &rates, 21, i as u64, &mut k);
                                assert!(r.is_ok());
                                counts.extend(k);
                                observe_pattern_with(stream, s, 21, i as u64);
                            }
                        }
                        (out, counts)
                    })
                };
                let base = run(Level::Baseline);
                assert_eq!(run(Level::Avx2), base, "{stream:?} avx2, n={n}");
                assert_eq!(run(Level::Avx512), base, "{stream:?} avx512, n={n}");
            }
        }
    }

    /// Rates over 16 decades and zeros, three 64 x 64 patterns (the pinned tests' input).
    fn pinned_input() -> Vec<f32> {
        (0..3 * 4096usize)
            .map(|i| {
                let t = ((i * 7919) % 4096) as f64 / 4096.0 * 16.0 - 6.0;
                if i % 11 == 0 {
                    0.0
                } else {
                    10f64.powf(t / 2.0) as f32
                }
            })
            .collect()
    }

    /// FNV-1a over 64-bit words.
    fn fnv(bits: impl Iterator<Item = u64>) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bits {
            h ^= b;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    #[test]
    fn stream_v1_keeps_its_bits() {
        // Digests of the original v1 sampler's output (before the bulk-uniform rewrite); v1
        // must reproduce them forever (README, "Noise streams").
        let mut a = pinned_input();
        for (p, c) in a.chunks_mut(4096).enumerate() {
            observe_pattern(c, 2024, 5 + p as u64);
        }
        let amp = fnv(a.iter().map(|v| u64::from(v.to_bits())));
        assert_eq!(amp, 0x04f7_6904_0f91_900c);
        let rates: Vec<f64> = pinned_input()
            .iter()
            .map(|&v| f64::from(v) * f64::from(v) * 0.9)
            .collect();
        let mut h = Vec::new();
        for (p, c) in rates.chunks(4096).enumerate() {
            let mut k = vec![0.0; c.len()];
            assert!(sample_counts(V1, c, 3, p as u64, &mut k).is_ok());
            h.extend(k.iter().map(|v| v.to_bits()));
        }
        assert_eq!(fnv(h.into_iter()), 0xdfc3_3b26_8dc5_e325);
    }

    #[test]
    fn streams_are_keyed_and_distinct() {
        let a = pattern_stack(6, 16);
        for stream in PoissonStream::ALL {
            let whole = poisson_amplitudes(a.view(), 7, 40, stream).unwrap();
            let head = poisson_amplitudes(a.slice(s![..2, .., ..]), 7, 40, stream).unwrap();
            let tail = poisson_amplitudes(a.slice(s![2.., .., ..]), 7, 42, stream).unwrap();
            assert_eq!(whole.slice(s![..2, .., ..]), head);
            assert_eq!(whole.slice(s![2.., .., ..]), tail);
            let again = poisson_amplitudes(a.view(), 7, 40, stream).unwrap();
            assert_eq!(whole, again);
            assert_ne!(whole, poisson_amplitudes(a.view(), 8, 40, stream).unwrap());
        }
        let v1 = poisson_amplitudes(a.view(), 7, 40, V1).unwrap();
        let v2 = poisson_amplitudes(a.view(), 7, 40, PoissonStream::V2).unwrap();
        assert_ne!(v1, v2);
    }

    #[test]
    fn stream_names() {
        for s in PoissonStream::ALL {
            assert_eq!(PoissonStream::from_name(s.name()), Ok(s));
        }
        assert_eq!(PoissonStream::default(), V1);
        match PoissonStream::from_name("v3") {
            Err(Error::InvalidArgument { name, got, .. }) => {
                assert_eq!(name, "stream");
                assert!(got.contains("v3"));
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn sample_counts_checks_lengths_and_matches_observe() {
        let mut out = vec![0.0; 3];
        assert!(sample_counts(V1, &[1.0, 2.0], 0, 0, &mut out).is_err());
        // Counts of A² are the squares of the observed amplitudes, for both streams.
        let a = pattern_stack(1, 64);
        for stream in PoissonStream::ALL {
            let flat: Vec<f32> = a.iter().copied().collect();
            let rates: Vec<f64> = flat.iter().map(|&v| f64::from(v) * f64::from(v)).collect();
            let mut k = vec![0.0; rates.len()];
            assert!(sample_counts(stream, &rates, 5, 9, &mut k).is_ok());
            let mut obs = flat.clone();
            observe_pattern_with(stream, &mut obs, 5, 9);
            for (&kk, &o) in k.iter().zip(&obs) {
                assert_eq!(o, kk.sqrt() as f32);
            }
        }
    }

    #[test]
    fn squares_are_integers() {
        let a = pattern_stack(4, 16);
        let out = poisson_amplitudes(a.view(), 9, 0, V1).unwrap();
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
    fn counts_of_huge_rates_are_integers() {
        // In [2^51, 2^52) doubles are spaced by 1/2: a rate there may be a half-integer, and
        // its count must still be an integer (it once kept the half). Above, all are integers.
        let p51 = 2_251_799_813_685_248.0f64;
        let mut rates = Vec::new();
        for x in [p51, 1.5 * p51, 2.0 * p51 - 1.0, 2.0 * p51, 1e17] {
            rates.extend([x, x + 0.5, x - 0.5, x.next_up()]);
        }
        use crate::simd::{with_cap, Level};
        for (stream, level) in PoissonStream::ALL
            .into_iter()
            .flat_map(|s| [Level::Baseline, Level::Avx2, Level::Avx512].map(|l| (s, l)))
        {
            for seed in 0..20 {
                let mut k = vec![0.0; rates.len()];
                let r = with_cap(level, || sample_counts(stream, &rates, seed, 0, &mut k));
                assert!(r.is_ok());
                for (&r, &c) in rates.iter().zip(&k) {
                    assert_eq!(c, c.floor(), "{stream:?} {level:?} λ = {r}: {c}");
                    // Within 40 standard deviations (√λ < 3.2e8 here).
                    assert!((c - r).abs() < 40.0 * r.sqrt(), "{stream:?} λ = {r}: {c}");
                }
            }
        }
    }

    #[test]
    fn streams_are_deterministic() {
        let a = pattern_stack(5, 8);
        let x = poisson_amplitudes(a.view(), 42, 0, V1).unwrap();
        let y = poisson_amplitudes(a.view(), 42, 0, V1).unwrap();
        let z = poisson_amplitudes(a.view(), 43, 0, V1).unwrap();
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Each pattern has its own stream: identical inputs, different noise.
        let same = Array3::from_elem((2, 8, 8), 3.0f32);
        let o = poisson_amplitudes(same.view(), 1, 0, V1).unwrap();
        assert_ne!(o.slice(s![0, .., ..]), o.slice(s![1, .., ..]));
    }

    #[test]
    fn chunking_and_threads_do_not_matter() {
        let a = pattern_stack(13, 8);
        let whole = poisson_amplitudes(a.view(), 7, 100, V1).unwrap();
        let head = poisson_amplitudes(a.slice(s![..5, .., ..]), 7, 100, V1).unwrap();
        let tail = poisson_amplitudes(a.slice(s![5.., .., ..]), 7, 105, V1).unwrap();
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
            let single = pool.install(|| poisson_amplitudes(a.view(), 7, 100, V1).unwrap());
            assert_eq!(whole, single);
        }
    }

    #[test]
    fn non_standard_layout_input() {
        let a = pattern_stack(3, 6);
        let t = a.view().reversed_axes(); // (6, 6, 3), Fortran order
        let owned = t.as_standard_layout().into_owned();
        let x = poisson_amplitudes(t, 3, 0, V1).unwrap();
        let y = poisson_amplitudes(owned.view(), 3, 0, V1).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn counts_match_sampler() {
        let rates = Array1::from(vec![0.0, 0.5, 12.0, 1e6]);
        let got = poisson_counts(rates.view(), 5, 2, V1).unwrap();
        let mut rng = PatternRng::new(5, 2);
        let want: Vec<f64> = rates.iter().map(|&r| poisson(&mut rng, r)).collect();
        assert_eq!(got.to_vec(), want);
        assert_eq!(got[0], 0.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let mut a = Array3::<f32>::ones((2, 3, 3));
        a[[1, 2, 0]] = -1.0;
        match poisson_amplitudes(a.view(), 0, 0, V1) {
            Err(Error::InvalidArgument { name, got, .. }) => {
                assert_eq!(name, "amplitudes");
                assert!(got.contains("-1"), "{got}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        a[[1, 2, 0]] = f32::NAN;
        assert!(poisson_amplitudes(a.view(), 0, 0, V1).is_err());
        for bad in [-0.5, f64::NAN, f64::INFINITY] {
            let r = Array1::from(vec![1.0, bad]);
            match poisson_counts(r.view(), 0, 0, V1) {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "rates"),
                other => panic!("expected an error, got {other:?}"),
            }
        }
        let mut p = [1.0f32, -2.0, f32::NAN, 0.0];
        observe_pattern(&mut p, 0, 0);
        assert!(p[1].is_nan() && p[2].is_nan() && p[3] == 0.0);
    }

    #[test]
    fn into_matches_owned_and_checks_its_arguments() {
        let a = pattern_stack(5, 16);
        for stream in PoissonStream::ALL {
            let want = poisson_amplitudes(a.view(), 3, 10, stream).unwrap();
            // Whole, and in two pieces whose first indices follow on.
            let mut out = Array3::from_elem(a.dim(), -7.0f32);
            assert!(poisson_amplitudes_into(a.view(), 3, 10, stream, out.view_mut()).is_ok());
            assert_eq!(out, want);
            let mut out = Array3::from_elem(a.dim(), -7.0f32);
            let (head, tail) = out.view_mut().split_at(ndarray::Axis(0), 2);
            assert!(poisson_amplitudes_into(a.slice(s![..2, .., ..]), 3, 10, stream, head).is_ok());
            assert!(poisson_amplitudes_into(a.slice(s![2.., .., ..]), 3, 12, stream, tail).is_ok());
            assert_eq!(out, want);
            // A non-standard-layout input gives the same as its standard copy.
            let t = a.view().permuted_axes([0, 2, 1]);
            let mut x = Array3::zeros(t.dim());
            assert!(poisson_amplitudes_into(t, 3, 10, stream, x.view_mut()).is_ok());
            let y = poisson_amplitudes(t.as_standard_layout().view(), 3, 10, stream).unwrap();
            assert_eq!(x, y);
            // Into an uninitialised output (as the Python binding does), whole and in pieces.
            let mut u = crate::runtime::uninit::<f32, _>(a.raw_dim(), "amplitudes").unwrap();
            let (head, tail) = u.view_mut().split_at(ndarray::Axis(0), 3);
            let (h, t) = (a.slice(s![..3, .., ..]), a.slice(s![3.., .., ..]));
            assert!(poisson_amplitudes_into_uninit(h, 3, 10, stream, head).is_ok());
            assert!(poisson_amplitudes_into_uninit(t, 3, 13, stream, tail).is_ok());
            // SAFETY: both calls succeeded, so every value was written.
            assert_eq!(unsafe { u.assume_init() }, want);
        }
        let mut u = crate::runtime::uninit::<f32, _>(ndarray::Dim([5, 16, 15]), "x").unwrap();
        match poisson_amplitudes_into_uninit(a.view(), 0, 0, PoissonStream::V2, u.view_mut()) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "out"),
            other => panic!("expected an error, got {other:?}"),
        }
        // Wrong shape or layout of `out`: an error naming it.
        let mut small = Array3::<f32>::zeros((4, 16, 16));
        match poisson_amplitudes_into(a.view(), 0, 0, V1, small.view_mut()) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "out"),
            other => panic!("expected an error, got {other:?}"),
        }
        let mut fortran = Array3::<f32>::zeros((16, 16, 5));
        let strided = fortran.view_mut().reversed_axes();
        match poisson_amplitudes_into(a.view(), 0, 0, V1, strided) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "out"),
            other => panic!("expected an error, got {other:?}"),
        }
        // The first invalid amplitude in C order is named, whichever thread meets it first.
        let mut bad = a.clone();
        bad[[4, 0, 1]] = f32::NAN;
        bad[[1, 3, 2]] = -2.5;
        let mut out = Array3::zeros(a.dim());
        match poisson_amplitudes_into(bad.view(), 0, 0, V1, out.view_mut()) {
            Err(Error::InvalidArgument { name, got, .. }) => {
                assert_eq!(name, "amplitudes");
                assert_eq!(got, format!("-2.5 at flat index {}", 256 + 3 * 16 + 2));
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn empty_inputs() {
        let a = Array3::<f32>::zeros((0, 4, 4));
        assert_eq!(poisson_amplitudes(a.view(), 0, 0, V1).ok(), Some(a));
        let b = Array3::<f32>::zeros((2, 0, 4));
        assert_eq!(poisson_amplitudes(b.view(), 0, 0, V1).ok(), Some(b));
        let r = Array1::<f64>::zeros(0);
        assert_eq!(poisson_counts(r.view(), 0, 0, V1).ok(), Some(r));
    }
}
