//! The collector against a fake /proc built from captured files.

use memtrail_collect::{read_process, CollectError, Collector, Config, Detail, Target};
use memtrail_format::{NoticeKind, ProcessId};

use crate::util::{fixture, FakeProc, FAKE_PID, FAKE_START};

fn config(fake: &FakeProc, target: Target, detail: Detail) -> Config {
    Config {
        proc_root: fake.root().to_owned(),
        ..Config::new(target, detail)
    }
}

const FAKE_ID: ProcessId = ProcessId {
    pid: FAKE_PID,
    start_time: FAKE_START,
};

#[test]
fn each_detail_level_reads_what_it_names() {
    let fake = FakeProc::new();
    let check = |detail: Detail| {
        let s = read_process(fake.root(), FAKE_PID, detail).unwrap();
        assert_eq!(s.id, FAKE_ID);
        assert_eq!(s.detail, detail, "everything was readable");
        assert_eq!(s.info.ppid, 5315);
        assert_eq!(s.info.comm, "sleep");
        assert_eq!(s.info.cmdline, ["sleep", "30"]);
        assert_eq!(s.info.uid, Some(0));
        assert_eq!(s.info.cgroup.as_deref(), Some("/"));
        assert_eq!(s.status.vm_rss, Some(1808));
        assert_eq!(s.cpu.unwrap().minflt, 98);
        let fds = s.fds.as_ref().unwrap();
        assert_eq!(
            (fds.file, fds.pipe, fds.socket, fds.anon_inode, fds.other),
            (2, 2, 1, 1, 1)
        );
        assert_eq!(s.rollup.is_some(), detail >= Detail::Rollup);
        assert_eq!(s.mappings.is_some(), detail >= Detail::Maps);
        assert_eq!(s.mappings_fresh, detail >= Detail::Maps);
        assert_eq!(fds.targets.is_some(), detail == Detail::Full);
        s
    };
    check(Detail::Summary);
    assert_eq!(check(Detail::Rollup).rollup.unwrap().pss, Some(418));
    let maps = check(Detail::Maps).mappings.unwrap();
    assert_eq!(maps.len(), 37);
    assert_eq!(maps.iter().map(|m| m.rss).sum::<u64>(), 1808);
    let targets = check(Detail::Full).fds.unwrap().targets.unwrap();
    let fds: Vec<(u32, &str)> = targets.iter().map(|f| (f.fd, f.target.as_str())).collect();
    assert_eq!(
        fds,
        [
            (0, "/dev/null"),
            (1, "pipe:[8935]"),
            (2, "pipe:[8935]"),
            (3, "socket:[12345]"),
            (4, "anon_inode:[eventfd]"),
            (7, "net:[4026531840]"),
            (10, "/tmp/log (deleted)"),
        ],
        "sorted by fd, targets verbatim"
    );
}

#[test]
fn older_kernel_rollup_gives_none() {
    let fake = FakeProc::new();
    fake.copy(
        &fixture("smaps_rollup.old"),
        &format!("{FAKE_PID}/smaps_rollup"),
    );
    let r = read_process(fake.root(), FAKE_PID, Detail::Rollup)
        .unwrap()
        .rollup
        .unwrap();
    assert_eq!((r.rss, r.pss_anon, r.swap_pss), (Some(1808), None, None));
}

#[test]
fn host_from_the_fake_root() {
    let fake = FakeProc::new();
    let host = Collector::new(config(&fake, Target::All, Detail::Summary))
        .unwrap()
        .host()
        .unwrap();
    assert_eq!(host.hostname, fake.read("sys/kernel/hostname").trim());
    assert_eq!(host.kernel, fake.read("sys/kernel/osrelease").trim());
    assert_eq!(host.boot_time_us, 1_795_609_693_000_000);
    assert!(host.page_size >= 4096);
    assert!(host.clock_ticks > 0);
}

#[test]
fn missing_pid_is_a_clear_error() {
    let fake = FakeProc::new();
    for target in [Target::Pid(4242), Target::Tree(4242)] {
        let err = Collector::new(config(&fake, target, Detail::Summary)).unwrap_err();
        assert!(matches!(err, CollectError::NoSuchProcess { pid: 4242 }));
        assert_eq!(
            err.to_string(),
            "no process with pid 4242 (is it running? see `ps -p 4242`)"
        );
    }
    let err = read_process(fake.root(), 4242, Detail::Summary).unwrap_err();
    assert!(matches!(err, CollectError::NoSuchProcess { pid: 4242 }));
    let mut gone = Config::new(Target::All, Detail::Summary);
    gone.proc_root = fake.root().join("nowhere");
    let err = Collector::new(gone).unwrap_err().to_string();
    assert!(err.contains("nowhere") && err.contains("procfs"), "{err}");
}

#[test]
fn pid_reuse_ends_a_pid_target() {
    let fake = FakeProc::new();
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Summary)).unwrap();
    let tick = c.sample();
    assert_eq!(tick.processes.len(), 1);
    assert!(tick.exited.is_empty());
    assert!(c.targets_alive());

    fake.set_start_time(FAKE_PID, FAKE_START + 1000);
    let tick = c.sample();
    assert!(
        tick.processes.is_empty(),
        "the newcomer at the pid is not the target"
    );
    assert_eq!(tick.exited.len(), 1);
    assert_eq!(tick.exited[0].id, FAKE_ID);
    assert_eq!(tick.exited[0].exit_code, None);
    assert!(!c.targets_alive());
    let tick = c.sample();
    assert!(
        tick.processes.is_empty() && tick.exited.is_empty(),
        "reported once"
    );
}

#[test]
fn pid_reuse_under_all_is_an_exit_and_a_new_process() {
    let fake = FakeProc::new();
    fake.add_process(6000);
    let mut c = Collector::new(config(&fake, Target::All, Detail::Summary)).unwrap();
    let pids = |t: &memtrail_collect::Tick| t.processes.iter().map(|s| s.id).collect::<Vec<_>>();
    let tick = c.sample();
    assert_eq!(
        pids(&tick),
        [
            FAKE_ID,
            ProcessId {
                pid: 6000,
                start_time: FAKE_START
            }
        ]
    );

    fake.set_start_time(FAKE_PID, FAKE_START + 5);
    let tick = c.sample();
    assert_eq!(
        pids(&tick),
        [
            ProcessId {
                pid: FAKE_PID,
                start_time: FAKE_START + 5
            },
            ProcessId {
                pid: 6000,
                start_time: FAKE_START
            },
        ]
    );
    assert_eq!(
        tick.exited.iter().map(|e| e.id).collect::<Vec<_>>(),
        [FAKE_ID]
    );

    std::fs::remove_dir_all(fake.root().join("6000")).unwrap();
    let tick = c.sample();
    assert_eq!(
        tick.exited.iter().map(|e| e.id.pid).collect::<Vec<_>>(),
        [6000]
    );
    assert!(c.targets_alive(), "All is never done");
}

#[test]
fn adaptive_policy_rereads_smaps_on_change_or_every_nth_sample() {
    let fake = FakeProc::new();
    let mut config = config(&fake, Target::Pid(FAKE_PID), Detail::Maps);
    config.maps_every = 3;
    let mut c = Collector::new(config).unwrap();
    // Each tick: (fresh?, number of mappings).
    let mut tick = || {
        let t = c.sample();
        let s = &t.processes[0];
        assert_eq!(s.detail, Detail::Maps);
        (s.mappings_fresh, s.mappings.as_ref().unwrap().len())
    };
    assert_eq!(tick(), (true, 37));

    // smaps changes, but nothing cheap does: the old mappings are carried.
    let smaps = fake.read(&format!("{FAKE_PID}/smaps"));
    let first_mapping_only: String = {
        let mut lines = smaps.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for l in lines.take_while(|l| l.starts_with(|c: char| c.is_ascii_uppercase())) {
            out += &format!("{l}\n");
        }
        out
    };
    fake.write(&format!("{FAKE_PID}/smaps"), first_mapping_only.as_bytes());
    assert_eq!(tick(), (false, 37));
    assert_eq!(tick(), (false, 37));
    // The third sample since the full read is due.
    assert_eq!(tick(), (true, 1));
    assert_eq!(tick(), (false, 1));

    // A cheap figure changes: re-read at once.
    fake.write(&format!("{FAKE_PID}/smaps"), smaps.as_bytes());
    fake.set_status(FAKE_PID, "VmRSS:", "2000 kB");
    assert_eq!(tick(), (true, 37));
    assert_eq!(tick(), (false, 37));
    // smaps_rollup is not read at `maps`: it walks every page, as smaps does.
    std::fs::remove_file(fake.root().join(format!("{FAKE_PID}/smaps_rollup"))).unwrap();
    assert_eq!(tick(), (false, 37), "nothing cheap changed");
    // A page fault (stat's minflt, field 10) changes no status figure
    // when it turns a shared page private, but smaps shows it.
    let stat = fake.read(&format!("{FAKE_PID}/stat"));
    fake.write(
        &format!("{FAKE_PID}/stat"),
        stat.replace(" 4194304 98 0 1 0 ", " 4194304 99 0 1 0 ")
            .as_bytes(),
    );
    assert_eq!(tick(), (true, 37));
    assert_eq!(tick(), (false, 37));
    fake.set_status(FAKE_PID, "RssFile:", "1700 kB");
    assert_eq!(tick(), (true, 37));
}

#[test]
fn maps_sums_the_rollup_from_smaps_and_carries_it() {
    let fake = FakeProc::new();
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Maps)).unwrap();
    let first = c.sample().processes.remove(0);
    let r = first.rollup.unwrap();
    let maps = first.mappings.as_ref().unwrap();
    assert_eq!(r.rss, Some(maps.iter().map(|m| m.rss).sum()));
    assert_eq!(r.rss, Some(1808));
    assert_eq!(r.anonymous, Some(112));
    assert_eq!(
        (r.pss_anon, r.pss_file, r.pss_shmem),
        (None, None, None),
        "smaps has no per-region Pss split"
    );
    // smaps_rollup now says otherwise, but it is not read at `maps`: the
    // carried sample's rollup is that of its carried regions.
    let rollup = fake
        .read(&format!("{FAKE_PID}/smaps_rollup"))
        .replace("Swap:                  0 kB", "Swap:                  8 kB");
    fake.write(&format!("{FAKE_PID}/smaps_rollup"), rollup.as_bytes());
    let second = c.sample().processes.remove(0);
    assert!(!second.mappings_fresh);
    assert_eq!(second.rollup, first.rollup);
    // At `rollup`, smaps_rollup is what is read.
    let r = read_process(fake.root(), FAKE_PID, Detail::Rollup)
        .unwrap()
        .rollup
        .unwrap();
    assert_eq!((r.swap, r.pss_anon), (Some(8), Some(112)));
}

#[test]
fn full_reads_smaps_every_sample() {
    let fake = FakeProc::new();
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Full)).unwrap();
    for _ in 0..3 {
        let t = c.sample();
        assert!(t.processes[0].mappings_fresh);
        assert_eq!(t.processes[0].detail, Detail::Full);
    }
}

#[test]
fn malformed_file_is_noticed_once_and_the_rest_is_kept() {
    let fake = FakeProc::new();
    fake.write(
        &format!("{FAKE_PID}/status"),
        b"Name:\tsleep\nVmRSS:\tlots kB\n",
    );
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Rollup)).unwrap();
    let tick = c.sample();
    let s = &tick.processes[0];
    assert_eq!(s.status.vm_rss, None);
    assert_eq!(s.info.uid, None);
    assert_eq!(s.rollup.unwrap().rss, Some(1808), "the rest is still read");
    assert_eq!(s.detail, Detail::Rollup);
    assert_eq!(tick.notices.len(), 1, "{:?}", tick.notices);
    let n = &tick.notices[0];
    assert_eq!(n.kind, NoticeKind::Malformed);
    assert_eq!(n.process, Some(FAKE_ID));
    assert_eq!(
        n.path,
        fake.root()
            .join(format!("{FAKE_PID}/status"))
            .display()
            .to_string()
    );
    assert!(
        n.message.starts_with(&format!("cannot parse {}", n.path)),
        "{}",
        n.message
    );
    assert!(c.sample().notices.is_empty(), "told once");
}

#[test]
fn missing_file_lowers_detail_and_is_noticed_once() {
    let fake = FakeProc::new();
    std::fs::remove_file(fake.root().join(format!("{FAKE_PID}/smaps_rollup"))).unwrap();
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Rollup)).unwrap();
    let tick = c.sample();
    let s = &tick.processes[0];
    assert_eq!(s.rollup, None);
    assert_eq!(s.detail, Detail::Summary);
    assert_eq!(tick.notices.len(), 1);
    assert_eq!(tick.notices[0].kind, NoticeKind::Other);
    assert!(
        tick.notices[0].message.contains("Linux 4.14"),
        "{}",
        tick.notices[0].message
    );
    assert!(c.sample().notices.is_empty());

    // `maps` sums its rollup from smaps and does not need smaps_rollup.
    let tick = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Maps))
        .unwrap()
        .sample();
    assert_eq!(tick.processes[0].detail, Detail::Maps);
    assert_eq!(tick.processes[0].rollup.unwrap().rss, Some(1808));
    assert!(tick.notices.is_empty(), "{:?}", tick.notices);

    // Without smaps either, `maps` falls back to the levels below it.
    std::fs::remove_file(fake.root().join(format!("{FAKE_PID}/smaps"))).unwrap();
    let tick = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Maps))
        .unwrap()
        .sample();
    let s = &tick.processes[0];
    assert_eq!(
        (s.detail, s.rollup, s.mappings.as_ref()),
        (Detail::Summary, None, None)
    );
    let mut files: Vec<&str> = tick
        .notices
        .iter()
        .map(|n| n.path.rsplit('/').next().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["smaps", "smaps_rollup"]);
}

#[test]
fn redacted_cmdline_keeps_argv0() {
    let fake = FakeProc::new();
    let mut config = config(&fake, Target::Pid(FAKE_PID), Detail::Summary);
    config.redact_cmdline = true;
    let tick = Collector::new(config).unwrap().sample();
    assert_eq!(tick.processes[0].info.cmdline, ["sleep"]);
}

#[test]
fn name_target_matches_comm_or_cmdline() {
    let fake = FakeProc::new();
    fake.add_process(6000);
    fake.write("6000/cmdline", b"python3\0-m\0worker\0--queue=mail\0");
    fake.write(
        "6000/stat",
        fake.read("6000/stat")
            .replace("(sleep)", "(python3)")
            .as_bytes(),
    );
    let pids = |pattern: &str| {
        let target = Target::Name(regex::Regex::new(pattern).unwrap());
        let tick = Collector::new(config(&fake, target, Detail::Summary))
            .unwrap()
            .sample();
        tick.processes.iter().map(|s| s.id.pid).collect::<Vec<_>>()
    };
    assert_eq!(pids("^sleep$"), [FAKE_PID]);
    assert_eq!(pids("worker --queue=mail"), [6000]);
    assert_eq!(pids("^python3 -m"), [6000]);
    assert_eq!(pids("sleep|python"), [FAKE_PID, 6000]);
    assert_eq!(pids("nothing"), Vec::<u32>::new());
}

#[test]
fn tree_target_follows_children_that_come_and_go() {
    let fake = FakeProc::new();
    let child = |pid: u32, ppid: u32| {
        fake.add_process(pid);
        let stat = fake.read(&format!("{pid}/stat"));
        fake.write(
            &format!("{pid}/stat"),
            stat.replacen(
                &format!("{FAKE_PID} (sleep) S 5315"),
                &format!("{pid} (sleep) S {ppid}"),
                1,
            )
            .as_bytes(),
        );
    };
    child(7000, 1); // not in the tree
    let mut c = Collector::new(config(&fake, Target::Tree(FAKE_PID), Detail::Summary)).unwrap();
    let pids =
        |t: &memtrail_collect::Tick| t.processes.iter().map(|s| s.id.pid).collect::<Vec<_>>();
    assert_eq!(pids(&c.sample()), [FAKE_PID]);
    child(7001, FAKE_PID);
    child(7002, 7001);
    assert_eq!(pids(&c.sample()), [FAKE_PID, 7001, 7002]);
    // The root exits; its descendants are still followed.
    std::fs::remove_dir_all(fake.root().join(FAKE_PID.to_string())).unwrap();
    let tick = c.sample();
    assert_eq!(pids(&tick), [7001, 7002]);
    assert_eq!(
        tick.exited.iter().map(|e| e.id.pid).collect::<Vec<_>>(),
        [FAKE_PID]
    );
    assert!(c.targets_alive());
    std::fs::remove_dir_all(fake.root().join("7001")).unwrap();
    std::fs::remove_dir_all(fake.root().join("7002")).unwrap();
    let tick = c.sample();
    assert_eq!(tick.exited.len(), 2);
    assert!(!c.targets_alive());
}

#[test]
fn system_sample_reads_meminfo_and_the_cgroups_of_sampled_processes() {
    let fake = FakeProc::new();
    let cgroups = tempfile::tempdir().unwrap();
    fake.write(
        "self/mountinfo",
        format!(
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
            cgroups.path().display()
        )
        .as_bytes(),
    );
    fake.write(
        &format!("{FAKE_PID}/cgroup"),
        b"0::/app.slice/web.service\n",
    );
    fake.add_process(6000);
    fake.write("6000/cgroup", b"0::/app.slice/db.service\n");
    let service = cgroups.path().join("app.slice/web.service");
    std::fs::create_dir_all(&service).unwrap();
    std::fs::write(service.join("memory.current"), "1048576\n").unwrap();
    std::fs::write(service.join("memory.max"), "4194304\n").unwrap();
    let db = cgroups.path().join("app.slice/db.service");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("memory.current"), "2048\n").unwrap();
    std::fs::write(db.join("memory.max"), "max\n").unwrap();

    let tick = Collector::new(config(&fake, Target::All, Detail::Summary))
        .unwrap()
        .sample();
    assert!(tick.system.meminfo.mem_total.unwrap() > 0);
    let got: Vec<(&str, Option<u64>, Option<u64>)> = tick
        .system
        .cgroups
        .iter()
        .map(|c| (c.path.as_str(), c.current_bytes, c.max_bytes))
        .collect();
    assert_eq!(
        got,
        [
            ("/app.slice/db.service", Some(2048), None),
            ("/app.slice/web.service", Some(1048576), Some(4194304)),
        ]
    );
    assert!(tick.notices.is_empty(), "{:?}", tick.notices);

    std::fs::remove_file(fake.root().join("meminfo")).unwrap();
    let mut c = Collector::new(config(&fake, Target::All, Detail::Summary)).unwrap();
    let tick = c.sample();
    assert_eq!(tick.system.meminfo.mem_total, None);
    assert_eq!(tick.notices.len(), 1);
    assert_eq!(tick.notices[0].process, None);
    assert!(c.sample().notices.is_empty());
}

/// A process caught exiting (`PF_EXITING`, state still `R`) whose memory
/// files are already gone: no notice, and no memory figures, which would
/// only show its teardown.
#[test]
fn an_exiting_process_has_no_memory_figures_and_no_notices() {
    let fake = FakeProc::new();
    let stat = fake.read(&format!("{FAKE_PID}/stat"));
    // Field 9 (flags) 4194304 plus PF_EXITING (4); state R.
    let exiting = stat
        .replacen(" S ", " R ", 1)
        .replacen(" 4194304 ", " 4194308 ", 1);
    assert_ne!(exiting, stat);
    fake.write(&format!("{FAKE_PID}/stat"), exiting.as_bytes());
    for file in ["smaps_rollup", "smaps"] {
        std::fs::remove_file(fake.root().join(format!("{FAKE_PID}/{file}"))).unwrap();
    }
    let mut c = Collector::new(config(&fake, Target::Pid(FAKE_PID), Detail::Full)).unwrap();
    let tick = c.sample();
    assert_eq!(tick.notices, vec![], "exiting is not a problem");
    let s = &tick.processes[0];
    assert_eq!(s.status.vm_rss, None);
    assert_eq!(s.status.vm_hwm, None);
    assert_eq!(s.status.threads, Some(1));
    assert_eq!((s.rollup, &s.mappings), (None, &None));
}
