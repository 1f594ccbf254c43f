//! `memtrail dump FILE|-`: every frame as one JSON object per line.

use std::io::{BufWriter, Write};

use anyhow::Context;

use crate::cli::DumpArgs;

pub fn run(args: DumpArgs) -> anyhow::Result<u8> {
    let mut input = crate::input::open(&args.input, &args.more, None)?;
    let mut out = BufWriter::new(std::io::stdout().lock());

    let mut header = serde_json::to_value(input.reader.header())?;
    if let Some(obj) = header.as_object_mut() {
        obj.insert("type".into(), "header".into());
        obj.insert("format_version".into(), input.reader.version().into());
    }
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    out.flush()?;

    // The tick (sampling round) of each record: the numbers `diff`'s
    // `#N` moments and `record`'s tick count use.
    let mut ticks = memtrail_format::Ticks::new();
    // A live stream: flush each line so `jq` downstream sees it at once.
    while let Some(frame) = input.reader.next() {
        let frame = frame.with_context(|| format!("cannot read recording {}", input.name))?;
        let tick = ticks.place(&frame.record);
        let mut v = serde_json::to_value(&frame.record)?;
        if let Some(obj) = v.as_object_mut() {
            if let Some(tick) = tick {
                obj.insert("tick".into(), tick.into());
            }
            obj.insert("offset".into(), frame.offset.into());
            obj.insert("encoding".into(), serde_json::to_value(frame.encoding)?);
            if let Some(file) = input.reader.current_file() {
                obj.insert("file".into(), file.into());
            }
        }
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
        if input.live {
            out.flush()?;
        }
        input.warn();
    }
    out.flush()?;
    input.warn();
    Ok(0)
}
