//! The time index beside each log file: lines of `OFFSET UNIX_MS`, one whenever a write starts
//! in a new second, so a reader can find where output from a given time starts.

use std::io::{self, Write as _};

/// Parses an index's text; lines that do not parse (a line cut short by a crash) are skipped.
pub(crate) fn parse(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let (offset, ms) = line.split_once(' ')?;
            Some((offset.parse().ok()?, ms.parse().ok()?))
        })
        .collect()
}

/// Appends one entry.
pub(crate) fn append(index: &mut std::fs::File, offset: u64, ms: u64) -> io::Result<()> {
    index.write_all(format!("{offset} {ms}\n").as_bytes())
}
