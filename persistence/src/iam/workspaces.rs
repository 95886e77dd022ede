//! `workspaces`: one canvas document each.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

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
}

const WORKSPACE_COLUMNS: &str =
    "w.id, w.project_id, p.org_id, w.name, w.type, w.created_by, w.created_at";

/// The joins that make a workspace visible: it, its project and its organization are all live.
const LIVE_WORKSPACE_FROM: &str = "workspaces w
     JOIN projects p ON p.id = w.project_id AND p.deleted_at IS NULL
     JOIN organizations o ON o.id = p.org_id AND o.deleted_at IS NULL";

pub async fn create(
    pool: &PgPool,
    project_id: Uuid,
    name: &str,
    workspace_type: &str,
    created_by: Uuid,
) -> Result<Workspace, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "WITH w AS (
           INSERT INTO workspaces (project_id, name, type, created_by)
           VALUES ($1, $2, $3, $4) RETURNING *)
         SELECT {WORKSPACE_COLUMNS} FROM w JOIN projects p ON p.id = w.project_id"
    ))
    .bind(project_id)
    .bind(name)
    .bind(workspace_type)
    .bind(created_by)
    .fetch_one(pool)
    .await?)
}

pub async fn list_for_project(
    pool: &PgPool,
    project_id: Uuid,
) -> Result<Vec<Workspace>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM {LIVE_WORKSPACE_FROM}
         WHERE w.project_id = $1 AND w.deleted_at IS NULL ORDER BY w.created_at, w.id"
    ))
    .bind(project_id)
    .fetch_all(pool)
    .await?)
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
        "SELECT w.id AS workspace_id, w.project_id, p.org_id, r.permissions
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
