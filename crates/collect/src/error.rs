use std::path::PathBuf;

/// Why the collector could not start, or a one-shot read failed.
///
/// Once a [`crate::Collector`] runs, trouble with one process or one file is
/// not an error: it becomes a [`memtrail_format::Notice`] in the tick.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The pid asked for is not running (or not visible: `hidepid`).
    #[error("no process with pid {pid} (is it running? see `ps -p {pid}`)")]
    NoSuchProcess { pid: u32 },

    /// The process exited while it was being read.
    #[error("process {pid} exited while it was being read")]
    Vanished { pid: u32 },

    /// A file the collector needs could not be read for lack of permission.
    #[error("cannot read {}: permission denied; {remedy}", path.display())]
    PermissionDenied { path: PathBuf, remedy: String },

    /// A file the collector needs could not be read.
    #[error("cannot read {}: {source}; {remedy}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
        remedy: &'static str,
    },

    /// A process's stat could not be read or parsed; the message says why
    /// and what to do.
    #[error("{message}")]
    Unreadable { path: PathBuf, message: String },

    /// A file was read but did not parse.
    #[error(
        "cannot parse {}: {message}; this kernel's format is not what memtrail expects: \
         please report it with the file's contents",
        path.display()
    )]
    Malformed { path: PathBuf, message: String },
}

impl CollectError {
    pub(crate) fn io(path: PathBuf, source: std::io::Error) -> CollectError {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            return CollectError::PermissionDenied {
                path,
                remedy:
                    "run memtrail as root or with CAP_SYS_PTRACE, or check the mount options of \
                         /proc (hidepid)"
                        .to_owned(),
            };
        }
        CollectError::Io {
            path,
            source,
            remedy: "is procfs mounted there? (`mount -t proc proc /proc`)",
        }
    }
}
