//! A minimal QMP client: connect, negotiate, run one command, read its answer.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// QMP answers within this time or the command is treated as failed.
pub(crate) const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `command` on the QMP socket at `path`; returns QEMU's `return` value.
pub async fn execute(path: &Path, command: &str) -> Result<Value, String> {
    tokio::time::timeout(QMP_TIMEOUT, execute_inner(path, command))
        .await
        .map_err(|_| format!("QMP {command}: no answer within {QMP_TIMEOUT:?}"))?
}

async fn execute_inner(path: &Path, command: &str) -> Result<Value, String> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| format!("QMP {}: {e}", path.display()))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Greeting, then capabilities negotiation, then the command. Events may arrive between
    // answers and are skipped.
    next_answer(&mut lines, true).await?;
    for cmd in ["qmp_capabilities", command] {
        let msg = json!({ "execute": cmd }).to_string() + "\n";
        write
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| format!("QMP write: {e}"))?;
        let answer = next_answer(&mut lines, false).await?;
        if let Some(err) = answer.get("error") {
            return Err(format!("QMP {cmd}: {err}"));
        }
        if cmd == command {
            return Ok(answer.get("return").cloned().unwrap_or(Value::Null));
        }
    }
    Ok(Value::Null)
}

async fn next_answer(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    greeting: bool,
) -> Result<Value, String> {
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| format!("QMP read: {e}"))?
            .ok_or_else(|| "QMP connection closed".to_owned())?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("QMP reply: {e}"))?;
        let wanted = if greeting {
            v.get("QMP").is_some()
        } else {
            v.get("return").is_some() || v.get("error").is_some()
        };
        if wanted {
            return Ok(v);
        }
    }
}

#[cfg(test)]
mod tests;
