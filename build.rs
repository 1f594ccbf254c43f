//! Builds the LD_PRELOAD sampler of `memtrail run --native` (crates/preload,
//! one crate without dependencies) with rustc alone, so the memtrail binary
//! can carry it (`include_bytes!` in src/native.rs): `cargo run`, `cargo
//! install --path .` and a copied binary all find it, with nothing to install
//! beside the binary. Building it as a Cargo dependency is not possible (a
//! cdylib cannot be a dependency, and a nested `cargo build` would wait on
//! the lock of the build that runs this script).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let source = manifest.join("crates/preload/src");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"))
        .join("libmemtrail_preload.so");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !linux {
        // Only Linux runs `run --native`; elsewhere the binary carries an
        // empty library and says so.
        std::fs::write(&out, b"").expect("write OUT_DIR");
        return;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("set by cargo");
    let status = Command::new(rustc)
        .args(["--crate-name", "memtrail_preload", "--crate-type", "cdylib"])
        .args(["--edition", "2021", "--target", &target])
        // Optimised whatever the profile: it runs inside the measured program.
        .args(["-C", "opt-level=3", "-C", "debuginfo=0"])
        // Without the standard library's debug info: a smaller file to map
        // into every process (its symbols stay, for dladdr).
        .args(["-C", "strip=debuginfo", "--cap-lints", "allow"])
        .arg("-o")
        .arg(&out)
        .arg(source.join("lib.rs"))
        .status()
        .expect("run rustc to build crates/preload");
    assert!(status.success(), "building crates/preload failed");
}
