//! `cargo xtask soak [--minutes M | --seconds S]`: memtrail recording a
//! sibling `memtrail record` at a high rate for minutes, then memtrail's
//! own analyzer judging the sibling.
//!
//! The sibling records a `sleep` at full detail every 10 ms (the recorder's
//! hot path: every /proc file, a delta, a flush, 100 times a second). The
//! observer records the sibling at full detail every 100 ms for the soak's
//! length into target/soak/soak.mtr, which is kept. The final check runs
//! `memtrail analyze target/soak/soak.mtr --format json` and requires
//! `"verdict": "no-leak"` for the sibling's pid (contract: a top-level
//! object with a `processes` array whose items have `pid`, `verdict` in
//! leak | no-leak | insufficient-data, and `findings`). Where `analyze`
//! does not exist yet, the soak says so and fails: the recording is saved
//! for the analyzer to judge later.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::{cargo, workspace_root};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let length = parse_length(args)?;
    cargo(&["build", "--release", "--locked", "--bin", "memtrail"])?;
    let root = workspace_root();
    let memtrail = root.join("target/release/memtrail");
    let dir = root.join("target/soak");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recording = dir.join("soak.mtr");
    let sibling_file = dir.join("sibling.mtr");

    let target = Guard(
        Command::new("sleep")
            .arg("1000000")
            .spawn()
            .context("cannot start sleep")?,
    );
    let sibling = Guard(
        Command::new(&memtrail)
            .args(["record", "--pid", &target.0.id().to_string()])
            .args(["--detail", "full", "--interval", "10ms", "-o"])
            .arg(&sibling_file)
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the sibling recorder")?,
    );
    let sibling_pid = sibling.0.id();
    eprintln!(
        "xtask soak: recording memtrail record (pid {sibling_pid}, 100 samples/s of a sleep) \
         every 100 ms for {} s into {}",
        length.as_secs(),
        recording.display()
    );
    let status = Command::new(&memtrail)
        .args(["record", "--pid", &sibling_pid.to_string()])
        .args(["--detail", "full", "--interval", "100ms", "--duration"])
        .arg(format!("{}s", length.as_secs()))
        .arg("-o")
        .arg(&recording)
        .status()
        .context("cannot run the observing recorder")?;
    if !status.success() {
        bail!("the observing recorder failed ({status})");
    }

    // The sibling must end cleanly too, its own file complete.
    let sibling_out = stop(sibling)?;
    if !sibling_out.status.success() {
        bail!(
            "the sibling recorder failed ({}): {}",
            sibling_out.status,
            String::from_utf8_lossy(&sibling_out.stderr)
        );
    }
    drop(target);
    let sibling_end = last_line(&memtrail, &sibling_file)?;
    if sibling_end.get("type").and_then(|t| t.as_str()) != Some("end") {
        bail!("the sibling's recording does not end with its end frame: {sibling_end}");
    }

    let rss = rss_series(&memtrail, &recording, sibling_pid)?;
    let (first, last, peak) = (
        rss.first().copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
        rss.iter().copied().max().unwrap_or(0),
    );
    eprintln!(
        "xtask soak: {} samples of the recorder; VmRSS {first} KiB at the start, {last} KiB at \
         the end, peak {peak} KiB; sibling file {} bytes",
        rss.len(),
        std::fs::metadata(&sibling_file).map_or(0, |m| m.len()),
    );
    verdict(&memtrail, &recording, sibling_pid)
}

/// `memtrail analyze FILE --format json` must judge `pid` no-leak.
fn verdict(memtrail: &Path, recording: &Path, pid: u32) -> anyhow::Result<()> {
    let out = Command::new(memtrail)
        .arg("analyze")
        .arg(recording)
        .args(["--format", "json"])
        .output()
        .context("cannot run memtrail analyze")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unrecognized subcommand") {
        bail!(
            "SOAK INCOMPLETE: this memtrail has no `analyze` command yet, so the recorder's \
             verdict cannot be checked. The recording is kept at {}; judge it with \
             `memtrail analyze {} --format json` once analyze exists.",
            recording.display(),
            recording.display()
        );
    }
    if !out.status.success() {
        bail!("memtrail analyze failed ({}): {stderr}", out.status);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("memtrail analyze printed no JSON")?;
    let processes = report
        .get("processes")
        .and_then(|p| p.as_array())
        .context("analyze's JSON has no `processes` array")?;
    let Some(judged) = processes
        .iter()
        .find(|p| p.get("pid").and_then(|v| v.as_u64()) == Some(u64::from(pid)))
    else {
        bail!("analyze did not judge the recorder (pid {pid}): {report}");
    };
    let verdict = judged.get("verdict").and_then(|v| v.as_str());
    eprintln!("xtask soak: analyze judged the recorder {verdict:?}");
    if verdict != Some("no-leak") {
        bail!(
            "the recorder was judged {verdict:?}, not no-leak; findings: {}",
            judged.get("findings").unwrap_or(&serde_json::Value::Null)
        );
    }
    eprintln!("xtask soak: passed");
    Ok(())
}

/// The sibling's VmRSS in every sample, from `memtrail dump`.
fn rss_series(memtrail: &Path, recording: &Path, pid: u32) -> anyhow::Result<Vec<u64>> {
    Ok(dump(memtrail, recording)?
        .iter()
        .filter(|l| l["type"] == "process" && l["id"]["pid"] == pid)
        .filter_map(|l| l["status"]["vm_rss"].as_u64())
        .collect())
}

fn last_line(memtrail: &Path, recording: &Path) -> anyhow::Result<serde_json::Value> {
    dump(memtrail, recording)?
        .pop()
        .with_context(|| format!("{} is empty", recording.display()))
}

fn dump(memtrail: &Path, recording: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(memtrail)
        .arg("dump")
        .arg(recording)
        .output()
        .context("cannot run memtrail dump")?;
    if !out.status.success() {
        bail!(
            "memtrail dump {} failed: {}",
            recording.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).context("dump printed a line that is not JSON"))
        .collect()
}

/// Stops a recorder with SIGINT, as Ctrl-C would, and collects its output.
fn stop(mut recorder: Guard) -> anyhow::Result<std::process::Output> {
    let pid = recorder.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status()?;
    let child = std::mem::replace(&mut recorder.0, Command::new("true").spawn()?);
    Ok(child.wait_with_output()?)
}

fn parse_length(args: &[String]) -> anyhow::Result<Duration> {
    let number = |v: &str| -> anyhow::Result<u64> {
        v.parse()
            .with_context(|| format!("expected a whole number, not `{v}`"))
    };
    match args {
        [] => Ok(Duration::from_secs(5 * 60)),
        [flag, v] if flag == "--minutes" => Ok(Duration::from_secs(number(v)? * 60)),
        [flag, v] if flag == "--seconds" => Ok(Duration::from_secs(number(v)?)),
        _ => bail!("usage: cargo xtask soak [--minutes M | --seconds S]"),
    }
}

/// A child killed and reaped when dropped, so a failing soak leaves
/// nothing behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
