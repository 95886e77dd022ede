//! Group commit across rooms: one task writes the update batches of every room.
//!
//! Each room makes its batch durable before delivering it (DESIGN §3). With one commit per room,
//! a thousand rooms editing at once cost a thousand round trips, transactions and WAL flushes per
//! round — PostgreSQL CPU and pool waits, not the disk, become the limit (bench/README.md,
//! bottleneck 2). Here rooms hand their batches to a [`LogWriter`]; it takes every batch waiting
//! and writes them all with **one** `INSERT … UNNEST`, then answers each room. While
//! [`CONCURRENT_COMMITS`] statements are in flight, new batches gather for the next one, so the
//! busier the server, the more rooms share a commit.
//!
//! A room still waits for its own commit before anything of its batch is delivered, and never has
//! two batches in flight, so the log order per workspace is the room's order.

use std::sync::Arc;

use nox_persistence::cluster::Lease;
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use nox_persistence::update_log::{self, NewLogEntry};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics::Metrics;

/// Log statements in flight at once: a new batch need not wait for the commit before it.
const CONCURRENT_COMMITS: usize = 4;
/// Room batches written by one statement at most.
const MAX_ROOMS_PER_COMMIT: usize = 512;
/// Room batches waiting for the writer before rooms wait to hand theirs over.
const QUEUE: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("update log append failed: {0}")]
    Storage(Arc<PersistenceError>),
    #[error("the update log writer has stopped")]
    Stopped,
    /// The room's lease is no longer current: another node owns the workspace (DESIGN §7).
    #[error("the workspace lease moved to another node")]
    Fenced,
}

/// A handle to the writer task. Cheap to clone; the task ends when the last handle is dropped.
#[derive(Clone)]
pub struct LogWriter {
    requests: mpsc::Sender<AppendRequest>,
}

struct AppendRequest {
    lease: Lease,
    entries: Vec<NewLogEntry>,
    done: oneshot::Sender<Result<(), AppendError>>,
}

impl LogWriter {
    /// Starts the writer task (needs a tokio runtime).
    pub fn spawn(db: Database, metrics: Metrics) -> Self {
        let (requests, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, metrics, receiver));
        Self { requests }
    }

    /// Appends one room's batch; returns once it is committed (or failed, and nothing of it is
    /// stored).
    pub async fn append(&self, lease: Lease, entries: Vec<NewLogEntry>) -> Result<(), AppendError> {
        let (done, result) = oneshot::channel();
        let request = AppendRequest {
            lease,
            entries,
            done,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| AppendError::Stopped)?;
        result.await.unwrap_or(Err(AppendError::Stopped))
    }
}

async fn run(db: Database, metrics: Metrics, mut receiver: mpsc::Receiver<AppendRequest>) {
    let in_flight = Arc::new(Semaphore::new(CONCURRENT_COMMITS));
    let mut waiting = Vec::new();
    loop {
        // Take a commit slot first: while all are busy, batches pile up for one bigger commit.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if receiver.recv_many(&mut waiting, MAX_ROOMS_PER_COMMIT).await == 0 {
            return;
        }
        let requests = std::mem::take(&mut waiting);
        let (db, metrics) = (db.clone(), metrics.clone());
        tokio::spawn(async move {
            commit(&db, &metrics, requests).await;
            drop(slot);
        });
    }
}

/// Writes the batches of several rooms in one statement and answers each room.
async fn commit(db: &Database, metrics: &Metrics, requests: Vec<AppendRequest>) {
    metrics.log_commit_workspaces.observe(requests.len() as f64);
    let batches: Vec<(Lease, &[NewLogEntry])> = requests
        .iter()
        .map(|r| (r.lease, r.entries.as_slice()))
        .collect();
    let result = update_log::append_many(db.pool(), &batches).await;
    match result {
        Ok(fenced) => {
            for request in requests {
                let answer = if fenced.contains(&request.lease.workspace_id) {
                    Err(AppendError::Fenced)
                } else {
                    Ok(())
                };
                let _ = request.done.send(answer);
            }
        }
        // The statement is all or nothing. When the database refused the *data* (a constraint),
        // only the culprit room should fail: retry each batch alone. Other failures (connection,
        // pool timeout) would hit every batch again, so they fail them all at once.
        Err(err) if err.is_rejected_by_database() && requests.len() > 1 => {
            for request in requests {
                let alone = update_log::append(db.pool(), &request.lease, &request.entries)
                    .await
                    .map_err(|err| match err {
                        PersistenceError::Fenced { .. } => AppendError::Fenced,
                        err => AppendError::Storage(Arc::new(err)),
                    });
                let _ = request.done.send(alone);
            }
        }
        Err(err) => answer_all(requests, Err(AppendError::Storage(Arc::new(err)))),
    }
}

fn answer_all(requests: Vec<AppendRequest>, result: Result<(), AppendError>) {
    for request in requests {
        // A room that stopped waiting (shutdown) has nothing left to deliver.
        let _ = request.done.send(result.clone());
    }
}
