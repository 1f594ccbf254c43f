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
    eprintln!("xtask ci: all checks passed");
    Ok(())
}
