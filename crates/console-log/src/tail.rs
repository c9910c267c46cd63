//! The end of a console's log, read at start to seed the hub's in-memory history: after a
//! restart `GetConsoleOutput` and a replay serve what the console printed before it.

use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::read::list_files;

/// The last `max` bytes of the log in `dir` (across rotated files), with the time the newest
/// file was last written (ms since the Unix epoch); `None` when there is no log or it is empty.
pub fn tail(dir: &Path, max: usize) -> io::Result<Option<(Vec<u8>, u64)>> {
    let files = list_files(dir)?;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut need = max as u64;
    let mut updated_ms = None;
    for file in files.iter().rev() {
        if need == 0 {
            break;
        }
        let mut f = match std::fs::File::open(&file.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let len = meta.len();
        if len == 0 {
            continue;
        }
        if updated_ms.is_none() {
            updated_ms = Some(
                meta.modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        let take = len.min(need);
        f.seek(SeekFrom::Start(len - take))?;
        let mut buf = Vec::new();
        f.take(take).read_to_end(&mut buf)?;
        need -= buf.len() as u64;
        chunks.push(buf);
    }
    let Some(updated_ms) = updated_ms else {
        return Ok(None);
    };
    let bytes = chunks.into_iter().rev().flatten().collect();
    Ok(Some((bytes, updated_ms)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{LogConfig, LogFiles};

    #[test]
    fn reads_across_rotated_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(tail(tmp.path(), 10).unwrap(), None);
        let mut log = LogFiles::open(
            tmp.path(),
            LogConfig {
                max_bytes: 4,
                keep_files: 3,
            },
        )
        .unwrap();
        log.write(b"one\ntwo\nthree\nfour", 0).unwrap();
        let (bytes, updated_ms) = tail(tmp.path(), 9).unwrap().unwrap();
        assert_eq!(bytes, b"hree\nfour");
        assert!(updated_ms > 0);
        // More than is kept: everything kept ("one\n" was rotated away).
        let (bytes, _) = tail(tmp.path(), 1000).unwrap().unwrap();
        assert_eq!(bytes, b"two\nthree\nfour");
    }

    #[test]
    fn an_empty_current_file_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = LogFiles::open(
            tmp.path(),
            LogConfig {
                max_bytes: 4,
                keep_files: 3,
            },
        )
        .unwrap();
        log.write(b"abcd\n", 0).unwrap();
        let (bytes, _) = tail(tmp.path(), 100).unwrap().unwrap();
        assert_eq!(bytes, b"abcd\n");
    }
}
