//! `memtrail python-hook install|uninstall|status`: the dormant listener
//! (python/memtrail_hook/listener.py) in an interpreter's site-packages.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{PythonHookAction, PythonHookArgs, PythonHookTarget};
use crate::events::PYTHON_HOOK;

/// The file Python's `site` runs at every start-up. One line; it must never
/// break start-up, so everything is caught, and MEMTRAIL_HOOK=off skips it.
pub const PTH_NAME: &str = "memtrail-hook.pth";
pub const PTH_LINE: &str = "import sys; exec(\"try:\\n from memtrail_hook import listener\\n listener.install()\\nexcept Exception:\\n pass\")\n";

pub fn run(args: PythonHookArgs) -> anyhow::Result<u8> {
    match args.action {
        PythonHookAction::Install(t) => install(&t),
        PythonHookAction::Uninstall(t) => uninstall(&t),
        PythonHookAction::Status(t) => status(&t),
    }
}

/// The files of the package (not the `run` bootstrap `sitecustomize.py`,
/// which would shadow the environment's own).
fn package() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    PYTHON_HOOK
        .iter()
        .filter(|(name, _)| name.starts_with("memtrail_hook/"))
}

/// Where the interpreter keeps its pure-Python packages (or the user's).
fn site_dir(target: &PythonHookTarget) -> anyhow::Result<(PathBuf, String)> {
    let script = "import site,sys,sysconfig\n\
                  print(site.getusersitepackages() if sys.argv[1] == 'user' else sysconfig.get_paths()['purelib'])\n\
                  print(sys.version.split()[0])";
    let out = std::process::Command::new(&target.python)
        .args(["-I", "-c", script, if target.user { "user" } else { "env" }])
        .output()
        .with_context(|| {
            format!(
                "cannot run {}: give the interpreter with --python PATH",
                target.python.display()
            )
        })?;
    if !out.status.success() {
        anyhow::bail!(
            "{} could not say where its site-packages are: {}",
            target.python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let dir = lines.next().unwrap_or("").trim();
    let version = lines.next().unwrap_or("").trim().to_string();
    if dir.is_empty() {
        anyhow::bail!(
            "{} named no site-packages directory",
            target.python.display()
        );
    }
    Ok((PathBuf::from(dir), version))
}

fn install(target: &PythonHookTarget) -> anyhow::Result<u8> {
    let (dir, version) = site_dir(target)?;
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("memtrail_hook"))?;
        for (name, text) in package() {
            write_atomic(&dir.join(name), text)?;
        }
        write_atomic(&dir.join(PTH_NAME), PTH_LINE)
    };
    write().with_context(|| {
        format!(
            "cannot write the hook into {} (as root for a system interpreter, or use --user or a \
             virtual environment)",
            dir.display()
        )
    })?;
    // Byte-compiled now, as pip does: every start-up then loads the
    // listener from its .pyc (about 0.2 ms) instead of compiling it (about
    // 2 ms), also where the processes cannot write __pycache__.
    let compiled = std::process::Command::new(&target.python)
        .args(["-m", "compileall", "-q"])
        .arg(dir.join("memtrail_hook"))
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .output()
        .with_context(|| format!("cannot run {}", target.python.display()))?;
    if !compiled.status.success() {
        eprintln!(
            "memtrail: warning: could not byte-compile the hook ({}); Python compiles it at every \
             start-up instead",
            String::from_utf8_lossy(&compiled.stderr).trim()
        );
    }
    println!(
        "memtrail: installed the dormant hook for Python {version} in {}\n\
         Python processes started from now on carry it; restart a running one once to \
         attach to it with `memtrail attach PID --python-gc`.",
        dir.display()
    );
    Ok(0)
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("memtrail-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn uninstall(target: &PythonHookTarget) -> anyhow::Result<u8> {
    let (dir, _) = site_dir(target)?;
    let pth = dir.join(PTH_NAME);
    let mut removed = false;
    match std::fs::remove_file(&pth) {
        Ok(()) => removed = true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", pth.display())),
    }
    let pkg = dir.join("memtrail_hook");
    if pkg.exists() {
        std::fs::remove_dir_all(&pkg)
            .with_context(|| format!("cannot remove {}", pkg.display()))?;
        removed = true;
    }
    if removed {
        println!(
            "memtrail: removed the hook from {}; running processes keep it until they restart",
            dir.display()
        );
    } else {
        println!("memtrail: no hook in {}", dir.display());
    }
    Ok(0)
}

fn status(target: &PythonHookTarget) -> anyhow::Result<u8> {
    let (dir, version) = site_dir(target)?;
    let pth = std::fs::read_to_string(dir.join(PTH_NAME)).ok();
    let stale: Vec<&str> = package()
        .filter(|(name, text)| {
            std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(text)
        })
        .map(|(name, _)| *name)
        .collect();
    match (pth.as_deref() == Some(PTH_LINE), stale.is_empty()) {
        (true, true) => {
            println!(
                "installed: Python {version}, {} (up to date)",
                dir.display()
            );
            Ok(0)
        }
        (false, _) if pth.is_none() => {
            println!("not installed: Python {version}, {}", dir.display());
            Ok(1)
        }
        _ => {
            println!(
                "installed but out of date: Python {version}, {} ({}); run `memtrail python-hook \
                 install` again",
                dir.display(),
                if stale.is_empty() {
                    PTH_NAME.to_string()
                } else {
                    stale.join(", ")
                }
            );
            Ok(1)
        }
    }
}
