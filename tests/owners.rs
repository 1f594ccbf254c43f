//! Naming the owner: `run --python-gc` on real Python programs whose leak
//! has a known root type and chain (tests/programs/owners.py), through
//! analyze (text and JSON), diff and report; a steady program under the
//! hook is no leak; the hook package's own tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use memtrail_format::{ProcessId, Record};
use serde_json::Value;

use crate::util::*;

/// `memtrail run --python-gc --interval INTERVAL -o OUT -- python3
/// owners.py STOP SCENARIOS...`, stopped (by creating the file STOP) once
/// `enough` says the recording holds what the test needs for every
/// scenario's pid: the pid of each scenario.
fn run_owners(
    out: &Path,
    interval: &str,
    scenarios: &[&str],
    enough: impl Fn(&[Record], u32, &str) -> bool,
) -> Vec<(String, u32)> {
    let script = program("owners.py");
    let stop = out.with_extension("stop");
    let mut child = memtrail()
        .args(["run", "--python-gc", "--interval", interval, "-o"])
        .arg(out)
        .args(["--", "python3"])
        .arg(&script)
        .arg(&stop)
        .args(scenarios)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("memtrail runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    while pids.len() < scenarios.len() {
        let line = lines
            .next()
            .expect("owners.py names its scenarios")
            .unwrap();
        if let Some((name, pid)) = line
            .strip_prefix("scenario ")
            .and_then(|rest| rest.split_once(" pid "))
        {
            pids.push((name.to_string(), pid.parse::<u32>().unwrap()));
        }
    }
    wait_for("every scenario's censuses and retention", || {
        let records = records(out);
        pids.iter()
            .all(|(name, pid)| enough(&records, *pid, name))
            .then_some(())
    });
    std::fs::write(&stop, "").unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let o = child.wait_with_output().expect("memtrail ends");
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    assert!(
        rest.iter().any(|l| l == "done"),
        "owners.py did not finish: {rest:?}"
    );
    pids
}

/// Censuses of `pid`, and retention frames of `pid` for `key`.
fn counts(records: &[Record], pid: u32, key: &str) -> (usize, usize) {
    let mine = |p: Option<ProcessId>| p.map(|p| p.pid) == Some(pid);
    let censuses = records
        .iter()
        .filter(|r| matches!(r, Record::Census(c) if mine(c.process)))
        .count();
    let retentions = records
        .iter()
        .filter(|r| matches!(r, Record::Retention(x) if mine(x.process) && x.key == key))
        .count();
    (censuses, retentions)
}

fn pid_of(pids: &[(String, u32)], scenario: &str) -> u32 {
    pids.iter()
        .find(|(name, _)| name == scenario)
        .unwrap_or_else(|| panic!("no pid for {scenario} in {pids:?}"))
        .1
}

/// The census findings of one process, in the analysis's order.
fn census_of(analysis: &Value, pid: u32) -> Vec<Value> {
    verdict_of(analysis, pid)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "census")
        .cloned()
        .collect()
}

fn steps(finding: &Value) -> Vec<String> {
    finding["retained_by"][0]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no chain: {finding:#}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The first census finding of `pid` is the root `root`, a leak, kept
/// alive by a chain that `chain_ok` accepts; returns it.
fn root_first(
    analysis: &Value,
    pid: u32,
    root: &str,
    chain_ok: impl Fn(&[String]) -> bool,
) -> Value {
    let census = census_of(analysis, pid);
    let series: Vec<&str> = census
        .iter()
        .map(|f| f["series"].as_str().unwrap())
        .collect();
    let first = census
        .first()
        .unwrap_or_else(|| panic!("pid {pid}: no census finding"));
    assert_eq!(
        first["series"],
        format!("census:gc:{root}"),
        "pid {pid}: the root is not first: {series:?}"
    );
    assert_eq!(first["role"], "root", "{first:#}");
    assert_eq!(first["verdict"], "leak", "{first:#}");
    let chain = steps(first);
    assert!(chain_ok(&chain), "pid {pid}: {root} kept by {chain:?}");
    first.clone()
}

fn held_by(analysis: &Value, pid: u32, key: &str, owner: &str) {
    let census = census_of(analysis, pid);
    let f = census
        .iter()
        .find(|f| f["series"] == format!("census:gc:{key}"))
        .unwrap_or_else(|| panic!("pid {pid}: no finding for {key}"));
    assert_eq!(f["role"], "held", "{f:#}");
    assert_eq!(f["held_by"], owner, "{f:#}");
}

fn holds(finding: &Value, key: &str) -> u64 {
    finding["holds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["key"] == key)
        .map_or(0, |h| h["per_instance"].as_u64().unwrap())
}

#[test]
fn python_gc_names_the_root_type_first_and_the_chain_that_keeps_it() {
    let dir = tempdir();
    let out = dir.path().join("owners.mtr");
    // The first scenario runs in the parent, each other one in a worker it
    // forks: every one is reported under its own pid.
    let scenarios = [
        "registry",
        "class-cache",
        "logging",
        "loggers",
        "cycle",
        "churn",
    ];
    let root_of = |scenario: &str| match scenario {
        "registry" => "__main__.Session",
        "class-cache" => "__main__.Entry",
        "logging" => "__main__.CallbackHandler",
        "loggers" => "logging.Logger",
        "cycle" => "__main__.Parent",
        _ => "__main__.Order",
    };
    // Enough points to judge, and the root measured a few times.
    let pids = run_owners(&out, "100ms", &scenarios, |records, pid, scenario| {
        let (censuses, retentions) = counts(records, pid, root_of(scenario));
        censuses >= 50 && retentions >= 3
    });
    let analysis = analyze_json(&out);

    // A module-level dict of Sessions, each owning containers and Childs.
    let registry = pid_of(&pids, "registry");
    let session = root_first(&analysis, registry, "__main__.Session", |c| {
        c == ["__main__.SESSIONS", "[<key>]"]
    });
    assert_eq!(holds(&session, "__main__.Child"), 3, "{session:#}");
    assert!(holds(&session, "dict") >= 2, "{session:#}");
    held_by(&analysis, registry, "__main__.Child", "__main__.Session");

    // A class attribute cache.
    root_first(
        &analysis,
        pid_of(&pids, "class-cache"),
        "__main__.Entry",
        |c| c == ["__main__.Cache.entries", "[<key>]"],
    );

    // Handlers with closures, kept by the logging module's own loggers.
    let handler = root_first(
        &analysis,
        pid_of(&pids, "logging"),
        "__main__.CallbackHandler",
        |c| {
            c[0].starts_with("logging.")
                && c.iter().any(|s| s == "Logger.handlers")
                && c.last().is_some_and(|s| s == "[i]")
        },
    );
    assert_eq!(holds(&handler, "function"), 1, "{handler:#}");

    // A library's registry whose every entry points back at it: logging's
    // Manager is a referrer of each of its thousands of Loggers, and the
    // walk must still reach the anchor above it.
    root_first(&analysis, pid_of(&pids, "loggers"), "logging.Logger", |c| {
        c[0].starts_with("logging.")
            && c.iter().any(|s| s == "Manager.loggerDict")
            && c.last().is_some_and(|s| s == "[<key>]")
    });

    // Parents and children that point at each other, the parents in a list.
    let cycle = pid_of(&pids, "cycle");
    let parent = root_first(&analysis, cycle, "__main__.Parent", |c| {
        c == ["__main__.TREES", "[i]"]
    });
    assert_eq!(holds(&parent, "__main__.Kid"), 2, "{parent:#}");
    held_by(&analysis, cycle, "__main__.Kid", "__main__.Parent");

    // Built-in objects churning by thousands beside a slow real leak.
    let churn = pid_of(&pids, "churn");
    root_first(&analysis, churn, "__main__.Order", |c| {
        c == ["__main__.ORDERS", "[i]"]
    });

    // The text says the same, the root first in each process.
    let text = stdout(&run(&["analyze", out.to_str().unwrap()]));
    for (pid, root, chain) in [
        (
            registry,
            "gc:__main__.Session",
            "kept by __main__.SESSIONS → [<key>]",
        ),
        (churn, "gc:__main__.Order", "kept by __main__.ORDERS → [i]"),
    ] {
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains(&format!("pid {pid} ")))
            .skip(1)
            .take_while(|l| l.starts_with(' '))
            .collect();
        let first = block
            .iter()
            .position(|l| l.starts_with("     root") || l.starts_with("     census"))
            .unwrap_or_else(|| panic!("pid {pid}: no census line in {text}"));
        assert!(block[first].starts_with("     root"), "{text}");
        assert_eq!(block[first + 1].trim(), root, "{text}");
        assert_eq!(block[first + 2].trim(), chain, "{text}");
    }
    assert!(text.contains("each holds ~"), "{text}");
    assert!(text.contains("with it: __main__.Child"), "{text}");

    // diff from start to end: the root that grew first, with its chain.
    let o = run(&[
        "diff",
        out.to_str().unwrap(),
        "--pid",
        &registry.to_string(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let gc = doc["censuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == "gc")
        .unwrap_or_else(|| panic!("no gc census diff: {doc:#}"));
    let top = &gc["changes"][0];
    assert_eq!(top["key"], "__main__.Session", "{gc:#}");
    assert_eq!(top["role"], "root", "{top:#}");
    assert_eq!(top["retained_by"][0]["steps"][0], "__main__.SESSIONS");
    let text = stdout(&run(&[
        "diff",
        out.to_str().unwrap(),
        "--pid",
        &registry.to_string(),
    ]));
    assert!(
        text.contains("root, kept by __main__.SESSIONS → [<key>]"),
        "{text}"
    );

    // report: Markdown and HTML show the root with its chain.
    let md = stdout(&run(&[
        "report",
        out.to_str().unwrap(),
        "--format",
        "markdown",
    ]));
    assert!(md.contains("**What keeps it alive (gc)**"), "{md}");
    assert!(
        md.contains(r"| **root** | **\_\_main\_\_.Session** |"),
        "{md}"
    );
    let html = dir.path().join("owners.html");
    let o = run(&[
        "report",
        out.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<code>__main__.SESSIONS</code> → <code>[&lt;key&gt;]</code>"),
        "no chain in the page"
    );
    let terminal = stdout(&run(&["report", out.to_str().unwrap()]));
    assert!(terminal.contains("root __main__.Order"), "{terminal}");
}

#[test]
fn a_steady_program_under_the_hook_is_no_leak_census_included() {
    let dir = tempdir();
    let out = dir.path().join("steady.mtr");
    // Censuses every 50 ms (200 of them) and rounds of chains at most
    // every second: the hook itself must not make the program grow.
    let pids = run_owners(&out, "50ms", &["steady"], |records, pid, _| {
        counts(records, pid, "").0 >= 200
    });
    let analysis = analyze_json(&out);
    let pid = pid_of(&pids, "steady");
    let p = verdict_of(&analysis, pid);
    assert_eq!(p["verdict"], "no-leak", "{p:#}");
    let leaks: Vec<&Value> = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "leak")
        .collect();
    assert!(leaks.is_empty(), "{leaks:#?}");
    // The hook did run: its censuses are there, and its rounds of chains
    // (the program's types only grow while its cache fills).
    let (censuses, _) = counts(&records(&out), pid, "");
    assert!(censuses >= 200, "{censuses} censuses");
}

#[test]
fn the_python_hook_package_passes_its_own_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    // python3, and every other interpreter of 3.8 or later this machine
    // has (pyenv's, or python3.N on PATH): the hook runs in the user's.
    let mut pythons = vec![PathBuf::from("python3")];
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pyenv")));
    let mut candidates: Vec<PathBuf> = pyenv
        .and_then(|p| std::fs::read_dir(p.join("versions")).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/python"))
        .collect();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        candidates.extend(
            std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.strip_prefix("python3.")
                        .is_some_and(|minor| minor.parse::<u32>().is_ok())
                }),
        );
    }
    for python in candidates {
        let modern = Command::new(&python)
            .args(["-c", "import sys; sys.exit(sys.version_info < (3, 8))"])
            .status()
            .is_ok_and(|s| s.success());
        if modern {
            pythons.push(python);
        }
    }
    for python in &pythons {
        let o = Command::new(python)
            .args(["-m", "unittest", "discover", "-s", "tests", "-t", "."])
            .current_dir(&root)
            .output()
            .expect("the interpreter runs");
        assert!(
            o.status.success(),
            "{}:\n{}\n{}",
            python.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The 1-based line of `tests/programs/NAME` that holds `mark`.
fn line_of(name: &str, mark: &str) -> usize {
    let text = std::fs::read_to_string(program(name)).unwrap();
    1 + text
        .lines()
        .position(|l| l.contains(mark))
        .unwrap_or_else(|| panic!("{name} has no line marked {mark}"))
}

#[test]
fn python_tracemalloc_attributes_a_shared_helper_to_the_caller_that_leaks() {
    let dir = tempdir();
    let out = dir.path().join("helper.mtr");
    let script = program("shared_helper.py");
    let o = memtrail()
        .args(["run", "--python-tracemalloc", "--interval", "100ms", "-o"])
        .arg(&out)
        .args(["--", "python3"])
        .arg(&script)
        .arg("6")
        .output()
        .expect("memtrail runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let alloc = format!(
        "shared_helper.py:{}",
        line_of("shared_helper.py", "# ALLOC")
    );
    let leaking = format!(
        "shared_helper.py:{} > ",
        line_of("shared_helper.py", "# LEAKING CALLER")
    );
    let churning = format!(
        "shared_helper.py:{} > ",
        line_of("shared_helper.py", "# CHURNING CALLER")
    );
    let analysis = analyze_json(&out);
    let findings: Vec<(String, String)> = analysis["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["findings"].as_array().unwrap().iter())
        .filter(|f| f["kind"] == "census")
        .map(|f| {
            (
                f["series"].as_str().unwrap().to_string(),
                f["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The helper's line, reached from the caller that keeps its buffers.
    assert!(
        findings
            .iter()
            .any(|(s, v)| s.ends_with(&alloc) && s.contains(&leaking) && v == "leak"),
        "{findings:?}"
    );
    // The caller that drops them is not a leak.
    assert!(
        !findings
            .iter()
            .any(|(s, v)| s.contains(&churning) && v == "leak"),
        "{findings:?}"
    );
}
