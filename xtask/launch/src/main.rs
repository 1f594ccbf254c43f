//! `cargo xtask ARGS`: checks the prerequisites of `ci` (and `prereq`)
//! first, in about a second from a fresh clone, then runs xtask (which
//! has the dependencies its tasks need) with ARGS, exiting as it does.
//! Failures print a message, never a backtrace.

#[path = "../../src/prereq.rs"]
mod prereq;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let task = args.first().and_then(|a| a.to_str());
    if matches!(task, Some("ci" | "prereq")) {
        if let Err(e) = prereq::ensure() {
            eprintln!("xtask error: {e}");
            return ExitCode::FAILURE;
        }
        if task == Some("prereq") && args.len() == 1 {
            return ExitCode::SUCCESS;
        }
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["run", "--package", "xtask", "--bin", "xtask", "--"])
        .args(&args)
        .status();
    match status {
        Ok(status) => match status.code() {
            Some(code) => ExitCode::from(code.clamp(0, 255) as u8),
            None => ExitCode::FAILURE,
        },
        Err(e) => {
            eprintln!("xtask error: cannot run {}: {e}", cargo.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}
