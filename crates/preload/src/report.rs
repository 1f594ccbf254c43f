//! The reporting thread: modules, stacks and censuses to the events
//! channel, as JSON lines of at most 4096 bytes (one `write` each, so
//! lines from several processes never interleave). docs/events.md has the
//! line formats.

use core::ffi::{c_char, c_int, c_void, CStr};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::hooks::thread;
use crate::sampler::{self, MAX_FRAMES, STACKS, STACK_TABLE};
use crate::sys;

static CHANNEL: AtomicPtr<c_char> = AtomicPtr::new(core::ptr::null_mut());
static INTERVAL_MS: AtomicU64 = AtomicU64::new(1000);
static INTERPOSED: AtomicBool = AtomicBool::new(true);
/// Held while a census is being written (the thread, or at exit).
static EMITTING: AtomicBool = AtomicBool::new(false);
/// The channel went away: nothing more is written.
static GONE: AtomicBool = AtomicBool::new(false);
/// The module list last sent, by dl_iterate_phdr's counters, and for which pid.
static MODULES_ADDS: AtomicU64 = AtomicU64::new(u64::MAX);
static MODULES_SUBS: AtomicU64 = AtomicU64::new(u64::MAX);
static MODULES_PID: AtomicU32 = AtomicU32::new(0);

/// Stacks per census at most: their lines must fit in 4096 bytes.
const CENSUS_STACKS: usize = 90;

pub(crate) fn configure(channel: *const c_char, interval_ms: u64, interposed: bool) {
    CHANNEL.store(channel as *mut c_char, Ordering::Relaxed);
    INTERVAL_MS.store(interval_ms, Ordering::Relaxed);
    INTERPOSED.store(interposed, Ordering::Relaxed);
}

pub(crate) fn after_fork() {
    // The parent's thread may have held it when the fork happened.
    EMITTING.store(false, Ordering::Relaxed);
    MODULES_PID.store(0, Ordering::Relaxed);
}

pub(crate) fn start_thread() {
    if GONE.load(Ordering::Relaxed) || CHANNEL.load(Ordering::Relaxed).is_null() {
        return;
    }
    let mut thread = 0u64;
    // SAFETY: a plain detached thread running `reporter`.
    unsafe {
        if sys::pthread_create(
            &mut thread,
            core::ptr::null(),
            reporter,
            core::ptr::null_mut(),
        ) == 0
        {
            sys::pthread_detach(thread);
        }
    }
}

extern "C" fn reporter(_: *mut c_void) -> *mut c_void {
    // This thread is the library's: its allocations are never sampled,
    // and the program's signal handlers never run on it.
    thread().busy.set(true);
    let mut all = sys::SigSet([0; 16]);
    // SAFETY: blocking every signal on this thread only.
    unsafe {
        sys::sigfillset(&mut all);
        sys::pthread_sigmask(sys::SIG_BLOCK, &all, core::ptr::null_mut());
    }
    hello();
    let interval = INTERVAL_MS.load(Ordering::Relaxed);
    let pause = sys::Timespec {
        tv_sec: (interval / 1000) as i64,
        tv_nsec: ((interval % 1000) * 1_000_000) as i64,
    };
    while !GONE.load(Ordering::Relaxed) {
        // SAFETY: sleeping this thread.
        unsafe { sys::nanosleep(&pause, core::ptr::null_mut()) };
        census();
    }
    core::ptr::null_mut()
}

/// One last census at exit, from the exiting thread.
pub(crate) fn final_census() {
    if CHANNEL.load(Ordering::Relaxed).is_null() || GONE.load(Ordering::Relaxed) {
        return;
    }
    // The reporting thread may be writing one: wait for it a little.
    for _ in 0..200 {
        if !EMITTING.load(Ordering::Relaxed) {
            break;
        }
        let ms = sys::Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: sleeping this thread.
        unsafe { sys::nanosleep(&ms, core::ptr::null_mut()) };
    }
    census();
}

fn pid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { sys::getpid() as u32 }
}

fn now() -> f64 {
    let mut ts = sys::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: CLOCK_REALTIME into ts.
    unsafe { sys::clock_gettime(0, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn hello() {
    let Some(mut out) = Channel::open() else {
        return;
    };
    let mut line = Line::new();
    let _ = write!(
        line,
        "{{\"native\":{{\"version\":1,\"rate\":{},\"interposed\":{}}},\"pid\":{},\"time\":{:.6}}}",
        sampler::rate(),
        INTERPOSED.load(Ordering::Relaxed),
        pid(),
        now()
    );
    out.send(&line);
}

/// Writes modules (when they changed), new stacks, and the census.
fn census() {
    if EMITTING.swap(true, Ordering::Acquire) {
        return;
    }
    if let Some(mut out) = Channel::open() {
        let pid = pid();
        send_modules(&mut out, pid);
        let top = top_stacks();
        for &(_, slot) in top.iter().take_while(|(bytes, _)| *bytes > 0) {
            let s = &STACK_TABLE[slot as usize];
            if s.sent_for.load(Ordering::Relaxed) != pid {
                send_stack(&mut out, pid, slot);
                s.sent_for.store(pid, Ordering::Relaxed);
            }
        }
        let mut line = Line::new();
        let _ = write!(line, "{{\"census\":{{\"source\":\"native\",\"counts\":{{");
        let mut first = true;
        for &(bytes, slot) in top.iter().take_while(|(bytes, _)| *bytes > 0) {
            let hash = if slot == 0 {
                0
            } else {
                STACK_TABLE[slot as usize].hash.load(Ordering::Relaxed)
            };
            let _ = write!(
                line,
                "{}\"stack:{hash:016x}\":{bytes}",
                if first { "" } else { "," }
            );
            first = false;
        }
        let _ = write!(line, "}}}},\"pid\":{pid},\"time\":{:.6}}}", now());
        out.send(&line);
    }
    EMITTING.store(false, Ordering::Release);
}

/// The stacks holding the most estimated live bytes, largest first, with
/// duplicates of one stack (two slots of one hash) merged.
fn top_stacks() -> [(u64, u32); CENSUS_STACKS] {
    // Live bytes by stack slot: summed here, in the reporting thread.
    let mut sums = [0u64; STACKS];
    sampler::for_each_live(|weight, slot| {
        if let Some(s) = sums.get_mut(slot as usize) {
            *s = s.saturating_add(weight);
        }
    });
    let mut top = [(0u64, 0u32); CENSUS_STACKS];
    for (slot, &bytes) in sums.iter().enumerate() {
        if bytes == 0 {
            continue;
        }
        let hash = STACK_TABLE[slot].hash.load(Ordering::Relaxed);
        // A second slot of the same stack adds to the first.
        if let Some(same) = top.iter_mut().find(|(b, s)| {
            *b > 0
                && slot != 0
                && *s != 0
                && STACK_TABLE[*s as usize].hash.load(Ordering::Relaxed) == hash
        }) {
            same.0 += bytes;
            continue;
        }
        if bytes > top[CENSUS_STACKS - 1].0 {
            top[CENSUS_STACKS - 1] = (bytes, slot as u32);
        }
        top.sort_unstable_by_key(|t| core::cmp::Reverse(t.0));
    }
    top.sort_unstable_by_key(|t| core::cmp::Reverse(t.0));
    top
}

fn send_stack(out: &mut Channel, pid: u32, slot: u32) {
    let s = &STACK_TABLE[slot as usize];
    let depth = (s.depth.load(Ordering::Relaxed) as usize).min(MAX_FRAMES);
    let mut line = Line::new();
    let _ = write!(
        line,
        "{{\"native_stack\":{{\"id\":\"{:016x}\",\"frames\":[",
        s.hash.load(Ordering::Relaxed)
    );
    for (i, frame) in s.frames[..depth].iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(line, "{sep}{}", frame.load(Ordering::Relaxed));
    }
    let _ = write!(line, "]}},\"pid\":{pid}}}");
    out.send(&line);
}

// ---------------------------------------------------------------------------
// Modules: each loaded ELF object, with its address range, load bias and
// GNU build id, read from memory with dl_iterate_phdr (no file is opened).

/// The lowest and highest address of a module's loadable segments.
pub(crate) fn module_range(info: &sys::DlPhdrInfo) -> (usize, usize) {
    let mut lo = usize::MAX;
    let mut hi = 0usize;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type == sys::PT_LOAD {
            let start = info.dlpi_addr.wrapping_add(ph.p_vaddr as usize);
            lo = lo.min(start);
            hi = hi.max(start.wrapping_add(ph.p_memsz as usize));
        }
    }
    if hi == 0 {
        (0, 0)
    } else {
        (lo, hi)
    }
}

struct ModuleWalk<'a> {
    out: &'a mut Channel,
    pid: u32,
    first: bool,
    changed: bool,
}

fn send_modules(out: &mut Channel, pid: u32) {
    let mut walk = ModuleWalk {
        out,
        pid,
        first: true,
        changed: false,
    };
    // SAFETY: the callback reads only what dl_iterate_phdr hands it.
    unsafe { sys::dl_iterate_phdr(each_module, &mut walk as *mut ModuleWalk<'_> as *mut c_void) };
    if walk.changed {
        MODULES_PID.store(pid, Ordering::Relaxed);
    }
}

unsafe extern "C" fn each_module(
    info: *mut sys::DlPhdrInfo,
    size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: valid for the call; data is our ModuleWalk.
    let (info, walk) = unsafe { (&*info, &mut *(data as *mut ModuleWalk<'_>)) };
    if walk.first {
        walk.first = false;
        // The counters say whether anything was loaded or unloaded since
        // the list was last sent; older loaders do not have them.
        let has_counters = size >= core::mem::size_of::<sys::DlPhdrInfo>();
        let (adds, subs) = if has_counters {
            (info.dlpi_adds, info.dlpi_subs)
        } else {
            (0, 0)
        };
        let same = MODULES_PID.load(Ordering::Relaxed) == walk.pid
            && MODULES_ADDS.load(Ordering::Relaxed) == adds
            && MODULES_SUBS.load(Ordering::Relaxed) == subs;
        if same {
            return 1; // stop: nothing new
        }
        MODULES_ADDS.store(adds, Ordering::Relaxed);
        MODULES_SUBS.store(subs, Ordering::Relaxed);
        walk.changed = true;
    }
    let (lo, hi) = module_range(info);
    if hi == 0 {
        return 0;
    }
    let mut exe = [0u8; 1024];
    // SAFETY: dlpi_name is a C string (empty for the main program).
    let name = if info.dlpi_name.is_null() {
        &b""[..]
    } else {
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
    };
    let path: &[u8] = if name.is_empty() {
        // The main program: its path from /proc/self/exe.
        // SAFETY: readlink into our buffer.
        let n = unsafe {
            sys::readlink(
                c"/proc/self/exe".as_ptr(),
                exe.as_mut_ptr() as *mut c_char,
                exe.len(),
            )
        };
        if n <= 0 {
            return 0;
        }
        &exe[..n as usize]
    } else {
        name
    };
    if !path.starts_with(b"/") {
        return 0; // the vDSO (linux-vdso.so.1): nothing to symbolize on disk
    }
    let mut line = Line::new();
    let _ = write!(line, "{{\"native_module\":{{\"path\":\"");
    line.json_bytes(path);
    let _ = write!(
        line,
        "\",\"start\":{lo},\"end\":{hi},\"bias\":{},\"build_id\":\"",
        info.dlpi_addr
    );
    if let Some(id) = build_id(info) {
        for b in id {
            let _ = write!(line, "{b:02x}");
        }
    }
    let _ = write!(line, "\"}},\"pid\":{}}}", walk.pid);
    walk.out.send(&line);
    0
}

/// The GNU build id from the module's PT_NOTE segments, in memory.
fn build_id(info: &sys::DlPhdrInfo) -> Option<&'static [u8]> {
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type != sys::PT_NOTE {
            continue;
        }
        let start = info.dlpi_addr.wrapping_add(ph.p_vaddr as usize);
        let len = ph.p_memsz as usize;
        let mut at = 0usize;
        while at + 12 <= len {
            // SAFETY: the note segment is mapped (it lies in a PT_LOAD) and
            // every read stays within its p_memsz.
            let word = |off: usize| unsafe { ((start + at + off) as *const u32).read_unaligned() };
            let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
            let name_at = at + 12;
            let desc_at = name_at + namesz.next_multiple_of(4);
            let next = desc_at + descsz.next_multiple_of(4);
            if next > len || descsz > 64 {
                break;
            }
            if kind == sys::NT_GNU_BUILD_ID && namesz == 4 {
                // SAFETY: within the segment, as checked above.
                let name =
                    unsafe { core::slice::from_raw_parts((start + name_at) as *const u8, 4) };
                if name == b"GNU\0" {
                    // SAFETY: as above; the mapping lives as long as the module.
                    return Some(unsafe {
                        core::slice::from_raw_parts((start + desc_at) as *const u8, descsz)
                    });
                }
            }
            at = next;
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Lines and the channel.

/// One JSON line in a fixed buffer: no allocation. A line that does not
/// fit is dropped rather than cut.
struct Line {
    buf: [u8; 4096],
    len: usize,
    overflow: bool,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 4096],
            len: 0,
            overflow: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        // Keep one byte for the newline.
        if self.len + bytes.len() >= self.buf.len() {
            self.overflow = true;
            return;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A path as a JSON string body: escapes, and `?` for bytes that are
    /// not UTF-8.
    fn json_bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => self.push(b"\\\""),
                    '\\' => self.push(b"\\\\"),
                    c if (c as u32) < 0x20 => {
                        let _ = write!(self, "\\u{:04x}", c as u32);
                    }
                    c => {
                        let mut tmp = [0u8; 4];
                        self.push(c.encode_utf8(&mut tmp).as_bytes());
                    }
                }
            }
            if !chunk.invalid().is_empty() {
                self.push(b"?");
            }
        }
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// The events channel, opened for one round of lines.
struct Channel {
    fd: c_int,
}

impl Channel {
    /// Opens the FIFO (or a file, `record --events FILE`: appended to)
    /// without blocking; when nobody reads it any more (the
    /// recorder ended), says so once: sampling stops and the thread ends.
    fn open() -> Option<Channel> {
        let path = CHANNEL.load(Ordering::Relaxed);
        if path.is_null() || GONE.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: path is the NUL-terminated value of MEMTRAIL_EVENTS.
        let fd = unsafe {
            sys::open(
                path,
                sys::O_WRONLY | sys::O_NONBLOCK | sys::O_APPEND | sys::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = sys::errno();
            if e == sys::ENXIO || e == sys::ENOENT {
                went_away();
            }
            return None;
        }
        Some(Channel { fd })
    }

    fn send(&mut self, line: &Line) {
        if line.overflow || self.fd < 0 {
            return;
        }
        let mut bytes = [0u8; 4096];
        bytes[..line.len].copy_from_slice(&line.buf[..line.len]);
        bytes[line.len] = b'\n';
        let rc = no_sigpipe(|| {
            // SAFETY: writing our buffer to our descriptor.
            unsafe { sys::write(self.fd, bytes.as_ptr() as *const c_void, line.len + 1) }
        });
        if rc < 0 && sys::errno() == sys::EPIPE {
            went_away();
            // SAFETY: closing our descriptor once.
            unsafe { sys::close(self.fd) };
            self.fd = -1;
        }
        // EAGAIN (the FIFO is full: the recorder is behind): the line is
        // lost, the next census says it all again.
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: closing our descriptor once.
            unsafe { sys::close(self.fd) };
        }
    }
}

fn went_away() {
    GONE.store(true, Ordering::Relaxed);
    sampler::disable();
}

/// Runs `f` (a write) with SIGPIPE blocked on this thread, and takes back a
/// SIGPIPE it raised, so a reader that went away never kills the program.
fn no_sigpipe(f: impl FnOnce() -> isize) -> isize {
    let mut pipe = sys::SigSet([0; 16]);
    let mut old = sys::SigSet([0; 16]);
    // SAFETY: signal masks of this thread only.
    unsafe {
        sys::sigemptyset(&mut pipe);
        sys::sigaddset(&mut pipe, sys::SIGPIPE);
        sys::pthread_sigmask(sys::SIG_BLOCK, &pipe, &mut old);
    }
    let rc = f();
    let failed_with_pipe = rc < 0 && sys::errno() == sys::EPIPE;
    // SAFETY: as above; sigtimedwait with a zero timeout only takes a
    // pending SIGPIPE of this thread.
    unsafe {
        if failed_with_pipe {
            let zero = sys::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let mut info = [0u64; 16];
            loop {
                let r = sys::sigtimedwait(&pipe, info.as_mut_ptr() as *mut c_void, &zero);
                if !(r < 0 && sys::errno() == sys::EINTR) {
                    break;
                }
            }
        }
        if sys::sigismember(&old, sys::SIGPIPE) == 0 {
            sys::pthread_sigmask(sys::SIG_SETMASK, &old, core::ptr::null_mut());
        }
    }
    if failed_with_pipe {
        // Keep errno for the caller.
        // SAFETY: this thread's errno.
        unsafe { *sys::__errno_location() = sys::EPIPE };
    }
    rc
}
