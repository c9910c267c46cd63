//! The recordings directory: starting a recording, finding and listing recordings, and keeping
//! the directory within its age and size limits.
//!
//! A recording is `DIR/<id>.cast`, its id `<UTC start>-<instance>-port<N>[-spectator]-<random>`
//! (`20261202T033054Z-i-0123456789abcdef0-port0-3f9a1c2e`), so file names sort by start time and
//! say what they hold. Ids are built only from a validated instance id, a port number and hex.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::macros::format_description;

use crate::cast::{self, Env, Header, SessionInfo};
use crate::recorder::{self, Recorder, Writer};

/// What is recorded and how much is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsConfig {
    /// Record what users type (`i` events). Off by default: console passwords are typed.
    pub input: bool,
    /// Recordings older than this are deleted.
    pub max_age: Duration,
    /// The oldest recordings are deleted while all of them together hold more than this.
    pub max_total_bytes: u64,
    /// A recording stops growing at this size (with a marker saying so).
    pub max_recording_bytes: u64,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        Self {
            input: false,
            max_age: Duration::from_secs(30 * 86_400),
            max_total_bytes: 1 << 30,
            max_recording_bytes: 64 << 20,
        }
    }
}

/// Who and what a new recording is of.
#[derive(Debug, Clone)]
pub struct NewRecording {
    /// A validated instance id.
    pub instance: String,
    pub port: u32,
    /// The session's id in the audit trail.
    pub session: String,
    pub principal: String,
    pub spectator: bool,
    /// The client's terminal: columns and rows (0 for unknown), and `TERM`.
    pub size: (u32, u32),
    pub term: Option<String>,
}

/// The recordings directory of a running server.
#[derive(Debug)]
pub struct Recordings {
    dir: PathBuf,
    cfg: RecordingsConfig,
    /// Ids of recordings being written, which retention leaves alone.
    open: Arc<Mutex<HashSet<String>>>,
}

/// Marks a recording as being written while it lives.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    id: String,
    open: Arc<Mutex<HashSet<String>>>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Recordings {
    pub fn new(dir: PathBuf, cfg: RecordingsConfig) -> Self {
        Self {
            dir,
            cfg,
            open: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &RecordingsConfig {
        &self.cfg
    }

    /// Creates the recording's file with its header and starts its writer. The file work runs
    /// on the blocking pool.
    pub async fn start(&self, new: NewRecording) -> std::io::Result<Recorder> {
        let now = OffsetDateTime::now_utc();
        let started = tokio::time::Instant::now();
        let id = new_id(&new, now);
        let (cols, rows) = match new.size {
            (c, r) if c > 0 && r > 0 => (c.min(10_000), r.min(10_000)),
            _ => cast::DEFAULT_SIZE,
        };
        let started_ms = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let header = Header {
            version: 2,
            width: cols,
            height: rows,
            timestamp: started_ms / 1000,
            title: Some(format!(
                "{} port{}{}",
                new.instance,
                new.port,
                if new.spectator { " (spectator)" } else { "" }
            )),
            env: Some(Env {
                term: new.term.clone(),
            }),
            serialgate: Some(SessionInfo {
                id: id.clone(),
                instance: new.instance,
                port: new.port,
                session: new.session,
                principal: new.principal,
                spectator: new.spectator,
                input: self.cfg.input,
                started_ms,
            }),
        };
        let mut line = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone());
        let guard = OpenGuard {
            id: id.clone(),
            open: Arc::clone(&self.open),
        };
        let path = self.dir.join(format!("{id}.cast"));
        let dir = self.dir.clone();
        let (file, size) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            private_files::ensure_private_dir(&dir)?;
            let mut file = private_files::create_file(&path)?;
            file.write_all(&line)?;
            Ok((file, line.len() as u64))
        })
        .await
        .map_err(std::io::Error::other)??;
        let writer = Writer {
            file,
            size,
            max_bytes: self.cfg.max_recording_bytes,
            id,
            _open: guard,
        };
        Ok(recorder::start(writer, self.cfg.input, started))
    }

    /// Deletes recordings past the age limit, then the oldest while the total is over the size
    /// limit; never one being written. Blocking: run it on the blocking pool.
    pub fn sweep(&self) -> std::io::Result<Swept> {
        let files = scan(&self.dir)?;
        let open = self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let doomed = plan(files, SystemTime::now(), &self.cfg, &open);
        let mut swept = Swept::default();
        for f in doomed {
            match std::fs::remove_file(&f.path) {
                Ok(()) => {
                    swept.files += 1;
                    swept.bytes += f.size;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(swept)
    }
}

/// How often a running server applies retention.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

impl Recordings {
    /// Applies retention now and then every [`SWEEP_EVERY`], on the blocking pool, for as long
    /// as the runtime runs.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let recordings = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                let r = Arc::clone(&recordings);
                match tokio::task::spawn_blocking(move || r.sweep()).await {
                    Ok(Ok(swept)) if swept.files > 0 => {
                        tracing::info!(dir = %recordings.dir.display(), files = swept.files, bytes = swept.bytes, "recordings: deleted past their age or over the total size");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(dir = %recordings.dir.display(), error = %e, "recordings: cannot apply retention");
                    }
                    // The runtime is shutting down.
                    Err(_) => return,
                }
            }
        });
    }
}

/// What a sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub files: u64,
    pub bytes: u64,
}

/// A recording file as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub id: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

/// The recordings in `dir` (none if it does not exist).
fn scan(dir: &Path) -> std::io::Result<Vec<FileInfo>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".cast")) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        files.push(FileInfo {
            id: id.to_owned(),
            path: entry.path(),
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(files)
}

/// Which of `files` retention deletes at `now`: those last written more than `max_age` ago,
/// then the least recently written while the rest hold more than `max_total_bytes`. Files in
/// `open` are kept (and counted).
pub(crate) fn plan(
    mut files: Vec<FileInfo>,
    now: SystemTime,
    cfg: &RecordingsConfig,
    open: &HashSet<String>,
) -> Vec<FileInfo> {
    files.sort_by(|a, b| a.modified.cmp(&b.modified).then_with(|| a.id.cmp(&b.id)));
    let mut total: u64 = files.iter().map(|f| f.size).sum();
    let mut doomed = Vec::new();
    for f in files {
        if open.contains(&f.id) {
            continue;
        }
        let old = now
            .duration_since(f.modified)
            .is_ok_and(|age| age > cfg.max_age);
        if old || total > cfg.max_total_bytes {
            total -= f.size;
            doomed.push(f);
        }
    }
    doomed
}

fn new_id(new: &NewRecording, now: OffsetDateTime) -> String {
    let stamp = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let random = uuid::Uuid::new_v4().simple().to_string();
    let short = random.get(..8).unwrap_or(&random);
    let role = if new.spectator { "-spectator" } else { "" };
    format!("{stamp}-{}-port{}{role}-{short}", new.instance, new.port)
}

/// A recording as `serialgate recordings list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub id: String,
    pub path: PathBuf,
    pub header: Header,
    pub size: u64,
    /// Seconds from the start to the last event.
    pub duration: f64,
}

impl Listing {
    /// When the recording started, ms since the Unix epoch.
    pub fn started_ms(&self) -> u64 {
        self.header
            .serialgate
            .as_ref()
            .map_or(self.header.timestamp * 1000, |s| s.started_ms)
    }
}

/// The longest header line read: anything longer is not one of ours.
const MAX_HEADER: u64 = 64 * 1024;

/// The recordings in `dir`, oldest first. Reads each header and the end of each file only.
/// Files that are not asciicast v2 recordings are skipped.
pub fn list(dir: &Path) -> std::io::Result<Vec<Listing>> {
    let mut out = Vec::new();
    for f in scan(dir)? {
        if let Ok(Some(listing)) = read_listing(&f) {
            out.push(listing);
        }
    }
    out.sort_by(|a, b| {
        a.started_ms()
            .cmp(&b.started_ms())
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(out)
}

fn read_listing(f: &FileInfo) -> std::io::Result<Option<Listing>> {
    let mut file = std::fs::File::open(&f.path)?;
    let mut first = String::new();
    BufReader::new((&mut file).take(MAX_HEADER)).read_line(&mut first)?;
    let Some(header) = cast::parse_header(first.trim_end()) else {
        return Ok(None);
    };
    // The last complete line holds the last event's time.
    let tail_len = f.size.min(MAX_HEADER);
    file.seek(SeekFrom::Start(f.size - tail_len))?;
    let mut tail = Vec::new();
    file.take(tail_len).read_to_end(&mut tail)?;
    let duration = tail
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(|line| std::str::from_utf8(line).ok())
        .find_map(cast::parse_event)
        .map_or(0.0, |e| e.seconds);
    Ok(Some(Listing {
        id: f.id.clone(),
        path: f.path.clone(),
        header,
        size: f.size,
        duration,
    }))
}

/// Why a recording could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindError {
    NotFound,
    /// The prefix names several recordings (the first few).
    Ambiguous(Vec<String>),
    /// Not something a recording id could be.
    Invalid,
}

impl std::fmt::Display for FindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindError::NotFound => f.write_str("no such recording"),
            FindError::Ambiguous(ids) => {
                write!(f, "more than one recording starts so: {}", ids.join(", "))
            }
            FindError::Invalid => f.write_str(
                "a recording id has only letters, digits and '-' (see `serialgate recordings list`)",
            ),
        }
    }
}

impl std::error::Error for FindError {}

/// The file of the recording `id`, or of the one recording whose id starts with it.
pub fn find(dir: &Path, id: &str) -> Result<PathBuf, FindError> {
    let id = id.strip_suffix(".cast").unwrap_or(id);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(FindError::Invalid);
    }
    let exact = dir.join(format!("{id}.cast"));
    if exact.is_file() {
        return Ok(exact);
    }
    let mut matches: Vec<FileInfo> = scan(dir)
        .map_err(|_| FindError::NotFound)?
        .into_iter()
        .filter(|f| f.id.starts_with(id))
        .collect();
    match matches.len() {
        0 => Err(FindError::NotFound),
        1 => Ok(matches.remove(0).path),
        _ => {
            let mut ids: Vec<String> = matches.into_iter().map(|f| f.id).collect();
            ids.sort();
            ids.truncate(5);
            Err(FindError::Ambiguous(ids))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(id: &str, size: u64, age_s: u64, now: SystemTime) -> FileInfo {
        FileInfo {
            id: id.into(),
            path: PathBuf::from(format!("{id}.cast")),
            size,
            modified: now - Duration::from_secs(age_s),
        }
    }

    fn ids(v: &[FileInfo]) -> Vec<&str> {
        v.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn retention_deletes_old_then_oldest_over_the_total_but_never_open_ones() {
        let now = SystemTime::now();
        let cfg = RecordingsConfig {
            max_age: Duration::from_secs(100),
            max_total_bytes: 250,
            ..RecordingsConfig::default()
        };
        let files = vec![
            file("new", 100, 1, now),
            file("ancient", 10, 1000, now),
            file("older", 100, 50, now),
            file("old", 100, 20, now),
        ];
        // 310 bytes: the ancient one goes for its age (300 left), then the oldest ("older").
        assert_eq!(
            ids(&plan(files.clone(), now, &cfg, &HashSet::new())),
            ["ancient", "older"]
        );
        // One being written is neither deleted nor forgotten in the total.
        let open = HashSet::from(["older".to_owned()]);
        assert_eq!(
            ids(&plan(files.clone(), now, &cfg, &open)),
            ["ancient", "old"]
        );
        // Within both limits, nothing goes.
        let roomy = RecordingsConfig {
            max_age: Duration::from_secs(10_000),
            max_total_bytes: 10_000,
            ..cfg
        };
        assert!(plan(files, now, &roomy, &HashSet::new()).is_empty());
    }

    #[test]
    fn ids_sort_by_time_and_name_the_session() {
        let new = NewRecording {
            instance: "i-0123456789abcdef0".into(),
            port: 0,
            session: "n/1".into(),
            principal: "arn:aws:iam::1:user/a".into(),
            spectator: true,
            size: (0, 0),
            term: None,
        };
        let t = OffsetDateTime::from_unix_timestamp(1_764_646_254).unwrap();
        let id = new_id(&new, t);
        assert!(
            id.starts_with("20251202T033054Z-i-0123456789abcdef0-port0-spectator-"),
            "{id}"
        );
        assert_eq!(
            id.len(),
            "20251202T033054Z-i-0123456789abcdef0-port0-spectator-".len() + 8
        );
    }

    #[test]
    fn find_takes_an_id_or_a_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["2026-a-1", "2026-a-2", "2026-b-1"] {
            std::fs::write(dir.path().join(format!("{id}.cast")), "x").unwrap();
        }
        let p = |id: &str| find(dir.path(), id);
        assert_eq!(p("2026-a-1").unwrap(), dir.path().join("2026-a-1.cast"));
        assert_eq!(p("2026-b").unwrap(), dir.path().join("2026-b-1.cast"));
        assert_eq!(
            p("2026-a"),
            Err(FindError::Ambiguous(vec![
                "2026-a-1".into(),
                "2026-a-2".into()
            ]))
        );
        assert_eq!(p("2027"), Err(FindError::NotFound));
        for bad in ["", "../etc/passwd", "a/b", "a b"] {
            assert_eq!(p(bad), Err(FindError::Invalid), "{bad}");
        }
    }
}
