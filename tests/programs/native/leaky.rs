// Rust leaks for memtrail's `run --native` tests: a Vec in a static that
// only grows (remember) and Box::leak (leak_config).
// Usage: leaky TICKS   (a tick is 50 ms)
use std::sync::Mutex;

static HISTORY: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

#[inline(never)]
fn remember(tick: usize) {
    let mut history = HISTORY.lock().unwrap();
    for _ in 0..32 {
        history.push(vec![tick as u8; 1024]);
    }
}

#[inline(never)]
fn leak_config(tick: usize) -> &'static [u8] {
    Box::leak(vec![tick as u8; 8192].into_boxed_slice())
}

fn main() {
    let ticks: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let mut leaked = 0;
    for tick in 0..ticks {
        remember(tick);
        leaked += leak_config(tick).len();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Every byte remember() keeps: the vectors, and the static Vec's own
    // buffer of their headers.
    let history = HISTORY.lock().unwrap();
    let kept = history.len() * 1024 + history.capacity() * std::mem::size_of::<Vec<u8>>();
    println!("kept {kept} bytes in remember, {leaked} in leak_config");
}
