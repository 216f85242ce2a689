//! NumPy's legacy `RandomState` stream (MT19937 with `init_genrand` seeding), reproduced
//! bit-exactly for the draws the reference's grouping makes: `permutation`, `choice` with and
//! without replacement, and the 53-bit uniform double.
//!
//! The reference seeds NumPy's *global* legacy generator with `np.random.seed(seed)` and then
//! calls `np.random.choice` / `np.random.permutation`; parity of the grouping's output is only
//! possible by replaying the exact same stream, which this module does:
//!
//! * seeding: `init_genrand(seed)` (NumPy's `_legacy_seeding` for an integer seed in
//!   `[0, 2**32)`);
//! * `permutation(n)`: `arange(n)` shuffled in place by Fisher–Yates, `i = n−1 … 1`, swapping
//!   `a[i]` with `a[interval(i)]`;
//! * `interval(max)`: raw draws masked by the smallest all-ones mask `≥ max`, rejected until
//!   `≤ max` (no draw for `max == 0`);
//! * `choice(n, size, replace=False)` is `permutation(n)[:size]`; `choice(n, size,
//!   replace=True)` is `randint(0, n, size)`: masked rejection with range `n − 1`.

use crate::{Error, Result};

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// NumPy's legacy `RandomState` (MT19937), seeded like `np.random.seed(seed)`.
#[derive(Clone)]
pub struct LegacyRandomState {
    key: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for LegacyRandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegacyRandomState")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

/// Smallest all-ones bit mask `≥ max`.
fn mask_for(max: u64) -> u64 {
    let mut m = max;
    m |= m >> 1;
    m |= m >> 2;
    m |= m >> 4;
    m |= m >> 8;
    m |= m >> 16;
    m |= m >> 32;
    m
}

impl LegacyRandomState {
    /// The state `np.random.seed(seed)` / `RandomState(seed)` produces (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (i, k) in key.iter_mut().enumerate() {
            *k = s;
            // i + 1 < 625, so the cast is lossless.
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(i as u32 + 1);
        }
        Self { key, pos: N }
    }

    fn twist(&mut self) {
        let k = &mut self.key;
        for i in 0..N {
            let y = (k[i] & UPPER_MASK) | (k[(i + 1) % N] & LOWER_MASK);
            let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
            k[i] = k[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.pos = 0;
    }

    /// One raw 32-bit output (`genrand_int32`, NumPy's `next_uint32`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// NumPy's `next_uint64` for MT19937: the first draw is the high word.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        (hi << 32) | u64::from(self.next_u32())
    }

    /// A uniform double in `[0, 1)` with 53 random bits (`random_sample`).
    #[inline]
    pub fn next_double(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// NumPy's `random_interval(max)`: uniform on `[0, max]` by masked rejection.
    #[inline]
    pub fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = mask_for(max);
        if max <= u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.next_u32()) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let v = self.next_u64() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// In-place Fisher–Yates shuffle exactly as legacy `RandomState.shuffle` on a 1-D array.
    pub fn shuffle<T>(&mut self, a: &mut [T]) {
        for i in (1..a.len()).rev() {
            // interval(i) <= i < a.len(), so the index is in range and fits usize.
            let j = self.interval(i as u64) as usize;
            a.swap(i, j);
        }
    }

    /// `permutation(n)`: `arange(n)` shuffled.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut a: Vec<usize> = (0..n).collect();
        self.shuffle(&mut a);
        a
    }

    /// [`LegacyRandomState::permutation`] with a fallible allocation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`n`) when `n` indices cannot be allocated.
    pub fn try_permutation(&mut self, n: usize) -> Result<Vec<usize>> {
        let mut a = reserve(n, "n")?;
        a.extend(0..n);
        self.shuffle(&mut a);
        Ok(a)
    }

    /// Fills `buf` with `permutation(buf.len())`, reusing the allocation.
    pub fn permutation_into(&mut self, buf: &mut [usize]) {
        for (i, v) in buf.iter_mut().enumerate() {
            *v = i;
        }
        self.shuffle(buf);
    }

    /// `randint(0, n, size)` with the legacy masked-rejection sampler (`n ≥ 1`; `n == 1` gives
    /// zeros without consuming the stream, as NumPy does).
    pub fn randint_below(&mut self, n: usize, size: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(size);
        self.randint_below_into(n, size, &mut out);
        out
    }

    /// Appends `randint(0, n, size)` to `out` (see [`LegacyRandomState::randint_below`]).
    fn randint_below_into(&mut self, n: usize, size: usize, out: &mut Vec<usize>) {
        let rng = n.saturating_sub(1) as u64;
        if rng == 0 {
            out.resize(out.len() + size, 0);
            return;
        }
        let mask = mask_for(rng);
        if rng == u64::from(u32::MAX) {
            out.extend((0..size).map(|_| self.next_u32() as usize));
        } else if rng < u64::from(u32::MAX) {
            for _ in 0..size {
                let v = loop {
                    let v = u64::from(self.next_u32()) & mask;
                    if v <= rng {
                        break v;
                    }
                };
                out.push(v as usize);
            }
        } else {
            for _ in 0..size {
                let v = loop {
                    let v = self.next_u64() & mask;
                    if v <= rng {
                        break v;
                    }
                };
                out.push(v as usize);
            }
        }
    }

    /// `choice(n, size, replace)` for an integer population `arange(n)` without weights.
    ///
    /// The result is allocated fallibly: a `size` (or `n`) too large to allocate is an error,
    /// never an abort.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `n == 0` and `size > 0`, or when `size > n` without
    /// replacement (NumPy's `ValueError`s); `size` / `n` when the result cannot be allocated.
    pub fn choice(&mut self, n: usize, size: usize, replace: bool) -> Result<Vec<usize>> {
        if n == 0 && size > 0 {
            return Err(Error::invalid(
                "n",
                "non-empty when size > 0",
                "an empty population",
            ));
        }
        if replace {
            let mut out = reserve(size, "size")?;
            self.randint_below_into(n, size, &mut out);
            Ok(out)
        } else {
            if size > n {
                return Err(Error::invalid(
                    "size",
                    format!("<= the population size {n} without replacement"),
                    size.to_string(),
                ));
            }
            let mut p = self.try_permutation(n)?;
            p.truncate(size);
            Ok(p)
        }
    }
}

/// An empty vector with room for `len` indices, or an error naming `name` (no abort).
fn reserve(len: usize, name: &'static str) -> Result<Vec<usize>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::invalid(
            name,
            "small enough to allocate",
            format!("{len} indices of 8 bytes"),
        )
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_mt19937_outputs() {
        // First outputs of MT19937 seeded with init_genrand(5489) (the reference C code's
        // default seed), also NumPy's RandomState(5489).
        let mut r = LegacyRandomState::new(5489);
        let want = [3_499_211_612u32, 581_869_302, 3_890_346_734, 3_586_334_585];
        for w in want {
            assert_eq!(r.next_u32(), w);
        }
        // The 10000th output for seed 5489 is the well-known 4123659995.
        let mut r = LegacyRandomState::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = r.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut r = LegacyRandomState::new(1);
        for n in [0, 1, 2, 3, 17, 1000] {
            let mut p = r.permutation(n);
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn interval_and_randint_stay_in_range() {
        let mut r = LegacyRandomState::new(7);
        for max in [0u64, 1, 2, 3, 7, 8, 1000, u64::from(u32::MAX), 1 << 40] {
            for _ in 0..50 {
                assert!(r.interval(max) <= max);
            }
        }
        assert_eq!(r.randint_below(1, 5), vec![0; 5]);
        assert!(r.randint_below(10, 1000).iter().all(|&v| v < 10));
    }

    #[test]
    fn zero_max_and_unit_population_consume_nothing() {
        let mut a = LegacyRandomState::new(3);
        let mut b = LegacyRandomState::new(3);
        assert_eq!(a.interval(0), 0);
        let _ = a.randint_below(1, 10);
        let _ = a.permutation(1);
        assert_eq!(a.next_u32(), b.next_u32());
    }

    #[test]
    fn choice_errors() {
        let mut r = LegacyRandomState::new(0);
        assert!(r.choice(3, 4, false).is_err());
        assert!(r.choice(0, 1, true).is_err());
        assert_eq!(r.choice(0, 0, false), Ok(vec![]));
        assert_eq!(r.choice(3, 4, true).map(|v| v.len()), Ok(4));
        // Sizes that cannot be allocated are errors, not capacity-overflow panics or aborts.
        assert!(r.choice(10, 1 << 62, true).is_err());
        assert!(r.choice(1 << 62, 3, false).is_err());
        assert!(r.try_permutation(usize::MAX / 2).is_err());
        let mut a = LegacyRandomState::new(3);
        let mut b = LegacyRandomState::new(3);
        assert_eq!(a.try_permutation(50).unwrap(), b.permutation(50));
    }

    #[test]
    fn uniform_in_unit_interval() {
        let mut r = LegacyRandomState::new(123);
        for _ in 0..1000 {
            let u = r.next_double();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
