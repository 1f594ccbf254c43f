//! `memtrail dump FILE|-`: every frame as one JSON object per line.

use std::io::{BufWriter, Read, Write};

use anyhow::Context;
use memtrail_format::Reader;

use crate::cli::DumpArgs;

pub fn run(args: DumpArgs) -> anyhow::Result<u8> {
    let (name, input): (String, Box<dyn Read>) = if args.input.as_os_str() == "-" {
        ("standard input".into(), Box::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open recording {}", args.input.display()))?;
        (args.input.display().to_string(), Box::new(file))
    };
    let input = std::io::BufReader::with_capacity(64 * 1024, input);
    let mut reader = Reader::new(input).with_context(|| format!("cannot read recording {name}"))?;
    let mut out = BufWriter::new(std::io::stdout().lock());

    let mut header = serde_json::to_value(reader.header())?;
    if let Some(obj) = header.as_object_mut() {
        obj.insert("type".into(), "header".into());
        obj.insert(
            "format_version".into(),
            memtrail_format::FORMAT_VERSION.into(),
        );
    }
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    out.flush()?;

    // A live stream: flush each line so `jq` downstream sees it at once.
    let live = args.input.as_os_str() == "-";
    let warn = |reader: &mut Reader<_>| {
        for w in reader.take_warnings() {
            eprintln!("memtrail: warning: {name}: {}", w.message);
        }
    };
    while let Some(frame) = reader.next() {
        let frame = frame.with_context(|| format!("cannot read recording {name}"))?;
        let mut v = serde_json::to_value(&frame.record)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("offset".into(), frame.offset.into());
            obj.insert("encoding".into(), serde_json::to_value(frame.encoding)?);
        }
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
        if live {
            out.flush()?;
        }
        warn(&mut reader);
    }
    out.flush()?;
    warn(&mut reader);
    Ok(0)
}
