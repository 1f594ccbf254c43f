//! Against real processes on this machine's /proc.

use std::path::Path;

use memtrail_collect::{read_process, snapshot, Collector, Config, Detail, Target, Tick};
use memtrail_format::NoticeKind;

use crate::util::{poll, Spawned};

fn pids(tick: &Tick) -> Vec<u32> {
    tick.processes.iter().map(|s| s.id.pid).collect()
}

#[test]
fn sleep_at_each_detail_level() {
    let sleep = Spawned::new("sleep", &["30"]);
    sleep.wait_for_comm("sleep");
    let proc_root = Path::new("/proc");
    for detail in [Detail::Summary, Detail::Rollup, Detail::Maps, Detail::Full] {
        let s = read_process(proc_root, sleep.pid(), detail).unwrap();
        assert_eq!(s.detail, detail);
        assert_eq!(s.info.comm, "sleep");
        assert_eq!(s.info.cmdline, ["sleep", "30"]);
        assert_eq!(s.info.ppid, std::process::id());
        assert!(s.status.vm_rss.unwrap() > 0);
        assert_eq!(s.status.threads, Some(1));
        // stdin and stdout are pipes (stderr is whatever the test runner has).
        assert!(s.fds.as_ref().unwrap().pipe >= 2);
        assert_eq!(s.rollup.is_some(), detail >= Detail::Rollup);
        assert_eq!(s.mappings.is_some(), detail >= Detail::Maps);
    }
    // The process is asleep: smaps_rollup and smaps read one after the
    // other agree.
    let s = read_process(proc_root, sleep.pid(), Detail::Full).unwrap();
    let maps = s.mappings.unwrap();
    let rollup = s.rollup.unwrap();
    assert_eq!(rollup.rss, Some(maps.iter().map(|m| m.rss).sum()));
    assert_eq!(
        rollup.anonymous,
        Some(maps.iter().map(|m| m.anonymous).sum())
    );
    assert!(maps
        .iter()
        .any(|m| m.path.ends_with("/sleep") && m.perms.contains('x')));
    assert!(maps.iter().any(|m| m.path == "[stack]"));
}

#[test]
fn pid_target_exit_is_reported_and_ends_the_target() {
    let mut sleep = Spawned::new("sleep", &["30"]);
    let pid = sleep.pid();
    let mut c = Collector::new(Config::new(Target::Pid(pid), Detail::Rollup)).unwrap();
    let tick = c.sample();
    assert_eq!(pids(&tick), [pid]);
    assert!(tick.system.meminfo.mem_total.unwrap() > 0);
    assert!(c.targets_alive());
    let id = tick.processes[0].id;
    assert!(!c.has_exited(id));
    let another = memtrail_format::ProcessId {
        start_time: id.start_time + 1,
        ..id
    };
    assert!(c.has_exited(another), "a pid held by another process");

    sleep.kill();
    let tick = poll("the exit to be seen", || {
        let tick = c.sample();
        (!tick.exited.is_empty()).then_some(tick)
    });
    assert!(tick.processes.is_empty());
    assert_eq!(tick.exited[0].id, id);
    assert!(!c.targets_alive());
    assert!(c.has_exited(id));
}

#[test]
fn tree_target_sees_a_shell_and_its_children() {
    let sh = Spawned::new("sh", &["-c", "sleep 30 & sleep 30 & wait"]);
    let mut c = Collector::new(Config::new(Target::Tree(sh.pid()), Detail::Summary)).unwrap();
    let tick = poll("sh and two sleeps", || {
        let tick = c.sample();
        let sleeps = tick
            .processes
            .iter()
            .filter(|s| s.info.comm == "sleep")
            .count();
        (tick.processes.len() == 3 && sleeps == 2).then_some(tick)
    });
    assert_eq!(
        tick.processes[0].id.pid,
        sh.pid(),
        "sorted by pid: the parent first"
    );
    assert!(tick.processes[1..].iter().all(|s| s.info.ppid == sh.pid()));
    // Killing sh would orphan the sleeps: end them first.
    for s in &tick.processes[1..] {
        let _ = std::process::Command::new("kill")
            .arg(s.id.pid.to_string())
            .status();
    }
}

#[test]
fn tree_target_picks_up_a_child_that_appears_later_and_its_exit() {
    let mut parent = Spawned::python(
        "import subprocess, sys\n\
         sys.stdin.readline()\n\
         child = subprocess.Popen(['sleep', '30'])\n\
         print(child.pid, flush=True)\n\
         sys.stdin.readline()\n\
         child.kill(); child.wait()\n\
         print('reaped', flush=True)\n\
         sys.stdin.readline()\n",
    );
    let mut c = Collector::new(Config::new(Target::Tree(parent.pid()), Detail::Summary)).unwrap();
    assert_eq!(pids(&c.sample()), [parent.pid()]);

    parent.send("spawn");
    let child: u32 = parent.line().parse().unwrap();
    poll("the child in a tick", || {
        pids(&c.sample()).contains(&child).then_some(())
    });

    parent.send("kill");
    assert_eq!(parent.line(), "reaped");
    let tick = poll("the child's exit", || {
        let tick = c.sample();
        (!tick.exited.is_empty()).then_some(tick)
    });
    assert_eq!(
        tick.exited.iter().map(|e| e.id.pid).collect::<Vec<_>>(),
        [child]
    );
    assert_eq!(pids(&tick), [parent.pid()]);
    assert!(c.targets_alive());
}

#[test]
fn fds_are_counted_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("held-open");
    let mut py = Spawned::new(
        "python3",
        &[
            "-c",
            "import os, socket, sys\n\
             print('baseline', flush=True)\n\
             sys.stdin.readline()\n\
             r, w = os.pipe()\n\
             s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
             f = open(sys.argv[1], 'w')\n\
             print('ready', flush=True)\n\
             sys.stdin.readline()\n",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(py.line(), "baseline");
    let before = read_process(Path::new("/proc"), py.pid(), Detail::Full)
        .unwrap()
        .fds
        .unwrap();
    py.send("open");
    assert_eq!(py.line(), "ready");
    let after = read_process(Path::new("/proc"), py.pid(), Detail::Full)
        .unwrap()
        .fds
        .unwrap();
    assert_eq!(after.pipe, before.pipe + 2);
    assert_eq!(after.socket, before.socket + 1);
    assert_eq!(after.file, before.file + 1);
    assert_eq!(after.total(), before.total() + 4);
    let targets = after.targets.unwrap();
    assert!(
        targets.iter().any(|f| Path::new(&f.target) == file),
        "{targets:?}"
    );
    assert!(targets.windows(2).all(|w| w[0].fd < w[1].fd));
}

#[test]
fn name_and_all_targets_exclude_the_collector_itself() {
    let sleep = Spawned::new("sleep", &["30.0123"]);
    sleep.wait_for_comm("sleep");
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap();
    let my_comm: String = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned();
    let name = Target::Name(
        regex::Regex::new(&format!(r"^sleep 30\.0123$|^{}$", regex::escape(&my_comm))).unwrap(),
    );
    let tick = snapshot(Config::new(name, Detail::Summary)).unwrap();
    assert_eq!(
        pids(&tick),
        [sleep.pid()],
        "matched by cmdline; {} ({}) left out",
        me,
        exe.display()
    );

    let tick = snapshot(Config::new(Target::All, Detail::Summary)).unwrap();
    assert!(pids(&tick).contains(&sleep.pid()));
    assert!(!pids(&tick).contains(&me));
    assert!(pids(&tick).contains(&1));
    assert!(pids(&tick).windows(2).all(|w| w[0] < w[1]));

    // A Pid target may be the collector itself.
    let tick = snapshot(Config::new(Target::Pid(me), Detail::Maps)).unwrap();
    assert_eq!(pids(&tick), [me]);
    assert!(tick.processes[0].mappings_fresh);
}

/// Set (to a pid) when this test binary re-runs itself as an unprivileged
/// user to read a root process.
const AS_NOBODY: &str = "MEMTRAIL_TEST_READ_AS_NOBODY";

#[test]
fn permission_denied_is_noticed_once_and_detail_lowered() {
    if let Ok(pid) = std::env::var(AS_NOBODY) {
        return read_other_users_process(pid.parse().unwrap());
    }
    let me_uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|u| u.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap();
    let sleep = Spawned::new("sleep", &["30"]);
    sleep.wait_for_comm("sleep");
    if me_uid != "0" {
        // Unprivileged already: any process of root's is out of reach.
        return read_other_users_process(1);
    }
    // As root everything is readable: re-run this test as nobody against
    // root's sleep.
    // The checkout may sit below a directory nobody cannot enter: run a
    // copy of this test binary from a world-readable place.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("collect-tests");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .current_dir(dir.path())
        .args([
            "--exact",
            "live::permission_denied_is_noticed_once_and_detail_lowered",
            "--nocapture",
        ])
        .env(AS_NOBODY, sleep.pid().to_string())
        .output()
        .expect("setpriv (util-linux) is needed to test permissions as root");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "as nobody: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_other_users_process(pid: u32) {
    let mut c = Collector::new(Config::new(Target::Pid(pid), Detail::Full)).unwrap();
    let tick = c.sample();
    let s = &tick.processes[0];
    assert_eq!(s.detail, Detail::Summary, "only what was readable");
    assert!(s.status.vm_rss.is_some(), "status is world-readable");
    assert_eq!(s.info.uid, Some(0));
    assert_eq!(s.rollup, None);
    assert_eq!(s.mappings, None);
    assert_eq!(s.fds, None);
    let mut files: Vec<&str> = tick
        .notices
        .iter()
        .map(|n| n.path.rsplit('/').next().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["fd", "smaps", "smaps_rollup"], "{:?}", tick.notices);
    for n in &tick.notices {
        assert_eq!(n.kind, NoticeKind::PermissionDenied);
        assert!(
            n.message
                .contains("permission denied; memtrail records what it can"),
            "{}",
            n.message
        );
        assert!(
            n.message.contains("(uid 0)") && n.message.contains("CAP_SYS_PTRACE"),
            "{}",
            n.message
        );
    }
    let rollup = tick
        .notices
        .iter()
        .find(|n| n.path.ends_with("smaps_rollup"))
        .unwrap();
    assert_eq!(
        rollup.message,
        format!(
            "cannot read /proc/{pid}/smaps_rollup: permission denied; memtrail records what it can. \
             Run as the process's user (uid 0) or as root / with CAP_SYS_PTRACE to see its memory map."
        )
    );
    let tick = c.sample();
    assert_eq!(tick.processes.len(), 1);
    assert!(tick.notices.is_empty(), "told once: {:?}", tick.notices);
}
