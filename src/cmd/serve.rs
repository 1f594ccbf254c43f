//! `memtrail serve`: live memory series and leak verdicts for Prometheus.
//!
//! One thread samples /proc every interval, folds the samples into the
//! live [`Analyzer`] and, at most every `--judge-every`, judges every
//! series; after each sample it publishes an immutable page (both text
//! formats, rendered by `memtrail_report::exposition`). HTTP handler
//! threads only hand out the current page: a scrape never reads /proc and
//! never waits for a judgement.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use anyhow::Context;
use memtrail_collect::Collector;
use memtrail_diff::{Analysis, Analyzer};
use memtrail_format::{ProcessId, ProcessSample, Record};
use memtrail_report::exposition::{self, Exposition, Format, RecorderMetrics};

use crate::cli::ServeArgs;
use crate::signals::{StopSignals, Wake};

/// HTTP handler threads: a slow client holds one, not the endpoint.
const HANDLERS: usize = 2;
/// Notices (unreadable processes, ...) printed at most once each, and at
/// most this many distinct ones, so `--all` for a month cannot flood the log.
const NOTICES_SHOWN: usize = 100;

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let (target, description) = super::target(&args.target, &args.collect)?;
    check_listen(args.listen, args.allow_remote)?;
    let detail = args.detail.into();
    let mut collector = Collector::new(super::config(
        target,
        detail,
        args.collect.redact_cmdline,
        10,
    ))?;
    let signals = StopSignals::install()?;
    let listener = TcpListener::bind(args.listen).map_err(|e| bind_error(e, args.listen))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {}", args.listen))?;
    let server = Arc::new(
        tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow::anyhow!("cannot serve HTTP on {local}: {e}"))?,
    );
    let page = Arc::new(RwLock::new(Arc::new(Page::default())));
    for n in 0..HANDLERS {
        let server = Arc::clone(&server);
        let page = Arc::clone(&page);
        std::thread::Builder::new()
            .name(format!("http-{n}"))
            .spawn(move || handle(&server, &page))
            .context("cannot start an HTTP handler thread")?;
    }
    eprintln!(
        "memtrail: serving metrics of {description} on http://{local}/metrics \
         every {} (Ctrl-C to stop)",
        humantime::format_duration(args.interval.0)
    );

    let mut state = State {
        analyzer: Analyzer::new(),
        tracker: Tracker {
            max: args.max_processes as usize,
            tracked: HashSet::new(),
        },
        latest: Vec::new(),
        analysis: None,
        judged: None,
        metrics: RecorderMetrics {
            max_processes: args.max_processes as usize,
            ..Default::default()
        },
        notices: HashSet::new(),
    };
    let mut next_tick = Instant::now();
    let mut told_gone = false;
    loop {
        state.collect(&mut collector);
        if state
            .judged
            .map_or(true, |t| t.elapsed() >= args.judge_every.0)
        {
            state.judge();
        }
        let published = state.page(args.cmdline_label);
        *page.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(published);
        if !told_gone && !collector.targets_alive() {
            told_gone = true;
            eprintln!("memtrail: the target processes have exited; still serving (Ctrl-C to stop)");
        }

        next_tick += args.interval.0;
        let now = Instant::now();
        if next_tick < now {
            next_tick = now;
        }
        let stop = loop {
            match signals.wait(next_tick.saturating_duration_since(Instant::now())) {
                Wake::Signal(sig) => break Some(sig),
                Wake::Tick if Instant::now() >= next_tick => break None,
                Wake::Tick => {}
            }
        };
        if let Some(sig) = stop {
            eprintln!(
                "memtrail: stopped by {} after {}",
                crate::signals::name(sig),
                memtrail_report::count(
                    state.metrics.collections as usize,
                    "collection",
                    "collections"
                )
            );
            break;
        }
    }
    for _ in 0..HANDLERS {
        server.unblock();
    }
    Ok(0)
}

/// Loopback unless asked: the page names every process on the host.
fn check_listen(addr: SocketAddr, allow_remote: bool) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    anyhow::bail!(
        "--listen {addr} would let other hosts read the memory and names of the processes \
         here, without authentication: add --allow-remote if that is intended (e.g. for a \
         Prometheus on another host, behind a firewall), or listen on 127.0.0.1"
    )
}

fn bind_error(err: std::io::Error, addr: SocketAddr) -> anyhow::Error {
    let remedy = match err.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "another program (another memtrail serve?) listens there: choose another port, \
             e.g. --listen {}:{}, or --listen {}:0 for any free one",
            addr.ip(),
            addr.port().wrapping_add(1).max(1),
            addr.ip()
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this host has that address: use 127.0.0.1, or one that \
             `ip addr` lists"
                .into()
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE: use a port above 1024".into()
        }
        _ => "check the address, or use --listen 127.0.0.1:0 for any free port".into(),
    };
    anyhow::anyhow!("cannot listen on {addr}: {err}; {remedy}")
}

/// What a scrape gets: rendered once per collection.
#[derive(Debug, Default)]
struct Page {
    prometheus: String,
    openmetrics: String,
}

fn handle(server: &tiny_http::Server, page: &RwLock<Arc<Page>>) {
    use tiny_http::{Header, Method, Response};
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let get = matches!(request.method(), Method::Get | Method::Head);
        let text = |body: String, status: u16, content_type: &str| {
            let mut response = Response::from_string(body).with_status_code(status);
            if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
                response = response.with_header(h);
            }
            response
        };
        let plain = "text/plain; charset=utf-8";
        let response = match (get, path.as_str()) {
            (true, "/metrics") => {
                let accept = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Accept"))
                    .map(|h| h.value.as_str());
                let format = Format::negotiate(accept);
                let current = Arc::clone(&page.read().unwrap_or_else(|p| p.into_inner()));
                let body = match format {
                    Format::Prometheus => current.prometheus.clone(),
                    Format::OpenMetrics => current.openmetrics.clone(),
                };
                text(body, 200, format.content_type())
            }
            (true, "/") => text(
                "memtrail serve: the metrics are at /metrics\n".into(),
                200,
                plain,
            ),
            (true, _) => text(
                format!("{path} not found: the metrics are at /metrics\n"),
                404,
                plain,
            ),
            (false, _) => text("only GET and HEAD are served\n".into(), 405, plain),
        };
        // A scraper that hung up is its own business.
        let _ = request.respond(response);
    }
}

/// Which processes are tracked: at most `max`, largest RSS first; a
/// tracked process stays tracked until it is gone, so its series do not
/// flap in and out as RSS ranks change.
#[derive(Debug)]
struct Tracker {
    max: usize,
    tracked: HashSet<ProcessId>,
}

impl Tracker {
    /// Keeps the tracked samples; returns them, how many were left out,
    /// and the tracked processes that are gone.
    fn select(
        &mut self,
        mut samples: Vec<ProcessSample>,
    ) -> (Vec<ProcessSample>, usize, Vec<ProcessId>) {
        let seen: HashSet<ProcessId> = samples.iter().map(|s| s.id).collect();
        let gone: Vec<ProcessId> = self
            .tracked
            .iter()
            .filter(|id| !seen.contains(id))
            .copied()
            .collect();
        for id in &gone {
            self.tracked.remove(id);
        }
        samples.sort_by_key(|s| std::cmp::Reverse(s.status.vm_rss.unwrap_or(0)));
        let mut kept = Vec::with_capacity(samples.len().min(self.max));
        let mut dropped = 0;
        for sample in samples {
            if self.tracked.contains(&sample.id) {
                kept.push(sample);
            } else if self.tracked.len() < self.max {
                self.tracked.insert(sample.id);
                kept.push(sample);
            } else {
                dropped += 1;
            }
        }
        (kept, dropped, gone)
    }
}

#[derive(Debug)]
struct State {
    analyzer: Analyzer,
    tracker: Tracker,
    /// The last sample of every tracked process, without its regions.
    latest: Vec<ProcessSample>,
    analysis: Option<Analysis>,
    judged: Option<Instant>,
    metrics: RecorderMetrics,
    notices: HashSet<String>,
}

impl State {
    fn collect(&mut self, collector: &mut Collector) {
        let started = Instant::now();
        let tick = collector.sample();
        self.metrics.collect_seconds = started.elapsed().as_secs_f64();
        self.metrics.collections += 1;
        for notice in &tick.notices {
            if self.notices.len() < NOTICES_SHOWN && self.notices.insert(notice.message.clone()) {
                eprintln!(
                    "memtrail: warning: {}",
                    memtrail_report::printable(&notice.message)
                );
            }
        }
        self.analyzer.add(Record::System(Box::new(tick.system)));
        for exit in &tick.exited {
            self.analyzer.forget(&exit.id);
        }
        let (kept, dropped, gone) = self.tracker.select(tick.processes);
        for id in &gone {
            self.analyzer.forget(id);
        }
        self.metrics.dropped = dropped;
        self.metrics.tracked = kept.len();
        self.metrics.samples += kept.len() as u64;
        self.latest.clear();
        for mut sample in kept {
            // The page needs the figures, not the regions (which the
            // analyzer keeps for attribution).
            let mappings = sample.mappings.take();
            self.latest.push(sample.clone());
            sample.mappings = mappings;
            self.analyzer.add(Record::Process(Box::new(sample)));
        }
    }

    fn judge(&mut self) {
        let started = Instant::now();
        self.analysis = Some(self.analyzer.analysis());
        self.judged = Some(Instant::now());
        self.metrics.judge_seconds = Some(started.elapsed().as_secs_f64());
        self.metrics.judged_at = Some(crate::recorder::now_us() as f64 / 1e6);
    }

    fn page(&self, cmdline_label: Option<usize>) -> Page {
        let exposition = Exposition {
            processes: &self.latest,
            analysis: self.analysis.as_ref(),
            recorder: &self.metrics,
            cmdline_label,
        };
        Page {
            prometheus: exposition::render(&exposition, Format::Prometheus),
            openmetrics: exposition::render(&exposition, Format::OpenMetrics),
        }
    }
}
