//! Writes a synthetic recording of one leaking process:
//! `cargo run --release -p memtrail-diff --example synthetic -- SAMPLES FILE`.
//! `cargo xtask bench analyze` times `memtrail analyze` on it.

#[path = "../benches/synthetic/mod.rs"]
mod synthetic;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(n), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: synthetic SAMPLES FILE");
        std::process::exit(2);
    };
    let n: u64 = match n.parse() {
        Ok(n) => n,
        Err(_) => {
            eprintln!("synthetic: SAMPLES must be a number, not {n:?}");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::write(&path, synthetic::recording(n)) {
        eprintln!("synthetic: cannot write {path}: {e}");
        std::process::exit(2);
    }
}
