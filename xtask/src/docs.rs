//! `cargo xtask docs`: writes the shell completions and man pages under
//! docs/ from the one clap command the binary parses with
//! (`memtrail::generated_files`). The test `generated_docs_are_current`
//! (tests/cli_docs.rs) fails when they are stale, naming this task.

use anyhow::Context;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = args.first() {
        anyhow::bail!("`cargo xtask docs` takes no arguments (got `{extra}`)");
    }
    let root = crate::workspace_root();
    for dir in ["docs/completions", "docs/man"] {
        // Stale pages of removed subcommands must not linger.
        let dir = root.join(dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    for file in memtrail::generated_files() {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", file.path);
    }
    Ok(())
}
