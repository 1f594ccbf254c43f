//! `cargo xtask ci` (this package's binary: what the alias runs) on a
//! machine that lacks a prerequisite and may not install it: it must stop
//! within seconds, before building anything (not even xtask), with a
//! message naming what is missing and the one command to run, and no
//! backtrace even with RUST_BACKTRACE set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory of symlinks to every command on PATH except `hidden`: the
/// machine as it would be without those packages.
fn path_without(hidden: &[&str], dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for entry_dir in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        let Ok(entries) = std::fs::read_dir(&entry_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = bin.join(&name);
            if hidden.iter().any(|h| name == *h) || link.symlink_metadata().is_ok() {
                continue; // the first of PATH wins, as for the shell
            }
            let _ = std::os::unix::fs::symlink(entry.path(), &link);
        }
    }
    assert!(hidden.iter().all(|h| !bin.join(h).exists()));
    bin
}

/// Runs xtask with `args`, killing it (and failing) after `limit`.
fn xtask(args: &[&str], bin: &Path, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask-launch"))
        .args(args)
        .env("PATH", bin)
        .env("RUST_BACKTRACE", "1")
        .env("MEMTRAIL_XTASK_NO_INSTALL", "1")
        // Were the check to pass by mistake, `cargo` must not start the
        // whole suite from inside a test: `check` hides it from PATH.
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtask runs");
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "xtask {args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn check(hidden: &str, package: &str) {
    let dir = tempfile_dir(hidden);
    let bin = path_without(&[hidden, "cargo"], &dir);
    let (output, took) = xtask(&["ci"], &bin, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("  {hidden}")) && stderr.contains("missing prerequisites"),
        "names what is missing: {stderr}"
    );
    let install = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("apt-get install -y "))
        .unwrap_or_else(|| panic!("names the command to run: {stderr}"));
    assert!(
        install.split_whitespace().any(|w| w == package),
        "the command installs {package}: {stderr}"
    );
    assert!(
        stderr.contains("MEMTRAIL_XTASK_NO_INSTALL is set"),
        "says why nothing was installed: {stderr}"
    );
    assert!(
        !stderr.contains("$ cargo") && !stderr.contains("cannot run cargo"),
        "nothing was built: {stderr}"
    );
    assert!(
        !stderr.contains("backtrace") && !stderr.contains("Backtrace"),
        "no backtrace: {stderr}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-prereq-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn ci_without_script_stops_fast_naming_bsdutils() {
    check("script", "bsdutils");
}

#[test]
fn ci_without_promtool_stops_fast_naming_prometheus() {
    check("promtool", "prometheus");
}

#[test]
fn prereq_passes_when_nothing_is_hidden() {
    let dir = tempfile_dir("none");
    let bin = path_without(&[], &dir);
    let (output, _) = xtask(&["prereq"], &bin, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("prerequisites present"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
