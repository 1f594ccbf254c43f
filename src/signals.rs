//! SIGINT and SIGTERM as messages, so the sampling loop can wait for "the
//! next tick or a signal, whichever comes first" and finish the file cleanly.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Signals received since the recorder started.
#[derive(Debug)]
pub struct StopSignals {
    rx: Receiver<i32>,
}

/// What waiting for the next tick ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Tick,
    Signal(i32),
}

impl StopSignals {
    /// Takes over SIGINT and SIGTERM for the rest of the process.
    pub fn install() -> anyhow::Result<StopSignals> {
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).context("cannot install SIGINT/SIGTERM handlers")?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(StopSignals { rx })
    }

    /// Waits up to `timeout` for a signal.
    pub fn wait(&self, timeout: Duration) -> Wake {
        match self.rx.recv_timeout(timeout) {
            Ok(sig) => Wake::Signal(sig),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => Wake::Tick,
        }
    }
}

/// `SIGINT` for 2, `SIGTERM` for 15.
pub fn name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}
