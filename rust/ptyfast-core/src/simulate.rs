//! The fused per-pattern simulation: position → patch → probe → FFT → optional noise, each
//! pattern in one pass into a preallocated output, in parallel over patterns.
//!
//! Every pattern is computed by the same sequence of `f32` operations as the separate kernels
//! ([`crate::patches::extract_patches`] then [`crate::diffraction::diffract`]), so the fused
//! result equals theirs bit for bit. Workers keep only scratch (a [`FarField`] and the sampler
//! tables); pattern `i`'s noise comes from stream `(seed, first_index + i)`, so no result
//! depends on the thread count or on how a dataset is split into calls.

use ndarray::{Array1, Array3, ArrayView2, ArrayViewMut3};
use rayon::prelude::*;

use crate::diffraction::{check_probe, check_scale, illuminate, scaled_probe, transpose, FarField};
use crate::noise::observe_pattern;
use crate::patches::{
    check_positions, checked_len, positions_list, standard_object, zeroed, Object, Sampler,
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
            sampler.sample(&obj, x, y, n, n, patch);
            *e = energy(patch, &probe);
        },
    );
    Ok(Array1::from_vec(out))
}

/// `Σ |a · p|²` with the product in complex64 and the sum in `f64`, over eight interleaved
/// partial sums combined in a fixed order (deterministic, and not one long dependency chain).
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
    simulate_impl(args, amplitudes, patches, None)
}

type SimulateArgs<'a, 'b, 'c> = (
    ArrayView2<'a, Complex32>,
    ArrayView2<'b, f64>,
    ArrayView2<'c, Complex32>,
    f32,
    Option<Noise>,
    bool,
);

/// [`simulate_into`], with the sampling orientation forced in tests.
fn simulate_impl(
    (object, positions, probe, scale, noise, divide_by_scale): SimulateArgs<'_, '_, '_>,
    mut amplitudes: ArrayViewMut3<'_, f32>,
    patches: Option<ArrayViewMut3<'_, Complex32>>,
    force_transposed_object: Option<bool>,
) -> Result<()> {
    check_positions(&positions)?;
    let n = check_probe(&probe, None)?;
    check_scale(scale)?;
    let cow = standard_object(&object);
    let obj = Object::new(&cow)?;
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
    let shape = format!("C-contiguous ({m}, {n}, {n})");
    if amplitudes.dim() != (m, n, n) {
        let got = format!("{:?}", amplitudes.dim());
        return Err(Error::invalid("amplitudes", shape, got));
    }
    let out = amplitudes
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("amplitudes", shape.clone(), "a strided array"))?;
    let mut patches = patches;
    let patch_out = match patches.as_mut() {
        Some(p) if p.dim() != (m, n, n) => {
            return Err(Error::invalid("patches", shape, format!("{:?}", p.dim())));
        }
        Some(p) => Some(
            p.as_slice_mut()
                .ok_or_else(|| Error::invalid("patches", shape, "a strided array"))?,
        ),
        None => None,
    };

    // The far field takes the field transposed. Sampling a transposed copy of the object gives
    // exactly that (the bilinear blend is symmetric in rows and columns, so the values equal
    // `extract_patches`' bit for bit) and saves a transpose per pattern; it pays when the
    // patterns outweigh the object, e.g. not for a small chunk of a huge object.
    let (h, w) = obj.dim();
    let transposed = force_transposed_object.unwrap_or(h.saturating_mul(w) <= m.saturating_mul(nn));
    let obj_t_data = if transposed {
        obj.transposed()
    } else {
        Vec::new()
    };
    let obj_t = if transposed {
        Object::from_slice(&obj_t_data, w, h)?
    } else {
        obj
    };
    let fused = Fused {
        obj: if transposed { &obj_t } else { &obj },
        transposed,
        sprobe_t: scaled_probe(&probe.t(), scale),
        n,
        noise,
        scale: divide_by_scale.then_some(scale),
    };
    let pos = positions_list(&positions);
    let template = FarField::new(n)?;
    let init = || {
        let staging = if transposed {
            Vec::new()
        } else {
            vec![Complex32::new(0.0, 0.0); nn]
        };
        (template.clone(), Sampler::default(), staging)
    };
    type State = (FarField, Sampler, Vec<Complex32>);
    let one = |(ff, sampler, staging): &mut State,
               i: usize,
               amp: &mut [f32],
               patch: Option<&mut [Complex32]>| {
        if let Some(&xy) = pos.get(i) {
            simulate_one(&fused, ff, sampler, staging, i, xy, amp, patch);
        }
    };
    match patch_out {
        Some(ps) => out
            .par_chunks_mut(nn)
            .zip(ps.par_chunks_mut(nn))
            .enumerate()
            .for_each_init(init, |st, (i, (a, p))| one(st, i, a, Some(p))),
        None => out
            .par_chunks_mut(nn)
            .enumerate()
            .for_each_init(init, |st, (i, a)| one(st, i, a, None)),
    }
    Ok(())
}

/// What every pattern of one fused call shares.
struct Fused<'a> {
    /// The object, transposed when `transposed`.
    obj: &'a Object<'a>,
    transposed: bool,
    /// `scale · probe`, transposed.
    sprobe_t: Vec<Complex32>,
    n: usize,
    noise: Option<Noise>,
    /// `Some(scale)` when the amplitudes are returned divided by it.
    scale: Option<f32>,
}

crate::simd::multiversion! {
    /// Pattern `i` at `xy = [x, y]`: its patch (also written to `patch`), exit wave, far field,
    /// noise and scaling, into `amp`.
    #[allow(clippy::too_many_arguments)]
    fn simulate_one(
        f: &Fused<'_>,
        ff: &mut FarField,
        sampler: &mut Sampler,
        staging: &mut [Complex32],
        i: usize,
        xy: [f64; 2],
        amp: &mut [f32],
        patch: Option<&mut [Complex32]>,
    ) {
        let ([x, y], n) = (xy, f.n);
        if f.transposed {
            let field_t = ff.field_t_mut();
            sampler.sample(f.obj, y, x, n, n, field_t);
            if let Some(p) = patch {
                transpose(field_t, p, n);
            }
        } else {
            sampler.sample(f.obj, x, y, n, n, staging);
            if let Some(p) = patch {
                p.copy_from_slice(staging);
            }
            if ff.load_field(staging).is_err() {
                return;
            }
        }
        illuminate(ff.field_t_mut(), &f.sprobe_t);
        ff.transform(amp);
        if let Some(nz) = f.noise {
            observe_pattern(amp, nz.seed, nz.first_index.wrapping_add(i as u64));
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
            simulate_impl(args, a.view_mut(), Some(p.view_mut()), Some(force)).unwrap();
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
