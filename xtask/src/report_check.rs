//! `cargo xtask report-check [--screenshot PNG]`: the HTML report of a real
//! recording, opened in headless Chromium.
//!
//! Records `tests/programs/leak.c` (a real malloc leak) for 4 s under
//! `memtrail run`, beside a shell that puts three markers on the timeline
//! with `memtrail mark`, renders `memtrail report --html` and loads the
//! page from disk in Chromium, which takes a screenshot and logs the console and the
//! network to files. Then it requires:
//! - no console message at all (errors, CSP violations, uncaught
//!   exceptions: the page has no script, so anything is a fault);
//! - no network request made by the page (requests Chromium makes for
//!   itself, with initiator `not an origin`, are not the page's);
//! - a screenshot that is not blank: many colours, a good share of
//!   non-white pixels, and the charts' own series colours.
//!
//! The same is required of the report of a hostile process (markup in its
//! command line, comm and mapped file's name): injected markup would run,
//! fetch, or at least trip the CSP, which logs a violation.
//!
//! A canary page (an image from the network and an inline script) is
//! loaded first the same way and must trip both the console and the
//! network checks, so a Chromium that stopped logging cannot pass.
//!
//! Everything is kept under target/report-check.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context};

use crate::prereq::which;
use crate::{cargo, workspace_root};

const CANARY: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>\
<p>canary</p><img src=\"http://127.0.0.1:8123/canary.png\"><script>undefined_function()</script>\
</body></html>";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let screenshot_copy = match args {
        [] => None,
        [flag, path] if flag == "--screenshot" => Some(PathBuf::from(path)),
        _ => bail!("usage: cargo xtask report-check [--screenshot PNG]"),
    };
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .context("chromium is not installed: `cargo xtask prereq` installs it (as root)")?;
    cargo(&["build", "--locked", "--bin", "memtrail"])?;
    let root = workspace_root();
    let memtrail = root.join("target/debug/memtrail");
    let dir = root.join("target/report-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    // The canary first: the checks must see what they are meant to catch.
    let canary = dir.join("canary.html");
    std::fs::write(&canary, CANARY)?;
    let seen = load(&chromium, &dir, &canary, "canary", (800, 600))?;
    ensure!(
        !seen.console.is_empty(),
        "the canary page's script error was not logged: the console check cannot work"
    );
    ensure!(
        seen.requests.iter().any(|u| u.contains("canary.png")),
        "the canary page's image request was not logged: the network check cannot work \
         (requests seen: {:?})",
        seen.requests
    );

    let leak = dir.join("leak");
    let status = Command::new("gcc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&leak)
        .arg(root.join("tests/programs/leak.c"))
        .status()
        .context("cannot run gcc (is it installed?)")?;
    ensure!(
        status.success(),
        "gcc failed to build tests/programs/leak.c"
    );
    // The leak runs under `memtrail run` beside a shell that marks the
    // timeline with `memtrail mark` as it goes: a real process tree, real
    // markers. Everything runs in `dir` by relative names, with memtrail
    // found on PATH, so the page (and docs/report.png) shows `./leak` and
    // `leak.mtr` rather than this checkout's paths.
    let marked = dir.join("leak.mtr");
    let script = "./leak malloc 4 & sleep 1; memtrail mark 'warm-up done'; sleep 1; \
         memtrail mark 'load <2x> & \"retry\"'; sleep 1.2; memtrail mark checkpoint; wait";
    let path = std::env::join_paths(
        std::iter::once(
            memtrail
                .parent()
                .context("memtrail's directory")?
                .to_path_buf(),
        )
        .chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )?;
    succeed(
        Command::new(&memtrail)
            .current_dir(&dir)
            .env("PATH", path)
            .args(["run", "--interval", "50ms", "-o", "leak.mtr"])
            .args(["--", "sh", "-c", script]),
        "memtrail run",
    )?;
    let html = dir.join("report.html");
    let page = report_html(&memtrail, &marked, &html)?;
    for label in [
        "warm-up done",
        "load &lt;2x&gt; &amp; &quot;retry&quot;",
        "checkpoint",
    ] {
        ensure!(
            page.contains(label),
            "the marker {label:?} made with `memtrail mark` is not in {}",
            html.display()
        );
    }
    let seen = load(&chromium, &dir, &html, "report", (1100, 1500))?;
    ensure!(
        seen.console.is_empty(),
        "the report logged to the console:\n{}",
        seen.console.join("\n")
    );
    ensure!(
        seen.requests.is_empty(),
        "the report made network requests: {:?}",
        seen.requests
    );
    let shot = dir.join("report.png");
    check_screenshot(&shot)?;
    let checked = check_layout(&chromium, &dir, &page)?;
    eprintln!("xtask report-check: layout as Chromium draws it: {checked}");

    // A hostile process: markup in its arguments, its comm and the name
    // of the file it maps. Injected markup would run or fetch, and the CSP
    // would log a violation: the page must stay silent.
    let hostile_html = hostile_report(&memtrail, &dir, &root)?;
    let seen = load(&chromium, &dir, &hostile_html, "hostile", (1100, 900))?;
    ensure!(
        seen.console.is_empty() && seen.requests.is_empty(),
        "the hostile process's report logged {:?} and requested {:?}",
        seen.console,
        seen.requests
    );
    if let Some(copy) = screenshot_copy {
        std::fs::copy(&shot, &copy)
            .with_context(|| format!("cannot copy the screenshot to {}", copy.display()))?;
        eprintln!(
            "xtask report-check: screenshot copied to {}",
            copy.display()
        );
    }
    eprintln!(
        "xtask report-check: {} loads with no console message and no network request; \
         screenshot {} shows the charts",
        html.display(),
        shot.display()
    );
    Ok(())
}

/// Measures the report as Chromium lays it out, by the coordinates of what
/// it draws: marker labels inside their chart, above every line of the
/// plot, clear of the legend box and of each other; no argument of a
/// command broken across lines; the verdict badges padded. The report has
/// no script (its CSP forbids one): a copy without the CSP gets a script
/// that measures and writes its findings into the page, which
/// `--dump-dom` prints.
fn check_layout(chromium: &Path, dir: &Path, page: &str) -> anyhow::Result<String> {
    let csp = page
        .lines()
        .find(|l| l.contains("Content-Security-Policy"))
        .context("the report has no CSP line")?;
    let instrumented = page.replace(csp, "").replace(
        "</body>",
        &format!("<script>{LAYOUT_SCRIPT}</script>\n</body>"),
    );
    let copy = dir.join("layout.html");
    std::fs::write(&copy, instrumented)?;
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("layout-profile").display()
        ))
        .args(["--window-size=1100,1500", "--dump-dom"])
        .arg(format!("file://{}", copy.canonicalize()?.display()))
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let found = dom
        .split("<pre id=\"layout\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .with_context(|| format!("the layout script wrote nothing into {}", copy.display()))?;
    let lines: Vec<&str> = found.lines().collect();
    let problems: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("bad "))
        .collect();
    ensure!(
        problems.is_empty(),
        "the report's layout in Chromium ({}):\n{}",
        copy.display(),
        problems.join("\n")
    );
    let summary = lines
        .iter()
        .find(|l| l.starts_with("checked "))
        .context("the layout script did not finish")?;
    ensure!(
        !summary.contains("checked 0 marker labels"),
        "no marker label was measured in {}",
        copy.display()
    );
    Ok(summary.to_string())
}

/// Run in Chromium over a copy of the report (see [`check_layout`]); each
/// problem is a line `bad ...`, then one line `checked ...`.
const LAYOUT_SCRIPT: &str = r#"
(function () {
  const out = [];
  const bad = (what) => out.push('bad ' + what.replace(/\s+/g, ' '));
  const overlap = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const heading = Array.from(document.querySelectorAll('h2')).find((h) => h.textContent === 'Markers');
  const labels = new Set();
  if (heading) {
    for (const row of heading.nextElementSibling.querySelectorAll('tr')) {
      const cell = row.querySelectorAll('td')[1];
      if (cell) labels.add(cell.textContent.slice(0, 40));
    }
  }
  let markers = 0, args = 0, charts = 0;
  for (const svg of document.querySelectorAll('svg')) {
    charts++;
    const width = svg.width.baseVal.value, height = svg.height.baseVal.value;
    let top = Infinity;
    for (const line of svg.querySelectorAll('polyline')) {
      for (const p of line.points) top = Math.min(top, p.y);
    }
    const legendRect = Array.from(svg.querySelectorAll('rect')).find((r) => r.getAttribute('stroke') === '#CCCCCC');
    const legend = legendRect ? legendRect.getBBox() : null;
    const boxes = [];
    for (const text of svg.querySelectorAll('text')) {
      if (!labels.has(text.textContent.trim())) continue;
      markers++;
      const b = text.getBBox();
      const name = 'chart ' + charts + ' marker ' + text.textContent.trim();
      if (b.x < 0 || b.x + b.width > width || b.y < 0) bad(name + ' leaves the chart');
      if (b.y + b.height > top + 1) bad(name + ' reaches into the plot (bottom ' + (b.y + b.height) + ', plot from ' + top + ')');
      if (legend && overlap(b, legend)) bad(name + ' is under the legend box');
      for (const o of boxes) if (overlap(b, o.b)) bad(name + ' runs into ' + o.name);
      boxes.push({ b, name });
    }
  }
  for (const span of document.querySelectorAll('.cmd span')) {
    args++;
    if (span.getClientRects().length > 1) bad('the argument ' + span.textContent + ' is broken across lines');
  }
  for (const badge of document.querySelectorAll('h2 span.leak, h2 span.ok, h2 span.unknown')) {
    if (parseFloat(getComputedStyle(badge).paddingLeft) < 2) bad('the ' + badge.textContent + ' badge has no padding');
  }
  out.push('checked ' + markers + ' marker labels in ' + charts + ' charts and ' + args + ' command arguments');
  const pre = document.createElement('pre');
  pre.id = 'layout';
  pre.textContent = out.join('\n');
  document.body.appendChild(pre);
})();
"#;

/// Records `tests/programs/hostile.py` with markup everywhere it can put
/// some and renders its HTML report.
fn hostile_report(memtrail: &Path, dir: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    use std::io::BufRead;
    let file = dir.join("\"><img src=x onerror=alert(1)>");
    let mut child = Guard(
        Command::new("python3")
            .arg("-u")
            .arg(root.join("tests/programs/hostile.py"))
            .arg(&file)
            .arg("<script>alert(1)</script>")
            .env("HOSTILE_COMM", "<b onclick=x>")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start python3 (is it installed?)")?,
    );
    let mut ready = String::new();
    std::io::BufReader::new(child.0.stdout.take().context("piped stdout")?)
        .read_line(&mut ready)?;
    ensure!(ready.trim() == "ready", "hostile.py said {ready:?}");
    let rec = dir.join("hostile.mtr");
    succeed(
        Command::new(memtrail)
            .args(["record", "--pid", &child.0.id().to_string()])
            .args(["--interval", "50ms", "--count", "20", "-o"])
            .arg(&rec),
        "memtrail record",
    )?;
    drop(child);
    let html = dir.join("hostile.html");
    let page = report_html(memtrail, &rec, &html)?;
    ensure!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            && page.contains("&lt;b onclick=x&gt;"),
        "the hostile strings are not in {} (escaped)",
        html.display()
    );
    Ok(html)
}

/// Runs `cmd` (`what`, for messages) to its end: an error with its
/// standard error unless it succeeds.
fn succeed(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let o = cmd.output().with_context(|| format!("cannot run {what}"))?;
    ensure!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

/// `memtrail report RECORDING --html HTML` in the recording's directory
/// by its file name (the page's title is that name, not a path of this
/// checkout); returns the page.
fn report_html(memtrail: &Path, recording: &Path, html: &Path) -> anyhow::Result<String> {
    let (Some(dir), Some(name)) = (recording.parent(), recording.file_name()) else {
        bail!("{} is not a file in a directory", recording.display());
    };
    succeed(
        Command::new(memtrail)
            .current_dir(dir)
            .arg("report")
            .arg(name)
            .arg("--html")
            .arg(html),
        "memtrail report",
    )?;
    std::fs::read_to_string(html).with_context(|| format!("cannot read {}", html.display()))
}

/// What Chromium logged while loading a page.
struct Seen {
    /// Console lines (errors, CSP violations, anything the page printed).
    console: Vec<String>,
    /// URLs the page requested (not file: or data:), Chromium's own left out.
    requests: Vec<String>,
}

/// Loads `page` in headless Chromium: a screenshot `NAME.png`, the browser's
/// log `NAME.log` and its network log `NAME-net.json` under `dir`.
fn load(
    chromium: &Path,
    dir: &Path,
    page: &Path,
    name: &str,
    size: (u32, u32),
) -> anyhow::Result<Seen> {
    let profile = dir.join(format!("{name}-profile"));
    let net = dir.join(format!("{name}-net.json"));
    let shot = dir.join(format!("{name}.png"));
    let log = dir.join(format!("{name}.log"));
    let page = page
        .canonicalize()
        .with_context(|| format!("cannot find {}", page.display()))?;
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", net.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "chromium did not finish loading {} within 120 s",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!(
        status.success(),
        "chromium failed ({status}) on {}: see {}",
        page.display(),
        log.display()
    );
    ensure!(
        shot.exists(),
        "chromium wrote no screenshot {}",
        shot.display()
    );

    let log_text = std::fs::read_to_string(&log)?;
    let console = log_text
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
        })
        .map(str::to_string)
        .collect();

    let net_log: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&net).with_context(|| format!("cannot read {}", net.display()))?,
    )
    .with_context(|| format!("{} is not JSON", net.display()))?;
    let start_job = net_log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64();
    let mut requests = Vec::new();
    for e in net_log["events"].as_array().into_iter().flatten() {
        if e["type"].as_u64() != start_job {
            continue;
        }
        let url = e["params"]["url"].as_str().unwrap_or("");
        let own = e["params"]["initiator"] == "not an origin";
        let local = url.starts_with("file:") || url.starts_with("data:") || url.is_empty();
        if !own && !local {
            requests.push(url.to_string());
        }
    }
    Ok(Seen { console, requests })
}

/// The screenshot shows a page with charts: not blank, many colours, and
/// the colour of a chart-only series (PSS, orange) drawn.
fn check_screenshot(path: &Path) -> anyhow::Result<()> {
    let decoder = png::Decoder::new(File::open(path)?);
    let mut reader = decoder.read_info().context("the screenshot is not a PNG")?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => bail!("unexpected screenshot colour type {other:?}"),
    };
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let total = pixels.len().max(1);
    let non_white = pixels.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
    let mut colours: Vec<[u8; 3]> = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    let near = |p: &[u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(&a, b)| a.abs_diff(b) <= 24);
    let pss = pixels
        .iter()
        .filter(|p| near(p, [0xe6, 0x7e, 0x22]))
        .count();
    eprintln!(
        "xtask report-check: screenshot {}x{}: {:.1}% non-white, {} colours, {} PSS-orange pixels",
        info.width,
        info.height,
        100.0 * non_white as f64 / total as f64,
        colours.len(),
        pss
    );
    ensure!(
        non_white * 100 >= total * 3,
        "the screenshot is nearly blank ({non_white} of {total} pixels not white)"
    );
    ensure!(
        colours.len() >= 64,
        "the screenshot has only {} colours: no charts",
        colours.len()
    );
    ensure!(
        pss >= 200,
        "the screenshot shows no PSS series ({pss} orange pixels)"
    );
    Ok(())
}

/// A child killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
