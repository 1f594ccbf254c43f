//! `memtrail report` and `memtrail export`: whole outputs against reviewed
//! expected files, the HTML page's promises, escaping of hostile recorded
//! strings, colour only on a terminal, torn recordings, and the
//! OpenMetrics export backfilled into Prometheus with promtool.
//!
//! The expected files are under tests/fixtures/report/, made from
//! `small.mtr` there: a real recording of `tests/programs/leak.c malloc`
//! (40 samples at 50 ms) with two markers added by `util::add_markers`.
//! After a reviewed change of an output, rewrite them with
//! `MEMTRAIL_BLESS=1 cargo test --test tests cli_report` and review the
//! diff. Deleting `small.mtr` and running that records a new one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::*;

/// `memtrail report RECORDING --html HTML`, which must succeed: the page,
/// and the command's output (the terminal summary on standard output).
fn html_report(recording: &Path, html: &Path) -> (String, std::process::Output) {
    let o = run(&[
        "report",
        recording.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (std::fs::read_to_string(html).unwrap(), o)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

fn bless() -> bool {
    std::env::var_os("MEMTRAIL_BLESS").is_some_and(|v| v == "1")
}

/// Records `leak malloc` for `count` samples at 50 ms; returns its pid.
fn record_leak(out: &Path, count: u32) -> u32 {
    let mut child = Command::new(leak_binary())
        .args(["malloc", "60"])
        .spawn()
        .expect("leak starts");
    let pid = child.id();
    let recorded = std::panic::catch_unwind(|| record_samples(pid, out, "50ms", count, &[]));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = recorded {
        std::panic::resume_unwind(panic);
    }
    pid
}

/// The committed small recording, recorded anew only when missing.
fn small() -> PathBuf {
    let path = fixtures().join("small.mtr");
    if !path.exists() && bless() {
        let dir = tempdir();
        let raw = dir.path().join("raw.mtr");
        let pid = record_leak(&raw, 40);
        add_markers(
            &raw,
            &path,
            &[
                (0.3, "warm-up done", None),
                (0.6, "batch 2 <started> & \"queued\"", Some(pid)),
            ],
        );
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// memtrail ARGS run in the repository root (so the recording's name in
/// the output is the same relative path everywhere).
fn run_in_root(args: &[&str]) -> std::process::Output {
    memtrail()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("memtrail runs")
}

/// `actual` equals the expected file `name`, or rewrites it when blessing.
fn check(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if bless() {
        std::fs::write(&path, actual).expect("write the expected file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MEMTRAIL_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the expected output at line {}:\n--- expected\n{}\n--- actual\n{}\n\
             (after reviewing, MEMTRAIL_BLESS=1 rewrites it)",
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

#[test]
fn expected_outputs_of_a_small_recording() {
    small();
    let file = "tests/fixtures/report/small.mtr";
    for (args, expected) in [
        (vec!["report", file], "small.txt"),
        (vec!["report", file, "--format", "markdown"], "small.md"),
        (vec!["export", file, "--format", "csv"], "small.csv"),
        (vec!["export", file, "--format", "ndjson"], "small.ndjson"),
    ] {
        let o = run_in_root(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?} warns about a sound recording");
        check(expected, &stdout(&o));
    }
    // What the expected files must show, so a bless cannot hide a loss.
    let text = std::fs::read_to_string(fixtures().join("small.txt")).unwrap();
    assert!(text.contains("LEAK pid"), "{text}");
    assert!(text.contains('█'), "sparklines: {text}");
    assert!(text.contains("[heap]"), "the growing region: {text}");
    assert!(text.contains("batch 2 <started>"), "markers: {text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line}");
    }
    let csv = std::fs::read_to_string(fixtures().join("small.csv")).unwrap();
    assert_eq!(csv.lines().count(), 41, "a header and 40 samples");
    assert!(csv.starts_with("time_us,pid,start_time,ppid,comm,command,rss_kib,anon_kib,"));
}

#[test]
fn html_report_is_self_contained_with_charts_and_markers() {
    let dir = tempdir();
    let (page, _) = html_report(&small(), &dir.path().join("r.html"));
    assert!(page.contains(
        "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\""
    ));
    assert!(!page.contains("<script"), "no script at all");
    for attr in ["src=", "href=\"http", "@import", "url("] {
        assert!(!page.contains(attr), "nothing fetched: found {attr}");
    }
    // The only URL is the SVG namespace, which is a name, not a request.
    let urls = page.matches("http://").count() + page.matches("https://").count();
    let namespaces = page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(urls, namespaces, "a URL other than the SVG namespace");
    assert_eq!(page.matches("<svg").count(), 2, "memory and counts charts");
    assert!(page.contains("rss trend"), "the fitted trend is drawn");
    // Marker labels in the charts and the table, escaped.
    assert!(page.contains("batch 2 &lt;started&gt; &amp; &quot;queued&quot;"));
    assert!(!page.contains("<started>"));
    assert!(page.contains("[heap]"), "top growing regions");
    assert!(page.contains("Process tree"));
}

#[test]
fn hostile_recorded_strings_render_as_text() {
    let dir = disk_tempdir();
    let file = dir.path().join("\"><img src=x onerror=alert(1)>");
    let script = "<script>alert(1)</script>";
    let comm = "<b>x&'\"</b>";
    let mut helper = Command::new("python3")
        .arg("-u")
        .arg(program("hostile.py"))
        .arg(&file)
        .arg(script)
        .env("HOSTILE_COMM", comm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut stdin = helper.stdin.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(helper.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = helper.id();
    let out = dir.path().join("hostile.mtr");
    let recorder = record_in_background(pid, &out, &["--count", "40", "--detail", "maps"]);
    wait_for("ten samples of the hostile process", || {
        (samples_of(&records(&out), pid).len() >= 10).then_some(())
    });
    // A new mapping of the hostile file, so it is a region that grew.
    std::io::Write::write_all(&mut stdin, b"grow\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "grown");
    let o = recorder.wait();
    let _ = helper.kill();
    let _ = helper.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let recorded = records(&out);
    let seen = samples_of(&recorded, pid);
    assert_eq!(seen[0].info.comm, comm, "the hostile comm was recorded");

    let (page, o) = html_report(&out, &dir.path().join("hostile.html"));
    let md = stdout(&run(&[
        "report",
        out.to_str().unwrap(),
        "--format",
        "markdown",
    ]));
    let text = stdout(&o);
    for (name, doc) in [("html", &page), ("markdown", &md)] {
        for raw in [script, "<img src=x", comm, "<b>"] {
            assert!(!doc.contains(raw), "{name} contains {raw:?} raw");
        }
    }
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.contains("&lt;b&gt;x&amp;&#39;&quot;&lt;/b&gt;"),
        "comm"
    );
    assert!(
        page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
        "the mapped file, as a grown region"
    );
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    // The terminal shows the text as it is (it is not markup there).
    assert!(text.contains(comm), "{text}");

    let csv = stdout(&run(&["export", out.to_str().unwrap(), "--format", "csv"]));
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains("\"<b>x&'\"\"</b>\""), "comm quoted: {row}");
    let om = stdout(&run(&[
        "export",
        out.to_str().unwrap(),
        "--format",
        "openmetrics",
    ]));
    assert!(
        om.contains("comm=\"<b>x&'\\\"</b>\""),
        "label escaped: {om}"
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let file = small();
    let cmd = format!(
        "{} report {}",
        env!("CARGO_BIN_EXE_memtrail"),
        file.display()
    );
    // `script` runs the command on a pseudo-terminal.
    let on_tty = |no_color: bool| {
        let mut c = Command::new("script");
        // A terminal that supports colour, whatever the test's environment.
        c.args(["-qec", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm-256color");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let o = c.output().expect("script (util-linux) runs");
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let coloured = on_tty(false);
    assert!(
        coloured.contains("\x1b["),
        "colour on a terminal: {coloured:?}"
    );
    assert!(coloured.contains("LEAK"));
    let plain = on_tty(true);
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");
    assert!(plain.contains("LEAK"));
    let piped = stdout(
        &memtrail()
            .args(["report", file.to_str().unwrap()])
            .env_remove("CLICOLOR_FORCE")
            .output()
            .unwrap(),
    );
    assert!(!piped.contains('\x1b'), "no colour into a pipe");
}

#[test]
fn torn_recording_is_reported_up_to_the_damage() {
    let dir = tempdir();
    let bytes = std::fs::read(small()).unwrap();
    let torn = dir.path().join("torn.mtr");
    std::fs::write(&torn, &bytes[..bytes.len() * 2 / 3]).unwrap();
    for args in [
        vec!["report", torn.to_str().unwrap()],
        vec!["export", torn.to_str().unwrap(), "--format", "csv"],
    ] {
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("warning"), "{args:?}: {err}");
        assert!(err.contains("no end frame"), "{args:?}: {err}");
        assert!(!stdout(&o).is_empty());
    }
    let csv = stdout(&run(&["export", torn.to_str().unwrap(), "--format", "csv"]));
    let rows = csv.lines().count() - 1;
    assert!((10..40).contains(&rows), "{rows} rows of the 40 samples");
}

#[test]
fn openmetrics_export_is_backfilled_by_promtool() {
    let dir = tempdir();
    let rec = dir.path().join("leak.mtr");
    let pid = record_leak(&rec, 30);
    let om = dir.path().join("leak.om");
    let o = run(&[
        "export",
        rec.to_str().unwrap(),
        "--format",
        "openmetrics",
        "-o",
        om.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));

    let data = dir.path().join("tsdb");
    let o = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect("promtool runs (Debian package prometheus; .ci/run installs it)");
    assert!(
        o.status.success(),
        "promtool refused the export: {}{}",
        stdout(&o),
        stderr(&o)
    );
    // promtool 2.42's dump opens the directory as a database, which needs
    // a write-ahead-log folder; backfilling writes only blocks.
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let o = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(&data)
        .output()
        .expect("promtool runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let dump = stdout(&o);
    // Every family holds the process's 30 samples, with the values exported.
    let label = format!("pid=\"{pid}\"");
    for family in [
        "memtrail_process_rss_bytes",
        "memtrail_process_anon_bytes",
        "memtrail_process_fds",
        "memtrail_process_threads",
    ] {
        let n = dump
            .lines()
            .filter(|l| l.contains(&format!("__name__=\"{family}\"")) && l.contains(&label))
            .count();
        assert_eq!(n, 30, "{family}: {n} samples in the blocks");
    }
    // The values and times survive: the first RSS point, in bytes at its
    // millisecond (promtool prints values with %g).
    let point = |line: &str| -> (f64, u64) {
        let mut fields = line.rsplit(' ');
        let t = fields.next().unwrap();
        let v: f64 = fields.next().unwrap().parse().unwrap();
        let ms = match t.split_once('.') {
            Some((s, frac)) => s.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap(),
            None => t.parse().unwrap(),
        };
        (v, ms)
    };
    let exported = point(
        text.lines()
            .find(|l| l.starts_with("memtrail_process_rss_bytes{"))
            .unwrap(),
    );
    let stored = point(
        dump.lines()
            .find(|l| l.contains("\"memtrail_process_rss_bytes\"") && l.contains(&label))
            .unwrap(),
    );
    assert!(exported.0 > 1e6, "RSS in bytes: {exported:?}");
    assert_eq!(stored, exported, "the first RSS point in the blocks");
}

#[test]
fn process_tree_shows_children_and_lifetimes() {
    let dir = tempdir();
    let rec = dir.path().join("tree.mtr");
    let o = run(&[
        "run",
        "--interval",
        "50ms",
        "-o",
        rec.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "sleep 0.5 & sleep 1; wait",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&run(&["report", rec.to_str().unwrap()]));
    let tree: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("process tree"))
        .skip(1)
        .collect();
    assert_eq!(tree.len(), 3, "sh and its two sleeps:\n{text}");
    assert!(
        tree[0].starts_with("  ") && tree[0].contains(" sh "),
        "{text}"
    );
    assert!(
        tree[0].ends_with("exited 0"),
        "run knows the exit code: {text}"
    );
    for child in &tree[1..] {
        assert!(
            child.starts_with("    ") && child.contains(" sleep "),
            "{text}"
        );
        assert!(child.contains("exited"), "{text}");
    }
    let (page, _) = html_report(&rec, &dir.path().join("tree.html"));
    assert_eq!(
        page.matches("<div class=\"bar\">").count(),
        3,
        "a lifetime bar per process"
    );
    assert!(page.contains("padding-left:1.8em"), "children are indented");
}
