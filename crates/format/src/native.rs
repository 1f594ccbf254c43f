//! Native allocation sites (`memtrail run --native`): the sampled call
//! stacks and the modules that let them be symbolized later, anywhere.
//! Kinds 0x43 and 0x44; docs/format.md specifies their bytes.

use serde::{Deserialize, Serialize};

use crate::model::ProcessId;
use crate::wire::ProcessIdWire;

/// A call stack sampled by allocation inside a process (kind `0x43`):
/// return addresses, innermost first, as the process saw them. A census of
/// source `native` counts bytes by `stack:ID` (the id in 16 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeStack {
    /// When the recorder read it.
    pub time_us: u64,
    pub process: Option<ProcessId>,
    /// The stack's id within its process (a hash of its addresses).
    pub id: u64,
    /// Return addresses, innermost first; at most
    /// [`NativeStack::MAX_FRAMES`] as memtrail writes them.
    pub frames: Vec<u64>,
}

impl NativeStack {
    /// Most frames a recorder keeps of one stack.
    pub const MAX_FRAMES: usize = 64;
}

/// An ELF object mapped into a process (kind `0x44`): the program, a shared
/// library, one loaded later with dlopen. An address `a` of a stack in
/// `[start, end)` is at `a - bias` in the file's own addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeModule {
    pub time_us: u64,
    pub process: Option<ProcessId>,
    /// Lowest and highest (exclusive) address of its loaded segments.
    pub start: u64,
    pub end: u64,
    /// Load bias: the difference between addresses in memory and in the file.
    pub bias: u64,
    /// The file, as the process named it.
    pub path: String,
    /// Its GNU build id (empty when it has none): a file at `path` with
    /// another id is another build, and is not used to name its frames.
    pub build_id: Vec<u8>,
}

impl NativeModule {
    /// Longest build id kept, in bytes.
    pub const MAX_BUILD_ID: usize = 64;
}

/// Kind 0x43.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NativeStackWire {
    time_us: u64,
    process: Option<ProcessIdWire>,
    id: u64,
    frames: Vec<u64>,
}

impl NativeStackWire {
    pub(crate) fn from_model(s: &NativeStack) -> Self {
        NativeStackWire {
            time_us: s.time_us,
            process: s.process.map(Into::into),
            id: s.id,
            frames: s.frames.clone(),
        }
    }

    pub(crate) fn into_model(self) -> NativeStack {
        NativeStack {
            time_us: self.time_us,
            process: self.process.map(Into::into),
            id: self.id,
            frames: self.frames,
        }
    }
}

/// Kind 0x44.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NativeModuleWire {
    time_us: u64,
    process: Option<ProcessIdWire>,
    start: u64,
    end: u64,
    bias: u64,
    path: String,
    build_id: Vec<u8>,
}

impl NativeModuleWire {
    pub(crate) fn from_model(m: &NativeModule) -> Self {
        NativeModuleWire {
            time_us: m.time_us,
            process: m.process.map(Into::into),
            start: m.start,
            end: m.end,
            bias: m.bias,
            path: m.path.clone(),
            build_id: m.build_id.clone(),
        }
    }

    pub(crate) fn into_model(self) -> NativeModule {
        NativeModule {
            time_us: self.time_us,
            process: self.process.map(Into::into),
            start: self.start,
            end: self.end,
            bias: self.bias,
            path: self.path,
            build_id: self.build_id,
        }
    }
}
