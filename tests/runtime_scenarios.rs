//! Real runtimes whose allocators and collectors memtrail does not
//! control, each in a leaking and a non-leaking variant, and a real server
//! under load from a real client, recorded for 10 s under plain
//! `memtrail run` (adaptive sampling) and judged.
//!
//! The labels hold by construction: a leaking variant keeps every batch of
//! ordinary objects it makes in a global list for the life of the process
//! (nothing can free them), at a rate far above the material amount; a
//! steady variant makes the same batches and drops every reference to
//! them; the server keeps nothing between requests.
//!
//! Node.js's steady variant is not here: with V8's default heap sizing its
//! old space grows for at least 30 s before a major collection, and
//! memtrail calls that a leak (docs/leak-detection.md, "Real runtimes").

use serde_json::Value;

use crate::util::*;

/// `memtrail run -o OUT -- COMMAND` (no --interval), and the verdict on
/// the command's own process.
fn judged(command: &[&str]) -> (Value, tempfile::TempDir) {
    let dir = disk_tempdir();
    let out = dir.path().join("runtime.mtr");
    let mut args = vec!["run", "-o", out.to_str().unwrap(), "--"];
    args.extend_from_slice(command);
    let o = run(&args);
    assert!(o.status.success(), "{command:?}: {}", stderr(&o));
    let analysis = analyze_json(&out);
    // The command is the process whose parent was not recorded.
    let processes = analysis["processes"].as_array().unwrap();
    let pids: Vec<u64> = processes.iter().filter_map(|p| p["pid"].as_u64()).collect();
    let main = processes
        .iter()
        .find(|p| !pids.contains(&p["ppid"].as_u64().unwrap()))
        .unwrap_or_else(|| panic!("no command process: {analysis:#}"))
        .clone();
    (main, dir)
}

fn runtime(parts: &[&str], file: &str, mode: &str) -> Value {
    let path = program(&format!("runtimes/{file}"));
    let mut command: Vec<&str> = parts.to_vec();
    command.extend([path.to_str().unwrap(), mode, "10"]);
    judged(&command).0
}

#[test]
fn node_objects_kept_in_a_global_list_leak() {
    let p = runtime(&["node"], "leak.js", "leak");
    assert_eq!(p["verdict"], "leak", "{p:#}");
}

#[test]
fn jvm_objects_kept_in_a_static_list_leak() {
    let p = runtime(
        &["java", "-Xms16m", "-XX:+UseSerialGC"],
        "Leak.java",
        "leak",
    );
    assert_eq!(p["verdict"], "leak", "{p:#}");
}

#[test]
fn jvm_objects_dropped_after_use_do_not_leak() {
    let p = runtime(
        &["java", "-Xms16m", "-XX:+UseSerialGC"],
        "Leak.java",
        "steady",
    );
    assert_eq!(p["verdict"], "no-leak", "{p:#}");
}

#[test]
fn http_server_under_steady_load_does_not_leak() {
    let www = tempdir();
    let script = program("runtimes/served.py");
    let (p, _dir) = judged(&[
        "python3",
        script.to_str().unwrap(),
        "10",
        www.path().to_str().unwrap(),
    ]);
    assert_eq!(p["verdict"], "no-leak", "{p:#}");
}
