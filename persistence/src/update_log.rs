//! The per-workspace update log and its snapshot: together they are every accepted update.
//!
//! Invariant (DESIGN §3): `snapshot (covering seq ≤ covers_seq) + log entries with seq > covers_seq`
//! always equals every update the server accepted. Appends happen before broadcast; compaction
//! replaces a prefix of the log with a snapshot in one transaction (see `compaction.rs`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

/// One update to append. `seq` is assigned by the workspace's room, strictly increasing.
#[derive(Debug, Clone)]
pub struct NewLogEntry {
    pub seq: i64,
    pub update: Vec<u8>,
    pub user_id: Option<Uuid>,
}

/// What storage holds for one workspace.
#[derive(Debug, Default)]
pub struct StoredDocument {
    /// The full document state of the last compaction, if any.
    pub snapshot: Option<Vec<u8>>,
    /// The highest log seq the snapshot covers (0 when there is none).
    pub covers_seq: i64,
    /// Updates after the snapshot, in seq order.
    pub log: Vec<(i64, Vec<u8>)>,
}

impl StoredDocument {
    /// The seq the next appended update gets.
    pub fn next_seq(&self) -> i64 {
        self.log
            .last()
            .map(|(seq, _)| *seq)
            .unwrap_or(self.covers_seq)
            .max(self.covers_seq)
            + 1
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.log.is_empty()
    }
}

/// Appends all `entries` of one workspace in one statement.
pub async fn append(
    pool: &PgPool,
    workspace_id: Uuid,
    entries: &[NewLogEntry],
) -> Result<(), PersistenceError> {
    append_many(pool, &[(workspace_id, entries)]).await
}

/// Appends the entries of many workspaces in one statement (group commit): one round trip and one
/// WAL flush for the batches of every room that flushed at about the same time. All or nothing.
pub async fn append_many(
    pool: &PgPool,
    batches: &[(Uuid, &[NewLogEntry])],
) -> Result<(), PersistenceError> {
    let total: usize = batches.iter().map(|(_, entries)| entries.len()).sum();
    if total == 0 {
        return Ok(());
    }
    let mut workspaces = Vec::with_capacity(total);
    let mut seqs = Vec::with_capacity(total);
    let mut updates: Vec<&[u8]> = Vec::with_capacity(total);
    let mut users = Vec::with_capacity(total);
    for (workspace_id, entries) in batches {
        for entry in entries.iter() {
            workspaces.push(*workspace_id);
            seqs.push(entry.seq);
            updates.push(entry.update.as_slice());
            users.push(entry.user_id);
        }
    }
    sqlx::query(
        "INSERT INTO workspace_update_log (workspace_id, seq, update_bytes, user_id)
         SELECT w, s, u, who
         FROM UNNEST($1::UUID[], $2::BIGINT[], $3::BYTEA[], $4::UUID[]) AS t(w, s, u, who)",
    )
    .bind(&workspaces)
    .bind(&seqs)
    .bind(&updates)
    .bind(&users)
    .execute(pool)
    .await?;
    Ok(())
}

/// The snapshot and the log entries after it.
pub async fn load(pool: &PgPool, workspace_id: Uuid) -> Result<StoredDocument, PersistenceError> {
    let snapshot: Option<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT state, covers_seq FROM workspace_snapshots WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?;
    let covers_seq = snapshot.as_ref().map(|s| s.1).unwrap_or(0);
    let log: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, update_bytes FROM workspace_update_log
         WHERE workspace_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(workspace_id)
    .bind(covers_seq)
    .fetch_all(pool)
    .await?;
    Ok(StoredDocument {
        snapshot: snapshot.map(|s| s.0),
        covers_seq,
        log,
    })
}

/// Number of log entries not yet folded into a snapshot (compaction lag, for metrics and tests).
pub async fn pending_entries(pool: &PgPool, workspace_id: Uuid) -> Result<i64, PersistenceError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM workspace_update_log l
         WHERE l.workspace_id = $1
           AND l.seq > COALESCE((SELECT covers_seq FROM workspace_snapshots s WHERE s.workspace_id = $1), 0)",
    )
    .bind(workspace_id)
    .fetch_one(pool)
    .await?;
    Ok(n)
}
