//! The per-workspace update log and its snapshot: together they are every accepted update.
//!
//! Invariant (DESIGN §3): `snapshot (covering seq ≤ covers_seq) + log entries with seq > covers_seq`
//! always equals every update the server accepted. Appends happen before broadcast; compaction
//! replaces a prefix of the log with a snapshot in one transaction (see `compaction.rs`).

use sqlx::PgPool;
use uuid::Uuid;

use crate::cluster::Lease;
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

/// Appends all `entries` of one workspace in one statement, fenced by its room's lease.
pub async fn append(
    pool: &PgPool,
    lease: &Lease,
    entries: &[NewLogEntry],
) -> Result<(), PersistenceError> {
    let fenced = append_many(pool, &[(*lease, entries)]).await?;
    match fenced.first() {
        Some(_) => Err(PersistenceError::Fenced {
            workspace_id: lease.workspace_id,
            epoch: lease.epoch,
        }),
        None => Ok(()),
    }
}

/// Appends the entries of many workspaces in one statement (group commit): one round trip and one
/// WAL flush for the batches of every room that flushed at about the same time.
///
/// Each batch is fenced by its room's [`Lease`] (docs/design.md §7): the statement share-locks the
/// lease rows it names and writes only the batches whose lease is still current. Answers the
/// workspaces whose batch was refused that way (nothing of theirs is stored); the others are
/// committed. Any error stores nothing.
pub async fn append_many(
    pool: &PgPool,
    batches: &[(Lease, &[NewLogEntry])],
) -> Result<Vec<Uuid>, PersistenceError> {
    let total: usize = batches.iter().map(|(_, entries)| entries.len()).sum();
    if total == 0 {
        return Ok(Vec::new());
    }
    let mut workspaces = Vec::with_capacity(total);
    let mut seqs = Vec::with_capacity(total);
    let mut updates: Vec<&[u8]> = Vec::with_capacity(total);
    let mut users = Vec::with_capacity(total);
    for (lease, entries) in batches {
        for entry in entries.iter() {
            workspaces.push(lease.workspace_id);
            seqs.push(entry.seq);
            updates.push(entry.update.as_slice());
            users.push(entry.user_id);
        }
    }
    let lease_workspaces: Vec<Uuid> = batches.iter().map(|(l, _)| l.workspace_id).collect();
    let lease_nodes: Vec<Uuid> = batches.iter().map(|(l, _)| l.node_id).collect();
    let lease_epochs: Vec<i64> = batches.iter().map(|(l, _)| l.epoch).collect();
    // `held` share-locks the current lease rows (a takeover waits for this commit) and, under
    // READ COMMITTED, re-checks a row a takeover just changed: a stale epoch drops out.
    let held: Vec<(Uuid,)> = sqlx::query_as(
        "WITH held AS (
           SELECT l.workspace_id FROM workspace_leases l
           JOIN UNNEST($5::UUID[], $6::UUID[], $7::BIGINT[]) AS f(w, n, e)
             ON l.workspace_id = f.w AND l.node_id = f.n AND l.epoch = f.e
           FOR SHARE OF l
         ), written AS (
           INSERT INTO workspace_update_log (workspace_id, seq, update_bytes, user_id)
           SELECT w, s, u, who
           FROM UNNEST($1::UUID[], $2::BIGINT[], $3::BYTEA[], $4::UUID[]) AS t(w, s, u, who)
           WHERE t.w IN (SELECT workspace_id FROM held)
         )
         SELECT workspace_id FROM held",
    )
    .bind(&workspaces)
    .bind(&seqs)
    .bind(&updates)
    .bind(&users)
    .bind(&lease_workspaces)
    .bind(&lease_nodes)
    .bind(&lease_epochs)
    .fetch_all(pool)
    .await?;
    Ok(lease_workspaces
        .into_iter()
        .filter(|w| !held.iter().any(|(h,)| h == w))
        .collect())
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
