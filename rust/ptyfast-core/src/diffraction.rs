//! Far-field diffraction: `A = |fftshift(FFT2(scale · probe · patch))| / N`.
//!
//! Conventions (the README's, stated once here for the core):
//! * `FFT2` is the unnormalised forward DFT, `F[k] = Σ_n x[n] · exp(−2πi k·n / N)` along both
//!   axes. No shift is applied *before* the FFT, so the zero frequency of `F` is at `[0, 0]` and,
//!   after `fftshift`, at `[N/2, N/2]` (integer division; `fftshift` moves index `k` to
//!   `(k + N/2) mod N`, as NumPy's does for even and odd `N`).
//! * The `1/N` factor makes the transform unitary (Parseval: `Σ A² = Σ |scale · probe · patch|²`).
//!   The amplitude is formed as the reference does, `sqrt((re² + im²) / N²)` in `f32`, with the
//!   division done as a multiplication by `1/N²` (bit-identical when `N` is a power of two;
//!   within an ulp otherwise).
//! * The field is computed in complex64 as `patch · (scale · probe)`.
//! * Any `N ≥ 2` works: rustfft plans mixed radices and Bluestein's algorithm for large primes.
//!
//! [`FarField`] holds one FFT plan and the scratch of one worker; it is built once per call and
//! cloned once per rayon job, so nothing is allocated per pattern. It takes the field
//! *transposed* (the fused simulation usually samples a transposed copy of the object, so this
//! costs nothing there): the row FFTs of `fieldᵀ` are the column FFTs of the field, one tiled
//! transpose puts the spectrum in natural order for the row FFTs, and the amplitudes are then
//! written row by row with fftshift folded into the write.

use std::fmt;
use std::sync::Arc;

use ndarray::{Array3, ArrayView2, ArrayView3};
use rayon::prelude::*;
use rustfft::{Fft, FftPlanner};

use crate::patches::{checked_len, zeroed};
use crate::{Complex32, Error, Result};

/// Tile edge of the blocked transpose (a multiple of 4): a 32 × 32 complex64 tile is 8 KiB.
const TILE: usize = 32;

/// One worker's far-field transform of size `N × N`: the FFT plan (shared) and its scratch.
///
/// Load the exit field with [`FarField::load_field`] (or write its transpose directly into
/// [`FarField::field_t_mut`]), then call [`FarField::amplitudes_into`]. Cloning shares the plan
/// and copies the scratch, which is how each worker gets its own.
#[derive(Clone)]
pub struct FarField {
    n: usize,
    fft: Arc<dyn Fft<f32>>,
    field_t: Vec<Complex32>,
    work: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl fmt::Debug for FarField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FarField")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl FarField {
    /// Plans the `N × N` transform.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`N`) when `n < 2` or `n²` overflows.
    pub fn new(n: usize) -> Result<Self> {
        if n < 2 {
            return Err(Error::invalid("N", "at least 2", n.to_string()));
        }
        let nn = checked_len(n, n)?;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
        let zero = Complex32::new(0.0, 0.0);
        Ok(FarField {
            n,
            scratch: vec![zero; fft.get_inplace_scratch_len()],
            fft,
            field_t: vec![zero; nn],
            work: vec![zero; nn],
        })
    }

    /// The transform size `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The transposed `N × N` exit field: element `c·N + r` holds `field[r][c]`.
    /// [`FarField::amplitudes_into`] overwrites it.
    pub fn field_t_mut(&mut self) -> &mut [Complex32] {
        &mut self.field_t
    }

    /// Loads a row-major `N × N` exit field (transposing it into place).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`field`) when `field.len() != N²`.
    #[inline(always)]
    pub fn load_field(&mut self, field: &[Complex32]) -> Result<()> {
        self.check_len("field", field.len())?;
        transpose(field, &mut self.field_t, self.n);
        Ok(())
    }

    /// Transforms the loaded field and writes `|fftshift(FFT2(field))| / N` (row-major) into
    /// `out`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`out`) when `out.len() != N²`.
    pub fn amplitudes_into(&mut self, out: &mut [f32]) -> Result<()> {
        self.check_len("out", out.len())?;
        self.transform(out);
        Ok(())
    }

    fn check_len(&self, name: &'static str, len: usize) -> Result<()> {
        if len == self.field_t.len() {
            Ok(())
        } else {
            Err(Error::invalid(
                name,
                format!("of length N² = {}", self.field_t.len()),
                len.to_string(),
            ))
        }
    }

    /// [`FarField::amplitudes_into`] for an `out` of the right length (checked by callers).
    #[inline(always)]
    pub(crate) fn transform(&mut self, out: &mut [f32]) {
        let n = self.n;
        // Rows of fieldᵀ are columns of the field: `field_t[c][k1]` after the first pass,
        // `work[k1][c]` after the transpose, `work[k1][k2] = F[k1][k2]` after the second.
        self.fft
            .process_with_scratch(&mut self.field_t, &mut self.scratch);
        transpose(&self.field_t, &mut self.work, n);
        self.fft
            .process_with_scratch(&mut self.work, &mut self.scratch);
        shifted_amplitudes(&self.work, out, n);
    }
}

/// `dst = srcᵀ` for square `n × n` row-major buffers: cache tiles of 4 × 2 blocks (each block
/// becomes two 4-value runs of `dst`), then the odd rows and column left over.
#[inline(always)]
pub(crate) fn transpose(src: &[Complex32], dst: &mut [Complex32], n: usize) {
    if src.len() < n * n || dst.len() < n * n {
        return;
    }
    let (r4, c2) = (n - n % 4, n - n % 2);
    for r0 in (0..r4).step_by(TILE) {
        let r1 = (r0 + TILE).min(r4);
        for c0 in (0..c2).step_by(TILE) {
            let c1 = (c0 + TILE).min(c2);
            for r in (r0..r1).step_by(4) {
                let row = |k: usize| src[(r + k) * n + c0..(r + k) * n + c1].chunks_exact(2);
                let quads = row(0).zip(row(1)).zip(row(2).zip(row(3)));
                for (k, ((a, b), (c, d))) in quads.enumerate() {
                    let col = c0 + 2 * k;
                    dst[col * n + r..col * n + r + 4].copy_from_slice(&[a[0], b[0], c[0], d[0]]);
                    let next = (col + 1) * n + r;
                    dst[next..next + 4].copy_from_slice(&[a[1], b[1], c[1], d[1]]);
                }
            }
        }
    }
    for r in r4..n {
        for c in 0..n {
            dst[c * n + r] = src[r * n + c];
        }
    }
    for c in c2..n {
        for r in 0..r4 {
            dst[c * n + r] = src[r * n + c];
        }
    }
}

/// `out[(k1 + h) % n][(k2 + h) % n] = sqrt((re² + im²) · (1/n²))` of `f[k1][k2]`, `h = n / 2`:
/// the reference's `sqrt(fftshift(|F|² / N²))`, each row written as two contiguous runs.
#[inline(always)]
fn shifted_amplitudes(f: &[Complex32], out: &mut [f32], n: usize) {
    if f.len() < n * n || out.len() < n * n {
        return;
    }
    let h = n / 2;
    let inv_n2 = 1.0 / (n * n) as f32;
    let amp = |o: &mut [f32], src: &[Complex32]| {
        for (a, v) in o.iter_mut().zip(src) {
            *a = ((v.re * v.re + v.im * v.im) * inv_n2).sqrt();
        }
    };
    for (k1, src) in f.chunks_exact(n).enumerate() {
        let row = if k1 + h >= n { k1 + h - n } else { k1 + h };
        let orow = &mut out[row * n..(row + 1) * n];
        // Frequencies 0..n−h go to columns h..n, the negative ones n−h..n to columns 0..h.
        let (left, right) = orow.split_at_mut(h);
        let (pos, neg) = src.split_at(n - h);
        amp(right, pos);
        amp(left, neg);
    }
}

/// `probe · scale` in complex64 (row-major in the view's logical order), the factor every
/// patch is multiplied by.
pub(crate) fn scaled_probe(probe: &ArrayView2<'_, Complex32>, scale: f32) -> Vec<Complex32> {
    probe.iter().map(|p| *p * scale).collect()
}

/// `field ← field · sprobe`, the exit wave (one shared definition so all kernels agree bitwise).
#[inline(always)]
pub(crate) fn illuminate(field: &mut [Complex32], sprobe: &[Complex32]) {
    for (f, p) in field.iter_mut().zip(sprobe) {
        *f *= *p;
    }
}

/// Checks `scale` is positive and finite.
pub(crate) fn check_scale(scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "scale",
            "positive and finite",
            scale.to_string(),
        ))
    }
}

/// Checks `probe` is square with `N ≥ 2` (and `N == n` when given); returns `N`.
pub(crate) fn check_probe(probe: &ArrayView2<'_, Complex32>, n: Option<usize>) -> Result<usize> {
    let (a, b) = probe.dim();
    let want = n.unwrap_or(a);
    if a != b || a != want {
        return Err(Error::invalid(
            "probe",
            match n {
                Some(n) => format!("(N, N) = ({n}, {n})"),
                None => "square (N, N)".into(),
            },
            format!("({a}, {b})"),
        ));
    }
    if a < 2 {
        return Err(Error::invalid(
            "probe",
            "at least (2, 2)",
            format!("({a}, {b})"),
        ));
    }
    Ok(a)
}

/// Far-field amplitudes of `patches` (`(M, N, N)`) illuminated by `probe` (`(N, N)`), scaled:
/// `|fftshift(FFT2(scale · probe · patch))| / N` per pattern (see the module conventions),
/// computed in parallel over patterns.
///
/// # Errors
/// [`Error::InvalidArgument`] when `patches` is empty or not `(M, N, N)` with `N ≥ 2`, `probe`
/// is not `(N, N)`, or `scale` is not positive and finite.
pub fn diffract(
    patches: ArrayView3<'_, Complex32>,
    probe: ArrayView2<'_, Complex32>,
    scale: f32,
) -> Result<Array3<f32>> {
    let (m, a, b) = patches.dim();
    if a != b || a < 2 {
        return Err(Error::invalid(
            "patches",
            "(M, N, N) with N >= 2",
            format!("({m}, {a}, {b})"),
        ));
    }
    if m == 0 {
        return Err(Error::invalid(
            "patches",
            "a non-empty (M, N, N) array",
            format!("({m}, {a}, {b})"),
        ));
    }
    let n = check_probe(&probe, Some(a))?;
    check_scale(scale)?;
    let nn = checked_len(n, n)?;
    let patches = patches.as_standard_layout();
    let src = patches
        .as_slice()
        .ok_or_else(|| Error::Unsupported("patches must be in standard (C) layout".into()))?;
    // The field is held transposed (see the module docs), so is the probe it is multiplied by.
    let sprobe_t = scaled_probe(&probe.t(), scale);
    let template = FarField::new(n)?;
    let mut out = zeroed::<f32>(checked_len(m, nn)?, "patches")?;
    out.par_chunks_mut(nn)
        .zip(src.par_chunks(nn))
        .for_each_init(
            || (template.clone(), vec![Complex32::new(0.0, 0.0); nn]),
            |(ff, staging), (o, p)| diffract_one(ff, staging, p, &sprobe_t, o),
        );
    Array3::from_shape_vec((m, n, n), out).map_err(|e| Error::Unsupported(e.to_string()))
}

crate::simd::multiversion! {
    /// One pattern of [`diffract`]: the patch `p` times `sprobe_t`, transformed into `out`.
    fn diffract_one(
        ff: &mut FarField,
        staging: &mut [Complex32],
        p: &[Complex32],
        sprobe_t: &[Complex32],
        out: &mut [f32],
    ) {
        // Stream the (likely uncached) patch in contiguously, transpose it in cache.
        staging.copy_from_slice(p);
        if ff.load_field(staging).is_ok() {
            illuminate(ff.field_t_mut(), sprobe_t);
            ff.transform(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use std::f64::consts::PI;

    /// Deterministic pseudo-random complex field (no RNG dependency in the core's tests).
    fn field(n: usize, salt: u64) -> Vec<Complex32> {
        let mut s = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        (0..n * n).map(|_| Complex32::new(next(), next())).collect()
    }

    /// Naive O(N⁴) `|fftshift(DFT2(x))| / N` in f64.
    fn naive(x: &[Complex32], n: usize) -> Vec<f64> {
        let h = n / 2;
        let mut out = vec![0.0; n * n];
        for k1 in 0..n {
            for k2 in 0..n {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for r in 0..n {
                    for c in 0..n {
                        let ph = -2.0 * PI * ((k1 * r) as f64 + (k2 * c) as f64) / n as f64;
                        let v = x[r * n + c];
                        let (vr, vi) = (v.re as f64, v.im as f64);
                        re += vr * ph.cos() - vi * ph.sin();
                        im += vr * ph.sin() + vi * ph.cos();
                    }
                }
                out[((k1 + h) % n) * n + (k2 + h) % n] = (re * re + im * im).sqrt() / n as f64;
            }
        }
        out
    }

    fn amplitudes(x: &[Complex32], n: usize) -> Vec<f32> {
        let mut ff = FarField::new(n).unwrap();
        ff.load_field(x).unwrap();
        let mut out = vec![0.0; n * n];
        ff.amplitudes_into(&mut out).unwrap();
        out
    }

    #[test]
    fn fft_path_matches_naive_dft() {
        for n in [2usize, 3, 5, 8, 12, 17, 31] {
            let x = field(n, n as u64);
            let got = amplitudes(&x, n);
            let want = naive(&x, n);
            let max = want.iter().cloned().fold(0.0, f64::max);
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 2e-6 * max, "n={n}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn zero_frequency_and_plane_waves_land_after_fftshift() {
        for n in [2usize, 5, 8, 9, 12] {
            let h = n / 2;
            let ones = vec![Complex32::new(1.0, 0.0); n * n];
            let a = amplitudes(&ones, n);
            for (i, v) in a.iter().enumerate() {
                let want = if i == h * n + h { n as f32 } else { 0.0 };
                assert!((v - want).abs() < 1e-4, "n={n} i={i} {v}");
            }
            // exp(+2πi (ky r + kx c) / N) puts the peak at [(ky + h) % n, (kx + h) % n].
            let (ky, kx) = (1usize, n - 1);
            let wave: Vec<Complex32> = (0..n * n)
                .map(|i| {
                    let (r, c) = (i / n, i % n);
                    let ph = 2.0 * PI * ((ky * r + kx * c) as f64) / n as f64;
                    Complex32::new(ph.cos() as f32, ph.sin() as f32)
                })
                .collect();
            let a = amplitudes(&wave, n);
            let peak = ((ky + h) % n) * n + (kx + h) % n;
            let (imax, _) =
                a.iter()
                    .enumerate()
                    .fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m });
            assert_eq!(imax, peak, "n={n}");
        }
    }

    #[test]
    fn transpose_matches_index_swap() {
        for n in (1..=40).chain([63, 64, 65, 66, 67, 97, 128]) {
            let src = field(n, 5);
            let mut dst = vec![Complex32::new(f32::NAN, 0.0); n * n];
            transpose(&src, &mut dst, n);
            for r in 0..n {
                for c in 0..n {
                    assert_eq!(dst[c * n + r], src[r * n + c], "n={n} r={r} c={c}");
                }
            }
        }
    }

    #[test]
    fn parseval_holds() {
        for n in [2usize, 7, 16, 64] {
            let x = field(n, 99 + n as u64);
            let a = amplitudes(&x, n);
            let ea: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum();
            let ex: f64 = x.iter().map(|v| v.norm_sqr() as f64).sum();
            assert!((ea - ex).abs() <= 1e-5 * ex, "n={n}: {ea} vs {ex}");
        }
    }

    #[test]
    fn diffract_scales_and_multiplies_by_the_probe() {
        let n = 6;
        let p: Vec<Complex32> = field(n, 3);
        let probe = Array2::from_shape_vec((n, n), field(n, 4)).unwrap();
        let patches = Array3::from_shape_vec((1, n, n), p.clone()).unwrap();
        let got = diffract(patches.view(), probe.view(), 2.5).unwrap();
        let prod: Vec<Complex32> = p
            .iter()
            .zip(probe.iter())
            .map(|(a, b)| a * b * 2.5)
            .collect();
        let want = naive(&prod, n);
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn diffract_rejects_bad_input() {
        let ok = Array3::<Complex32>::zeros((2, 4, 4));
        let probe = Array2::<Complex32>::zeros((4, 4));
        assert!(diffract(ok.view(), probe.view(), 1.0).is_ok());
        let cases: Vec<(Array3<Complex32>, Array2<Complex32>, f32, &str)> = vec![
            (
                Array3::zeros((2, 4, 5)),
                Array2::zeros((4, 4)),
                1.0,
                "patches",
            ),
            (
                Array3::zeros((2, 1, 1)),
                Array2::zeros((1, 1)),
                1.0,
                "patches",
            ),
            (
                Array3::zeros((0, 4, 4)),
                Array2::zeros((4, 4)),
                1.0,
                "patches",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((5, 5)),
                1.0,
                "probe",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((4, 3)),
                1.0,
                "probe",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((4, 4)),
                0.0,
                "scale",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((4, 4)),
                -1.0,
                "scale",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((4, 4)),
                f32::NAN,
                "scale",
            ),
            (
                Array3::zeros((2, 4, 4)),
                Array2::zeros((4, 4)),
                f32::INFINITY,
                "scale",
            ),
        ];
        for (pa, pr, s, name) in cases {
            match diffract(pa.view(), pr.view(), s) {
                Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
                other => panic!("expected an error naming {name}, got {other:?}"),
            }
        }
        assert!(FarField::new(1).is_err());
        let mut ff = FarField::new(4).unwrap();
        assert!(ff.amplitudes_into(&mut [0.0; 15]).is_err());
        assert!(ff.load_field(&[Complex32::new(0.0, 0.0); 17]).is_err());
    }
}
