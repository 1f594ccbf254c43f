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

/// Words of a shell command line: whitespace-separated, with '...' and
/// "..." quoting (enough for the help's examples).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (_, c) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Every subcommand's --help (and memtrail --help) has an Examples section
/// whose lines are either `# what it does` or a command alone (regression:
/// an example ran into its description, `--anon the big anonymous
/// regions`), and every memtrail command in it parses with the real flags.
#[test]
fn every_help_has_examples_that_parse() {
    let mut helps = vec![("memtrail".to_string(), stdout(&run(&["--help"])))];
    for command in subcommands() {
        helps.push((command.clone(), stdout(&run(&[&command, "--help"]))));
    }
    for (name, help) in &helps {
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| l.trim() != "Examples:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        assert!(
            examples.len() >= 2,
            "{name} --help has no Examples section:\n{help}"
        );
        assert!(
            examples[0].starts_with("# "),
            "{name}: a description comes first: {examples:?}"
        );
        let mut commands = 0;
        for line in examples.iter().filter(|l| !l.starts_with("# ")) {
            assert!(
                !line.contains("  "),
                "{name}: a description runs into {line:?}"
            );
            for segment in line.split(" | ") {
                let segment = segment.split(" >").next().unwrap();
                let words = shell_words(segment);
                if words.first().map(String::as_str) != Some("memtrail") {
                    continue;
                }
                commands += 1;
                if let Err(e) = memtrail::command().try_get_matches_from(&words) {
                    panic!("{name} --help example {line:?} does not parse: {e}");
                }
            }
        }
        assert!(commands >= 1, "{name}: {examples:?}");
    }
}
