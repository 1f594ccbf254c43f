//! A command or flag that is not documented does not exist: every command
//! and every long flag in `--help` must appear in docs/user-guide.md, and
//! the README must show its two commands.

use crate::util::*;

fn doc(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn subcommands() -> Vec<String> {
    let help = stdout(&run(&["--help"]));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_and_flag_is_in_the_user_guide() {
    let guide = doc("docs/user-guide.md");
    let commands = subcommands();
    assert!(commands.len() >= 5, "{commands:?}");
    let mut missing = Vec::new();
    for command in &commands {
        if !guide.contains(&format!("memtrail {command}")) {
            missing.push(format!("memtrail {command}"));
        }
        let help = stdout(&run(&[command, "--help"]));
        for word in help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
            if let Some(flag) = word.strip_prefix("--") {
                let flag: String = flag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if flag.is_empty() || flag == "help" || flag == "version" {
                    continue;
                }
                if !guide.contains(&format!("--{flag}")) {
                    missing.push(format!("memtrail {command} --{flag}"));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not documented in docs/user-guide.md: {missing:?}"
    );
}

#[test]
fn readme_shows_the_two_commands() {
    let readme = doc("README.md");
    assert!(readme.contains("cargo run --release -- demo"));
    assert!(readme.contains("cargo xtask ci"));
    // .ci/run runs the README's test command and nothing the README's
    // command lacks: the prerequisites are xtask's to install.
    let ci = doc(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(commands, ["exec cargo xtask ci"], ".ci/run: {ci}");
}

#[test]
fn generated_completions_and_man_pages_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = memtrail::generated_files();
    let mut stale = Vec::new();
    for file in &files {
        match std::fs::read(root.join(&file.path)) {
            Ok(on_disk) if on_disk == file.contents => {}
            Ok(_) => stale.push(format!("{} differs", file.path)),
            Err(e) => stale.push(format!("{}: {e}", file.path)),
        }
    }
    // A page or completion of a command that no longer exists.
    for dir in ["docs/completions", "docs/man"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if !files.iter().any(|f| f.path == path) {
                stale.push(format!("{path} is not generated any more"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nrun `cargo xtask docs` and commit the result"
    );
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/completions/memtrail.bash");
    let complete = |words: &str, cword: usize, previous: &str| {
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _memtrail memtrail \"${{COMP_WORDS[{cword}]}}\" {previous}; \
                 echo \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("bash runs");
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    assert_eq!(complete("memtrail se", 1, "memtrail"), "serve");
    assert_eq!(
        complete("memtrail serve --max", 2, "serve"),
        "--max-processes"
    );
}
