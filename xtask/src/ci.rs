//! `cargo xtask ci`: everything a change must pass, in the order that fails
//! fastest: the prerequisites first, before anything is built (a missing
//! package stops the run within seconds, not after minutes of tests).

use crate::cargo;

pub fn run() -> anyhow::Result<()> {
    crate::prereq::ensure().map_err(anyhow::Error::msg)?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--locked"])?;
    crate::report_check::run(&[])?;
    // The packages, built once in release and installed/removed (needs root).
    crate::dist::check(&[])?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}
