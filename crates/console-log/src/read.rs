//! Reading a console's log from its files, for `serialgate console-log`: the files oldest
//! first, where output from a given time starts, and following the current file across
//! rotations.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use crate::files::{index_name, log_name, log_number};

/// One file of a console's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// 0 for the current file, higher for older ones.
    pub number: u32,
    pub path: PathBuf,
    /// Its time index.
    pub index: PathBuf,
}

/// The log files in `dir`, oldest first (the current file last); empty if there is no log.
pub fn list_files(dir: &Path) -> io::Result<Vec<LogFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(log_number) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    Ok(numbers
        .into_iter()
        .map(|number| LogFile {
            number,
            path: dir.join(log_name(number)),
            index: dir.join(index_name(number)),
        })
        .collect())
}

/// Where output written at or after `since_ms` starts in `file`, to the second: `Some(0)` if
/// the file has no index (it is read whole), `None` if all of it is older.
pub fn start_offset(file: &LogFile, since_ms: u64) -> io::Result<Option<u64>> {
    let text = match std::fs::read_to_string(&file.index) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(0)),
        Err(e) => return Err(e),
    };
    let second = since_ms - since_ms % 1000;
    Ok(crate::index::parse(&text)
        .into_iter()
        .find(|&(_, ms)| ms >= second)
        .map(|(offset, _)| offset))
}

/// Reads the current log file as it grows, and goes on with the new one when it is rotated.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
}

impl Follower {
    /// Follows `dir`'s current file from `offset` (its end, or where a reader stopped).
    pub fn new(dir: &Path, offset: u64) -> io::Result<Self> {
        let path = dir.join(log_name(0));
        let file = match File::open(&path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(offset))?;
                Some(f)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            dir: dir.to_owned(),
            path,
            file,
        })
    }

    /// What was written since the last call, appended to `out`. Output written to a file
    /// before it was rotated is read to its end before the new file starts. Returns whether
    /// anything was read.
    pub fn poll(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let before = out.len();
        if let Some(f) = &mut self.file {
            f.read_to_end(out)?;
        }
        if self.rotated()? {
            // Whatever reached the old file after the read above, then the files rotated
            // since (several, if output was fast between two polls), then the new file.
            if let Some(f) = &mut self.file {
                f.read_to_end(out)?;
            }
            for between in self.rotated_since()? {
                match File::open(&between) {
                    Ok(mut f) => {
                        f.read_to_end(out)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            self.file = match File::open(&self.path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if let Some(f) = &mut self.file {
                f.read_to_end(out)?;
            }
        }
        Ok(out.len() > before)
    }

    /// The files rotated after the held one, oldest first: those newer than the held file
    /// (found by identity; none if it is gone), without the current one.
    fn rotated_since(&self) -> io::Result<Vec<PathBuf>> {
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        let held = file.metadata()?;
        let files = list_files(&self.dir)?;
        let mut newer = Vec::new();
        let mut found = false;
        for f in files {
            if f.number == 0 {
                break;
            }
            if found {
                newer.push(f.path);
            } else if std::fs::metadata(&f.path).is_ok_and(|m| same_file(&held, &m)) {
                found = true;
            }
        }
        Ok(newer)
    }

    /// Whether the path now names another file than the one held.
    fn rotated(&self) -> io::Result<bool> {
        let current = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(file) = &self.file else {
            return Ok(true);
        };
        let held = file.metadata()?;
        Ok(!same_file(&held, &current))
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() <= b.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{LogConfig, LogFiles};

    fn small() -> LogConfig {
        LogConfig {
            max_bytes: 4,
            keep_files: 4,
        }
    }

    #[test]
    fn lists_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(list_files(&tmp.path().join("none")).unwrap().is_empty());
        let mut log = LogFiles::open(tmp.path(), small()).unwrap();
        log.write(b"aaaa\nbbbb\ncc", 0).unwrap();
        let numbers: Vec<u32> = list_files(tmp.path())
            .unwrap()
            .iter()
            .map(|f| f.number)
            .collect();
        assert_eq!(numbers, [2, 1, 0]);
    }

    #[test]
    fn since_finds_the_first_write_of_that_second() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), LogConfig::default()).unwrap();
        log.write(b"old\n", 10_500).unwrap();
        log.write(b"new\n", 12_200).unwrap();
        log.write(b"newer\n", 12_900).unwrap();
        let file = &list_files(tmp.path()).unwrap()[0];
        assert_eq!(start_offset(file, 0).unwrap(), Some(0));
        assert_eq!(start_offset(file, 10_999).unwrap(), Some(0));
        assert_eq!(start_offset(file, 11_000).unwrap(), Some(4));
        assert_eq!(start_offset(file, 12_700).unwrap(), Some(4));
        assert_eq!(start_offset(file, 13_000).unwrap(), None);
    }

    #[test]
    fn follows_across_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), small()).unwrap();
        log.write(b"ab", 0).unwrap();
        let mut follower = Follower::new(tmp.path(), 2).unwrap();
        let mut out = Vec::new();
        assert!(!follower.poll(&mut out).unwrap());
        // The rest of the first file, two whole files, and the start of the current one,
        // between two polls.
        log.write(b"cd\nefgh\nijkl\nmn", 0).unwrap();
        assert!(follower.poll(&mut out).unwrap());
        assert_eq!(out, b"cd\nefgh\nijkl\nmn");
        log.write(b"o\np", 0).unwrap();
        follower.poll(&mut out).unwrap();
        assert_eq!(out, b"cd\nefgh\nijkl\nmno\np");
    }
}
