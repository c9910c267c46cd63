//! `serialgate recordings`: lists, plays and exports the session recordings in
//! `state_dir/recordings`, so it runs on the node that accepted the sessions.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};

use audit::format_time_ms;
use console::InstanceId;
use recordings::{Listing, Pacer};

use crate::cli::load_config;
use crate::console_log_cmd::{now_ms, parse_since};

#[derive(Debug, clap::Args)]
pub struct RecordingsArgs {
    /// Configuration whose state_dir holds the recordings. Default: the embedded default's.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "SERIALGATE_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RecordingsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// List recordings, oldest first: id, start, length, size, instance and who.
    List(ListArgs),
    /// Play a recording in this terminal, at the pace it was recorded (Ctrl-C stops).
    Play(PlayArgs),
    /// Write a recording to standard output as the asciicast v2 file it is
    /// (`serialgate recordings export ID > session.cast`; `asciinema play session.cast`).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only recordings of this instance.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Only recordings started at or after this time: RFC 3339 (2026-11-27T21:00:00Z) or a
    /// time ago (30s, 10m, 2h, 1d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Print one JSON object per line (the recording's header, its id, path, size and
    /// duration) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// The recording: its id, or the start of one (as `list` shows).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Play this many times faster (0.5 plays at half speed).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = positive_speed)]
    pub speed: f64,
    /// Shorten every pause longer than this many seconds (of the recording) to it. Default:
    /// pauses play as recorded.
    #[arg(long, short = 'i', value_name = "SECONDS", value_parser = non_negative)]
    pub idle_limit: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The recording: its id, or the start of one (as `list` shows).
    #[arg(value_name = "ID")]
    pub id: String,
}

fn positive_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a positive number, like 2 or 0.5")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds, like 2 or 0.5")),
    }
}

pub async fn run(args: RecordingsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, _) = load_config(args.config.as_ref())?;
    // serve falls back to the per-user directory when state_dir is not writable; look where
    // it wrote.
    let dir = cfg
        .written_state_dirs()
        .iter()
        .map(|d| recordings::dir_for(d))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| recordings::dir_for(&cfg.state_dir()));
    match args.command {
        RecordingsCommand::List(list) => run_list(&dir, &list),
        RecordingsCommand::Play(play) => run_play(&find(&dir, &play.id)?, &play).await,
        RecordingsCommand::Export(export) => {
            let path = find(&dir, &export.id)?;
            let mut file = std::fs::File::open(&path)?;
            let mut stdout = std::io::stdout().lock();
            match std::io::copy(&mut file, &mut stdout).and_then(|_| stdout.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// The file of recording `id` (or of the one whose id starts so) in `dir`.
fn find(dir: &Path, id: &str) -> Result<PathBuf, String> {
    recordings::find(dir, id).map_err(|e| match e {
        recordings::FindError::NotFound => format!(
            "no recording {id:?} in {} (recordings are kept by the node that accepted the \
             session; `serialgate recordings list` shows them)",
            dir.display()
        ),
        other => format!("recording {id:?}: {other}"),
    })
}

fn run_list(dir: &Path, args: &ListArgs) -> Result<(), Box<dyn std::error::Error>> {
    let instance = match &args.instance {
        Some(id) => Some(InstanceId::parse(id).map_err(|_| {
            format!("--instance: {id:?} is not an instance id like i-0123456789abcdef0")
        })?),
        None => None,
    };
    let since_ms = match &args.since {
        Some(t) => parse_since(t, now_ms()).map_err(|e| format!("--since: {e}"))?,
        None => 0,
    };
    let mut all = recordings::list(dir)?;
    all.retain(|l| {
        let of_instance = instance.as_ref().is_none_or(|want| {
            l.header
                .serialgate
                .as_ref()
                .is_some_and(|s| s.instance == want.as_str())
        });
        of_instance && l.started_ms() >= since_ms
    });
    all.sort_by_key(Listing::started_ms);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        all.iter()
            .try_for_each(|l| writeln!(out, "{}", json_line(l)))
    } else {
        print_table(&mut out, &all)
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn json_line(l: &Listing) -> serde_json::Value {
    serde_json::json!({
        "id": l.id,
        "path": l.path,
        "size": l.size,
        "duration": l.duration,
        "started": format_time_ms(l.started_ms()),
        "header": l.header,
    })
}

fn print_table(out: &mut impl std::io::Write, all: &[Listing]) -> std::io::Result<()> {
    if all.is_empty() {
        return writeln!(out, "no recordings");
    }
    let id_width = all.iter().map(|l| l.id.len()).max().unwrap_or(2).max(2);
    writeln!(
        out,
        "{:id_width$}  {:24}  {:>9}  {:>9}  WHO",
        "ID", "STARTED", "LENGTH", "SIZE"
    )?;
    for l in all {
        let who = l.header.serialgate.as_ref().map_or_else(String::new, |s| {
            format!(
                "{}{}",
                s.principal,
                if s.spectator { " (spectator)" } else { "" }
            )
        });
        writeln!(
            out,
            "{:id_width$}  {:24}  {:>9}  {:>9}  {who}",
            l.id,
            format_time_ms(l.started_ms()),
            length(l.duration),
            size(l.size)
        )?;
    }
    Ok(())
}

/// `4.2s`, `12m05s`, `3h02m`.
fn length(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let whole = s as u64;
    if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// `812 B`, `4.1 KiB`, `12.0 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
    }
}

/// Writes the recording's output to the terminal at its recorded pace.
async fn run_play(path: &Path, args: &PlayArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = BufReader::new(std::fs::File::open(path)?).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if recordings::parse_header(&first).is_none() {
        return Err(format!("{} is not an asciicast v2 recording", path.display()).into());
    }
    let mut pacer = Pacer::new(args.speed, args.idle_limit);
    let mut stdout = std::io::stdout().lock();
    for (n, line) in lines.enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let event = recordings::parse_event(&line)
            .ok_or_else(|| format!("{} line {}: not an asciicast event", path.display(), n + 2))?;
        if event.code != "o" {
            continue;
        }
        let wait = pacer.wait_before(event.seconds);
        if !wait.is_zero() {
            stdout.flush()?;
            tokio::time::sleep(wait).await;
        }
        match stdout.write_all(event.data.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match stdout.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_sizes_read_well() {
        assert_eq!(length(4.25), "4.2s");
        assert_eq!(length(725.0), "12m05s");
        assert_eq!(length(10_920.0), "3h02m");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4200), "4.1 KiB");
        assert_eq!(size(12 << 20), "12.0 MiB");
        assert!(positive_speed("0").is_err() && positive_speed("nan").is_err());
        assert!(non_negative("-1").is_err());
        assert_eq!(positive_speed("2.5"), Ok(2.5));
    }
}
