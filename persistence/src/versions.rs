//! `core_snapshots`: the version history of a workspace (issue 14).
//!
//! A version is the state of the workspace's Yjs document (a v1 update) taken from the room's
//! durable state, with its state vector and the block / relation counts. It is stored whole, or
//! (automatic and before-restore versions) as the changes since the newest full version of the
//! workspace, its base: the state is then the base's state and these changes together. Versions
//! are written once and never rewritten; retention deletes old automatic versions, never named
//! ones, and never a base a kept version still needs.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use nox_sync_protocol::version_delta;

use crate::error::PersistenceError;
use crate::iam::audit::{self, NewAuditEntry};

/// Why a version exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    /// Asked for by a user, with a name: never pruned automatically.
    Named,
    /// Taken by the server after a workspace changed and went quiet.
    Auto,
    /// Taken by the server just before a restore (restoring it undoes the restore).
    BeforeRestore,
}

impl VersionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionKind::Named => "named",
            VersionKind::Auto => "auto",
            VersionKind::BeforeRestore => "before_restore",
        }
    }

    fn parse(text: &str) -> Result<Self, PersistenceError> {
        match text {
            "named" => Ok(VersionKind::Named),
            "auto" => Ok(VersionKind::Auto),
            "before_restore" => Ok(VersionKind::BeforeRestore),
            other => Err(PersistenceError::Invariant(format!(
                "unknown version kind `{other}`"
            ))),
        }
    }
}

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub workspace_id: Uuid,
    pub kind: VersionKind,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub created_by: Option<Uuid>,
    /// The document's full state, or (with `base_version_id`) the changes since that version's
    /// state: a Yjs v1 update either way.
    pub state: &'a [u8],
    /// The state vector of the whole state (not of the changes).
    pub state_vector: &'a [u8],
    pub block_count: i32,
    pub relation_count: i32,
    /// The full version `state` holds the changes since ([`begin_with_base`]); `None`: stored whole.
    pub base_version_id: Option<Uuid>,
}

/// What is known of a version without its content.
#[derive(Debug, Clone, Serialize)]
pub struct VersionMeta {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: VersionKind,
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub block_count: i32,
    pub relation_count: i32,
    /// Bytes of the stored update (the changes since the base, for a version stored that way).
    pub size_bytes: i64,
    /// Bytes the state takes in the table (after PostgreSQL's TOAST compression).
    pub stored_bytes: i64,
    /// The full version this one is stored as the changes since; `None`: stored whole.
    pub base_version_id: Option<Uuid>,
}

type MetaRow = (
    Uuid,
    Uuid,
    String,
    String,
    Option<String>,
    Option<Uuid>,
    DateTime<Utc>,
    i32,
    i32,
    i64,
    i64,
    Option<Uuid>,
);

const META_COLUMNS: &str = "id, workspace_id, kind, name, commit_message, created_by_id, \
     created_at, block_count, relation_count, COALESCE(octet_length(state), 0)::BIGINT, \
     COALESCE(pg_column_size(state), 0)::BIGINT, base_version_id";

fn meta_of(row: MetaRow) -> Result<VersionMeta, PersistenceError> {
    let (
        id,
        workspace_id,
        kind,
        name,
        description,
        created_by,
        created_at,
        blocks,
        relations,
        size,
        stored,
        base_version_id,
    ) = row;
    Ok(VersionMeta {
        id,
        workspace_id,
        kind: VersionKind::parse(&kind)?,
        name,
        description,
        created_by,
        created_at,
        block_count: blocks,
        relation_count: relations,
        size_bytes: size,
        stored_bytes: stored,
        base_version_id,
    })
}

/// The JSON summary kept in the seed's `full_state_dump` column.
fn summary_of(version: &NewVersion<'_>) -> serde_json::Value {
    serde_json::json!({
        "encoding": "yjs-update-v1",
        "changes_since": version.base_version_id,
        "blocks": version.block_count,
        "relations": version.relation_count,
    })
}

/// Stores a version (the project comes from the workspace). `None` when the workspace is gone,
/// or when the base named is not a full version of the same workspace.
pub async fn insert<'e>(
    executor: impl PgExecutor<'e>,
    version: &NewVersion<'_>,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let summary = summary_of(version);
    let sql = format!(
        "INSERT INTO core_snapshots
           (project_id, workspace_id, kind, name, commit_message, created_by_id, full_state_dump,
            state, state_vector, block_count, relation_count, base_version_id)
         SELECT w.project_id, w.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
         FROM workspaces w WHERE w.id = $1
           AND ($11::UUID IS NULL OR EXISTS (
             SELECT 1 FROM core_snapshots b
             WHERE b.id = $11 AND b.workspace_id = $1 AND b.base_version_id IS NULL
               AND b.state IS NOT NULL))
         RETURNING {META_COLUMNS}"
    );
    let row: Option<MetaRow> = sqlx::query_as(&sql)
        .bind(version.workspace_id)
        .bind(version.kind.as_str())
        .bind(version.name)
        .bind(version.description)
        .bind(version.created_by)
        .bind(summary)
        .bind(version.state)
        .bind(version.state_vector)
        .bind(version.block_count)
        .bind(version.relation_count)
        .bind(version.base_version_id)
        .fetch_optional(executor)
        .await?;
    row.map(meta_of).transpose()
}

/// The transaction a version is written in.
pub type VersionTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// A full version that a new version can be stored against, as the changes since it.
#[derive(Debug, Clone)]
pub struct DeltaBase {
    pub id: Uuid,
    /// Its state vector (v1 encoded): the changes are the document's update against it.
    pub state_vector: Vec<u8>,
    /// Bytes of its state: changes larger than half of it are not worth a delta.
    pub size_bytes: i64,
}

impl DeltaBase {
    /// What deciding and encoding the changes since it needs (`version_delta`).
    pub fn as_base(&self) -> version_delta::Base<'_> {
        version_delta::Base {
            state_vector: &self.state_vector,
            size_bytes: self.size_bytes,
        }
    }
}

/// The newest full version of the workspace, locked against retention until `tx` ends (retention
/// skips locked rows), so a version stored against it in `tx` keeps its base.
async fn delta_base(
    tx: &mut VersionTx,
    workspace_id: Uuid,
) -> Result<Option<DeltaBase>, PersistenceError> {
    let row: Option<(Uuid, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT id, COALESCE(state_vector, ''::BYTEA), octet_length(state)::BIGINT
         FROM core_snapshots
         WHERE workspace_id = $1 AND base_version_id IS NULL AND state IS NOT NULL
         ORDER BY created_at DESC, id DESC
         LIMIT 1
         FOR KEY SHARE",
    )
    .bind(workspace_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(id, state_vector, size_bytes)| DeltaBase {
        id,
        state_vector,
        size_bytes,
    }))
}

/// Opens the transaction a server-taken version is written in, with the base it can be stored
/// against: the newest full version of the workspace, locked against retention until the
/// transaction ends.
pub async fn begin_with_base(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<(VersionTx, Option<DeltaBase>), PersistenceError> {
    let mut tx = pool.begin().await?;
    let base = delta_base(&mut tx, workspace_id).await?;
    Ok((tx, base))
}

/// Stores a version and the audit row describing it (made from the stored version) in one
/// transaction: both exist or neither. `None` when the workspace is gone.
pub async fn insert_audited<'a>(
    pool: &PgPool,
    version: &NewVersion<'_>,
    audit_entry: impl FnOnce(&VersionMeta) -> NewAuditEntry<'a>,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let mut tx = pool.begin().await?;
    let Some(stored) = insert(&mut *tx, version).await? else {
        return Ok(None);
    };
    audit::record(&mut *tx, audit_entry(&stored)).await?;
    tx.commit().await?;
    Ok(Some(stored))
}

/// A version inserted in a transaction that is still open: it becomes visible with
/// [`PendingVersion::commit_audited`], and disappears if dropped (the transaction rolls back).
///
/// A restore writes its "before restore" version this way while the version to restore is still
/// being read: the 5 MB write overlaps the read, and the row still commits only once the restore
/// is durable, together with its audit row.
pub struct PendingVersion {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    stored: VersionMeta,
}

impl PendingVersion {
    /// The row as inserted (its id and time are final).
    pub fn meta(&self) -> &VersionMeta {
        &self.stored
    }

    /// Replaces the state (and counts) of the pending row: the document changed between taking
    /// the state and the restore.
    pub async fn replace_state(
        &mut self,
        version: &NewVersion<'_>,
    ) -> Result<(), PersistenceError> {
        let sql = format!(
            "UPDATE core_snapshots
             SET state = $2, state_vector = $3, block_count = $4, relation_count = $5,
                 full_state_dump = $6, base_version_id = $7
             WHERE id = $1
             RETURNING {META_COLUMNS}"
        );
        let row: MetaRow = sqlx::query_as(&sql)
            .bind(self.stored.id)
            .bind(version.state)
            .bind(version.state_vector)
            .bind(version.block_count)
            .bind(version.relation_count)
            .bind(summary_of(version))
            .bind(version.base_version_id)
            .fetch_one(&mut *self.tx)
            .await?;
        self.stored = meta_of(row)?;
        Ok(())
    }

    /// Writes the audit row made from the stored version and commits both.
    pub async fn commit_audited<'a>(
        mut self,
        audit_entry: impl FnOnce(&VersionMeta) -> NewAuditEntry<'a>,
    ) -> Result<VersionMeta, PersistenceError> {
        audit::record(&mut *self.tx, audit_entry(&self.stored)).await?;
        self.tx.commit().await?;
        Ok(self.stored)
    }
}

/// Inserts a version in `tx` and leaves it open (see [`PendingVersion`]). `None` when the
/// workspace is gone.
pub async fn insert_pending(
    mut tx: VersionTx,
    version: &NewVersion<'_>,
) -> Result<Option<PendingVersion>, PersistenceError> {
    let Some(stored) = insert(&mut *tx, version).await? else {
        return Ok(None);
    };
    Ok(Some(PendingVersion { tx, stored }))
}

/// One page of a workspace's versions, newest first, after the `(created_at, id)` of the last one
/// served. `limit` rows at most.
pub async fn list(
    pool: &PgPool,
    workspace_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<VersionMeta>, PersistenceError> {
    let sql = format!(
        "SELECT {META_COLUMNS} FROM core_snapshots
         WHERE workspace_id = $1 AND state IS NOT NULL
           AND ($2::TIMESTAMPTZ IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC
         LIMIT $4"
    );
    let rows: Vec<MetaRow> = sqlx::query_as(&sql)
        .bind(workspace_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(meta_of).collect()
}

/// A version of this workspace (another workspace's version is `None`, like a missing one).
pub async fn find(
    pool: &PgPool,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let sql = format!(
        "SELECT {META_COLUMNS} FROM core_snapshots
         WHERE id = $1 AND workspace_id = $2 AND state IS NOT NULL"
    );
    let row: Option<MetaRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await?;
    row.map(meta_of).transpose()
}

/// What is stored of a version's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// The full state, or the changes since `base`.
    pub state: Vec<u8>,
    /// The full state of its base version, for a version stored as changes.
    pub base: Option<Vec<u8>>,
}

/// The stored state of a version of this workspace (with its base's, in the same read).
pub async fn state(
    pool: &PgPool,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<Option<StoredState>, PersistenceError> {
    // (state, base id, base state)
    type StateRow = (Vec<u8>, Option<Uuid>, Option<Vec<u8>>);
    let row: Option<StateRow> = sqlx::query_as(
        "SELECT v.state, v.base_version_id, b.state FROM core_snapshots v
         LEFT JOIN core_snapshots b ON b.id = v.base_version_id AND b.workspace_id = v.workspace_id
         WHERE v.id = $1 AND v.workspace_id = $2 AND v.state IS NOT NULL",
    )
    .bind(id)
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some((state, None, _)) => Ok(Some(StoredState { state, base: None })),
        Some((state, Some(_), Some(base))) => Ok(Some(StoredState {
            state,
            base: Some(base),
        })),
        Some((_, Some(base_id), None)) => Err(PersistenceError::Invariant(format!(
            "version {id} is stored as changes since {base_id}, which has no state"
        ))),
    }
}

/// What a user changes of a version: a field left `None` keeps its value.
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionEdit<'a> {
    /// A new name; naming a version keeps it for good (it becomes `named`).
    pub name: Option<&'a str>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<&'a str>>,
}

/// Changes a version's name or description, with the audit row `audit_entry` makes of the result,
/// in one transaction. `None` when the workspace has no such version.
pub async fn edit_audited<'a>(
    pool: &PgPool,
    workspace_id: Uuid,
    id: Uuid,
    edit: VersionEdit<'_>,
    audit_entry: impl FnOnce(&VersionMeta) -> NewAuditEntry<'a>,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let sql = format!(
        "UPDATE core_snapshots
         SET name = COALESCE($3, name),
             kind = CASE WHEN $3::TEXT IS NULL THEN kind ELSE 'named' END,
             commit_message = CASE WHEN $4 THEN $5 ELSE commit_message END
         WHERE id = $1 AND workspace_id = $2 AND state IS NOT NULL
         RETURNING {META_COLUMNS}"
    );
    let mut tx = pool.begin().await?;
    let row: Option<MetaRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace_id)
        .bind(edit.name)
        .bind(edit.description.is_some())
        .bind(edit.description.flatten())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(edited) = row.map(meta_of).transpose()? else {
        return Ok(None);
    };
    audit::record(&mut *tx, audit_entry(&edited)).await?;
    tx.commit().await?;
    Ok(Some(edited))
}

/// Deletes a version of the workspace, with the audit row `audit_entry` makes of it (and of how
/// many versions were rewritten), in one transaction. Versions stored as the changes since it
/// are rewritten whole first: their content does not change. `None` when there is no such version.
pub async fn delete_audited<'a>(
    pool: &PgPool,
    workspace_id: Uuid,
    id: Uuid,
    audit_entry: impl FnOnce(&VersionMeta, usize) -> NewAuditEntry<'a>,
) -> Result<Option<VersionMeta>, PersistenceError> {
    let mut tx = pool.begin().await?;
    // Locked first: a writer choosing it as a base waits, then finds it gone.
    let sql = format!(
        "SELECT {META_COLUMNS} FROM core_snapshots
         WHERE id = $1 AND workspace_id = $2 AND state IS NOT NULL
         FOR UPDATE"
    );
    let row: Option<MetaRow> = sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(deleted) = row.map(meta_of).transpose()? else {
        return Ok(None);
    };
    let rewritten = rewrite_dependents_whole(&mut tx, id).await?;
    sqlx::query("DELETE FROM core_snapshots WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut *tx, audit_entry(&deleted, rewritten)).await?;
    tx.commit().await?;
    Ok(Some(deleted))
}

/// Rewrites whole every version stored as the changes since `base_id` (its base's state and its
/// changes merged). Returns how many.
async fn rewrite_dependents_whole(
    tx: &mut VersionTx,
    base_id: Uuid,
) -> Result<usize, PersistenceError> {
    let dependents: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT id, state FROM core_snapshots WHERE base_version_id = $1 ORDER BY id FOR UPDATE",
    )
    .bind(base_id)
    .fetch_all(&mut **tx)
    .await?;
    if dependents.is_empty() {
        return Ok(0);
    }
    let (base,): (Vec<u8>,) = sqlx::query_as("SELECT state FROM core_snapshots WHERE id = $1")
        .bind(base_id)
        .fetch_one(&mut **tx)
        .await?;
    let base = std::sync::Arc::new(base);
    let count = dependents.len();
    for (dependent, changes) in dependents {
        let base = base.clone();
        // Merging 5 MB takes tens of milliseconds: off the async workers.
        let whole =
            tokio::task::spawn_blocking(move || version_delta::whole_state(&base, &changes))
                .await
                .map_err(|err| PersistenceError::Invariant(format!("merging a version: {err}")))?
                .map_err(|err| {
                    PersistenceError::Invariant(format!(
                        "version {dependent} does not merge: {err}"
                    ))
                })?;
        sqlx::query(
            "UPDATE core_snapshots
             SET state = $2, base_version_id = NULL,
                 full_state_dump = full_state_dump || '{\"changes_since\": null}'::JSONB
             WHERE id = $1",
        )
        .bind(dependent)
        .bind(whole)
        .execute(&mut **tx)
        .await?;
    }
    Ok(count)
}

/// How long automatic versions are kept. Named versions are never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Automatic versions older than this many days are deleted; `None`: no age limit.
    pub max_age_days: Option<i64>,
    /// Only the newest this many automatic versions are kept; `None`: no count limit.
    pub max_versions: Option<i64>,
}

/// The retention of a billing plan (`subscriptions.plan_id`); unknown plans get the free one.
pub fn retention_for_plan(plan_id: &str) -> Retention {
    match plan_id {
        "team" => Retention {
            max_age_days: Some(365),
            max_versions: Some(500),
        },
        "enterprise" => Retention {
            max_age_days: None,
            max_versions: Some(5_000),
        },
        _ => Retention {
            max_age_days: Some(30),
            max_versions: Some(50),
        },
    }
}

/// The plan of the organization owning the workspace (`free` without a subscription row).
pub async fn plan_of_workspace(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<String, PersistenceError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT s.plan_id FROM workspaces w
         JOIN projects p ON p.id = w.project_id
         JOIN subscriptions s ON s.org_id = p.org_id
         WHERE w.id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or_else(|| "free".to_string(), |r| r.0))
}

/// Deletes the workspace's automatic versions (`auto` and `before_restore`) that `retention` no
/// longer keeps, as of `now`, except bases a kept version is stored against (they go with the
/// last version needing them) and bases a version is being written against (locked rows are
/// skipped, not waited for). Returns how many were deleted.
pub async fn prune(
    pool: &PgPool,
    workspace_id: Uuid,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<u64, PersistenceError> {
    let cutoff = retention
        .max_age_days
        .map(|days| now - Duration::days(days));
    let result = sqlx::query(
        "WITH expired AS (
           SELECT id FROM (
             SELECT id, created_at,
                    ROW_NUMBER() OVER (ORDER BY created_at DESC, id DESC) AS newest
             FROM core_snapshots
             WHERE workspace_id = $1 AND kind <> 'named'
           ) automatic
           WHERE ($2::TIMESTAMPTZ IS NOT NULL AND created_at < $2)
              OR ($3::BIGINT IS NOT NULL AND newest > $3)
         ), deletable AS (
           SELECT c.id FROM core_snapshots c
           WHERE c.id IN (SELECT id FROM expired)
             AND NOT EXISTS (
               SELECT 1 FROM core_snapshots d
               WHERE d.base_version_id = c.id AND d.id NOT IN (SELECT id FROM expired))
           FOR UPDATE OF c SKIP LOCKED
         )
         DELETE FROM core_snapshots WHERE id IN (SELECT id FROM deletable)",
    )
    .bind(workspace_id)
    .bind(cutoff)
    .bind(retention.max_versions)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// Applies the retention of the workspace's plan.
pub async fn prune_for_plan(pool: &PgPool, workspace_id: Uuid) -> Result<u64, PersistenceError> {
    let plan = plan_of_workspace(pool, workspace_id).await?;
    prune(pool, workspace_id, retention_for_plan(&plan), Utc::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paid_plans_keep_more_than_free() {
        let free = retention_for_plan("free");
        assert_eq!(free.max_age_days, Some(30));
        assert_eq!(free.max_versions, Some(50));
        assert_eq!(retention_for_plan("no-such-plan"), free);
        for paid in ["team", "enterprise"] {
            let kept = retention_for_plan(paid);
            assert!(kept.max_versions > free.max_versions);
            assert!(kept.max_age_days.is_none_or(|d| d > 30));
        }
    }

    #[test]
    fn kinds_round_trip_through_their_column_text() {
        for kind in [
            VersionKind::Named,
            VersionKind::Auto,
            VersionKind::BeforeRestore,
        ] {
            assert_eq!(VersionKind::parse(kind.as_str()).ok(), Some(kind));
        }
        assert!(VersionKind::parse("other").is_err());
    }
}
