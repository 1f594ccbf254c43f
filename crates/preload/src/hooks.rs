//! The interposed allocator entry points, the start-up of the library and
//! its fork handler.

use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::report;
use crate::sampler;
use crate::sys;

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type CallocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type MemalignFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int;
type VallocFn = unsafe extern "C" fn(usize) -> *mut c_void;

/// The next definitions of the allocator (glibc's), as addresses: 0 until
/// resolved.
static REAL_MALLOC: AtomicUsize = AtomicUsize::new(0);
static REAL_CALLOC: AtomicUsize = AtomicUsize::new(0);
static REAL_REALLOC: AtomicUsize = AtomicUsize::new(0);
static REAL_FREE: AtomicUsize = AtomicUsize::new(0);
static REAL_MEMALIGN: AtomicUsize = AtomicUsize::new(0);
static REAL_POSIX_MEMALIGN: AtomicUsize = AtomicUsize::new(0);
static REAL_ALIGNED_ALLOC: AtomicUsize = AtomicUsize::new(0);
static REAL_VALLOC: AtomicUsize = AtomicUsize::new(0);
static REAL_PVALLOC: AtomicUsize = AtomicUsize::new(0);

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const RESOLVED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

// ---------------------------------------------------------------------------
// The bootstrap arena: `dlsym` may allocate (glibc's dlerror buffer, with
// calloc) while we resolve the real functions, before any real allocator is
// known. Those few allocations come from here and are never freed.

const ARENA_SIZE: usize = 256 * 1024;

#[repr(C, align(64))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);
// SAFETY: disjoint pieces are handed out by an atomic bump pointer.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

/// Each arena block starts with its size (for realloc), 16 bytes before it.
fn arena_alloc(size: usize, align: usize) -> *mut c_void {
    let align = align.max(16);
    let base = ARENA.0.get() as usize;
    let mut used = ARENA_USED.load(Ordering::Relaxed);
    loop {
        let start = (base + used + 16).next_multiple_of(align);
        let end = match start.checked_add(size) {
            Some(end) if end <= base + ARENA_SIZE => end,
            _ => return core::ptr::null_mut(),
        };
        match ARENA_USED.compare_exchange_weak(
            used,
            end - base,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                // SAFETY: [start - 16, end) lies inside the arena and is ours.
                unsafe { *((start - 16) as *mut usize) = size };
                return start as *mut c_void;
            }
            Err(now) => used = now,
        }
    }
}

fn in_arena(p: *mut c_void) -> bool {
    let base = ARENA.0.get() as usize;
    (base..base + ARENA_SIZE).contains(&(p as usize))
}

fn arena_size(p: *mut c_void) -> usize {
    // SAFETY: p came from arena_alloc, which wrote its size before it.
    unsafe { *((p as usize - 16) as *const usize) }
}

// ---------------------------------------------------------------------------
// Resolving the real allocator.

/// Resolves the next definitions once. Returns false while resolving (on
/// this thread, inside dlsym, or on another thread at the same moment):
/// the caller then uses the arena.
#[inline]
fn resolved() -> bool {
    if STATE.load(Ordering::Acquire) == RESOLVED {
        return true;
    }
    resolve_slow()
}

#[cold]
fn resolve_slow() -> bool {
    if STATE
        .compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return STATE.load(Ordering::Acquire) == RESOLVED;
    }
    let next = |name: &[u8], slot: &AtomicUsize| {
        // SAFETY: name is NUL-terminated; dlsym is safe to call at any time.
        let f = unsafe { sys::dlsym(sys::RTLD_NEXT, name.as_ptr() as *const c_char) };
        slot.store(f as usize, Ordering::Relaxed);
    };
    next(b"malloc\0", &REAL_MALLOC);
    next(b"calloc\0", &REAL_CALLOC);
    next(b"realloc\0", &REAL_REALLOC);
    next(b"free\0", &REAL_FREE);
    next(b"memalign\0", &REAL_MEMALIGN);
    next(b"posix_memalign\0", &REAL_POSIX_MEMALIGN);
    next(b"aligned_alloc\0", &REAL_ALIGNED_ALLOC);
    next(b"valloc\0", &REAL_VALLOC);
    next(b"pvalloc\0", &REAL_PVALLOC);
    let complete = [&REAL_MALLOC, &REAL_CALLOC, &REAL_REALLOC, &REAL_FREE]
        .iter()
        .all(|f| f.load(Ordering::Relaxed) != 0);
    if !complete {
        // No allocator after us: nothing sensible can be done; stay on the
        // arena until it runs out rather than crash at once.
        return false;
    }
    STATE.store(RESOLVED, Ordering::Release);
    true
}

macro_rules! real {
    ($slot:ident, $ty:ty) => {{
        let f = $slot.load(Ordering::Relaxed);
        // SAFETY: the slot holds the address dlsym gave for this symbol,
        // whose C type is $ty; it is non-zero once resolved.
        (f != 0).then(|| unsafe { core::mem::transmute::<usize, $ty>(f) })
    }};
}

// ---------------------------------------------------------------------------
// Per-thread state: a const-initialised thread_local of Cells (no Drop), so
// access is a plain TLS load (`#[thread_local]` underneath), with no lazy
// registration and no allocation, even on a thread's first allocation.

pub(crate) struct ThreadState {
    /// Bytes left before the next sample; the allocation that takes it to
    /// zero or below is sampled.
    pub(crate) left: Cell<i64>,
    /// Inside the library (sampling, reporting): allocations pass through.
    pub(crate) busy: Cell<bool>,
    /// xorshift64* state; 0 until seeded.
    pub(crate) rng: Cell<u64>,
}

thread_local! {
    pub(crate) static THREAD: ThreadState = const {
        ThreadState { left: Cell::new(0), busy: Cell::new(false), rng: Cell::new(0) }
    };
}

/// Runs `f` with this thread's guard set: allocations inside pass through
/// unsampled. Returns None when the guard was already set (re-entry).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    let entered = THREAD
        .try_with(|t| {
            if t.busy.get() {
                false
            } else {
                t.busy.set(true);
                true
            }
        })
        .unwrap_or(false);
    if !entered {
        return None;
    }
    let out = f();
    let _ = THREAD.try_with(|t| t.busy.set(false));
    Some(out)
}

/// Counts `size` bytes against this thread's sampling budget and samples
/// `p` when the budget runs out. The fast path is a TLS load, a subtraction
/// and a compare.
#[inline(always)]
fn account(p: *mut c_void, size: usize) {
    if p.is_null() {
        return;
    }
    let _ = THREAD.try_with(|t| {
        let left = t.left.get().wrapping_sub(size as i64);
        if left > 0 {
            t.left.set(left);
        } else {
            sampler::maybe_sample(t, p, size, left);
        }
    });
}

// ---------------------------------------------------------------------------
// The entry points.

#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, 16);
    }
    let Some(f) = real!(REAL_MALLOC, MallocFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's malloc, called as C would.
    let p = unsafe { f(size) };
    account(p, size);
    p
}

#[no_mangle]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    if !resolved() {
        // The arena is static memory never handed out twice: already zero.
        return match count.checked_mul(size) {
            Some(n) => arena_alloc(n, 16),
            None => core::ptr::null_mut(),
        };
    }
    let Some(f) = real!(REAL_CALLOC, CallocFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's calloc.
    let p = unsafe { f(count, size) };
    account(p, count.saturating_mul(size));
    p
}

#[no_mangle]
pub unsafe extern "C" fn realloc(old: *mut c_void, size: usize) -> *mut c_void {
    if !old.is_null() && in_arena(old) {
        // A block from the arena moves to the real allocator (or stays in
        // the arena while resolving).
        // SAFETY: our own malloc.
        let new = unsafe { malloc(size) };
        if !new.is_null() {
            let n = arena_size(old).min(size);
            // SAFETY: both blocks hold at least n bytes and do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, n) };
        }
        return new;
    }
    if !resolved() {
        return arena_alloc(size, 16);
    }
    let Some(f) = real!(REAL_REALLOC, ReallocFn) else {
        return core::ptr::null_mut();
    };
    if !old.is_null() {
        // Before the real call: once it returns, another thread may be
        // given the old address.
        sampler::forget(old);
    }
    // SAFETY: glibc's realloc, with a pointer the program got from it.
    let p = unsafe { f(old, size) };
    if size > 0 {
        account(p, size);
    }
    p
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() || in_arena(p) {
        return;
    }
    sampler::forget(p);
    if let Some(f) = real!(REAL_FREE, FreeFn) {
        // SAFETY: glibc's free, with a pointer the program got from it.
        unsafe { f(p) }
    }
}

#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, align);
    }
    let Some(f) = real!(REAL_MEMALIGN, MemalignFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's memalign.
    let p = unsafe { f(align, size) };
    account(p, size);
    p
}

#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, align);
    }
    let Some(f) = real!(REAL_ALIGNED_ALLOC, MemalignFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's aligned_alloc.
    let p = unsafe { f(align, size) };
    account(p, size);
    p
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !resolved() {
        let p = arena_alloc(size, align);
        if p.is_null() {
            return 12; // ENOMEM
        }
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *out = p };
        return 0;
    }
    let Some(f) = real!(REAL_POSIX_MEMALIGN, PosixMemalignFn) else {
        return 12;
    };
    // SAFETY: glibc's posix_memalign with the caller's arguments.
    let rc = unsafe { f(out, align, size) };
    if rc == 0 {
        // SAFETY: on success glibc wrote the pointer.
        account(unsafe { *out }, size);
    }
    rc
}

#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, 4096);
    }
    let Some(f) = real!(REAL_VALLOC, VallocFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's valloc.
    let p = unsafe { f(size) };
    account(p, size);
    p
}

#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size.next_multiple_of(4096), 4096);
    }
    let Some(f) = real!(REAL_PVALLOC, VallocFn) else {
        return core::ptr::null_mut();
    };
    // SAFETY: glibc's pvalloc.
    let p = unsafe { f(size) };
    account(p, size.next_multiple_of(4096));
    p
}

// ---------------------------------------------------------------------------
// Start-up, exit and fork.

/// Runs when the dynamic loader initialises the library, before main.
extern "C" fn init() {
    let _ = guarded(|| {
        resolved();
        // SAFETY: getenv reads the environment; the strings outlive us.
        let events = unsafe { sys::getenv(c"MEMTRAIL_EVENTS".as_ptr()) };
        if events.is_null() {
            return; // not under memtrail: pass everything through
        }
        let rate = env_number(c"MEMTRAIL_NATIVE_RATE").unwrap_or(sampler::DEFAULT_RATE);
        let interval_ms = env_number(c"MEMTRAIL_NATIVE_INTERVAL").unwrap_or(1000);
        // Whether the program's malloc is ours: a statically linked
        // program never loads us, and one that defines malloc itself (its
        // own jemalloc, tcmalloc) is found first.
        // SAFETY: dlsym with a NUL-terminated name.
        let found = unsafe { sys::dlsym(sys::RTLD_DEFAULT, c"malloc".as_ptr()) };
        // (Compared by address range: a reference to our own `malloc`
        // from here would itself resolve to the program's.)
        let (own_start, own_end) = sampler::own_range();
        let interposed = (own_start..own_end).contains(&(found as usize));
        report::configure(events, interval_ms.max(10), interposed);
        sampler::enable(rate);
        // SAFETY: registering plain functions.
        unsafe {
            sys::pthread_atfork(None, None, Some(after_fork_child));
            sys::atexit(at_exit);
        }
        report::start_thread();
    });
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

/// In a forked child: its samples are its parent's, its reporting thread
/// did not survive the fork. Start afresh under the child's own pid.
unsafe extern "C" fn after_fork_child() {
    let _ = guarded(|| {
        sampler::clear_after_fork();
        report::after_fork();
        report::start_thread();
    });
}

/// At exit, one last census, so a short program's end state is recorded.
extern "C" fn at_exit() {
    let _ = guarded(report::final_census);
}

fn env_number(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: getenv with a NUL-terminated name; the value is a C string.
    let value = unsafe { sys::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let bytes = unsafe { core::ffi::CStr::from_ptr(value) }.to_bytes();
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}
