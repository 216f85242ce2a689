//! Poisson counts for a block of rates, regime by regime, so that each inner loop is short,
//! branch-free or branch-predictable, and free of calls in its common path.
//!
//! **Which uniforms a rate uses.** The rates are taken in blocks of [`BLOCK`] in order. Within
//! a block, each rate's *first draw* takes uniforms as follows (zero rates take none):
//!
//! * stream v1 ([`PatternRng`]): every faint rate (`0 < λ < 1/8`) in order takes one uniform,
//!   then every rate `1/8 ≤ λ < 32` in order takes two, then every rate `λ ≥ 32` in order takes
//!   two for its first PTRS round;
//! * stream v2 ([`LanesRng`]): the block first draws `2n` uniforms, and rate `i` (in block
//!   order) owns the pair `(U[2i], U[2i+1])`: a faint rate uses `U[2i]`, a tabled rate both, a
//!   PTRS rate both for its first round; unused ones are skipped.
//!
//! Then, from the uniforms that follow, in this order: the faint searches that must restart
//! (a uniform in the ~1e-16 rounding gap of the cumulative sum takes a fresh one; in v1 at the
//! point where it happens, which shifts every later draw; in v2 faint rates in block order,
//! then tabled rates in block order); then PTRS rounds: as long as some round was rejected
//! (it missed the squeeze and failed the exact test), every rate whose round was rejected
//! takes two uniforms for a new round, in block order.
//!
//! Two implementations follow that order. [`reference_block`] does it literally for v1, one
//! regime pass after another. The fast one (`fast_block`) first classifies the block, then:
//!
//! * v1: compacts each regime's rates into a list in block order (`Lists`, with AVX-512
//!   vector compression where the processor has it), so its first draws, which come in regime
//!   order, go straight to the lists, and each regime runs densely over its own rates only;
//! * v2: works word by word (64 rates), so that a word's rates, pairs and candidates stay in
//!   the first-level cache: it loads and classifies the word, draws its keyed pairs (the words
//!   take the block's first `2n` uniforms in order), then runs dense loops over the word that
//!   the compiler vectorises (first PTRS rounds, and faint rates where the word holds many,
//!   are computed for the whole word and kept by mask; a word's few faint rates are visited one
//!   at a time through its bit mask), visits its tabled rates through their bit mask, and
//!   appends the PTRS rounds that missed the squeeze, with their data, to a dense list.
//!   (Lists per regime would need the pairs compacted too, which costs more than it saves.)
//!
//! Table loads stay scalar in both (as vector gathers they are slow on many machines), and
//! every rare case (a faint count above 0, a table window miss, a PTRS round that missed the
//! squeeze) is deferred to short passes in block order. For v1 the fast sampler assumes that
//! no faint search restarts; if one must, it leaves the data untouched and the block is
//! sampled again by [`reference_block`] from the saved generator state, so the two agree in
//! every case (tested, with scripted uniforms that force it).
//!
//! [`PatternRng`]: super::rng::PatternRng
//! [`LanesRng`]: super::rng::LanesRng

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::poisson::{
    faint, faint_quick, faint_search_once, faint_zero_bound, ptrs_rounds, ptrs_verdicts,
    split_rate, tabled, Ptrs, FAINT_MAX_RATE, PTRS_MAX_ROUNDS, PTRS_MIN_RATE,
};
use super::rng::{LanesRng, PatternRng, Uniforms};
use super::tables::{tables, Tables};

/// Rates per block (a 64 × 64 pattern is one block).
pub const BLOCK: usize = 4096;

/// Rates per classification word (one bit each).
const WORD: usize = 64;

/// How a stream hands out the first draws of a block (module docs).
pub trait Sampling: Uniforms {
    /// `true` (v2): rate `i` owns the pair `(U[2i], U[2i + 1])` of the block's first `2n`
    /// uniforms, and a restarted faint search takes its fresh uniform after them. `false`
    /// (v1): the first draws come regime by regime, and a restart happens in the middle of
    /// them (then the reference sampler is needed).
    const KEYED: bool;
}

impl Sampling for PatternRng {
    const KEYED: bool = false;
}

impl Sampling for LanesRng {
    const KEYED: bool = true;
}

/// [`WORD`] rates, counts or roots.
type Word = [f64; WORD];
/// The first-draw pairs of [`WORD`] rates.
type Pairs = [f64; 2 * WORD];
/// Words per block.
const WORDS: usize = BLOCK / WORD;

/// Working memory of the block samplers. Its contents never influence results; one per thread
/// is kept ([`with_scratch`]) so patterns allocate nothing. The per-rate arrays have the fixed
/// size of a block, so positions index them without bounds checks (reduced modulo [`BLOCK`]).
pub struct Scratch {
    /// Rates of the current pattern block, for callers that start from amplitudes.
    pub rates: Vec<f64>,
    /// Per rate (a short block uses a prefix, its last word padded with zero rates): the
    /// rates, replaced by the counts; their regimes; `√λ` (v1); first-draw pairs (v2).
    work: Box<[Word; WORDS]>,
    regime: Box<[[u8; WORD]; WORDS]>,
    slam: Box<[Word; WORDS]>,
    pairs: Box<[Pairs; WORDS]>,
    /// Per word: the bits of its faint, tabled and PTRS rates (v1).
    masks: Box<[[u64; 3]; WORDS]>,
    /// Rare cases of the faint and of the tabled rates (positions, v2).
    slow: [Box<[u32; BLOCK]>; 2],
    /// PTRS rounds in play, densely.
    dense: Dense,
    /// Each regime's rates compacted in block order, with their first draws (v1, at every
    /// instruction-set level).
    lists: Lists,
    /// Buffers of [`reference_block`].
    reference: Dense,
    regime_ref: Vec<u8>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            rates: Vec::new(),
            work: Box::new([[0.0; WORD]; WORDS]),
            regime: Box::new([[0; WORD]; WORDS]),
            slam: Box::new([[0.0; WORD]; WORDS]),
            pairs: Box::new([[0.0; 2 * WORD]; WORDS]),
            masks: Box::new([[0; 3]; WORDS]),
            slow: [Box::new([0; BLOCK]), Box::new([0; BLOCK])],
            dense: Dense::default(),
            lists: Lists::default(),
            reference: Dense::default(),
            regime_ref: Vec::new(),
        }
    }
}

/// PTRS rates in play, stored densely: position, rate, root, `u − ½`, `v`, candidate, fresh
/// uniforms, verdict.
#[derive(Default)]
struct Dense {
    idx: Vec<u32>,
    lam: Vec<f64>,
    slam: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    k: Vec<f64>,
    fresh: Vec<f64>,
    flag: Vec<bool>,
    accept: Vec<bool>,
}

/// Grows `v` to at least `n` entries (zero-filled only when it grows).
fn grow<T: Clone>(v: &mut Vec<T>, n: usize, fill: T) {
    if v.len() < n {
        v.resize(n, fill);
    }
}

impl Dense {
    /// Appends (from `*n` on) the rates of one word whose first PTRS round missed the
    /// squeeze (bits `bits`, word at block position `base`): candidates `k`, rates `lam`,
    /// roots `slam`, first-draw pairs `p`. Room for them was reserved.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn push_misses(
        &mut self,
        n: &mut usize,
        base: usize,
        mut bits: u64,
        k: &Word,
        lam: &Word,
        slam: &Word,
        p: &Pairs,
    ) {
        while bits != 0 {
            let b = bits.trailing_zeros() as usize % WORD;
            bits &= bits - 1;
            let j = *n;
            if let (Some(d), Some(l), Some(s), Some(u), Some(v), Some(kk)) = (
                self.idx.get_mut(j),
                self.lam.get_mut(j),
                self.slam.get_mut(j),
                self.u.get_mut(j),
                self.v.get_mut(j),
                self.k.get_mut(j),
            ) {
                (*d, *l, *s) = ((base + b) as u32, lam[b], slam[b]);
                (*u, *v, *kk) = (p[2 * b] - 0.5, p[2 * b + 1], k[b]);
            }
            *n += 1;
        }
    }

    fn reserve(&mut self, n: usize) {
        grow(&mut self.idx, n, 0);
        for b in [
            &mut self.lam,
            &mut self.slam,
            &mut self.u,
            &mut self.v,
            &mut self.k,
        ] {
            grow(b, n, 0.0);
        }
        grow(&mut self.fresh, 2 * n, 0.0);
        grow(&mut self.flag, n, false);
        grow(&mut self.accept, n, false);
    }
}

/// One regime's rates of a block, compacted in block order, with their first draws: positions,
/// rates, roots (PTRS, when the block holds amplitudes) and uniforms (one per faint rate, a pair
/// per other rate). Each array has [`SLACK`] spare values for full-vector stores.
struct Lists {
    pos: [Box<[u32]>; 3],
    lam: [Box<[f64]>; 3],
    root: Box<[f64]>,
    uni: [Box<[f64]>; 3],
    key: Box<[u32]>,
    extra: Box<[f64]>,
    flag: Box<[bool]>,
    rare: Box<[u32]>,
    miss: Box<[u32]>,
}

/// Spare values at the end of each list (a compressed vector store writes 8).
const SLACK: usize = 16;

impl Default for Lists {
    fn default() -> Self {
        let f = |n: usize| vec![0.0; n + SLACK].into_boxed_slice();
        let u = |n: usize| vec![0u32; n + SLACK].into_boxed_slice();
        Lists {
            pos: [u(BLOCK), u(BLOCK), u(BLOCK)],
            lam: [f(BLOCK), f(BLOCK), f(BLOCK)],
            root: f(BLOCK),
            uni: [f(BLOCK), f(2 * BLOCK), f(2 * BLOCK)],
            key: u(BLOCK),
            extra: f(BLOCK),
            flag: vec![false; BLOCK + SLACK].into_boxed_slice(),
            rare: u(BLOCK),
            miss: u(BLOCK),
        }
    }
}

impl Lists {
    /// Compacts the `words` of a block by regime (`masks`): positions, rates and PTRS roots
    /// (from `roots` if given), each list in block order. Returns the list lengths. With
    /// AVX-512 vector compression, else one rate at a time (the same lists).
    #[inline(always)]
    fn collect(
        &mut self,
        words: &[Word],
        masks: &[[u64; 3]],
        roots: Option<&[Word]>,
    ) -> [usize; 3] {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::current() == crate::simd::Level::Avx512 {
            // SAFETY: the processor has these features (`current()` never exceeds
            // `detected()`, which checks them); callers pass one block's words (at most
            // BLOCK rates) and, if any, their roots word for word.
            debug_assert!(
                words.len() * WORD <= BLOCK && roots.is_none_or(|r| r.len() == words.len())
            );
            return unsafe { self.collect_avx512(words, masks, roots) };
        }
        self.collect_scalar(words, masks, roots)
    }

    /// Compacts one rate at a time (any processor).
    #[inline(always)]
    fn collect_scalar(
        &mut self,
        words: &[Word],
        masks: &[[u64; 3]],
        roots: Option<&[Word]>,
    ) -> [usize; 3] {
        let mut n = [0usize; 3];
        for (wi, (w, m)) in words.iter().zip(masks).enumerate() {
            for r in 0..3 {
                let mut bits = m[r];
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize % WORD;
                    bits &= bits - 1;
                    let j = n[r] % BLOCK;
                    self.pos[r][j] = (wi * WORD + b) as u32;
                    self.lam[r][j] = w[b];
                    if r == 2 {
                        if let Some(rt) = roots {
                            self.root[j] = rt[wi][b];
                        }
                    }
                    n[r] += 1;
                }
            }
        }
        n
    }

    /// [`Lists::collect_scalar`] eight rates at a time: each regime's rates of an 8-rate
    /// chunk are compressed into one vector, stored whole at the list's end (the [`SLACK`]
    /// takes the unused lanes).
    ///
    /// # Safety
    /// The processor has AVX-512 F/BW/CD/DQ/VL, AVX2, FMA, BMI1/2, LZCNT and POPCNT; `words`
    /// holds at most [`BLOCK`] rates (so no list grows past `BLOCK` and every store stays in
    /// bounds); `roots`, if given, is as long as `words`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt,\
        avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
    unsafe fn collect_avx512(
        &mut self,
        words: &[Word],
        masks: &[[u64; 3]],
        roots: Option<&[Word]>,
    ) -> [usize; 3] {
        use std::arch::x86_64::*;
        let mut n = [0usize; 3];
        let step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (wi, (w, m)) in words.iter().zip(masks).enumerate() {
            for c in 0..WORD / 8 {
                let q = wi * WORD + 8 * c;
                let lam = _mm512_loadu_pd(w.as_ptr().add(8 * c));
                let idx = _mm256_add_epi32(step, _mm256_set1_epi32(q as i32));
                for r in 0..3 {
                    let k = (m[r] >> (8 * c)) as u8;
                    if k == 0 {
                        continue;
                    }
                    let j = n[r];
                    // j ≤ BLOCK − popcount(k) and every list has SLACK ≥ 8 spare values.
                    _mm512_storeu_pd(
                        self.lam[r].as_mut_ptr().add(j),
                        _mm512_maskz_compress_pd(k, lam),
                    );
                    _mm256_storeu_si256(
                        self.pos[r].as_mut_ptr().add(j).cast(),
                        _mm256_maskz_compress_epi32(k, idx),
                    );
                    if r == 2 {
                        if let Some(rt) = roots {
                            let v = _mm512_loadu_pd(rt[wi].as_ptr().add(8 * c));
                            _mm512_storeu_pd(
                                self.root.as_mut_ptr().add(j),
                                _mm512_maskz_compress_pd(k, v),
                            );
                        }
                    }
                    n[r] = j + k.count_ones() as usize;
                }
            }
        }
        n
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is already in use).
#[inline(always)]
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Replaces every rate of `x` by an exact Poisson count drawn from `rng` (see the module
/// docs for the order). Negative, NaN or infinite rates become NaN; zero becomes 0.
#[inline(always)]
pub fn counts_in_place<U: Sampling>(x: &mut [f64], rng: &mut U, s: &mut Scratch) {
    for block in x.chunks_mut(BLOCK) {
        counts_block(Io::Rates(block), rng, s);
    }
}

/// Replaces every amplitude `A` of `a` by `sqrt(K)`, `K` the count [`counts_in_place`] draws
/// for the rate `A²` (formed exactly in `f64`), rounded once to `f32`. `A` serves as the exact
/// `√λ`. A negative or NaN amplitude becomes NaN.
#[inline(always)]
pub fn observe_in_place<U: Sampling>(a: &mut [f32], rng: &mut U, s: &mut Scratch) {
    for block in a.chunks_mut(BLOCK) {
        counts_block(Io::Amplitudes(block), rng, s);
    }
}

/// [`observe_in_place`] from `src` into `dst` (of the same length; a longer `dst` keeps its
/// tail): the same values, without first copying the amplitudes into place.
#[inline(always)]
pub fn observe_to<U: Sampling>(
    src: &[f32],
    dst: &mut [MaybeUninit<f32>],
    rng: &mut U,
    s: &mut Scratch,
) {
    for (a, o) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        counts_block(Io::AmplitudesTo(a, o), rng, s);
    }
}

/// The data of one block: rates replaced by counts, amplitudes replaced by observed ones, or
/// amplitudes observed into another slice (of the same length).
enum Io<'a> {
    Rates(&'a mut [f64]),
    Amplitudes(&'a mut [f32]),
    AmplitudesTo(&'a [f32], &'a mut [MaybeUninit<f32>]),
}

impl Io<'_> {
    fn len(&self) -> usize {
        match self {
            Io::Rates(x) => x.len(),
            Io::Amplitudes(a) => a.len(),
            Io::AmplitudesTo(a, o) => a.len().min(o.len()),
        }
    }

    /// The rates read, if the block holds rates (else empty).
    #[inline(always)]
    fn rates(&self) -> &[f64] {
        match self {
            Io::Rates(x) => x,
            _ => &[],
        }
    }

    /// The amplitudes read, if the block holds amplitudes.
    #[inline(always)]
    fn amplitudes(&self) -> Option<&[f32]> {
        match self {
            Io::Rates(_) => None,
            Io::Amplitudes(a) => Some(a),
            Io::AmplitudesTo(a, _) => Some(a),
        }
    }

    /// Writes the block's counts (`A`'s square roots for amplitudes).
    #[inline(always)]
    fn write(&mut self, counts: &[f64]) {
        match self {
            Io::Rates(x) => {
                if let Some(c) = counts.get(..x.len()) {
                    x.copy_from_slice(c);
                }
            }
            Io::Amplitudes(a) => write_roots(as_uninit(a), counts),
            Io::AmplitudesTo(_, o) => write_roots(o, counts),
        }
    }
}

/// The rate of an amplitude: `A²` exactly in `f64`, NaN for a negative or NaN amplitude (whose
/// square would be a valid rate).
#[inline(always)]
fn rate_of(a: f32) -> f64 {
    let a = f64::from(a);
    if a >= 0.0 {
        a * a
    } else {
        f64::NAN
    }
}

/// `out = sqrt(counts)` rounded to `f32`. Below 2^24 every count is exact in `f32`, and the
/// correctly rounded `f32` square root equals the `f64` one rounded to `f32` (double rounding
/// is innocuous for square roots when 53 ≥ 2·24 + 2), so such words take the cheaper
/// single-precision path with identical results.
/// Writes every value of `out` (`counts` is at least as long).
#[inline(always)]
fn write_roots(out: &mut [MaybeUninit<f32>], counts: &[f64]) {
    const EXACT_F32: f64 = 16_777_216.0; // 2^24
    for (o, c) in out.chunks_mut(WORD).zip(counts.chunks(WORD)) {
        if c.iter().fold(true, |small, &k| small & (k < EXACT_F32)) {
            for (a, &k) in o.iter_mut().zip(c) {
                a.write((k as f32).sqrt());
            }
        } else {
            for (a, &k) in o.iter_mut().zip(c) {
                a.write(k.sqrt() as f32);
            }
        }
    }
}

/// `a` as a slice of possibly uninitialised values, for code that only writes through it.
#[inline(always)]
pub(super) fn as_uninit(a: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the borrow is exclusive. Every
    // write through the result stores an initialised value (`MaybeUninit::write`), so `a`
    // stays initialised when the borrow ends.
    unsafe { &mut *(std::ptr::from_mut(a) as *mut [MaybeUninit<f32>]) }
}

/// One block (at most [`BLOCK`] values): the fast sampler, or the reference one in its rare
/// fallback case (v1 only).
#[inline(always)]
fn counts_block<U: Sampling>(mut io: Io<'_>, rng: &mut U, s: &mut Scratch) {
    if U::KEYED {
        fast_block(&mut io, rng, s);
        return;
    }
    let saved = rng.clone();
    if !fast_block(&mut io, rng, s) {
        *rng = saved;
        let mut rates = std::mem::take(&mut s.rates);
        rates.clear();
        if let Some(a) = io.amplitudes() {
            rates.extend(a.iter().map(|&v| rate_of(v)));
        }
        match io {
            Io::Rates(x) => reference_block(x, None, rng, s),
            Io::Amplitudes(a) => {
                reference_block(&mut rates, Some(a), rng, s);
                write_roots(as_uninit(a), &rates);
            }
            Io::AmplitudesTo(a, o) => {
                reference_block(&mut rates, Some(a), rng, s);
                write_roots(o, &rates);
            }
        }
        s.rates = rates;
    }
}

/// Writes `v` at `list[*n]` and advances `n` if `keep`: branch-free compaction.
#[inline(always)]
fn push<T>(list: &mut [T], n: &mut usize, v: T, keep: bool) {
    if let Some(slot) = list.get_mut(*n) {
        *slot = v;
    }
    *n += usize::from(keep);
}

/// The regimes of the module docs, as stored in [`Scratch`]. A rate in none of the three (zero
/// or invalid) takes no uniform.
mod regime {
    pub const NONE: u8 = 0;
    pub const FAINT: u8 = 1;
    pub const TABLED: u8 = 2;
    pub const PTRS: u8 = 3;
}

/// `(faint, tabled, ptrs)` membership of a rate, and its count if it is in none of them: +0 for
/// a zero (also −0), NaN for a negative or non-finite rate.
#[inline(always)]
fn classify(lam: f64) -> (bool, bool, bool, f64) {
    let is_faint = lam > 0.0 && lam < FAINT_MAX_RATE;
    let is_tabled = (FAINT_MAX_RATE..PTRS_MIN_RATE).contains(&lam);
    let is_ptrs = (PTRS_MIN_RATE..f64::INFINITY).contains(&lam);
    let none = if lam == 0.0 { 0.0 } else { f64::NAN };
    (is_faint, is_tabled, is_ptrs, none)
}

/// Pushes `base + b` for every set bit `b` of `bits` onto `list` (from `*n` on).
#[inline(always)]
fn push_bits(list: &mut [u32], n: &mut usize, base: usize, mut bits: u64) {
    while bits != 0 {
        push(
            list,
            n,
            (base + bits.trailing_zeros() as usize) as u32,
            true,
        );
        bits &= bits - 1;
    }
}

/// A faint count for the slow passes: the polynomial bounds where they decide it (inline, as
/// most counts of 1 are), else the exact search; where that must restart, v2 draws the fresh
/// uniform and v1 gives up (`None`: the caller falls back to the reference sampler).
#[inline(always)]
fn faint_slow<U: Sampling>(rng: &mut U, r: f64, u: f64) -> Option<f64> {
    if U::KEYED {
        Some(faint(rng, r, u))
    } else if u < faint_zero_bound(r) {
        Some(0.0)
    } else {
        faint_search_once(r, u)
    }
}

/// A rare case of the slow passes: a tabled rate's count from its pair `u` (the table, then
/// its faint part as [`faint_slow`]) if `tabled`, else a faint rate's from `u[0]`.
#[inline(always)]
fn rare_count<U: Sampling>(rng: &mut U, lam: f64, u: [f64; 2], tabled: bool) -> Option<f64> {
    if tabled {
        let (row, r) = split_rate(lam);
        faint_slow(rng, r, u[1]).map(|e| tables().sample(row, u[0]) + e)
    } else {
        faint_slow(rng, lam, u[0])
    }
}

/// Classifies one word of rates: the regime bytes, the settled counts of zero and invalid
/// rates, and the three regime masks.
#[inline(always)]
fn classify_word(w: &mut Word, r: &mut [u8; WORD]) -> [u64; 3] {
    for (wi, ri) in w.iter_mut().zip(r.iter_mut()) {
        let lam = *wi;
        let (is_f, is_t, is_p, none) = classify(lam);
        *ri = u8::from(is_f) * regime::FAINT
            + u8::from(is_t) * regime::TABLED
            + u8::from(is_p) * regime::PTRS;
        *wi = if is_f | is_t | is_p { lam } else { none };
    }
    [
        byte_mask(r, regime::FAINT),
        byte_mask(r, regime::TABLED),
        byte_mask(r, regime::PTRS),
    ]
}

/// Bit `b` set where `r[b] == v`.
#[inline(always)]
fn byte_mask(r: &[u8; WORD], v: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut m = 0u64;
        for (q, c) in r.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86-64; `c` holds 16 bytes.
            let bits = unsafe {
                let x = _mm_loadu_si128(c.as_ptr().cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(v as i8)))
            };
            m |= u64::from(bits as u16) << (16 * q);
        }
        m
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        r.iter()
            .enumerate()
            .fold(0, |m, (b, &ri)| m | u64::from(ri == v) << b)
    }
}

/// Faint rates of one word: `k = 0` where the uniform is below the polynomial bound; the bits
/// of the others. (Deciding `k = 1` here too, as the tabled rates do, costs more per word than
/// the ~`λ` of faint rates it would keep from the slow pass.)
#[inline(always)]
fn faint_word(w: &mut Word, r: &[u8; WORD], p: &Pairs) -> u64 {
    let mut rare = 0u64;
    for (b, ((wi, &ri), pr)) in w.iter_mut().zip(r).zip(p.chunks_exact(2)).enumerate() {
        let is_f = ri == regime::FAINT;
        let zero = pr[0] < faint_zero_bound(*wi);
        *wi = if is_f & zero { 0.0 } else { *wi };
        rare |= u64::from(is_f & !zero) << b;
    }
    rare
}

/// Faint rates per word from which [`faint_word`] runs densely over the word.
const DENSE_FAINT: u32 = 12;

/// [`faint_word`] one rate at a time (the bits `bits` of its faint rates), which here also
/// settles most counts of 1 ([`faint_quick`]; one rate's test is cheaper than the slow pass).
#[inline(always)]
fn faint_word_sparse(w: &mut Word, p: &Pairs, bits: u64) -> u64 {
    let mut rare = 0u64;
    let mut left = bits;
    while left != 0 {
        let b = left.trailing_zeros() as usize % WORD;
        left &= left - 1;
        let (k, decided) = faint_quick(w[b], p[2 * b]);
        w[b] = if decided { k } else { w[b] };
        rare |= u64::from(!decided) << b;
    }
    rare
}

/// First PTRS rounds of one word, computed for every rate and kept for the PTRS ones: the
/// bits of those that missed the squeeze. `sl` holds the roots if `have_roots`, and receives
/// them; `c` receives the rates.
#[inline(always)]
fn ptrs_word<const HW: bool>(
    w: &mut Word,
    r: &[u8; WORD],
    p: &Pairs,
    sl: &mut Word,
    c: &mut Word,
    have_roots: bool,
) -> u64 {
    let mut miss = 0u64;
    let lanes = w.iter_mut().zip(r).zip(p.chunks_exact(2));
    for (b, (((wi, &ri), pr), (si, ci))) in lanes.zip(sl.iter_mut().zip(c.iter_mut())).enumerate() {
        let is_p = ri == regime::PTRS;
        let l = *wi;
        let s = if have_roots { *si } else { l.sqrt() };
        let (k, squeeze) = Ptrs::with_root_on::<HW>(l, s).round_on::<HW>(pr[0] - 0.5, pr[1]);
        *wi = if is_p { k } else { l };
        (*si, *ci) = (s, l);
        miss |= u64::from(is_p & !squeeze) << b;
    }
    miss
}

/// Tabled rates (`1/8 ≤ λ < 32`) of one word (bits `bits`): the table window and the faint
/// part, settled without branches in ~95 % of cases; returns the bits of the others. In a word
/// with many tabled rates the arithmetic (guide key, faint part) first runs densely over the
/// word, where it vectorises (lanes that are not tabled compute values never read); the table
/// loads stay scalar on purpose: as vector gathers they would be slow on many machines.
#[inline(always)]
fn tabled_word(w: &mut Word, p: &Pairs, bits: u64, t: &Tables) -> u64 {
    if bits.count_ones() < DENSE_TABLED {
        return tabled_word_sparse(w, p, bits, t);
    }
    let mut keys = [0u32; WORD];
    let mut extra = [0.0; WORD];
    let mut decided = [false; WORD];
    let lanes = w.iter().zip(p.chunks_exact(2)).zip(keys.iter_mut());
    for (((&lam, pr), key), (e, d)) in lanes.zip(extra.iter_mut().zip(decided.iter_mut())) {
        let (row, r) = split_rate(lam);
        *key = Tables::key(row, pr[0]);
        (*e, *d) = faint_quick(r, pr[1]);
    }
    let mut rare = 0u64;
    let mut left = bits;
    while left != 0 {
        let b = left.trailing_zeros() as usize % WORD;
        left &= left - 1;
        let (k, found) = t.window(keys[b], p[2 * b]);
        let settled = found & decided[b];
        w[b] = if settled {
            f64::from(k) + extra[b]
        } else {
            w[b]
        };
        rare |= u64::from(!settled) << b;
    }
    rare
}

/// Tabled rates per word from which [`tabled_word`] computes the arithmetic densely.
const DENSE_TABLED: u32 = 8;

/// [`tabled_word`] one rate at a time.
#[inline(always)]
fn tabled_word_sparse(w: &mut Word, p: &Pairs, bits: u64, t: &Tables) -> u64 {
    let mut rare = 0u64;
    let mut left = bits;
    while left != 0 {
        let b = left.trailing_zeros() as usize % WORD;
        left &= left - 1;
        let lam = w[b];
        let (row, r) = split_rate(lam);
        let (k, found) = t.window(Tables::key(row, p[2 * b]), p[2 * b]);
        let (e, decided) = faint_quick(r, p[2 * b + 1]);
        let settled = found & decided;
        w[b] = if settled { f64::from(k) + e } else { lam };
        rare |= u64::from(!settled) << b;
    }
    rare
}

/// Loads word `wi` of the block (`n` values) into `w` (rates; zeros past `n`) and, for
/// amplitudes, their `f64` values into `sw`.
#[inline(always)]
fn load_word(io: &Io<'_>, wi: usize, n: usize, w: &mut Word, sw: &mut Word) {
    let range = wi * WORD..((wi + 1) * WORD).min(n);
    match io.amplitudes() {
        None => {
            let xs = io.rates().get(range).unwrap_or_default();
            if xs.len() == WORD {
                w.copy_from_slice(xs);
            } else {
                *w = [0.0; WORD];
                w[..xs.len()].copy_from_slice(xs);
            }
        }
        Some(a) => {
            let xs = a.get(range).unwrap_or_default();
            if let Ok(xs) = <&[f32; WORD]>::try_from(xs) {
                for ((wb, sb), &ab) in w.iter_mut().zip(sw.iter_mut()).zip(xs) {
                    (*wb, *sb) = (rate_of(ab), f64::from(ab));
                }
            } else {
                (*w, *sw) = ([0.0; WORD], [0.0; WORD]);
                for ((wb, sb), &ab) in w.iter_mut().zip(sw.iter_mut()).zip(xs) {
                    (*wb, *sb) = (rate_of(ab), f64::from(ab));
                }
            }
        }
    }
}

/// The fast sampler of the module docs. Returns `false`, with the data untouched and `rng` in an
/// unspecified state, where a v1 faint search needed a fresh uniform; then the caller restores
/// the generator and runs [`reference_block`].
#[inline(always)]
fn fast_block<U: Sampling>(io: &mut Io<'_>, rng: &mut U, s: &mut Scratch) -> bool {
    if U::KEYED {
        keyed_block(io, rng, s);
        return true;
    }
    let n = io.len().min(BLOCK);
    let have_roots = io.amplitudes().is_some();
    let words = n.div_ceil(WORD);
    let Scratch {
        work: work_all,
        regime: reg,
        slam,
        masks,
        dense,
        lists,
        ..
    } = s;
    let work = &mut work_all[..words];
    let (reg, masks) = (&mut reg[..words], &mut masks[..words]);

    let mut counts = [0usize; 3];
    for (wi, ((w, r), m)) in work
        .iter_mut()
        .zip(reg.iter_mut())
        .zip(masks.iter_mut())
        .enumerate()
    {
        load_word(io, wi, n, w, &mut slam[wi]);
        *m = classify_word(w, r);
        for (c, bits) in counts.iter_mut().zip(m.iter()) {
            *c += bits.count_ones() as usize;
        }
    }

    // v1: its first draws are in regime order, so they go straight into the lists.
    let roots = have_roots.then_some(&slam[..]);
    let got = lists.collect(&work_all[..words], masks, roots);
    debug_assert_eq!(got, counts);
    let [nf, nt, np] = counts;
    rng.fill(lists.uni[0].get_mut(..nf).unwrap_or_default());
    rng.fill(lists.uni[1].get_mut(..2 * nt).unwrap_or_default());
    rng.fill(lists.uni[2].get_mut(..2 * np).unwrap_or_default());
    let work = work_all.as_flattened_mut();
    if !sample_lists(work, counts, have_roots, rng, lists, dense) {
        return false;
    }
    io.write(work);
    true
}

/// The fast sampler for a keyed stream (v2), word by word (module docs): each word is loaded,
/// classified and given its pairs (the stream's next `2·len` uniforms: the words take them in
/// order, so rate `i` owns `(U[2i], U[2i + 1])`), and its faint, first PTRS and tabled rates
/// are settled while the word is in cache. Only then, in block order, the rare cases (faint,
/// then tabled) and the PTRS rounds that missed the squeeze, which may draw fresh uniforms.
#[inline(always)]
fn keyed_block<U: Sampling>(io: &mut Io<'_>, rng: &mut U, s: &mut Scratch) {
    let n = io.len().min(BLOCK);
    let have_roots = io.amplitudes().is_some();
    let words = n.div_ceil(WORD);
    let Scratch {
        work: work_all,
        regime: reg,
        pairs: pairs_all,
        slow: [fslow, tslow],
        dense,
        ..
    } = s;
    let t = tables();
    let hw = hw_floor();
    dense.reserve(n);
    let (mut nsf, mut nst, mut nl) = (0usize, 0usize, 0usize);
    let (mut sw, mut lw) = ([0.0; WORD], [0.0; WORD]);
    let lanes = work_all
        .iter_mut()
        .zip(reg.iter_mut())
        .zip(pairs_all.iter_mut());
    for (wi, ((w, r), p)) in lanes.take(words).enumerate() {
        load_word(io, wi, n, w, &mut sw);
        let m = classify_word(w, r);
        let len = (n - wi * WORD).min(WORD);
        rng.fill(p.get_mut(..2 * len).unwrap_or_default());
        if m[0] != 0 {
            let rare = if m[0].count_ones() < DENSE_FAINT {
                faint_word_sparse(w, p, m[0])
            } else {
                faint_word(w, r, p)
            };
            push_bits(&mut fslow[..], &mut nsf, wi * WORD, rare);
        }
        if m[2] != 0 {
            // (One rate at a time costs ~8× a dense lane here: no gain at any count.)
            let miss = if hw {
                ptrs_word::<true>(w, r, p, &mut sw, &mut lw, have_roots)
            } else {
                ptrs_word::<false>(w, r, p, &mut sw, &mut lw, have_roots)
            };
            dense.push_misses(&mut nl, wi * WORD, miss, w, &lw, &sw, p);
        }
        if m[1] != 0 {
            let rare = tabled_word(w, p, m[1], t);
            push_bits(&mut tslow[..], &mut nst, wi * WORD, rare);
        }
    }

    // The rare cases in block order: faint counts above 0, then tabled rates.
    let flat_pairs = pairs_all.as_flattened();
    let work = work_all.as_flattened_mut();
    let rare = fslow.iter().take(nsf).map(|&i| (i, false));
    for (i, is_tabled) in rare.chain(tslow.iter().take(nst).map(|&i| (i, true))) {
        let i = i as usize;
        let (Some(wi), Some(pr)) = (work.get_mut(i), flat_pairs.get(2 * i..2 * i + 2)) else {
            continue;
        };
        if let Some(k) = rare_count(rng, *wi, [pr[0], pr[1]], is_tabled) {
            *wi = k;
        }
    }

    // PTRS rounds that missed the squeeze, gathered densely in block order.
    ptrs_settle(work, nl, rng, dense);
    io.write(work);
}

/// First PTRS rounds over a list: rates `lp`, pairs `up`; roots `rt` (read if `have_roots`,
/// else computed and stored); candidates `kp`; squeeze verdicts `sq`.
#[inline(always)]
fn first_rounds<const HW: bool>(
    lp: &[f64],
    up: &[f64],
    rt: &mut [f64],
    kp: &mut [f64],
    sq: &mut [bool],
    have_roots: bool,
) {
    let lanes = lp.iter().zip(up.chunks_exact(2)).zip(rt.iter_mut());
    for (((&x, pr), s), (k, f)) in lanes.zip(kp.iter_mut().zip(sq.iter_mut())) {
        let sl = if have_roots { *s } else { x.sqrt() };
        let (kk, squeeze) = Ptrs::with_root_on::<HW>(x, sl).round_on::<HW>(pr[0] - 0.5, pr[1]);
        (*s, *k, *f) = (sl, kk, squeeze);
    }
}

/// Whether the floors of the PTRS rounds may use the processor's rounding instruction: at
/// x86-64-v3 and up, where the hot loops are compiled with it ([`crate::simd`]).
#[inline(always)]
fn hw_floor() -> bool {
    crate::simd::current() >= crate::simd::Level::Avx2
}

/// The fast sampler over per-regime lists (same draws, same order as the word passes): faint,
/// tabled and first PTRS rounds densely over their lists, results to `work` by position; then
/// the rare cases (faint counts above 0, then tabled misses, each in block order) and the PTRS
/// rounds that missed the squeeze. `false` where a v1 faint search must restart.
#[inline(always)]
fn sample_lists<U: Sampling>(
    work: &mut [f64],
    [nf, nt, np]: [usize; 3],
    have_roots: bool,
    rng: &mut U,
    l: &mut Lists,
    dense: &mut Dense,
) -> bool {
    let Lists {
        pos,
        lam,
        root,
        uni,
        key,
        extra,
        flag,
        rare,
        miss,
    } = l;
    let mut nr = 0usize;
    // Faint: k = 0 below the bound; the others to the rare list.
    {
        let (pf, lf, uf) = (&pos[0][..nf], &lam[0][..nf], &uni[0][..nf]);
        for ((f, &x), &u) in flag[..nf].iter_mut().zip(lf).zip(uf) {
            *f = u < faint_zero_bound(x);
        }
        for (j, (&p, &f)) in pf.iter().zip(&flag[..nf]).enumerate() {
            if let Some(w) = work.get_mut(p as usize) {
                *w = if f { 0.0 } else { *w };
            }
            push(&mut rare[..], &mut nr, j as u32, !f);
        }
    }
    let nrf = nr;
    // Tabled: the guide key and the faint part densely, the table window per rate.
    {
        let (pt, lt, ut) = (&pos[1][..nt], &lam[1][..nt], &uni[1][..2 * nt]);
        let lanes = lt.iter().zip(ut.chunks_exact(2)).zip(key[..nt].iter_mut());
        for (((&x, pr), k), (e, d)) in lanes.zip(extra[..nt].iter_mut().zip(flag[..nt].iter_mut()))
        {
            let (row, r) = split_rate(x);
            *k = Tables::key(row, pr[0]);
            (*e, *d) = faint_quick(r, pr[1]);
        }
        let t = tables();
        for (j, (((&p, pr), &k), (&e, &d))) in pt
            .iter()
            .zip(ut.chunks_exact(2))
            .zip(&key[..nt])
            .zip(extra[..nt].iter().zip(&flag[..nt]))
            .enumerate()
        {
            let (kk, found) = t.window(k, pr[0]);
            let settled = found & d;
            if let Some(w) = work.get_mut(p as usize) {
                *w = if settled { f64::from(kk) + e } else { *w };
            }
            push(&mut rare[..], &mut nr, j as u32, !settled);
        }
    }
    // First PTRS rounds; those that missed the squeeze go densely to the settling passes.
    dense.reserve(np);
    let mut nl = 0usize;
    {
        let (pp, lp, up, rt) = (
            &pos[2][..np],
            &lam[2][..np],
            &uni[2][..2 * np],
            &mut root[..np],
        );
        let (kp, sq) = (&mut extra[..np], &mut flag[..np]);
        if hw_floor() {
            first_rounds::<true>(lp, up, rt, kp, sq, have_roots);
        } else {
            first_rounds::<false>(lp, up, rt, kp, sq, have_roots);
        }
        // Results by position; the list indices of the rounds that missed, branch-free.
        let mut nm = 0usize;
        for (j, ((&p, &k), &f)) in pp.iter().zip(kp.iter()).zip(sq.iter()).enumerate() {
            if let Some(w) = work.get_mut(p as usize) {
                *w = k;
            }
            push(&mut miss[..], &mut nm, j as u32, !f);
        }
        for &j in miss.iter().take(nm) {
            let j = j as usize;
            if let (Some(d), Some(&p), Some(&x), Some(&s), Some(pr), Some(&k)) = (
                dense.idx.get_mut(nl),
                pp.get(j),
                lp.get(j),
                rt.get(j),
                up.get(2 * j..2 * j + 2),
                kp.get(j),
            ) {
                *d = p;
                (dense.lam[nl], dense.slam[nl], dense.k[nl]) = (x, s, k);
                (dense.u[nl], dense.v[nl]) = (pr[0] - 0.5, pr[1]);
                nl += 1;
            }
        }
    }
    // The rare cases in block order: faint counts above 0, then tabled rates.
    for (i, &j) in rare[..nr].iter().enumerate() {
        let j = j as usize % BLOCK;
        let (p, count) = if i < nrf {
            (pos[0][j], faint_slow(rng, lam[0][j], uni[0][j]))
        } else {
            let u = [uni[1][2 * j], uni[1][2 * j + 1]];
            (pos[1][j], rare_count(rng, lam[1][j], u, true))
        };
        match (count, work.get_mut(p as usize)) {
            (Some(k), Some(w)) => *w = k,
            (Some(_), None) => {}
            (None, _) => return false,
        }
    }
    ptrs_settle(work, nl, rng, dense);
    true
}

/// Settles PTRS rounds that missed the squeeze (`d[..n]`, in block order): the exact test,
/// then a new round for every rate whose round it rejected, in order, until all are accepted.
/// Results go to `out` at each rate's position.
#[inline(always)]
fn ptrs_settle<U: Uniforms>(out: &mut [f64], n: usize, rng: &mut U, d: &mut Dense) {
    if hw_floor() {
        ptrs_settle_on::<true, U>(out, n, rng, d);
    } else {
        ptrs_settle_on::<false, U>(out, n, rng, d);
    }
}

/// [`ptrs_settle`], its floors taken by [`floor_on`](super::poisson::floor_on)`::<HW>`.
#[inline(always)]
fn ptrs_settle_on<const HW: bool, U: Uniforms>(
    out: &mut [f64],
    mut n: usize,
    rng: &mut U,
    d: &mut Dense,
) {
    let Dense {
        idx,
        lam,
        slam,
        u,
        v,
        k,
        fresh,
        flag,
        accept,
    } = d;
    // Round 1 was drawn by the caller.
    for round in 1..=PTRS_MAX_ROUNDS {
        if n == 0 {
            return;
        }
        // The exact test; the library logarithm only where the bracket is too wide.
        ptrs_verdicts::<HW>(
            &lam[..n],
            &slam[..n],
            &u[..n],
            &v[..n],
            &k[..n],
            &mut flag[..n],
            &mut accept[..n],
        );
        let mut m = 0usize;
        for j in 0..n {
            let ok = if flag[j] {
                accept[j]
            } else {
                Ptrs::with_root(lam[j], slam[j]).exact_accept(k[j], u[j], v[j])
            };
            (idx[m], lam[m], slam[m]) = (idx[j], lam[j], slam[j]);
            m += usize::from(!ok);
        }
        if m == 0 {
            return;
        }
        if round == PTRS_MAX_ROUNDS {
            for &i in idx.iter().take(m) {
                if let Some(o) = out.get_mut(i as usize) {
                    *o = f64::NAN;
                }
            }
            return;
        }
        // A new round for each rejected rate, in order; keep those that miss the squeeze.
        let fresh = &mut fresh[..2 * m];
        rng.fill(fresh);
        n = 0;
        for j in 0..m {
            let (uu, vv) = (fresh[2 * j] - 0.5, fresh[2 * j + 1]);
            let (kj, squeeze) = Ptrs::with_root_on::<HW>(lam[j], slam[j]).round_on::<HW>(uu, vv);
            if let Some(o) = out.get_mut(idx[j] as usize) {
                *o = kj;
            }
            (idx[n], lam[n], slam[n], u[n], v[n], k[n]) = (idx[j], lam[j], slam[j], uu, vv, kj);
            n += usize::from(!squeeze);
        }
    }
}

/// The module docs' order, literally: a pass per regime over the whole block, then PTRS
/// rounds. The fallback of the fast sampler and its reference in tests.
#[inline(never)]
pub(super) fn reference_block<U: Uniforms>(
    x: &mut [f64],
    roots: Option<&[f32]>,
    rng: &mut U,
    s: &mut Scratch,
) {
    grow(&mut s.regime_ref, x.len(), 0);
    s.reference.reserve(x.len());
    let regimes = s.regime_ref.get_mut(..x.len()).unwrap_or_default();
    for (xi, r) in x.iter_mut().zip(regimes.iter_mut()) {
        let lam = *xi;
        let (is_f, is_t, is_p, none) = classify(lam);
        *r = u8::from(is_f) * regime::FAINT
            + u8::from(is_t) * regime::TABLED
            + u8::from(is_p) * regime::PTRS;
        *xi = if *r == regime::NONE { none } else { lam };
    }
    for (xi, &r) in x.iter_mut().zip(regimes.iter()) {
        if r == regime::FAINT {
            let u = rng.next_f64();
            *xi = faint(rng, *xi, u);
        }
    }
    let t = tables();
    for (xi, &r) in x.iter_mut().zip(regimes.iter()) {
        if r == regime::TABLED {
            let u = [rng.next_f64(), rng.next_f64()];
            *xi = tabled(rng, t, *xi, u);
        }
    }
    let mut np = 0usize;
    for (i, &r) in regimes.iter().enumerate() {
        push(&mut s.reference.idx, &mut np, i as u32, r == regime::PTRS);
    }
    reference_ptrs(x, roots, np, rng, &mut s.reference);
}

/// The PTRS rounds of [`reference_block`] over `s.idx[..np]`.
fn reference_ptrs<U: Uniforms>(
    x: &mut [f64],
    roots: Option<&[f32]>,
    np: usize,
    rng: &mut U,
    d: &mut Dense,
) {
    let Dense {
        idx,
        lam,
        slam,
        u: us,
        v: vs,
        k,
        flag,
        accept,
        ..
    } = d;
    let mut uv = vec![(0.0, 0.0); np];
    for (j, &i) in idx.iter().take(np).enumerate() {
        let l = x.get(i as usize).copied().unwrap_or(f64::NAN);
        let r = match roots.and_then(|r| r.get(i as usize)) {
            Some(&a) => f64::from(a),
            None => l.sqrt(),
        };
        if let (Some(lj), Some(sj)) = (lam.get_mut(j), slam.get_mut(j)) {
            (*lj, *sj) = (l, r);
        }
    }
    let mut n = np; // rates whose latest round awaits a verdict
    let mut fresh = np; // rates needing a new round (all, at first)
    for _ in 0..PTRS_MAX_ROUNDS {
        let m = fresh.min(lam.len());
        for d in uv.iter_mut().take(m) {
            *d = (rng.next_f64() - 0.5, rng.next_f64());
        }
        for (j, p) in uv.iter().take(m).enumerate() {
            (us[j], vs[j]) = *p;
        }
        ptrs_rounds(
            &lam[..m],
            &slam[..m],
            &us[..m],
            &vs[..m],
            &mut k[..m],
            &mut flag[..m],
        );
        n = 0;
        for j in 0..m {
            if let Some(xi) = x.get_mut(idx[j] as usize) {
                *xi = k[j];
            }
            (idx[n], lam[n], slam[n], uv[n], k[n]) = (idx[j], lam[j], slam[j], uv[j], k[j]);
            n += usize::from(!flag[j]);
        }
        if n == 0 {
            return;
        }
        for (j, p) in uv.iter().take(n).enumerate() {
            (us[j], vs[j]) = *p;
        }
        ptrs_verdicts::<false>(
            &lam[..n],
            &slam[..n],
            &us[..n],
            &vs[..n],
            &k[..n],
            &mut flag[..n],
            &mut accept[..n],
        );
        fresh = 0;
        for j in 0..n {
            let ok = if flag[j] {
                accept[j]
            } else {
                Ptrs::with_root(lam[j], slam[j]).exact_accept(k[j], uv[j].0, uv[j].1)
            };
            (idx[fresh], lam[fresh], slam[fresh]) = (idx[j], lam[j], slam[j]);
            fresh += usize::from(!ok);
        }
        if fresh == 0 {
            return;
        }
        n = fresh;
    }
    for &i in idx.iter().take(n) {
        if let Some(xi) = x.get_mut(i as usize) {
            *xi = f64::NAN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::poisson::poisson;

    #[test]
    fn regimes_follow_the_documented_order() {
        // One rate per regime, in reverse order; replay the documented draw order by hand.
        let rates = [1e3, 5.5, 0.01, 0.0, 77.0, 0.05];
        let mut x = rates;
        let mut rng = PatternRng::new(11, 4);
        counts_in_place(&mut x, &mut rng, &mut Scratch::default());

        let mut r = PatternRng::new(11, 4);
        let mut want = [0.0; 6];
        for i in [2, 5] {
            want[i] = poisson(&mut r, rates[i]);
        }
        want[1] = poisson(&mut r, rates[1]);
        // PTRS: a round for every rate still in play, in order, until all are accepted.
        let mut live = vec![0usize, 4];
        while !live.is_empty() {
            let mut next = Vec::new();
            for &i in &live {
                let c = Ptrs::new(rates[i]);
                let u = r.next_f64() - 0.5;
                let v = r.next_f64();
                let (k, fast) = c.round(u, v);
                want[i] = k;
                if !fast && !c.slow_accept(k, u, v) {
                    next.push(i);
                }
            }
            live = next;
        }
        assert_eq!(x, want);
        assert_eq!(rng, r);
    }

    #[test]
    fn ptrs_batches_follow_the_documented_order() {
        // Many PTRS rates, so that several take more than one round.
        let rates: Vec<f64> = (0..500).map(|i| 32.0 + (i as f64) * 7.3).collect();
        let mut x = rates.clone();
        counts_in_place(&mut x, &mut PatternRng::new(8, 1), &mut Scratch::default());
        let mut r = PatternRng::new(8, 1);
        let mut want = vec![0.0; rates.len()];
        let mut live: Vec<usize> = (0..rates.len()).collect();
        let mut rounds = 0;
        while !live.is_empty() {
            rounds += 1;
            let mut draws = Vec::new();
            for &i in &live {
                let u = r.next_f64() - 0.5;
                draws.push((i, u, r.next_f64()));
            }
            live.clear();
            for (i, u, v) in draws {
                let c = Ptrs::new(rates[i]);
                let (k, fast) = c.round(u, v);
                want[i] = k;
                if !fast && !c.slow_accept(k, u, v) {
                    live.push(i);
                }
            }
        }
        assert!(rounds > 2, "{rounds}");
        assert_eq!(x, want);
    }

    #[test]
    fn invalid_and_zero() {
        let mut x = [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, 2.0];
        counts_in_place(&mut x, &mut PatternRng::new(0, 0), &mut Scratch::default());
        assert_eq!(x[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(x[1].to_bits(), 0.0f64.to_bits());
        assert!(x[2].is_nan() && x[3].is_nan() && x[4].is_nan());
        assert!(x[5] >= 0.0);
    }

    #[test]
    fn blocks_continue_the_stream() {
        // Two blocks' worth of one rate: the same as two calls sharing the generator.
        let mut x = vec![3.0; BLOCK + 10];
        let mut rng = PatternRng::new(2, 2);
        counts_in_place(&mut x, &mut rng, &mut Scratch::default());
        let mut r = PatternRng::new(2, 2);
        let mut a = vec![3.0; BLOCK];
        let mut b = vec![3.0; 10];
        let mut s = Scratch::default();
        counts_in_place(&mut a, &mut r, &mut s);
        counts_in_place(&mut b, &mut r, &mut s);
        a.extend(b);
        assert_eq!(x, a);
    }

    /// Rates over every regime and their boundaries, in runs and interleaved.
    fn mixed_rates(n: usize, seed: u64) -> Vec<f64> {
        let mut r = PatternRng::new(seed, 99);
        let special = [
            0.0,
            -0.0,
            1e-300,
            0.124_999_999,
            0.125,
            1.0,
            31.999_999,
            32.0,
            1e9,
            1e15,
        ];
        (0..n)
            .map(|i| {
                let u = r.next_f64();
                if i % 13 == 0 {
                    special[(u * special.len() as f64) as usize % special.len()]
                } else if (i / 200) % 2 == 0 {
                    10f64.powf(u * 14.0 - 5.0)
                } else {
                    ((i / 200) as f64).powi(3) * 0.01 * (1.0 + u)
                }
            })
            .collect()
    }

    #[test]
    fn lists_hold_each_regime_in_block_order() {
        // A full block and a short one (its last word padded with zeros), with NaN and
        // negative rates (in no list), against a plain filter; the AVX-512 compression (where
        // the processor has it) against the one-rate-at-a-time path.
        for n in [BLOCK, 1000] {
            let mut x = mixed_rates(n, 5);
            x[17] = f64::NAN;
            x[18] = -3.0;
            let mut words = vec![[0.0; WORD]; n.div_ceil(WORD)];
            let mut roots = vec![[0.0; WORD]; words.len()];
            for (i, &v) in x.iter().enumerate() {
                words[i / WORD][i % WORD] = v;
                roots[i / WORD][i % WORD] = i as f64 + 0.5;
            }
            let mut reg = [0u8; WORD];
            let masks: Vec<[u64; 3]> = words
                .iter_mut()
                .map(|w| classify_word(w, &mut reg))
                .collect();
            let mut a = Lists::default();
            let got = a.collect_scalar(&words, &masks, Some(&roots));
            let regime = |v: f64| {
                let (f, t, p, _) = classify(v);
                [f, t, p]
            };
            for (r, &len) in got.iter().enumerate() {
                let want: Vec<usize> = (0..n).filter(|&i| regime(x[i])[r]).collect();
                assert_eq!(len, want.len(), "regime {r}");
                let pos: Vec<usize> = a.pos[r][..len].iter().map(|&p| p as usize).collect();
                assert_eq!(pos, want);
                assert_eq!(
                    bits(&a.lam[r][..len]),
                    bits(&want.iter().map(|&i| x[i]).collect::<Vec<_>>())
                );
                if r == 2 {
                    let w: Vec<f64> = want.iter().map(|&i| i as f64 + 0.5).collect();
                    assert_eq!(bits(&a.root[..len]), bits(&w));
                }
            }
            #[cfg(target_arch = "x86_64")]
            if crate::simd::detected() == crate::simd::Level::Avx512 {
                let mut b = Lists::default();
                // SAFETY: the processor has AVX-512 (checked just above).
                let got_b = unsafe { b.collect_avx512(&words, &masks, Some(&roots)) };
                assert_eq!(got_b, got);
                for (r, &len) in got.iter().enumerate() {
                    assert_eq!(a.pos[r][..len], b.pos[r][..len]);
                    assert_eq!(bits(&a.lam[r][..len]), bits(&b.lam[r][..len]));
                }
                assert_eq!(bits(&a.root[..got[2]]), bits(&b.root[..got[2]]));
            }
        }
    }

    fn bits<T: Copy + Into<f64>>(v: &[T]) -> Vec<u64> {
        v.iter().map(|&x| x.into().to_bits()).collect()
    }

    fn check_fast_equals_reference<U: Sampling + PartialEq + std::fmt::Debug>(
        make: impl Fn() -> U,
    ) {
        for (n, seed) in [(BLOCK, 1), (1000, 2), (BLOCK, 3), (77, 4), (1, 5)] {
            let rates = mixed_rates(n, seed);
            let mut s = Scratch::default();
            // Rates.
            let (mut a, mut b) = (rates.clone(), rates.clone());
            let (mut ra, mut rb) = (make(), make());
            assert!(fast_block(&mut Io::Rates(&mut a), &mut ra, &mut s));
            reference_block(&mut b, None, &mut rb, &mut s);
            assert_eq!(bits(&a), bits(&b), "rates n={n} seed={seed}");
            assert_eq!(ra, rb);
            // Amplitudes, whose squares are the rates.
            let roots: Vec<f32> = rates.iter().map(|&r| r.sqrt() as f32).collect();
            let mut squares: Vec<f64> = roots.iter().map(|&v| rate_of(v)).collect();
            let mut got = roots.clone();
            let (mut ra, mut rb) = (make(), make());
            assert!(fast_block(&mut Io::Amplitudes(&mut got), &mut ra, &mut s));
            reference_block(&mut squares, Some(&roots), &mut rb, &mut s);
            let mut want = roots.clone();
            write_roots(as_uninit(&mut want), &squares);
            assert_eq!(bits(&got), bits(&want), "amplitudes n={n} seed={seed}");
            assert_eq!(ra, rb);
            // The same amplitudes observed into another slice: the same values, the source
            // untouched.
            let mut into = vec![f32::NAN; n];
            let mut rc = make();
            assert!(fast_block(
                &mut Io::AmplitudesTo(&roots, as_uninit(&mut into)),
                &mut rc,
                &mut s
            ));
            assert_eq!(bits(&into), bits(&want), "amplitudes to n={n} seed={seed}");
            assert_eq!(rc, rb);
        }
    }

    #[test]
    fn fast_block_equals_reference_v1() {
        check_fast_equals_reference(|| PatternRng::new(31, 7));
    }

    /// Stream v2's order of the module docs, one rate at a time with the scalar sampler's
    /// pieces: the independent reference of the keyed fast path.
    fn keyed_reference(x: &mut [f64], roots: Option<&[f32]>, rng: &mut LanesRng) {
        let t = tables();
        for (bi, block) in x.chunks_mut(BLOCK).enumerate() {
            let n = block.len();
            let orig = block.to_vec();
            let mut pairs = vec![0.0; 2 * n];
            for p in pairs.iter_mut() {
                *p = rng.next_f64();
            }
            let root = |i: usize, l: f64| match roots {
                Some(r) => f64::from(r[bi * BLOCK + i]),
                None => l.sqrt(),
            };
            let mut pending = Vec::new(); // PTRS rates whose first round was rejected
            let mut restarts_f = Vec::new();
            let mut restarts_t = Vec::new();
            for i in 0..n {
                let lam = block[i];
                let (u1, u2) = (pairs[2 * i], pairs[2 * i + 1]);
                if lam > 0.0 && lam < FAINT_MAX_RATE {
                    match faint_search_once(lam, u1) {
                        Some(k) => block[i] = if u1 < faint_zero_bound(lam) { 0.0 } else { k },
                        None => restarts_f.push(i),
                    }
                } else if (FAINT_MAX_RATE..PTRS_MIN_RATE).contains(&lam) {
                    let (m, r) = split_rate(lam);
                    match faint_search_once(r, u2) {
                        Some(e) => {
                            let e = if u2 < faint_zero_bound(r) { 0.0 } else { e };
                            block[i] = t.sample(m, u1) + e;
                        }
                        None => restarts_t.push(i),
                    }
                } else if (PTRS_MIN_RATE..f64::INFINITY).contains(&lam) {
                    let c = Ptrs::with_root(lam, root(i, lam));
                    let (k, fast) = c.round(u1 - 0.5, u2);
                    block[i] = k;
                    if !fast && !c.slow_accept(k, u1 - 0.5, u2) {
                        pending.push(i);
                    }
                } else {
                    block[i] = if lam == 0.0 { 0.0 } else { f64::NAN };
                }
            }
            for i in restarts_f {
                let u = pairs[2 * i];
                block[i] = faint(rng, block[i], u);
            }
            for i in restarts_t {
                let (m, r) = split_rate(block[i]);
                block[i] = t.sample(m, pairs[2 * i]) + faint(rng, r, pairs[2 * i + 1]);
            }
            while !pending.is_empty() {
                let draws: Vec<(usize, f64, f64)> = pending
                    .iter()
                    .map(|&i| (i, rng.next_f64() - 0.5, rng.next_f64()))
                    .collect();
                pending.clear();
                for (i, u, v) in draws {
                    let lam = orig[i];
                    let c = Ptrs::with_root(lam, root(i, lam));
                    let (k, fast) = c.round(u, v);
                    block[i] = k;
                    if !fast && !c.slow_accept(k, u, v) {
                        pending.push(i);
                    }
                }
            }
        }
    }

    /// The fast v2 sampler against the keyed reference on `rates`: from rates, from
    /// amplitudes, and from amplitudes into another slice.
    fn check_v2(rates: &[f64], label: &str) {
        let n = rates.len();
        let mut s = Scratch::default();
        let (mut a, mut b) = (rates.to_vec(), rates.to_vec());
        let (mut ra, mut rb) = (LanesRng::new(31, 7), LanesRng::new(31, 7));
        counts_in_place(&mut a, &mut ra, &mut s);
        keyed_reference(&mut b, None, &mut rb);
        assert_eq!(bits(&a), bits(&b), "rates {label}");
        assert_eq!(ra, rb);
        let roots: Vec<f32> = rates.iter().map(|&r| r.sqrt() as f32).collect();
        let mut squares: Vec<f64> = roots.iter().map(|&v| rate_of(v)).collect();
        let mut got = roots.clone();
        let (mut ra, mut rb) = (LanesRng::new(31, 7), LanesRng::new(31, 7));
        observe_in_place(&mut got, &mut ra, &mut s);
        keyed_reference(&mut squares, Some(&roots), &mut rb);
        let mut want = roots.clone();
        write_roots(as_uninit(&mut want), &squares);
        assert_eq!(bits(&got), bits(&want), "amplitudes {label}");
        assert_eq!(ra, rb);
        // Observed into another slice (several blocks): the same values.
        let mut into = vec![f32::NAN; n];
        let mut rc = LanesRng::new(31, 7);
        observe_to(&roots, as_uninit(&mut into), &mut rc, &mut s);
        assert_eq!(bits(&into), bits(&want), "amplitudes to {label}");
        assert_eq!(rc, rb);
    }

    #[test]
    fn fast_block_equals_reference_v2() {
        for (n, seed) in [(BLOCK, 1), (1000, 2), (2 * BLOCK + 5, 3), (77, 4), (1, 5)] {
            check_v2(&mixed_rates(n, seed), &format!("n={n} seed={seed}"));
        }
    }

    /// Words holding every count 0..=64 of each regime among rates of the other two, at
    /// scattered positions: the word passes switch between their dense and one-rate-at-a-time
    /// forms on these counts.
    fn regime_counts(seed: u64) -> Vec<f64> {
        let mut r = PatternRng::new(seed, 5);
        let draw = |regime: usize, u: f64| match regime {
            0 => 10f64.powf(-5.0 + 4.0 * u) * 1.25, // faint, (1.25e-5, 0.125)
            1 => 0.125 + 31.875 * u,                // tabled
            _ => 10f64.powf(1.51 + 7.0 * u),        // PTRS, ≥ 32
        };
        let mut out = Vec::new();
        for regime in 0..3 {
            for count in 0..=WORD {
                let mut word: Vec<f64> = (0..WORD)
                    .map(|b| draw((regime + 1 + b % 2) % 3, r.next_f64()))
                    .collect();
                // `count` distinct positions by a partial shuffle.
                let mut pos: Vec<usize> = (0..WORD).collect();
                for j in 0..count {
                    let k = j + (r.next_f64() * (WORD - j) as f64) as usize;
                    pos.swap(j, k.min(WORD - 1));
                    word[pos[j]] = draw(regime, r.next_f64());
                }
                out.extend(word);
            }
        }
        out
    }

    #[test]
    fn sparse_and_dense_word_passes_equal_the_reference() {
        let rates = regime_counts(8);
        check_v2(&rates, "regime counts");
        // Every count of every regime occurs in some word.
        let regimes: Vec<[bool; 3]> = rates
            .iter()
            .map(|&l| {
                let (f, t, p, _) = classify(l);
                [f, t, p]
            })
            .collect();
        for regime in 0..3 {
            let seen: std::collections::BTreeSet<usize> = regimes
                .chunks(WORD)
                .map(|w| w.iter().filter(|c| c[regime]).count())
                .collect();
            assert_eq!(seen.len(), WORD + 1, "regime {regime}");
        }
    }

    /// Uniforms from a script, then from a generator: forces the faint search's restart.
    #[derive(Clone, Debug, PartialEq)]
    struct Scripted {
        script: Vec<f64>,
        pos: usize,
        rest: PatternRng,
    }

    impl Uniforms for Scripted {
        fn next_f64(&mut self) -> f64 {
            let u = self.script.get(self.pos).copied();
            self.pos += 1;
            u.unwrap_or_else(|| self.rest.next_f64())
        }
        fn fill(&mut self, out: &mut [f64]) {
            for o in out {
                *o = self.next_f64();
            }
        }
    }

    impl Sampling for Scripted {
        const KEYED: bool = false;
    }

    #[test]
    fn restart_falls_back_to_the_reference() {
        // A uniform above every computed F(k) of a faint rate makes the search draw again.
        let top = 1.0 - f64::EPSILON / 2.0;
        let r = (1..128)
            .map(|i| f64::from(i) / 1024.0)
            .find(|&r| faint_search_once(r, top).is_none());
        let Some(r) = r else {
            return; // no rounding gap at all: the fallback can never be needed
        };
        // Faint rates, a tabled one whose faint part is `r`, PTRS rates: uniform 1 goes to
        // the faint rate `r`, uniform 4 to the faint part of the tabled rate.
        let rates = [0.05, r, 0.07, 3.0 + r, 100.0, 1e6];
        for pos in [1usize, 4] {
            let mut script = vec![0.5; 16];
            script[pos] = top;
            let make = || Scripted {
                script: script.clone(),
                pos: 0,
                rest: PatternRng::new(1, 1),
            };
            let mut s = Scratch::default();
            let (mut a, mut b) = (rates.to_vec(), rates.to_vec());
            let (mut ra, mut rb) = (make(), make());
            let mut probe = a.clone();
            assert!(!fast_block(
                &mut Io::Rates(&mut probe),
                &mut ra.clone(),
                &mut s
            ));
            counts_in_place(&mut a, &mut ra, &mut s);
            reference_block(&mut b, None, &mut rb, &mut s);
            assert_eq!(a, b, "pos={pos}");
            assert_eq!(ra, rb);
            // The restarted draw took the next uniform (0.5): a faint count of 0 stays 0 for
            // the faint rate, and the plain order would have taken 7 + PTRS uniforms.
            let plain = rates.iter().filter(|&&l| l < 32.0).count() + 2;
            assert!(ra.pos > plain, "{} <= {plain}", ra.pos);
        }
    }

    #[test]
    fn observing_into_another_slice_takes_the_fallback_alike() {
        // As above, with a faint rate that is the square of an `f32` amplitude, so that the
        // amplitudes' own rates hit the rounding gap: in place and into another slice give
        // the reference's values.
        let top = 1.0 - f64::EPSILON / 2.0;
        let amp = (1..23)
            .map(|i| i as f32 / 64.0)
            .find(|&a| faint_search_once(rate_of(a), top).is_none());
        let Some(amp) = amp else {
            return; // no such gap: the fallback cannot be reached from amplitudes
        };
        let roots = [0.2f32, amp, 0.25, 2.0, 10.0, 1000.0];
        let mut script = vec![0.5; 16];
        script[1] = top;
        let make = || Scripted {
            script: script.clone(),
            pos: 0,
            rest: PatternRng::new(1, 1),
        };
        let mut s = Scratch::default();
        assert!(!fast_block(
            &mut Io::Amplitudes(&mut roots.to_vec()),
            &mut make(),
            &mut s
        ));
        let (mut r1, mut r2, mut r3) = (make(), make(), make());
        let mut in_place = roots.to_vec();
        observe_in_place(&mut in_place, &mut r1, &mut s);
        let mut into = vec![f32::NAN; roots.len()];
        observe_to(&roots, as_uninit(&mut into), &mut r2, &mut s);
        let mut want: Vec<f64> = roots.iter().map(|&v| rate_of(v)).collect();
        reference_block(&mut want, Some(&roots), &mut r3, &mut s);
        let mut want_roots = roots.to_vec();
        write_roots(as_uninit(&mut want_roots), &want);
        assert_eq!(bits(&in_place), bits(&want_roots));
        assert_eq!(bits(&into), bits(&want_roots));
        assert_eq!(r1, r3);
        assert_eq!(r2, r3);
    }
}
