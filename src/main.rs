//! memtrail: find memory leaks in long-running Linux processes from the
//! outside. This binary is thin: it parses flags, validates them once into
//! the arguments the library crates take, runs one command and maps the
//! result to an exit status.

mod cli;
mod cmd;
mod output;
mod recorder;
mod signals;
mod units;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Exit status for any error: the message on standard error says what and why.
pub const EXIT_ERROR: u8 = 2;

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

/// What to do about the operating-system errors users meet most.
fn hint(err: &anyhow::Error) -> Option<&'static str> {
    use std::io::ErrorKind::*;
    let kind = err.chain().find_map(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .map(|e| e.kind())
            .or_else(|| {
                cause
                    .downcast_ref::<memtrail_format::WriteError>()
                    .and_then(|e| e.io_error_kind())
            })
    })?;
    match kind {
        StorageFull => Some("the disk is full: free some space, or write elsewhere with -o FILE"),
        PermissionDenied => Some(
            "run as the user who owns the file or process, or as root \
             (CAP_SYS_PTRACE is enough to read other users' /proc files)",
        ),
        NotFound => Some("check the path: the file or its directory does not exist"),
        _ => None,
    }
}

/// A closed pipe downstream (`memtrail dump x.mtr | head`) is a normal end,
/// not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
            || cause
                .downcast_ref::<memtrail_format::WriteError>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
    })
}
