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
    let ci = doc(".ci/run");
    assert!(
        ci.contains("cargo xtask ci"),
        ".ci/run runs the README's test command"
    );
}
