//! The log files of one console, written synchronously: appending, the time index, and
//! rotation on a line boundary. [`crate::start`] runs this on the blocking pool.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::LogConfig;
use crate::files::{index_name, log_name};

/// The open current file of a console's log, and where it stands.
#[derive(Debug)]
pub struct LogFiles {
    dir: PathBuf,
    cfg: LogConfig,
    file: File,
    index: File,
    /// Bytes in the current file.
    size: u64,
    /// The second of the last index entry in the current file; `None` before its first write
    /// in this process, so each file (and each restart) starts with an entry.
    last_second: Option<u64>,
}

impl LogFiles {
    /// Opens (or creates) the log in `dir`, appending to the current file: what was logged
    /// before a restart stays and is continued.
    pub fn open(dir: &Path, cfg: LogConfig) -> io::Result<Self> {
        private_files::ensure_private_dir(dir)?;
        let file = private_files::open_append(&dir.join(log_name(0)))?;
        let index = private_files::open_append(&dir.join(index_name(0)))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_owned(),
            cfg: LogConfig {
                max_bytes: cfg.max_bytes.max(1),
                keep_files: cfg.keep_files.max(1),
            },
            file,
            index,
            size,
            last_second: None,
        })
    }

    /// Appends `data`, written at `now_ms`, rotating where a file is full.
    pub fn write(&mut self, mut data: &[u8], now_ms: u64) -> io::Result<()> {
        while !data.is_empty() {
            if self.size >= self.cfg.hard_cap() {
                // Only a file left by a larger configuration: start a new one.
                self.rotate()?;
            }
            let (len, rotate) = self.cut(data);
            let (head, rest) = data.split_at(len);
            self.append(head, now_ms)?;
            if rotate {
                self.rotate()?;
            }
            data = rest;
        }
        Ok(())
    }

    /// How much of `data` goes into the current file, and whether the file is full after it:
    /// up to the first newline that lands at or past `max_bytes`, or up to the hard cap.
    fn cut(&self, data: &[u8]) -> (usize, bool) {
        let room =
            usize::try_from(self.cfg.hard_cap().saturating_sub(self.size)).unwrap_or(usize::MAX);
        // Byte `k` of `data` is the file's byte `size + k`; the file has reached `max_bytes`
        // once that byte is written if `size + k + 1 >= max_bytes`.
        let from =
            usize::try_from(self.cfg.max_bytes.saturating_sub(self.size + 1)).unwrap_or(usize::MAX);
        if let Some(tail) = data.get(from..)
            && let Some(nl) = tail.iter().position(|&b| b == b'\n')
        {
            let end = from + nl + 1;
            if end <= room {
                return (end, true);
            }
        }
        if data.len() >= room {
            (room, true)
        } else {
            (data.len(), false)
        }
    }

    fn append(&mut self, data: &[u8], now_ms: u64) -> io::Result<()> {
        let second = now_ms / 1000;
        if self.last_second != Some(second) {
            crate::index::append(&mut self.index, self.size, now_ms)?;
            self.last_second = Some(second);
        }
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// Shifts every file one number up (dropping the oldest beyond `keep_files`) and starts a
    /// new current file. Renames, never a truncation in place: a reader following the log
    /// keeps its handle on the old file and finishes reading it.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.cfg.keep_files;
        let path = |name: String| self.dir.join(name);
        for n in (1..keep).rev() {
            rename_if_present(&path(log_name(n - 1)), &path(log_name(n)))?;
            rename_if_present(&path(index_name(n - 1)), &path(index_name(n)))?;
        }
        if keep == 1 {
            remove_if_present(&path(log_name(0)))?;
            remove_if_present(&path(index_name(0)))?;
        }
        // Files left beyond `keep_files` by a larger configuration go too.
        for n in keep..keep.saturating_add(64) {
            let gone = !path(log_name(n)).exists();
            remove_if_present(&path(log_name(n)))?;
            remove_if_present(&path(index_name(n)))?;
            if gone {
                break;
            }
        }
        self.file = private_files::create_file(&path(log_name(0)))?;
        self.index = private_files::create_file(&path(index_name(0)))?;
        self.size = 0;
        self.last_second = None;
        Ok(())
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cfg(max_bytes: u64, keep_files: u32) -> LogConfig {
        LogConfig {
            max_bytes,
            keep_files,
        }
    }

    fn read(dir: &Path, n: u32) -> Vec<u8> {
        std::fs::read(dir.join(log_name(n))).unwrap_or_default()
    }

    #[test]
    fn rotates_at_the_first_newline_past_max_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(10, 4)).unwrap();
        log.write(b"12345\n", 1000).unwrap();
        log.write(b"abcdefgh", 1000).unwrap();
        // 14 bytes, past max_bytes but no newline since: still the same file.
        assert_eq!(read(tmp.path(), 0), b"12345\nabcdefgh");
        log.write(b"ij\n", 1000).unwrap();
        assert_eq!(read(tmp.path(), 1), b"12345\nabcdefghij\n");
        assert_eq!(read(tmp.path(), 0), b"");
        // "next line\n" is 10 bytes: it fills the new file, which ends at its newline.
        log.write(b"next line\nx", 1000).unwrap();
        assert_eq!(read(tmp.path(), 1), b"next line\n");
        assert_eq!(read(tmp.path(), 2), b"12345\nabcdefghij\n");
        assert_eq!(read(tmp.path(), 0), b"x");
    }

    #[test]
    fn a_newline_right_at_max_bytes_ends_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(4, 4)).unwrap();
        log.write(b"abc\ndef", 0).unwrap();
        assert_eq!(read(tmp.path(), 1), b"abc\n");
        assert_eq!(read(tmp.path(), 0), b"def");
    }

    #[test]
    fn output_without_newlines_rotates_at_the_hard_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(8, 4)).unwrap();
        assert_eq!(cfg(8, 4).hard_cap(), 16);
        log.write(&[b'a'; 20], 0).unwrap();
        assert_eq!(read(tmp.path(), 1), [b'a'; 16]);
        assert_eq!(read(tmp.path(), 0), [b'a'; 4]);
        // One byte at a time reaches the same cut.
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(8, 4)).unwrap();
        for _ in 0..20 {
            log.write(b"b", 0).unwrap();
        }
        assert_eq!(read(tmp.path(), 1), [b'b'; 16]);
        assert_eq!(read(tmp.path(), 0), [b'b'; 4]);
    }

    #[test]
    fn keeps_keep_files_in_all() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(2, 3)).unwrap();
        for line in ["a\n", "b\n", "c\n", "d\n", "e"] {
            log.write(line.as_bytes(), 0).unwrap();
        }
        assert_eq!(read(tmp.path(), 0), b"e");
        assert_eq!(read(tmp.path(), 1), b"d\n");
        assert_eq!(read(tmp.path(), 2), b"c\n");
        assert!(!tmp.path().join(log_name(3)).exists());
        assert!(!tmp.path().join(index_name(3)).exists());
        // One file in all: rotation starts the log afresh.
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(2, 1)).unwrap();
        log.write(b"a\nb", 0).unwrap();
        assert_eq!(read(tmp.path(), 0), b"b");
        assert!(!tmp.path().join(log_name(1)).exists());
    }

    #[test]
    fn a_restart_appends_and_keeps_rotating() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(10, 4)).unwrap();
        log.write(b"before\n", 1_000).unwrap();
        drop(log);
        let mut log = LogFiles::open(tmp.path(), cfg(10, 4)).unwrap();
        log.write(b"after\nmore", 1_000).unwrap();
        assert_eq!(read(tmp.path(), 1), b"before\nafter\n");
        assert_eq!(read(tmp.path(), 0), b"more");
        // The restart wrote an index entry even within the same second.
        let index = std::fs::read_to_string(tmp.path().join(index_name(1))).unwrap();
        assert_eq!(index, "0 1000\n7 1000\n");
    }

    #[test]
    fn the_index_gets_an_entry_per_second() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(tmp.path(), cfg(1000, 4)).unwrap();
        log.write(b"aa", 5_100).unwrap();
        log.write(b"bb", 5_900).unwrap();
        log.write(b"cc", 6_000).unwrap();
        let index = std::fs::read_to_string(tmp.path().join(index_name(0))).unwrap();
        assert_eq!(index, "0 5100\n4 6000\n");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("console/i-0123456789abcdef0");
        let mut log = LogFiles::open(&dir, cfg(2, 2)).unwrap();
        log.write(b"a\nb", 0).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in [log_name(0), log_name(1), index_name(0), index_name(1)] {
            assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
        }
    }
}
