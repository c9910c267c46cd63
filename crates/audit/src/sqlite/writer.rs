//! The thread that owns the audit database connection, and its group commit.
//!
//! Callers queue records and wait for the commit that contains them. The thread takes every
//! record queued meanwhile into one transaction, so a commit (one fsync of the WAL with
//! `synchronous=FULL`) serves as many records as arrived while the previous one was being
//! synced: throughput grows with concurrency while each record is still acknowledged only after
//! its own commit.
//!
//! Callers that were just answered tend to come straight back with their next record (a client
//! pushing in a loop, a load test with a fixed number of connections). Committing as soon as
//! the first of them is back would leave the rest for the commit after: the batches settle into
//! two alternating halves and every record waits for two syncs. So the thread counts the
//! records it expects, one per caller the last commit answered plus those that queued up while
//! it ran, and waits for that many before committing: at most [`MAX_GATHER`], and at most half
//! of what the last commit took, so a fast disk is not held back for the sake of a slow one. A
//! lone caller (the last commit held only its record, nothing queued since) never waits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use console::StoreError;
use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::{AuditQuery, AuditRecord};

/// Records committed together at most, so one slow batch cannot starve the queue.
pub(super) const MAX_BATCH: usize = 512;

/// The longest a batch is held back waiting for callers expected to return.
pub(super) const MAX_GATHER: Duration = Duration::from_millis(2);

pub(super) enum Job {
    Write(Box<AuditRecord>, oneshot::Sender<Result<(), StoreError>>),
    /// Records committed together in a transaction of their own (a window of counted refusals).
    WriteAll(Vec<AuditRecord>, oneshot::Sender<Result<(), StoreError>>),
    Query(
        AuditQuery,
        oneshot::Sender<Result<Vec<AuditRecord>, StoreError>>,
    ),
}

/// A job and its place in the bounded queue, given back when the thread has taken the job.
pub(super) struct Queued {
    pub job: Job,
    pub _room: OwnedSemaphorePermit,
}

/// Counters of the writer thread, for tests and diagnostics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Records handed to the thread.
    pub submitted: AtomicU64,
    /// Committed transactions holding at least one record.
    pub commits: AtomicU64,
    /// Records committed.
    pub records: AtomicU64,
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Records handed to the writer so far (committed or still queued).
    pub submitted: u64,
    /// Transactions committed (each one fsync of the WAL).
    pub commits: u64,
    /// Records in them.
    pub records: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CommitStats {
        CommitStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
        }
    }
}

type Pending = Vec<(Box<AuditRecord>, oneshot::Sender<Result<(), StoreError>>)>;

/// The thread's loop; returns when every sender is gone and the queue is empty.
pub(super) fn run(mut conn: Connection, jobs: Receiver<Queued>, counters: Arc<Counters>) {
    // How many callers the last commit answered (expected back with their next record) and how
    // long it took (what waiting for them may cost).
    let mut answered = 0usize;
    let mut last_commit = Duration::ZERO;
    // Jobs that queued while the last commit ran, taken off the channel before its callers were
    // answered: they come from other callers, so the answered ones are expected on top.
    let mut early: VecDeque<Queued> = VecDeque::new();
    loop {
        let expected = (early.len() + answered).min(MAX_BATCH);
        let first = match early.pop_front() {
            Some(q) => q,
            None => match jobs.recv() {
                Ok(q) => q,
                Err(_) => return,
            },
        };
        let deadline = Instant::now() + MAX_GATHER.min(last_commit / 2);
        let mut batch: Pending = Vec::new();
        let mut next = Some(first);
        loop {
            let queued = match next.take().or_else(|| early.pop_front()) {
                Some(q) => q,
                None if batch.len() >= MAX_BATCH => break,
                None => match jobs.try_recv() {
                    Ok(q) => q,
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        if batch.len() >= expected || wait.is_zero() {
                            break;
                        }
                        match jobs.recv_timeout(wait) {
                            Ok(q) => q,
                            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                                break;
                            }
                        }
                    }
                },
            };
            match queued.job {
                Job::Write(record, reply) => batch.push((record, reply)),
                Job::Query(query, reply) => {
                    // Answer after the writes queued before it, so a reader sees them.
                    let written = std::mem::take(&mut batch);
                    let result = commit(&mut conn, &written, &counters);
                    answer(written, &result);
                    let _ = reply.send(super::select(&conn, &query));
                }
                Job::WriteAll(records, reply) => {
                    // After the writes queued before it, in order; its own transaction, so a
                    // large set never delays the pushes queued behind it by more than one commit.
                    let written = std::mem::take(&mut batch);
                    let result = commit(&mut conn, &written, &counters);
                    answer(written, &result);
                    let _ = reply.send(commit_all(&mut conn, &records, &counters));
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        answered = batch.len();
        let started = Instant::now();
        let result = commit(&mut conn, &batch, &counters);
        last_commit = started.elapsed();
        while let Ok(q) = jobs.try_recv() {
            early.push_back(q);
        }
        answer(batch, &result);
    }
}

/// Commits `batch` in one transaction.
fn commit(conn: &mut Connection, batch: &Pending, counters: &Counters) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let result = super::insert_all(conn, batch.iter().map(|(r, _)| r.as_ref()))
        .map_err(|e| StoreError::new(format!("audit database: {e}")));
    if result.is_ok() {
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    result
}

/// Commits `records` in one transaction.
fn commit_all(
    conn: &mut Connection,
    records: &[AuditRecord],
    counters: &Counters,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    super::insert_all(conn, records.iter())
        .map_err(|e| StoreError::new(format!("audit database: {e}")))?;
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters
        .records
        .fetch_add(records.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Gives each caller in `batch` the outcome of the commit that held its record. Called only
/// after COMMIT (and with it the WAL fsync) has returned.
fn answer(batch: Pending, result: &Result<(), StoreError>) {
    for (_, reply) in batch {
        let _ = reply.send(result.clone());
    }
}
