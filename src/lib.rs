//! The memtrail command line as a library: the one clap [`command`] that
//! the `memtrail` binary parses with, and the files generated from it
//! ([`generated_files`]: shell completions and man pages).
//!
//! The binary (src/main.rs) holds everything else. This library exists so
//! that `cargo xtask docs` and the tests build the very same command the
//! binary does (hyperfine's pattern): completions and man pages cannot
//! drift from the flags users type.
//!
//! ```
//! let command = memtrail::command();
//! assert!(command.find_subcommand("record").is_some());
//! let files = memtrail::generated_files();
//! assert!(files.iter().any(|f| f.path == "docs/man/memtrail.1"));
//! ```

pub mod cli;
pub mod units;

use clap::CommandFactory;

/// The memtrail command line, as the binary parses it.
pub fn command() -> clap::Command {
    cli::Cli::command()
}

/// A file generated from [`command`], and its exact contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Relative to the workspace root.
    pub path: String,
    pub contents: Vec<u8>,
}

/// Every file `cargo xtask docs` writes: completions for bash, zsh and
/// fish, a man page for memtrail and one per subcommand
/// (`memtrail-record.1`, ...). Deterministic: no dates, no paths.
pub fn generated_files() -> Vec<GeneratedFile> {
    use clap_complete::{generate, Shell};
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "memtrail.bash"),
        (Shell::Zsh, "_memtrail"),
        (Shell::Fish, "memtrail.fish"),
    ] {
        let mut contents = Vec::new();
        generate(shell, &mut command(), "memtrail", &mut contents);
        files.push(GeneratedFile {
            path: format!("docs/completions/{name}"),
            contents,
        });
    }
    let mut root = command();
    root.build();
    files.push(man_page(root.clone(), "memtrail"));
    for sub in root.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("memtrail-{}", sub.get_name());
        files.push(man_page(sub.clone().name(name.clone()), &name)); // "string": owned names
    }
    files
}

fn man_page(command: clap::Command, name: &str) -> GeneratedFile {
    let mut contents = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut contents)
        .expect("rendering into memory cannot fail");
    GeneratedFile {
        path: format!("docs/man/{name}.1"),
        contents,
    }
}
