//! `edit_locks`: the durable side of the live edit locks (DESIGN §5).
//!
//! The workspace's room decides who holds what; these statements make each decision durable and
//! arbitrate with anything the room does not know about (another workspace that reuses a resource
//! id, or — later — another node): an acquire only takes over a row that has expired or that the same
//! user already holds in the same workspace, so of two racing acquires exactly one gets the row.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cluster::{self, Lease};
use crate::error::PersistenceError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct EditLock {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub locked_by: Uuid,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const LOCK_COLUMNS: &str =
    "id, workspace_id, resource_type, resource_id, locked_by, acquired_at, expires_at";

/// Takes (or renews) the lock unless a live lock of someone else — or of another workspace —
/// holds the resource. `None` when the row belongs to someone else. Fenced by the room's lease: a
/// stale owner cannot grant a lock (docs/design.md §7).
pub async fn acquire(
    pool: &PgPool,
    lease: &Lease,
    lock: &EditLock,
) -> Result<Option<EditLock>, PersistenceError> {
    let mut tx = pool.begin().await?;
    cluster::fence(&mut tx, lease).await?;
    let taken = sqlx::query_as(&format!(
        "INSERT INTO edit_locks AS l (id, workspace_id, resource_type, resource_id, locked_by, acquired_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (resource_type, resource_id) DO UPDATE SET
           id = EXCLUDED.id, workspace_id = EXCLUDED.workspace_id, locked_by = EXCLUDED.locked_by,
           acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
         WHERE l.expires_at < NOW()
            OR (l.locked_by = EXCLUDED.locked_by AND l.workspace_id = EXCLUDED.workspace_id)
         RETURNING {LOCK_COLUMNS}"
    ))
    .bind(lock.id)
    .bind(lock.workspace_id)
    .bind(&lock.resource_type)
    .bind(lock.resource_id)
    .bind(lock.locked_by)
    .bind(lock.acquired_at)
    .bind(lock.expires_at)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(taken)
}

/// Deletes the locks with these ids (in this workspace). Returns how many went.
pub async fn release(
    pool: &PgPool,
    workspace_id: Uuid,
    ids: &[Uuid],
) -> Result<u64, PersistenceError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query("DELETE FROM edit_locks WHERE workspace_id = $1 AND id = ANY($2)")
        .bind(workspace_id)
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The workspace's locks that have not expired.
pub async fn live_for_workspace(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Vec<EditLock>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {LOCK_COLUMNS} FROM edit_locks
         WHERE workspace_id = $1 AND expires_at > NOW() ORDER BY acquired_at, id"
    ))
    .bind(workspace_id)
    .fetch_all(pool)
    .await?)
}

/// Removes expired locks of a workspace (rows of a room that was not loaded when they expired).
pub async fn sweep_expired(pool: &PgPool, workspace_id: Uuid) -> Result<u64, PersistenceError> {
    let done =
        sqlx::query("DELETE FROM edit_locks WHERE workspace_id = $1 AND expires_at <= NOW()")
            .bind(workspace_id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}
