//! Every command example of README.md and docs/user-guide.md runs, against
//! real processes, and does what the text around it claims.
//!
//! [`EXAMPLES`] is the one table: each command line the two documents show
//! in a code block (synopses with `[...]`, `(a | b)` or `FILE|-` are not
//! examples), how it runs here, and what is checked. The test fails when
//! a document shows a line the table lacks, or the table holds a line no
//! document shows any more, so a new example cannot go unchecked.
//!
//! Each line runs with `sh -c` in one working directory (in table order:
//! later examples read what earlier ones wrote), with the built `memtrail`
//! first on PATH, in a session of its own so that "Ctrl-C" is a real
//! SIGINT to the whole pipeline. Substitutions are explicit in `run`:
//! `{PID}` is a real leaking process (tests/programs/leak.c) standing for
//! the docs' 4242 or PID, `{PORT}` a free port standing for 9464 (tests run
//! in parallel), and a few durations are shortened (said so in `why`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// What an example did.
struct Ran {
    dir: PathBuf,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn ok(&self) -> &Self {
        assert!(self.status.success(), "{self}");
        self
    }
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// While an example runs: its working directory and output so far.
struct Running<'a> {
    dir: &'a Path,
    pgid: u32,
}

impl Running<'_> {
    /// Whether a `memtrail SUBCOMMAND` of this example has written more
    /// than `bytes` (its write count in /proc/PID/io).
    fn wrote(&self, subcommand: &str, bytes: u64) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            // Field 5 (after the comm's closing parenthesis: state, ppid, pgrp).
            let pgrp = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|&b| b == 0);
            let is_memtrail = args.next().is_some_and(|a| a.ends_with(b"memtrail"));
            let sub = args.next().is_some_and(|a| a == subcommand.as_bytes());
            let wchar = std::fs::read_to_string(path.join("io"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            pgrp == Some(self.pgid) && is_memtrail && sub && wchar > bytes
        })
    }
}

enum How {
    /// Runs to its end; then the check.
    Runs(fn(&Ran)),
    /// Runs until the condition holds, gets Ctrl-C (SIGINT to its process
    /// group), ends; then the check.
    Interrupted(fn(&Running<'_>) -> bool, fn(&Ran)),
    /// Not run by this test, for the reason given.
    Elsewhere(&'static str),
}

struct Example {
    /// The line as a document shows it (without a leading `$ `).
    doc: &'static str,
    /// What runs, if not the line itself with the usual substitutions
    /// (4242 and PID: `{PID}`; 9464: `{PORT}`).
    run: Option<&'static str>,
    /// Why `run` differs from the line, if it does.
    why: &'static str,
    how: How,
}

const fn ex(doc: &'static str, how: How) -> Example {
    Example {
        doc,
        run: None,
        why: "",
        how,
    }
}

const fn changed(doc: &'static str, run: &'static str, why: &'static str, how: How) -> Example {
    Example {
        doc,
        run: Some(run),
        why,
        how,
    }
}

/// The `.mtr` segments in a directory.
fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "mtr"))
            .count()
    })
}

fn ticks(file: &Path) -> usize {
    records(file)
        .iter()
        .filter(|r| matches!(r, memtrail_format::Record::System(_)))
        .count()
}

/// The leaking process of tests/fixtures/report/small.mtr.
const FIXTURE_PID: &str = "30671";

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.contains("200 OK").then_some(body)
}

/// The examples, in the order they run: files written by one are read by
/// later ones. daemon.mtr, job.mtr and app.mtr start as the committed
/// recording of a real leak (tests/fixtures/report/small.mtr, 40 samples of
/// a malloc leak with two markers) so that the examples judging them have a
/// leak to find; the examples that record write other names.
fn examples() -> Vec<Example> {
    vec![
        // README: install and the two commands.
        ex("git clone <this repository> memtrail && cd memtrail", How::Elsewhere("needs the repository's address")),
        ex("cargo install --path . --locked  # puts `memtrail` on your PATH", How::Elsewhere("a release build of the package whose debug build every test here runs")),
        ex("cargo run --release -- demo", How::Elsewhere("tests/status_line.rs runs `memtrail demo` and checks its status line, verdict and report")),
        ex("cargo xtask ci", How::Elsewhere("the command that runs this test")),
        // snap
        ex("memtrail snap --pid 4242 --min-rss 1MiB --anon", How::Runs(|r| {
            assert!(r.ok().stdout.contains("[heap]") && r.stdout.contains("regions shown"), "{r}");
        })),
        ex("$ memtrail snap --pid 4242 --min-rss 1MiB --anon", How::Runs(|r| {
            let lines = r.ok().lines();
            let head: Vec<&str> = lines[1].split_whitespace().collect();
            assert_eq!(head, ["Address", "Kbytes", "RSS", "PSS", "Anon", "Swap", "Mode", "Mapping"], "{r}");
            let last = lines.last().unwrap();
            assert!(last.contains("total kB") && last.contains("regions shown"), "{r}");
            for l in &lines[2..lines.len() - 2] {
                assert!(l.ends_with("[heap]") || l.ends_with("[anon]") || l.contains("[stack"), "anonymous only: {l}");
            }
        })),
        ex("memtrail snap --pid 4242 --format json | jq '.processes[0].totals'", How::Runs(|r| {
            let totals: serde_json::Value = serde_json::from_str(&r.ok().stdout).unwrap();
            assert!(totals["rss"].as_u64().unwrap() > 0, "{r}");
        })),
        // record
        changed(
            "memtrail record --pid 4242 --children -o daemon.mtr      # Ctrl-C to stop",
            "memtrail record --pid {PID} --children -o recorded.mtr",
            "keeps daemon.mtr, the recorded leak later examples judge",
            How::Interrupted(|r| ticks(&r.dir.join("recorded.mtr")) >= 2, |r| {
                assert!(r.ok().stderr.contains("recorded.mtr (stopped by SIGINT)"), "{r}");
                assert!(ticks(&r.dir.join("recorded.mtr")) >= 2);
            }),
        ),
        ex("memtrail record --pid 4242 --interval 500ms | memtrail dump - | jq 'select(.type==\"process\") | .status.vm_rss'",
            // jq writes at its end (its output is a file): wait for dump to
            // have printed a process sample (the header and the system
            // record before it are much shorter).
            How::Interrupted(|r| r.wrote("dump", 4096), |r| {
                // Ctrl-C ends the recorder; dump and jq end with the stream.
                // Every frame but process samples printed `null` before.
                assert!(!r.lines().is_empty(), "{r}");
                for l in r.lines() {
                    assert!(l.parse::<u64>().is_ok_and(|kib| kib > 0), "VmRSS in KiB: {l:?}\n{r}");
                }
            })),
        // run
        changed(
            "memtrail run --interval 100ms -o job.mtr -- python3 job.py",
            "memtrail run --interval 100ms -o job-run.mtr -- python3 job.py",
            "keeps job.mtr, the recorded leak a later example dumps",
            How::Runs(|r| {
                assert!(r.ok().stdout.contains("job done"), "the job's own output: {r}");
                assert!(r.stderr.contains("job-run.mtr") && ticks(&r.dir.join("job-run.mtr")) >= 5, "{r}");
            }),
        ),
        changed(
            "memtrail run --fail-on-leak -- ./integration-tests",
            "memtrail run --interval 100ms --fail-on-leak -- ./integration-tests",
            "judged in 3 s at 100 ms rather than in 16 s at the default 1 s",
            How::Runs(|r| {
                assert_eq!(r.status.code(), Some(3), "a leak exits 3: {r}");
                assert!(r.stderr.to_lowercase().contains("leak"), "{r}");
            }),
        ),
        ex(
            "memtrail run --native -o daemon.mtr -- ./daemon",
            How::Elsewhere(
                "tests/native.rs runs `run --native` on real C, C++ and Rust programs and \
                 checks that analyze names the function that keeps memory, with its callers",
            ),
        ),
        // analyze
        // record --rotate: a directory of segments, read as one recording
        changed(
            "memtrail record --all --rotate 1h --keep 7d -o /var/lib/memtrail",
            "memtrail record --all --detail summary --interval 200ms --rotate 1s --keep 7d -o week",
            "segments of a second (not an hour) into a local directory, so that several are written in a test",
            How::Interrupted(|r| segments(&r.dir.join("week")) >= 2, |r| {
                assert!(r.ok().stderr.contains("segments written"), "{r}");
                assert!(segments(&r.dir.join("week")) >= 2, "{r}");
            }),
        ),
        changed(
            "memtrail record --all --detail rollup --rotate 1h --keep 7d -o /var/lib/memtrail",
            "memtrail record --all --detail rollup --interval 200ms --rotate 1s --keep 7d -o week-rollup",
            "segments of a second (not an hour) into a local directory, so that several are written in a test",
            How::Interrupted(|r| segments(&r.dir.join("week-rollup")) >= 2, |r| {
                assert!(r.ok().stderr.contains("segments written"), "{r}");
            }),
        ),
        changed(
            "memtrail analyze /var/lib/memtrail",
            "memtrail analyze week",
            "the directory the rotating example above wrote",
            How::Runs(|r| {
                assert!(r.ok().stdout.contains("processes leak"), "{r}");
            }),
        ),
        ex("memtrail analyze daemon.mtr", How::Runs(|r| {
            assert!(r.ok().stdout.contains(FIXTURE_PID) && r.stdout.contains("LEAK"), "{r}");
        })),
        ex("memtrail record --pid 4242 | memtrail analyze -", How::Interrupted(|r| r.wrote("record", 4096), |r| {
            // Ctrl-C: the verdict so far, on the process recorded.
            assert!(r.ok().stdout.contains(" of 1 process"), "{r}");
        })),
        ex("memtrail analyze daemon.mtr --format json | jq '.processes[] | select(.verdict==\"leak\")'", How::Runs(|r| {
            let leaks: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&r.ok().stdout)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(leaks.len(), 1, "{r}");
            assert_eq!(leaks[0]["pid"].to_string(), FIXTURE_PID);
        })),
        // diff
        changed(
            "memtrail snap --pid 4242 -o a.mtr; sleep 600; memtrail snap --pid 4242 -o b.mtr",
            "memtrail snap --pid {PID} -o a.mtr; sleep 1; memtrail snap --pid {PID} -o b.mtr",
            "one second apart: the leak grows ~10 MiB a second",
            How::Runs(|r| {
                r.ok();
            }),
        ),
        changed(
            "memtrail snap --pid PID -o a.mtr; sleep 600; memtrail snap --pid PID -o b.mtr",
            "memtrail snap --pid {PID} -o a.mtr; sleep 1; memtrail snap --pid {PID} -o b.mtr",
            "one second apart: the leak grows ~10 MiB a second",
            How::Runs(|r| {
                r.ok();
            }),
        ),
        ex("memtrail diff a.mtr b.mtr --anon --min 1MiB", How::Runs(|r| {
            let out = &r.ok().stdout;
            let heap = out.lines().find(|l| l.contains("[heap]")).unwrap_or_else(|| panic!("{r}"));
            assert!(heap.contains("grown"), "{r}");
        })),
        changed(
            "memtrail diff daemon.mtr --from 5m --to end",
            "memtrail diff daemon.mtr --from 1s --to end",
            "daemon.mtr lasts 2 s, not 5 minutes",
            How::Runs(|r| {
                assert!(r.ok().stdout.contains("tick ") && r.stdout.contains("(+1."), "{r}");
            }),
        ),
        ex("memtrail run --python-gc -o app.mtr -- python3 app.py   # app.py may call `memtrail mark \"before import\"`", How::Runs(|r| {
            r.ok();
        })),
        ex("memtrail diff app.mtr --from 'marker:before import' --to 'marker:after import'", How::Runs(|r| {
            let out = &r.ok().stdout;
            assert!(out.contains("before import") && out.contains("after import"), "the markers: {r}");
            assert!(out.contains("Widget"), "the census of the objects made in between: {r}");
        })),
        // report
        ex("memtrail report daemon.mtr", How::Runs(|r| {
            assert!(r.ok().stdout.contains("LEAK pid"), "{r}");
        })),
        ex("memtrail report daemon.mtr --html daemon.html", How::Runs(|r| {
            let page = r.ok().file("daemon.html");
            assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"), "{r}");
        })),
        ex("memtrail report daemon.mtr --format markdown >> issue.md", How::Runs(|r| {
            assert!(r.ok().file("issue.md").contains("**1 leaking**"), "{r}");
        })),
        // export
        ex("memtrail export daemon.mtr --format csv > daemon.csv", How::Runs(|r| {
            let csv = r.ok().file("daemon.csv");
            assert!(csv.starts_with("time_us,pid,") && csv.lines().count() == 41, "{r}");
        })),
        ex("memtrail export daemon.mtr --format openmetrics -o daemon.om", How::Runs(|r| {
            assert!(r.ok().file("daemon.om").ends_with("# EOF\n"), "{r}");
        })),
        // dump
        ex("memtrail dump job.mtr | jq -c 'select(.type==\"process\") | [.id.pid, .status.vm_rss]'", How::Runs(|r| {
            assert_eq!(r.ok().lines().len(), 40, "{r}");
            for l in r.lines() {
                let pair: Vec<u64> = serde_json::from_str(l).unwrap();
                assert_eq!(pair[0].to_string(), FIXTURE_PID);
                assert!(pair[1] > 0);
            }
        })),
        // The user guide's examples on app.mtr (from `run --python-gc` above).
        ex("memtrail report app.mtr", How::Runs(|r| {
            // The summary of the recording, with the steps app.py marked.
            let out = &r.ok().stdout;
            assert!(out.starts_with("memtrail report: app.mtr"), "{r}");
            assert!(out.contains("before import") && out.contains("after import"), "{r}");
        })),
        changed(
            "memtrail report app.mtr --html app.html && xdg-open app.html",
            "memtrail report app.mtr --html app.html && test -s app.html",
            "no browser here: `cargo xtask report-check` loads such a page in headless Chromium",
            How::Runs(|r| {
                assert!(r.ok().file("app.html").contains("<svg"), "{r}");
            }),
        ),
        ex("memtrail report app.mtr --format markdown >> issue.md", How::Runs(|r| {
            let md = r.ok().file("issue.md");
            assert!(md.contains("app.mtr") && md.contains("after import"), "{r}");
        })),
        changed(
            "memtrail record --pid 4242 --count 120 | memtrail report - --html now.html",
            "memtrail record --pid {PID} --count 3 | memtrail report - --html now.html",
            "3 samples rather than two minutes' worth",
            How::Runs(|r| {
                assert!(r.ok().file("now.html").contains("3 samples in 3 ticks"), "{r}");
            }),
        ),
        ex("memtrail export app.mtr --format openmetrics -o app.om", How::Runs(|r| {
            assert!(r.ok().file("app.om").ends_with("# EOF\n"), "{r}");
        })),
        ex("promtool tsdb create-blocks-from openmetrics app.om ./data   # then move ./data's blocks into Prometheus's storage", How::Runs(|r| {
            r.ok();
            let blocks = std::fs::read_dir(r.dir.join("data")).unwrap().flatten();
            assert!(blocks.into_iter().any(|b| b.path().join("meta.json").is_file()), "{r}");
        })),
        ex("memtrail export app.mtr --format csv > app.csv", How::Runs(|r| {
            assert!(r.ok().file("app.csv").lines().count() >= 3, "{r}");
        })),
        changed(
            "memtrail export app.mtr --format ndjson | jq -c 'select(.pid == 4242) | [.time_us, .rss_kib]'",
            "memtrail export app.mtr --format ndjson | jq -c \"select(.pid == $(cat app.pid)) | [.time_us, .rss_kib]\"",
            "4242 is app.py's pid, which it wrote to app.pid",
            How::Runs(|r| {
                // app.py's samples; its last, as it exits, has no memory.
                let rss = r.ok().lines().iter().filter_map(|l| {
                    let pair: Vec<Option<u64>> = serde_json::from_str(l).unwrap();
                    pair[1]
                }).count();
                assert!(rss >= 2, "{r}");
            }),
        ),
        ex("memtrail dump app.mtr | jq -c 'select(.type==\"process\") | [.time_us, .id.pid, .status.vm_rss]'", How::Runs(|r| {
            // Exiting processes' last samples have no memory (null).
            let rss = r.ok().lines().iter().filter_map(|l| {
                let triple: Vec<Option<u64>> = serde_json::from_str(l).unwrap();
                assert!(triple[0].is_some() && triple[1].is_some(), "{r}");
                triple[2]
            }).count();
            assert!(rss >= 2, "{r}");
        })),
        // serve
        changed(
            "memtrail serve --all                  # http://127.0.0.1:9464/metrics",
            "memtrail serve --all --listen 127.0.0.1:{PORT}",
            "a free port: tests run in parallel",
            How::Interrupted(|r| {
                let port: u16 = std::fs::read_to_string(r.dir.join(".port")).unwrap().parse().unwrap();
                http_get(port).is_some_and(|b| b.contains("memtrail_process_rss_bytes{"))
            }, |r| {
                r.ok();
            }),
        ),
        changed(
            "memtrail serve --name 'nginx|postgres' --interval 10s",
            "memtrail serve --name 'nginx|postgres' --interval 10s --listen 127.0.0.1:{PORT}",
            "a free port: tests run in parallel",
            How::Interrupted(|r| {
                let port: u16 = std::fs::read_to_string(r.dir.join(".port")).unwrap().parse().unwrap();
                http_get(port).is_some_and(|b| b.contains("# TYPE memtrail_"))
            }, |r| {
                r.ok();
            }),
        ),
        changed(
            "curl -s 127.0.0.1:9464/metrics | grep leak_suspected",
            "memtrail serve --pid {PID} --listen 127.0.0.1:{PORT} --judge-every 1s & \
             until curl -s 127.0.0.1:{PORT}/metrics | grep -q leak_suspected; do sleep 0.1; done; \
             curl -s 127.0.0.1:{PORT}/metrics | grep leak_suspected; kill -INT $!; wait",
            "a `memtrail serve` of the leak to ask, on a free port",
            How::Runs(|r| {
                assert!(r.ok().stdout.contains("memtrail_leak_suspected{"), "{r}");
            }),
        ),
        // README and user guide: attach (a venv and a daemon of their own).
        ex("memtrail python-hook install --python /srv/app/venv/bin/python", How::Elsewhere("tests/attach.rs installs the hook into a virtual environment it creates")),
        ex("memtrail attach 4242 --python-gc --duration 10m -o daemon.mtr", How::Elsewhere("tests/attach.rs attaches to a leaking daemon started from that environment")),
    ]
}

/// The command lines the documents show: code-block lines starting with
/// a command (or `$ ` and one), synopses left out.
fn documented() -> Vec<(String, &'static str)> {
    let mut lines = Vec::new();
    for doc in ["README.md", "docs/user-guide.md"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
        let mut in_block = false;
        for line in text.lines() {
            if line.starts_with("```") {
                in_block = !in_block;
                continue;
            }
            let line = line.strip_prefix("$ ").unwrap_or(line);
            let command = ["memtrail ", "cargo ", "git ", "promtool ", "curl "]
                .iter()
                .any(|c| line.starts_with(c));
            let synopsis = line.contains("FILE|-") || line.contains(" [-") || line.contains(" (--");
            if in_block && command && !synopsis {
                lines.push((normal(line), doc));
            }
        }
    }
    lines
}

/// Whitespace runs as one space, so alignment does not matter.
fn normal(line: &str) -> String {
    let line = line.strip_prefix("$ ").unwrap_or(line);
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The working directory every example runs in.
fn setup(dir: &Path) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/small.mtr");
    for name in ["daemon.mtr", "job.mtr"] {
        std::fs::copy(&fixture, dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("job.py"),
        "import time\nheld = []\nfor _ in range(10):\n    held.append(bytearray(1 << 20))\n    time.sleep(0.1)\nprint('job done')\n",
    )
    .unwrap();
    // Marks its steps with `memtrail mark`, as the README says app.py may.
    std::fs::write(
        dir.join("app.py"),
        "import os, subprocess, time\n\
         open('app.pid', 'w').write(str(os.getpid()))\n\
         class Widget:\n    pass\n\
         subprocess.run(['memtrail', 'mark', 'before import'], check=True)\n\
         time.sleep(1.5)\n\
         widgets = [Widget() for _ in range(5000)]\n\
         time.sleep(1.5)\n\
         subprocess.run(['memtrail', 'mark', 'after import'], check=True)\n\
         time.sleep(0.2)\n",
    )
    .unwrap();
    let tests = dir.join("integration-tests");
    std::fs::write(
        &tests,
        format!("#!/bin/sh\nexec '{}' malloc 3\n", leak_binary().display()),
    )
    .unwrap();
    std::fs::set_permissions(&tests, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// Runs one example to its end (or to Ctrl-C), within PATIENCE.
fn run_example(example: &Example, dir: &Path, pid: u32) -> Ran {
    let port = free_port();
    std::fs::write(dir.join(".port"), port.to_string()).unwrap();
    let line = match example.run {
        Some(run) => run.to_string(),
        None => normal(example.doc)
            .replace("4242", "{PID}")
            .replace("--pid PID", "--pid {PID}"),
    }
    .replace("{PID}", &pid.to_string())
    .replace("{PORT}", &port.to_string());
    let bin = Path::new(env!("CARGO_BIN_EXE_memtrail")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = std::fs::File::create(dir.join(".stdout")).unwrap();
    let err = std::fs::File::create(dir.join(".stderr")).unwrap();
    // setsid: a session and process group of its own, so Ctrl-C reaches
    // every process of the pipeline and nothing else.
    // An interactive shell ignores Ctrl-C itself and waits for the
    // pipeline, whose programs get the SIGINT: so does this one.
    let script = match example.how {
        How::Interrupted(..) => format!("trap '' INT; {line}"),
        _ => line.clone(),
    };
    let mut child = Command::new("setsid")
        .args(["sh", "-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .env_remove("MEMTRAIL_EVENTS")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("setsid and sh run");
    let pgid = child.id();
    let started = Instant::now();
    let kill = |sig: &str| {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
            .status();
    };
    if let How::Interrupted(ready, _) = &example.how {
        let running = Running { dir, pgid };
        wait_for(&format!("`{line}` to be ready for Ctrl-C"), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "`{line}` ended before Ctrl-C ({status}): {}",
                    std::fs::read_to_string(dir.join(".stderr")).unwrap_or_default()
                );
            }
            ready(&running).then_some(())
        });
        kill("INT");
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            kill("KILL");
            let _ = child.wait();
            panic!("`{line}` did not end within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        dir: dir.to_path_buf(),
        status,
        stdout: std::fs::read_to_string(dir.join(".stdout")).unwrap(),
        stderr: std::fs::read_to_string(dir.join(".stderr")).unwrap(),
    }
}

#[test]
fn every_example_of_the_readme_and_the_user_guide_runs() {
    let examples = examples();
    let documented = documented();
    assert!(documented.len() >= 30, "{documented:?}");
    let listed: Vec<String> = examples.iter().map(|e| normal(e.doc)).collect();
    let unchecked: Vec<&(String, &str)> = documented
        .iter()
        .filter(|(l, _)| !listed.contains(l))
        .collect();
    assert!(
        unchecked.is_empty(),
        "examples the test does not run (add them to EXAMPLES): {unchecked:#?}"
    );
    let stale: Vec<&String> = listed
        .iter()
        .filter(|l| !documented.iter().any(|(d, _)| d == *l))
        .collect();
    assert!(
        stale.is_empty(),
        "EXAMPLES lines no document shows: {stale:#?}"
    );
    for e in &examples {
        assert!(
            e.run.is_none() || !e.why.is_empty(),
            "say why `{}` runs differently",
            e.doc
        );
    }

    let leak = Killed(
        Command::new(leak_binary())
            .args(["malloc", "600"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the leak to have a heap", || {
        vm_rss(leak.0.id()).filter(|&r| r > 4096)
    });
    let dir = disk_tempdir();
    setup(dir.path());
    for example in &examples {
        let check = match &example.how {
            How::Elsewhere(why) => {
                assert!(!why.is_empty(), "say where `{}` is checked", example.doc);
                continue;
            }
            How::Runs(check) | How::Interrupted(_, check) => check,
        };
        let ran = run_example(example, dir.path(), leak.0.id());
        eprintln!("ran: {}", example.doc);
        check(&ran);
    }
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
