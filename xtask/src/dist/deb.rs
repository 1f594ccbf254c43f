//! The Debian package, assembled in a staging tree and built with
//! `dpkg-deb --build` (dpkg-deb is on every Debian system; cargo-deb would
//! need a multi-minute `cargo install` in every CI run for the same
//! result).
//!
//! Contents (paths as installed):
//! - /usr/bin/memtrail: the stripped binary;
//! - /usr/lib/memtrail/memtrail-service: what memtrail.service runs
//!   (packaging/memtrail-service); libraries of SHIPPED_LIBRARIES (none
//!   today) in the directory each names;
//! - /usr/lib/systemd/system/memtrail.service (packaging/memtrail.service);
//! - /etc/default/memtrail: its configuration, a conffile;
//! - /usr/share/man/man1/memtrail*.1.gz, shell completions for bash, zsh
//!   and fish, all generated from the clap command as `cargo xtask docs`
//!   does;
//! - /usr/share/doc/memtrail: README.md, copyright, and docs/ (the guides,
//!   the alerting rules in docs/alerts, docs/packaging.md).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context};

use super::{output_of, run_tool};

const COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: memtrail

Files: *
Copyright: 2026 memtrail developers
License: MIT or Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
";

const DESCRIPTION: &str = "\
Description: find memory leaks in long-running Linux processes from the outside
 memtrail reads /proc (status, smaps_rollup, per-region smaps, descriptors,
 threads) for one process, a process tree or every process, records it in a
 stable, crash-safe format, and judges each process: leak, no leak or too
 little data, with a growth rate and the regions responsible. The target
 needs no restart, no preload and no code change.
 .
 This package includes a systemd service (memtrail.service, not enabled on
 install) that records the host continuously into /var/lib/memtrail within
 a disk bound set in /etc/default/memtrail.";

/// Builds target/dist/memtrail_VERSION_ARCH.deb around `binary`.
pub fn build(
    root: &Path,
    dist: &Path,
    binary: &Path,
    libraries: &[(PathBuf, &str)],
) -> anyhow::Result<PathBuf> {
    let version = super::version(root)?;
    let arch = output_of(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_string();
    let name = format!("memtrail_{version}_{arch}");
    let stage = dist.join("deb").join(&name);
    std::fs::create_dir_all(&stage)?;
    let packaging = root.join("packaging");

    install(binary, &stage.join("usr/bin/memtrail"), 0o755)?;
    install(
        &packaging.join("memtrail-service"),
        &stage.join("usr/lib/memtrail/memtrail-service"),
        0o755,
    )?;
    for (library, install_dir) in libraries {
        let name = library.file_name().context("library without a name")?;
        let dir = stage.join(install_dir.trim_start_matches('/'));
        install(library, &dir.join(name), 0o644)?;
    }
    install(
        &packaging.join("memtrail.service"),
        &stage.join("usr/lib/systemd/system/memtrail.service"),
        0o644,
    )?;
    install(
        &packaging.join("memtrail.default"),
        &stage.join("etc/default/memtrail"),
        0o644,
    )?;

    // Man pages and completions as `cargo xtask docs` writes them; the
    // test generated_completions_and_man_pages_are_current (run by `ci`
    // before dist-check) keeps them equal to the binary's flags.
    let man = root.join("docs/man");
    for entry in
        std::fs::read_dir(&man).with_context(|| format!("cannot list {}", man.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1") {
            let page = stage
                .join("usr/share/man/man1")
                .join(path.file_name().context("man page without a name")?);
            install(&path, &page, 0o644)?;
            run_tool(Command::new("gzip").args(["-9n"]).arg(&page))?;
        }
    }
    let completions = root.join("docs/completions");
    for (file, installed) in [
        (
            "memtrail.bash",
            "usr/share/bash-completion/completions/memtrail",
        ),
        ("_memtrail", "usr/share/zsh/vendor-completions/_memtrail"),
        (
            "memtrail.fish",
            "usr/share/fish/vendor_completions.d/memtrail.fish",
        ),
    ] {
        install(&completions.join(file), &stage.join(installed), 0o644)?;
    }

    let doc = stage.join("usr/share/doc/memtrail");
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    write(&doc.join("copyright"), COPYRIGHT.as_bytes(), 0o644)?;
    let changelog = doc.join("changelog");
    write(
        &changelog,
        changelog_entry(root, &version)?.as_bytes(),
        0o644,
    )?;
    run_tool(Command::new("gzip").args(["-9n"]).arg(&changelog))?;
    copy_docs(&root.join("docs"), &doc.join("docs"))?;

    let debian = stage.join("DEBIAN");
    for script in ["postinst", "prerm", "postrm"] {
        install(
            &packaging.join("debian").join(script),
            &debian.join(script),
            0o755,
        )?;
    }
    write(&debian.join("conffiles"), b"/etc/default/memtrail\n", 0o644)?;
    let mut control = String::new();
    writeln!(control, "Package: memtrail")?;
    writeln!(control, "Version: {version}")?;
    writeln!(control, "Architecture: {arch}")?;
    writeln!(
        control,
        "Maintainer: memtrail developers <memtrail@example.invalid>"
    )?;
    writeln!(control, "Installed-Size: {}", installed_kib(&stage)?)?;
    writeln!(
        control,
        "Depends: libc6 (>= {}), libgcc-s1",
        glibc_needed(binary)?
    )?;
    writeln!(control, "Suggests: man-db, prometheus")?;
    writeln!(control, "Section: utils")?;
    writeln!(control, "Priority: optional")?;
    writeln!(control, "Homepage: https://example.invalid/memtrail")?;
    writeln!(control, "{DESCRIPTION}")?;
    write(&debian.join("control"), control.as_bytes(), 0o644)?;

    let deb = dist.join(format!("{name}.deb"));
    run_tool(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    std::fs::remove_dir_all(dist.join("deb"))?;
    Ok(deb)
}

/// The one entry of a native package's changelog, dated by the commit it
/// is built from (so a rebuild gives the same bytes).
fn changelog_entry(root: &Path, version: &str) -> anyhow::Result<String> {
    let date = output_of(
        Command::new("git")
            .args(["log", "-1", "--format=%cD"])
            .current_dir(root),
    )
    .or_else(|_| output_of(Command::new("date").arg("-R")))?;
    let commit = output_of(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root),
    )
    .unwrap_or_default();
    Ok(format!(
        "memtrail ({version}) unstable; urgency=medium\n\n  \
         * Built by `cargo xtask dist` from commit {}.\n\n \
         -- memtrail developers <memtrail@example.invalid>  {}\n",
        commit.trim(),
        date.trim()
    ))
}

/// docs/ except what is installed elsewhere (man pages, completions).
fn copy_docs(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type()?.is_dir() {
            if name == "man" || name == "completions" {
                continue;
            }
            copy_docs(&path, &to.join(&name))?;
        } else {
            install(&path, &to.join(&name), 0o644)?;
        }
    }
    Ok(())
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    let contents =
        std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    write(to, &contents, mode)
}

fn write(to: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(to, contents).with_context(|| format!("cannot write {}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Installed-Size: the files' sizes in KiB, each rounded up (as
/// dpkg-gencontrol counts).
fn installed_kib(stage: &Path) -> anyhow::Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name() == "DEBIAN" {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                *total += 1;
                walk(&entry.path(), total)?;
            } else {
                *total += entry.metadata()?.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}

/// The newest GLIBC_x.y symbol version the binary references: the oldest
/// libc6 it runs with.
fn glibc_needed(binary: &Path) -> anyhow::Result<String> {
    let symbols = output_of(Command::new("objdump").arg("-T").arg(binary))?;
    let newest = symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max();
    let (major, minor) = newest.with_context(|| {
        format!(
            "objdump -T {} shows no GLIBC_ symbol version",
            binary.display()
        )
    })?;
    ensure!(major >= 2, "odd glibc version {major}.{minor}");
    Ok(format!("{major}.{minor}"))
}
