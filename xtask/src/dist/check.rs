//! `cargo xtask dist-check` (run by `ci`): builds target/dist once, then
//! installs and removes what it built, as a user would:
//!
//! - the wheel, with pip into a fresh virtualenv whose PATH holds no Rust
//!   toolchain: `memtrail --version` and `memtrail snap --pid` of a real
//!   process from that environment, the hook package importable when the
//!   wheel carries it, and nothing left after `pip uninstall`;
//! - the .deb, with `dpkg -i` on this machine (so it needs root, as CI
//!   has): `memtrail --version`, `man memtrail`, `systemd-analyze verify`
//!   of the unit, the service script recording segments within its disk
//!   bound, the unit's two capabilities being the ones that let an
//!   unprivileged user read a root process's regions and descriptors;
//!   then the service is enabled, and `dpkg -r` and `dpkg --purge` leave
//!   nothing behind (no file, no enablement link, no mask).
//!
//! Everything temporary is kept under target/dist-check.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context};

use super::{output_of, print_sizes, run_tool, which, Artifacts};
use crate::workspace_root;

/// Files the package installs, checked present after `dpkg -i` and
/// absent after `dpkg -r`.
const INSTALLED: &[&str] = &[
    "/usr/bin/memtrail",
    "/usr/lib/memtrail/memtrail-service",
    "/usr/lib/systemd/system/memtrail.service",
    "/usr/share/man/man1/memtrail.1.gz",
    "/usr/share/man/man1/memtrail-record.1.gz",
    "/usr/share/bash-completion/completions/memtrail",
    "/usr/share/zsh/vendor-completions/_memtrail",
    "/usr/share/fish/vendor_completions.d/memtrail.fish",
    "/usr/share/doc/memtrail/README.md",
    "/usr/share/doc/memtrail/docs/packaging.md",
    "/usr/share/doc/memtrail/docs/alerts/memtrail-rules.yml",
];
const CONFFILE: &str = "/etc/default/memtrail";
const UNIT: &str = "/usr/lib/systemd/system/memtrail.service";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/memtrail.service";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(extra) = args.first() {
        bail!("`cargo xtask dist-check` takes no arguments (got `{extra}`)");
    }
    // The owner of /proc/self is this process's effective user.
    let euid = std::fs::metadata("/proc/self")?.uid();
    ensure!(
        euid == 0,
        "`cargo xtask dist-check` installs the .deb with dpkg -i and needs root (CI runs as \
         root); `cargo xtask dist` alone builds the packages"
    );
    ensure!(
        !package_installed()?,
        "a memtrail package is already installed on this machine; dist-check installs and purges \
         its own: remove it first (`dpkg --purge memtrail`)"
    );
    let started = Instant::now();
    let built = super::build(false)?;
    eprintln!(
        "xtask dist-check: built target/dist in {:.0?}:",
        started.elapsed()
    );
    print_sizes(&built)?;

    let dir = workspace_root().join("target/dist-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    check_wheel(&built, &dir)?;
    check_deb(&built, &dir)?;
    eprintln!("xtask dist-check: wheel and .deb install, work and uninstall cleanly");
    Ok(())
}

fn check_wheel(built: &Artifacts, dir: &Path) -> anyhow::Result<()> {
    let venv = dir.join("venv");
    run_tool(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("cannot create a virtualenv: install python3-venv (Debian), as .ci/run does")?;
    // The user's environment: the venv first, then the system's
    // directories, and no Rust toolchain anywhere.
    let path = format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        venv.join("bin").display()
    );
    for d in path.split(':') {
        for tool in ["cargo", "rustc"] {
            ensure!(
                !Path::new(d).join(tool).exists(),
                "{d}/{tool} exists: the wheel must be checked without a Rust toolchain on PATH"
            );
        }
    }
    let in_venv = |script: &str| -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", script])
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir)
            .env("VIRTUAL_ENV", &venv);
        command
    };

    run_tool(&mut in_venv(&format!(
        "pip install --no-index --no-deps --disable-pip-version-check --quiet '{}'",
        built.wheel.display()
    )))?;
    let found = output_of(&mut in_venv("command -v memtrail"))?;
    let expected = venv.join("bin/memtrail");
    ensure!(
        Path::new(found.trim()) == expected,
        "after pip install, `memtrail` is {found:?}, not {}",
        expected.display()
    );
    let version = output_of(&mut in_venv("memtrail --version"))?;
    ensure!(
        version.trim() == format!("memtrail {}", memtrail_version()?),
        "the wheel's `memtrail --version` printed {version:?}"
    );

    let mut target = Target::spawn()?;
    let snap = output_of(&mut in_venv(&format!(
        "memtrail snap --pid {} --format json",
        target.pid()
    )))?;
    check_snap(&snap, target.pid()).context("`memtrail snap` from the wheel")?;
    target.stop();

    let hook_in_wheel = workspace_root().join("python/memtrail_hook").is_dir();
    if hook_in_wheel {
        let file = output_of(&mut in_venv(
            "python -c 'import memtrail_hook; print(memtrail_hook.__file__)'",
        ))?;
        ensure!(
            Path::new(file.trim()).starts_with(&venv),
            "memtrail_hook imports from {file:?}, not from the virtualenv"
        );
    }

    run_tool(&mut in_venv(
        "pip uninstall --yes --quiet --disable-pip-version-check memtrail",
    ))?;
    ensure!(
        !expected.exists(),
        "pip uninstall left {}",
        expected.display()
    );
    ensure!(
        !in_venv("command -v memtrail").status()?.success(),
        "`memtrail` is still on the virtualenv's PATH after pip uninstall"
    );
    if hook_in_wheel {
        ensure!(
            !in_venv("python -c 'import memtrail_hook'")
                .stderr(Stdio::null())
                .status()?
                .success(),
            "memtrail_hook still imports after pip uninstall"
        );
    }
    eprintln!(
        "xtask dist-check: wheel ok (pip install, --version, snap{}, pip uninstall)",
        if hook_in_wheel {
            ", import memtrail_hook"
        } else {
            ""
        }
    );
    Ok(())
}

fn check_deb(built: &Artifacts, dir: &Path) -> anyhow::Result<()> {
    // --path-include: Docker images of Debian often exclude man pages
    // from every package (/etc/dpkg/dpkg.cfg.d); the last pattern wins.
    let deb = built.deb.to_string_lossy();
    dpkg(&["-i", "--path-include=/usr/share/man/man1/memtrail*", &deb])?;
    let mut installed = Installed(true);
    for file in INSTALLED.iter().chain([&CONFFILE]) {
        ensure!(Path::new(file).exists(), "dpkg -i did not install {file}");
    }
    let version = output_of(Command::new("/usr/bin/memtrail").arg("--version"))?;
    ensure!(
        version.trim() == format!("memtrail {}", memtrail_version()?),
        "the installed `memtrail --version` printed {version:?}"
    );
    let page = output_of(
        Command::new("man")
            .args(["-P", "cat", "memtrail-record"])
            .env("MANWIDTH", "80"),
    )
    .context("`man memtrail-record` (man-db) failed")?;
    ensure!(
        page.contains("memtrail-record") && page.contains("--interval"),
        "`man memtrail-record` does not show the page: {page:?}"
    );
    let page = output_of(Command::new("man").args(["-P", "cat", "memtrail"]))?;
    ensure!(page.contains("memtrail"), "`man memtrail` shows {page:?}");

    let analyze = which("systemd-analyze")
        .context("systemd-analyze is missing: `apt-get install systemd`, as .ci/run does")?;
    let verify = Command::new(analyze)
        .args(["verify", UNIT])
        .output()
        .context("cannot run systemd-analyze")?;
    let complaints = String::from_utf8_lossy(&verify.stderr).into_owned();
    ensure!(
        verify.status.success() && !complaints.contains("memtrail"),
        "systemd-analyze verify {UNIT} failed ({}): {complaints}",
        verify.status
    );

    check_capabilities()?;
    check_service_script(dir)?;

    // An administrator enables the service (systemctl works offline when
    // systemd is not running): purge must undo that too.
    run_tool(Command::new("systemctl").args(["enable", "memtrail.service"]))?;
    ensure!(
        Path::new(WANTS).is_symlink(),
        "systemctl enable memtrail.service did not create {WANTS}"
    );

    dpkg(&["-r", "memtrail"])?;
    for file in INSTALLED {
        ensure!(!Path::new(file).exists(), "dpkg -r left {file}");
    }
    ensure!(
        Path::new(CONFFILE).exists(),
        "dpkg -r removed the conffile {CONFFILE} (only --purge should)"
    );
    dpkg(&["--purge", "memtrail"])?;
    installed.0 = false;
    ensure!(
        !Path::new(CONFFILE).exists(),
        "dpkg --purge left {CONFFILE}"
    );
    ensure!(
        !Path::new("/usr/lib/memtrail").exists(),
        "dpkg --purge left /usr/lib/memtrail"
    );
    ensure!(
        !Path::new("/usr/share/doc/memtrail").exists(),
        "dpkg --purge left /usr/share/doc/memtrail"
    );
    for link in [WANTS, "/etc/systemd/system/memtrail.service"] {
        ensure!(
            !Path::new(link).is_symlink(),
            "dpkg --purge left {link} (the enabled service or its mask)"
        );
    }
    ensure!(
        !package_installed()?,
        "dpkg still lists memtrail after --purge"
    );
    eprintln!(
        "xtask dist-check: .deb ok (dpkg -i, --version, man, systemd-analyze verify, \
         capabilities, service segments within the bound, enable, dpkg -r, dpkg --purge)"
    );
    Ok(())
}

/// The unit grants CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to an
/// unprivileged user: check that this pair is what reading a root
/// process's regions and descriptors takes, and that neither alone does.
fn check_capabilities() -> anyhow::Result<()> {
    // The capabilities as the installed unit grants them, in setpriv's
    // spelling (CAP_SYS_PTRACE -> +sys_ptrace).
    let unit = std::fs::read_to_string(UNIT)?;
    let granted = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(|v| v.split_whitespace())
            .map(|c| c.trim_start_matches("CAP_").to_lowercase())
            .collect()
    };
    let mut ambient = granted("AmbientCapabilities=");
    let mut bounding = granted("CapabilityBoundingSet=");
    ambient.sort();
    bounding.sort();
    ensure!(
        ambient == ["dac_read_search", "sys_ptrace"] && bounding == ambient,
        "{UNIT} grants {ambient:?} (bounding set {bounding:?}); this check expects exactly \
         sys_ptrace and dac_read_search: update it with the unit"
    );
    let mut target = Target::spawn()?;
    let as_nobody = |caps: &str| -> anyhow::Result<(String, String)> {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        if caps.is_empty() {
            command.arg("--inh-caps=-all");
        } else {
            command.arg(format!("--inh-caps={caps}"));
            command.arg(format!("--ambient-caps={caps}"));
        }
        let pid = target.pid().to_string();
        command.args([
            "/usr/bin/memtrail",
            "snap",
            "--pid",
            &pid,
            "--detail",
            "full",
            "--format",
            "json",
        ]);
        let out = command
            .output()
            .context("cannot run setpriv (util-linux), as .ci/run installs")?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let all = ambient
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let (stdout, stderr) = as_nobody(&all)?;
    ensure!(
        !stderr.contains("permission denied"),
        "with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, nobody still cannot read a root process: \
         {stderr}"
    );
    check_snap(&stdout, target.pid())?;
    let json: serde_json::Value = serde_json::from_str(&stdout)?;
    let process = &json["processes"][0];
    ensure!(
        process["mappings"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
            && process["fds"]["targets"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
        "with both capabilities, the regions or descriptors are missing: {process}"
    );
    for (caps, unreadable) in [
        ("+sys_ptrace", "/fd"),
        ("+dac_read_search", "/smaps"),
        ("", "/smaps"),
    ] {
        let (_, stderr) = as_nobody(caps)?;
        ensure!(
            stderr.contains(&format!("{}{unreadable}", target.pid())),
            "with only [{caps}], nobody could read /proc/{}{unreadable}: the unit's capability \
             set may be larger than needed ({stderr:?})",
            target.pid()
        );
    }
    target.stop();
    Ok(())
}

/// Runs the installed service script three times as the unit would,
/// with one-second segments, and checks the disk bound.
fn check_service_script(dir: &Path) -> anyhow::Result<()> {
    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let rotates = output_of(Command::new("/usr/bin/memtrail").args(["record", "--help"]))?
        .contains("--rotate");
    let run = |keep: &str, extra: &str| -> anyhow::Result<(Option<i32>, String)> {
        let out = Command::new("/usr/lib/memtrail/memtrail-service")
            .env("STATE_DIRECTORY", &state)
            .env("MEMTRAIL_INTERVAL", "200ms")
            .env("MEMTRAIL_DETAIL", "summary")
            .env("MEMTRAIL_ROTATE", "1s")
            .env("MEMTRAIL_KEEP", keep)
            .env("MEMTRAIL_ARGS", extra)
            .stdin(Stdio::null())
            .output()
            .context("cannot run /usr/lib/memtrail/memtrail-service")?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let service = |keep: &str, extra: &str| -> anyhow::Result<String> {
        let (code, stderr) = run(keep, extra)?;
        ensure!(
            code == Some(0),
            "memtrail-service failed ({code:?}): {stderr}"
        );
        Ok(stderr)
    };
    if rotates {
        // memtrail rotates by itself (`record --rotate/--keep`): the script
        // hands it the whole job; bound the run for the check.
        service("1GiB", "--duration 3s")?;
        let recording = state.join("recording");
        ensure!(
            recording.is_dir(),
            "memtrail-service with `record --rotate` wrote no directory {}",
            recording.display()
        );
        run_tool(
            Command::new("/usr/bin/memtrail")
                .arg("analyze")
                .arg(&recording),
        )?;
        return Ok(());
    }
    // Without rotation in memtrail: one segment file per run, and a bound
    // by age is a configuration error (78, which the unit does not
    // restart on), refused before anything is recorded.
    let (code, stderr) = run("7d", "")?;
    ensure!(
        code == Some(78) && stderr.contains("MEMTRAIL_KEEP=7d") && segments(&state)?.is_empty(),
        "MEMTRAIL_KEEP=7d without rotation in memtrail: expected exit 78 naming it and no \
         recording, got {code:?}: {stderr}"
    );
    service("1GiB", "")?;
    service("1GiB", "")?;
    let first_two = segments(&state)?;
    ensure!(
        first_two.len() == 2,
        "two runs of memtrail-service left {first_two:?}, expected two segments"
    );
    // A bound that holds only the newest segment: the next run deletes the
    // oldest before it records.
    let newest = std::fs::metadata(&first_two[1])?.len();
    let stderr = service(&newest.to_string(), "")?;
    let after = segments(&state)?;
    ensure!(
        after.len() == 2 && after[0] == first_two[1] && !first_two[0].exists(),
        "with MEMTRAIL_KEEP={newest} the oldest segment should be deleted and the newest kept: \
         before {first_two:?}, after {after:?}; stderr: {stderr}"
    );
    ensure!(
        stderr.contains("deleted"),
        "memtrail-service deleted a segment without saying so: {stderr:?}"
    );
    for segment in &after {
        run_tool(
            Command::new("/usr/bin/memtrail")
                .arg("analyze")
                .arg(segment),
        )?;
    }
    Ok(())
}

/// The segment files in `state`, oldest first.
fn segments(state: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = std::fs::read_dir(state)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mtr"))
        .collect::<Vec<_>>();
    found.sort();
    Ok(found)
}

/// Runs dpkg, waiting (up to 10 minutes) while another dpkg or apt holds
/// its lock: dpkg itself fails at once.
fn dpkg(args: &[&str]) -> anyhow::Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    loop {
        eprintln!("$ dpkg {}", args.join(" "));
        let out = Command::new("dpkg")
            .args(args)
            .stdout(Stdio::inherit())
            .output()
            .context("cannot run dpkg")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            eprint!("{stderr}");
            return Ok(());
        }
        if !stderr.contains("lock") || Instant::now() > deadline {
            bail!("dpkg {} failed ({}): {stderr}", args.join(" "), out.status);
        }
        eprintln!("xtask dist-check: the dpkg lock is held by another process; waiting");
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// `snap --format json` output: the one process asked for, with memory.
fn check_snap(json: &str, pid: u32) -> anyhow::Result<()> {
    let value: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("not JSON: {json:?}"))?;
    let process = &value["processes"][0];
    ensure!(
        process["id"]["pid"].as_u64() == Some(u64::from(pid)),
        "snap shows {} instead of pid {pid}",
        process["id"]
    );
    ensure!(
        process["totals"]["rss"].as_u64().is_some_and(|rss| rss > 0),
        "snap shows no resident memory for pid {pid}: {}",
        process["totals"]
    );
    Ok(())
}

fn memtrail_version() -> anyhow::Result<String> {
    super::version(&workspace_root())
}

fn package_installed() -> anyhow::Result<bool> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "memtrail"])
        .stderr(Stdio::null())
        .output()
        .context("cannot run dpkg-query")?;
    let status = String::from_utf8_lossy(&out.stdout);
    Ok(out.status.success() && !status.contains("not-installed") && !status.is_empty())
}

/// A real process to look at (root's, as this check runs as root).
struct Target(Child);

impl Target {
    fn spawn() -> anyhow::Result<Target> {
        let child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start `sleep`")?;
        let target = Target(child);
        // Until it has exec'd, the child is a copy of xtask.
        let comm = format!("/proc/{}/comm", target.pid());
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            ensure!(
                Instant::now() < deadline,
                "`sleep` did not start within 10 s"
            );
            std::thread::yield_now();
        }
        Ok(target)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Purges the package if a check failed after `dpkg -i`, so a failed CI
/// run does not leave memtrail installed.
struct Installed(bool);

impl Drop for Installed {
    fn drop(&mut self) {
        if self.0 {
            let _ = dpkg(&["--purge", "memtrail"]);
        }
    }
}
