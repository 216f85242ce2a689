//! The acquisition pipeline: one pass per pattern from the object to the detector's readings.
//!
//! Pattern `i` (dataset-wide number `first_index + i`) at true position `(x, y)` goes through
//! small stages, each one function, composed in `acquire_one`:
//!
//! 1. **extract**: the object patch at `(x, y)` ([`crate::patches`] conventions), kept once;
//! 2. **illuminate** by each of the `P` incoherent probe modes: `scale · P_k · patch`;
//! 3. **far field** of each mode, `A_k = |fftshift(FFT2(scale · P_k · patch))| / N` in `f32`,
//!    exactly as [`crate::diffraction`] computes it;
//! 4. **incoherent sum** `λ = Σ_k A_k²`, each `A_k` squared in `f64` and added in mode order;
//! 5. **detector** ([`crate::detector`]): shadow, QE, dead time, Poisson, PSF, dark, gain,
//!    offset, read noise, saturation, quantisation, mask;
//! 6. **write** into the caller's output (and, when asked, the patch before the probe and the
//!    pattern's statistics, [`crate::detector::STATS`]).
//!
//! Each worker keeps only scratch (one FFT plan, a few `N²` buffers); nothing batch-sized is
//! allocated. Every random draw comes from a stream keyed by `(seed, stage, first_index + i)`,
//! so the output does not depend on the thread count or on how a dataset is split into calls:
//! [`Acquisition`] is prepared once and [`Acquisition::run_into`] fills any range of rows, each
//! into its own buffers, with the same bits as one call.
//!
//! With one mode and the ideal detector ([`Detector::default`]) the readings are the Poisson
//! counts of today's fused simulation ([`crate::simulate`]): `λ = A²` with `A` its noise-free
//! amplitude, the same sampler on the same stream in the same order, so `sqrt(count)` rounded
//! to `f32` is its noisy amplitude bit for bit.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::iter::Either;
use rayon::prelude::*;

use crate::detector::{
    self, check_first_index, output3, output_stats, stats_rows, Detector, OutRow, Reading, Stage,
    StageScratch, N_STATS,
};
use crate::diffraction::{check_scale, illuminate, scaled_probe, transpose, FarField};
use crate::patches::{
    check_positions, checked_len, positions_list, transpose_pays, Object, Sampler,
};
use crate::{Complex32, Error, Result};

/// A prepared acquisition of `M` patterns read as `T`: validated inputs, the object in the
/// orientation the far field wants, the scaled probe modes and the detector stage.
pub struct Acquisition<'a, T: Reading> {
    object: Cow<'a, [Complex32]>,
    /// Dimensions of `object` as stored (transposed when `transposed`).
    dim: (usize, usize),
    transposed: bool,
    positions: Vec<[f64; 2]>,
    /// `scale · P_k`, each mode transposed, modes one after the other.
    sprobes_t: Vec<Complex32>,
    n: usize,
    modes: usize,
    stage: Stage,
    first_index: u64,
    template: FarField,
    _reading: PhantomData<T>,
}

type PrepareArgs<'a, 'b, 'c> = (
    ArrayView2<'a, Complex32>,
    ArrayView2<'b, f64>,
    ArrayView3<'c, Complex32>,
    f32,
);

/// The outputs of [`acquire`].
#[derive(Debug, Clone)]
pub struct Acquired<T> {
    /// `(M, N, N)` readings.
    pub readings: Array3<T>,
    /// `(M, N, N)` object patches before the probe, when asked.
    pub patches: Option<Array3<Complex32>>,
    /// `(M, N_STATS)` per-pattern statistics ([`crate::detector::STATS`]), when asked.
    pub stats: Option<Array2<f64>>,
}

/// Checks `modes` is a non-empty `(P, N, N)` stack with `N ≥ 2`; returns `(P, N)`.
fn check_modes(modes: &ArrayView3<'_, Complex32>) -> Result<(usize, usize)> {
    let (p, a, b) = modes.dim();
    if p == 0 || a != b || a < 2 {
        return Err(Error::invalid(
            "probe",
            "(P, N, N) modes with P >= 1 and N >= 2",
            format!("({p}, {a}, {b})"),
        ));
    }
    Ok((p, a))
}

impl<'a, T: Reading> Acquisition<'a, T> {
    /// Prepares the acquisition of `M = positions.nrows()` patterns of `object` (`(H, W)`)
    /// at `positions` (`(M, 2)` as `(x, y)`), illuminated by the incoherent `modes`
    /// (`(P, N, N)`) times `scale` and read by `detector`; noise from `seed`, pattern `i`
    /// numbered `first_index + i`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `object` is empty; `positions` is not a non-empty
    /// `(M, 2)` array of finite values; `modes` is not `(P, N, N)` with `P ≥ 1`, `N ≥ 2`;
    /// `scale` is not positive and finite; `first_index + M` overflows; or a detector
    /// parameter is invalid ([`Detector::validate`]).
    pub fn new(
        object: ArrayView2<'a, Complex32>,
        positions: ArrayView2<'_, f64>,
        modes: ArrayView3<'_, Complex32>,
        scale: f32,
        detector: &Detector,
        seed: u64,
        first_index: u64,
    ) -> Result<Self> {
        let args = (object, positions, modes, scale);
        Self::prepare(args, detector, seed, first_index, None)
    }

    /// [`Acquisition::new`], with the object's orientation forced in tests.
    fn prepare(
        (object, positions, modes, scale): PrepareArgs<'a, '_, '_>,
        detector: &Detector,
        seed: u64,
        first_index: u64,
        force_transposed: Option<bool>,
    ) -> Result<Self> {
        check_positions(&positions)?;
        let (p, n) = check_modes(&modes)?;
        check_scale(scale)?;
        let (h, w) = object.dim();
        if h == 0 || w == 0 {
            return Err(Error::invalid(
                "obj",
                "a non-empty (H, W) array",
                format!("shape ({h}, {w})"),
            ));
        }
        let m = positions.nrows();
        check_first_index(first_index, m)?;
        let nn = checked_len(n, n)?;
        checked_len(m, nn)?;
        let stage = Stage::new::<T>(detector, n, seed)?;
        let data: Cow<'a, [Complex32]> = match object.to_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(object.iter().copied().collect()),
        };
        // The far field takes the field transposed: sampling a transposed copy of the object
        // gives it directly (bit for bit, see `simulate`), which pays when the patterns
        // outweigh the object enough.
        let transposed = force_transposed.unwrap_or(transpose_pays(h, w, m, nn));
        let (object, dim) = if transposed {
            let t = Object::from_slice(&data, h, w)?.transposed();
            (Cow::Owned(t), (w, h))
        } else {
            (data, (h, w))
        };
        let mut sprobes_t = Vec::with_capacity(checked_len(p, nn)?);
        for mode in modes.axis_iter(Axis(0)) {
            sprobes_t.extend(scaled_probe(&mode.t(), scale));
        }
        Ok(Acquisition {
            object,
            dim,
            transposed,
            positions: positions_list(&positions),
            sprobes_t,
            n,
            modes: p,
            stage,
            first_index,
            template: FarField::new(n)?,
            _reading: PhantomData,
        })
    }

    /// The number of patterns `M`.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are no patterns (never: [`Acquisition::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The pattern size `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of probe modes `P`.
    pub fn n_modes(&self) -> usize {
        self.modes
    }

    /// Acquires patterns `rows` (row `r` is pattern `first_index + r` of the dataset) into
    /// outputs sized to the range: `readings` `(len, N, N)`, optional `patches` `(len, N, N)`
    /// and `stats` `(len, N_STATS)`, all C-contiguous. Any split of `0..M` into ranges gives
    /// the bits of one call.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `rows` is not within `0..M` or an output has the wrong
    /// shape or is strided.
    pub fn run_into(
        &self,
        rows: Range<usize>,
        mut readings: ArrayViewMut3<'_, T>,
        mut patches: Option<ArrayViewMut3<'_, Complex32>>,
        mut stats: Option<ArrayViewMut2<'_, f64>>,
    ) -> Result<()> {
        let m = self.len();
        if rows.start > rows.end || rows.end > m {
            return Err(Error::invalid(
                "rows",
                format!("a range within 0..{m}"),
                format!("{}..{}", rows.start, rows.end),
            ));
        }
        let len = rows.len();
        let n = self.n;
        let out = output3("readings", &mut readings, len, n)?;
        let patch_out = match patches.as_mut() {
            Some(p) => Some(output3("patches", p, len, n)?),
            None => None,
        };
        let stats = output_stats(stats.as_mut(), len)?;
        if len == 0 {
            return Ok(());
        }
        let obj = Object::from_slice(&self.object, self.dim.0, self.dim.1)?;
        let shared = Shared {
            obj,
            transposed: self.transposed,
            sprobes_t: &self.sprobes_t,
            n,
            modes: self.modes,
            stage: &self.stage,
        };
        let nn = n * n;
        let patch_rows = match patch_out {
            Some(p) => Either::Left(p.par_chunks_mut(nn).map(Some)),
            None => Either::Right((0..len).into_par_iter().map(|_| None)),
        };
        let init = || Work {
            ff: self.template.clone(),
            sampler: Sampler::default(),
            staging: vec![Complex32::new(0.0, 0.0); nn],
            patch_t: vec![Complex32::new(0.0, 0.0); if self.modes > 1 { nn } else { 0 }],
            amp: vec![0.0; nn],
            lam: vec![0.0; nn],
            det: self.stage.scratch(),
        };
        out.par_chunks_mut(nn)
            .zip(patch_rows)
            .zip(stats_rows(stats, len))
            .enumerate()
            .for_each_init(init, |ws, (j, ((o, p), s))| {
                let row = rows.start + j;
                if let Some(&xy) = self.positions.get(row) {
                    let index = self.first_index.wrapping_add(row as u64);
                    acquire_one(&shared, ws, xy, index, p, T::row(o), s);
                }
            });
        Ok(())
    }
}

/// What every pattern of one run shares.
struct Shared<'a> {
    obj: Object<'a>,
    transposed: bool,
    sprobes_t: &'a [Complex32],
    n: usize,
    modes: usize,
    stage: &'a Stage,
}

/// One worker's scratch: the far field, the sampler's tables and `N²` buffers.
struct Work {
    ff: FarField,
    sampler: Sampler,
    /// The patch in row-major order (when the object is not transposed).
    staging: Vec<Complex32>,
    /// The transposed patch, kept across modes (`P > 1`).
    patch_t: Vec<Complex32>,
    amp: Vec<f32>,
    lam: Vec<f64>,
    det: StageScratch,
}

/// `dst = src · p` element-wise (the product [`illuminate`] forms in place).
#[inline(always)]
fn illuminate_copy(dst: &mut [Complex32], src: &[Complex32], p: &[Complex32]) {
    for ((d, s), p) in dst.iter_mut().zip(src).zip(p) {
        *d = *s * *p;
    }
}

/// `λ = A²` (`first`) or `λ += A²`, each amplitude squared in `f64`.
#[inline(always)]
fn accumulate(lam: &mut [f64], amp: &[f32], first: bool) {
    if first {
        for (l, &a) in lam.iter_mut().zip(amp) {
            let a = f64::from(a);
            *l = a * a;
        }
    } else {
        for (l, &a) in lam.iter_mut().zip(amp) {
            let a = f64::from(a);
            *l += a * a;
        }
    }
}

crate::simd::multiversion! {
    /// Pattern `index` at `xy = [x, y]`: extract (also into `patch`), each mode's far field,
    /// the incoherent sum, the detector, and the write into `out` (`stats`: its statistics).
    fn acquire_one(
        a: &Shared<'_>,
        ws: &mut Work,
        xy: [f64; 2],
        index: u64,
        patch: Option<&mut [Complex32]>,
        out: OutRow<'_>,
        stats: Option<&mut [f64]>,
    ) {
        let ([x, y], n, nn) = (xy, a.n, a.n * a.n);
        let single = a.modes == 1;
        // 1. Extract: the transposed patch lands in the far field's input (one mode) or in
        //    `patch_t` (kept for every mode).
        if a.transposed {
            let dst = if single { ws.ff.field_t_mut() } else { &mut ws.patch_t[..] };
            ws.sampler.sample(&a.obj, y, x, n, n, dst);
            if let Some(p) = patch {
                transpose(dst, p, n);
            }
        } else {
            ws.sampler.sample(&a.obj, x, y, n, n, &mut ws.staging);
            if let Some(p) = patch {
                p.copy_from_slice(&ws.staging);
            }
            if single {
                if ws.ff.load_field(&ws.staging).is_err() {
                    return;
                }
            } else {
                transpose(&ws.staging, &mut ws.patch_t, n);
            }
        }
        // 2–4. Each mode's far field, summed incoherently.
        for (k, sprobe) in a.sprobes_t.chunks_exact(nn).enumerate() {
            if single {
                illuminate(ws.ff.field_t_mut(), sprobe);
            } else {
                illuminate_copy(ws.ff.field_t_mut(), &ws.patch_t, sprobe);
            }
            ws.ff.transform(&mut ws.amp);
            accumulate(&mut ws.lam, &ws.amp, k == 0);
        }
        // 5–6. The detector, and the write.
        let mut stats = stats;
        detector::analog::<LEVEL>(a.stage, &mut ws.lam, &mut ws.det, index, stats.as_deref_mut());
        detector::write(a.stage, &ws.lam, out, stats);
    }
}

/// [`Acquisition::new`] then [`Acquisition::run_into`] over every pattern: the outputs are
/// the caller's (`readings` `(M, N, N)`, optional `patches` `(M, N, N)` and `stats`
/// `(M, N_STATS)`, C-contiguous).
///
/// # Errors
/// As [`Acquisition::new`] and [`Acquisition::run_into`].
#[allow(clippy::too_many_arguments)]
pub fn acquire_into<T: Reading>(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    modes: ArrayView3<'_, Complex32>,
    scale: f32,
    detector: &Detector,
    seed: u64,
    first_index: u64,
    readings: ArrayViewMut3<'_, T>,
    patches: Option<ArrayViewMut3<'_, Complex32>>,
    stats: Option<ArrayViewMut2<'_, f64>>,
) -> Result<()> {
    let acq = Acquisition::<T>::new(object, positions, modes, scale, detector, seed, first_index)?;
    acq.run_into(0..acq.len(), readings, patches, stats)
}

/// [`acquire_into`] allocating its outputs (patches and statistics when asked).
///
/// # Errors
/// As [`Acquisition::new`]; [`Error::InvalidArgument`] (`positions`) when the outputs would
/// not fit in memory.
#[allow(clippy::too_many_arguments)]
pub fn acquire<T: Reading>(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    modes: ArrayView3<'_, Complex32>,
    scale: f32,
    detector: &Detector,
    seed: u64,
    first_index: u64,
    return_patches: bool,
    return_stats: bool,
) -> Result<Acquired<T>> {
    let acq = Acquisition::<T>::new(object, positions, modes, scale, detector, seed, first_index)?;
    let (m, n) = (acq.len(), acq.n());
    let len = checked_len(m, checked_len(n, n)?)?;
    let shape_err = |e: ndarray::ShapeError| Error::Unsupported(e.to_string());
    let mut readings =
        Array3::from_shape_vec((m, n, n), vec![T::default(); len]).map_err(shape_err)?;
    let mut patches = if return_patches {
        let z = vec![Complex32::new(0.0, 0.0); len];
        Some(Array3::from_shape_vec((m, n, n), z).map_err(shape_err)?)
    } else {
        None
    };
    let mut stats = return_stats.then(|| Array2::zeros((m, N_STATS)));
    acq.run_into(
        0..m,
        readings.view_mut(),
        patches.as_mut().map(|p| p.view_mut()),
        stats.as_mut().map(|s| s.view_mut()),
    )?;
    Ok(Acquired {
        readings,
        patches,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{pixel, Overflow};
    use crate::simulate::{simulate, Noise};
    use ndarray::{arr2, s, stack, Array2};

    fn object(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let t = (r * 31 + c * 17) as f32 * 0.01;
            Complex32::new(1.0 + t.sin(), t.cos())
        })
    }

    fn probe(n: usize, k: usize) -> Array2<Complex32> {
        let h = n as f32 / 2.0;
        Array2::from_shape_fn((n, n), |(r, c)| {
            let (y, x) = (r as f32 - h, c as f32 - h);
            let d2 = x * x + y * y;
            let g = (-d2 / (n as f32)).exp();
            // Mode k: a Hermite-like factor, so modes differ.
            let f = if k == 0 {
                1.0
            } else {
                x / h + 0.3 * k as f32 * y / h
            };
            Complex32::new(g * f, 0.1 * g * (d2.sqrt()).sin())
        })
    }

    fn modes(n: usize, p: usize) -> Array3<Complex32> {
        let v: Vec<Array2<Complex32>> = (0..p).map(|k| probe(n, k)).collect();
        let views: Vec<_> = v.iter().map(|a| a.view()).collect();
        stack(Axis(0), &views).unwrap()
    }

    fn positions() -> Array2<f64> {
        arr2(&[
            [10.0, 12.0],
            [20.25, 7.5],
            [0.3, 33.9],
            [39.7, 39.1],
            [-5.5, 18.0],
            [25.125, 25.875],
            [17.0, 3.25],
        ])
    }

    fn ideal() -> Detector {
        Detector::default()
    }

    fn expected_only() -> Detector {
        Detector {
            poisson: None,
            ..Detector::default()
        }
    }

    fn run<T: Reading>(
        obj: &Array2<Complex32>,
        pos: &Array2<f64>,
        m: &Array3<Complex32>,
        scale: f32,
        det: &Detector,
        seed: u64,
    ) -> Acquired<T> {
        acquire::<T>(
            obj.view(),
            pos.view(),
            m.view(),
            scale,
            det,
            seed,
            0,
            true,
            true,
        )
        .unwrap()
    }

    #[test]
    fn one_mode_ideal_detector_reproduces_todays_noise_bitwise() {
        let (obj, pos) = (object(40, 40), positions());
        for n in [8usize, 9, 16] {
            let pr = probe(n, 0);
            let m1 = pr.clone().insert_axis(Axis(0));
            // A dose high enough that the brightest counts exceed 2^24 (f32's exact range).
            for scale in [3.5f32, 2.0e3] {
                let noise = Some(Noise {
                    seed: 11,
                    first_index: 40,
                });
                let today =
                    simulate(obj.view(), pos.view(), pr.view(), scale, noise, false, true).unwrap();
                let a = acquire::<f64>(
                    obj.view(),
                    pos.view(),
                    m1.view(),
                    scale,
                    &ideal(),
                    11,
                    40,
                    true,
                    false,
                )
                .unwrap();
                for (k, amp) in a.readings.iter().zip(today.amplitudes.iter()) {
                    assert_eq!(k.fract(), 0.0);
                    assert_eq!(k.sqrt() as f32, *amp, "n={n} scale={scale}");
                }
                assert_eq!(a.patches, today.patches);
                let brightest = a.readings.iter().fold(0.0f64, |m, &v| m.max(v));
                assert_eq!(brightest > 16_777_216.0, scale > 10.0, "{brightest}");
                if scale < 10.0 {
                    // Small counts are exact in float32 readings too.
                    let f = acquire::<f32>(
                        obj.view(),
                        pos.view(),
                        m1.view(),
                        scale,
                        &ideal(),
                        11,
                        40,
                        false,
                        false,
                    )
                    .unwrap();
                    assert_eq!(f.readings.mapv(f32::sqrt), today.amplitudes);
                }
            }
            // Without shot noise the readings are the squared noise-free amplitudes.
            let clean = simulate(obj.view(), pos.view(), pr.view(), 3.5, None, false, false)
                .unwrap()
                .amplitudes;
            let e = run::<f64>(&obj, &pos, &m1, 3.5, &expected_only(), 0).readings;
            assert_eq!(e, clean.mapv(|a| f64::from(a) * f64::from(a)));
        }
    }

    #[test]
    fn modes_add_incoherently() {
        let (obj, pos) = (object(40, 40), positions());
        for n in [8usize, 13] {
            let ms = modes(n, 3);
            let got = run::<f64>(&obj, &pos, &ms, 1.5, &expected_only(), 0).readings;
            let mut want = Array3::<f64>::zeros(got.dim());
            for k in 0..3 {
                let a = simulate(
                    obj.view(),
                    pos.view(),
                    ms.index_axis(Axis(0), k),
                    1.5,
                    None,
                    false,
                    false,
                )
                .unwrap()
                .amplitudes;
                want += &a.mapv(|v| f64::from(v) * f64::from(v));
            }
            // Same f32 amplitudes, squared in f64 and added in mode order: equal bits.
            assert_eq!(got, want);
        }
    }

    #[test]
    fn statistics_follow_parseval_and_the_counts() {
        let (obj, pos, ms) = (object(40, 40), positions(), modes(12, 2));
        let a = run::<f64>(&obj, &pos, &ms, 2.0, &ideal(), 4);
        let st = a.stats.unwrap();
        let patches = a.patches.unwrap();
        for i in 0..pos.nrows() {
            let mut energy = 0.0f64;
            for k in 0..2 {
                for (p, q) in patches
                    .index_axis(Axis(0), i)
                    .iter()
                    .zip(ms.index_axis(Axis(0), k))
                {
                    energy += f64::from((p * q * 2.0).norm_sqr());
                }
            }
            assert!(
                (st[[i, 0]] - energy).abs() <= 1e-5 * energy,
                "{} vs {energy}",
                st[[i, 0]]
            );
            assert_eq!(st[[i, 1]], st[[i, 0]]);
            let total: f64 = a.readings.index_axis(Axis(0), i).sum();
            assert_eq!(st[[i, 2]], total);
            assert_eq!(st[[i, 3]], total);
            assert_eq!(st[[i, 4]], 0.0);
        }
    }

    fn full_detector(n: usize) -> Detector {
        let mut pixels = vec![pixel::VALID; n * n];
        pixels[(n / 2) * n + n / 2] = pixel::BEAMSTOP;
        pixels[1] = pixel::GAP;
        pixels[n + 3] = pixel::DEAD;
        pixels[2 * n + 5] = pixel::HOT;
        Detector {
            qe: 0.7,
            dead_time: 1e-3,
            psf_sigma_px: 0.8,
            gain: 3.0,
            offset: 7.0,
            dark: 0.4,
            read_noise: 1.5,
            full_well: Some(4000.0),
            overflow: Overflow::Saturate,
            pixels: Some(pixels),
            ..Detector::default()
        }
    }

    #[test]
    fn pieces_threads_orientations_and_levels_do_not_matter() {
        use crate::simd::{with_cap, Level};
        let (obj, pos, ms) = (object(30, 44), positions(), modes(10, 2));
        let det = full_detector(10);
        let prep = |force| {
            let args = (obj.view(), pos.view(), ms.view(), 9.0f32);
            Acquisition::<u16>::prepare(args, &det, 21, 1000, Some(force)).unwrap()
        };
        let whole = |acq: &Acquisition<'_, u16>| {
            let mut r = Array3::<u16>::zeros((7, 10, 10));
            let mut p = Array3::<Complex32>::zeros((7, 10, 10));
            let mut s = Array2::<f64>::zeros((7, N_STATS));
            acq.run_into(0..7, r.view_mut(), Some(p.view_mut()), Some(s.view_mut()))
                .unwrap();
            (r, p, s)
        };
        let (t, nt) = (prep(true), prep(false));
        let reference = whole(&t);
        assert_eq!(whole(&nt), reference);
        assert!(reference.0.iter().any(|&v| v > 7));
        // Pieces into their own buffers, in any order.
        for cuts in [vec![0usize, 3, 7], vec![0, 1, 2, 6, 7], vec![0, 7]] {
            for w in cuts.windows(2).rev() {
                let (a, b) = (w[0], w[1]);
                let mut r = Array3::<u16>::zeros((b - a, 10, 10));
                let mut s = Array2::<f64>::zeros((b - a, N_STATS));
                nt.run_into(a..b, r.view_mut(), None, Some(s.view_mut()))
                    .unwrap();
                assert_eq!(r, reference.0.slice(s![a..b, .., ..]));
                assert_eq!(s, reference.2.slice(s![a..b, ..]));
            }
        }
        // A chunk as its own call, numbered from its first pattern.
        let mut r = Array3::<u16>::zeros((4, 10, 10));
        acquire_into(
            obj.view(),
            pos.slice(s![3.., ..]),
            ms.view(),
            9.0,
            &det,
            21,
            1003,
            r.view_mut(),
            None,
            None,
        )
        .unwrap();
        assert_eq!(r, reference.0.slice(s![3.., .., ..]));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| whole(&t)), reference);
        for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(with_cap(level, || whole(&t)), reference, "{level:?}");
        }
        // The patches are today's.
        let p = crate::patches::extract_patches(obj.view(), pos.view(), 10).unwrap();
        assert_eq!(reference.1, p);
    }

    #[test]
    fn rejects_bad_input() {
        let (obj, pos, ms) = (object(20, 20), positions(), modes(8, 2));
        let name = |r: Result<Acquired<f32>>| match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an error, got {other:?}"),
        };
        let go = |o: &Array2<Complex32>, p: &Array2<f64>, m: &Array3<Complex32>, s: f32| {
            acquire::<f32>(
                o.view(),
                p.view(),
                m.view(),
                s,
                &ideal(),
                0,
                0,
                false,
                false,
            )
        };
        assert_eq!(
            name(go(&obj, &Array2::zeros((3, 3)), &ms, 1.0)),
            "positions"
        );
        assert_eq!(
            name(go(&obj, &Array2::zeros((0, 2)), &ms, 1.0)),
            "positions"
        );
        assert_eq!(
            name(go(&obj, &arr2(&[[1.0, f64::NAN]]), &ms, 1.0)),
            "positions"
        );
        assert_eq!(
            name(go(&obj, &pos, &Array3::zeros((0, 8, 8)), 1.0)),
            "probe"
        );
        assert_eq!(
            name(go(&obj, &pos, &Array3::zeros((2, 8, 7)), 1.0)),
            "probe"
        );
        assert_eq!(
            name(go(&obj, &pos, &Array3::zeros((1, 1, 1)), 1.0)),
            "probe"
        );
        assert_eq!(name(go(&obj, &pos, &ms, 0.0)), "scale");
        assert_eq!(name(go(&obj, &pos, &ms, f32::INFINITY)), "scale");
        assert_eq!(name(go(&Array2::zeros((0, 3)), &pos, &ms, 1.0)), "obj");
        let r = acquire::<f32>(
            obj.view(),
            pos.view(),
            ms.view(),
            1.0,
            &ideal(),
            0,
            u64::MAX - 3,
            false,
            false,
        );
        assert_eq!(name(r), "first_index");
        let bad = Detector {
            gain: -1.0,
            ..ideal()
        };
        let r = acquire::<f32>(
            obj.view(),
            pos.view(),
            ms.view(),
            1.0,
            &bad,
            0,
            0,
            false,
            false,
        );
        assert_eq!(name(r), "gain");
        let acq = Acquisition::<f32>::new(obj.view(), pos.view(), ms.view(), 1.0, &ideal(), 0, 0)
            .unwrap();
        assert_eq!(
            (acq.len(), acq.n(), acq.n_modes(), acq.is_empty()),
            (7, 8, 2, false)
        );
        let mut r = Array3::<f32>::zeros((2, 8, 8));
        let e = acq.run_into(6..8, r.view_mut(), None, None);
        assert!(matches!(
            e,
            Err(Error::InvalidArgument { name: "rows", .. })
        ));
        let e = acq.run_into(0..3, r.view_mut(), None, None);
        assert!(matches!(
            e,
            Err(Error::InvalidArgument {
                name: "readings",
                ..
            })
        ));
        let mut p = Array3::<Complex32>::zeros((8, 8, 2));
        let e = acq.run_into(0..2, r.view_mut(), Some(p.view_mut().reversed_axes()), None);
        assert!(matches!(
            e,
            Err(Error::InvalidArgument {
                name: "patches",
                ..
            })
        ));
        let mut st = Array2::<f64>::zeros((2, 3));
        let e = acq.run_into(0..2, r.view_mut(), None, Some(st.view_mut()));
        assert!(matches!(
            e,
            Err(Error::InvalidArgument { name: "stats", .. })
        ));
        let mut empty = Array3::<f32>::zeros((0, 8, 8));
        assert!(acq.run_into(3..3, empty.view_mut(), None, None).is_ok());
    }
}
