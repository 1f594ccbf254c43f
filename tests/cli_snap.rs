//! `memtrail snap`: one snapshot as a table, JSON or binary.

use crate::util::*;

/// Reads one `Key:   N kB` line of an smaps-like file.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn snap_json_totals_agree_with_smaps_rollup() {
    let helper = hold(16);
    let pid = helper.pid();
    let o = run(&["snap", "--pid", &pid.to_string(), "--format", "json"]);
    // The helper is blocked on stdin, so its memory does not change between
    // the two reads.
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let p = &doc["processes"][0];
    assert_eq!(p["id"]["pid"], pid);
    // RSS and swap count the process's own pages: exact, and unchanged
    // while it sleeps. (PSS is not compared with a later read: it moves
    // whenever another process starts or stops sharing a library.)
    for (json, kernel) in [("rss", "Rss"), ("swap", "Swap")] {
        assert_eq!(p["rollup"][json].as_u64(), Some(kb(&rollup, kernel)));
        assert_eq!(
            p["totals"][json].as_u64(),
            Some(kb(&rollup, kernel)),
            "sum of regions' {kernel} vs smaps_rollup"
        );
    }
    let pss = p["totals"]["pss"].as_u64().unwrap();
    assert!(pss > 0 && pss <= p["totals"]["rss"].as_u64().unwrap());
    assert!(p["status"]["vm_rss"].as_u64().unwrap() >= 16 * 1024);
    helper.finish();
}

#[test]
fn snap_table_finds_the_big_anonymous_region() {
    let helper = hold(64);
    let o = run(&[
        "snap",
        "--pid",
        &helper.pid().to_string(),
        "--min-rss",
        "1MiB",
        "--anon",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let text = stdout(&o);
    let rows: Vec<&str> = text
        .lines()
        .skip(2)
        .take_while(|l| !l.trim_start().starts_with("---"))
        .collect();
    assert!(!rows.is_empty(), "{text}");
    // Largest resident first; the 64 MiB block is anonymous.
    let rss: Vec<u64> = rows
        .iter()
        .map(|r| r.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(rss[0] >= 64 * 1024, "{text}");
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "sorted: {text}");
    assert!(rss.iter().all(|&r| r >= 1024), "--min-rss applied: {text}");
    assert!(
        rows.iter()
            .all(|r| !r.contains(".so") && !r.contains("python")),
        "--anon keeps anonymous regions only: {text}"
    );
    helper.finish();
}

#[test]
fn snap_binary_file_reads_back() {
    let helper = hold(1);
    let dir = tempdir();
    let out = dir.path().join("s.mtr");
    let o = run(&[
        "snap",
        "--pid",
        &helper.pid().to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let (header, records) = read_all(&out);
    assert_eq!(header.interval_us, None);
    let samples = samples_of(&records, helper.pid());
    assert_eq!(samples.len(), 1);
    assert!(samples[0].mappings.as_ref().is_some_and(|m| !m.is_empty()));
    helper.finish();
}

#[test]
fn snap_children_lists_the_tree() {
    let mut parent = Helper::python("tree.py", &[]);
    parent.send("spawn");
    let child: u32 = parent.line().parse().unwrap();
    let o = run(&[
        "snap",
        "--pid",
        &parent.pid().to_string(),
        "--children",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let pids: Vec<u64> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"]["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&(parent.pid() as u64)), "{pids:?}");
    assert!(pids.contains(&(child as u64)), "{pids:?}");
    parent.send("end");
    assert_eq!(parent.line(), "ended");
    parent.finish();
}
