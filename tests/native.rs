//! `memtrail run --native`: real C, C++ and Rust programs, built here with
//! gcc, g++ and rustc, sampled by the preloaded library, their stacks named
//! by memtrail, their leaks judged. Programs are in tests/programs/native.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use memtrail_format::Record;
use memtrail_symbolize::Symbolizer;

use crate::util::*;

/// Ticks of 50 ms the programs run: ~3.5 s, enough samples at 200 ms.
const TICKS: &str = "70";

fn native_program(name: &str) -> PathBuf {
    program("native").join(name)
}

/// Builds `source` with `compiler` and `flags` into `dir/name`.
fn build(dir: &Path, compiler: &str, source: &str, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(native_program(source))
        .status()
        .unwrap_or_else(|e| panic!("{compiler} runs (is it installed?): {e}"));
    assert!(status.success(), "{compiler} failed to build {source}");
    out
}

fn keeper(dir: &Path, flags: &[&str]) -> PathBuf {
    let mut all = vec!["-g", "-O2", "-pthread"];
    all.extend_from_slice(flags);
    build(dir, "gcc", "keeper.c", "keeper", &all)
}

/// `memtrail run --native --native-rate RATE --interval 200ms -o OUT -- CMD`.
fn run_native(out: &Path, rate: &str, command: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--native",
        "--native-rate",
        rate,
        "--interval",
        "200ms",
        "-o",
        out.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(command);
    let o = run(&args);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    o
}

/// What the program says it kept ("kept N bytes").
fn kept(o: &Output) -> u64 {
    let out = stdout(o);
    let line = out
        .lines()
        .find(|l| l.starts_with("kept "))
        .unwrap_or_else(|| panic!("no `kept` line in {out}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Native findings of the analysis: (pid, site, verdict).
fn native_findings(path: &Path) -> Vec<(u64, String, String)> {
    let analysis = analyze_json(path);
    let mut out = Vec::new();
    for p in analysis["processes"].as_array().unwrap() {
        for f in p["findings"].as_array().unwrap() {
            if let Some(site) = f["series"].as_str().unwrap().strip_prefix("census:native:") {
                out.push((
                    p["pid"].as_u64().unwrap(),
                    site.to_string(),
                    f["verdict"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn leaks_named(findings: &[(u64, String, String)], function: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|(_, site, verdict)| verdict == "leak" && site.starts_with(function))
        .map(|(_, site, _)| site.clone())
        .collect()
}

/// The last estimate, in the recording, of the live bytes of the sites
/// whose name starts with `function` (named as memtrail names them).
fn last_estimate(path: &Path, function: &str) -> u64 {
    let (_, records) = read_all(path);
    let mut names = Symbolizer::new();
    let mut last = None;
    for r in &records {
        names.learn(r);
        if let Record::Census(c) = r {
            if c.source == "native" {
                let named = names.name_census(*c.clone());
                let bytes: u64 = named
                    .counts
                    .iter()
                    .filter(|c| c.key.starts_with(function))
                    .map(|c| c.count)
                    .sum();
                if bytes > 0 {
                    last = Some(bytes);
                }
            }
        }
    }
    last.unwrap_or_else(|| panic!("no census names {function}"))
}

fn assert_within_20_percent(what: &str, estimate: u64, truth: u64) {
    let ratio = estimate as f64 / truth as f64;
    eprintln!("{what}: estimated {estimate} live bytes, the program kept {truth} ({ratio:.3}x)");
    assert!(
        (0.8..=1.2).contains(&ratio),
        "{what}: estimate {estimate} is not within 20% of {truth}"
    );
}

#[test]
fn c_only_the_function_that_keeps_is_named_with_its_caller() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &[]);
    let out = dir.path().join("keep.mtr");
    let o = run_native(&out, "4KiB", &[bin.to_str().unwrap(), "keep", TICKS]);
    let findings = native_findings(&out);
    let keepers = leaks_named(&findings, "keep_bytes (keeper.c:");
    assert_eq!(keepers.len(), 1, "one leak names keep_bytes: {findings:?}");
    assert!(
        keepers[0].contains("← tick"),
        "its caller is named: {}",
        keepers[0]
    );
    // use_and_drop allocates as many bytes but frees them.
    assert!(
        findings
            .iter()
            .all(|(_, site, _)| !site.contains("use_and_drop")),
        "{findings:?}"
    );
    assert_within_20_percent(
        "keep_bytes",
        last_estimate(&out, "keep_bytes (keeper.c:"),
        kept(&o),
    );
    // The report and the diff show the site too.
    let r = run(&["report", out.to_str().unwrap(), "--format", "markdown"]);
    // (Markdown escapes the underscore.)
    assert!(
        stdout(&r).contains("keep\\_bytes (keeper.c:"),
        "{}",
        stdout(&r)
    );
    let d = run(&[
        "diff",
        out.to_str().unwrap(),
        "--from",
        "start",
        "--to",
        "end",
    ]);
    assert!(stdout(&d).contains("keep_bytes"), "{}", stdout(&d));
}

#[test]
fn cpp_a_map_growing_behind_a_method_names_the_method() {
    let dir = tempdir();
    let bin = build(
        dir.path(),
        "g++",
        "registry.cpp",
        "registry",
        &["-g", "-O2"],
    );
    let out = dir.path().join("registry.mtr");
    let o = run_native(&out, "4KiB", &[bin.to_str().unwrap(), TICKS]);
    let findings = native_findings(&out);
    let sites = leaks_named(&findings, "Registry::remember (registry.cpp:");
    assert_eq!(sites.len(), 1, "{findings:?}");
    // Not the C++ runtime: operator new, std::vector, std::map.
    assert!(
        findings
            .iter()
            .all(|(_, s, _)| !s.starts_with("std::") && !s.starts_with("operator new")),
        "{findings:?}"
    );
    // The vectors' bytes plus the map's nodes, all under the method.
    let estimate = last_estimate(&out, "Registry::remember");
    eprintln!(
        "Registry::remember: estimated {estimate}, vectors {}",
        kept(&o)
    );
    assert!(estimate as f64 >= 0.8 * kept(&o) as f64, "{estimate}");
}

#[test]
fn rust_a_static_vec_and_box_leak_are_named() {
    let dir = tempdir();
    let bin = build(
        dir.path(),
        "rustc",
        "leaky.rs",
        "leaky",
        &["-g", "-C", "opt-level=1"],
    );
    let out = dir.path().join("leaky.mtr");
    let o = run_native(&out, "4KiB", &[bin.to_str().unwrap(), TICKS]);
    let findings = native_findings(&out);
    let sites = leaks_named(&findings, "leaky::remember (leaky.rs:");
    assert_eq!(sites.len(), 1, "{findings:?}");
    assert!(sites[0].contains("← leaky::main"), "{}", sites[0]);
    assert_within_20_percent(
        "leaky::remember",
        last_estimate(&out, "leaky::remember"),
        kept(&o),
    );
    // Box::leak: named in the recording's censuses, whatever its verdict.
    let leaked = last_estimate(&out, "leaky::leak_config");
    assert!(leaked > 100_000, "leak_config: {leaked}");
}

#[test]
fn eight_threads_allocating_and_freeing_are_sampled_together() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &[]);
    let out = dir.path().join("threads.mtr");
    let o = run_native(&out, "4KiB", &[bin.to_str().unwrap(), "threads", TICKS]);
    let findings = native_findings(&out);
    let sites = leaks_named(&findings, "hoard (keeper.c:");
    assert_eq!(sites.len(), 1, "{findings:?}");
    assert!(sites[0].contains("← thread_main"), "{}", sites[0]);
    assert!(
        findings.iter().all(|(_, s, _)| !s.starts_with("churn_all")),
        "{findings:?}"
    );
    assert_within_20_percent("hoard", last_estimate(&out, "hoard (keeper.c:"), kept(&o));
}

#[test]
fn forked_and_execed_children_report_under_their_own_pids() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &[]);
    let out = dir.path().join("fork.mtr");
    let o = run_native(&out, "8KiB", &[bin.to_str().unwrap(), "fork", TICKS]);
    let (_, records) = read_all(&out);
    let parent = records
        .iter()
        .find_map(|r| match r {
            Record::Exit(e) if e.exit_code.is_some() => Some(e.id.pid),
            _ => None,
        })
        .expect("the command's exit");
    let findings = native_findings(&out);
    let forked: Vec<_> = findings
        .iter()
        .filter(|(_, s, v)| v == "leak" && s.starts_with("forked_keeps"))
        .collect();
    let execed: Vec<_> = findings
        .iter()
        .filter(|(_, s, v)| v == "leak" && s.starts_with("keep_bytes"))
        .collect();
    assert_eq!(forked.len(), 1, "{findings:?}\n{}", stdout(&o));
    assert_eq!(execed.len(), 1, "{findings:?}");
    assert_ne!(forked[0].0, parent as u64);
    assert_ne!(execed[0].0, parent as u64);
    assert_ne!(forked[0].0, execed[0].0);
    // The parent only churns: no leak of its own.
    assert!(
        findings
            .iter()
            .all(|(pid, _, v)| *pid != parent as u64 || v != "leak"),
        "{findings:?}"
    );
}

#[test]
fn a_library_loaded_with_dlopen_is_symbolized() {
    let dir = tempdir();
    let plugin = build(
        dir.path(),
        "gcc",
        "plugin.c",
        "libplugin.so",
        &["-g", "-O2", "-shared", "-fPIC"],
    );
    let host = build(
        dir.path(),
        "gcc",
        "dlhost.c",
        "dlhost",
        &["-g", "-O2", "-ldl"],
    );
    let out = dir.path().join("dlopen.mtr");
    let o = run_native(
        &out,
        "4KiB",
        &[host.to_str().unwrap(), plugin.to_str().unwrap(), TICKS],
    );
    let findings = native_findings(&out);
    let sites = leaks_named(&findings, "plugin_keep (plugin.c:");
    assert_eq!(sites.len(), 1, "{findings:?}");
    assert!(sites[0].contains("← main"), "{}", sites[0]);
    assert_within_20_percent(
        "plugin_keep",
        last_estimate(&out, "plugin_keep (plugin.c:"),
        kept(&o),
    );
}

/// docs/native.md: stacks come from unwind tables (.eh_frame), which gcc
/// emits by default, so a program without frame pointers loses nothing.
#[test]
fn without_frame_pointers_the_stack_is_whole() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &["-fomit-frame-pointer"]);
    let out = dir.path().join("nofp.mtr");
    run_native(&out, "8KiB", &[bin.to_str().unwrap(), "keep", TICKS]);
    let sites = leaks_named(&native_findings(&out), "keep_bytes (keeper.c:");
    assert_eq!(sites.len(), 1);
    assert!(sites[0].contains("← tick"), "{}", sites[0]);
}

/// docs/native.md: without unwind tables either, the allocating function
/// is still named, but not its callers.
#[test]
fn without_unwind_tables_the_allocating_function_is_still_named() {
    let dir = tempdir();
    let bin = keeper(
        dir.path(),
        &[
            "-fomit-frame-pointer",
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
        ],
    );
    let out = dir.path().join("nounwind.mtr");
    run_native(&out, "8KiB", &[bin.to_str().unwrap(), "keep", TICKS]);
    let sites = leaks_named(&native_findings(&out), "keep_bytes (keeper.c:");
    assert_eq!(sites.len(), 1, "{:?}", native_findings(&out));
}

#[test]
fn an_allocation_heavy_program_that_keeps_nothing_has_no_native_leak() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &[]);
    let out = dir.path().join("steady.mtr");
    run_native(&out, "64KiB", &[bin.to_str().unwrap(), "steady", TICKS]);
    let (_, records) = read_all(&out);
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Census(c) if c.source == "native")),
        "the program was sampled"
    );
    let findings = native_findings(&out);
    assert!(findings.iter().all(|(_, _, v)| v != "leak"), "{findings:?}");
}

/// Sampled blocks carry the sampler's header: every allocation function
/// must keep its promises on them (contents, zeroes, alignment, usable
/// size, frees), with nearly every block sampled.
#[test]
fn every_allocation_function_keeps_its_promises_on_sampled_blocks() {
    let dir = tempdir();
    let bin = build(
        dir.path(),
        "gcc",
        "every_allocator.c",
        "every_allocator",
        &["-g", "-O1"],
    );
    let out = dir.path().join("every.mtr");
    let o = run_native(&out, "64B", &[bin.to_str().unwrap()]);
    assert!(stdout(&o).contains("bad 0"), "{}{}", stdout(&o), stderr(&o));
    let (_, records) = read_all(&out);
    assert!(
        records.iter().any(
            |r| matches!(r, Record::Census(c) if c.source == "native" && !c.counts.is_empty())
        ),
        "the program was sampled"
    );
}

#[test]
fn a_static_program_gets_a_notice_not_silence() {
    let dir = tempdir();
    let bin = keeper(dir.path(), &["-static"]);
    let out = dir.path().join("static.mtr");
    let o = run_native(&out, "8KiB", &[bin.to_str().unwrap(), "keep", "10"]);
    assert!(
        stderr(&o).contains("native sampler never reported"),
        "{}",
        stderr(&o)
    );
    let (_, records) = read_all(&out);
    assert!(records.iter().any(|r| matches!(r,
        Record::Notice(n) if n.message.contains("native sampler never reported"))));
}

/// The sampler on its own (as `run --native` preloads it), copied out of
/// memtrail through a child's environment.
fn sampler_library(dir: &Path) -> PathBuf {
    let so = dir.join("sampler.so");
    let script = format!("cp \"$LD_PRELOAD\" '{}'", so.display());
    let out = dir.join("copy.mtr");
    run_native(&out, "512KiB", &["sh", "-c", &script]);
    assert!(so.is_file(), "LD_PRELOAD named the sampler");
    so
}

#[test]
fn with_no_reader_the_sampler_is_quiet_and_a_file_channel_is_appended_to() {
    let dir = tempdir();
    let so = sampler_library(dir.path());
    let bin = keeper(dir.path(), &[]);
    let with_channel = |channel: &Path| {
        Command::new(&bin)
            .args(["keep", "20"])
            .env("LD_PRELOAD", &so)
            .env("MEMTRAIL_EVENTS", channel)
            .env("MEMTRAIL_NATIVE_RATE", "4096")
            .env("MEMTRAIL_NATIVE_INTERVAL", "100")
            .output()
            .expect("the program runs")
    };
    // A FIFO nobody reads (the recorder went away): the program runs as
    // it would alone, with nothing on its standard error.
    let fifo = dir.path().join("events");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let o = with_channel(&fifo);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kept(&o), 20 * 64 * 512);
    assert_eq!(stderr(&o), "");
    // A regular file (`record --events FILE`): lines are appended, each a
    // JSON object within PIPE_BUF.
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, "{\"marker\": \"before\"}\n").unwrap();
    let o = with_channel(&file);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .inspect(|l| assert!(l.len() < 4096, "{l}"))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["marker"], "before", "appended, not overwritten");
    assert!(lines.iter().any(|l| l["native"]["rate"] == 4096));
    assert!(lines.iter().any(|l| l["native_module"]["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("/keeper"))));
    let censuses = lines
        .iter()
        .filter(|l| l["census"]["source"] == "native")
        .count();
    assert!(censuses >= 2, "{text}");
}

#[test]
fn a_program_with_its_own_malloc_gets_a_notice_not_silence() {
    let dir = tempdir();
    let bin = build(dir.path(), "gcc", "own_malloc.c", "own_malloc", &["-O1"]);
    let out = dir.path().join("own.mtr");
    let o = run_native(&out, "8KiB", &[bin.to_str().unwrap(), "10"]);
    assert!(
        stderr(&o).contains("native sampling is not possible"),
        "{}",
        stderr(&o)
    );
    let (_, records) = read_all(&out);
    assert!(records.iter().any(|r| matches!(r,
        Record::Marker(m) if m.source == "native" && m.label.starts_with("native sampling off"))));
    assert!(records.iter().any(|r| matches!(r,
        Record::Notice(n) if n.message.contains("malloc of its own"))));
}

/// A script's helper processes each start the sampler and say so; the
/// timeline says it once. (Each helper lives half a second, time enough
/// to say it: six markers before there was one.)
#[test]
fn helper_processes_put_one_sampling_marker_on_the_timeline() {
    let dir = tempdir();
    let out = dir.path().join("helpers.mtr");
    run_native(
        &out,
        "512KiB",
        &["sh", "-c", "for i in 1 2 3 4; do sleep 0.5; done"],
    );
    let (_, records) = read_all(&out);
    let on = records
        .iter()
        .filter(|r| matches!(r, Record::Marker(m) if m.label.starts_with("native sampling on")))
        .count();
    assert_eq!(on, 1, "{records:#?}");
}
