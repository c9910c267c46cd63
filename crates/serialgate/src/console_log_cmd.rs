//! `serialgate console-log`: prints an instance's console log from the files in `state_dir`,
//! so it runs on the node that holds the console (in a cluster, its owner).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use console::InstanceId;
use console_log::{Follower, Stripper, list_files, start_offset};

use crate::cli::load_config;

/// How often `--follow` looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Args)]
pub struct ConsoleLogArgs {
    /// The instance whose console log to print, e.g. i-0123456789abcdef0.
    #[arg(value_name = "INSTANCE")]
    pub instance: String,
    /// Configuration whose state_dir holds the logs. Default: the embedded default's.
    #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Keep printing what the console prints (across log rotations) until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only output logged at or after this time, to the second: RFC 3339
    /// (2026-11-27T21:00:00Z) or a time ago (30s, 10m, 2h, 1d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Print the log as the console wrote it, terminal escape sequences (colours, cursor
    /// movement) included. Default: they are removed.
    #[arg(long)]
    pub raw: bool,
}

pub async fn run(args: ConsoleLogArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, _) = load_config(args.config.as_ref())?;
    let instance = InstanceId::parse(&args.instance).map_err(|_| {
        format!(
            "{:?} is not an instance id like i-0123456789abcdef0",
            args.instance
        )
    })?;
    let since_ms = match &args.since {
        Some(t) => Some(parse_since(t, now_ms()).map_err(|e| format!("--since: {e}"))?),
        None => None,
    };
    // serve falls back to the per-user directory when state_dir is not writable; look where
    // it wrote.
    let dir = cfg
        .written_state_dirs()
        .into_iter()
        .map(|d| console_log::dir_for(&d, &instance))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            format!(
                "no console log for {instance} in {} (the node that holds the console keeps it; \
                 [console_log] enabled)",
                console_log::dir_for(&cfg.state_dir(), &instance).display()
            )
        })?;
    let mut out = Output::new(args.raw);
    let files = list_files(&dir)?;
    // The files to print whole, and where to start in the current one.
    let mut current_from = 0;
    let mut started = since_ms.is_none();
    for file in &files {
        let from = if started {
            0
        } else {
            match start_offset(file, since_ms.unwrap_or(0))? {
                Some(offset) => {
                    started = true;
                    offset
                }
                None => continue,
            }
        };
        if file.number == 0 {
            current_from = from;
        } else if !out.file(&file.path, from)? {
            return Ok(());
        }
    }
    if !started {
        // Everything logged is older: print only what comes next.
        current_from = std::fs::metadata(dir.join(console_log::log_name(0))).map_or(0, |m| m.len());
    }
    let mut follower = Follower::new(&dir, current_from)?;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        follower.poll(&mut buf)?;
        if !out.bytes(&buf)? || !args.follow {
            return Ok(());
        }
        if buf.is_empty() {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

/// Standard output, through the escape stripper unless raw.
struct Output {
    stripper: Option<Stripper>,
    stripped: Vec<u8>,
}

impl Output {
    fn new(raw: bool) -> Self {
        Self {
            stripper: (!raw).then(Stripper::default),
            stripped: Vec::new(),
        }
    }

    /// Prints the file at `path` from `offset`. False when stdout is closed (`| head`).
    fn file(&mut self, path: &std::path::Path, offset: u64) -> std::io::Result<bool> {
        use std::io::{Read as _, Seek as _};
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            // Rotated away meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut chunk)?;
            if n == 0 {
                return Ok(true);
            }
            if !self.bytes(chunk.get(..n).unwrap_or_default())? {
                return Ok(false);
            }
        }
    }

    /// Prints `bytes`. False when stdout is closed.
    fn bytes(&mut self, bytes: &[u8]) -> std::io::Result<bool> {
        let text = match &mut self.stripper {
            Some(s) => {
                self.stripped.clear();
                s.feed(bytes, &mut self.stripped);
                &self.stripped[..]
            }
            None => bytes,
        };
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(text).and_then(|()| stdout.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// `--since`: RFC 3339, or a time ago: a number and `s`, `m`, `h` or `d`.
pub(crate) fn parse_since(text: &str, now_ms: u64) -> Result<u64, String> {
    let unit_ms = match text.as_bytes().last() {
        Some(b's') => 1_000,
        Some(b'm') => 60_000,
        Some(b'h') => 3_600_000,
        Some(b'd') => 86_400_000,
        _ => 0,
    };
    let digits = &text[..text.len().saturating_sub(1)];
    if unit_ms > 0
        && !digits.is_empty()
        && digits.len() <= 9
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        let n: u64 = digits.parse().map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(now_ms.saturating_sub(n * unit_ms));
    }
    audit::parse_time_ms(text).map_err(|e| format!("{e} (or a time ago: 30s, 10m, 2h, 1d)"))
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_and_times_ago() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("30s", now).unwrap(), now - 30_000);
        assert_eq!(parse_since("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_since("1d", now).unwrap(), now - 86_400_000);
        assert_eq!(
            parse_since("2026-11-27T21:00:00Z", now).unwrap(),
            1_795_813_200_000
        );
        for bad in [
            "",
            "m",
            "10",
            "10x",
            "-5m",
            "1.5h",
            "yesterday",
            "9999999999d",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad:?}");
        }
    }
}
