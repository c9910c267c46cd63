//! Helpers shared by the integration tests: options, bounded waits, and reading console output.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backends::{Console, ConsoleOptions};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Generous bound for anything that should happen at once; only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn opts() -> ConsoleOptions {
    ConsoleOptions::default()
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Reads output until it contains `needle`; returns everything read.
pub async fn read_until(output: &mut mpsc::Receiver<Bytes>, needle: &[u8]) -> Vec<u8> {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(WAIT, async {
        // Only the new bytes (plus a needle's length of overlap) need searching each time.
        let mut searched = 0;
        while !contains(&seen[searched..], needle) {
            searched = seen.len().saturating_sub(needle.len());
            match output.recv().await {
                Some(chunk) => seen.extend_from_slice(&chunk),
                None => return false,
            }
        }
        true
    })
    .await;
    match result {
        Ok(true) => seen,
        Ok(false) => panic!(
            "console closed before {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&seen)
        ),
        Err(_) => panic!(
            "timed out waiting for {:?}; got {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&seen)
        ),
    }
}

/// Reads output until the console reports its end.
pub async fn read_to_end(output: &mut mpsc::Receiver<Bytes>) -> Vec<u8> {
    within("output to close", async {
        let mut all = Vec::new();
        while let Some(chunk) = output.recv().await {
            all.extend_from_slice(&chunk);
        }
        all
    })
    .await
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Writes bytes to the console, failing the test if it is closed.
pub async fn send(console: &Console, data: &[u8]) {
    console
        .input
        .write(Bytes::copy_from_slice(data))
        .await
        .expect("console closed");
}

/// A fresh path in a private directory, removed (with anything created in it) on drop.
pub struct TempPath {
    dir: PathBuf,
    path: PathBuf,
}

impl TempPath {
    pub fn to_path_buf(&self) -> PathBuf {
        self.path.clone()
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh path for a unix socket (or any scratch file).
pub fn socket_path(name: &str) -> TempPath {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("backends-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    TempPath { dir, path }
}
