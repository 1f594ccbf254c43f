//! `memtrail run -- CMD`: start a command and record its whole tree.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};

use anyhow::Context;
use memtrail_collect::{Collector, Target, Tick};
use memtrail_diff::Verdict;
use memtrail_format::{EndReason, ProcessExit, ProcessId, Record};
use signal_hook::consts::SIGTERM;

use crate::cli::RunArgs;
use crate::events::{self, Events, PrivateDir};
use crate::output::open_binary;
use crate::recorder::{self, Finished, Limits, Next, StopCause, TickHook};
use crate::signals::StopSignals;
use crate::units::Interval;

/// What `run` ended with, for `demo` and the exit status.
#[derive(Debug)]
pub struct RunOutcome {
    pub output: PathBuf,
    pub finished: Finished,
    pub status: ExitStatus,
    /// The command's process id.
    pub pid: u32,
    /// The reader of the recording went away (`run -o - ... | head`): a
    /// normal end, as for every command, though the recording stopped there.
    pub downstream_closed: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    if args.fail_on_leak && args.output.as_deref() == Some(std::path::Path::new("-")) {
        anyhow::bail!(
            "--fail-on-leak reads the recording back from its file, and -o - sends it down a \
             pipe: pipe it into `memtrail analyze - --fail-on-leak` instead"
        );
    }
    let outcome = record_command(&args, false)?;
    if outcome.downstream_closed {
        return Ok(exit_code(outcome.status));
    }
    eprintln!(
        "memtrail: recorded {} of {} in {} to {} ({})",
        memtrail_report::count(outcome.finished.samples as usize, "sample", "samples"),
        memtrail_report::count(outcome.finished.processes.len(), "process", "processes"),
        memtrail_report::count(outcome.finished.ticks as usize, "tick", "ticks"),
        outcome.output.display(),
        super::record::describe_end(&outcome.finished.reason),
    );
    let code = exit_code(outcome.status);
    if outcome.output.as_os_str() == "-" {
        // The recording went down a pipe: whoever reads it can analyze it
        // (`memtrail run -o - -- CMD | memtrail analyze -`).
        return Ok(code);
    }
    let analysis = match analyze_file(&outcome.output) {
        Ok(analysis) => analysis,
        Err(err) if !args.fail_on_leak => {
            // The command ran and was recorded; not being able to read the
            // file back (a FIFO, a device) does not make that a failure.
            eprintln!("memtrail: no analysis: {err:#}");
            return Ok(code);
        }
        Err(err) => return Err(err.context("--fail-on-leak needs the analysis")),
    };
    eprint!(
        "\nmemtrail: analysis (details: memtrail analyze {} --all)\n{}",
        outcome.output.display(),
        memtrail_report::analysis::text(&analysis, false)
    );
    if code == 0 && args.fail_on_leak {
        if analysis.leaks() > 0 {
            return Ok(crate::EXIT_LEAK);
        }
        // The command's own process lives as long as the job: if it could
        // not be judged, nothing of the job could be.
        let judged = analysis
            .processes
            .iter()
            .any(|p| p.pid == outcome.pid && p.verdict != Verdict::InsufficientData);
        if !judged {
            eprintln!(
                "memtrail: --fail-on-leak: the command could not be judged: it was seen {} \
                 times, and a verdict needs {}; exiting with status {} (no evidence is not a \
                 pass; run it longer, or with a shorter --interval)",
                analysis
                    .processes
                    .iter()
                    .filter(|p| p.pid == outcome.pid)
                    .map(|p| p.samples)
                    .max()
                    .unwrap_or(0),
                memtrail_diff::MIN_POINTS,
                crate::EXIT_UNJUDGED,
            );
            return Ok(crate::EXIT_UNJUDGED);
        }
    }
    Ok(code)
}

/// Reads a finished recording back and judges it.
pub(super) fn analyze_file(path: &std::path::Path) -> anyhow::Result<memtrail_diff::Analysis> {
    let mut reader = memtrail_format::open(path)
        .with_context(|| format!("cannot read back {}", path.display()))?;
    let mut analyzer = memtrail_diff::Analyzer::new();
    let mut names = crate::native::Names::new();
    for frame in reader.by_ref() {
        let frame = frame.with_context(|| format!("cannot read back {}", path.display()))?;
        analyzer.add(names.pass(frame.record));
    }
    Ok(analyzer.analysis())
}

/// The status a shell would report: the exit code, or 128 + signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        _ => crate::EXIT_ERROR,
    }
}

/// Spawns the command, records it until it exits and returns how it went.
/// `quiet` sends the command's standard output to /dev/null (for `demo`).
pub fn record_command(args: &RunArgs, quiet: bool) -> anyhow::Result<RunOutcome> {
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given: put it after `--`, e.g. `memtrail run -- python3 app.py`")?;
    let detail = args.sampling.detail.into();
    let interval = args.sampling.interval.unwrap_or(Interval::Auto);

    // An explicit output file is opened before the command starts, so a
    // bad path costs nothing; the default name needs the command's pid.
    let early = args.output.as_deref().map(open_binary).transpose()?;
    let signals = StopSignals::install()?;

    // The events channel: a FIFO in a directory of our own, removed at the
    // end, open for reading before the command can write to it. Without
    // one (no writable temporary directory) the command is still recorded
    // from the outside, unless censuses were asked for.
    let python = args.python_gc || args.python_tracemalloc;
    let needs_channel = python || args.native;
    let channel = (|| -> anyhow::Result<(PrivateDir, Events)> {
        let private = PrivateDir::new()?;
        let path = private.path().join("events");
        events::make_fifo(&path)?;
        let events = Events::open(&path)?;
        Ok((private, events))
    })();
    let (private, mut events) = match channel {
        Ok((private, events)) => (Some(private), Some(events)),
        Err(err) if !needs_channel => {
            eprintln!(
                "memtrail: warning: no events channel ({err:#}); recording without markers \
                 and censuses"
            );
            (None, None)
        }
        Err(err) => {
            return Err(err.context(
                "--python-gc, --python-tracemalloc and --native report through an events \
                 channel, which could not be made",
            ))
        }
    };

    let mut command = std::process::Command::new(program);
    command.args(rest);
    if let Some(private) = &private {
        command.env(events::ENV, private.path().join("events"));
        if python {
            python_hooks(&mut command, private, args)?;
        }
        if args.native {
            crate::native::prepare(
                &mut command,
                private.path(),
                args.native_rate.0,
                census_interval(args.sampling.interval),
            )?;
        }
    }
    if quiet {
        command.stdout(std::process::Stdio::null());
    }
    let mut child = command.spawn().with_context(|| {
        format!(
            "cannot start {}: is it installed and on PATH?",
            program.to_string_lossy()
        )
    })?;
    let pid = child.id();
    wait_for_exec(pid);
    if let (true, Some(events)) = (args.native, events.as_mut()) {
        events.watch_native(pid);
    }
    let output = args.output.clone().unwrap_or_else(|| {
        let base = std::path::Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "command".into());
        PathBuf::from(format!("memtrail-{base}-{pid}.mtr"))
    });
    let out = match early {
        Some(out) => out,
        None => match open_binary(&output) {
            Ok(out) => out,
            Err(err) => {
                // Nothing can be recorded: stop the command rather than
                // leave it running unobserved.
                terminate(pid);
                let status = child.wait();
                return Err(err.context(format!(
                    "the command was stopped ({})",
                    status
                        .map(describe_status)
                        .unwrap_or_else(|e| e.to_string())
                )));
            }
        },
    };

    // From here on the child runs: every failure must still wait for it,
    // so it is never left behind unreaped or unsupervised.
    let recorded = (|| -> anyhow::Result<Finished> {
        let mut collector = Collector::new(super::config(
            Target::Tree(pid),
            detail,
            args.redact_cmdline,
            args.sampling.maps_every,
        ))?;
        let description = describe_command(&args.command, args.redact_cmdline);
        let header = super::header(&collector, description, detail, Some(interval))?;
        let mut writer = crate::recorder::writer(out.sink, &header, args.sampling.uncompressed)
            .with_context(|| {
                crate::output::Writing(format!("cannot write the recording to {}", out.name))
            })?;
        let mut hook = ReapChild {
            child: &mut child,
            pid,
            root: None,
            status: None,
            last_seen: Vec::new(),
        };
        let finished = recorder::sample_loop(
            &mut collector,
            &mut writer,
            interval,
            Limits::default(),
            &signals,
            &mut hook,
            events.as_mut(),
            &out.name,
            None,
        )?;
        recorder::finish(writer, &finished, &out.name)?;
        Ok(finished)
    })();
    let downstream_closed = recorded.as_ref().err().is_some_and(crate::is_broken_pipe);
    if let (Err(err), false) = (&recorded, downstream_closed) {
        // Say so now, not when the command ends hours later.
        eprintln!("memtrail: error: {err:#}");
        if let Some(hint) = crate::hint(err) {
            eprintln!("  hint: {hint}");
        }
        eprintln!("memtrail: recording stopped; waiting for the command (pid {pid}) to exit");
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for process {pid}"))?;
    let finished = match recorded {
        Ok(r) => r,
        Err(_) if downstream_closed => Finished {
            reason: EndReason::Error("the reader of the recording went away".into()),
            samples: 0,
            ticks: 0,
            processes: Default::default(),
        },
        Err(_) => {
            anyhow::bail!(
                "recording failed (see above); the command ran to the end and {}",
                describe_status(status)
            )
        }
    };
    Ok(RunOutcome {
        output,
        finished,
        status,
        pid,
        downstream_closed,
    })
}

/// Makes Python programs report censuses: our sitecustomize first on
/// PYTHONPATH, told what to count and how often by environment variables.
fn python_hooks(
    command: &mut std::process::Command,
    private: &PrivateDir,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let dir = private.path().join("python");
    std::fs::create_dir_all(dir.join("memtrail_hook"))
        .and_then(|()| {
            events::PYTHON_HOOK
                .iter()
                .try_for_each(|(name, text)| std::fs::write(dir.join(name), text))
        })
        .with_context(|| format!("cannot write the Python hooks to {}", dir.display()))?;
    let mut path = std::ffi::OsString::from(&dir);
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let sources: Vec<&str> = [
        (args.python_gc, "gc"),
        (args.python_tracemalloc, "tracemalloc"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    command
        .env("PYTHONPATH", path)
        .env("MEMTRAIL_PYTHON", sources.join(","))
        .env("MEMTRAIL_PYTHON_DIR", &dir)
        .env("MEMTRAIL_PYTHON_FRAMES", args.python_frames.to_string())
        .env(
            "MEMTRAIL_PYTHON_INTERVAL",
            format!("{}", census_interval(args.sampling.interval).as_secs_f64()),
        );
    Ok(())
}

/// How often the Python hooks and the native sampler report a census:
/// every --interval, or every second under the adaptive schedule (a census
/// costs the program far more than a look at /proc costs it).
fn census_interval(interval: Option<Interval>) -> std::time::Duration {
    match interval {
        Some(Interval::Fixed(d)) => d,
        Some(Interval::Auto) | None => std::time::Duration::from_secs(1),
    }
}

/// The command as the recording's header names it: without its arguments
/// under --redact-cmdline, like the command lines of the samples.
fn describe_command(command: &[std::ffi::OsString], redact: bool) -> String {
    let shown = if redact {
        &command[..command.len().min(1)]
    } else {
        command
    };
    let mut description = format!(
        "run -- {}",
        shown
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if shown.len() < command.len() {
        description.push_str(" (arguments redacted)");
    }
    description
}

/// Waits until the kernel has finished loading the command's program, so
/// that no sample shows the process half-way through its exec.
///
/// `spawn` returns once the exec has gone far enough to close our
/// close-on-exec pipe, but the kernel closes it before it maps the new
/// program: a sample taken then shows a process with a few KiB of memory
/// and no command line. The kernel sets the new command line
/// (mm->arg_start..env_end) at the very end of the exec, so a non-empty
/// /proc/PID/cmdline says the exec is done. Bounded: a process that ends
/// (a zombie's cmdline is empty too) or takes longer than two seconds is
/// recorded as it is.
fn wait_for_exec(pid: u32) {
    let started = std::time::Instant::now();
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    while started.elapsed() < std::time::Duration::from_secs(2) {
        match std::fs::read(proc.join("cmdline")) {
            Ok(cmdline) if cmdline.is_empty() => {}
            _ => return,
        }
        let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if matches!(state, None | Some('Z' | 'X')) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Sends SIGTERM to `pid` (our own child, so the pid cannot have been reused).
fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended".into(),
    }
}

/// Reaps the child after each tick; passes SIGTERM on to it.
struct ReapChild<'a> {
    child: &'a mut Child,
    pid: u32,
    root: Option<ProcessId>,
    status: Option<ExitStatus>,
    /// The processes of the last tick: those that went with the command
    /// get an exit frame at the end (see `final_records`).
    last_seen: Vec<ProcessId>,
}

impl TickHook for ReapChild<'_> {
    fn after_tick(&mut self, tick: &Tick, _collector: &Collector) -> Next {
        if self.root.is_none() {
            self.root = tick
                .processes
                .iter()
                .find(|s| s.id.pid == self.pid)
                .map(|s| s.id);
        }
        self.last_seen.clear();
        self.last_seen.extend(tick.processes.iter().map(|s| s.id));
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                Next::Stop(StopCause::TargetExited)
            }
            Ok(None) => Next::Continue,
            // Cannot happen for our own child; stop rather than spin.
            Err(_) => Next::Stop(StopCause::TargetExited),
        }
    }

    fn on_signal(&mut self, sig: i32) -> bool {
        // Ctrl-C already reached the command through the terminal's process
        // group; sending it again would interrupt it twice. SIGTERM was
        // meant for us alone, so pass it on. Either way keep recording
        // until the command exits.
        if sig == SIGTERM {
            terminate(self.pid);
        }
        false
    }

    fn final_records(&mut self, collector: &Collector) -> Vec<Record> {
        let time_us = recorder::now_us();
        let mut records = Vec::new();
        if let (Some(id), Some(status)) = (self.root, self.status) {
            records.push(Record::Exit(ProcessExit {
                time_us,
                id,
                exit_code: Some(exit_code(status) as i32),
            }));
        }
        // A descendant seen in the last tick that is gone now ended with
        // the command (a shell's last child exits just before the shell):
        // no later tick will notice, so say it here rather than leave its
        // lifetime open. Those still running (left behind) get nothing.
        for &id in &self.last_seen {
            if Some(id) != self.root && self.status.is_some() && collector.has_exited(id) {
                records.push(Record::Exit(ProcessExit {
                    time_us,
                    id,
                    exit_code: None,
                }));
            }
        }
        records
    }
}
