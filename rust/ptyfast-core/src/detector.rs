//! The detector stage: what a pixel detector makes of the expected photons of one pattern.
//!
//! The acquisition pipeline ([`crate::acquisition`]) hands this stage the expected number of
//! photons reaching each pixel, `λ_q` (`f64`, one pattern, row-major `N × N`, zero frequency at
//! `[N/2, N/2]`); the stage turns it into the detector's readings, in this order:
//!
//! | # | stage | what it does (per pixel `q`) | randomness |
//! |---|-------|------------------------------|------------|
//! | 1 | shadow | `λ ← 0` where the pixel is flagged [`pixel::BEAMSTOP`] or [`pixel::GAP`] (no photon arrives) | – |
//! | 2 | QE | `λ ← qe · λ` (a detected photon is a Bernoulli thinning, so counts stay Poisson) | – |
//! | 3 | dead time | `λ ← λ / (1 + λ · τ/T)`: the mean of a non-paralyzable counter with dead time `τ` over an exposure `T` (the variance is left Poisson) | – |
//! | 4 | Poisson | `c ~ Poisson(λ)` (exact), or `c = λ` without shot noise | stream `(seed, index)` |
//! | 5 | PSF | `c ← G_σ ⊛ c`, a normalised Gaussian truncated at `⌊4σ + ½⌋` pixels, zero outside the pattern | – |
//! | 6 | dark | `d ~ Poisson(dark)` (exact), or `d = dark` without shot noise | stage [`stage::DARK`]'s lanes |
//! | 7 | gain, offset, read noise | `v = gain · (c + d) + offset + read_noise · z`, `z ~ N(0, 1)` (exact ziggurat) | stage [`stage::READ_NOISE`]'s lanes |
//! | 8 | saturation | `v ← min(v, full_well)` | – |
//! | 9 | quantisation | the output type: `f32`/`f64` round to nearest; `u8`/`u16`/`u32` round half to even, clip below at 0, and above the type's maximum either saturate or wrap modulo 2^bits ([`Overflow`]) | – |
//! | 10 | mask | pixels flagged [`pixel::GAP`] or [`pixel::DEAD`] read 0, else [`pixel::HOT`] the saturation level | – |
//!
//! Units: `λ`, `c`, `d` are photons (detected counts); `gain` is ADU per count, `offset`,
//! `read_noise` and `full_well` are ADU. The ideal detector ([`Detector::default`]) is Poisson
//! counting alone: readings are the counts, drawn from today's stream, so
//! `sqrt(reading)` is bit for bit what [`crate::noise::observe_pattern`] gives for the same
//! amplitudes.
//!
//! **Randomness is keyed per stage.** The Poisson stage of pattern `index` (the dataset-wide
//! pattern number) draws from `PatternRng::new(seed, index)` ([`crate::noise::PatternRng`]):
//! exactly today's stream ("poisson v1"), so the ideal detector keeps today's bits; with
//! [`PoissonStream::V2`] it draws the counts of the noise module's stream v2 for `(seed,
//! index)` instead ([`crate::noise::LanesRng`]). A later
//! stage `k ≥ 1` has its own seed `stage_seed(seed, k) = mix64(seed ⊕ mix64(STAGE_DOMAIN +
//! k))` (`mix64` the SplitMix64 output function, a bijection; `STAGE_DOMAIN =
//! 0x7074_7966_6173_7400`, so no stage shares the Poisson seed) and draws from [`LANES`] = 64
//! interleaved streams per pattern: lane `j` is `PatternRng::new(lane_seed(stage_seed, j),
//! index)` with `lane_seed(s, j) = mix64(s ⊕ mix64(LANE_DOMAIN + j))`, `LANE_DOMAIN =
//! 0x6c61_6e65_0000_0000`. Pixel `q` (C order) takes one output of lane `q mod 64`, pixels in
//! order (the lanes step together, which vectorises); then the read-noise stage's rejected
//! ziggurat tries (about 1 %) take further outputs of their own lane, pixel by pixel in order.
//! Dark counts are stage 2 ([`stage::DARK`]), read noise stage 1 ([`stage::READ_NOISE`]).
//! Every stage draws for every pixel, masked or not, so switching a stage or a mask on or off
//! never moves another stage's draws; the lane count is fixed, so nothing depends on the
//! instruction set, the thread count or chunking.
//!
//! The read noise uses Marsaglia and Tsang's ziggurat (256 layers, tail by Marsaglia's
//! exponential method): an exact normal sampler whose only deviations from the normal law are
//! the 2^-52 granularity of its uniforms and the ~1e-16 rounding of its tables. Dark counts
//! (one fixed rate for every pixel) are drawn by inversion: one 53-bit uniform per pixel
//! against the cumulative distribution of `Poisson(dark)` tabulated once per call (exact up to
//! a tail mass below 2^-59); rates of 32 and more use `noise::poisson` on one stream
//! `PatternRng::new(stage_seed, index)` in pixel order. Neither depends on the shot-noise
//! stream, so another photon sampler leaves them unchanged.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};
use rayon::iter::Either;
use rayon::prelude::*;

use crate::noise::{self, PatternRng};
use crate::normal::{first_try, try_in_layer, ziggurat, ziggurat_from, Ziggurat};
use crate::{Error, Result};

/// What each pixel is: a pixel map holds one `u8` per pattern pixel (row-major), the OR of
/// these flags; 0 is a valid pixel, anything else is masked.
pub mod pixel {
    /// An ordinary, valid pixel (no flag).
    pub const VALID: u8 = 0;
    /// Shadowed by the beamstop: no photon arrives; unless also dead or in a gap, the pixel
    /// still reads dark counts, offset and read noise (and counts the PSF spreads into it).
    pub const BEAMSTOP: u8 = 1;
    /// No sensor (a module gap, or beyond the detector's edge): no photon is detected and the
    /// pixel reads 0.
    pub const GAP: u8 = 2;
    /// A dead pixel: the photons reaching it are detected (and spread by the PSF) but it
    /// reads 0.
    pub const DEAD: u8 = 4;
    /// A hot pixel: reads the saturation level (`full_well`, else the type's maximum), unless
    /// it is also dead or in a gap.
    pub const HOT: u8 = 8;
    /// Every flag.
    pub const ALL: u8 = BEAMSTOP | GAP | DEAD | HOT;
}

/// Stage keys of the per-stage random streams (see the module docs).
pub mod stage {
    /// The Poisson (shot noise) stage: today's stream, `stage_seed(seed, 0) = seed`.
    pub const POISSON: u64 = 0;
    /// Read noise, one standard normal per pixel.
    pub const READ_NOISE: u64 = 1;
    /// Dark counts, one Poisson draw per pixel.
    pub const DARK: u64 = 2;
}

/// Names of the per-pattern statistics, in their column order.
///
/// * `photons`: `Σ λ`, the expected photons reaching the detector plane (before the shadow
///   and QE);
/// * `detected`: `Σ λ` after shadow, QE and dead time: the expected detected counts;
/// * `counts`: the sum of the detected counts as drawn (stage 4; equals `detected` without
///   shot noise);
/// * `readings`: the sum of the written readings over valid pixels;
/// * `saturated`: how many valid pixels were clipped at the full well or the type's maximum
///   (or wrapped).
pub const STATS: [&str; 5] = ["photons", "detected", "counts", "readings", "saturated"];

/// Number of per-pattern statistics ([`STATS`]).
pub const N_STATS: usize = STATS.len();

/// Which exact Poisson stream the shot-noise stage draws from: the one place where a sampler
/// is chosen, so another can be added beside today's without touching the pipeline. The
/// streams are those of [`noise::PoissonStream`] (module docs of [`crate::noise`], "Streams").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoissonStream {
    /// Today's sampler and stream ([`crate::noise`]): the bits of `observe_pattern`.
    V1,
    /// Stream v2 of [`crate::noise`] (eight interleaved generators, faster): the counts of
    /// `noise::sample_counts(PoissonStream::V2, ..)` for the same `(seed, index)`.
    V2,
}

impl PoissonStream {
    /// Every stream, oldest first.
    pub const ALL: [PoissonStream; 2] = [PoissonStream::V1, PoissonStream::V2];

    /// The stream's name in settings and provenance.
    pub fn name(self) -> &'static str {
        self.noise().name()
    }

    /// The stream called `name`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`poisson_stream`) for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::invalid("poisson_stream", "'v1' or 'v2'", format!("{name:?}")))
    }

    /// The noise module's stream of the same name.
    fn noise(self) -> noise::PoissonStream {
        match self {
            PoissonStream::V1 => noise::PoissonStream::V1,
            PoissonStream::V2 => noise::PoissonStream::V2,
        }
    }

    /// Replaces each rate of one pattern by an exact Poisson count from stream `(seed, index)`.
    #[inline(always)]
    fn counts(self, rates: &mut [f64], seed: u64, index: u64) {
        noise::counts_from_rates_with(self.noise(), rates, seed, index);
    }
}

/// What an integer reading does above its type's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Clip at the maximum (a counter with overflow protection, an ADC at full scale).
    Saturate,
    /// Keep the count modulo 2^bits (a counter that rolls over).
    Wrap,
}

impl Overflow {
    /// The behaviour called `name` (`"saturate"` or `"wrap"`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`overflow`) for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "saturate" => Ok(Overflow::Saturate),
            "wrap" => Ok(Overflow::Wrap),
            _ => Err(Error::invalid(
                "overflow",
                "'saturate' or 'wrap'",
                format!("{name:?}"),
            )),
        }
    }
}

/// The detector's parameters (see the module docs for what each does). The default is the
/// ideal detector: exact Poisson counting on today's stream and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    /// The shot-noise stream, or `None` for expected counts (no shot noise, photons or dark).
    pub poisson: Option<PoissonStream>,
    /// Quantum efficiency, `0 < qe ≤ 1`.
    pub qe: f64,
    /// Dead time as a fraction of the exposure, `τ/T ≥ 0` (0: none).
    pub dead_time: f64,
    /// Gaussian point-spread of the detected counts, in pixels (0: none).
    pub psf_sigma_px: f64,
    /// ADU per detected count, `> 0`.
    pub gain: f64,
    /// ADU added to every reading, `≥ 0`.
    pub offset: f64,
    /// Mean dark counts per pixel per frame, `≥ 0`.
    pub dark: f64,
    /// Read noise in ADU rms, `≥ 0`.
    pub read_noise: f64,
    /// Saturation level of the readings in ADU (`> offset`), or none.
    pub full_well: Option<f64>,
    /// Integer readings above the type's maximum saturate or wrap.
    pub overflow: Overflow,
    /// Pixel map of [`pixel`] codes, `N × N` row-major, or `None` (every pixel valid).
    pub pixels: Option<Vec<u8>>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            poisson: Some(PoissonStream::V1),
            qe: 1.0,
            dead_time: 0.0,
            psf_sigma_px: 0.0,
            gain: 1.0,
            offset: 0.0,
            dark: 0.0,
            read_noise: 0.0,
            full_well: None,
            overflow: Overflow::Saturate,
            pixels: None,
        }
    }
}

fn finite_at_least(name: &'static str, v: f64, min: f64) -> Result<()> {
    if v.is_finite() && v >= min {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            format!("finite and >= {min}"),
            v.to_string(),
        ))
    }
}

impl Detector {
    /// Checks every parameter for patterns of `n × n` pixels read as `T`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the parameter: `qe` outside `(0, 1]`; `gain` not
    /// positive; `offset`, `read_noise`, `dark`, `dead_time` or `psf_sigma_px` negative or not
    /// finite (`psf_sigma_px` also above 1e4); `full_well` not above `offset` or above what `T`
    /// holds; `pixels` not of length `n²` or holding an unknown code; hot pixels with neither a
    /// `full_well` nor an integer type (no saturation level to read); for float readings,
    /// `read_noise` above the largest reading / [`Z_MAX`] (its term would not fit them).
    pub fn validate<T: Reading>(&self, n: usize) -> Result<()> {
        if !(self.qe.is_finite() && self.qe > 0.0 && self.qe <= 1.0) {
            return Err(Error::invalid("qe", "in (0, 1]", self.qe.to_string()));
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(Error::invalid(
                "gain",
                "positive and finite",
                self.gain.to_string(),
            ));
        }
        finite_at_least("offset", self.offset, 0.0)?;
        finite_at_least("read_noise", self.read_noise, 0.0)?;
        // Float readings keep negative values: the noise term must fit them (|z| < Z_MAX), or
        // it would read −inf. Integer readings read 0 below 0, so any noise fits them.
        if !T::INTEGER && self.read_noise > T::MAX / Z_MAX {
            return Err(Error::invalid(
                "read_noise",
                format!(
                    "at most {:e} for {} readings (the largest reading / {Z_MAX})",
                    T::MAX / Z_MAX,
                    T::DTYPE
                ),
                self.read_noise.to_string(),
            ));
        }
        finite_at_least("dark", self.dark, 0.0)?;
        finite_at_least("dead_time", self.dead_time, 0.0)?;
        finite_at_least("psf_sigma_px", self.psf_sigma_px, 0.0)?;
        if self.psf_sigma_px > 1e4 {
            return Err(Error::invalid(
                "psf_sigma_px",
                "at most 1e4",
                self.psf_sigma_px.to_string(),
            ));
        }
        if let Some(fw) = self.full_well {
            if !(fw.is_finite() && fw > self.offset) {
                return Err(Error::invalid(
                    "full_well",
                    format!("finite and > offset ({})", self.offset),
                    fw.to_string(),
                ));
            }
            if fw > T::MAX {
                return Err(Error::invalid(
                    "full_well",
                    format!("at most the largest {} ({})", T::DTYPE, T::MAX),
                    fw.to_string(),
                ));
            }
        }
        if let Some(p) = &self.pixels {
            let nn = n.saturating_mul(n);
            if p.len() != nn {
                return Err(Error::invalid(
                    "pixels",
                    format!("an (N, N) = ({n}, {n}) map"),
                    format!("{} values", p.len()),
                ));
            }
            if let Some(bad) = p.iter().find(|&&c| c & !pixel::ALL != 0) {
                return Err(Error::invalid(
                    "pixels",
                    format!("flags within {}", pixel::ALL),
                    format!("code {bad}"),
                ));
            }
            let hot = p.iter().any(|&c| c & pixel::HOT != 0);
            if hot && self.full_well.is_none() && !T::INTEGER {
                return Err(Error::invalid(
                    "pixels",
                    format!(
                        "no hot pixels when the {} readings have no full_well to saturate at",
                        T::DTYPE
                    ),
                    "hot pixels",
                ));
            }
        }
        Ok(())
    }
}

/// A reading type: `f32`, `f64`, `u8`, `u16` or `u32`.
pub trait Reading: Copy + Default + Send + Sync + 'static {
    /// The NumPy name of the type.
    const DTYPE: &'static str;
    /// The largest reading the type holds (finite).
    const MAX: f64;
    /// Whether readings are integers (quantised).
    const INTEGER: bool;
    /// The reading of the analogue value `v` (already clipped at the full well), and whether
    /// the type clipped or wrapped it.
    fn quantise(v: f64, overflow: Overflow) -> (Self, bool);
    /// The reading as `f64` (exact).
    fn to_f64(self) -> f64;
    /// An integer reading as `u64` (exact; the statistics of integer readings sum these).
    /// Float readings are not summed this way, and truncate.
    fn to_u64(self) -> u64;
    /// A pattern's output in this type, as the (non-generic) per-pattern bodies take it.
    fn row(out: &mut [Self]) -> OutRow<'_>;
}

/// One pattern's readings in one of the reading types: lets a per-pattern body compiled per
/// instruction-set level ([`crate::simd`], not generic) write any of them.
#[derive(Debug)]
pub enum OutRow<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    U8(&'a mut [u8]),
    U16(&'a mut [u16]),
    U32(&'a mut [u32]),
}

impl Reading for f32 {
    const DTYPE: &'static str = "float32";
    const MAX: f64 = f32::MAX as f64;
    const INTEGER: bool = false;
    #[inline(always)]
    fn quantise(v: f64, _: Overflow) -> (Self, bool) {
        // Readings are never NaN; `min` keeps the conversion branch-free.
        (
            v.min(<Self as Reading>::MAX) as f32,
            v > <Self as Reading>::MAX,
        )
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self as u64
    }
    fn row(out: &mut [Self]) -> OutRow<'_> {
        OutRow::F32(out)
    }
}

impl Reading for f64 {
    const DTYPE: &'static str = "float64";
    const MAX: f64 = f64::MAX;
    const INTEGER: bool = false;
    #[inline(always)]
    fn quantise(v: f64, _: Overflow) -> (Self, bool) {
        // Beyond the range (gain · counts overflowing): the largest value, clipped.
        (v.min(<Self as Reading>::MAX), v > <Self as Reading>::MAX)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self as u64
    }
    fn row(out: &mut [Self]) -> OutRow<'_> {
        OutRow::F64(out)
    }
}

macro_rules! integer_reading {
    ($t:ty, $name:literal, $variant:ident) => {
        impl Reading for $t {
            const DTYPE: &'static str = $name;
            const MAX: f64 = <$t>::MAX as f64;
            const INTEGER: bool = true;
            #[inline(always)]
            fn quantise(v: f64, overflow: Overflow) -> (Self, bool) {
                // Round half to even; NaN and negatives read 0 (an ADC's floor).
                let r = v.round_ties_even();
                let r = if r > 0.0 { r } else { 0.0 };
                // Branch-free, so that loops of it vectorise. `r` is a whole number ≥ 0: once
                // clipped at the maximum (< 2^52), `r + 2^52` is exact and its bits are those
                // of 2^52 plus `r`, so integer operations give `r` (Rust's saturating `as`
                // from a float compiles to scalar code); `as u64` saturates beyond 2^64, and
                // below it the cast to the narrower type is the exact residue.
                let q = match overflow {
                    Overflow::Saturate => {
                        let m = r.min(<Self as Reading>::MAX) + TWO52;
                        (m.to_bits() - TWO52.to_bits()) as $t
                    }
                    Overflow::Wrap => (r as u64) as $t,
                };
                (q, r > <Self as Reading>::MAX)
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                u64::from(self)
            }
            fn row(out: &mut [Self]) -> OutRow<'_> {
                OutRow::$variant(out)
            }
        }
    };
}

integer_reading!(u8, "uint8", U8);
integer_reading!(u16, "uint16", U16);
integer_reading!(u32, "uint32", U32);

/// The SplitMix64 output function (a bijection of `u64`).
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Domain constant of the stage seeds ("ptyfast" and a zero byte).
const STAGE_DOMAIN: u64 = 0x7074_7966_6173_7400;

/// The seed of stage `stage`'s streams: `seed` itself for the Poisson stage (today's stream),
/// else `mix64(seed ⊕ mix64(STAGE_DOMAIN + stage))` (module docs).
pub fn stage_seed(seed: u64, stage: u64) -> u64 {
    if stage == stage::POISSON {
        seed
    } else {
        mix64(seed ^ mix64(STAGE_DOMAIN.wrapping_add(stage)))
    }
}

// --------------------------------------------------------------------------- read noise

/// Every standard normal the read-noise stage draws is below this in magnitude: the ziggurat's
/// layers end at `ZIG_R` (≈ 3.654), and its tail sampler returns `ZIG_R + x` with
/// `x = −ln(u₁)/ZIG_R`, `u₁ ≥ 2⁻⁵³`, so `|z| ≤ ZIG_R + 53·ln 2 / ZIG_R < 13.71` (tested).
/// [`Detector::validate`] keeps `read_noise · z` within float readings with it.
pub const Z_MAX: f64 = 16.0;

/// 2^53.
const TWO53: f64 = 9_007_199_254_740_992.0;

/// 2^52: adding it to a whole number in `[0, 2^52)` puts that number in the low bits.
const TWO52: f64 = 4_503_599_627_370_496.0;

// --------------------------------------------------------------------------- lanes

/// The dark-count and read-noise stages draw from this many interleaved streams: pixel `q`
/// (C order) takes its draws from lane `q mod LANES`, in pixel order. Fixed, so the bits do
/// not depend on the instruction set; the lanes are stepped together (the loops vectorise).
pub const LANES: usize = 64;
// The read-noise sweep marks a chunk's rejected tries in one `u64`.
const _: () = assert!(LANES <= 64);

/// Domain constant of the lane seeds ("lane").
const LANE_DOMAIN: u64 = 0x6c61_6e65_0000_0000;

/// The seed of lane `j` of a stage whose seed is `s`: `mix64(s ⊕ mix64(LANE_DOMAIN + j))`.
fn lane_seed(s: u64, j: usize) -> u64 {
    mix64(s ^ mix64(LANE_DOMAIN.wrapping_add(j as u64)))
}

/// SplitMix64 increment (the golden-ratio constant).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Per-call keys of a stage's lanes: lane `j`'s is the `key` from which
/// `PatternRng::new(lane_seed(s, j), index)` derives every pattern's state.
#[derive(Debug, Clone)]
struct LaneKeys([u64; LANES]);

impl LaneKeys {
    fn new(stage_seed: u64) -> Self {
        LaneKeys(std::array::from_fn(|j| {
            mix64(lane_seed(stage_seed, j).wrapping_add(GAMMA))
        }))
    }
}

/// [`LANES`] xoshiro256++ streams: lane `j` of a stage seeded `s` for pattern `index` is the
/// stream of `PatternRng::new(lane_seed(s, j), index)`.
#[derive(Debug, Clone)]
struct Lanes {
    s: [[u64; LANES]; 4],
}

impl Lanes {
    /// The lanes of pattern `index` ([`PatternRng`]'s derivation, every lane at once).
    #[inline(always)]
    fn new(keys: &LaneKeys, index: u64) -> Self {
        let step = index.wrapping_add(1).wrapping_mul(GAMMA);
        let mut z = [0u64; LANES];
        for (zj, k) in z.iter_mut().zip(&keys.0) {
            *zj = mix64(k.wrapping_add(step));
        }
        let mut s = [[0u64; LANES]; 4];
        for w in s.iter_mut() {
            for (v, zj) in w.iter_mut().zip(z.iter_mut()) {
                *zj = zj.wrapping_add(GAMMA);
                *v = mix64(*zj);
            }
        }
        Lanes { s }
    }

    /// The next output of every lane.
    #[inline(always)]
    fn next(&mut self) -> [u64; LANES] {
        let mut out = [0u64; LANES];
        self.fill(&mut out);
        out
    }

    /// Fills `out` (a multiple of [`LANES`] long; a shorter tail is left as is) with the
    /// lanes' outputs, lane `q mod LANES` at `out[q]`. Each operation is a loop over the
    /// lanes, which compiles to vector instructions.
    #[inline(always)]
    fn fill(&mut self, out: &mut [u64]) {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut t = [0u64; LANES];
        for o in out.chunks_exact_mut(LANES) {
            for (((o, a), d), (b, t)) in o.iter_mut().zip(&*s0).zip(&*s3).zip(s1.iter().zip(&mut t))
            {
                *o = a.wrapping_add(*d).rotate_left(23).wrapping_add(*a);
                *t = b << 17;
            }
            for (c, a) in s2.iter_mut().zip(&*s0) {
                *c ^= a;
            }
            for (d, b) in s3.iter_mut().zip(&*s1) {
                *d ^= b;
            }
            for (b, c) in s1.iter_mut().zip(&*s2) {
                *b ^= c;
            }
            for (a, d) in s0.iter_mut().zip(&*s3) {
                *a ^= d;
            }
            for (c, t) in s2.iter_mut().zip(&t) {
                *c ^= t;
            }
            for d in s3.iter_mut() {
                *d = d.rotate_left(45);
            }
        }
    }

    /// [`Lanes::next`], by the intrinsics of `LEVEL` (a `multiversion` body's, whose version
    /// runs only where the processor has that level's features) at AVX2 and AVX-512. Stepping
    /// the whole state one operation at a time loads and stores it once per operation (it
    /// does not fit in the vector registers); here each vector of lanes is loaded once and
    /// goes through the whole step in registers. The same operations, so the same bits.
    #[inline(always)]
    fn next_on<const LEVEL: u8>(&mut self) -> [u64; LANES] {
        let mut out = [0u64; LANES];
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::{AVX2, AVX512};
            // SAFETY: `LEVEL` is the level of the `multiversion` version this runs in (the
            // callers' contract, [`analog`]), which runs only where `current()` is that
            // level, which never exceeds `detected()`, which checks these features.
            if LEVEL == AVX512 {
                unsafe { Self::step_avx512(&mut self.s, &mut out) };
                return out;
            }
            if LEVEL == AVX2 {
                unsafe { Self::step_avx2(&mut self.s, &mut out) };
                return out;
            }
        }
        self.fill(&mut out);
        out
    }

    /// One step of every lane, eight at a time (one 512-bit vector per state word).
    ///
    /// # Safety
    /// The processor has AVX-512 F/BW/CD/DQ/VL, AVX2, FMA, BMI1/2, LZCNT and POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,\
        avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
    unsafe fn step_avx512(s: &mut [[u64; LANES]; 4], out: &mut [u64; LANES]) {
        use std::arch::x86_64::*;
        const _: () = assert!(LANES.is_multiple_of(8));
        let [w0, w1, w2, w3] = s;
        let words = w0.chunks_exact_mut(8).zip(w1.chunks_exact_mut(8));
        let words = words.zip(w2.chunks_exact_mut(8).zip(w3.chunks_exact_mut(8)));
        for (o, ((p0, p1), (p2, p3))) in out.chunks_exact_mut(8).zip(words) {
            // SAFETY: every chunk holds 8 `u64`: one unaligned 512-bit load or store.
            unsafe {
                let a = _mm512_loadu_si512(p0.as_ptr().cast());
                let b = _mm512_loadu_si512(p1.as_ptr().cast());
                let c = _mm512_loadu_si512(p2.as_ptr().cast());
                let d = _mm512_loadu_si512(p3.as_ptr().cast());
                let r = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(a, d)), a);
                let t = _mm512_slli_epi64::<17>(b);
                let c = _mm512_xor_si512(c, a);
                let d = _mm512_xor_si512(d, b);
                let b = _mm512_xor_si512(b, c);
                let a = _mm512_xor_si512(a, d);
                let c = _mm512_xor_si512(c, t);
                let d = _mm512_rol_epi64::<45>(d);
                _mm512_storeu_si512(o.as_mut_ptr().cast(), r);
                _mm512_storeu_si512(p0.as_mut_ptr().cast(), a);
                _mm512_storeu_si512(p1.as_mut_ptr().cast(), b);
                _mm512_storeu_si512(p2.as_mut_ptr().cast(), c);
                _mm512_storeu_si512(p3.as_mut_ptr().cast(), d);
            }
        }
    }

    /// One step of every lane, four at a time (one 256-bit vector per state word).
    ///
    /// # Safety
    /// The processor has AVX2, FMA, BMI1/2, LZCNT and POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
    unsafe fn step_avx2(s: &mut [[u64; LANES]; 4], out: &mut [u64; LANES]) {
        use std::arch::x86_64::*;
        const _: () = assert!(LANES.is_multiple_of(4));
        #[inline(always)]
        fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
            // SAFETY: AVX2 (the caller's features).
            unsafe { _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x)) }
        }
        let [w0, w1, w2, w3] = s;
        let words = w0.chunks_exact_mut(4).zip(w1.chunks_exact_mut(4));
        let words = words.zip(w2.chunks_exact_mut(4).zip(w3.chunks_exact_mut(4)));
        for (o, ((p0, p1), (p2, p3))) in out.chunks_exact_mut(4).zip(words) {
            // SAFETY: every chunk holds 4 `u64`: one unaligned 256-bit load or store.
            unsafe {
                let a = _mm256_loadu_si256(p0.as_ptr().cast());
                let b = _mm256_loadu_si256(p1.as_ptr().cast());
                let c = _mm256_loadu_si256(p2.as_ptr().cast());
                let d = _mm256_loadu_si256(p3.as_ptr().cast());
                let r = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(a, d)), a);
                let t = _mm256_slli_epi64::<17>(b);
                let c = _mm256_xor_si256(c, a);
                let d = _mm256_xor_si256(d, b);
                let b = _mm256_xor_si256(b, c);
                let a = _mm256_xor_si256(a, d);
                let c = _mm256_xor_si256(c, t);
                let d = rotl::<45, 19>(d);
                _mm256_storeu_si256(o.as_mut_ptr().cast(), r);
                _mm256_storeu_si256(p0.as_mut_ptr().cast(), a);
                _mm256_storeu_si256(p1.as_mut_ptr().cast(), b);
                _mm256_storeu_si256(p2.as_mut_ptr().cast(), c);
                _mm256_storeu_si256(p3.as_mut_ptr().cast(), d);
            }
        }
    }

    /// The next output of lane `j` alone.
    fn next_lane(&mut self, j: usize) -> u64 {
        let j = j % LANES;
        let [s0, s1, s2, s3] = &mut self.s;
        let out = s0[j]
            .wrapping_add(s3[j])
            .rotate_left(23)
            .wrapping_add(s0[j]);
        let t = s1[j] << 17;
        s2[j] ^= s0[j];
        s3[j] ^= s1[j];
        s1[j] ^= s2[j];
        s0[j] ^= s3[j];
        s2[j] ^= t;
        s3[j] = s3[j].rotate_left(45);
        out
    }

    /// [`Lanes::fill`] for any length: the tail takes the first outputs of one more step.
    #[inline(always)]
    fn fill_all(&mut self, out: &mut [u64]) {
        let full = out.len() - out.len() % LANES;
        let (body, tail) = out.split_at_mut(full);
        self.fill(body);
        if !tail.is_empty() {
            let last = self.next();
            tail.copy_from_slice(&last[..tail.len()]);
        }
    }
}

/// Standard normals for one pattern's pixels into `z` (`bits`, `marks`: scratch of the same
/// length): every pixel's first ziggurat try from one output of its lane (all lanes stepped
/// together), then, pixel by pixel, the extra outputs the ~1 % rejected tries need, from the
/// same lane.
#[inline(always)]
fn normals_into(
    lanes: &mut Lanes,
    zig: &Ziggurat,
    bits: &mut [u64],
    marks: &mut [u8],
    z: &mut [f64],
) {
    lanes.fill_all(bits);
    for ((zq, &b), m) in z.iter_mut().zip(bits.iter()).zip(marks.iter_mut()) {
        let (x, rejected) = first_try(b, zig);
        *zq = x;
        *m = u8::from(rejected);
    }
    // The rejected tries, found eight marks at a time.
    for (c, (mc, (zc, bc))) in marks
        .chunks(8)
        .zip(z.chunks_mut(8).zip(bits.chunks(8)))
        .enumerate()
    {
        if mc.iter().fold(0u8, |a, &m| a | m) == 0 {
            continue;
        }
        for (k, ((zq, &b), &m)) in zc.iter_mut().zip(bc).zip(mc).enumerate() {
            if m != 0 {
                let lane = (c * 8 + k) % LANES;
                *zq = ziggurat_from(b, &mut || lanes.next_lane(lane), zig);
            }
        }
    }
}

/// `n` standard normals as the read-noise stage draws them for `n` pixels of pattern `index`
/// of a stage seeded `stage_seed` (for tests and benches of the sampler).
pub fn standard_normals(n: usize, stage_seed: u64, index: u64) -> Vec<f64> {
    let (mut z, mut bits, mut marks) = (vec![0.0; n], vec![0u64; n], vec![0u8; n]);
    let lanes = &mut Lanes::new(&LaneKeys::new(stage_seed), index);
    normals_into(lanes, ziggurat(), &mut bits, &mut marks, &mut z);
    z
}

// --------------------------------------------------------------------------- dark counts

/// Exact draws of `Poisson(rate)` for one fixed rate (the dark counts of every pixel).
#[derive(Debug, Clone)]
enum DarkSampler {
    /// Inversion: `k = #{j : u ≥ t_j}` for a 53-bit uniform integer `u` (one lane output),
    /// with `t_j = ⌈F(j)·2^53⌉` (`F` the cumulative distribution; the last `t_j` is 2^53).
    /// Comparing integers is exactly comparing `u·2^-53 < F(j)`. The probability beyond the
    /// last tabulated count (below 2^-53) goes to that count.
    Table(Vec<u64>),
    /// Rates of 32 and more: [`noise::poisson`] per pixel, from one stream
    /// `PatternRng::new(stage_seed, index)` in pixel order.
    Large(f64),
}

impl DarkSampler {
    fn new(rate: f64) -> Self {
        if rate >= noise::PTRS_MIN_RATE {
            return DarkSampler::Large(rate);
        }
        // Counts while their probability can still move a threshold (the tail beyond, below
        // 2^-60 for rates < 32, is negligible against the 2^-53 granularity).
        let mut t = Vec::new();
        let (mut p, mut f) = ((-rate).exp(), 0.0f64);
        for k in 1..=200u32 {
            f += p;
            let tk = (f * TWO53).ceil();
            if tk >= TWO53 {
                break;
            }
            t.push(tk as u64);
            p *= rate / f64::from(k);
            if p < 1.0 / (TWO53 * 128.0) && f64::from(k) > rate {
                break;
            }
        }
        t.push(1u64 << 53);
        DarkSampler::Table(t)
    }
}

/// Adds to each `lam[q]` the count `#{j : u ≥ t_j}` of the uniform integer `u = bits[q] >> 11`
/// ([`DarkSampler::Table`]): counts 0 and 1 for every pixel at once, the rare larger ones after
/// (as `+ 1` then `+ (k − 1)`).
#[inline(always)]
fn add_tabled(table: &[u64], lam: &mut [f64], bits: &[u64]) {
    let (t0, t1) = (
        table.first().copied().unwrap_or(u64::MAX),
        table.get(1).copied().unwrap_or(u64::MAX),
    );
    let mut more = false;
    for (l, &b) in lam.iter_mut().zip(bits) {
        let u = b >> 11;
        *l += f64::from(u8::from(u >= t0));
        more |= u >= t1;
    }
    if more {
        for (l, &b) in lam.iter_mut().zip(bits) {
            let u = b >> 11;
            if u >= t1 {
                *l += (table.partition_point(|&t| t <= u) - 1) as f64;
            }
        }
    }
}

/// Adds pattern `index`'s dark counts (a stage seeded `seed`) to `lam` (`bits`: scratch of
/// the same length).
#[inline(always)]
fn add_dark(
    sampler: &DarkSampler,
    keys: &LaneKeys,
    seed: u64,
    index: u64,
    lam: &mut [f64],
    bits: &mut [u64],
) {
    match sampler {
        DarkSampler::Table(table) => {
            Lanes::new(keys, index).fill_all(bits);
            add_tabled(table, lam, bits);
        }
        DarkSampler::Large(rate) => {
            let mut rng = PatternRng::new(seed, index);
            for l in lam.iter_mut() {
                *l += noise::poisson(&mut rng, *rate);
            }
        }
    }
}

/// `n` dark counts of `rate` as the dark stage draws them for `n` pixels of pattern `index`
/// of a stage seeded `stage_seed` (for tests of the sampler).
pub fn dark_counts(n: usize, rate: f64, stage_seed: u64, index: u64) -> Vec<f64> {
    let mut out = vec![0.0; n];
    let mut bits = vec![0u64; n];
    let keys = LaneKeys::new(stage_seed);
    add_dark(
        &DarkSampler::new(rate),
        &keys,
        stage_seed,
        index,
        &mut out,
        &mut bits,
    );
    out
}

// --------------------------------------------------------------------------- PSF

/// SciPy's `gaussian_filter` kernel: `exp(−j²/(2σ²))` for `|j| ≤ ⌊4σ + ½⌋`, normalised to sum 1.
fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-radius..=radius)
        .map(|j| (-0.5 * (j * j) as f64 / (sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// `dst = Σ_j k[j] · src shifted by j − r` along rows (`along_rows`) or columns, zero outside:
/// one axpy of contiguous slices per kernel tap, so the loops vectorise.
#[inline(always)]
fn correlate(src: &[f64], dst: &mut [f64], kernel: &[f64], n: usize, along_rows: bool) {
    dst.iter_mut().for_each(|v| *v = 0.0);
    let r = kernel.len() / 2;
    for (j, &w) in kernel.iter().enumerate() {
        // Output index i reads input index i + s (s may be negative).
        let s = j as isize - r as isize;
        let lo = (-s).max(0) as usize;
        let hi = (n as isize - s).clamp(0, n as isize) as usize;
        if lo >= hi {
            continue;
        }
        if along_rows {
            for (drow, srow) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
                let from = (lo as isize + s) as usize;
                let (Some(d), Some(x)) = (drow.get_mut(lo..hi), srow.get(from..from + hi - lo))
                else {
                    continue;
                };
                for (d, x) in d.iter_mut().zip(x) {
                    *d += w * x;
                }
            }
        } else {
            for i in lo..hi {
                let from = (i as isize + s) as usize;
                let (Some(d), Some(x)) = (
                    dst.get_mut(i * n..(i + 1) * n),
                    src.get(from * n..(from + 1) * n),
                ) else {
                    continue;
                };
                for (d, x) in d.iter_mut().zip(x) {
                    *d += w * x;
                }
            }
        }
    }
}

// --------------------------------------------------------------------------- the stage

/// The detector stage prepared for one call: validated parameters, derived seeds and tables.
#[derive(Debug, Clone)]
pub struct Stage {
    n: usize,
    seed: u64,
    det: Detector,
    /// `1.0` where photons arrive, `0.0` in the beamstop's shadow and in gaps (`None`: all).
    arrive: Option<Vec<f64>>,
    psf: Option<Vec<f64>>,
    dark: DarkSampler,
    dark_keys: LaneKeys,
    read_keys: LaneKeys,
    /// Whether stage 7 changes anything (`gain ≠ 1`, `offset ≠ 0`, dark or read noise).
    analog: bool,
}

/// One worker's buffers for the stage (contents never influence results).
#[derive(Debug, Clone, Default)]
pub struct StageScratch {
    tmp: Vec<f64>,
    /// Lane outputs of a large-rate dark stage, or the read noise's rejected tries (pixel,
    /// bits, value).
    bits: Vec<u64>,
}

impl Stage {
    /// Prepares `detector` for `n × n` patterns read as `T`, noise from `seed`.
    ///
    /// # Errors
    /// As [`Detector::validate`].
    pub fn new<T: Reading>(detector: &Detector, n: usize, seed: u64) -> Result<Self> {
        detector.validate::<T>(n)?;
        let arrive = detector.pixels.as_ref().and_then(|p| {
            let shadowed = |c: u8| c & (pixel::BEAMSTOP | pixel::GAP) != 0;
            p.iter().any(|&c| shadowed(c)).then(|| {
                p.iter()
                    .map(|&c| if shadowed(c) { 0.0 } else { 1.0 })
                    .collect()
            })
        });
        let psf = (detector.psf_sigma_px > 0.0).then(|| gaussian_kernel(detector.psf_sigma_px));
        let d = detector;
        let analog = d.gain != 1.0 || d.offset != 0.0 || d.dark > 0.0 || d.read_noise > 0.0;
        Ok(Stage {
            n,
            seed,
            det: detector.clone(),
            arrive,
            psf,
            dark: DarkSampler::new(detector.dark),
            dark_keys: LaneKeys::new(stage_seed(seed, stage::DARK)),
            read_keys: LaneKeys::new(stage_seed(seed, stage::READ_NOISE)),
            analog,
        })
    }

    /// The pattern size `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// A scratch for [`Stage`]'s per-pattern work.
    pub fn scratch(&self) -> StageScratch {
        StageScratch {
            tmp: vec![0.0; self.n * self.n],
            bits: vec![0; self.n * self.n],
        }
    }
}

/// `Σ x` in `f64` over eight interleaved partial sums combined in a fixed order.
#[inline(always)]
pub(crate) fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Stages 1–8 on one pattern: `lam` (expected photons, `N²`) becomes the analogue readings,
/// clipped at the full well. `sums`, when given, receives `photons`, `detected` and `counts`
/// ([`STATS`]). `index` is the dataset-wide pattern number. Inlined, so that it takes the
/// instruction set of its caller ([`crate::simd`]). `LEVEL` must be the caller's own: the
/// `LEVEL` constant of the `multiversion` body it is called from, since at
/// [`crate::simd::AVX2`] and [`crate::simd::AVX512`] it runs that level's instructions
/// ([`Lanes::next_on`]).
#[inline(always)]
pub(crate) fn analog<const LEVEL: u8>(
    st: &Stage,
    lam: &mut [f64],
    ws: &mut StageScratch,
    index: u64,
    mut sums: Option<&mut [f64]>,
) {
    let d = &st.det;
    let want = sums.is_some();
    let mut put = |k: usize, v: f64| {
        if let Some(s) = sums.as_deref_mut().and_then(|s| s.get_mut(k)) {
            *s = v;
        }
    };
    if want {
        put(0, sum(lam));
    }
    // 1–3: shadow, QE, dead time.
    let (qe, f) = (d.qe, d.dead_time);
    match (&st.arrive, qe != 1.0, f > 0.0) {
        (None, false, false) => {}
        (None, true, false) => lam.iter_mut().for_each(|l| *l *= qe),
        (Some(a), true, false) => {
            for (l, &k) in lam.iter_mut().zip(a) {
                *l = (*l * k) * qe;
            }
        }
        // The general case, one pass; each factor is skipped exactly when it is 1.
        (a, _, _) => {
            let ones = std::iter::repeat(&1.0);
            let arrive = a
                .as_deref()
                .map_or(Either::Right(ones), |a| Either::Left(a.iter()));
            for (l, &k) in lam.iter_mut().zip(arrive) {
                let mut v = *l;
                if a.is_some() {
                    v *= k;
                }
                if qe != 1.0 {
                    v *= qe;
                }
                if f > 0.0 {
                    v /= 1.0 + v * f;
                }
                *l = v;
            }
        }
    }
    if want {
        put(1, sum(lam));
    }
    // 4: shot noise.
    if let Some(stream) = d.poisson {
        stream.counts(lam, st.seed, index);
    }
    if want {
        put(2, sum(lam));
    }
    // 5: PSF.
    if let Some(k) = &st.psf {
        ws.tmp.resize(lam.len(), 0.0);
        correlate(lam, &mut ws.tmp, k, st.n, true);
        correlate(&ws.tmp, lam, k, st.n, false);
    }
    // 6–7: dark counts, gain, offset, read noise; each stage on its own streams.
    if st.analog {
        dark_gain_read::<LEVEL>(st, lam, ws, index);
    }
    // 8: saturation.
    if let Some(fw) = d.full_well {
        lam.iter_mut().for_each(|l| *l = l.min(fw));
    }
}

/// Stages 6–7 on one pattern, 64 pixels (one step of every lane) at a time: dark counts
/// (when shot noise is on), then `v = (gain · (c + d) + offset) + read_noise · z`. The draws
/// and the arithmetic are those of [`add_dark`] followed by [`normals_into`] and the affine
/// map (same lane outputs, same order of the rejected ziggurat tries after the sweep, same
/// operations per pixel, so the same bits), without the full-pattern scratch passes. `LEVEL`
/// as in [`analog`].
#[inline(always)]
fn dark_gain_read<const LEVEL: u8>(st: &Stage, lam: &mut [f64], ws: &mut StageScratch, index: u64) {
    let d = &st.det;
    let (g, o, s) = (d.gain, d.offset, d.read_noise);
    let shot = d.poisson.is_some() && d.dark > 0.0;
    let mean_dark = if shot { 0.0 } else { d.dark };
    // Tabled dark counts are drawn in the sweep; large rates keep their sequential stream.
    let table = match (&st.dark, shot) {
        (DarkSampler::Table(t), true) => Some(t.as_slice()),
        (DarkSampler::Large(_), true) => {
            ws.bits.resize(lam.len(), 0);
            let seed = stage_seed(st.seed, stage::DARK);
            add_dark(&st.dark, &st.dark_keys, seed, index, lam, &mut ws.bits);
            None
        }
        _ => None,
    };
    if table.is_none() && s <= 0.0 {
        lam.iter_mut().for_each(|l| *l = g * (*l + mean_dark) + o);
        return;
    }
    let zig = ziggurat();
    let mut dark_lanes = table.map(|_| Lanes::new(&st.dark_keys, index));
    let mut read_lanes = (s > 0.0).then(|| Lanes::new(&st.read_keys, index));
    // Rejected first tries: (pixel, its 64 bits, its value before the map), in pixel order.
    // Every pixel is mapped in the sweep, which keeps it free of branches (about half the
    // 64-pixel chunks hold a rejected try); a rejected pixel's value is redone after it.
    let rejected = &mut ws.bits;
    rejected.clear();
    let mut before = [0.0f64; LANES];
    let (mut z, mut x_i, mut x_next) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    for (c, chunk) in lam.chunks_mut(LANES).enumerate() {
        if let (Some(lanes), Some(table)) = (dark_lanes.as_mut(), table) {
            add_tabled(table, chunk, &lanes.next_on::<LEVEL>());
        }
        let Some(lanes) = read_lanes.as_mut() else {
            chunk.iter_mut().for_each(|l| *l = g * (*l + mean_dark) + o);
            continue;
        };
        let bits = lanes.next_on::<LEVEL>();
        // The layer bounds x[i], x[i + 1] by scalar loads through a bit mask (the compiler
        // would make vector gathers of a counted loop; on the machines measured, gathers are
        // slowed by microcode and cost more than the whole scalar try); the rest as vectors.
        let mut left = u64::MAX >> (64 - chunk.len());
        while left != 0 {
            let k = left.trailing_zeros() as usize % LANES;
            left &= left - 1;
            let i = (bits[k] & 0xff) as usize;
            (x_i[k], x_next[k]) = (zig.x[i], zig.x[i + 1]);
        }
        let mut bad = 0u64;
        let tries = bits.iter().zip(x_i.iter().zip(&x_next));
        for (k, (zq, (&b, (&lo, &hi)))) in z.iter_mut().zip(tries).enumerate() {
            let rej;
            (*zq, rej) = try_in_layer(b, lo, hi);
            bad |= u64::from(rej) << k;
        }
        bad &= u64::MAX >> (64 - chunk.len());
        for ((l, &zq), x) in chunk.iter_mut().zip(&z).zip(before.iter_mut()) {
            *x = *l;
            *l = (g * (*x + mean_dark) + o) + s * zq;
        }
        while bad != 0 {
            let k = bad.trailing_zeros() as usize % LANES;
            bad &= bad - 1;
            rejected.extend([(c * LANES + k) as u64, bits[k], before[k].to_bits()]);
        }
    }
    if let Some(lanes) = read_lanes.as_mut() {
        for triple in rejected.chunks_exact(3) {
            let &[q, b, x] = triple else { continue };
            let q = q as usize;
            let zq = ziggurat_from(b, &mut || lanes.next_lane(q), zig);
            if let Some(l) = lam.get_mut(q) {
                *l = (g * (f64::from_bits(x) + mean_dark) + o) + s * zq;
            }
        }
    }
}

/// Stages 9–10 on one pattern: the analogue readings `v` (from [`analog`]) quantised into
/// `out` and masked. `stats`, when given (a row of [`N_STATS`]), receives `readings` and
/// `saturated`. Inlined, so that it takes the instruction set of its caller.
#[inline(always)]
pub(crate) fn write(st: &Stage, v: &[f64], out: OutRow<'_>, stats: Option<&mut [f64]>) {
    match out {
        OutRow::F32(o) => write_as(st, v, o, stats),
        OutRow::F64(o) => write_as(st, v, o, stats),
        OutRow::U8(o) => write_as(st, v, o, stats),
        OutRow::U16(o) => write_as(st, v, o, stats),
        OutRow::U32(o) => write_as(st, v, o, stats),
    }
}

#[inline(always)]
fn write_as<T: Reading>(st: &Stage, v: &[f64], out: &mut [T], stats: Option<&mut [f64]>) {
    // The overflow behaviour as a constant in each loop, which then vectorises.
    match st.det.overflow {
        Overflow::Saturate => write_with(st, v, out, stats, Overflow::Saturate),
        Overflow::Wrap => write_with(st, v, out, stats, Overflow::Wrap),
    }
}

#[inline(always)]
fn write_with<T: Reading>(
    st: &Stage,
    v: &[f64],
    out: &mut [T],
    stats: Option<&mut [f64]>,
    overflow: Overflow,
) {
    let d = &st.det;
    let full = d.full_well;
    let hot = T::quantise(full.unwrap_or(T::MAX), overflow).0;
    // Integer readings sum exactly in any order while the total cannot exceed 2^53: then
    // the statistics come from one branch-free pass (an integer sum, the same value as the
    // sum in pixel order) and the mask from another.
    let exact = (out.len() as f64) * T::MAX <= TWO53;
    let stats = match stats {
        Some(s) if !(T::INTEGER && exact) => return write_ordered(st, v, out, s, overflow),
        s => s,
    };
    let map = d.pixels.as_deref();
    if let Some(s) = stats {
        let (total, clipped) = match map {
            Some(m) => {
                quantise_counted(v, out, m.iter().map(|&c| c == pixel::VALID), full, overflow)
            }
            None => quantise_counted(v, out, std::iter::repeat(true), full, overflow),
        };
        put_stats(s, total as f64, clipped);
    } else {
        for (o, &x) in out.iter_mut().zip(v) {
            *o = T::quantise(x, overflow).0;
        }
    }
    if let Some(map) = map {
        for (o, &code) in out.iter_mut().zip(map) {
            let off = code & (pixel::GAP | pixel::DEAD) != 0;
            let on = code & pixel::HOT != 0;
            *o = if off {
                T::default()
            } else if on {
                hot
            } else {
                *o
            };
        }
    }
}

/// Integer readings of `v` into `out`, and over the pixels `valid` marks their total and how
/// many were clipped (by the type or at `full`).
#[inline(always)]
fn quantise_counted<T: Reading>(
    v: &[f64],
    out: &mut [T],
    valid: impl Iterator<Item = bool>,
    full: Option<f64>,
    overflow: Overflow,
) -> (u64, usize) {
    let (mut total, mut clipped) = (0u64, 0usize);
    for ((o, &x), ok) in out.iter_mut().zip(v).zip(valid) {
        let (r, c) = T::quantise(x, overflow);
        *o = r;
        clipped += usize::from(ok & (c | full.is_some_and(|f| x >= f)));
        total += if ok { r.to_u64() } else { 0 };
    }
    (total, clipped)
}

/// [`write_with`] with statistics summed in pixel order (float readings; integer readings
/// whose total could round).
#[inline(always)]
fn write_ordered<T: Reading>(st: &Stage, v: &[f64], out: &mut [T], s: &mut [f64], ov: Overflow) {
    let d = &st.det;
    let full = d.full_well;
    let hot = T::quantise(full.unwrap_or(T::MAX), ov).0;
    let (mut total, mut clipped) = (0.0f64, 0usize);
    for (q, (o, &x)) in out.iter_mut().zip(v).enumerate() {
        let (r, c) = T::quantise(x, ov);
        let code = d
            .pixels
            .as_ref()
            .and_then(|m| m.get(q))
            .copied()
            .unwrap_or(pixel::VALID);
        *o = if code & (pixel::GAP | pixel::DEAD) != 0 {
            T::default()
        } else if code & pixel::HOT != 0 {
            hot
        } else {
            r
        };
        if code == pixel::VALID {
            clipped += usize::from(c | full.is_some_and(|f| x >= f));
            total += r.to_f64();
        }
    }
    put_stats(s, total, clipped);
}

/// Writes `readings` and `saturated` into a row of statistics.
fn put_stats(s: &mut [f64], total: f64, clipped: usize) {
    if let Some(t) = s.get_mut(3) {
        *t = total;
    }
    if let Some(c) = s.get_mut(4) {
        *c = clipped as f64;
    }
}

crate::simd::multiversion! {
    /// One pattern of [`detect_into`], at the widest instruction set.
    fn detect_one(
        st: &Stage,
        lam: &mut [f64],
        ws: &mut StageScratch,
        index: u64,
        out: OutRow<'_>,
        stats: Option<&mut [f64]>,
    ) {
        let mut stats = stats;
        analog::<LEVEL>(st, lam, ws, index, stats.as_deref_mut());
        write(st, lam, out, stats);
    }
}

/// Checks a `(m, n, n)` output is C-contiguous and returns its data.
pub(crate) fn output3<'a, T>(
    name: &'static str,
    a: &'a mut ArrayViewMut3<'_, T>,
    m: usize,
    n: usize,
) -> Result<&'a mut [T]> {
    let shape = format!("C-contiguous ({m}, {n}, {n})");
    if a.dim() != (m, n, n) {
        return Err(Error::invalid(name, shape, format!("{:?}", a.dim())));
    }
    a.as_slice_mut()
        .ok_or_else(|| Error::invalid(name, shape, "a strided array"))
}

/// Checks an optional `(m, N_STATS)` statistics output is C-contiguous and returns its data.
pub(crate) fn output_stats<'a>(
    a: Option<&'a mut ArrayViewMut2<'_, f64>>,
    m: usize,
) -> Result<Option<&'a mut [f64]>> {
    let Some(a) = a else { return Ok(None) };
    let shape = format!("C-contiguous ({m}, {N_STATS})");
    if a.dim() != (m, N_STATS) {
        return Err(Error::invalid("stats", shape, format!("{:?}", a.dim())));
    }
    a.as_slice_mut()
        .map(Some)
        .ok_or_else(|| Error::invalid("stats", shape, "a strided array"))
}

/// Applies the detector to given expected photons: `expected` `(M, N, N)` (finite, `≥ 0`)
/// becomes readings in `out` (`(M, N, N)`, C-contiguous), pattern `i` drawing as pattern
/// `first_index + i` of a dataset. `stats`, when given, is `(M, N_STATS)` ([`STATS`]).
///
/// # Errors
/// [`Error::InvalidArgument`] when `expected` is empty, not square in its last two axes, or
/// holds a negative or non-finite value; an output has the wrong shape or is strided;
/// `first_index + M` overflows; or a parameter is invalid ([`Detector::validate`]).
pub fn detect_into<T: Reading>(
    detector: &Detector,
    expected: ArrayView3<'_, f64>,
    seed: u64,
    first_index: u64,
    mut out: ArrayViewMut3<'_, T>,
    mut stats: Option<ArrayViewMut2<'_, f64>>,
) -> Result<()> {
    let (m, n, n2) = expected.dim();
    if n != n2 || m == 0 || n == 0 {
        return Err(Error::invalid(
            "expected",
            "a non-empty (M, N, N) array",
            format!("{:?}", expected.dim()),
        ));
    }
    let expected = expected.as_standard_layout();
    let src = expected
        .as_slice()
        .ok_or_else(|| Error::Unsupported("expected: standard layout".into()))?;
    // In parallel, a branch-free test per piece (this pass reads the whole input).
    let invalid = |v: &f64| !(v.is_finite() && *v >= 0.0);
    let bad = src.par_chunks(1 << 14).find_map_any(|c| {
        c.iter()
            .fold(false, |a, v| a | invalid(v))
            .then(|| c.iter().copied().find(invalid))
            .flatten()
    });
    if let Some(bad) = bad {
        return Err(Error::invalid(
            "expected",
            "finite and non-negative",
            format!("a value of {bad}"),
        ));
    }
    check_first_index(first_index, m)?;
    let stage = Stage::new::<T>(detector, n, seed)?;
    let out = output3("out", &mut out, m, n)?;
    let stats = output_stats(stats.as_mut(), m)?;
    let nn = n * n;
    let rows = stats_rows(stats, m);
    out.par_chunks_mut(nn)
        .zip(src.par_chunks(nn))
        .zip(rows)
        .enumerate()
        .for_each_init(
            || (stage.scratch(), vec![0.0f64; nn]),
            |(ws, lam), (i, ((o, e), s))| {
                lam.copy_from_slice(e);
                let index = first_index.wrapping_add(i as u64);
                detect_one(&stage, lam, ws, index, T::row(o), s);
            },
        );
    Ok(())
}

/// The rows of an optional statistics buffer, or `None` per pattern: one indexed parallel
/// iterator either way, to zip with the patterns.
pub(crate) fn stats_rows<'a>(
    stats: Option<&'a mut [f64]>,
    m: usize,
) -> impl IndexedParallelIterator<Item = Option<&'a mut [f64]>> + 'a {
    match stats {
        Some(s) => Either::Left(s.par_chunks_mut(N_STATS).map(Some)),
        None => Either::Right((0..m).into_par_iter().map(|_| None)),
    }
}

/// Checks `first_index + m` fits in `u64`.
pub(crate) fn check_first_index(first_index: u64, m: usize) -> Result<()> {
    if first_index.checked_add(m as u64).is_none() {
        return Err(Error::invalid(
            "first_index",
            format!("at most 2**64 - 1 - {m}"),
            first_index.to_string(),
        ));
    }
    Ok(())
}

/// Converts a pixel map view to the stage's row-major codes.
pub fn pixel_map(map: ArrayView2<'_, u8>) -> Vec<u8> {
    map.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normal::ZIG_R;
    use ndarray::{s, Array2, Array3};

    /// Expected photons spanning the sampler's regimes, different per pattern.
    fn expected(m: usize, n: usize) -> Array3<f64> {
        Array3::from_shape_fn((m, n, n), |(p, r, c)| {
            let t = ((r * n + c) as f64 / (n * n) as f64) * 10.0 - 4.0 + p as f64 * 0.1;
            if (r + 2 * c) % 9 == 0 {
                0.0
            } else {
                10f64.powf(t)
            }
        })
    }

    fn detect<T: Reading>(det: &Detector, e: &Array3<f64>, seed: u64, first: u64) -> Array3<T> {
        let mut out = Array3::<T>::from_elem(e.dim(), T::default());
        detect_into(det, e.view(), seed, first, out.view_mut(), None).unwrap();
        out
    }

    fn name<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
        match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn normals_are_below_z_max_and_read_noise_must_fit_float_readings() {
        // The largest tail value: u₁ = 2⁻⁵³ (the smallest uniform on (0, 1]).
        let worst = ZIG_R + (-(2.0f64.powi(-53)).ln()) / ZIG_R;
        assert!(worst < 13.71, "{worst}");
        const { assert!(13.71 < Z_MAX) };
        let x = standard_normals(200_000, 5, 1);
        assert!(x.iter().all(|z| z.abs() < Z_MAX));
        let noisy = |read_noise| Detector {
            read_noise,
            ..Detector::default()
        };
        let f32_limit = f64::from(f32::MAX) / Z_MAX;
        assert!(noisy(f32_limit).validate::<f32>(4).is_ok());
        assert_eq!(
            name(noisy(f32_limit * 1.0001).validate::<f32>(4)),
            "read_noise"
        );
        assert!(noisy(f32_limit * 1.0001).validate::<f64>(4).is_ok());
        assert_eq!(name(noisy(f64::MAX).validate::<f64>(4)), "read_noise");
        // Integer readings read 0 below 0 and saturate above: any finite noise fits.
        assert!(noisy(1e300).validate::<u16>(4).is_ok());
        // Float readings beyond the type's range read its largest value, flagged as clipped.
        assert_eq!(
            <f64 as Reading>::quantise(f64::INFINITY, Overflow::Saturate),
            (f64::MAX, true)
        );
        assert_eq!(
            <f32 as Reading>::quantise(1e300, Overflow::Saturate),
            (f32::MAX, true)
        );
        assert_eq!(
            <f64 as Reading>::quantise(-1e300, Overflow::Saturate),
            (-1e300, false)
        );
    }

    #[test]
    fn normals_follow_the_normal_law() {
        let n = 2_000_000usize;
        let x = standard_normals(n, 17, 3);
        let nf = n as f64;
        let mean = x.iter().sum::<f64>() / nf;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
        let m4 = x.iter().map(|v| v.powi(4)).sum::<f64>() / nf;
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "var {var}");
        assert!((m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "m4 {m4}");
        // Φ(t) at points across the layers and into the tail (t = ±3.8 > r).
        let cdf = [
            (-3.8, 7.234_804_392_511_999e-5),
            (-3.0, 1.349_898_031_630_095e-3),
            (-2.0, 2.275_013_194_817_921e-2),
            (-1.0, 0.158_655_253_931_457_05),
            (-0.3, 0.382_088_577_811_047_2),
            (0.0, 0.5),
            (0.7, 0.758_036_347_776_926_9),
            (1.5, 0.933_192_798_731_141_9),
            (2.5, 0.993_790_334_674_224),
            (3.8, 1.0 - 7.234_804_392_511_999e-5),
        ];
        for (t, p) in cdf {
            let got = x.iter().filter(|&&v| v < t).count() as f64 / nf;
            let sd = (p * (1.0 - p) / nf).sqrt();
            assert!((got - p).abs() < 5.0 * sd, "P(x < {t}) = {got}, want {p}");
        }
        assert_eq!(standard_normals(5, 17, 3), x[..5].to_vec());
        assert_ne!(standard_normals(5, 17, 4), x[..5].to_vec());
    }

    #[test]
    fn lanes_are_pattern_streams() {
        let mut lanes = Lanes::new(&LaneKeys::new(77), 5);
        let mut want: Vec<PatternRng> = (0..LANES)
            .map(|j| PatternRng::new(lane_seed(77, j), 5))
            .collect();
        for _ in 0..3 {
            let got = lanes.next();
            for (g, r) in got.iter().zip(want.iter_mut()) {
                assert_eq!(*g, r.next_u64());
            }
        }
        assert_eq!(lanes.next_lane(3), want[3].next_u64());
        assert_eq!(lanes.next()[3], want[3].next_u64());
        assert_eq!(lanes.next()[0], {
            want[0].next_u64();
            want[0].next_u64()
        });
    }

    /// `next_on::<LEVEL>` at every level this processor has: the lanes' own streams.
    #[test]
    fn lanes_step_alike_at_every_level() {
        use crate::simd::{detected, Level, AVX2, AVX512, BASELINE};
        fn check<const LEVEL: u8>() {
            let mut lanes = Lanes::new(&LaneKeys::new(91), 12);
            let mut want: Vec<PatternRng> = (0..LANES)
                .map(|j| PatternRng::new(lane_seed(91, j), 12))
                .collect();
            for step in 0..5 {
                let got = lanes.next_on::<LEVEL>();
                for (j, (g, r)) in got.iter().zip(want.iter_mut()).enumerate() {
                    assert_eq!(*g, r.next_u64(), "level {LEVEL}, step {step}, lane {j}");
                }
                // The scalar step of one lane continues where the vector steps left it.
                assert_eq!(lanes.next_lane(step), want[step].next_u64());
            }
        }
        check::<BASELINE>();
        if detected() >= Level::Avx2 {
            check::<AVX2>();
        }
        if detected() >= Level::Avx512 {
            check::<AVX512>();
        }
    }

    #[test]
    fn dark_counts_follow_the_poisson_law() {
        let n = 400_000usize;
        for rate in [0.05, 0.9, 5.0, 20.0, 45.0] {
            let x = dark_counts(n, rate, 8, 1);
            // χ² of the histogram against the Poisson pmf, bins with ≥ 20 expected counts.
            let kmax = (rate + 12.0 * rate.sqrt() + 12.0) as usize;
            let mut hist = vec![0usize; kmax + 1];
            for &v in &x {
                assert_eq!(v.fract(), 0.0);
                hist[(v as usize).min(kmax)] += 1;
            }
            let (mut chi2, mut bins) = (0.0, 0usize);
            let (mut p, mut lump_obs, mut lump_exp) = ((-rate).exp(), 0.0, 0.0);
            for (k, &h) in hist.iter().enumerate() {
                let e = p * n as f64;
                if k > 0 {
                    p *= rate / (k + 1) as f64;
                } else {
                    p *= rate;
                }
                lump_obs += h as f64;
                lump_exp += e;
                if lump_exp >= 20.0 {
                    chi2 += (lump_obs - lump_exp).powi(2) / lump_exp;
                    bins += 1;
                    (lump_obs, lump_exp) = (0.0, 0.0);
                }
            }
            let dof = bins as f64 - 1.0;
            assert!(
                (chi2 - dof).abs() < 6.0 * (2.0 * dof).sqrt(),
                "rate {rate}: {chi2} / {dof}"
            );
            let mean = x.iter().sum::<f64>() / n as f64;
            assert!(
                (mean - rate).abs() < 5.0 * (rate / n as f64).sqrt(),
                "{rate}: {mean}"
            );
        }
    }

    #[test]
    fn integer_readings_round_clip_and_overflow() {
        use Overflow::{Saturate, Wrap};
        assert_eq!(u16::quantise(2.5, Saturate), (2, false));
        assert_eq!(u16::quantise(3.5, Saturate), (4, false));
        assert_eq!(u16::quantise(-7.2, Saturate), (0, false));
        assert_eq!(u16::quantise(f64::NAN, Saturate), (0, false));
        assert_eq!(u16::quantise(65535.4, Saturate), (65535, false));
        assert_eq!(u16::quantise(65536.0, Saturate), (65535, true));
        assert_eq!(u16::quantise(65536.0 + 5.0, Wrap), (5, true));
        assert_eq!(u16::quantise(3.0 * 65536.0 + 9.0, Wrap), (9, true));
        assert_eq!(u32::quantise(4_294_967_296.0 + 1.0, Wrap), (1, true));
        assert_eq!(u8::quantise(255.4, Saturate), (255, false));
        assert_eq!(u8::quantise(256.0, Saturate), (255, true));
        assert_eq!(u8::quantise(256.0 + 7.0, Wrap), (7, true));
        assert_eq!(u8::quantise(5.0 * 256.0 + 254.5, Wrap), (254, true));
        assert_eq!(u32::quantise(1e12, Saturate), (u32::MAX, true));
        assert_eq!(f32::quantise(1e40, Saturate), (f32::MAX, true));
        assert_eq!(f32::quantise(0.1, Saturate), (0.1f32, false));
        assert_eq!(f64::quantise(0.1, Wrap), (0.1, false));
        // Beyond 2^64 a wrapping counter reads the cast's saturation, as documented.
        assert_eq!(u16::quantise(1e30, Wrap), (u16::MAX, true));
        assert_eq!(u16::quantise(f64::INFINITY, Saturate), (u16::MAX, true));
        // The saturating conversion (integer operations on `r + 2^52`) against Rust's `as`,
        // at the edges of each type and over a sweep of halves and random values.
        let mut rng = PatternRng::new(3, 0);
        let mut xs = vec![
            0.0,
            0.49,
            0.5,
            0.51,
            1.5,
            -0.5,
            -0.51,
            4_294_967_295.5,
            1e300,
        ];
        for m in [255.0, 65535.0, 4_294_967_295.0] {
            xs.extend([m - 0.5, m - 0.51, m + 0.49, m + 0.5, m + 1.0]);
        }
        xs.extend((0..20_000).map(|k| f64::from(k) * 0.25 - 3.0));
        xs.extend((0..20_000).map(|_| (rng.next_f64() - 0.01) * 5e9));
        for &x in &xs {
            let r = x.round_ties_even().max(0.0);
            let want8 = (r.min(255.0) as u8, r > 255.0);
            let want16 = (r.min(65535.0) as u16, r > 65535.0);
            let want32 = (r.min(4_294_967_295.0) as u32, r > 4_294_967_295.0);
            assert_eq!(u8::quantise(x, Saturate), want8, "u8 {x}");
            assert_eq!(u16::quantise(x, Saturate), want16, "u16 {x}");
            assert_eq!(u32::quantise(x, Saturate), want32, "u32 {x}");
        }
    }

    /// Runs `det` with statistics, checks the readings equal a run without, and returns them
    /// with the statistics.
    fn with_stats<T: Reading>(det: &Detector, e: &Array3<f64>) -> (Array3<T>, Array2<f64>) {
        let mut out = Array3::<T>::from_elem(e.dim(), T::default());
        let mut st = Array2::<f64>::zeros((e.dim().0, N_STATS));
        detect_into(det, e.view(), 3, 0, out.view_mut(), Some(st.view_mut())).unwrap();
        let plain = detect::<T>(det, e, 3, 0);
        let same = out
            .iter()
            .zip(plain.iter())
            .all(|(a, b)| a.to_f64() == b.to_f64());
        assert!(same, "{}: statistics changed the readings", T::DTYPE);
        (out, st)
    }

    /// Sum in pixel order of the valid pixels' readings of each pattern.
    fn valid_sums<T: Reading>(out: &Array3<T>, map: Option<&[u8]>) -> Vec<f64> {
        let valid = |q: usize| map.is_none_or(|m| m[q] == pixel::VALID);
        out.outer_iter()
            .map(|p| {
                let v = p.iter().enumerate().filter(|&(q, _)| valid(q));
                v.fold(0.0, |t, (_, r)| t + r.to_f64())
            })
            .collect()
    }

    #[test]
    fn reading_statistics_are_sums_over_valid_pixels() {
        let n = 24;
        let e = expected(3, n);
        let map: Vec<u8> = (0..n * n)
            .map(|q| [0, 0, 0, 2, 4, 8, 1, 0][q % 8])
            .collect();
        // Noiseless, so which pixels clip follows from the expected values alone.
        for (gain, full_well) in [(700.0, None), (30.0, Some(50_000.0)), (2e6, None)] {
            for overflow in [Overflow::Saturate, Overflow::Wrap] {
                for pixels in [None, Some(map.clone())] {
                    let det = Detector {
                        poisson: None,
                        gain,
                        offset: 5.0,
                        full_well,
                        overflow,
                        pixels: pixels.clone(),
                        ..Detector::default()
                    };
                    let m = pixels.as_deref();
                    let clipped = |max: f64| -> Vec<f64> {
                        e.outer_iter()
                            .map(|p| {
                                let v = p.iter().enumerate().filter(|&(q, &l)| {
                                    let x = gain * l + 5.0;
                                    let over = x.round_ties_even() > max
                                        || full_well.is_some_and(|f| x >= f);
                                    over && m.is_none_or(|m| m[q] == pixel::VALID)
                                });
                                v.count() as f64
                            })
                            .collect()
                    };
                    let (o16, s16) = with_stats::<u16>(&det, &e);
                    assert_eq!(s16.column(3).to_vec(), valid_sums(&o16, m));
                    assert_eq!(s16.column(4).to_vec(), clipped(65535.0));
                    if full_well.is_none() {
                        // (A full well of 50,000 does not fit 8 bits: refused, tested below.)
                        let (o8, s8) = with_stats::<u8>(&det, &e);
                        assert_eq!(s8.column(3).to_vec(), valid_sums(&o8, m));
                        assert_eq!(s8.column(4).to_vec(), clipped(255.0));
                    }
                    let (o32, s32) = with_stats::<u32>(&det, &e);
                    assert_eq!(s32.column(3).to_vec(), valid_sums(&o32, m));
                    assert_eq!(s32.column(4).to_vec(), clipped(u32::MAX as f64));
                    assert!(
                        s16.column(4).sum() > 0.0,
                        "every case clips some u16 readings"
                    );
                    // Float readings take hot pixels only with a full well to read.
                    let det = Detector {
                        pixels: pixels.map(|p| {
                            let keep = if full_well.is_some() {
                                0xff
                            } else {
                                !pixel::HOT
                            };
                            p.iter().map(|&c| c & keep).collect()
                        }),
                        ..det
                    };
                    let m = det.pixels.as_deref();
                    let (of, sf) = with_stats::<f32>(&det, &e);
                    assert_eq!(sf.column(3).to_vec(), valid_sums(&of, m));
                    let (od, sd) = with_stats::<f64>(&det, &e);
                    assert_eq!(sd.column(3).to_vec(), valid_sums(&od, m));
                }
            }
        }
        // With read noise and dark counts (the pixel-order total of the noisy readings).
        let det = Detector {
            gain: 10.0,
            offset: 100.0,
            read_noise: 3.0,
            dark: 0.05,
            full_well: Some(65_000.0),
            pixels: Some(map.clone()),
            ..Detector::default()
        };
        let (o16, s16) = with_stats::<u16>(&det, &e);
        assert_eq!(s16.column(3).to_vec(), valid_sums(&o16, Some(&map)));
    }

    #[test]
    fn integer_totals_that_could_round_are_summed_in_pixel_order() {
        // 1449² pixels of up to 2^32 − 1 may pass 2^53: the total is then the sum in pixel
        // order, rounding as it goes, not an exact integer sum.
        let n = 1449;
        let e = Array3::from_shape_fn((1, n, n), |(_, r, c)| 4.294e9 + ((r * n + c) % 7) as f64);
        let det = Detector {
            poisson: None,
            ..Detector::default()
        };
        let (out, st) = with_stats::<u32>(&det, &e);
        let want = valid_sums(&out, None);
        assert_eq!(st.column(3).to_vec(), want);
        let exact: u64 = out.iter().map(|&r| u64::from(r)).sum();
        assert!(
            exact as f64 > TWO53 && want[0] != exact as f64,
            "the test must round"
        );
    }

    #[test]
    fn stage_seeds_are_keyed() {
        assert_eq!(stage_seed(42, stage::POISSON), 42);
        let s: Vec<u64> = (0..4).map(|k| stage_seed(42, k)).collect();
        for i in 0..4 {
            for j in 0..i {
                assert_ne!(s[i], s[j]);
            }
        }
        assert_ne!(stage_seed(43, stage::DARK), stage_seed(42, stage::DARK));
        // The documented derivation.
        let want = mix64(42 ^ mix64(0x7074_7966_6173_7400 + 1));
        assert_eq!(stage_seed(42, stage::READ_NOISE), want);
    }

    #[test]
    fn psf_matches_a_direct_convolution() {
        let n = 11;
        let x: Vec<f64> = (0..n * n).map(|i| ((i * 37) % 17) as f64).collect();
        for sigma in [0.4, 1.0, 2.3, 4.0] {
            let k = gaussian_kernel(sigma);
            let r = (k.len() / 2) as isize;
            let mut tmp = vec![0.0; n * n];
            let mut got = x.clone();
            correlate(&x, &mut tmp, &k, n, true);
            correlate(&tmp, &mut got, &k, n, false);
            for i in 0..n as isize {
                for j in 0..n as isize {
                    let mut want = 0.0;
                    for a in -r..=r {
                        for b in -r..=r {
                            let (ii, jj) = (i + a, j + b);
                            if (0..n as isize).contains(&ii) && (0..n as isize).contains(&jj) {
                                want += k[(a + r) as usize]
                                    * k[(b + r) as usize]
                                    * x[ii as usize * n + jj as usize];
                            }
                        }
                    }
                    let g = got[i as usize * n + j as usize];
                    assert!(
                        (g - want).abs() < 1e-12 * want.max(1.0),
                        "{sigma}: {g} {want}"
                    );
                }
            }
            let ksum: f64 = k.iter().sum();
            assert!((ksum - 1.0).abs() < 1e-15);
            assert_eq!(k.len(), 2 * (4.0 * sigma + 0.5) as usize + 1);
        }
    }

    #[test]
    fn ideal_detector_counts_on_todays_stream() {
        let e = expected(3, 16);
        let got = detect::<f64>(&Detector::default(), &e, 5, 10);
        for (i, (p, g)) in e.outer_iter().zip(got.outer_iter()).enumerate() {
            let mut want: Vec<f64> = p.iter().copied().collect();
            noise::counts_from_rates(&mut want, 5, 10 + i as u64);
            assert_eq!(g.iter().copied().collect::<Vec<_>>(), want);
        }
        let none = Detector {
            poisson: None,
            ..Detector::default()
        };
        assert_eq!(detect::<f64>(&none, &e, 5, 0), e);
    }

    #[test]
    fn stream_v2_counts_are_the_noise_modules() {
        // 64 x 64 patterns (one sampler block) and a ragged size, over every regime.
        for n in [64usize, 23] {
            let e = expected(3, n);
            let det = Detector {
                poisson: Some(PoissonStream::V2),
                ..Detector::default()
            };
            let got = detect::<f64>(&det, &e, 5, 10);
            let v1 = detect::<f64>(&Detector::default(), &e, 5, 10);
            for (i, (p, g)) in e.outer_iter().zip(got.outer_iter()).enumerate() {
                let rates: Vec<f64> = p.iter().copied().collect();
                let mut want = vec![0.0; rates.len()];
                let r = noise::sample_counts(
                    noise::PoissonStream::V2,
                    &rates,
                    5,
                    10 + i as u64,
                    &mut want,
                );
                assert!(r.is_ok());
                assert_eq!(g.iter().copied().collect::<Vec<_>>(), want, "n={n} i={i}");
            }
            assert_ne!(got, v1, "v2 must be a different stream from v1");
            // Keyed by the pattern number: a chunk starting at pattern 11 gives the same bits.
            let tail = detect::<f64>(&det, &e.slice(s![1.., .., ..]).to_owned(), 5, 11);
            assert_eq!(got.slice(s![1.., .., ..]), tail);
        }
    }

    #[test]
    fn every_stage_follows_its_formula_without_noise() {
        let n = 6;
        let e = Array3::from_shape_fn((1, n, n), |(_, r, c)| (r * n + c) as f64 * 1.5);
        let mut pixels = vec![pixel::VALID; n * n];
        pixels[1] = pixel::BEAMSTOP;
        pixels[2] = pixel::GAP;
        pixels[3] = pixel::DEAD;
        pixels[4] = pixel::HOT;
        pixels[6] = pixel::BEAMSTOP | pixel::DEAD;
        pixels[7] = pixel::BEAMSTOP | pixel::HOT;
        let det = Detector {
            poisson: None,
            qe: 0.5,
            dead_time: 0.01,
            gain: 3.0,
            offset: 10.0,
            dark: 0.25,
            full_well: Some(50.0),
            pixels: Some(pixels),
            ..Detector::default()
        };
        let mut out = Array3::<f64>::zeros((1, n, n));
        let mut stats = Array2::<f64>::zeros((1, N_STATS));
        detect_into(&det, e.view(), 1, 0, out.view_mut(), Some(stats.view_mut())).unwrap();
        let (mut detected, mut total, mut sat) = (0.0, 0.0, 0.0);
        for q in 0..n * n {
            let shadow = [1, 2, 6, 7].contains(&q);
            let lam = if shadow {
                0.0
            } else {
                0.5 * e[[0, q / n, q % n]]
            };
            let lam = lam / (1.0 + lam * 0.01);
            detected += lam;
            let v = (3.0 * (lam + 0.25) + 10.0).min(50.0);
            let want = match q {
                2 | 3 | 6 => 0.0,
                4 | 7 => 50.0,
                _ => v,
            };
            let g = out[[0, q / n, q % n]];
            assert!(
                (g - want).abs() < 1e-12 * want.max(1.0),
                "pixel {q}: {g} vs {want}"
            );
            if q == 0 || q == 5 || q > 7 {
                total += v;
                sat += f64::from(u8::from(v >= 50.0));
            }
        }
        assert!((stats[[0, 0]] - e.sum()).abs() < 1e-9);
        assert!((stats[[0, 1]] - detected).abs() < 1e-9);
        assert_eq!(stats[[0, 2]], stats[[0, 1]]);
        assert!((stats[[0, 3]] - total).abs() < 1e-9);
        assert_eq!(stats[[0, 4]], sat);
        assert!(sat > 0.0);
    }

    #[test]
    fn noise_stages_use_their_own_streams() {
        let e = expected(2, 8);
        let base = Detector {
            gain: 2.0,
            offset: 5.0,
            ..Detector::default()
        };
        let poisson_only = detect::<f64>(&base, &e, 9, 0);
        let read = Detector {
            read_noise: 1.5,
            ..base.clone()
        };
        let dark = Detector {
            dark: 0.3,
            ..base.clone()
        };
        let both = Detector {
            dark: 0.3,
            read_noise: 1.5,
            ..base.clone()
        };
        let r = detect::<f64>(&read, &e, 9, 0);
        let d = detect::<f64>(&dark, &e, 9, 0);
        let b = detect::<f64>(&both, &e, 9, 0);
        // Read noise alone adds exactly its own normals to the Poisson-only readings.
        for i in 0..2 {
            let z = standard_normals(64, stage_seed(9, stage::READ_NOISE), i as u64);
            for (q, zq) in z.iter().enumerate() {
                let (row, col) = (q / 8, q % 8);
                let want = poisson_only[[i, row, col]] + 1.5 * zq;
                assert_eq!(r[[i, row, col]], want);
                // Adding dark counts does not move the read-noise draws either.
                assert_eq!(b[[i, row, col]], d[[i, row, col]] + 1.5 * zq);
            }
        }
        // Dark counts are their own stream's, times the gain, on the Poisson-only readings.
        for i in 0..2 {
            let dc = dark_counts(64, 0.3, stage_seed(9, stage::DARK), i as u64);
            for (q, c) in dc.iter().enumerate() {
                let (row, col) = (q / 8, q % 8);
                assert_eq!(d[[i, row, col]], poisson_only[[i, row, col]] + 2.0 * c);
            }
        }
        assert!((&d - &poisson_only).iter().any(|&v| v > 0.0));
    }

    #[test]
    fn fused_dark_and_read_noise_are_their_streams_composed() {
        // N² = 1369: 21 full steps of the lanes and a partial one; ~1 % of 4107 first
        // ziggurat tries are rejected, so the deferred redraws are exercised too.
        let (m, n) = (3, 37);
        let e = expected(m, n);
        let counts = detect::<f64>(&Detector::default(), &e, 9, 4);
        for dark in [0.3, 5.0, 40.0] {
            let det = Detector {
                gain: 2.0,
                offset: 5.0,
                dark,
                read_noise: 1.5,
                ..Detector::default()
            };
            let r = detect::<f64>(&det, &e, 9, 4);
            for i in 0..m {
                let index = 4 + i as u64;
                let z = standard_normals(n * n, stage_seed(9, stage::READ_NOISE), index);
                let dk = dark_counts(n * n, dark, stage_seed(9, stage::DARK), index);
                for q in 0..n * n {
                    let (row, col) = (q / n, q % n);
                    let want = (2.0 * (counts[[i, row, col]] + dk[q]) + 5.0) + 1.5 * z[q];
                    assert_eq!(
                        r[[i, row, col]],
                        want,
                        "dark {dark}, pattern {i}, pixel {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn chunks_threads_and_levels_do_not_matter() {
        use crate::simd::{with_cap, Level};
        let e = expected(7, 9);
        let mut pixels = vec![pixel::VALID; 81];
        pixels[40] = pixel::BEAMSTOP;
        pixels[0] = pixel::GAP;
        pixels[5] = pixel::HOT;
        let det = Detector {
            qe: 0.8,
            psf_sigma_px: 0.7,
            gain: 4.0,
            offset: 20.0,
            dark: 0.2,
            read_noise: 2.0,
            full_well: Some(60000.0),
            pixels: Some(pixels),
            ..Detector::default()
        };
        let run = |m: std::ops::Range<usize>| {
            let mut out = Array3::<u16>::zeros((m.len(), 9, 9));
            let mut st = Array2::zeros((m.len(), N_STATS));
            let view = e.slice(s![m.start..m.end, .., ..]);
            detect_into(
                &det,
                view,
                3,
                100 + m.start as u64,
                out.view_mut(),
                Some(st.view_mut()),
            )
            .unwrap();
            (out, st)
        };
        let (whole, wstats) = run(0..7);
        let (a, sa) = run(0..3);
        let (b, sb) = run(3..7);
        assert_eq!(whole.slice(s![..3, .., ..]), a);
        assert_eq!(whole.slice(s![3.., .., ..]), b);
        assert_eq!(wstats.slice(s![..3, ..]), sa);
        assert_eq!(wstats.slice(s![3.., ..]), sb);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| run(0..7)), (whole.clone(), wstats.clone()));
        for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(with_cap(level, || run(0..7).0), whole, "{level:?}");
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let e = expected(1, 4);
        let mut out = Array3::<f32>::zeros((1, 4, 4));
        let mut run = |d: Detector| detect_into(&d, e.view(), 0, 0, out.view_mut(), None);
        let base = Detector::default;
        assert_eq!(name(run(Detector { qe: 0.0, ..base() })), "qe");
        assert_eq!(name(run(Detector { qe: 1.5, ..base() })), "qe");
        assert_eq!(
            name(run(Detector {
                gain: 0.0,
                ..base()
            })),
            "gain"
        );
        assert_eq!(
            name(run(Detector {
                offset: -1.0,
                ..base()
            })),
            "offset"
        );
        assert_eq!(
            name(run(Detector {
                read_noise: f64::NAN,
                ..base()
            })),
            "read_noise"
        );
        assert_eq!(
            name(run(Detector {
                dark: -0.1,
                ..base()
            })),
            "dark"
        );
        assert_eq!(
            name(run(Detector {
                dead_time: -1.0,
                ..base()
            })),
            "dead_time"
        );
        assert_eq!(
            name(run(Detector {
                psf_sigma_px: 1e5,
                ..base()
            })),
            "psf_sigma_px"
        );
        let fw = |f| Detector {
            offset: 10.0,
            full_well: Some(f),
            ..base()
        };
        assert_eq!(name(run(fw(5.0))), "full_well");
        assert_eq!(name(run(fw(f64::INFINITY))), "full_well");
        let px = |p: Vec<u8>| Detector {
            pixels: Some(p),
            ..base()
        };
        assert_eq!(name(run(px(vec![0; 15]))), "pixels");
        assert_eq!(name(run(px(vec![16; 16]))), "pixels");
        assert_eq!(name(run(px(vec![pixel::HOT; 16]))), "pixels");
        // A uint16 cannot hold a full well of 1e6.
        let mut o16 = Array3::<u16>::zeros((1, 4, 4));
        let r = detect_into(&fw(1e6), e.view(), 0, 0, o16.view_mut(), None);
        assert_eq!(name(r), "full_well");
        // Nor a uint8 one of 256.
        let mut o8 = Array3::<u8>::zeros((1, 4, 4));
        let r = detect_into(&fw(256.0), e.view(), 0, 0, o8.view_mut(), None);
        assert_eq!(name(r), "full_well");
        assert!(detect_into(&fw(255.0), e.view(), 0, 0, o8.view_mut(), None).is_ok());
        // Shapes, values and indices.
        let bad = Array3::from_elem((1, 4, 4), -1.0);
        let r = detect_into(&base(), bad.view(), 0, 0, o16.view_mut(), None);
        assert_eq!(name(r), "expected");
        // A bad value in the last piece of the parallel check, and in a transposed view.
        for v in [f64::NAN, f64::INFINITY, -0.5] {
            let mut big = Array3::<f64>::ones((5, 64, 64));
            big[[4, 63, 63]] = v;
            let mut o = Array3::<f32>::zeros((5, 64, 64));
            let r = detect_into(&base(), big.view(), 0, 0, o.view_mut(), None);
            assert_eq!(name(r), "expected");
            let r = detect_into(
                &base(),
                big.view().reversed_axes(),
                0,
                0,
                o.view_mut(),
                None,
            );
            assert!(r.is_err());
        }
        let r = detect_into(&base(), e.view(), 0, u64::MAX, o16.view_mut(), None);
        assert_eq!(name(r), "first_index");
        let mut wrong = Array3::<u16>::zeros((1, 4, 5));
        let r = detect_into(&base(), e.view(), 0, 0, wrong.view_mut(), None);
        assert_eq!(name(r), "out");
        let mut st = Array2::<f64>::zeros((2, N_STATS));
        let r = detect_into(&base(), e.view(), 0, 0, o16.view_mut(), Some(st.view_mut()));
        assert_eq!(name(r), "stats");
        assert_eq!(name(PoissonStream::from_name("v9")), "poisson_stream");
        assert_eq!(name(Overflow::from_name("clip")), "overflow");
        assert_eq!(PoissonStream::from_name("v1").map(|s| s.name()), Ok("v1"));
        assert_eq!(PoissonStream::from_name("v2").map(|s| s.name()), Ok("v2"));
    }
}
