//! The interposed allocator entry points, the start-up of the library and
//! its fork handler.

use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

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
type UsableSizeFn = unsafe extern "C" fn(*mut c_void) -> usize;

/// The next definitions of the allocator (glibc's). Until they are
/// resolved each holds a bootstrap function of this library, which resolves
/// them (or hands out arena memory while `dlsym` runs): the entry points
/// load one pointer and call it, with no test of whether it is resolved.
static REAL_MALLOC: AtomicPtr<c_void> = AtomicPtr::new(boot_malloc as MallocFn as *mut c_void);
static REAL_CALLOC: AtomicPtr<c_void> = AtomicPtr::new(boot_calloc as CallocFn as *mut c_void);
static REAL_REALLOC: AtomicPtr<c_void> = AtomicPtr::new(boot_realloc as ReallocFn as *mut c_void);
static REAL_FREE: AtomicPtr<c_void> = AtomicPtr::new(boot_free as FreeFn as *mut c_void);
static REAL_MEMALIGN: AtomicPtr<c_void> =
    AtomicPtr::new(boot_memalign as MemalignFn as *mut c_void);
static REAL_POSIX_MEMALIGN: AtomicPtr<c_void> =
    AtomicPtr::new(boot_posix_memalign as PosixMemalignFn as *mut c_void);
static REAL_ALIGNED_ALLOC: AtomicPtr<c_void> =
    AtomicPtr::new(boot_aligned_alloc as MemalignFn as *mut c_void);
static REAL_VALLOC: AtomicPtr<c_void> = AtomicPtr::new(boot_valloc as VallocFn as *mut c_void);
static REAL_PVALLOC: AtomicPtr<c_void> = AtomicPtr::new(boot_pvalloc as VallocFn as *mut c_void);
static REAL_MALLOC_USABLE_SIZE: AtomicPtr<c_void> =
    AtomicPtr::new(boot_malloc_usable_size as UsableSizeFn as *mut c_void);

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

/// Each arena block has its size (for realloc) 16 bytes before it and the
/// sample mark 8 bytes before it, so that `free` takes its slow path
/// (which knows the arena) without testing the range.
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
                unsafe {
                    *((start - 16) as *mut usize) = size;
                    *((start - 8) as *mut usize) = MARK;
                }
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
    let next = |name: &[u8]| {
        // SAFETY: name is NUL-terminated; dlsym is safe to call at any time.
        unsafe { sys::dlsym(sys::RTLD_NEXT, name.as_ptr() as *const c_char) }
    };
    let found = [
        (next(b"malloc\0"), &REAL_MALLOC),
        (next(b"calloc\0"), &REAL_CALLOC),
        (next(b"realloc\0"), &REAL_REALLOC),
        (next(b"free\0"), &REAL_FREE),
        (next(b"memalign\0"), &REAL_MEMALIGN),
        (next(b"posix_memalign\0"), &REAL_POSIX_MEMALIGN),
        (next(b"aligned_alloc\0"), &REAL_ALIGNED_ALLOC),
        (next(b"valloc\0"), &REAL_VALLOC),
        (next(b"pvalloc\0"), &REAL_PVALLOC),
        (next(b"malloc_usable_size\0"), &REAL_MALLOC_USABLE_SIZE),
    ];
    if found[..4].iter().any(|(f, _)| f.is_null()) {
        // No allocator after us: nothing sensible can be done; stay on the
        // arena until it runs out rather than crash at once.
        return false;
    }
    for (f, slot) in found {
        // A missing optional function keeps its bootstrap, which returns
        // null once resolved.
        if !f.is_null() {
            slot.store(f, Ordering::Release);
        }
    }
    STATE.store(RESOLVED, Ordering::Release);
    true
}

macro_rules! real {
    ($slot:ident, $ty:ty) => {{
        let f = $slot.load(Ordering::Acquire);
        // SAFETY: the slot holds either the address dlsym gave for this
        // symbol, whose C type is $ty, or this library's bootstrap of that
        // type; never null.
        unsafe { core::mem::transmute::<*mut c_void, $ty>(f) }
    }};
}

// ---------------------------------------------------------------------------
// Per-thread state. On x86-64 it is a block of the static TLS (initial-exec
// model, declared in assembly: rustc gives a cdylib's thread_local! the
// general-dynamic model, a call to __tls_get_addr on every access), reached
// with two instructions from the thread pointer; the dynamic loader and
// pthread_create zero it for every thread before it runs, which is its
// initial state. Elsewhere it is a const-initialised thread_local! of Cells
// (no Drop: no lazy registration, no allocation).

#[repr(C)]
pub(crate) struct ThreadState {
    /// Bytes left before the next sample: an allocation of at least this
    /// many bytes is sampled (0 in a new thread: its first allocation
    /// draws the first countdown).
    pub(crate) left: Cell<i64>,
    /// Inside the library (sampling, reporting): allocations pass through.
    pub(crate) busy: Cell<bool>,
    /// xorshift64* state; 0 until seeded.
    pub(crate) rng: Cell<u64>,
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 4",
    ".globl memtrail_preload_thread_state",
    ".hidden memtrail_preload_thread_state",
    ".type memtrail_preload_thread_state,@object",
    ".size memtrail_preload_thread_state,32",
    "memtrail_preload_thread_state:",
    ".zero 32",
    ".popsection",
    options(att_syntax)
);

/// This thread's state.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn thread() -> &'static ThreadState {
    const _: () = assert!(core::mem::size_of::<ThreadState>() <= 32);
    let p: *const ThreadState;
    // SAFETY: %fs:0 holds the thread pointer (x86-64 TLS ABI); the GOT
    // entry holds the block's offset from it, set by the dynamic loader.
    // The block is 32 zeroed bytes, aligned 16: a valid ThreadState
    // (i64 0, false, 0), used by this thread only (the reference is not
    // Send: ThreadState is not Sync).
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:[0]",
            "add {p}, qword ptr [rip + memtrail_preload_thread_state@GOTTPOFF]",
            p = out(reg) p,
            options(pure, nomem, nostack),
        );
        &*p
    }
}

#[cfg(not(target_arch = "x86_64"))]
thread_local! {
    static THREAD: ThreadState = const {
        ThreadState { left: Cell::new(0), busy: Cell::new(false), rng: Cell::new(0) }
    };
}

/// This thread's state.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn thread() -> &'static ThreadState {
    // SAFETY: a const-initialised thread_local without destructor lives as
    // long as its thread; the reference is not Send.
    THREAD.with(|t| unsafe { &*(t as *const ThreadState) })
}

/// Runs `f` with this thread's guard set: allocations inside pass through
/// unsampled. Returns None when the guard was already set (re-entry).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    let t = thread();
    if t.busy.get() {
        return None;
    }
    t.busy.set(true);
    let out = f();
    t.busy.set(false);
    Some(out)
}

/// Counts `size` bytes against this thread's sampling budget; true when no
/// sample is due (the fast path: a TLS load, a compare, a store). A size
/// too large for the budget (or any size in a new thread, whose budget is
/// 0) is left to the entry point's slow path.
#[inline(always)]
fn count(size: usize) -> bool {
    let t = thread();
    let left = t.left.get() as u64;
    if (size as u64) < left {
        t.left.set((left - size as u64) as i64);
        true
    } else {
        false
    }
}

/// A sample is due for `size` bytes: whether to take it (see
/// sampler::decide). Some(weight): the guard is set until `record`.
#[inline(always)]
fn decide(size: usize) -> Option<u64> {
    let t = thread();
    let left = t
        .left
        .get()
        .saturating_sub(size.min(i64::MAX as usize) as i64);
    sampler::decide(t, size, left)
}

// ---------------------------------------------------------------------------
// Sampled blocks carry a header, so that `free` tells them from the others
// by reading the word before the pointer, which glibc's free reads next
// anyway (no table, no cache line of ours). glibc keeps there the chunk's
// size: a multiple of 16 with flags in bits 0..2, so bit 3 is always clear.
// A sampled block of `size` bytes is allocated `size + off` bytes from
// glibc (`off` = 32, or the alignment when larger), and the program gets
// `q = base + off`, with
//     q - 8:  MARK (bit 3 set)
//     q - 16: off
//     q - 24: size
// The arena's blocks carry MARK too. `malloc_usable_size` is interposed
// for them; `realloc` moves them. A block is marked only if sampled: one in
// about `rate` bytes costs `off` bytes more.

/// "memtrail" in ASCII; bit 3 is set.
const MARK: usize = 0x6d65_6d74_7261_696c;
const HEADER: usize = 32;

/// Whether the block at `p` (not null, from the allocator) is marked:
/// sampled, or the arena's.
#[inline(always)]
unsafe fn marked(p: *mut c_void) -> bool {
    // SAFETY: glibc's free and realloc read this word of any block they
    // accept (its chunk's size); ours write MARK there.
    unsafe { *(p as *const usize).sub(1) & 8 != 0 }
}

/// Whether a marked `p` is a sampled block (not the arena's, nor a pointer
/// glibc would reject).
unsafe fn sampled(p: *mut c_void) -> bool {
    // SAFETY: as marked.
    !in_arena(p) && unsafe { *(p as *const usize).sub(1) } == MARK
}

/// Writes the header of a sampled block allocated at `base` with offset
/// `off`; returns the program's pointer (null if base is).
fn header(base: *mut c_void, off: usize, size: usize) -> *mut c_void {
    if base.is_null() {
        return base;
    }
    let q = base as usize + off;
    // SAFETY: base holds size + off bytes; off >= 32 and q is aligned to 16.
    unsafe {
        *((q - 8) as *mut usize) = MARK;
        *((q - 16) as *mut usize) = off;
        *((q - 24) as *mut usize) = size;
    }
    q as *mut c_void
}

/// A sampled block's allocation, its offset and its size.
unsafe fn parts(q: *mut c_void) -> (*mut c_void, usize, usize) {
    // SAFETY: q is a sampled block: its header is ours.
    unsafe {
        let off = *((q as usize - 16) as *const usize);
        let size = *((q as usize - 24) as *const usize);
        ((q as usize - off) as *mut c_void, off, size)
    }
}

/// Frees a sampled block: forgets it, unmarks it, frees its allocation.
unsafe fn free_sampled(q: *mut c_void) {
    sampler::forget(q);
    // SAFETY: a sampled block.
    let (base, _, _) = unsafe { parts(q) };
    // SAFETY: the header is ours; glibc's next use of this word rewrites it.
    unsafe { *((q as usize - 8) as *mut usize) = 0 };
    let f = real!(REAL_FREE, FreeFn);
    // SAFETY: glibc's free with the pointer it gave.
    unsafe { f(base) }
}

// ---------------------------------------------------------------------------
// The entry points. Each counts the size first and, when no sample is due,
// ends with a tail call to the real function: no stack frame of its own.

#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    let f = real!(REAL_MALLOC, MallocFn);
    if count(size) {
        // SAFETY: glibc's malloc (or our bootstrap), called as C would.
        return unsafe { f(size) };
    }
    // SAFETY: as above.
    unsafe { malloc_slow(f, size) }
}

// The slow paths: a sample is due. Each is one function (the sampling
// inlined), called last by its entry point (a tail call): the stack the
// unwinder walks has one frame of this library above the program's, which
// keeps the unwinding short.

#[cold]
#[inline(never)]
unsafe extern "C" fn malloc_slow(f: MallocFn, size: usize) -> *mut c_void {
    // (The conditions before decide: a Some from it has set the guard.)
    let Some(weight) = (size <= isize::MAX as usize)
        .then(|| decide(size))
        .flatten()
    else {
        // SAFETY: glibc's malloc (or our bootstrap).
        return unsafe { f(size) };
    };
    // SAFETY: as above.
    let q = header(unsafe { f(size + HEADER) }, HEADER, size);
    sampler::record(thread(), q, weight);
    q
}

#[cold]
#[inline(never)]
unsafe extern "C" fn calloc_slow(f: CallocFn, count_: usize, size: usize) -> *mut c_void {
    let bytes = count_.saturating_mul(size);
    let Some(weight) = (bytes <= isize::MAX as usize)
        .then(|| decide(bytes))
        .flatten()
    else {
        // SAFETY: glibc's calloc (or our bootstrap).
        return unsafe { f(count_, size) };
    };
    // SAFETY: as above; the block is zeroed, the header written after.
    let q = header(unsafe { f(1, bytes + HEADER) }, HEADER, bytes);
    sampler::record(thread(), q, weight);
    q
}

/// realloc of an unmarked block (or null) when a sample is due: a sampled
/// result needs the header in front, so the block is reallocated `HEADER`
/// bytes larger and its bytes moved up.
#[cold]
#[inline(never)]
unsafe extern "C" fn realloc_slow(f: ReallocFn, old: *mut c_void, size: usize) -> *mut c_void {
    let decision = if size == 0 || size > isize::MAX as usize {
        None
    } else {
        decide(size)
    };
    let Some(weight) = decision else {
        // SAFETY: glibc's realloc (or our bootstrap).
        return unsafe { f(old, size) };
    };
    // SAFETY: as above.
    let base = unsafe { f(old, size + HEADER) };
    if !base.is_null() && !old.is_null() {
        // SAFETY: base holds size + HEADER bytes, the old ones first.
        unsafe { core::ptr::copy(base as *const u8, (base as *mut u8).add(HEADER), size) };
    }
    let q = header(base, HEADER, size);
    sampler::record(thread(), q, weight);
    q
}

/// Whether `size + off` bytes can be asked for.
fn fits(size: usize, off: usize) -> bool {
    size.checked_add(off)
        .is_some_and(|n| n <= isize::MAX as usize)
}

/// memalign and aligned_alloc (and valloc, pvalloc: `f` is memalign's,
/// `align` the page).
#[cold]
#[inline(never)]
unsafe extern "C" fn memalign_slow(f: MemalignFn, align: usize, size: usize) -> *mut c_void {
    let off = align.max(HEADER);
    let Some(weight) = (align.is_power_of_two() && fits(size, off))
        .then(|| decide(size))
        .flatten()
    else {
        // SAFETY: glibc's function (or our bootstrap).
        return unsafe { f(align, size) };
    };
    // SAFETY: as above.
    let q = header(unsafe { f(align, size + off) }, off, size);
    sampler::record(thread(), q, weight);
    q
}

#[cold]
#[inline(never)]
unsafe extern "C" fn posix_memalign_slow(
    f: PosixMemalignFn,
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    let off = align.max(HEADER);
    let valid = align.is_power_of_two() && align % core::mem::size_of::<usize>() == 0;
    let Some(weight) = (valid && fits(size, off)).then(|| decide(size)).flatten() else {
        // SAFETY: glibc's posix_memalign (or our bootstrap).
        return unsafe { f(out, align, size) };
    };
    let mut base = core::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe { f(&mut base, align, size + off) };
    let q = if rc == 0 {
        header(base, off, size)
    } else {
        core::ptr::null_mut()
    };
    sampler::record(thread(), q, weight);
    if rc == 0 {
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *out = q };
    }
    rc
}

#[no_mangle]
pub unsafe extern "C" fn calloc(count_: usize, size: usize) -> *mut c_void {
    let f = real!(REAL_CALLOC, CallocFn);
    if count(count_.saturating_mul(size)) {
        // SAFETY: glibc's calloc (or our bootstrap).
        return unsafe { f(count_, size) };
    }
    // SAFETY: as above.
    unsafe { calloc_slow(f, count_, size) }
}

#[no_mangle]
pub unsafe extern "C" fn realloc(old: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: a block the program got from the allocator.
    if !old.is_null() && unsafe { marked(old) } {
        // SAFETY: as above.
        return unsafe { realloc_marked(old, size) };
    }
    let f = real!(REAL_REALLOC, ReallocFn);
    if count(size) {
        // SAFETY: glibc's realloc (or our bootstrap), with a pointer the
        // program got from it.
        return unsafe { f(old, size) };
    }
    // SAFETY: as above.
    unsafe { realloc_slow(f, old, size) }
}

/// realloc of a block of the arena or a sampled block: moved to a new block
/// (the new size counted as any allocation), then freed.
#[cold]
#[inline(never)]
unsafe fn realloc_marked(old: *mut c_void, size: usize) -> *mut c_void {
    let old_size = if in_arena(old) {
        arena_size(old)
    } else if unsafe { sampled(old) } {
        // SAFETY: a sampled block.
        unsafe { parts(old) }.2
    } else {
        // Not ours: glibc's realloc says what it is.
        let f = real!(REAL_REALLOC, ReallocFn);
        // SAFETY: the program's pointer, as given.
        return unsafe { f(old, size) };
    };
    if size == 0 && !in_arena(old) {
        // glibc: realloc(p, 0) frees p and returns null.
        // SAFETY: a sampled block.
        unsafe { free_sampled(old) };
        return core::ptr::null_mut();
    }
    // SAFETY: our own malloc.
    let new = unsafe { malloc(size) };
    if !new.is_null() {
        let n = old_size.min(size);
        // SAFETY: both blocks hold at least n bytes and do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(old as *const u8, new as *mut u8, n) };
        if !in_arena(old) {
            // SAFETY: a sampled block, no longer used.
            unsafe { free_sampled(old) };
        }
    }
    new
}

#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // The word before p says whether it is sampled (or the arena's): the
    // fast path is a test, a load (of the word glibc's free reads next), a
    // bit test and a tail call to glibc's free.
    // SAFETY: a block the program got from the allocator.
    if !p.is_null() && unsafe { marked(p) } {
        // SAFETY: as above.
        return unsafe { free_slow(p) };
    }
    let f = real!(REAL_FREE, FreeFn);
    // SAFETY: glibc's free (or our bootstrap), with a pointer the program
    // got from it.
    unsafe { f(p) }
}

#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow(p: *mut c_void) {
    if in_arena(p) {
        return;
    }
    // SAFETY: a marked block.
    if unsafe { sampled(p) } {
        // SAFETY: a sampled block.
        unsafe { free_sampled(p) };
        return;
    }
    // Not ours (bit 3 set in what should be glibc's chunk header): glibc's
    // free says what it is, as it would without us.
    let f = real!(REAL_FREE, FreeFn);
    // SAFETY: the program's pointer, as given.
    unsafe { f(p) }
}

/// C23's sized free (glibc 2.39): the size is a hint glibc's free does not
/// need; ours does not either.
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: a block the program got from the allocator.
    unsafe { free(p) }
}

/// C23's sized free of an aligned block (glibc 2.39).
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: a block the program got from the allocator.
    unsafe { free(p) }
}

/// realloc of `count * size` bytes, failing (ENOMEM, the block untouched)
/// when that overflows.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(old: *mut c_void, count_: usize, size: usize) -> *mut c_void {
    match count_.checked_mul(size) {
        // SAFETY: a block the program got from the allocator, or null.
        Some(bytes) => unsafe { realloc(old, bytes) },
        None => {
            // SAFETY: errno is this thread's.
            unsafe { *sys::__errno_location() = 12 }; // ENOMEM
            core::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: a block the program got from the allocator.
    if unsafe { marked(p) } {
        if in_arena(p) {
            return arena_size(p);
        }
        // SAFETY: as above.
        if unsafe { sampled(p) } {
            // SAFETY: a sampled block.
            return unsafe { parts(p) }.2;
        }
    }
    let f = real!(REAL_MALLOC_USABLE_SIZE, UsableSizeFn);
    // SAFETY: glibc's function (or our bootstrap).
    unsafe { f(p) }
}

#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let f = real!(REAL_MEMALIGN, MemalignFn);
    if count(size) {
        // SAFETY: glibc's memalign (or our bootstrap).
        return unsafe { f(align, size) };
    }
    // SAFETY: as above.
    unsafe { memalign_slow(f, align, size) }
}

#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    let f = real!(REAL_ALIGNED_ALLOC, MemalignFn);
    if count(size) {
        // SAFETY: glibc's aligned_alloc (or our bootstrap).
        return unsafe { f(align, size) };
    }
    // SAFETY: as above.
    unsafe { memalign_slow(f, align, size) }
}

#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let f = real!(REAL_POSIX_MEMALIGN, PosixMemalignFn);
    if count(size) {
        // SAFETY: glibc's posix_memalign (or our bootstrap) with the
        // caller's arguments.
        return unsafe { f(out, align, size) };
    }
    // SAFETY: as above.
    unsafe { posix_memalign_slow(f, out, align, size) }
}

#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    let f = real!(REAL_VALLOC, VallocFn);
    if count(size) {
        // SAFETY: glibc's valloc (or our bootstrap).
        return unsafe { f(size) };
    }
    let memalign = real!(REAL_MEMALIGN, MemalignFn);
    // SAFETY: a sample is due: a page-aligned block from memalign.
    unsafe { memalign_slow(memalign, page(), size) }
}

#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let f = real!(REAL_PVALLOC, VallocFn);
    let page = page();
    let bytes = size.saturating_add(page - 1) & !(page - 1);
    if count(bytes) {
        // SAFETY: glibc's pvalloc (or our bootstrap).
        return unsafe { f(size) };
    }
    let memalign = real!(REAL_MEMALIGN, MemalignFn);
    // SAFETY: a sample is due: a page-aligned block from memalign.
    unsafe { memalign_slow(memalign, page, bytes) }
}

/// valloc's and pvalloc's alignment: the page size.
fn page() -> usize {
    // SAFETY: getpagesize has no preconditions.
    let page = unsafe { sys::getpagesize() };
    usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

// ---------------------------------------------------------------------------
// The bootstrap functions: what the slots hold until the real allocator is
// resolved. Each resolves it and calls the entry point again (which now
// finds the real function), or, while resolving, uses the arena. Once
// resolved, a bootstrap still in its slot is a function glibc lacks:
// null (ENOMEM for posix_memalign).

unsafe extern "C" fn boot_malloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, 16);
    }
    if REAL_MALLOC.load(Ordering::Acquire) == boot_malloc as MallocFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved: malloc now calls glibc's.
    unsafe { malloc(size) }
}

unsafe extern "C" fn boot_calloc(count_: usize, size: usize) -> *mut c_void {
    if !resolved() {
        // The arena is static memory never handed out twice: already zero.
        return match count_.checked_mul(size) {
            Some(n) => arena_alloc(n, 16),
            None => core::ptr::null_mut(),
        };
    }
    if REAL_CALLOC.load(Ordering::Acquire) == boot_calloc as CallocFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { calloc(count_, size) }
}

unsafe extern "C" fn boot_realloc(old: *mut c_void, size: usize) -> *mut c_void {
    if !resolved() {
        // old is null or the arena's (handled by realloc before this).
        return arena_alloc(size, 16);
    }
    if REAL_REALLOC.load(Ordering::Acquire) == boot_realloc as ReallocFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { realloc(old, size) }
}

unsafe extern "C" fn boot_free(p: *mut c_void) {
    if p.is_null() || in_arena(p) || !resolved() {
        return;
    }
    if REAL_FREE.load(Ordering::Acquire) == boot_free as FreeFn as *mut c_void {
        return;
    }
    // SAFETY: resolved.
    unsafe { free(p) }
}

unsafe extern "C" fn boot_memalign(align: usize, size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, align);
    }
    if REAL_MEMALIGN.load(Ordering::Acquire) == boot_memalign as MemalignFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { memalign(align, size) }
}

unsafe extern "C" fn boot_aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, align);
    }
    if REAL_ALIGNED_ALLOC.load(Ordering::Acquire) == boot_aligned_alloc as MemalignFn as *mut c_void
    {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { aligned_alloc(align, size) }
}

unsafe extern "C" fn boot_posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    const ENOMEM: c_int = 12;
    if !resolved() {
        let p = arena_alloc(size, align);
        if p.is_null() {
            return ENOMEM;
        }
        // SAFETY: the caller passes a valid out pointer.
        unsafe { *out = p };
        return 0;
    }
    if REAL_POSIX_MEMALIGN.load(Ordering::Acquire)
        == boot_posix_memalign as PosixMemalignFn as *mut c_void
    {
        return ENOMEM;
    }
    // SAFETY: resolved.
    unsafe { posix_memalign(out, align, size) }
}

unsafe extern "C" fn boot_valloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size, 4096);
    }
    if REAL_VALLOC.load(Ordering::Acquire) == boot_valloc as VallocFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { valloc(size) }
}

unsafe extern "C" fn boot_malloc_usable_size(p: *mut c_void) -> usize {
    if !resolved()
        || REAL_MALLOC_USABLE_SIZE.load(Ordering::Acquire)
            == boot_malloc_usable_size as UsableSizeFn as *mut c_void
    {
        return 0;
    }
    // SAFETY: resolved.
    unsafe { malloc_usable_size(p) }
}

unsafe extern "C" fn boot_pvalloc(size: usize) -> *mut c_void {
    if !resolved() {
        return arena_alloc(size.next_multiple_of(4096), 4096);
    }
    if REAL_PVALLOC.load(Ordering::Acquire) == boot_pvalloc as VallocFn as *mut c_void {
        return core::ptr::null_mut();
    }
    // SAFETY: resolved.
    unsafe { pvalloc(size) }
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
