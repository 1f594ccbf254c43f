//! `cargo xtask docs`: writes the shell completions and man pages under
//! docs/ from the one clap command the binary parses with
//! (`memtrail::generated_files`). The test `generated_docs_are_current`
//! (tests/cli_docs.rs) fails when they are stale, naming this task.
//!
//! The writing is done by the memtrail package's `generate-docs` example,
//! so that xtask does not depend on memtrail: `cargo xtask ci` must build
//! in seconds and check its prerequisites before the workspace is built.

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = args.first() {
        anyhow::bail!("`cargo xtask docs` takes no arguments (got `{extra}`)");
    }
    crate::cargo(&[
        "run",
        "--quiet",
        "--locked",
        "--package",
        "memtrail",
        "--example",
        "generate-docs",
    ])
}
