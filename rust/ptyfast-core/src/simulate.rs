//! The fused per-pattern simulation: position → patch → probe → FFT → optional noise, each
//! pattern in one pass into a preallocated output, in parallel over patterns.
//!
//! Every pattern is computed by the same sequence of `f32` operations as the separate kernels
//! ([`crate::patches::extract_patches`] then [`crate::diffraction::diffract`]), so the fused
//! result equals theirs bit for bit. Workers keep only scratch (a [`FarField`] and the sampler
//! tables); pattern `i`'s noise comes from stream `(seed, first_index + i)`, so no result
//! depends on the thread count or on how a dataset is split into calls.

use std::borrow::Cow;
use std::ops::Range;

use ndarray::{Array1, Array3, ArrayView2, ArrayViewMut1, ArrayViewMut3};
use rayon::iter::Either;
use rayon::prelude::*;

use crate::diffraction::{check_probe, check_scale, illuminate, scaled_probe, transpose, FarField};
use crate::noise::observe_pattern;
use crate::patches::{
    check_positions, checked_len, positions_list, standard_object, transpose_pays, zeroed, Object,
    Sampler,
};
use crate::{Complex32, Error, Result};

/// Poisson noise settings: pattern `i` of the call draws from stream `(seed, first_index + i)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noise {
    pub seed: u64,
    pub first_index: u64,
}

/// Output of [`simulate`].
#[derive(Debug, Clone)]
pub struct Simulation {
    /// `(M, N, N)` amplitudes (divided by `scale` when asked).
    pub amplitudes: Array3<f32>,
    /// `(M, N, N)` object patches before the probe, when asked.
    pub patches: Option<Array3<Complex32>>,
}

/// Per-pattern illuminated energy `Σ |probe · patch|²` (no FFT), in `f64`.
///
/// The product `probe · patch` is formed in complex64 (patch as in
/// [`crate::patches::extract_patches`]); its squared modulus is summed in `f64`, in a fixed
/// order.
/// Nothing is reduced across patterns, so the result does not depend on the thread count.
///
/// # Errors
/// [`Error::InvalidArgument`] when `obj` is empty, `positions` is not a non-empty `(M, 2)`
/// array of finite values, or `probe` is not square with `N ≥ 2`.
pub fn illuminated_energy(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    probe: ArrayView2<'_, Complex32>,
) -> Result<Array1<f64>> {
    check_positions(&positions)?;
    let n = check_probe(&probe, None)?;
    let cow = standard_object(&object);
    let obj = Object::new(&cow)?;
    let probe: Vec<Complex32> = probe.iter().copied().collect();
    let nn = checked_len(n, n)?;
    let pos = positions_list(&positions);
    let mut out = vec![0.0f64; pos.len()];
    out.par_iter_mut().zip(pos.par_iter()).for_each_init(
        || (Sampler::default(), vec![Complex32::new(0.0, 0.0); nn]),
        |(sampler, patch), (e, &[x, y])| {
            *e = patch_energy(sampler, &obj, [x, y], n, patch, &probe);
        },
    );
    Ok(Array1::from_vec(out))
}

crate::simd::multiversion! {
    /// The patch at `xy = [x, y]` (into `patch`) and its energy `Σ |probe · patch|²`
    /// ([`energy`]), compiled for the widest instruction set (the sampler and the sum are
    /// inlined; the same bits at every level, [`crate::simd`]).
    fn patch_energy(
        sampler: &mut Sampler,
        obj: &Object<'_>,
        xy: [f64; 2],
        n: usize,
        patch: &mut [Complex32],
        probe: &[Complex32],
    ) -> f64 {
        sampler.sample(obj, xy[0], xy[1], n, n, patch);
        energy(patch, probe)
    }
}

/// `Σ |a · p|²` with the product in complex64 and the sum in `f64`, over eight interleaved
/// partial sums combined in a fixed order (deterministic, and not one long dependency chain).
#[inline(always)]
fn energy(a: &[Complex32], p: &[Complex32]) -> f64 {
    const LANES: usize = 8;
    let sq = |a: &Complex32, p: &Complex32| {
        let v = *a * *p;
        let (re, im) = (v.re as f64, v.im as f64);
        re * re + im * im
    };
    let mut acc = [0.0f64; LANES];
    let (ac, pc) = (a.chunks_exact(LANES), p.chunks_exact(LANES));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(pc.remainder())
        .map(|(a, p)| sq(a, p))
        .sum();
    for (ca, cp) in ac.zip(pc) {
        for ((s, a), p) in acc.iter_mut().zip(ca).zip(cp) {
            *s += sq(a, p);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Simulates `M` diffraction amplitudes of `scale · probe · patch`; with `noise`, observed as
/// `sqrt(Poisson(A²))`; with `divide_by_scale`, the result is divided by `scale` (the
/// reference's stored `X`). Allocates the outputs and calls [`simulate_into`].
///
/// # Errors
/// As [`simulate_into`].
pub fn simulate(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
    divide_by_scale: bool,
    return_patches: bool,
) -> Result<Simulation> {
    check_positions(&positions)?;
    let n = check_probe(&probe, None)?;
    let m = positions.nrows();
    let len = checked_len(m, checked_len(n, n)?)?;
    let mut amplitudes = Array3::from_shape_vec((m, n, n), zeroed::<f32>(len, "positions")?)
        .map_err(|e| Error::Unsupported(e.to_string()))?;
    let mut patches = if return_patches {
        Some(
            Array3::from_shape_vec((m, n, n), zeroed::<Complex32>(len, "positions")?)
                .map_err(|e| Error::Unsupported(e.to_string()))?,
        )
    } else {
        None
    };
    simulate_into(
        object,
        positions,
        probe,
        scale,
        noise,
        divide_by_scale,
        amplitudes.view_mut(),
        patches.as_mut().map(|p| p.view_mut()),
    )?;
    Ok(Simulation {
        amplitudes,
        patches,
    })
}

/// [`simulate`] writing into caller-provided C-contiguous buffers (`(M, N, N)` amplitudes and,
/// optionally, `(M, N, N)` patches), for streaming a dataset in chunks: call it per chunk with
/// `first_index` advanced by the chunk's start to get the patterns of one big call.
///
/// Per pattern `i`: `A = |fftshift(FFT2(patch · (scale · probe)))| / N` (see
/// [`crate::diffraction`]), then `A ← sqrt(Poisson(A²))` on stream `(seed, first_index + i)`
/// when `noise` is given, then `A ← A / scale` when `divide_by_scale`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `obj` is empty; `positions` is not a non-empty `(M, 2)`
/// array of finite values; `probe` is not square with `N ≥ 2`; `scale` is not positive and
/// finite; an output is not C-contiguous `(M, N, N)`; or `first_index + M` overflows `u64`.
#[allow(clippy::too_many_arguments)]
pub fn simulate_into(
    object: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
    divide_by_scale: bool,
    amplitudes: ArrayViewMut3<'_, f32>,
    patches: Option<ArrayViewMut3<'_, Complex32>>,
) -> Result<()> {
    let args = (object, positions, probe, scale, noise, divide_by_scale);
    let sim = Simulator::prepare(args, None)?;
    sim.run_into(0..sim.len(), amplitudes, patches, None)
}

type SimulateArgs<'a, 'b, 'c> = (
    ArrayView2<'a, Complex32>,
    ArrayView2<'b, f64>,
    ArrayView2<'c, Complex32>,
    f32,
    Option<Noise>,
    bool,
);

/// A fused simulation of `M` patterns, prepared once per call: validated inputs, the object in
/// the orientation the far field wants (a transposed copy when that pays, decided for the
/// whole call), the scaled probe and an FFT plan. [`Simulator::run_into`] then fills any range
/// of rows (pattern `r` is stream `first_index + r`) with the bits of one call, so a caller that
/// runs the patterns in pieces (to handle signals between them) pays the setup once.
pub struct Simulator<'a> {
    object: Cow<'a, [Complex32]>,
    /// Dimensions of `object` as stored (transposed when `transposed`).
    dim: (usize, usize),
    transposed: bool,
    positions: Vec<[f64; 2]>,
    /// `scale · probe`, transposed.
    sprobe_t: Vec<Complex32>,
    n: usize,
    noise: Option<Noise>,
    /// `Some(scale)` when the amplitudes are returned divided by it.
    divide: Option<f32>,
    template: FarField,
}

impl<'a> Simulator<'a> {
    /// Prepares the simulation of `M = positions.nrows()` patterns (arguments as
    /// [`simulate_into`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `obj` is empty; `positions` is not a non-empty `(M, 2)`
    /// array of finite values; `probe` is not square with `N ≥ 2`; `scale` is not positive and
    /// finite; or `first_index + M` overflows `u64`.
    pub fn new(
        object: ArrayView2<'a, Complex32>,
        positions: ArrayView2<'_, f64>,
        probe: ArrayView2<'_, Complex32>,
        scale: f32,
        noise: Option<Noise>,
        divide_by_scale: bool,
    ) -> Result<Self> {
        Self::prepare(
            (object, positions, probe, scale, noise, divide_by_scale),
            None,
        )
    }

    /// [`Simulator::new`], with the sampling orientation forced in tests.
    fn prepare(
        (object, positions, probe, scale, noise, divide_by_scale): SimulateArgs<'a, '_, '_>,
        force_transposed_object: Option<bool>,
    ) -> Result<Self> {
        check_positions(&positions)?;
        let n = check_probe(&probe, None)?;
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
        if let Some(nz) = noise {
            if nz.first_index.checked_add(m as u64).is_none() {
                return Err(Error::invalid(
                    "first_index",
                    format!("at most 2**64 - 1 - {m}"),
                    nz.first_index.to_string(),
                ));
            }
        }
        let nn = checked_len(n, n)?;
        let data: Cow<'a, [Complex32]> = match object.to_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(object.iter().copied().collect()),
        };
        // The far field takes the field transposed. Sampling a transposed copy of the object
        // gives exactly that (the bilinear blend is symmetric in rows and columns, so the
        // values equal `extract_patches`' bit for bit) and saves a transpose per pattern; it
        // pays when the patterns outweigh the object enough ([`transpose_pays`]), e.g. not
        // for a small chunk of a large object. Decided (and the copy made) once per call.
        let transposed = force_transposed_object.unwrap_or(transpose_pays(h, w, m, nn));
        let (object, dim) = if transposed {
            let t = Object::from_slice(&data, h, w)?.transposed();
            (Cow::Owned(t), (w, h))
        } else {
            (data, (h, w))
        };
        Ok(Simulator {
            object,
            dim,
            transposed,
            positions: positions_list(&positions),
            sprobe_t: scaled_probe(&probe.t(), scale),
            n,
            noise,
            divide: divide_by_scale.then_some(scale),
            template: FarField::new(n)?,
        })
    }

    /// The number of patterns `M`.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are no patterns (never: [`Simulator::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The pattern size `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Simulates patterns `rows` into outputs sized to the range: `amplitudes` `(len, N, N)`,
    /// optional `patches` `(len, N, N)` and `energies` `(len,)`, all C-contiguous. Any split of
    /// `0..M` into ranges gives the bits of one call.
    ///
    /// `energies[i]` receives `Σ amplitudes[i]²` of the pattern as written (after noise and the
    /// division by `scale`), each value squared in `f64` and summed in NumPy's pairwise order
    /// ([`sum_squares`]): bit for bit what NumPy computes from the stored patterns
    /// (`(x.astype(float64)**2).sum(axis=(1, 2))` over a C-contiguous row), out of the same
    /// pass. A non-finite pattern value makes its energy non-finite, so the energies also
    /// tell whether the output is finite.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `rows` is not within `0..M` or an output has the wrong
    /// shape or is strided.
    pub fn run_into(
        &self,
        rows: Range<usize>,
        mut amplitudes: ArrayViewMut3<'_, f32>,
        mut patches: Option<ArrayViewMut3<'_, Complex32>>,
        mut energies: Option<ArrayViewMut1<'_, f64>>,
    ) -> Result<()> {
        let m = self.len();
        if rows.start > rows.end || rows.end > m {
            return Err(Error::invalid(
                "rows",
                format!("a range within 0..{m}"),
                format!("{}..{}", rows.start, rows.end),
            ));
        }
        let (len, n) = (rows.len(), self.n);
        let nn = n * n;
        let shape = format!("C-contiguous ({len}, {n}, {n})");
        if amplitudes.dim() != (len, n, n) {
            let got = format!("{:?}", amplitudes.dim());
            return Err(Error::invalid("amplitudes", shape, got));
        }
        let out = amplitudes
            .as_slice_mut()
            .ok_or_else(|| Error::invalid("amplitudes", shape.clone(), "a strided array"))?;
        let patch_out = match patches.as_mut() {
            Some(p) if p.dim() != (len, n, n) => {
                return Err(Error::invalid("patches", shape, format!("{:?}", p.dim())));
            }
            Some(p) => Some(
                p.as_slice_mut()
                    .ok_or_else(|| Error::invalid("patches", shape, "a strided array"))?,
            ),
            None => None,
        };
        let energy_out = match energies.as_mut() {
            Some(e) if e.len() != len => {
                let want = format!("C-contiguous ({len},)");
                return Err(Error::invalid("energies", want, format!("({},)", e.len())));
            }
            Some(e) => Some(e.as_slice_mut().ok_or_else(|| {
                Error::invalid(
                    "energies",
                    format!("C-contiguous ({len},)"),
                    "a strided array",
                )
            })?),
            None => None,
        };
        if len == 0 {
            return Ok(());
        }
        let fused = Fused {
            obj: Object::from_slice(&self.object, self.dim.0, self.dim.1)?,
            transposed: self.transposed,
            sprobe_t: &self.sprobe_t,
            n,
            noise: self.noise,
            scale: self.divide,
        };
        let init = || {
            let staging = if self.transposed {
                Vec::new()
            } else {
                vec![Complex32::new(0.0, 0.0); nn]
            };
            (self.template.clone(), Sampler::default(), staging)
        };
        let patch_rows = match patch_out {
            Some(p) => Either::Left(p.par_chunks_mut(nn).map(Some)),
            None => Either::Right((0..len).into_par_iter().map(|_| None)),
        };
        let energy_rows = match energy_out {
            Some(e) => Either::Left(e.par_iter_mut().map(Some)),
            None => Either::Right((0..len).into_par_iter().map(|_| None)),
        };
        out.par_chunks_mut(nn)
            .zip(patch_rows)
            .zip(energy_rows)
            .enumerate()
            .for_each_init(init, |(ff, sampler, staging), (j, ((a, p), e))| {
                let row = rows.start + j;
                if let Some(&xy) = self.positions.get(row) {
                    simulate_one(&fused, ff, sampler, staging, row, xy, a, p);
                    if let Some(e) = e {
                        *e = sum_squares(a);
                    }
                }
            });
        Ok(())
    }
}

/// `Σ v²` over `a`, each value squared in `f64` (exactly: a float32 square fits a float64),
/// summed in NumPy's pairwise order: the order `numpy.add.reduce` uses over a contiguous
/// float64 row (blocks of at most 128 summed by eight interleaved accumulators, halves split
/// at a multiple of 8), so the result equals NumPy's sum of the squared row bit for bit.
pub fn sum_squares(a: &[f32]) -> f64 {
    #[inline(always)]
    fn sq(v: f32) -> f64 {
        let v = f64::from(v);
        v * v
    }
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += sq(v);
        }
        res
    } else if n <= 128 {
        let (body, tail) = a.split_at(n - n % 8);
        let mut r = [0.0f64; 8];
        let mut blocks = body.chunks_exact(8);
        if let Some(first) = blocks.next() {
            for (r, &v) in r.iter_mut().zip(first) {
                *r = sq(v);
            }
        }
        for block in blocks {
            for (r, &v) in r.iter_mut().zip(block) {
                *r += sq(v);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in tail {
            res += sq(v);
        }
        res
    } else {
        let half = n / 2;
        let (lo, hi) = a.split_at(half - half % 8);
        sum_squares(lo) + sum_squares(hi)
    }
}

/// What every pattern of one fused run shares.
struct Fused<'a> {
    /// The object, transposed when `transposed`.
    obj: Object<'a>,
    transposed: bool,
    /// `scale · probe`, transposed.
    sprobe_t: &'a [Complex32],
    n: usize,
    noise: Option<Noise>,
    /// `Some(scale)` when the amplitudes are returned divided by it.
    scale: Option<f32>,
}

crate::simd::multiversion! {
    /// Pattern `row` (stream `first_index + row`) at `xy = [x, y]`: its patch (also written to
    /// `patch`), exit wave, far field, noise and scaling, into `amp`.
    #[allow(clippy::too_many_arguments)]
    fn simulate_one(
        f: &Fused<'_>,
        ff: &mut FarField,
        sampler: &mut Sampler,
        staging: &mut [Complex32],
        row: usize,
        xy: [f64; 2],
        amp: &mut [f32],
        patch: Option<&mut [Complex32]>,
    ) {
        let ([x, y], n) = (xy, f.n);
        if f.transposed {
            let field_t = ff.field_t_mut();
            sampler.sample(&f.obj, y, x, n, n, field_t);
            if let Some(p) = patch {
                transpose(field_t, p, n);
            }
        } else {
            sampler.sample(&f.obj, x, y, n, n, staging);
            if let Some(p) = patch {
                p.copy_from_slice(staging);
            }
            if ff.load_field(staging).is_err() {
                return;
            }
        }
        illuminate(ff.field_t_mut(), f.sprobe_t);
        ff.transform(amp);
        if let Some(nz) = f.noise {
            observe_pattern(amp, nz.seed, nz.first_index.wrapping_add(row as u64));
        }
        if let Some(scale) = f.scale {
            for v in amp.iter_mut() {
                *v /= scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffraction::diffract;
    use crate::patches::extract_patches;
    use ndarray::{arr2, Array2};

    fn object(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let t = (r * 31 + c * 17) as f32 * 0.01;
            Complex32::new(1.0 + t.sin(), t.cos())
        })
    }

    fn probe(n: usize) -> Array2<Complex32> {
        let h = n as f32 / 2.0;
        Array2::from_shape_fn((n, n), |(r, c)| {
            let d = ((r as f32 - h).powi(2) + (c as f32 - h).powi(2)).sqrt();
            Complex32::new((-d * d / (n as f32)).exp(), 0.1 * d.sin())
        })
    }

    fn positions() -> Array2<f64> {
        arr2(&[
            [10.0, 12.0],
            [20.25, 7.5],
            [0.3, 33.9],
            [39.7, 39.1],
            [-5.5, 18.0],
            [25.125, 25.875],
        ])
    }

    #[test]
    fn fused_equals_separate_kernels_bitwise() {
        let (obj, pos) = (object(40, 40), positions());
        for n in [8usize, 9, 16] {
            let pr = probe(n);
            let sim = simulate(obj.view(), pos.view(), pr.view(), 3.5, None, false, true).unwrap();
            let patches = extract_patches(obj.view(), pos.view(), n).unwrap();
            let amps = diffract(patches.view(), pr.view(), 3.5).unwrap();
            assert_eq!(sim.patches.as_ref(), Some(&patches));
            assert_eq!(sim.amplitudes, amps);
            let div = simulate(obj.view(), pos.view(), pr.view(), 3.5, None, true, false).unwrap();
            assert!(div.patches.is_none());
            assert_eq!(div.amplitudes, amps.mapv(|v| v / 3.5));
        }
    }

    #[test]
    fn both_sampling_orientations_agree_bitwise() {
        let (obj, pos, pr) = (object(30, 44), positions(), probe(9));
        let noise = Some(Noise {
            seed: 3,
            first_index: 10,
        });
        let run = |force| {
            let mut a = Array3::<f32>::zeros((6, 9, 9));
            let mut p = Array3::<Complex32>::zeros((6, 9, 9));
            let args = (obj.view(), pos.view(), pr.view(), 1.5, noise, true);
            let sim = Simulator::prepare(args, Some(force)).unwrap();
            sim.run_into(0..6, a.view_mut(), Some(p.view_mut()), None)
                .unwrap();
            (a, p)
        };
        let (a1, p1) = run(true);
        let (a2, p2) = run(false);
        assert_eq!(a1, a2);
        assert_eq!(p1, p2);
        assert_eq!(p1, extract_patches(obj.view(), pos.view(), 9).unwrap());
    }

    #[test]
    fn transposed_object_copy() {
        for (h, w) in [(1, 1), (3, 70), (65, 33), (40, 40)] {
            let o = object(h, w);
            let view = o.view();
            let cow = standard_object(&view);
            let obj = Object::new(&cow).unwrap();
            let t = Array2::from_shape_vec((w, h), obj.transposed()).unwrap();
            assert_eq!(t, o.t());
        }
    }

    #[test]
    fn energy_matches_a_direct_sum_and_parseval() {
        let (obj, pos, pr) = (object(40, 40), positions(), probe(12));
        let e = illuminated_energy(obj.view(), pos.view(), pr.view()).unwrap();
        let patches = extract_patches(obj.view(), pos.view(), 12).unwrap();
        let amps = diffract(patches.view(), pr.view(), 1.0).unwrap();
        for (i, &ei) in e.iter().enumerate() {
            let p = patches.index_axis(ndarray::Axis(0), i);
            let direct: f64 = p
                .iter()
                .zip(pr.iter())
                .map(|(a, b)| (a * b).norm_sqr() as f64)
                .sum();
            assert!((ei - direct).abs() <= 1e-6 * direct);
            let parseval: f64 = amps
                .index_axis(ndarray::Axis(0), i)
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum();
            assert!((ei - parseval).abs() <= 1e-5 * ei, "{ei} vs {parseval}");
        }
    }

    #[test]
    fn chunked_into_buffers_equals_one_call() {
        let (obj, pos, pr) = (object(40, 40), positions(), probe(8));
        let noise = Some(Noise {
            seed: 7,
            first_index: 0,
        });
        let whole = simulate(obj.view(), pos.view(), pr.view(), 2.0, noise, true, false).unwrap();
        let mut buf = Array3::<f32>::zeros((6, 8, 8));
        for (start, end) in [(0usize, 2usize), (2, 5), (5, 6)] {
            let nz = Some(Noise {
                seed: 7,
                first_index: start as u64,
            });
            simulate_into(
                obj.view(),
                pos.slice(ndarray::s![start..end, ..]),
                pr.view(),
                2.0,
                nz,
                true,
                buf.slice_mut(ndarray::s![start..end, .., ..]),
                None,
            )
            .unwrap();
        }
        assert_eq!(buf, whole.amplitudes);
    }

    /// NumPy's pairwise summation written out recursively as NumPy's source states it.
    fn pairwise_reference(a: &[f64]) -> f64 {
        let n = a.len();
        if n < 8 {
            a.iter().fold(0.0, |r, &v| r + v)
        } else if n <= 128 {
            let mut r: Vec<f64> = a[..8].to_vec();
            let mut i = 8;
            while i < n - n % 8 {
                for k in 0..8 {
                    r[k] += a[i + k];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            while i < n {
                res += a[i];
                i += 1;
            }
            res
        } else {
            let n2 = n / 2 - (n / 2) % 8;
            pairwise_reference(&a[..n2]) + pairwise_reference(&a[n2..])
        }
    }

    #[test]
    fn sum_squares_follows_the_pairwise_order() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [
            0usize, 1, 5, 7, 8, 9, 64, 100, 127, 128, 129, 255, 1000, 4096, 16_384,
        ] {
            let a: Vec<f32> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 * 1e-3 + 1e-7
                })
                .collect();
            let squares: Vec<f64> = a.iter().map(|&v| f64::from(v) * f64::from(v)).collect();
            assert_eq!(
                sum_squares(&a).to_bits(),
                pairwise_reference(&squares).to_bits()
            );
            let naive: f64 = squares.iter().sum();
            assert!((sum_squares(&a) - naive).abs() <= 1e-12 * naive.max(1.0));
        }
        assert!(sum_squares(&[1.0, f32::NAN]).is_nan());
        assert!(sum_squares(&[f32::INFINITY; 9]).is_infinite());
    }

    #[test]
    fn pieces_and_energies_equal_one_call() {
        let (obj, pos, pr) = (object(40, 40), positions(), probe(12));
        let noise = Some(Noise {
            seed: 11,
            first_index: 5,
        });
        for force in [None, Some(true), Some(false)] {
            let args = (obj.view(), pos.view(), pr.view(), 2.5, noise, true);
            let sim = Simulator::prepare(args, force).unwrap();
            let whole =
                simulate(obj.view(), pos.view(), pr.view(), 2.5, noise, true, true).unwrap();
            let mut amps = Array3::<f32>::zeros((6, 12, 12));
            let mut patches = Array3::<Complex32>::zeros((6, 12, 12));
            let mut energies = Array1::<f64>::zeros(6);
            for (a, b) in [(0usize, 1usize), (1, 1), (1, 4), (4, 6)] {
                sim.run_into(
                    a..b,
                    amps.slice_mut(ndarray::s![a..b, .., ..]),
                    Some(patches.slice_mut(ndarray::s![a..b, .., ..])),
                    Some(energies.slice_mut(ndarray::s![a..b])),
                )
                .unwrap();
            }
            assert_eq!(amps, whole.amplitudes);
            assert_eq!(Some(&patches), whole.patches.as_ref());
            for (i, e) in energies.iter().enumerate() {
                let row = amps.slice(ndarray::s![i, .., ..]);
                let direct: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                assert!((e - direct).abs() <= 1e-12 * direct, "{e} vs {direct}");
                let flat: Vec<f32> = row.iter().copied().collect();
                assert_eq!(e.to_bits(), sum_squares(&flat).to_bits());
            }
            let mut short = Array1::<f64>::zeros(2);
            let r = sim.run_into(
                0..3,
                amps.slice_mut(ndarray::s![0..3, .., ..]),
                None,
                Some(short.view_mut()),
            );
            assert!(matches!(
                r,
                Err(Error::InvalidArgument {
                    name: "energies",
                    ..
                })
            ));
            let r = sim.run_into(4..7, amps.slice_mut(ndarray::s![0..3, .., ..]), None, None);
            assert!(matches!(
                r,
                Err(Error::InvalidArgument { name: "rows", .. })
            ));
        }
    }

    #[test]
    fn rejects_bad_input() {
        let (obj, pos, pr) = (object(20, 20), positions(), probe(8));
        let name = |r: Result<Simulation>| match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an error, got {other:?}"),
        };
        let sim = |o: &Array2<Complex32>, p: &Array2<f64>, q: &Array2<Complex32>, s: f32| {
            simulate(o.view(), p.view(), q.view(), s, None, false, false)
        };
        assert_eq!(
            name(sim(&obj, &Array2::zeros((3, 3)), &pr, 1.0)),
            "positions"
        );
        assert_eq!(
            name(sim(&obj, &Array2::zeros((0, 2)), &pr, 1.0)),
            "positions"
        );
        assert_eq!(
            name(sim(&obj, &arr2(&[[1.0, f64::INFINITY]]), &pr, 1.0)),
            "positions"
        );
        assert_eq!(name(sim(&obj, &pos, &Array2::zeros((8, 7)), 1.0)), "probe");
        assert_eq!(name(sim(&obj, &pos, &Array2::zeros((1, 1)), 1.0)), "probe");
        assert_eq!(name(sim(&obj, &pos, &pr, 0.0)), "scale");
        assert_eq!(name(sim(&obj, &pos, &pr, f32::NAN)), "scale");
        assert_eq!(name(sim(&Array2::zeros((0, 4)), &pos, &pr, 1.0)), "obj");
        let big = Some(Noise {
            seed: 1,
            first_index: u64::MAX - 2,
        });
        let r = simulate(obj.view(), pos.view(), pr.view(), 1.0, big, false, false);
        assert_eq!(name(r), "first_index");
        let mut wrong = Array3::<f32>::zeros((6, 8, 9));
        let r = simulate_into(
            obj.view(),
            pos.view(),
            pr.view(),
            1.0,
            None,
            false,
            wrong.view_mut(),
            None,
        );
        assert!(matches!(
            r,
            Err(Error::InvalidArgument {
                name: "amplitudes",
                ..
            })
        ));
        let mut amps = Array3::<f32>::zeros((6, 8, 8));
        let mut strided = Array3::<Complex32>::zeros((8, 8, 6));
        let r = simulate_into(
            obj.view(),
            pos.view(),
            pr.view(),
            1.0,
            None,
            false,
            amps.view_mut(),
            Some(strided.view_mut().reversed_axes()),
        );
        assert!(matches!(
            r,
            Err(Error::InvalidArgument {
                name: "patches",
                ..
            })
        ));
        assert_eq!(
            name(Err(illuminated_energy(
                obj.view(),
                pos.view(),
                Array2::zeros((3, 4)).view()
            )
            .unwrap_err())),
            "probe"
        );
    }
}
