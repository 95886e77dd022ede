//! `projects`: the containers of workspaces inside an organization.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::billing::{self, Resource};
use crate::iam::orgs::{self, IamError};
use crate::iam::workspaces;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Project {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub visibility: String,
    pub status: String,
    pub created_by_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PROJECT_COLUMNS: &str =
    "id, org_id, name, slug, description, visibility, status, created_by_id, created_at, updated_at";

pub struct NewProject<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    /// `PRIVATE`, `INTERNAL` or `PUBLIC` (the caller validates).
    pub visibility: &'a str,
}

/// Fields of a project to change; `None` keeps the current value and an empty description clears
/// it.
#[derive(Debug, Default)]
pub struct ProjectPatch<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
    pub description: Option<&'a str>,
    pub visibility: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// Creates a project within the plan's project quota (audited as `project.created`). A live
/// duplicate slug is a unique violation of `projects_org_id_slug_live_key`.
pub async fn create(
    pool: &PgPool,
    project: NewProject<'_>,
    actor: &Actor<'_>,
) -> Result<Project, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, project.org_id).await?;
    billing::check_quota(&mut tx, project.org_id, Resource::Projects, 0).await?;
    let created: Project = sqlx::query_as(&format!(
        "INSERT INTO projects (org_id, name, slug, description, visibility, created_by_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(project.org_id)
    .bind(project.name)
    .bind(project.slug)
    .bind(project.description)
    .bind(project.visibility)
    .bind(actor.user_id)
    .fetch_one(&mut *tx)
    .await?;
    billing::refresh_usage(&mut tx, project.org_id).await?;
    let metadata = serde_json::json!({ "name": created.name, "slug": created.slug });
    let entry = actor.entry(
        created.org_id,
        "project.created",
        "project",
        created.id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(created)
}

/// One page of live projects, oldest first, after the keyset `(created_at, id)`.
pub async fn list_for_org(
    pool: &PgPool,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Project>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects
         WHERE org_id = $1 AND deleted_at IS NULL
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(org_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live project in a live organization.
pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<Project>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects p
         WHERE id = $1 AND deleted_at IS NULL
           AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = p.org_id AND o.deleted_at IS NULL)"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Changes a live project of `org_id` (audited as `project.updated`).
pub async fn update(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    patch: ProjectPatch<'_>,
    actor: &Actor<'_>,
) -> Result<Project, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let project: Project = sqlx::query_as(&format!(
        "UPDATE projects
         SET name = COALESCE($3, name), slug = COALESCE($4, slug),
             description = CASE WHEN $5::text IS NULL THEN description ELSE NULLIF($5, '') END,
             visibility = COALESCE($6, visibility), status = COALESCE($7, status),
             updated_at = NOW()
         WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
         RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(org_id)
    .bind(id)
    .bind(patch.name)
    .bind(patch.slug)
    .bind(patch.description)
    .bind(patch.visibility)
    .bind(patch.status)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("project"))?;
    let metadata = serde_json::json!({
        "name": patch.name, "slug": patch.slug, "description": patch.description,
        "visibility": patch.visibility, "status": patch.status,
    });
    let entry = actor.entry(org_id, "project.updated", "project", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(project)
}

/// Soft-deletes a live project of `org_id` and its live workspaces (audited as
/// `project.deleted`). Returns the ids of the workspaces deleted with it, whose live sockets must
/// be closed.
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<Vec<Uuid>, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let deleted = sqlx::query(
        "UPDATE projects SET deleted_at = NOW(), updated_at = NOW()
         WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("project"));
    }
    let workspaces: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE workspaces SET deleted_at = NOW()
         WHERE project_id = $1 AND deleted_at IS NULL RETURNING id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let workspace_ids: Vec<Uuid> = workspaces.into_iter().map(|(w,)| w).collect();
    workspaces::mark_canvas_rows_deleted(&mut tx, &workspace_ids).await?;
    billing::refresh_usage(&mut tx, org_id).await?;
    let metadata = serde_json::json!({ "workspace_ids": workspace_ids });
    let entry = actor.entry(org_id, "project.deleted", "project", id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(workspace_ids)
}
