//! Grid-mode kernels working directly on the channel format `(B, N, N, C)`.
//!
//! Grid simulation (`diffsim.mk_simdata`) keeps its patches in channel format: group `b`,
//! channel `c` is flat pattern `b·C + c`. These kernels read and write that layout in place of
//! the flat `(B·C, N, N)` stacks the other kernels use, so no transposed copies of
//! batch-sized arrays are ever made, and each group is one parallel work item.

use ndarray::{Array4, ArrayView2, ArrayView4, ArrayViewMut4};
use rayon::prelude::*;

use crate::diffraction::{check_probe, check_scale, scaled_probe, FarField};
use crate::noise::observe_pattern;
use crate::patches::{
    check_positions, checked_len, positions_list, standard_object, zeroed, Object, Sampler,
};
use crate::reduce::max_propagating_nan;
use crate::simulate::Noise;
use crate::{Complex32, Error, Result};

fn array4(shape: (usize, usize, usize, usize), v: Vec<f32>) -> Result<Array4<f32>> {
    Array4::from_shape_vec(shape, v).map_err(|e| Error::Unsupported(e.to_string()))
}

/// Bilinear patches of a complex image in channel format: flat position `b·C + c` fills
/// channel `c` of group `b`. Returns the real and imaginary parts, each `(B, N, N, C)` `f32`.
///
/// Interpolating a complex image interpolates its real and imaginary parts separately, so an
/// image `amplitude + i·phase` yields exactly the reference's separately translated amplitude
/// and phase patches. Sampling as [`crate::patches::extract_patches`].
///
/// # Errors
/// [`Error::InvalidArgument`] when `image` is empty, `positions` is not a non-empty `(M, 2)`
/// array of finite values, `n` or `c` is 0, or `M` is not a multiple of `c`.
pub fn extract_grid_patches(
    image: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    n: usize,
    c: usize,
) -> Result<(Array4<f32>, Array4<f32>)> {
    if c == 0 || !positions.nrows().is_multiple_of(c) {
        return Err(Error::invalid(
            "positions",
            format!("a multiple of C = {c} rows"),
            positions.nrows().to_string(),
        ));
    }
    let b = positions.nrows() / c;
    let len = checked_len(b, checked_len(checked_len(n, n)?, c)?)?;
    let mut re = array4((b, n, n, c), zeroed::<f32>(len, "positions")?)?;
    let mut im = array4((b, n, n, c), zeroed::<f32>(len, "positions")?)?;
    extract_grid_patches_into(image, positions, re.view_mut(), Some(im.view_mut()))?;
    Ok((re, im))
}

/// [`extract_grid_patches`] writing into caller-provided C-contiguous `(B, N, N, C)` buffers
/// (`N` and `C` taken from them), so a grid dataset's patches land in their final arrays
/// without an intermediate copy. With `out_im = None` only the real parts are written (a real
/// object needs no phase buffer).
///
/// # Errors
/// As [`extract_grid_patches`]; also when the outputs differ in shape, are not C-contiguous,
/// or `positions` does not have `B·C` rows.
pub fn extract_grid_patches_into(
    image: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    out_re: ArrayViewMut4<'_, f32>,
    out_im: Option<ArrayViewMut4<'_, f32>>,
) -> Result<()> {
    extract_into(image, positions, out_re, out_im)
}

fn extract_into(
    image: ArrayView2<'_, Complex32>,
    positions: ArrayView2<'_, f64>,
    mut out_re: ArrayViewMut4<'_, f32>,
    mut out_im: Option<ArrayViewMut4<'_, f32>>,
) -> Result<()> {
    let (b, n, w, c) = out_re.dim();
    let im_dim = out_im.as_ref().map_or(out_re.dim(), ArrayViewMut4::dim);
    if n == 0 || n != w || c == 0 || im_dim != out_re.dim() {
        return Err(Error::invalid(
            "out",
            "two (B, N, N, C) arrays of one shape",
            format!("{:?} and {:?}", out_re.dim(), im_dim),
        ));
    }
    check_positions(&positions)?;
    if positions.nrows() != b * c {
        return Err(Error::invalid(
            "positions",
            format!("B·C = {} rows", b * c),
            positions.nrows().to_string(),
        ));
    }
    let cow = standard_object(&image);
    let obj = Object::new(&cow)?;
    let nn = checked_len(n, n)?;
    let per = checked_len(nn, c)?;
    let contiguous = || Error::invalid("out", "C-contiguous arrays", "a strided array");
    let re = out_re.as_slice_mut().ok_or_else(contiguous)?;
    let pos = positions_list(&positions);
    let im = match out_im.as_mut() {
        Some(o) => Some(o.as_slice_mut().ok_or_else(contiguous)?),
        None => None,
    };
    let init = || GridScratch {
        sampler: Sampler::default(),
        patch: vec![Complex32::new(0.0, 0.0); nn],
    };
    let groups = re.par_chunks_mut(per).zip(pos.par_chunks(c));
    match im {
        Some(im) => groups
            .zip(im.par_chunks_mut(per))
            .for_each_init(init, |state, ((re, group), im)| {
                extract_group(&obj, group, n, state, re, Some(im))
            }),
        None => groups.for_each_init(init, |state, (re, group)| {
            extract_group(&obj, group, n, state, re, None)
        }),
    }
    Ok(())
}

crate::simd::multiversion! {
    /// One group of [`extract_grid_patches_into`]: channel `ch` sampled at `group[ch]` into
    /// `scratch.patch`, then spread into the channel-format outputs (pixel by pixel: a chunk
    /// of `C` values per pixel, which compiles to plainer stores than a stepped iterator).
    fn extract_group(
        obj: &Object<'_>,
        group: &[[f64; 2]],
        n: usize,
        scratch: &mut GridScratch,
        re: &mut [f32],
        im: Option<&mut [f32]>,
    ) {
        let c = group.len();
        let mut im = im;
        let GridScratch { sampler, patch } = scratch;
        for (ch, &[x, y]) in group.iter().enumerate() {
            sampler.sample(obj, x, y, n, n, patch);
            match im.as_deref_mut() {
                Some(im) => {
                    let px = re.chunks_exact_mut(c).zip(im.chunks_exact_mut(c));
                    for ((r, m), v) in px.zip(patch.iter()) {
                        r[ch] = v.re;
                        m[ch] = v.im;
                    }
                }
                None => {
                    for (r, v) in re.chunks_exact_mut(c).zip(patch.iter()) {
                        r[ch] = v.re;
                    }
                }
            }
        }
    }
}

/// Per-thread working space of [`extract_group`].
struct GridScratch {
    sampler: Sampler,
    patch: Vec<Complex32>,
}

/// Illuminates and diffracts channel-format object patches, the reference's
/// `illuminate_and_diffract` on `(B, N, N, C)` arrays.
///
/// For flat pattern `i = b·C + c` with `O = amplitude·exp(i·phase)` (complex64):
/// `A = |fftshift(FFT2(O · scale·probe))| / N`, observed as `sqrt(Poisson(A²))` on stream
/// `(seed, first_index + i)` when `noise` is given, and returned divided by `scale` (the
/// reference's `X`). A `phase` of `None` is zero everywhere (and costs no memory traffic).
/// `amplitude` is overwritten with the post-probe amplitude `|O · probe|`
/// (the reference's returned `Y_I`): the pre-probe amplitude is not needed afterwards, and
/// reusing its buffer spares a batch-sized allocation.
///
/// # Errors
/// [`Error::InvalidArgument`] when the arrays differ in shape, are empty or not square in
/// `N ≥ 2`, `amplitude` is not C-contiguous, `probe` is not `(N, N)`, or `scale` is not
/// positive and finite.
pub fn illuminate_groups(
    amplitude: ArrayViewMut4<'_, f32>,
    phase: Option<ArrayView4<'_, f32>>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
) -> Result<Array4<f32>> {
    let shape = amplitude.dim();
    let (b, h, w, c) = shape;
    check_illuminate(shape, phase.as_ref(), &probe, scale, noise)?;
    let len = checked_len(b, checked_len(checked_len(h, w)?, c)?)?;
    let mut x = array4(shape, zeroed::<f32>(len, "Y_I")?)?;
    illuminate_groups_into(amplitude, phase, probe, scale, noise, x.view_mut())?;
    Ok(x)
}

/// The argument checks of [`illuminate_groups`].
fn check_illuminate(
    (b, h, w, c): (usize, usize, usize, usize),
    phase: Option<&ArrayView4<'_, f32>>,
    probe: &ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
) -> Result<usize> {
    if h != w || h < 2 || b == 0 || c == 0 {
        return Err(Error::invalid(
            "Y_I",
            "a non-empty (B, N, N, C) array with N >= 2",
            format!("{:?}", (b, h, w, c)),
        ));
    }
    if let Some(ph) = phase {
        if ph.dim() != (b, h, w, c) {
            return Err(Error::invalid(
                "Y_phi",
                format!("the shape of Y_I {:?}", (b, h, w, c)),
                format!("{:?}", ph.dim()),
            ));
        }
    }
    let n = check_probe(probe, Some(h))?;
    check_scale(scale)?;
    if let Some(nz) = noise {
        let total = (b as u64).checked_mul(c as u64);
        if total.and_then(|t| nz.first_index.checked_add(t)).is_none() {
            return Err(Error::invalid(
                "first_index",
                "small enough for every pattern index to fit in u64",
                nz.first_index.to_string(),
            ));
        }
    }
    Ok(n)
}

/// [`illuminate_groups`] writing `X` into a caller-provided C-contiguous `(B, N, N, C)` output
/// (for callers that split the groups into pieces: pass `first_index` advanced by the piece's
/// first pattern, `b0·C`).
///
/// # Errors
/// As [`illuminate_groups`]; also when `x` differs from `amplitude` in shape or is not
/// C-contiguous.
pub fn illuminate_groups_into(
    mut amplitude: ArrayViewMut4<'_, f32>,
    phase: Option<ArrayView4<'_, f32>>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
    noise: Option<Noise>,
    mut x: ArrayViewMut4<'_, f32>,
) -> Result<()> {
    let (b, _, _, c) = amplitude.dim();
    let n = check_illuminate(amplitude.dim(), phase.as_ref(), &probe, scale, noise)?;
    let x_shape = format!(
        "a C-contiguous array of the shape of Y_I {:?}",
        amplitude.dim()
    );
    if x.dim() != amplitude.dim() {
        return Err(Error::invalid("X", x_shape, format!("{:?}", x.dim())));
    }
    let x = x
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("X", x_shape, "a strided array"))?;
    let ph = phase.as_ref().map(|p| p.as_standard_layout());
    let ph = ph
        .as_ref()
        .map(|p| {
            p.as_slice()
                .ok_or_else(|| Error::Unsupported("Y_phi must be C-ordered".into()))
        })
        .transpose()?;
    let amp = amplitude
        .as_slice_mut()
        .ok_or_else(|| Error::invalid("Y_I", "a C-contiguous array", "a strided array"))?;
    let nn = checked_len(n, n)?;
    let per = checked_len(nn, c)?;
    checked_len(b, per)?;
    let probes = Probes {
        scaled: scaled_probe(&probe, scale),
        plain: probe.iter().copied().collect(),
        channels: c,
    };
    let template = FarField::new(n)?;
    let init = || {
        let zero = Complex32::new(0.0, 0.0);
        (template.clone(), vec![0.0f32; nn], vec![zero; per])
    };
    let work = |(ff, out, exit): &mut (FarField, Vec<f32>, Vec<Complex32>),
                (g, (xg, ag)): (usize, (&mut [f32], &mut [f32]))| {
        let pg = ph.and_then(|p| p.get(g * per..(g + 1) * per));
        let first = noise.map(|nz| (nz.seed, nz.first_index + (g * c) as u64));
        illuminate_group(ff, out, exit, xg, ag, pg, &probes, scale, first);
    };
    x.par_chunks_mut(per)
        .zip(amp.par_chunks_mut(per))
        .enumerate()
        .for_each_init(init, work);
    Ok(())
}

/// `|z|` rounded to `f32`: `sqrt(re² + im²)` in `f64`, where both squares are exact and the
/// sum cannot overflow. This is how glibc computes `hypotf` (`Complex32::norm`), bit for bit
/// (tested), but inline, so the loop around it vectorises.
#[inline(always)]
fn modulus(z: Complex32) -> f32 {
    let (re, im) = (f64::from(z.re), f64::from(z.im));
    (re * re + im * im).sqrt() as f32
}

/// Rows per band of the transposing gather in [`illuminate_group`].
const TILE: usize = 8;

/// The probe (row-major) times the scale, and plain; the number of channels.
struct Probes {
    scaled: Vec<Complex32>,
    plain: Vec<Complex32>,
    channels: usize,
}

crate::simd::multiversion! {
    /// One group of [`illuminate_groups`]: the exit waves of all channels and the post-probe
    /// amplitudes in one pass in memory order, then channel by channel the far field, the
    /// noise (pattern streams `(seed, first + ch)` when `noise = Some((seed, first))`) and
    /// `X`. A missing phase is zero. `exit` is scratch of the group's length.
    #[allow(clippy::too_many_arguments)]
    fn illuminate_group(
        ff: &mut FarField,
        out: &mut [f32],
        exit: &mut [Complex32],
        xg: &mut [f32],
        ag: &mut [f32],
        pg: Option<&[f32]>,
        probes: &Probes,
        scale: f32,
        noise: Option<(u64, u64)>,
    ) {
        let n = ff.n();
        let c = probes.channels;
        let pixels = ag.chunks_exact_mut(c).zip(exit.chunks_exact_mut(c));
        let probe = probes.scaled.iter().zip(&probes.plain);
        match pg {
            // No phase (no `set_phi`, the common case): no sin/cos, and a loop that vectorises.
            None => {
                for ((a, e), (&sp, &p)) in pixels.zip(probe) {
                    for (ak, ek) in a.iter_mut().zip(e.iter_mut()) {
                        let o = Complex32::new(*ak, 0.0);
                        *ek = o * sp;
                        *ak = modulus(o * p);
                    }
                }
            }
            Some(pg) => {
                for (((a, e), ph), (&sp, &p)) in pixels.zip(pg.chunks_exact(c)).zip(probe) {
                    for ((ak, ek), &phi) in a.iter_mut().zip(e.iter_mut()).zip(ph) {
                        let o = if phi == 0.0 {
                            Complex32::new(*ak, 0.0)
                        } else {
                            let (s, co) = phi.sin_cos();
                            Complex32::new(*ak * co, *ak * s)
                        };
                        *ek = o * sp;
                        *ak = modulus(o * p);
                    }
                }
            }
        }
        let inv = 1.0 / scale;
        for ch in 0..c {
            // field_t[col·N + row] = exit[(row·N + col)·C + ch], in bands of TILE rows so that
            // the rows being read stay in L1.
            let field_t = ff.field_t_mut();
            for r0 in (0..n).step_by(TILE) {
                let r1 = (r0 + TILE).min(n);
                for (col, dst) in field_t.chunks_exact_mut(n).enumerate() {
                    for (row, f) in dst.iter_mut().enumerate().take(r1).skip(r0) {
                        *f = exit[(row * n + col) * c + ch];
                    }
                }
            }
            ff.transform(out);
            if let Some((seed, first)) = noise {
                observe_pattern(out, seed, first + ch as u64);
            }
            for (x, v) in xg.iter_mut().skip(ch).step_by(c).zip(out.iter()) {
                *x = v * inv;
            }
        }
    }
}

/// Per-pattern illuminated energy `Σ (amplitude · |probe|)²` of channel-format amplitudes,
/// `(B·C,)` `f64` in flat order `b·C + c`, each summed in a fixed order: pixel by pixel in
/// row-major order from `0.0`, each term `(a·a)·|p|²` in `f64`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `amplitude` is empty or not `(B, N, N, C)` with `probe`
/// `(N, N)`.
pub fn channel_energies(
    amplitude: ArrayView4<'_, f32>,
    probe: ArrayView2<'_, Complex32>,
) -> Result<ndarray::Array1<f64>> {
    let (b, n, c, p2) = energy_args(amplitude.dim(), &probe)?;
    let amp = amplitude.as_standard_layout();
    let amp = amp
        .as_slice()
        .ok_or_else(|| Error::Unsupported("Y_I must be C-ordered".into()))?;
    let per = checked_len(checked_len(n, n)?, c)?;
    let mut out = vec![0.0f64; checked_len(b, c)?];
    out.par_chunks_mut(ENERGY_GROUPS * c)
        .zip(amp.par_chunks(ENERGY_GROUPS * per))
        .for_each(|(e, groups)| energies_groups(groups, per, c, &p2, e));
    Ok(ndarray::Array1::from(out))
}

/// The checks of the energy passes; `(B, N, C, |probe|²)`.
fn energy_args(
    dim: (usize, usize, usize, usize),
    probe: &ArrayView2<'_, Complex32>,
) -> Result<(usize, usize, usize, Vec<f64>)> {
    let (b, h, w, c) = dim;
    if h != w || b == 0 || c == 0 {
        return Err(Error::invalid(
            "Y_I",
            "a non-empty (B, N, N, C) array",
            format!("{dim:?}"),
        ));
    }
    let n = check_probe(probe, Some(h))?;
    let p2 = probe.iter().map(|p| f64::from(p.norm_sqr())).collect();
    Ok((b, n, c, p2))
}

/// Groups summed side by side in [`energies_groups`]: each pattern's sum is still one chain
/// in pixel order, but four groups' chains interleave, hiding the latency of each `f64`
/// addition (a single chain per pattern is latency-bound).
const ENERGY_GROUPS: usize = 4;

crate::simd::multiversion! {
    /// `v /= d` for every value (IEEE `f32` quotients, as NumPy's).
    fn divide(values: &mut [f32], d: f32) {
        for v in values {
            *v /= d;
        }
    }
}

crate::simd::multiversion! {
    /// Energies of up to [`ENERGY_GROUPS`] groups of `per = N²·C` values each: `e` receives
    /// their `C` energies per group, each `Σ (a·a)·|p|²` from `0.0` in pixel order.
    fn energies_groups(groups: &[f32], per: usize, c: usize, p2: &[f64], e: &mut [f64]) {
        match c {
            1 => energies_fixed::<1>(groups, per, p2, e),
            4 => energies_fixed::<4>(groups, per, p2, e),
            9 => energies_fixed::<9>(groups, per, p2, e),
            _ => {
                // Any other C: one group at a time, the accumulators in memory.
                for (g, eg) in groups.chunks_exact(per).zip(e.chunks_exact_mut(c)) {
                    for (px, &w2) in g.chunks_exact(c).zip(p2) {
                        for (acc, &a) in eg.iter_mut().zip(px) {
                            *acc += f64::from(a) * f64::from(a) * w2;
                        }
                    }
                }
            }
        }
    }
}

/// [`energies_groups`] for a fixed `C`: the accumulators live in registers.
#[inline(always)]
fn energies_fixed<const C: usize>(groups: &[f32], per: usize, p2: &[f64], e: &mut [f64]) {
    #[inline(always)]
    fn term(a: f32, w2: f64) -> f64 {
        let a = f64::from(a);
        a * a * w2
    }
    if groups.len() == ENERGY_GROUPS * per {
        let (g01, g23) = groups.split_at(2 * per);
        let ((g0, g1), (g2, g3)) = (g01.split_at(per), g23.split_at(per));
        let mut acc = [[0.0f64; C]; ENERGY_GROUPS];
        let pixels = g0
            .chunks_exact(C)
            .zip(g1.chunks_exact(C))
            .zip(g2.chunks_exact(C).zip(g3.chunks_exact(C)))
            .zip(p2);
        for (((a0, a1), (a2, a3)), &w2) in pixels {
            for ch in 0..C {
                acc[0][ch] += term(a0[ch], w2);
                acc[1][ch] += term(a1[ch], w2);
                acc[2][ch] += term(a2[ch], w2);
                acc[3][ch] += term(a3[ch], w2);
            }
        }
        for (dst, src) in e.chunks_exact_mut(C).zip(&acc) {
            dst.copy_from_slice(src);
        }
    } else {
        // The last few groups of the array: one at a time.
        for (g, eg) in groups.chunks_exact(per).zip(e.chunks_exact_mut(C)) {
            let mut acc = [0.0f64; C];
            for (px, &w2) in g.chunks_exact(C).zip(p2) {
                for ch in 0..C {
                    acc[ch] += term(px[ch], w2);
                }
            }
            eg.copy_from_slice(&acc);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The grid path's fused kernel: `mk_simdata` from objects to `X` with no batch-sized
// intermediate. Two read-only passes over the objects give what the whole batch must know before
// any pattern is made (each group's largest amplitude, for `norm_Y_I`; the energies of the
// normalised patches, for the intensity scale); the third samples each group once more and,
// while it is in cache, writes its ground truth (`Y_I`, `Y_phi`, optionally the flat pre-probe
// copies) and its diffraction patterns. Nothing batch-sized is read back.
// ---------------------------------------------------------------------------------------------

/// The objects of a grid dataset and the positions its groups sample them at.
///
/// `images` holds `K` row-major `H × W` complex images (`amplitude + i·phase`, as
/// [`extract_grid_patches`] reads them); `positions` holds `B·C` rows `(x, y)`, flat position
/// `b·C + c` being channel `c` of group `b`; group `b` samples image `b / (B / K)` (the groups
/// are object-major, `B / K` per object).
#[derive(Debug)]
pub struct GridScan<'a> {
    objects: Vec<Object<'a>>,
    /// The images' real parts (amplitudes), for the passes that need only those.
    amplitudes: Vec<f32>,
    dim: (usize, usize),
    positions: Vec<[f64; 2]>,
    n: usize,
    c: usize,
    per_object: usize,
}

impl<'a> GridScan<'a> {
    /// # Errors
    /// [`Error::InvalidArgument`] when `images` is not `K·H·W` values with `K, H, W ≥ 1`,
    /// `positions` is not a non-empty `(B·C, 2)` array of finite values, `n` or `c` is 0, or
    /// the `B` groups do not divide evenly among the `K` objects.
    pub fn new(
        images: &'a [Complex32],
        (k, h, w): (usize, usize, usize),
        positions: ArrayView2<'_, f64>,
        n: usize,
        c: usize,
    ) -> Result<Self> {
        let per_image = checked_len(h, w)?;
        if k == 0 || per_image == 0 || Some(images.len()) != k.checked_mul(per_image) {
            return Err(Error::invalid(
                "images",
                "a non-empty C-contiguous (K, H, W) stack",
                format!("{} values for shape {:?}", images.len(), (k, h, w)),
            ));
        }
        if n == 0 || c == 0 {
            return Err(Error::invalid(
                "N, C",
                "positive sizes",
                format!("N = {n}, C = {c}"),
            ));
        }
        check_positions(&positions)?;
        let rows = positions.nrows();
        let b = rows / c;
        if !rows.is_multiple_of(c) || !b.is_multiple_of(k) {
            return Err(Error::invalid(
                "positions",
                format!("B·C rows (C = {c}) with the B groups a multiple of K = {k} objects"),
                rows.to_string(),
            ));
        }
        checked_len(b, checked_len(checked_len(n, n)?, c)?)?;
        let objects = images
            .chunks_exact(per_image)
            .map(|d| Object::from_slice(d, h, w))
            .collect::<Result<Vec<_>>>()?;
        Ok(GridScan {
            objects,
            amplitudes: Vec::new(),
            dim: (h, w),
            positions: positions_list(&positions),
            n,
            c,
            per_object: b / k,
        })
    }

    /// The scan with the images' real parts copied out, which the read passes
    /// ([`grid_maxima_into`], [`grid_energies_into`]) sample; the fused pass does not need
    /// them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the copy cannot be allocated.
    pub fn with_amplitudes(mut self) -> Result<Self> {
        let images: Vec<&[Complex32]> = self.objects.iter().map(|o| o.data()).collect();
        let per_image = self.dim.0 * self.dim.1;
        let mut amplitudes = zeroed::<f32>(images.len() * per_image, "images")?;
        amplitudes
            .par_chunks_mut(per_image)
            .zip(images.par_iter())
            .for_each(|(a, z)| a.iter_mut().zip(z.iter()).for_each(|(a, z)| *a = z.re));
        self.amplitudes = amplitudes;
        Ok(self)
    }

    /// Checks that the amplitudes were copied ([`Self::with_amplitudes`]).
    fn check_amplitudes(&self) -> Result<()> {
        if self.amplitudes.len() == self.objects.len() * self.dim.0 * self.dim.1 {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "the read passes need GridScan::with_amplitudes".into(),
            ))
        }
    }

    /// Number of groups `B`.
    pub fn groups(&self) -> usize {
        self.positions.len() / self.c
    }

    /// Values per group, `N·N·C`.
    fn per(&self) -> usize {
        self.n * self.n * self.c
    }

    /// Samples group `g` into channel-format `re` (and `im`), as [`extract_grid_patches`].
    #[inline(always)]
    fn sample_group(
        &self,
        g: usize,
        scratch: &mut GridScratch,
        re: &mut [f32],
        im: Option<&mut [f32]>,
    ) {
        let obj = &self.objects[g / self.per_object];
        let group = &self.positions[g * self.c..(g + 1) * self.c];
        extract_group(obj, group, self.n, scratch, re, im);
    }

    /// Samples the amplitudes (real parts) of group `g`'s `C` patches into `planes`, channel
    /// after channel (`C` row-major `N × N` planes): the real parts [`Self::sample_group`]
    /// gives, bit for bit, at half the work and without the channel-format scatter.
    #[inline(always)]
    fn sample_amplitude_planes(&self, g: usize, sampler: &mut Sampler, planes: &mut [f32]) {
        let (h, w) = self.dim;
        let per_image = h * w;
        let k = g / self.per_object;
        let Some(data) = self.amplitudes.get(k * per_image..(k + 1) * per_image) else {
            return;
        };
        let Ok(obj) = Object::from_slice(data, h, w) else {
            return;
        };
        let group = &self.positions[g * self.c..(g + 1) * self.c];
        let nn = self.n * self.n;
        for (&[x, y], plane) in group.iter().zip(planes.chunks_exact_mut(nn)) {
            sampler.sample(&obj, x, y, self.n, self.n, plane);
        }
    }

    /// Checks that `len` values per group cover groups `first..first + count` of the scan.
    fn check_range(
        &self,
        name: &'static str,
        first: usize,
        values: usize,
        per: usize,
    ) -> Result<usize> {
        let count = values / per.max(1);
        if !values.is_multiple_of(per.max(1))
            || first.checked_add(count).is_none_or(|e| e > self.groups())
        {
            return Err(Error::invalid(
                name,
                format!(
                    "{per} values per group for groups within 0..{}",
                    self.groups()
                ),
                format!("{values} values from group {first}"),
            ));
        }
        Ok(count)
    }

    fn scratch(&self) -> GridScratch {
        GridScratch {
            sampler: Sampler::default(),
            patch: vec![Complex32::new(0.0, 0.0); self.n * self.n],
        }
    }
}

/// Each group's largest pre-probe amplitude for groups `first..first + maxima.len()`: the
/// maximum over the patches [`extract_grid_patches_into`] would write for the group (the same
/// values, NaN propagating), without writing them anywhere but a per-thread buffer.
///
/// # Errors
/// [`Error::InvalidArgument`] when the groups are out of the scan's range.
pub fn grid_maxima_into(scan: &GridScan<'_>, first: usize, maxima: &mut [f32]) -> Result<()> {
    scan.check_amplitudes()?;
    scan.check_range("maxima", first, maxima.len(), 1)?;
    let per = scan.per();
    maxima.par_iter_mut().enumerate().for_each_init(
        || (Sampler::default(), vec![0.0f32; per]),
        |(sampler, planes), (j, m)| group_maximum(scan, first + j, sampler, planes, m),
    );
    Ok(())
}

/// The energies of the normalised pre-probe patches of groups `first..`, `energies.len() / C`
/// of them, as [`channel_energies`] gives them for the extracted patches (each group
/// sampled, divided by `divisor` in `f32`, summed in the same order), in flat order `b·C + c`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `divisor` is not finite and non-zero, `probe` is not
/// `(N, N)`, or the groups are out of the scan's range.
pub fn grid_energies_into(
    scan: &GridScan<'_>,
    first: usize,
    probe: ArrayView2<'_, Complex32>,
    divisor: f32,
    energies: &mut [f64],
) -> Result<()> {
    check_divisor(divisor)?;
    scan.check_amplitudes()?;
    let (_, n, c, p2) = energy_args((1, scan.n, scan.n, scan.c), &probe)?;
    let count = scan.check_range("energies", first, energies.len(), c)?;
    let per = checked_len(checked_len(n, n)?, c)?;
    // Four groups per work item: their 4·C sums side by side, each still one chain in pixel
    // order, so the same sums as the extracted path's.
    energies
        .par_chunks_mut(ENERGY_GROUPS * c)
        .enumerate()
        .for_each_init(
            || (Sampler::default(), vec![0.0f32; ENERGY_GROUPS * per]),
            |(sampler, buf), (item, e)| {
                let g0 = first + item * ENERGY_GROUPS;
                let k = e.len() / c;
                let planes = &mut buf[..k * per];
                group_energies(scan, g0, sampler, planes, divisor, &p2, e);
            },
        );
    debug_assert_eq!(count * c, energies.len());
    Ok(())
}

crate::simd::multiversion! {
    /// [`grid_maxima_into`] for group `g`: its amplitude planes sampled into `planes`, then
    /// their largest value (the same value as over the channel-format group).
    fn group_maximum(
        scan: &GridScan<'_>,
        g: usize,
        sampler: &mut Sampler,
        planes: &mut [f32],
        m: &mut f32,
    ) {
        scan.sample_amplitude_planes(g, sampler, planes);
        *m = max_propagating_nan(planes);
    }
}

crate::simd::multiversion! {
    /// [`grid_energies_into`] for the `e.len() / C` groups from `g0`: their amplitude planes
    /// sampled into `planes` (pattern after pattern), then each pattern's
    /// `Σ (f32(a / divisor))² · |p|²` from `0.0` in pixel order, all patterns' chains side by
    /// side.
    fn group_energies(
        scan: &GridScan<'_>,
        g0: usize,
        sampler: &mut Sampler,
        planes: &mut [f32],
        divisor: f32,
        p2: &[f64],
        e: &mut [f64],
    ) {
        let per = scan.per();
        for (j, group) in planes.chunks_exact_mut(per).enumerate() {
            scan.sample_amplitude_planes(g0 + j, sampler, group);
        }
        match e.len() {
            4 => plane_energies::<4>(planes, divisor, p2, e),
            16 => plane_energies::<16>(planes, divisor, p2, e),
            36 => plane_energies::<36>(planes, divisor, p2, e),
            _ => {
                let nn = p2.len();
                for (plane, acc) in planes.chunks_exact(nn).zip(e.iter_mut()) {
                    let mut sum = 0.0f64;
                    for (&a, &w2) in plane.iter().zip(p2) {
                        let q = f64::from(a / divisor);
                        sum += q * q * w2;
                    }
                    *acc = sum;
                }
            }
        }
    }
}

/// `K` patterns' energies from their planes, the `K` chains advancing pixel by pixel together.
#[inline(always)]
fn plane_energies<const K: usize>(planes: &[f32], divisor: f32, p2: &[f64], e: &mut [f64]) {
    let nn = p2.len();
    let mut acc = [0.0f64; K];
    let planes: [&[f32]; K] =
        std::array::from_fn(|k| planes.get(k * nn..(k + 1) * nn).unwrap_or(&[]));
    if planes.iter().any(|p| p.len() != nn) || e.len() != K {
        return;
    }
    for (px, &w2) in p2.iter().enumerate() {
        for k in 0..K {
            let q = f64::from(planes[k][px] / divisor);
            acc[k] += q * q * w2;
        }
    }
    e.copy_from_slice(&acc);
}

fn check_divisor(divisor: f32) -> Result<()> {
    if divisor.is_finite() && divisor != 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "divisor",
            "a finite non-zero number",
            divisor.to_string(),
        ))
    }
}

/// Where [`simulate_grid_into`] writes, for groups `first..first + B'` of a scan: each slice
/// holds `B'·N·N·C` values. `x`, `amplitude` and `phase` are channel-format `(B', N, N, C)`;
/// the flat pre-probe copies are `(B'·C, N, N)`.
#[derive(Debug)]
pub struct GridOut<'o> {
    /// The patterns `X`.
    pub x: &'o mut [f32],
    /// The post-probe amplitude `|O · probe|` (the reference's returned `Y_I`).
    pub amplitude: &'o mut [f32],
    /// The pre-probe phase patches (`Y_phi`); `None` for an object without phase (zero).
    pub phase: Option<&'o mut [f32]>,
    /// The normalised pre-probe amplitude in flat order (`I_pre_probe`), if wanted.
    pub pre_amplitude: Option<&'o mut [f32]>,
    /// The pre-probe phase in flat order (`phi_pre_probe`), if wanted (and `phase` given).
    pub pre_phase: Option<&'o mut [f32]>,
}

/// The grid path's fused pass: for each group of `first..`, its patches are sampled (as
/// [`extract_grid_patches`]), the amplitude divided by `divisor` in `f32` (as
/// `norm_Y_I`'s division), the ground truth written, and the group illuminated and diffracted
/// as [`illuminate_groups_into`] does (pattern `b·C + c` on noise stream
/// `(seed, first_index + b·C + c)`, `b` counted from the scan's group 0), all while the group
/// is in cache. The results are those of the separate calls, bit for bit.
///
/// # Errors
/// [`Error::InvalidArgument`] when the outputs differ in length or are out of the scan's
/// range, `pre_phase` is given without `phase`, `probe` is not `(N, N)`, `divisor` is not
/// finite and non-zero, `scale` is not positive and finite, or a pattern index overflows.
pub fn simulate_grid_into(
    scan: &GridScan<'_>,
    first: usize,
    probe: ArrayView2<'_, Complex32>,
    divisor: f32,
    scale: f32,
    noise: Option<Noise>,
    out: GridOut<'_>,
) -> Result<()> {
    check_divisor(divisor)?;
    let (n, c) = (scan.n, scan.c);
    let per = scan.per();
    let count = scan.check_range("X", first, out.x.len(), per)?;
    check_illuminate((count.max(1), n, n, c), None, &probe, scale, None)?;
    let same = |name: &'static str, len: usize| {
        if len == out.x.len() {
            Ok(())
        } else {
            Err(Error::invalid(
                name,
                format!("{} values, as X", out.x.len()),
                len.to_string(),
            ))
        }
    };
    same("Y_I", out.amplitude.len())?;
    if let Some(p) = out.phase.as_deref() {
        same("Y_phi", p.len())?;
    }
    if let Some(p) = out.pre_amplitude.as_deref() {
        same("I_pre_probe", p.len())?;
    }
    match (out.pre_phase.as_deref(), out.phase.is_some()) {
        (Some(p), true) => same("phi_pre_probe", p.len())?,
        (Some(_), false) => {
            return Err(Error::invalid(
                "phi_pre_probe",
                "None when there is no phase",
                "an array",
            ))
        }
        (None, _) => {}
    }
    if let Some(nz) = noise {
        let last = (scan.groups() as u64).checked_mul(c as u64);
        if last.and_then(|t| nz.first_index.checked_add(t)).is_none() {
            return Err(Error::invalid(
                "first_index",
                "small enough for every pattern index to fit in u64",
                nz.first_index.to_string(),
            ));
        }
    }
    let probes = Probes {
        scaled: scaled_probe(&probe, scale),
        plain: probe.iter().copied().collect(),
        channels: c,
    };
    let template = FarField::new(n)?;
    let nn = n * n;
    // One work item per group: its slice of each output.
    let GridOut {
        x,
        amplitude,
        phase,
        pre_amplitude,
        pre_phase,
    } = out;
    let items: Vec<_> = x
        .chunks_exact_mut(per)
        .zip(amplitude.chunks_exact_mut(per))
        .zip(split(phase, per, count))
        .zip(
            split(pre_amplitude, per, count)
                .into_iter()
                .zip(split(pre_phase, per, count)),
        )
        .collect();
    let init = || {
        let zero = Complex32::new(0.0, 0.0);
        (
            scan.scratch(),
            template.clone(),
            vec![0.0f32; nn],
            vec![zero; per],
        )
    };
    items.into_par_iter().enumerate().for_each_init(
        init,
        |(scratch, ff, pattern, exit), (j, (((xg, ag), pg), (pre_a, pre_p)))| {
            let g = first + j;
            let mut pg = pg;
            scan.sample_group(g, scratch, ag, pg.as_deref_mut());
            divide(ag, divisor);
            if let Some(dst) = pre_a {
                to_flat(ag, dst, c);
            }
            if let (Some(dst), Some(src)) = (pre_p, pg.as_deref()) {
                to_flat(src, dst, c);
            }
            let streams = noise.map(|nz| (nz.seed, nz.first_index + (g * c) as u64));
            illuminate_group(
                ff,
                pattern,
                exit,
                xg,
                ag,
                pg.as_deref(),
                &probes,
                scale,
                streams,
            );
        },
    );
    Ok(())
}

/// `s` in slices of `per` values, or `count` times `None`.
fn split(s: Option<&mut [f32]>, per: usize, count: usize) -> Vec<Option<&mut [f32]>> {
    match s {
        Some(s) => s.chunks_exact_mut(per).map(Some).collect(),
        None => (0..count).map(|_| None).collect(),
    }
}

/// A group's channel-format `(N, N, C)` values into flat `(C, N, N)` order.
fn to_flat(src: &[f32], dst: &mut [f32], c: usize) {
    let nn = src.len() / c;
    for (ch, plane) in dst.chunks_exact_mut(nn).enumerate() {
        for (d, px) in plane.iter_mut().zip(src.chunks_exact(c)) {
            *d = px[ch];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffraction::diffract;
    use crate::patches::extract_patches;
    use ndarray::{Array2, Array3};

    fn image(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            Complex32::new(
                1.0 + (r * 7 + c * 3) as f32 % 5.0,
                0.1 * ((r + 2 * c) % 7) as f32,
            )
        })
    }

    #[test]
    fn grid_patches_equal_flat_patches_in_channel_order() {
        let img = image(40, 36);
        let pos = Array2::from_shape_fn((6, 2), |(i, k)| 10.0 + i as f64 * 1.75 + k as f64);
        let flat = extract_patches(img.view(), pos.view(), 8).unwrap();
        let (re, im) = extract_grid_patches(img.view(), pos.view(), 8, 3).unwrap();
        for i in 0..6 {
            for r in 0..8 {
                for col in 0..8 {
                    assert_eq!(re[[i / 3, r, col, i % 3]], flat[[i, r, col]].re);
                    assert_eq!(im[[i / 3, r, col, i % 3]], flat[[i, r, col]].im);
                }
            }
        }
        assert!(extract_grid_patches(img.view(), pos.view(), 8, 4).is_err());
    }

    #[test]
    fn illumination_matches_the_flat_kernels() {
        let (b, n, c) = (3, 8, 4);
        let amp = Array4::from_shape_fn((b, n, n, c), |(g, r, col, ch)| {
            0.5 + ((g + r * 3 + col * 5 + ch * 7) % 11) as f32 / 11.0
        });
        let ph = Array4::from_shape_fn((b, n, n, c), |(g, r, col, ch)| {
            ((g * 2 + r + col * 3 + ch) % 13) as f32 / 5.0 - 1.0
        });
        let probe = Array2::from_shape_fn((n, n), |(r, col)| {
            Complex32::from_polar(1.0 / (1.0 + (r + col) as f32), 0.1 * r as f32)
        });
        let scale = 3.5f32;
        let mut yi = amp.clone();
        let x =
            illuminate_groups(yi.view_mut(), Some(ph.view()), probe.view(), scale, None).unwrap();
        let flat = Array3::from_shape_fn((b * c, n, n), |(i, r, col)| {
            let (a, p) = (amp[[i / c, r, col, i % c]], ph[[i / c, r, col, i % c]]);
            Complex32::new(a * p.cos(), a * p.sin())
        });
        let want = diffract(flat.view(), probe.view(), scale).unwrap();
        for i in 0..b * c {
            for r in 0..n {
                for col in 0..n {
                    let got = x[[i / c, r, col, i % c]];
                    let w = want[[i, r, col]] / scale;
                    assert!((got - w).abs() <= 1e-5 * w.abs().max(1.0), "{got} vs {w}");
                    let y = (flat[[i, r, col]] * probe[[r, col]]).norm();
                    assert!((yi[[i / c, r, col, i % c]] - y).abs() <= 1e-6 * y.max(1.0));
                }
            }
        }
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))] // glibc's hypotf
    fn modulus_equals_hypot() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let special = [
            0.0f32, -0.0, 1e-45, 1e-38, 3e-20, 1.0, 3.4e38, -2.5e19, 7.0e22,
        ];
        for &a in &special {
            for &b in &special {
                let z = Complex32::new(a, b);
                assert_eq!(modulus(z).to_bits(), z.norm().to_bits(), "{z}");
            }
        }
        for i in 0..2_000_000u32 {
            let bits = |x: u64| f32::from_bits((x as u32) & 0x7fff_ffff);
            let (re, im) = (bits(next()), bits(next()));
            if !(re.is_finite() && im.is_finite()) {
                continue;
            }
            // Mix of arbitrary bit patterns and values of similar magnitude.
            let im = if i % 2 == 0 {
                im
            } else {
                re * (1.0 + (im % 1.0))
            };
            let z = Complex32::new(re, if i % 3 == 0 { -im } else { im });
            assert_eq!(modulus(z).to_bits(), z.norm().to_bits(), "{z}");
        }
    }

    #[test]
    fn channel_energies_sum_each_pattern() {
        let amp = Array4::from_shape_fn((2, 3, 3, 2), |(g, r, col, ch)| (g + r + col + ch) as f32);
        let probe = Array2::from_shape_fn((3, 3), |(r, _)| Complex32::new(r as f32, 1.0));
        let e = channel_energies(amp.view(), probe.view()).unwrap();
        for i in 0..4 {
            let mut want = 0.0f64;
            for r in 0..3 {
                for col in 0..3 {
                    let a = f64::from(amp[[i / 2, r, col, i % 2]]);
                    want += a * a * f64::from(probe[[r, col]].norm_sqr());
                }
            }
            assert!((e[i] - want).abs() < 1e-9);
        }
    }

    #[test]
    fn grid_energies_are_sequential_sums_of_the_divided_patches() {
        // 6 groups: one step of four groups side by side, then two; C = 4 and C = 3 (the
        // generic path); one object per group pair.
        for c in [4usize, 3] {
            let (k, n) = (3usize, 5usize);
            let img: Vec<Complex32> = (0..k)
                .flat_map(|o| image(20, 18).mapv(|z| z * (1.0 + o as f32)).into_iter())
                .collect();
            let pos = Array2::from_shape_fn((6 * c, 2), |(i, j)| {
                4.0 + ((i * 5 + j * 3) % 9) as f64 * 1.3
            });
            let scan = GridScan::new(&img, (k, 20, 18), pos.view(), n, c)
                .and_then(GridScan::with_amplitudes)
                .unwrap();
            let probe = Array2::from_shape_fn((n, n), |(r, col)| {
                Complex32::new(0.5 + r as f32 / 3.0, col as f32 / 4.0)
            });
            let d = 1.37f32;
            let mut e = vec![0.0f64; 6 * c];
            grid_energies_into(&scan, 0, probe.view(), d, &mut e).unwrap();
            for g in 0..6 {
                let o = g / 2;
                let rows = pos.slice(ndarray::s![g * c..(g + 1) * c, ..]);
                let im =
                    ndarray::Array2::from_shape_vec((20, 18), img[o * 360..(o + 1) * 360].to_vec())
                        .unwrap();
                let (re, _) = extract_grid_patches(im.view(), rows, n, c).unwrap();
                for ch in 0..c {
                    let mut seq = 0.0f64;
                    for r in 0..n {
                        for col in 0..n {
                            let a = f64::from(re[[0, r, col, ch]] / d);
                            seq += a * a * f64::from(probe[[r, col]].norm_sqr());
                        }
                    }
                    assert_eq!(
                        e[g * c + ch].to_bits(),
                        seq.to_bits(),
                        "group {g} channel {ch}"
                    );
                }
            }
            for bad in [0.0, f32::NAN, f32::INFINITY] {
                assert!(grid_energies_into(&scan, 0, probe.view(), bad, &mut e).is_err());
            }
        }
    }

    #[test]
    fn grid_maxima_propagate_nan_and_match_the_patches() {
        let mut img = image(40, 36);
        img[[20, 20]] = Complex32::new(f32::NAN, 0.0);
        // group 0 samples around (20, 20); group 1 lies far from it
        let pos = ndarray::arr2(&[[20.0, 20.0], [21.0, 20.5], [8.0, 8.0], [9.5, 8.25]]);
        let (n, c) = (6, 2);
        let data: Vec<Complex32> = img.iter().copied().collect();
        let scan = GridScan::new(&data, (1, 40, 36), pos.view(), n, c)
            .and_then(GridScan::with_amplitudes)
            .unwrap();
        let mut m = [0.0f32; 2];
        grid_maxima_into(&scan, 0, &mut m).unwrap();
        assert!(m[0].is_nan());
        let (re, _) = extract_grid_patches(img.view(), pos.view(), n, c).unwrap();
        let row1 = re.slice(ndarray::s![1, .., .., ..]);
        let want = row1.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        assert_eq!(m[1], want);
        assert!(grid_maxima_into(&scan, 1, &mut m).is_err());
    }

    #[test]
    fn noise_streams_follow_the_flat_index() {
        let (b, n, c) = (4, 8, 2);
        let amp = Array4::from_elem((b, n, n, c), 2.0f32);
        let ph = Array4::zeros((b, n, n, c));
        let probe = Array2::from_elem((n, n), Complex32::new(1.0, 0.0));
        let nz = |first_index| {
            Some(Noise {
                seed: 9,
                first_index,
            })
        };
        let run = |a: &Array4<f32>, p: &Array4<f32>, first| {
            let mut a = a.clone();
            illuminate_groups(a.view_mut(), Some(p.view()), probe.view(), 10.0, nz(first)).unwrap()
        };
        let all = run(&amp, &ph, 0);
        let tail = run(
            &amp.slice(ndarray::s![2.., .., .., ..]).to_owned(),
            &ph.slice(ndarray::s![2.., .., .., ..]).to_owned(),
            4,
        );
        assert_eq!(all.slice(ndarray::s![2.., .., .., ..]), tail);
        let other = run(&amp, &ph, 1);
        assert_ne!(all, other);
        // into a caller's output, in two pieces of groups: the same bits
        let mut a = amp.clone();
        let mut x = Array4::<f32>::zeros(all.dim());
        for (g0, g1) in [(0, 1), (1, b)] {
            let rows = ndarray::s![g0..g1, .., .., ..];
            illuminate_groups_into(
                a.slice_mut(rows),
                Some(ph.slice(rows)),
                probe.view(),
                10.0,
                nz((g0 * c) as u64),
                x.slice_mut(rows),
            )
            .unwrap();
        }
        assert_eq!(x, all);
        let mut wrong = Array4::<f32>::zeros((1, n, n, c));
        let mut a = amp.clone();
        let r = illuminate_groups_into(
            a.view_mut(),
            None,
            probe.view(),
            1.0,
            None,
            wrong.view_mut(),
        );
        assert!(r.is_err());
    }
    /// The fused grid pass against its steps: extraction (with maxima), division, the
    /// energies, `illuminate_groups_into`; two objects, with and without phase, bit for bit.
    #[test]
    fn fused_grid_pass_equals_its_steps() {
        let (k, h, w, n, c) = (2usize, 30usize, 28usize, 8usize, 4usize);
        let per_object = 5;
        let b = k * per_object;
        let probe = Array2::from_shape_fn((n, n), |(r, q)| {
            Complex32::new(0.5 + 0.1 * r as f32, 0.05 * q as f32 - 0.2)
        });
        let pos = Array2::from_shape_fn((b * c, 2), |(i, j)| {
            6.0 + ((i * 7 + j * 3) % 11) as f64 * 1.37 + j as f64
        });
        for with_phase in [true, false] {
            let images: Vec<Array2<Complex32>> = (0..k)
                .map(|o| {
                    let im = image(h, w).mapv(|z| z * (1.0 + o as f32));
                    if with_phase {
                        im
                    } else {
                        im.mapv(|z| Complex32::new(z.re, 0.0))
                    }
                })
                .collect();
            let flat: Vec<Complex32> = images.iter().flat_map(|i| i.iter().copied()).collect();
            let scan = GridScan::new(&flat, (k, h, w), pos.view(), n, c)
                .and_then(GridScan::with_amplitudes)
                .unwrap();
            // The steps.
            let mut re = Array4::<f32>::zeros((b, n, n, c));
            let mut im = Array4::<f32>::zeros((b, n, n, c));
            for (o, img) in images.iter().enumerate() {
                let g = o * per_object..(o + 1) * per_object;
                let rows = pos.slice(ndarray::s![g.start * c..g.end * c, ..]);
                extract_grid_patches_into(
                    img.view(),
                    rows,
                    re.slice_mut(ndarray::s![g.clone(), .., .., ..]),
                    Some(im.slice_mut(ndarray::s![g, .., .., ..])),
                )
                .unwrap();
            }
            let maxima: Vec<f32> = re
                .outer_iter()
                .map(|grp| grp.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)))
                .collect();
            let divisor = 1.7f32;
            re.mapv_inplace(|v| v / divisor);
            let energies = channel_energies(re.view(), probe.view()).unwrap();
            let pre = re.clone();
            let noise = Some(Noise {
                seed: 11,
                first_index: 3,
            });
            let mut x = Array4::<f32>::zeros((b, n, n, c));
            let phase = with_phase.then(|| im.view());
            illuminate_groups_into(re.view_mut(), phase, probe.view(), 2.5, noise, x.view_mut())
                .unwrap();
            // The fused passes, in two pieces (groups 0..3 and 3..b).
            let mut m2 = vec![0.0f32; b];
            let mut e2 = vec![0.0f64; b * c];
            for (g0, g1) in [(0, 3), (3, b)] {
                grid_maxima_into(&scan, g0, &mut m2[g0..g1]).unwrap();
                grid_energies_into(&scan, g0, probe.view(), divisor, &mut e2[g0 * c..g1 * c])
                    .unwrap();
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&m2), bits(&maxima));
            let ebits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(ebits(&e2), ebits(energies.as_slice().unwrap()));
            let len = b * n * n * c;
            let (mut x2, mut a2, mut p2) =
                (vec![0.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
            let (mut pa, mut pp) = (vec![0.0f32; len], vec![0.0f32; len]);
            let per = n * n * c;
            for (g0, g1) in [(0, 3), (3, b)] {
                let r = g0 * per..g1 * per;
                let out = GridOut {
                    x: &mut x2[r.clone()],
                    amplitude: &mut a2[r.clone()],
                    phase: with_phase.then(|| &mut p2[r.clone()]),
                    pre_amplitude: Some(&mut pa[r.clone()]),
                    pre_phase: with_phase.then(|| &mut pp[r.clone()]),
                };
                simulate_grid_into(&scan, g0, probe.view(), divisor, 2.5, noise, out).unwrap();
            }
            assert_eq!(bits(&x2), bits(x.as_slice().unwrap()));
            assert_eq!(bits(&a2), bits(re.as_slice().unwrap()));
            if with_phase {
                assert_eq!(bits(&p2), bits(im.as_slice().unwrap()));
            }
            // Flat pre-probe copies: pattern b·C + c is channel c of group b.
            for g in 0..b {
                for ch in 0..c {
                    for px in 0..n * n {
                        let flat = (g * c + ch) * n * n + px;
                        let chan = g * per + px * c + ch;
                        assert_eq!(pa[flat].to_bits(), pre.as_slice().unwrap()[chan].to_bits());
                        if with_phase {
                            assert_eq!(pp[flat].to_bits(), im.as_slice().unwrap()[chan].to_bits());
                        }
                    }
                }
            }
            assert!(x2.iter().any(|&v| v > 0.0));
        }
    }

    #[test]
    fn fused_grid_pass_rejects_bad_arguments() {
        let img = vec![Complex32::new(1.0, 0.0); 2 * 20 * 20];
        let pos = Array2::from_elem((2 * 3 * 4, 2), 8.0);
        let e = GridScan::new(&img, (2, 20, 21), pos.view(), 8, 4).unwrap_err();
        assert!(e.to_string().starts_with("images must be"), "{e}");
        let odd = Array2::from_elem((3 * 4, 2), 8.0);
        let e = GridScan::new(&img, (2, 20, 20), odd.view(), 8, 4).unwrap_err();
        assert!(e.to_string().starts_with("positions must be"), "{e}");
        let scan = GridScan::new(&img, (2, 20, 20), pos.view(), 8, 4)
            .and_then(GridScan::with_amplitudes)
            .unwrap();
        assert_eq!(scan.groups(), 6);
        let bare = GridScan::new(&img, (2, 20, 20), pos.view(), 8, 4).unwrap();
        assert!(grid_maxima_into(&bare, 0, &mut [0.0; 6]).is_err());
        let e = grid_maxima_into(&scan, 4, &mut [0.0; 3]).unwrap_err();
        assert!(e.to_string().starts_with("maxima must be"), "{e}");
        let probe = Array2::from_elem((8, 8), Complex32::new(1.0, 0.0));
        let e = grid_energies_into(&scan, 0, probe.view(), 0.0, &mut [0.0; 24]).unwrap_err();
        assert!(e.to_string().starts_with("divisor must be"), "{e}");
        let per = 8 * 8 * 4;
        let (mut x, mut a) = (vec![0.0f32; per], vec![0.0f32; per + 1]);
        let out = GridOut {
            x: &mut x,
            amplitude: &mut a,
            phase: None,
            pre_amplitude: None,
            pre_phase: None,
        };
        let e = simulate_grid_into(&scan, 0, probe.view(), 1.0, 1.0, None, out).unwrap_err();
        assert!(e.to_string().starts_with("Y_I must be"), "{e}");
        let mut a = vec![0.0f32; per];
        let mut pp = vec![0.0f32; per];
        let out = GridOut {
            x: &mut x,
            amplitude: &mut a,
            phase: None,
            pre_amplitude: None,
            pre_phase: Some(&mut pp),
        };
        let e = simulate_grid_into(&scan, 0, probe.view(), 1.0, 1.0, None, out).unwrap_err();
        assert!(e.to_string().starts_with("phi_pre_probe must be"), "{e}");
    }
}
