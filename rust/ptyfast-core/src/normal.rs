//! Exact standard normals: Marsaglia and Tsang's ziggurat (256 layers, the tail by
//! Marsaglia's exponential method), whose only deviations from the normal law are the 2^-52
//! granularity of its uniforms and the ~1e-16 rounding of its tables. The detector's read noise
//! ([`crate::detector`]) draws from it; a caller supplies its own 64-bit words, so the stream
//! stays the caller's.

use std::sync::OnceLock;

/// Layers of the ziggurat.
pub(crate) const ZIG_LAYERS: usize = 256;
/// Right edge of the base layer (Marsaglia & Tsang's `r` for 256 layers).
pub(crate) const ZIG_R: f64 = 3.654_152_885_361_009;

/// The ziggurat's layer edges `x[0..=256]` (decreasing, `x[1] = r`, `x[256] = 0`) and the
/// normal density (unnormalised, `exp(−x²/2)`) at each edge.
pub(crate) struct Ziggurat {
    pub(crate) x: [f64; ZIG_LAYERS + 1],
    pub(crate) f: [f64; ZIG_LAYERS + 1],
}

/// `∫_r^∞ exp(−t²/2) dt / exp(−r²/2)` (Mills' ratio) by Laplace's continued fraction
/// `1/(r + 1/(r + 2/(r + 3/(r + …))))`, evaluated backwards (converged to `f64` for `r > 3`).
fn mills_ratio(r: f64) -> f64 {
    let mut t = r;
    for k in (1..=200).rev() {
        t = r + f64::from(k) / t;
    }
    1.0 / t
}

pub(crate) fn ziggurat() -> &'static Ziggurat {
    static Z: OnceLock<Ziggurat> = OnceLock::new();
    Z.get_or_init(|| {
        let pdf = |x: f64| (-0.5 * x * x).exp();
        let fr = pdf(ZIG_R);
        // Every layer has the area of the base layer: the rectangle under f(r) plus the tail.
        let v = ZIG_R * fr + fr * mills_ratio(ZIG_R);
        let mut z = Ziggurat {
            x: [0.0; ZIG_LAYERS + 1],
            f: [0.0; ZIG_LAYERS + 1],
        };
        z.x[0] = v / fr;
        z.x[1] = ZIG_R;
        z.f[1] = fr;
        for i in 1..ZIG_LAYERS - 1 {
            let fi = z.f[i] + v / z.x[i];
            z.f[i + 1] = fi;
            z.x[i + 1] = (-2.0 * fi.ln()).sqrt();
        }
        z.x[ZIG_LAYERS] = 0.0;
        z.f[ZIG_LAYERS] = 1.0;
        z
    })
}

/// One standard normal by the ziggurat, starting from the 64 random bits `bits` and drawing
/// more from `next` only when the first try is rejected (about 1 % of the time).
#[inline(always)]
pub(crate) fn ziggurat_from(mut bits: u64, next: &mut impl FnMut() -> u64, z: &Ziggurat) -> f64 {
    loop {
        // The layer from the low 8 bits, a uniform on [−1, 1) from the top 53 (disjoint).
        let i = (bits & 0xff) as usize;
        let u = ((bits >> 11) as f64) * (2.0 / TWO53) - 1.0;
        let x = u * z.x[i];
        if x.abs() < z.x[i + 1] {
            return x;
        }
        if i == 0 {
            return normal_tail(next, u < 0.0);
        }
        let v = ((next() >> 11) as f64) / TWO53;
        if z.f[i] + (z.f[i + 1] - z.f[i]) * v < (-0.5 * x * x).exp() {
            return x;
        }
        bits = next();
    }
}

/// A normal beyond `r` (Marsaglia 1964), with the sign asked for.
#[cold]
#[inline(never)]
fn normal_tail(next: &mut impl FnMut() -> u64, negative: bool) -> f64 {
    loop {
        // Uniforms on (0, 1], so the logarithms are finite.
        let u1 = 1.0 - ((next() >> 11) as f64) / TWO53;
        let u2 = 1.0 - ((next() >> 11) as f64) / TWO53;
        let (x, y) = (-u1.ln() / ZIG_R, -u2.ln());
        if 2.0 * y >= x * x {
            let t = ZIG_R + x;
            return if negative { -t } else { t };
        }
    }
}

/// 2^53.
const TWO53: f64 = 9_007_199_254_740_992.0;

/// The ziggurat's first try from the 64 bits `b`: the candidate and whether it is rejected
/// (then [`ziggurat_from`] restarts from the same `b`).
#[inline(always)]
pub(crate) fn first_try(b: u64, zig: &Ziggurat) -> (f64, bool) {
    let i = (b & 0xff) as usize;
    try_in_layer(b, zig.x[i], zig.x[i + 1])
}

/// [`first_try`] given its layer's bounds `x[i]` and `x[i + 1]` (`i` the low 8 bits of `b`).
#[inline(always)]
pub(crate) fn try_in_layer(b: u64, x_i: f64, x_next: f64) -> (f64, bool) {
    let x = (((b >> 11) as i64) as f64 * (2.0 / TWO53) - 1.0) * x_i;
    (x, x.abs() >= x_next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziggurat_layers_close_and_have_equal_areas() {
        let z = ziggurat();
        let v = z.x[0] * z.f[1];
        // The recursion ends at the top of the density: the last layer's area is v too.
        let top = z.x[ZIG_LAYERS - 1] * (1.0 - z.f[ZIG_LAYERS - 1]);
        assert!((top - v).abs() < 1e-10 * v, "{top} vs {v}");
        for i in 1..ZIG_LAYERS - 1 {
            assert!(z.x[i] > z.x[i + 1] && z.f[i] < z.f[i + 1], "layer {i}");
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area - v).abs() < 1e-12, "layer {i}: {area} vs {v}");
            let fx = (-0.5 * z.x[i] * z.x[i]).exp();
            assert!((fx - z.f[i]).abs() < 1e-14, "layer {i}");
        }
        // Mills' ratio against the closed form at r where erfc is known to many digits:
        // ∫_3^∞ φ = 1.3498980316301e-3 (normal tail), φ(3) = exp(−4.5)/√(2π).
        let phi3 = (-4.5f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        assert!((mills_ratio(3.0) * phi3 - 1.349_898_031_630_095e-3).abs() < 1e-15);
    }
}
