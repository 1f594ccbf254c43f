//! The C functions and types the sampler needs, declared by hand so the
//! crate has no dependencies (the memtrail binary compiles it with rustc
//! alone). Linux, glibc or musl, 64-bit.

use core::ffi::{c_char, c_int, c_void};

pub const RTLD_DEFAULT: *mut c_void = core::ptr::null_mut();
/// glibc and musl both define RTLD_NEXT as ((void *) -1).
pub const RTLD_NEXT: *mut c_void = usize::MAX as *mut c_void;

pub const O_WRONLY: c_int = 0o1;
pub const O_NONBLOCK: c_int = 0o4000;
pub const O_APPEND: c_int = 0o2000;
pub const O_CLOEXEC: c_int = 0o2000000;

pub const ENOENT: c_int = 2;
pub const EINTR: c_int = 4;
pub const ENXIO: c_int = 6;
pub const EPIPE: c_int = 32;

pub const SIG_BLOCK: c_int = 0;
pub const SIG_SETMASK: c_int = 2;
pub const SIGPIPE: c_int = 13;

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const NT_GNU_BUILD_ID: u32 = 3;

/// `sigset_t` as glibc lays it out (1024 bits); musl's is smaller, and a
/// larger buffer is harmless.
#[repr(C)]
#[derive(Debug)]
pub struct SigSet(pub [u64; 16]);

#[repr(C)]
#[derive(Debug)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

#[repr(C)]
#[derive(Debug)]
pub struct Elf64Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct DlPhdrInfo {
    pub dlpi_addr: usize,
    pub dlpi_name: *const c_char,
    pub dlpi_phdr: *const Elf64Phdr,
    pub dlpi_phnum: u16,
    pub dlpi_adds: u64,
    pub dlpi_subs: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct DlInfo {
    pub dli_fname: *const c_char,
    pub dli_fbase: *mut c_void,
    pub dli_sname: *const c_char,
    pub dli_saddr: *mut c_void,
}

pub type PhdrCallback = unsafe extern "C" fn(*mut DlPhdrInfo, usize, *mut c_void) -> c_int;
pub type TraceFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

extern "C" {
    pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    pub fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    pub fn dl_iterate_phdr(callback: PhdrCallback, data: *mut c_void) -> c_int;
    pub fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
    pub fn pthread_create(
        thread: *mut u64,
        attr: *const c_void,
        start: extern "C" fn(*mut c_void) -> *mut c_void,
        arg: *mut c_void,
    ) -> c_int;
    pub fn pthread_detach(thread: u64) -> c_int;
    pub fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    pub fn sigfillset(set: *mut SigSet) -> c_int;
    pub fn sigemptyset(set: *mut SigSet) -> c_int;
    pub fn sigaddset(set: *mut SigSet, signal: c_int) -> c_int;
    pub fn sigismember(set: *const SigSet, signal: c_int) -> c_int;
    pub fn sigtimedwait(set: *const SigSet, info: *mut c_void, timeout: *const Timespec) -> c_int;
    pub fn getpid() -> c_int;
    pub fn getpagesize() -> c_int;
    pub fn getenv(name: *const c_char) -> *const c_char;
    pub fn atexit(f: extern "C" fn()) -> c_int;
    pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    pub fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    pub fn close(fd: c_int) -> c_int;
    pub fn readlink(path: *const c_char, buf: *mut c_char, size: usize) -> isize;
    pub fn __errno_location() -> *mut c_int;
    pub fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    pub fn nanosleep(req: *const Timespec, rem: *mut Timespec) -> c_int;
}

// The unwinder of GCC's runtime (libgcc_s), which every glibc program with
// C++ or Rust code already loads, and which Rust's standard library links.
#[link(name = "gcc_s")]
extern "C" {
    pub fn _Unwind_Backtrace(trace: TraceFn, arg: *mut c_void) -> c_int;
    pub fn _Unwind_GetIP(context: *mut c_void) -> usize;
}

pub fn errno() -> c_int {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *__errno_location() }
}
