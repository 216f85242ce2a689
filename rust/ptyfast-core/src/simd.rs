//! Runtime choice of the instruction set for the hot loops.
//!
//! The crate is compiled for baseline x86-64 (SSE2), so that one build runs on any x86-64
//! machine. The few functions that carry the per-pixel work (`multiversion!`) are compiled
//! three times, for baseline, x86-64-v3 (AVX2) and x86-64-v4 (AVX-512), and the widest one the
//! processor supports is chosen at run time.
//!
//! **Results are identical at every level.** Only the vector width changes: Rust never fuses a
//! multiply and an add into an FMA on its own (no fast-math), IEEE division and square root are
//! correctly rounded at any width, and calls into libm (`ln`, `exp`, `sin_cos`) are the same
//! functions. Tests compare the levels bit for bit.
//!
//! `PTYFAST_SIMD=baseline|avx2|avx512` (read once per process) caps the level, for comparisons
//! and for benchmarks; a level the processor lacks is never used.

use std::sync::OnceLock;

/// An instruction-set level, ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// x86-64 baseline (SSE2), or any non-x86 target.
    Baseline,
    /// x86-64-v3: AVX2, FMA, BMI1/2.
    Avx2,
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL on top of v3.
    Avx512,
}

impl Level {
    /// The name `PTYFAST_SIMD` accepts for this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "baseline" | "sse2" | "none" => Some(Level::Baseline),
            "avx2" | "v3" => Some(Level::Avx2),
            "avx512" | "v4" => Some(Level::Avx512),
            _ => None,
        }
    }
}

/// The widest level this processor supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        let v3 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("bmi2")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("popcnt");
        let v4 = v3
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl");
        if v4 {
            return Level::Avx512;
        }
        if v3 {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level the kernels use: [`detected`], capped by `PTYFAST_SIMD` when it names a level.
/// Decided once per process.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("PTYFAST_SIMD")
            .ok()
            .and_then(|s| Level::parse(&s));
        let found = detected();
        cap.map_or(found, |c| c.min(found))
    })
}

#[cfg(test)]
thread_local! {
    /// A per-thread cap for tests, which compare levels within one process.
    static TEST_CAP: std::cell::Cell<Option<Level>> = const { std::cell::Cell::new(None) };
}

/// The level for a call on this thread (tests may cap it per thread).
#[inline]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only x86-64 has levels to pick
pub(crate) fn current() -> Level {
    #[cfg(test)]
    if let Some(cap) = TEST_CAP.with(std::cell::Cell::get) {
        return cap.min(level());
    }
    level()
}

/// Runs `f` with this thread's level capped at `cap`.
#[cfg(test)]
pub(crate) fn with_cap<R>(cap: Level, f: impl FnOnce() -> R) -> R {
    let old = TEST_CAP.with(|c| c.replace(Some(cap)));
    let r = f();
    TEST_CAP.with(|c| c.set(old));
    r
}

/// [`Level::Baseline`] as the `LEVEL` constant of a [`multiversion`] body.
pub(crate) const BASELINE: u8 = 0;
/// [`Level::Avx2`] as the `LEVEL` constant of a [`multiversion`] body.
pub(crate) const AVX2: u8 = 1;
/// [`Level::Avx512`] as the `LEVEL` constant of a [`multiversion`] body.
pub(crate) const AVX512: u8 = 2;

/// Defines a function whose body is compiled for each [`Level`] and dispatched at run time.
///
/// The body is an `#[inline(always)]` inner function; the callees that do the per-pixel work
/// must be `#[inline(always)]` (or generic and inlined) too, since a function compiled on its
/// own keeps the baseline instruction set. In the body, the constant `LEVEL` is the level it
/// is compiled for ([`BASELINE`], [`AVX2`] or [`AVX512`]), so that code written for one level
/// (intrinsics) is compiled into that level's version only.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<const LEVEL: u8>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,\
                    avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
                #[allow(clippy::too_many_arguments)]
                fn v4($($arg: $ty),*) $(-> $ret)? {
                    body::<{ $crate::simd::AVX512 }>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
                #[allow(clippy::too_many_arguments)]
                fn v3($($arg: $ty),*) $(-> $ret)? {
                    body::<{ $crate::simd::AVX2 }>($($arg),*)
                }
                match $crate::simd::current() {
                    // SAFETY: `current()` never exceeds `detected()`, so the processor has
                    // every feature these two functions were compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { v4($($arg),*) },
                    $crate::simd::Level::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            body::<{ $crate::simd::BASELINE }>($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("sse4"), None);
    }

    #[test]
    fn level_never_exceeds_the_processor() {
        assert!(level() <= detected());
        with_cap(Level::Baseline, || assert_eq!(current(), Level::Baseline));
        assert_eq!(current(), level());
    }
}
