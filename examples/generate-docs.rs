//! Writes the shell completions (docs/completions) and man pages (docs/man)
//! generated from the memtrail command; run by `cargo xtask docs`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["docs/completions", "docs/man"] {
        // Stale pages of removed subcommands must not linger.
        let dir = root.join(dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    for file in memtrail::generated_files() {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
        eprintln!("wrote {}", file.path);
    }
    Ok(())
}
