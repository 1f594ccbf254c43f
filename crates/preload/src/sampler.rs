//! Sampling by bytes, the table of live samples and the table of stacks.
//!
//! Both tables are static, fixed in size (about 2 MiB of zeroed memory, of
//! which only the pages touched become resident), shared by every thread
//! without locks: slots are claimed with compare-and-swap, so a thread
//! interrupted anywhere (even by a fork) never blocks another.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::hooks::ThreadState;
use crate::sys;

/// The default mean of bytes between samples: tcmalloc's 512 KiB.
pub(crate) const DEFAULT_RATE: u64 = 512 * 1024;

/// Bytes a thread allocates between looks at whether sampling is on.
const RECHECK: i64 = 256 * 1024;

/// Sampling is on (the library runs under memtrail and the channel is up).
static ENABLED: AtomicBool = AtomicBool::new(false);
static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);

pub(crate) fn enable(rate: u64) {
    RATE.store(rate.max(1), Ordering::Relaxed);
    ENABLED.store(rate > 0, Ordering::Release);
}

/// Stops sampling for good (the channel went away). Threads finish their
/// current countdown first; every later one is endless.
pub(crate) fn disable() {
    ENABLED.store(false, Ordering::Release);
}

pub(crate) fn rate() -> u64 {
    RATE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------
// Live samples: BUCKETS buckets of WAYS addresses, one cache line each.

const BUCKETS: usize = 4096;
const WAYS: usize = 8;
/// A slot being filled: never a real address.
const BUSY: usize = 1;

#[repr(C, align(64))]
struct Bucket([AtomicUsize; WAYS]);

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_BUCKET: Bucket = Bucket([const { AtomicUsize::new(0) }; WAYS]);
static SAMPLES: [Bucket; BUCKETS] = [EMPTY_BUCKET; BUCKETS];
/// For each slot: the estimated bytes it stands for, and its stack's index.
static WEIGHTS: [AtomicU64; BUCKETS * WAYS] = [const { AtomicU64::new(0) }; BUCKETS * WAYS];
static STACK_OF: [AtomicU32; BUCKETS * WAYS] = [const { AtomicU32::new(0) }; BUCKETS * WAYS];
/// Live samples; `free` looks at nothing while it is 0.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Samples lost because their bucket was full.
pub(crate) static DROPPED: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
fn bucket_of(p: usize) -> usize {
    // Allocations are 16-byte aligned: drop those bits, then Fibonacci hashing.
    ((p >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - 12)) & (BUCKETS - 1)
}

/// Forgets the sample at `p` (a block with the sample header: see
/// hooks.rs). Called by free and realloc before the real call. One cache
/// line.
pub(crate) fn forget(p: *mut c_void) {
    let p = p as usize;
    let bucket = &SAMPLES[bucket_of(p)].0;
    for slot in bucket {
        if slot.load(Ordering::Relaxed) == p
            && slot
                .compare_exchange(p, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    }
}

fn remember(p: usize, weight: u64, stack: u32) {
    let b = bucket_of(p);
    for (way, slot) in SAMPLES[b].0.iter().enumerate() {
        if slot.load(Ordering::Relaxed) == 0
            && slot
                .compare_exchange(0, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            let i = b * WAYS + way;
            WEIGHTS[i].store(weight, Ordering::Relaxed);
            STACK_OF[i].store(stack, Ordering::Relaxed);
            LIVE.fetch_add(1, Ordering::Relaxed);
            slot.store(p, Ordering::Release);
            return;
        }
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Calls `each(weight, stack index)` for every live sample.
pub(crate) fn for_each_live(mut each: impl FnMut(u64, u32)) {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    for (b, bucket) in SAMPLES.iter().enumerate() {
        for (way, slot) in bucket.0.iter().enumerate() {
            if slot.load(Ordering::Acquire) > BUSY {
                let i = b * WAYS + way;
                each(
                    WEIGHTS[i].load(Ordering::Relaxed),
                    STACK_OF[i].load(Ordering::Relaxed),
                );
            }
        }
    }
}

/// In a forked child: the samples are the parent's. Writes only slots in
/// use, so untouched pages stay shared (copy-on-write) with the parent.
pub(crate) fn clear_after_fork() {
    if LIVE.load(Ordering::Relaxed) != 0 {
        for bucket in &SAMPLES {
            for slot in &bucket.0 {
                if slot.load(Ordering::Relaxed) != 0 {
                    slot.store(0, Ordering::Relaxed);
                }
            }
        }
    }
    LIVE.store(0, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------
// Stacks: STACKS slots of up to MAX_FRAMES return addresses, keyed by a hash
// of the addresses. Slot 0 stands for "the table is full".

pub(crate) const STACKS: usize = 4096;
pub(crate) const MAX_FRAMES: usize = 32;

pub(crate) struct StackSlot {
    /// The stack's hash; 0 free, BUSY_HASH being written.
    pub(crate) hash: AtomicU64,
    pub(crate) depth: AtomicU32,
    /// The pid it was last sent to the channel for (a fork sends again).
    pub(crate) sent_for: AtomicU32,
    pub(crate) frames: [AtomicUsize; MAX_FRAMES],
}

const BUSY_HASH: u64 = u64::MAX;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_STACK: StackSlot = StackSlot {
    hash: AtomicU64::new(0),
    depth: AtomicU32::new(0),
    sent_for: AtomicU32::new(0),
    frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
};
pub(crate) static STACK_TABLE: [StackSlot; STACKS] = [EMPTY_STACK; STACKS];

fn hash_frames(frames: &[usize]) -> u64 {
    // FNV-1a over the addresses, then a final mix; never 0 or BUSY_HASH.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &f in frames {
        h ^= f as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    match h {
        0 | BUSY_HASH => 2,
        h => h,
    }
}

/// The slot of `frames`, added if new; 0 when the table is full.
fn intern(frames: &[usize]) -> u32 {
    let h = hash_frames(frames);
    let start = (h as usize) % (STACKS - 1) + 1;
    for probe in 0..64 {
        let i = (start + probe - 1) % (STACKS - 1) + 1;
        let slot = &STACK_TABLE[i];
        let mut seen = slot.hash.load(Ordering::Acquire);
        // Another thread is writing this slot: wait briefly, it is short.
        let mut spins = 0;
        while seen == BUSY_HASH && spins < 1000 {
            core::hint::spin_loop();
            spins += 1;
            seen = slot.hash.load(Ordering::Acquire);
        }
        if seen == h {
            return i as u32;
        }
        if seen == 0
            && slot
                .hash
                .compare_exchange(0, BUSY_HASH, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            for (dst, &src) in slot.frames.iter().zip(frames) {
                dst.store(src, Ordering::Relaxed);
            }
            slot.depth.store(frames.len() as u32, Ordering::Relaxed);
            slot.sent_for.store(0, Ordering::Relaxed);
            slot.hash.store(h, Ordering::Release);
            return i as u32;
        }
    }
    0
}

// ---------------------------------------------------------------------------
// The library's own address range, so its frames are left off the stacks.

static OWN_START: AtomicUsize = AtomicUsize::new(0);
static OWN_END: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn own_range() -> (usize, usize) {
    if OWN_END.load(Ordering::Relaxed) == 0 {
        find_own_range();
    }
    (
        OWN_START.load(Ordering::Relaxed),
        OWN_END.load(Ordering::Relaxed),
    )
}

fn find_own_range() {
    let mut info = sys::DlInfo {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: dladdr fills info for an address of this library.
    if unsafe { sys::dladdr(find_own_range as *const c_void, &mut info) } == 0 {
        return;
    }
    let mut found = (info.dli_fbase as usize, 0usize);
    unsafe extern "C" fn each(
        info: *mut sys::DlPhdrInfo,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes valid pointers; data is our tuple.
        let (info, found) = unsafe { (&*info, &mut *(data as *mut (usize, usize))) };
        let (lo, hi) = crate::report::module_range(info);
        if (lo..hi).contains(&found.0) || info.dlpi_addr == found.0 {
            *found = (lo, hi);
            return 1;
        }
        0
    }
    // SAFETY: the callback only reads what dl_iterate_phdr gives it.
    unsafe { sys::dl_iterate_phdr(each, &mut found as *mut _ as *mut c_void) };
    if found.1 > found.0 {
        OWN_START.store(found.0, Ordering::Relaxed);
        OWN_END.store(found.1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Sampling.

/// An allocation of `size` takes this thread's countdown to `left` <= 0
/// (or the thread is new): whether to sample it. Some(weight) when it is
/// to be sampled: the thread's guard is then set, and the caller allocates
/// the block with the sample header and calls `record`, which clears it.
#[inline(always)]
pub(crate) fn decide(t: &ThreadState, size: usize, left: i64) -> Option<u64> {
    if t.busy.get() {
        // Re-entered (our own allocations, or a signal handler that
        // interrupted us): count, never sample.
        t.left.set(left.max(1));
        return None;
    }
    if !ENABLED.load(Ordering::Acquire) {
        // Not yet (allocations before the library's start-up) or not any
        // more (the channel went away): look again after this many bytes.
        t.left.set(RECHECK);
        return None;
    }
    let rate = RATE.load(Ordering::Relaxed);
    if t.rng.get() == 0 {
        // A new thread: seed, draw a first countdown, and count this
        // allocation against it rather than sampling it for being first.
        seed(t);
        let first = next_countdown(t, rate).wrapping_sub(size as i64);
        if first > 0 {
            t.left.set(first);
            return None;
        }
    }
    t.left.set(next_countdown(t, rate));
    t.busy.set(true);
    Some(estimate(size as u64, rate))
}

/// Records the sampled block at `p` (its stack and weight) and clears the
/// guard `decide` set. `p` is null when the allocation failed.
#[inline(always)]
pub(crate) fn record(t: &ThreadState, p: *mut c_void, weight: u64) {
    if !p.is_null() {
        let mut trace = Trace {
            frames: [0; MAX_FRAMES],
            depth: 0,
            own: own_range(),
        };
        // SAFETY: the callback writes into `trace`, which outlives the call.
        unsafe { sys::_Unwind_Backtrace(on_frame, &mut trace as *mut Trace as *mut c_void) };
        let stack = intern(&trace.frames[..trace.depth]);
        remember(p as usize, weight, stack);
    }
    t.busy.set(false);
}

/// The unbiased estimate of the bytes a sample of `size` stands for: it was
/// sampled with probability `1 - exp(-size/rate)`.
pub(crate) fn estimate(size: u64, rate: u64) -> u64 {
    let size = size.max(1) as f64;
    let p = 1.0 - (-size / rate as f64).exp();
    if p <= 0.0 {
        return rate;
    }
    (size / p).round() as u64
}

fn seed(t: &ThreadState) {
    let mut ts = sys::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills ts.
    unsafe { sys::clock_gettime(1, &mut ts) };
    let mut s = (ts.tv_nsec as u64) ^ ((ts.tv_sec as u64) << 32) ^ (t as *const _ as u64);
    s ^= s >> 31;
    s = s.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    t.rng.set(s | 1);
}

/// An exponential draw with mean `rate` (inverse transform of a uniform).
fn next_countdown(t: &ThreadState, rate: u64) -> i64 {
    let mut x = t.rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t.rng.set(x);
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    // 53 random bits in (0, 1].
    let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let draw = -u.ln() * rate as f64;
    (draw as i64).clamp(1, i64::MAX / 2)
}

struct Trace {
    frames: [usize; MAX_FRAMES],
    depth: usize,
    own: (usize, usize),
}

unsafe extern "C" fn on_frame(context: *mut c_void, arg: *mut c_void) -> c_int {
    const CONTINUE: c_int = 0; // _URC_NO_REASON
    const STOP: c_int = 5; // _URC_END_OF_STACK
                           // SAFETY: arg is the Trace passed to _Unwind_Backtrace.
    let trace = unsafe { &mut *(arg as *mut Trace) };
    // SAFETY: context is the unwinder's, valid during the callback.
    let ip = unsafe { sys::_Unwind_GetIP(context) };
    if ip == 0 {
        return STOP;
    }
    // Leave off the library's own frames (and the unwinder's) at the top.
    if trace.depth == 0 && (trace.own.0..trace.own.1).contains(&ip) {
        return CONTINUE;
    }
    trace.frames[trace.depth] = ip;
    trace.depth += 1;
    if trace.depth == MAX_FRAMES {
        STOP
    } else {
        CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_samples_stand_for_the_rate_and_large_ones_for_themselves() {
        assert!((524_288..=524_289).contains(&estimate(1, 524_288)));
        let big = estimate(64 << 20, 524_288);
        assert_eq!(big, 64 << 20);
        let mid = estimate(524_288, 524_288);
        // 512 KiB / (1 - 1/e)
        assert!((829_000..830_000).contains(&mid), "{mid}");
    }
}
