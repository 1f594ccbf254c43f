//! `memtrail serve` against a real Prometheus server (Debian package
//! `prometheus`): it scrapes the endpoint, and the series come back through
//! its HTTP API. The alerting rules are loaded by that server and checked
//! and unit-tested with `promtool`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::*;

const INSTALL: &str = "install it: `apt-get install prometheus` (Debian and Ubuntu; \
                       .ci/run does this)";

/// The path of a Prometheus tool, failing (never skipping) when missing.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("`{name}` is not on PATH: {INSTALL}"))
}

fn rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts/memtrail-rules.yml")
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free now on loopback (for programs that cannot report theirs).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// `GET http://ADDR/PATH` over HTTP/1.0: (status, Content-Type, body), or
/// None if nothing answers yet.
fn http_get(addr: &str, path: &str, accept: Option<&str>) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Some((status, content_type, body.to_string()))
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of every series a PromQL query returns, with its labels.
fn query(prometheus: &str, promql: &str) -> Vec<(serde_json::Value, f64)> {
    let Some((200, _, body)) = http_get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
        None,
    ) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
    json["data"]["result"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter_map(|r| {
                    let v = r["value"][1].as_str()?.parse().ok()?;
                    Some((r["metric"].clone(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `memtrail serve ARGS --listen 127.0.0.1:0`, and the address it bound.
fn serve(args: &[&str]) -> (Background, String) {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut server = Background::spawn(&all);
    let mut stderr = BufReader::new(server.0.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr
        .read_line(&mut line)
        .expect("read serve's first line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("serve did not say where it listens: {line:?}"))
        .to_string();
    // Keep draining its standard error so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (server, addr)
}

#[test]
fn prometheus_scrapes_serve_and_gets_the_rss_and_the_verdict_of_a_leaking_process() {
    let prometheus_bin = tool("prometheus");
    let mut leak = Helper::python("steady_leak.py", &["300"]);
    assert_eq!(leak.line(), "ready");
    let pid = leak.pid();
    let (_serve, metrics) = serve(&[
        "--pid",
        &pid.to_string(),
        "--interval",
        "200ms",
        "--judge-every",
        "1s",
    ]);

    let dir = tempdir();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: memtrail\n    static_configs:\n      - targets: ['{metrics}']\n",
            rules().display()
        ),
    )
    .unwrap();
    let prometheus = format!("127.0.0.1:{}", free_port());
    let _prometheus = Killed(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus: {e}; {INSTALL}")),
    );

    // The RSS Prometheus stored is the process's, give or take what it
    // leaked since the last scrape (2.5 MiB/s).
    let selector = format!("memtrail_process_rss_bytes{{pid=\"{pid}\"}}");
    let (labels, stored) = wait_for("Prometheus to return the RSS close to VmRSS", || {
        let results = query(&prometheus, &selector);
        let (labels, value) = results.first()?.clone();
        let rss = vm_rss(pid)? as f64 * 1024.0;
        ((value - rss).abs() <= rss * 0.1).then_some((labels, value))
    });
    assert_eq!(labels["job"], "memtrail");
    assert!(
        labels["comm"]
            .as_str()
            .is_some_and(|c| c.starts_with("python")),
        "{labels}"
    );
    assert!(labels["start_time"]
        .as_str()
        .is_some_and(|s| s.parse::<u64>().is_ok()));
    assert!(
        labels.get("cmdline").is_none(),
        "no command line unless asked: {labels}"
    );
    assert!(stored > 1024.0 * 1024.0, "{stored}");

    // The live analyzer's verdict on the anonymous memory: a leak.
    let suspected = format!("memtrail_leak_suspected{{pid=\"{pid}\",series=\"anon\"}}");
    wait_for("Prometheus to hold memtrail_leak_suspected = 1", || {
        query(&prometheus, &suspected)
            .first()
            .and_then(|(_, v)| (*v == 1.0).then_some(()))
    });
    let growth = query(
        &prometheus,
        &format!("memtrail_growth_per_hour{{pid=\"{pid}\",series=\"anon\"}}"),
    );
    let per_hour = growth.first().expect("growth per hour is exported").1;
    // 2.5 MiB/s is 9 GiB/h; the Theil-Sen slope is near it.
    assert!(per_hour > 2e9 && per_hour < 2e10, "{per_hour}");

    // The alerting rules loaded in that server.
    let (status, _, body) = http_get(&prometheus, "/api/v1/rules", None).expect("rules API");
    assert_eq!(status, 200);
    assert!(body.contains("MemtrailLeakSuspected"), "{body}");
    drop(leak);
}

#[test]
fn both_exposition_formats_parse_and_the_classic_one_passes_promtool() {
    let promtool = tool("promtool");
    let holder = hold(8);
    let (_serve, addr) = serve(&["--pid", &holder.pid().to_string(), "--interval", "100ms"]);
    let (status, content_type, text) = wait_for("the first page", || {
        http_get(&addr, "/metrics", None).filter(|(_, _, body)| body.contains("rss_bytes{"))
    });
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(!text.contains("# EOF"));
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        stdout(&checked),
        stderr(&checked)
    );

    let (_, content_type, om) = http_get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .expect("OpenMetrics page");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE memtrail_collections counter\n"), "{om}");

    let (status, _, _) = http_get(&addr, "/nothing-here", None).expect("404 page");
    assert_eq!(status, 404);
}

#[test]
fn serve_caps_the_processes_it_tracks_and_counts_the_rest() {
    // Two of them (more if other tests hold memory meanwhile): one tracked.
    let _a = hold(16);
    let _b = hold(4);
    let (_serve, addr) = serve(&[
        "--name",
        "hold\\.py",
        "--max-processes",
        "1",
        "--interval",
        "100ms",
        "--cmdline-label",
        "200",
    ]);
    let text = wait_for("a page with a tracked process", || {
        http_get(&addr, "/metrics", None)
            .map(|(_, _, body)| body)
            .filter(|body| body.contains("memtrail_processes_tracked 1"))
    });
    let tracked = text
        .lines()
        .filter(|l| l.starts_with("memtrail_process_rss_bytes{"))
        .count();
    assert_eq!(tracked, 1, "{text}");
    let dropped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("memtrail_processes_dropped "))
        .and_then(|v| v.parse().ok())
        .expect("the dropped count is exported");
    assert!(dropped >= 1, "{text}");
    // Asked for: the command line, escaped and cut.
    assert!(text.contains("cmdline=\""), "{text}");
    assert!(text.contains("hold.py"), "{text}");
}

#[test]
fn serve_refuses_other_hosts_unless_asked_and_names_a_port_in_use() {
    let o = run(&["serve", "--all", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("--allow-remote"), "{err}");

    let o = run(&["serve", "--all", "--listen", "localhost:metrics"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("is not IP:PORT: use e.g. 127.0.0.1:9464"),
        "{err}"
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["serve", "--all", "--listen", &addr]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("choose another port"), "{err}");
}

#[test]
fn the_alerting_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = tool("promtool");
    let alerts = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerts");
    for args in [
        ["check", "rules", "memtrail-rules.yml"],
        ["test", "rules", "memtrail-rules.test.yml"],
    ] {
        let o = Command::new(&promtool)
            .args(args)
            .current_dir(&alerts)
            .output()
            .expect("promtool runs");
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}
