//! memtrail-preload: the allocation sampler that `memtrail run --native`
//! puts into programs with `LD_PRELOAD`.
//!
//! It interposes the C allocator's entry points (`malloc`, `calloc`,
//! `realloc`, `free`, `posix_memalign`, `aligned_alloc`, `memalign`,
//! `valloc`, `pvalloc`; C++'s `operator new` and Rust's system allocator
//! reach these), passes every call to the next definition (glibc's), and
//! samples allocations **by bytes**, as tcmalloc and jemalloc do: each
//! thread counts down the bytes it allocates from a number drawn from an
//! exponential distribution whose mean is the rate (`MEMTRAIL_NATIVE_RATE`,
//! 512 KiB by default); the allocation that crosses zero is sampled. A
//! sampled allocation of `s` bytes stands for `s / (1 - exp(-s/rate))`
//! bytes, so the sum over live samples estimates live bytes without bias.
//!
//! A sampled allocation records its call stack (the unwinder of libgcc,
//! which reads `.eh_frame`: no frame pointers needed) in a fixed table of
//! stacks, and its address in a fixed table of samples. A sampled block
//! carries a small header whose last word has a bit that glibc's chunk
//! header never has (see hooks.rs), so `free` tells it apart by reading the
//! word before the pointer, which glibc's free reads anyway: unsampled
//! frees cost a load and a bit test, and only sampled ones look in the
//! table.
//!
//! A thread of the library writes, every `MEMTRAIL_NATIVE_INTERVAL`
//! milliseconds, to the events channel (`MEMTRAIL_EVENTS`, see
//! docs/events.md): the loaded modules when they change, the stacks not
//! sent yet, and a census of source `native`: estimated live bytes by
//! stack. Symbolizing is memtrail's job, never the target's.
//!
//! Never harm the target: a per-thread guard passes the library's own
//! allocations (and those of a signal handler that interrupts it) straight
//! through; `dlsym`'s allocations during start-up come from a static arena;
//! a forked child clears its samples and starts its own thread; every
//! table is fixed in size; when the channel goes away the library stops
//! sampling and its thread ends, silently. See docs/native.md.

#![cfg_attr(
    not(all(target_os = "linux", target_pointer_width = "64")),
    allow(unused)
)]

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod hooks;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod report;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sampler;
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys;
