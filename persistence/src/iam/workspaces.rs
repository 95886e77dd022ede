//! `workspaces`: one canvas document each.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::billing::{self, Resource};
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Workspace {
    pub id: Uuid,
    pub project_id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub workspace_type: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Everything an authorization decision about a workspace needs, in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceAccess {
    pub workspace_id: Uuid,
    pub project_id: Uuid,
    pub org_id: Uuid,
    /// The caller's permissions in the owning organization; `None` when not a member.
    pub permissions: Option<Vec<String>>,
    /// The project is ARCHIVED: its workspaces are read-only.
    pub project_archived: bool,
}

const WORKSPACE_COLUMNS: &str =
    "w.id, w.project_id, p.org_id, w.name, w.type, w.created_by, w.created_at";

/// The joins that make a workspace visible: it, its project and its organization are all live.
const LIVE_WORKSPACE_FROM: &str = "workspaces w
     JOIN projects p ON p.id = w.project_id AND p.deleted_at IS NULL
     JOIN organizations o ON o.id = p.org_id AND o.deleted_at IS NULL";

/// The kinds of workspace: each is one canvas document; the type tells clients how to show it.
pub const WORKSPACE_TYPES: [&str; 2] = ["CANVAS", "WHITEBOARD"];

/// The project status under which its workspaces are read-only.
pub const ARCHIVED: &str = "ARCHIVED";

/// Why a write to a workspace (create, change, delete) was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceWriteError {
    #[error(transparent)]
    Iam(#[from] IamError),
    /// The workspace's project is `ARCHIVED`: its workspaces are read-only until it is active.
    #[error("the project is archived")]
    ProjectArchived,
}

impl From<sqlx::Error> for WorkspaceWriteError {
    fn from(err: sqlx::Error) -> Self {
        WorkspaceWriteError::Iam(err.into())
    }
}

impl From<PersistenceError> for WorkspaceWriteError {
    fn from(err: PersistenceError) -> Self {
        WorkspaceWriteError::Iam(err.into())
    }
}

/// The status of the live project `project_id` of `org_id`, refusing an archived one. Call under
/// the org lock: archiving takes it too, so the answer holds until the transaction ends.
async fn ensure_project_writable(
    conn: &mut PgConnection,
    org_id: Uuid,
    project_id: Uuid,
) -> Result<(), WorkspaceWriteError> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM projects WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
    )
    .bind(project_id)
    .bind(org_id)
    .fetch_optional(conn)
    .await?;
    match status.as_deref() {
        None => Err(IamError::NotFound("project").into()),
        Some(ARCHIVED) => Err(WorkspaceWriteError::ProjectArchived),
        Some(_) => Ok(()),
    }
}

/// The live workspaces of a project (the sockets to re-check when its status changes).
pub async fn ids_of_project(
    pool: &PgPool,
    project_id: Uuid,
) -> Result<Vec<Uuid>, PersistenceError> {
    Ok(
        sqlx::query_scalar(
            "SELECT id FROM workspaces WHERE project_id = $1 AND deleted_at IS NULL",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?,
    )
}

/// Marks the blocks and relations of `workspace_ids` deleted, in the transaction that deletes
/// the workspaces, so SQL readers of `core_blocks`/`core_relations` stop seeing them as live.
pub async fn mark_canvas_rows_deleted(
    conn: &mut PgConnection,
    workspace_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    for table in ["core_relations", "core_blocks"] {
        sqlx::query(&format!(
            "UPDATE {table} SET deleted_at = NOW()
             WHERE workspace_id = ANY($1) AND deleted_at IS NULL"
        ))
        .bind(workspace_ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Fields of a workspace to change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct WorkspacePatch<'a> {
    pub name: Option<&'a str>,
    pub workspace_type: Option<&'a str>,
}

/// Creates a workspace in a live project of `org_id` within the plan's workspace quota (audited
/// as `workspace.created`).
pub async fn create(
    pool: &PgPool,
    org_id: Uuid,
    project_id: Uuid,
    name: &str,
    workspace_type: &str,
    actor: &Actor<'_>,
) -> Result<Workspace, WorkspaceWriteError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    ensure_project_writable(&mut tx, org_id, project_id).await?;
    billing::check_quota(&mut tx, org_id, Resource::Workspaces, 0).await?;
    let workspace: Workspace = sqlx::query_as(&format!(
        "WITH w AS (
           INSERT INTO workspaces (project_id, name, type, created_by)
           VALUES ($1, $2, $3, $4) RETURNING *)
         SELECT {WORKSPACE_COLUMNS} FROM w JOIN projects p ON p.id = w.project_id"
    ))
    .bind(project_id)
    .bind(name)
    .bind(workspace_type)
    .bind(actor.user_id)
    .fetch_one(&mut *tx)
    .await?;
    billing::refresh_usage(&mut tx, org_id).await?;
    let metadata = serde_json::json!({ "project_id": project_id, "name": name });
    let entry = actor.entry(
        org_id,
        "workspace.created",
        "workspace",
        workspace.id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(workspace)
}

/// One page of a project's live workspaces, oldest first, after the keyset `(created_at, id)`.
pub async fn list_for_project(
    pool: &PgPool,
    project_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Workspace>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM {LIVE_WORKSPACE_FROM}
         WHERE w.project_id = $1 AND w.deleted_at IS NULL
           AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2, $3))
         ORDER BY w.created_at, w.id LIMIT $4"
    ))
    .bind(project_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Renames and/or retypes a live workspace of `org_id` (audited as `workspace.updated`).
pub async fn update(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    patch: WorkspacePatch<'_>,
    actor: &Actor<'_>,
) -> Result<Workspace, WorkspaceWriteError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let project_id = project_of(&mut tx, id).await?;
    ensure_project_writable(&mut tx, org_id, project_id).await?;
    let workspace: Workspace = sqlx::query_as(&format!(
        "WITH w AS (
           UPDATE workspaces w SET name = COALESCE($3, w.name), type = COALESCE($4, w.type)
           FROM projects p
           WHERE w.id = $2 AND w.deleted_at IS NULL AND p.id = w.project_id AND p.org_id = $1
             AND p.deleted_at IS NULL
           RETURNING w.*)
         SELECT {WORKSPACE_COLUMNS} FROM w JOIN projects p ON p.id = w.project_id"
    ))
    .bind(org_id)
    .bind(id)
    .bind(patch.name)
    .bind(patch.workspace_type)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("workspace"))?;
    let metadata = serde_json::json!({ "name": patch.name, "type": patch.workspace_type });
    let entry = actor.entry(org_id, "workspace.updated", "workspace", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(workspace)
}

/// The project of a live workspace (404 for a missing or deleted one).
async fn project_of(conn: &mut PgConnection, id: Uuid) -> Result<Uuid, WorkspaceWriteError> {
    let project: Option<Uuid> = sqlx::query_scalar(
        "SELECT project_id FROM workspaces WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    project.ok_or(IamError::NotFound("workspace").into())
}

/// Soft-deletes a live workspace of `org_id` with its blocks and relations (audited as
/// `workspace.deleted`). The caller must close the workspace's live sockets.
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), WorkspaceWriteError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let project_id = project_of(&mut tx, id).await?;
    ensure_project_writable(&mut tx, org_id, project_id).await?;
    let deleted = sqlx::query(
        "UPDATE workspaces w SET deleted_at = NOW() FROM projects p
         WHERE w.id = $2 AND w.deleted_at IS NULL AND p.id = w.project_id AND p.org_id = $1
           AND p.deleted_at IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("workspace").into());
    }
    mark_canvas_rows_deleted(&mut tx, &[id]).await?;
    billing::refresh_usage(&mut tx, org_id).await?;
    audit::record(
        &mut *tx,
        actor.entry(org_id, "workspace.deleted", "workspace", id, None),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<Workspace>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM {LIVE_WORKSPACE_FROM} WHERE w.id = $1 AND w.deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The live workspace `id` and `user_id`'s permissions in its organization.
pub async fn access(
    pool: &PgPool,
    id: Uuid,
    user_id: Uuid,
) -> Result<Option<WorkspaceAccess>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT w.id AS workspace_id, w.project_id, p.org_id, r.permissions,
                p.status = '{ARCHIVED}' AS project_archived
         FROM {LIVE_WORKSPACE_FROM}
         LEFT JOIN org_members m ON m.org_id = p.org_id AND m.user_id = $2
         LEFT JOIN roles r ON r.id = m.role_id
         WHERE w.id = $1 AND w.deleted_at IS NULL"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}
