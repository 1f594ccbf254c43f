//! `Reader::select`: readers that each read a share of the processes
//! together read everything once, and skip the rest undecoded.

use memtrail_format::*;

use crate::util::*;

/// Three processes sampled over 40 ticks (deltas and keyframes), one
/// exiting half way, with system samples and a marker, in v1 and v2.
fn recordings() -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for t in 0..40u64 {
        records.push(Record::System(Box::new(SystemSample {
            time_us: t * 1000,
            ..SystemSample::default()
        })));
        for pid in [10, 11, 12] {
            if pid == 12 && t >= 20 {
                continue;
            }
            let mut s = summary(pid, t * 1000 + u64::from(pid));
            s.status.vm_rss = Some(1000 + t * u64::from(pid));
            records.push(process(s));
        }
        if t == 20 {
            records.push(Record::Exit(ProcessExit {
                time_us: t * 1000 + 50,
                id: summary(12, 0).id,
                exit_code: Some(0),
            }));
            records.push(Record::Marker(Marker {
                time_us: t * 1000 + 60,
                label: "half".into(),
                pid: None,
                source: "cli".into(),
            }));
        }
    }
    let v1 = write(&header(Detail::Summary), &records, 8);
    let mut v2 = Writer::compressed(Vec::new(), &header(Detail::Summary)).unwrap();
    for r in &records {
        v2.write(r).unwrap();
    }
    v2.flush().unwrap();
    vec![v1, v2.get_ref().clone()]
}

#[test]
fn selecting_readers_read_every_record_once_and_skip_the_rest() {
    for bytes in recordings() {
        let (_, all, warnings) = read(&bytes);
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut shares: Vec<Vec<Record>> = Vec::new();
        let mut skipped: Vec<Vec<ProcessId>> = Vec::new();
        for lane in 0..2u32 {
            let mut reader = Reader::new(bytes.as_slice()).unwrap();
            reader.select(move |id| id.pid % 2 == lane, true);
            let mut mine = Vec::new();
            let mut others = Vec::new();
            while let Some(frame) = reader.next() {
                others.extend(reader.take_skipped());
                mine.push(frame.unwrap().record);
            }
            others.extend(reader.take_skipped());
            assert!(reader.take_warnings().is_empty());
            shares.push(mine);
            skipped.push(others);
        }
        let about = |r: &Record| match r {
            Record::Process(s) => Some(s.id.pid),
            Record::Exit(e) => Some(e.id.pid),
            _ => None,
        };
        for (lane, share) in shares.iter().enumerate() {
            // Its own processes' records, exactly as an unselecting reader
            // reads them, and every record about no process.
            let expected: Vec<&Record> = all
                .iter()
                .map(|f| &f.record)
                .filter(|r| about(r).map_or(true, |pid| pid % 2 == lane as u32))
                .collect();
            assert_eq!(share.iter().collect::<Vec<_>>(), expected, "lane {lane}");
            // The others' samples, noted by process in order.
            let others: Vec<ProcessId> = all
                .iter()
                .filter_map(|f| match &f.record {
                    Record::Process(s) if s.id.pid % 2 != lane as u32 => Some(s.id),
                    _ => None,
                })
                .collect();
            assert_eq!(skipped[lane], others, "lane {lane}");
        }
        // Without noting, nothing is noted.
        let mut reader = Reader::new(bytes.as_slice()).unwrap();
        reader.select(|id| id.pid == 11, false);
        let mut pids = std::collections::BTreeSet::new();
        while let Some(frame) = reader.next() {
            assert_eq!(reader.take_skipped().count(), 0);
            pids.extend(about(&frame.unwrap().record));
        }
        assert_eq!(pids, [11].into());
        assert_eq!(
            Reader::new(bytes.as_slice())
                .unwrap()
                .take_skipped()
                .count(),
            0
        );
    }
}
