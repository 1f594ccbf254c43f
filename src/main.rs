//! memtrail: find memory leaks in long-running Linux processes from the
//! outside. This binary is thin: it parses flags, validates them once into
//! the arguments the library crates take, runs one command and maps the
//! result to an exit status.

mod cmd;
mod events;
mod input;
mod native;
mod output;
mod recorder;
mod rotate;
mod signals;
mod status;

// The clap definition lives in the library (src/lib.rs), shared with
// xtask's generated completions and man pages.
use memtrail::{cli, units};

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Exit status for any error: the message on standard error says what and why.
pub const EXIT_ERROR: u8 = 2;
/// Exit status when `--fail-on-leak` was given and a leak was found.
pub const EXIT_LEAK: u8 = 3;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "memtrail: error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            if let Some(hint) = hint(&err) {
                let _ = writeln!(stderr, "  hint: {hint}");
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The kinds of the operating-system errors behind `err`, outermost first,
/// whichever error type carries them.
fn io_error_kinds(err: &anyhow::Error) -> impl Iterator<Item = std::io::ErrorKind> + '_ {
    err.chain().filter_map(|cause| {
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            Some(e.kind())
        } else if let Some(e) = cause.downcast_ref::<serde_json::Error>() {
            e.io_error_kind()
        } else {
            cause
                .downcast_ref::<memtrail_format::WriteError>()
                .and_then(|e| e.io_error_kind())
        }
    })
}

/// What to do about the operating-system errors users meet most, for the
/// operation that failed: writing a file the user named (the error's chain
/// holds [`output::Writing`]) or reading one. Reading /proc has its own
/// remedies, in the collector's errors.
pub fn hint(err: &anyhow::Error) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    let writing = err.downcast_ref::<output::Writing>().is_some();
    match (io_error_kinds(err).next()?, writing) {
        (StorageFull, _) => {
            Some("the disk is full: free some space, or write elsewhere with -o FILE")
        }
        (PermissionDenied, true) => Some(
            "the file cannot be created or written there: name a file in a directory you can write to \
             (e.g. -o ./out.mtr), or check that directory's permissions",
        ),
        (PermissionDenied, false) => {
            Some("this user may not read the file: run as its owner or as root, or copy it")
        }
        (NotFound, true) => Some(
            "the directory to write in does not exist: create it (mkdir -p), \
             or name a file elsewhere",
        ),
        (NotFound, false) => Some("check the path: the file or its directory does not exist"),
        _ => None,
    }
}

/// A closed pipe downstream (`memtrail dump x.mtr | head`) is a normal end,
/// not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    io_error_kinds(err).any(|kind| kind == std::io::ErrorKind::BrokenPipe)
}
