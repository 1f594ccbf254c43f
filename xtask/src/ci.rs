//! `cargo xtask ci`: everything a change must pass, in the order that fails
//! fastest.

use crate::cargo;

pub fn run() -> anyhow::Result<()> {
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
