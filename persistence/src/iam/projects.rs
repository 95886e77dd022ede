//! `projects`: the containers of workspaces inside an organization.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

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
    pub created_by: Uuid,
}

pub async fn create(pool: &PgPool, project: NewProject<'_>) -> Result<Project, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO projects (org_id, name, slug, description, created_by_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING {PROJECT_COLUMNS}"
    ))
    .bind(project.org_id)
    .bind(project.name)
    .bind(project.slug)
    .bind(project.description)
    .bind(project.created_by)
    .fetch_one(pool)
    .await?)
}

pub async fn list_for_org(pool: &PgPool, org_id: Uuid) -> Result<Vec<Project>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects
         WHERE org_id = $1 AND deleted_at IS NULL ORDER BY created_at, id"
    ))
    .bind(org_id)
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
