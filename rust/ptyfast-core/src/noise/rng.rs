//! The per-pattern random streams, both seeded through SplitMix64 from `(seed, index)` alone:
//! [`PatternRng`] (stream v1, one xoshiro256++ generator) and [`LanesRng`] (stream v2, eight
//! interleaved xoshiro256++ generators whose steps vectorise). The samplers read uniforms
//! through [`Uniforms`], in bulk where they can.

/// SplitMix64 increment (the golden-ratio constant, odd).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function, a bijection of `u64`.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Advances a SplitMix64 state and returns its next output.
#[inline]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GAMMA);
    mix64(*state)
}

/// The random stream of one pattern: xoshiro256++ (period 2^256 − 1) whose state is derived
/// from `(seed, index)` alone, so a pattern's noise never depends on which thread or chunk
/// processed it.
///
/// Derivation: `key` is the first output of SplitMix64 seeded with `seed`; `z` is output number
/// `index` (0-based) of SplitMix64 seeded with `key`, i.e. `mix64(key + (index + 1)·γ)`; the four
/// xoshiro256++ words are the first four outputs of SplitMix64 seeded with `z`. For a fixed
/// seed, distinct indices give distinct `z` (`mix64` is a bijection), and four consecutive
/// SplitMix64 outputs are never all zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternRng {
    s: [u64; 4],
}

impl PatternRng {
    /// The stream of pattern `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut sm = seed;
        let key = splitmix64(&mut sm);
        let mut z = mix64(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)));
        let s = [
            splitmix64(&mut z),
            splitmix64(&mut z),
            splitmix64(&mut z),
            splitmix64(&mut z),
        ];
        PatternRng { s }
    }

    /// Next 64 random bits (xoshiro256++).
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.s;
        let out = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let s2 = s2 ^ s0;
        let s3 = s3 ^ s1;
        let s1 = s1 ^ s2;
        let s0 = s0 ^ s3;
        let s2 = s2 ^ t;
        let s3 = s3.rotate_left(45);
        self.s = [s0, s1, s2, s3];
        out
    }

    /// Uniform double on `[0, 1)` with 53 random bits (multiples of 2^-53).
    #[inline(always)]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A stream of uniform doubles on `[0, 1)`, each a multiple of 2^-53 made from the top 53 bits
/// of one 64-bit output (the function `unit`, below). `fill` and `next_f64` read the same
/// sequence: filling `n` values then `m` gives what filling `n + m` at once gives.
pub trait Uniforms: Clone {
    /// The next uniform.
    fn next_f64(&mut self) -> f64;
    /// The next `out.len()` uniforms, in order.
    fn fill(&mut self, out: &mut [f64]);
}

impl Uniforms for PatternRng {
    #[inline(always)]
    fn next_f64(&mut self) -> f64 {
        PatternRng::next_f64(self)
    }

    #[inline(always)]
    fn fill(&mut self, out: &mut [f64]) {
        for o in out.iter_mut() {
            *o = PatternRng::next_f64(self);
        }
    }
}

/// `(x >> 11)·2^-53`, the uniform of one output, without an integer-to-float instruction (so
/// that it vectorises at every level): the low 52 bits of `x >> 11` become a double by
/// exponent stuffing and the top bit is added back as 0 or 2^52; every step is exact.
#[inline(always)]
pub fn unit(x: u64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    let m = x >> 11;
    let low = f64::from_bits(0x4330_0000_0000_0000 | (m & 0x000f_ffff_ffff_ffff)) - TWO_POW_52;
    let high = f64::from_bits(((m >> 52) & 1) * TWO_POW_52.to_bits());
    (low + high) * (1.0 / TWO_POW_52 / 2.0)
}

/// Lanes of [`LanesRng`].
pub const LANES: usize = 8;

/// Domain tag of stream v2's key (the ASCII bytes of "poissnv2"), so that its generators never
/// share a seed word with stream v1's.
const V2_TAG: u64 = 0x706f_6973_736e_7632;

/// The random stream v2 of one pattern: eight (`LANES`) xoshiro256++ generators stepped together,
/// read in round-robin order (output `n` of the stream is output `n / 8` of lane `n % 8`).
/// Each step of all lanes is a handful of vector instructions, so uniforms cost a fraction of
/// [`PatternRng`]'s serial chain.
///
/// Derivation from `(seed, index)` alone: `key` = `mix64(k1 ^ TAG)` with `k1` the first
/// SplitMix64 output of `seed` and `TAG = 0x706f_6973_736e_7632`; `z = mix64(key + (index +
/// 1)·γ)` (output number `index` of SplitMix64 seeded with `key`); lane `l`'s four state words
/// are SplitMix64 outputs `4l + 1 … 4l + 4` of `z` (32 in all, never four zeros in a row).
#[derive(Clone, Debug)]
pub struct LanesRng {
    s: [Lanes; 4],
    /// Outputs of the last step not yet read (`buf[pos..]`).
    buf: Lanes,
    pos: usize,
}

/// Two generators are equal when they will produce the same stream (consumed outputs of the
/// last step do not count).
impl PartialEq for LanesRng {
    fn eq(&self, o: &Self) -> bool {
        let pending = |r: &Self| r.buf.0.get(r.pos.min(LANES)..).map(<[u64]>::to_vec);
        self.s == o.s && pending(self) == pending(o)
    }
}

impl Eq for LanesRng {}

/// One 64-bit word per lane. Each operation is a loop over the lanes that the compiler turns
/// into one vector instruction (or two, or four, depending on the vector width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
struct Lanes([u64; LANES]);

impl Lanes {
    #[inline(always)]
    fn map2(self, o: Lanes, f: impl Fn(u64, u64) -> u64) -> Lanes {
        let mut r = [0u64; LANES];
        for ((r, &a), &b) in r.iter_mut().zip(&self.0).zip(&o.0) {
            *r = f(a, b);
        }
        Lanes(r)
    }

    #[inline(always)]
    fn map(self, f: impl Fn(u64) -> u64) -> Lanes {
        let mut r = [0u64; LANES];
        for (r, &a) in r.iter_mut().zip(&self.0) {
            *r = f(a);
        }
        Lanes(r)
    }
}

impl LanesRng {
    /// The v2 stream of pattern `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        let mut sm = seed;
        let key = mix64(splitmix64(&mut sm) ^ V2_TAG);
        let mut z = mix64(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)));
        let mut s = [Lanes([0; LANES]); 4];
        for l in 0..LANES {
            for word in s.iter_mut() {
                word.0[l] = splitmix64(&mut z);
            }
        }
        LanesRng {
            s,
            buf: Lanes([0; LANES]),
            pos: LANES,
        }
    }

    /// One step of every lane: the next [`LANES`] outputs, lane order.
    #[inline(always)]
    fn step(s: &mut [Lanes; 4]) -> Lanes {
        let [s0, s1, s2, s3] = *s;
        let out = s0
            .map2(s3, |a, b| a.wrapping_add(b).rotate_left(23))
            .map2(s0, u64::wrapping_add);
        let t = s1.map(|a| a << 17);
        let s2 = s2.map2(s0, |a, b| a ^ b);
        let s3 = s3.map2(s1, |a, b| a ^ b);
        let s1 = s1.map2(s2, |a, b| a ^ b);
        let s0 = s0.map2(s3, |a, b| a ^ b);
        let s2 = s2.map2(t, |a, b| a ^ b);
        let s3 = s3.map(|a| a.rotate_left(45));
        *s = [s0, s1, s2, s3];
        out
    }

    /// The next [`LANES`] 64-bit outputs (only when no uniform is pending; for tests).
    #[cfg(test)]
    fn next_u64s(&mut self) -> [u64; LANES] {
        Self::step(&mut self.s).0
    }

    /// The loop of [`Uniforms::fill`] over whole steps, each output converted by one vector
    /// instruction: `x >> 11 < 2^53` converts to `f64` exactly, so the values are `unit`'s.
    ///
    /// # Safety
    /// The processor has AVX-512 F/BW/CD/DQ/VL, AVX2, FMA, BMI1/2, LZCNT and POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,\
        avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
    unsafe fn fill_groups_avx512(
        s: &mut [Lanes; 4],
        groups: &mut std::slice::ChunksExactMut<'_, f64>,
    ) {
        use std::arch::x86_64::*;
        const _: () = assert!(LANES == 8); // one 512-bit vector per step
        let scale = _mm512_set1_pd(1.0 / (1u64 << 53) as f64);
        for g in groups {
            let o = Self::step(s);
            let bits = _mm512_srli_epi64::<11>(_mm512_loadu_si512(o.0.as_ptr().cast()));
            let u = _mm512_mul_pd(_mm512_cvtepi64_pd(bits), scale);
            // `g` holds LANES = 8 values (a chunk of `chunks_exact_mut(LANES)`).
            assert_eq!(g.len(), LANES);
            _mm512_storeu_pd(g.as_mut_ptr(), u);
        }
    }
}

impl Uniforms for LanesRng {
    #[inline(always)]
    fn next_f64(&mut self) -> f64 {
        if self.pos >= LANES {
            self.buf = Self::step(&mut self.s);
            self.pos = 0;
        }
        let x = self.buf.0.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        unit(x)
    }

    #[inline(always)]
    fn fill(&mut self, out: &mut [f64]) {
        let pending = (LANES - self.pos.min(LANES)).min(out.len());
        let (head, rest) = out.split_at_mut(pending);
        for h in head.iter_mut() {
            *h = self.next_f64();
        }
        let mut s = self.s;
        let mut groups = rest.chunks_exact_mut(LANES);
        #[cfg(target_arch = "x86_64")]
        if crate::simd::current() == crate::simd::Level::Avx512 {
            // SAFETY: the processor has these features (`current()` never exceeds
            // `detected()`, which checks them).
            unsafe { Self::fill_groups_avx512(&mut s, &mut groups) };
        }
        for g in &mut groups {
            let o = Self::step(&mut s);
            for (d, &x) in g.iter_mut().zip(o.0.iter()) {
                *d = unit(x);
            }
        }
        self.s = s;
        for t in groups.into_remainder() {
            *t = self.next_f64();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{with_cap, Level};

    #[test]
    fn xoshiro256pp_reference_vector() {
        // First outputs of xoshiro256++ from state [1, 2, 3, 4] (reference C implementation).
        let mut r = PatternRng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, vec![41943041, 58720359, 3588806011781223]);
    }

    #[test]
    fn splitmix64_reference_vector() {
        // SplitMix64 seeded with 1234567 (reference C implementation).
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        assert_eq!(splitmix64(&mut s), 3203168211198807973);
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = {
            let mut r = PatternRng::new(7, 3);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = PatternRng::new(7, 3);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        for (seed, index) in [(7, 4), (8, 3), (3, 7), (0, 0)] {
            let mut r = PatternRng::new(seed, index);
            assert_ne!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn unit_is_the_scaled_top_bits() {
        let mut r = PatternRng::new(9, 9);
        let mut xs: Vec<u64> = (0..10_000).map(|_| r.next_u64()).collect();
        xs.extend([0, u64::MAX, 1 << 63, (1 << 63) - 1, 1 << 11, (1 << 11) - 1]);
        for x in xs {
            let want = (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            assert_eq!(unit(x).to_bits(), want.to_bits(), "{x:#x}");
        }
    }

    #[test]
    fn lanes_are_xoshiro256pp_seeded_as_documented() {
        let (seed, index) = (12345u64, 678u64);
        let mut sm = seed;
        let key = mix64(splitmix64(&mut sm) ^ V2_TAG);
        let mut z = mix64(key.wrapping_add((index + 1).wrapping_mul(GAMMA)));
        let lanes: Vec<PatternRng> = (0..LANES)
            .map(|_| PatternRng {
                s: [
                    splitmix64(&mut z),
                    splitmix64(&mut z),
                    splitmix64(&mut z),
                    splitmix64(&mut z),
                ],
            })
            .collect();
        let mut scalar = lanes.clone();
        let mut v = LanesRng::new(seed, index);
        for _ in 0..5 {
            let got = v.next_u64s();
            for (l, g) in got.iter().enumerate() {
                assert_eq!(*g, scalar[l].next_u64());
            }
        }
        // Uniforms in round-robin order.
        let mut scalar = lanes;
        let mut v = LanesRng::new(seed, index);
        for n in 0..40 {
            assert_eq!(v.next_f64(), scalar[n % LANES].next_f64(), "n={n}");
        }
    }

    #[test]
    fn fill_matches_one_at_a_time() {
        for splits in [
            vec![0usize, 1, 7, 8, 9, 30],
            vec![3, 5, 16, 2, 100],
            vec![64],
        ] {
            let total: usize = splits.iter().sum();
            let mut a = LanesRng::new(4, 5);
            let want: Vec<f64> = (0..total).map(|_| a.next_f64()).collect();
            // Each instruction-set level's fill (AVX-512 converts by a vector instruction).
            for cap in [Level::Baseline, Level::Avx2, Level::Avx512] {
                let mut b = LanesRng::new(4, 5);
                let mut got = Vec::new();
                with_cap(cap, || {
                    for &n in &splits {
                        let mut part = vec![0.0; n];
                        b.fill(&mut part);
                        got.extend(part);
                    }
                });
                assert_eq!(got, want, "{splits:?} {cap:?}");
                assert_eq!(a, b);
            }
            let mut c = PatternRng::new(4, 5);
            let want: Vec<f64> = (0..total).map(|_| c.next_f64()).collect();
            let mut d = PatternRng::new(4, 5);
            let mut got = vec![0.0; total];
            Uniforms::fill(&mut d, &mut got);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn v2_streams_differ_from_each_other_and_from_v1() {
        let first = |seed, index| {
            let mut r = LanesRng::new(seed, index);
            (0..16).map(|_| r.next_f64()).collect::<Vec<_>>()
        };
        let a = first(7, 3);
        assert_eq!(a, first(7, 3));
        for (seed, index) in [(7, 4), (8, 3), (3, 7), (0, 0)] {
            assert_ne!(a, first(seed, index));
        }
        let mut v1 = PatternRng::new(7, 3);
        let b: Vec<f64> = (0..16).map(|_| v1.next_f64()).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn uniform_range() {
        let mut r = PatternRng::new(0, 0);
        for _ in 0..10_000 {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
