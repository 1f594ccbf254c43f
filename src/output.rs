//! Where binary recordings go: a file or standard output, never a terminal.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The context of an error while creating or writing a file the user
/// asked for (a recording, a report, an export): the hint on an
/// operating-system error then speaks of that file and its directory,
/// not of reading /proc.
#[derive(Debug)]
pub struct Writing(pub String);

impl std::fmt::Display for Writing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An opened destination for binary output, named for error messages.
pub struct BinaryOutput {
    pub name: String,
    pub path: Option<PathBuf>,
    pub sink: Box<dyn Write + Send>,
}

impl std::fmt::Debug for BinaryOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryOutput")
            .field("name", &self.name)
            .finish()
    }
}

/// Opens `path` for a binary recording; `-` is standard output, refused
/// when it is a terminal (binary would garble it and help no one).
pub fn open_binary(path: &Path) -> anyhow::Result<BinaryOutput> {
    if path.as_os_str() == "-" {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            bail!(
                "refusing to write a binary recording to a terminal: \
                 name a file with -o FILE, or pipe it (e.g. `memtrail record ... | memtrail dump -`)"
            );
        }
        return Ok(BinaryOutput {
            name: "standard output".into(),
            path: None,
            sink: Box::new(BufWriter::with_capacity(64 * 1024, stdout)),
        });
    }
    let file = File::create(path)
        .with_context(|| Writing(format!("cannot create recording file {}", path.display())))?;
    Ok(BinaryOutput {
        name: path.display().to_string(),
        path: Some(path.to_path_buf()),
        sink: Box::new(BufWriter::with_capacity(64 * 1024, file)),
    })
}
