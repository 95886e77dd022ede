//! `assets_invader_definitions`: behaviour plugins a block can carry. `config_schema` is a JSON
//! Schema the server compiles before storing it; a block's invader config must satisfy it.
//! `code` is unique among the live definitions of one warehouse (migration 0011).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::{audit_in, check_collection, WarehouseError, LIVE_WAREHOUSE};
use crate::error::PersistenceError;
use crate::iam::audit::Actor;
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InvaderDefinition {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    /// The organization owning the warehouse.
    pub org_id: Uuid,
    pub collection_id: Option<Uuid>,
    pub code: String,
    pub name: String,
    pub category: String,
    pub config_schema: Value,
    pub compiler_hooks: Value,
    pub version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "d.id, d.warehouse_id, w.owner_id AS org_id, d.collection_id, d.code,
    d.name, d.category, d.config_schema, d.compiler_hooks, d.version, d.created_at, d.updated_at";

pub struct NewInvader<'a> {
    pub org_id: Uuid,
    pub warehouse_id: Uuid,
    pub collection_id: Option<Uuid>,
    pub code: &'a str,
    pub name: &'a str,
    pub category: &'a str,
    pub config_schema: &'a Value,
    pub compiler_hooks: &'a Value,
    pub version: Option<&'a str>,
}

/// Creates a definition (audited `invader_definition.created`). A live duplicate `code` in the
/// warehouse is a unique violation of `assets_invader_definitions_warehouse_code_live_key`.
pub async fn create(
    pool: &PgPool,
    new: NewInvader<'_>,
    actor: &Actor<'_>,
) -> Result<InvaderDefinition, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, new.org_id).await?;
    check_collection(
        &mut tx,
        new.warehouse_id,
        new.collection_id,
        "collection_id",
    )
    .await?;
    let created: InvaderDefinition = sqlx::query_as(&format!(
        "WITH d AS (
             INSERT INTO assets_invader_definitions
               (warehouse_id, collection_id, code, name, category, config_schema, compiler_hooks,
                version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, '1.0.0')) RETURNING *
         )
         SELECT {COLUMNS} FROM d JOIN warehouses w ON w.id = d.warehouse_id"
    ))
    .bind(new.warehouse_id)
    .bind(new.collection_id)
    .bind(new.code)
    .bind(new.name)
    .bind(new.category)
    .bind(new.config_schema)
    .bind(new.compiler_hooks)
    .bind(new.version)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({ "code": created.code, "name": created.name });
    let target = ("invader_definition", created.id);
    let action = "invader_definition.created";
    audit_in(&mut tx, actor, new.org_id, action, target, metadata).await?;
    tx.commit().await?;
    Ok(created)
}

/// One page of a warehouse's live definitions, oldest first, optionally of one collection.
pub async fn list(
    pool: &PgPool,
    warehouse_id: Uuid,
    collection_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvaderDefinition>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets_invader_definitions d
         JOIN warehouses w ON w.id = d.warehouse_id
         WHERE d.warehouse_id = $1 AND d.deleted_at IS NULL
           AND ($2::uuid IS NULL OR d.collection_id = $2)
           AND ($3::timestamptz IS NULL OR (d.created_at, d.id) > ($3, $4))
         ORDER BY d.created_at, d.id LIMIT $5"
    ))
    .bind(warehouse_id)
    .bind(collection_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live definition of a live warehouse of a live organization.
pub async fn find_live(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<InvaderDefinition>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets_invader_definitions d
         JOIN warehouses w ON w.id = d.warehouse_id
         WHERE d.id = $1 AND d.deleted_at IS NULL AND {LIVE_WAREHOUSE}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Of `ids`, the live definitions of `org_id`'s live warehouse, by id.
pub async fn live_of_org(
    pool: &PgPool,
    org_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, InvaderDefinition>, PersistenceError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<InvaderDefinition> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets_invader_definitions d
         JOIN warehouses w ON w.id = d.warehouse_id
         WHERE d.id = ANY($1) AND w.owner_id = $2 AND d.deleted_at IS NULL AND {LIVE_WAREHOUSE}"
    ))
    .bind(ids)
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().map(|d| (d.id, d)).collect())
}

/// The `config_schema` of each of `ids` that is a live definition of the organization owning
/// `workspace_id` (the projection validates invader configs against them).
pub async fn schemas_for_workspace(
    pool: &PgPool,
    workspace_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Value>, PersistenceError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(&format!(
        "SELECT d.id, d.config_schema FROM assets_invader_definitions d
         JOIN warehouses w ON w.id = d.warehouse_id
         WHERE d.id = ANY($1) AND d.deleted_at IS NULL AND {LIVE_WAREHOUSE}
           AND w.owner_id = (SELECT p.org_id FROM workspaces ws
                             JOIN projects p ON p.id = ws.project_id WHERE ws.id = $2)"
    ))
    .bind(ids)
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Fields to change; `None` keeps the value, `collection_id: Some(None)` takes it out of its
/// folder.
#[derive(Debug, Default)]
pub struct InvaderPatch<'a> {
    pub collection_id: Option<Option<Uuid>>,
    pub code: Option<&'a str>,
    pub name: Option<&'a str>,
    pub category: Option<&'a str>,
    pub config_schema: Option<&'a Value>,
    pub compiler_hooks: Option<&'a Value>,
    pub version: Option<&'a str>,
}

/// Changes a live definition (audited `invader_definition.updated`).
pub async fn update(
    pool: &PgPool,
    current: &InvaderDefinition,
    patch: InvaderPatch<'_>,
    actor: &Actor<'_>,
) -> Result<InvaderDefinition, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    if let Some(collection) = patch.collection_id {
        check_collection(&mut tx, current.warehouse_id, collection, "collection_id").await?;
    }
    let updated: InvaderDefinition = sqlx::query_as(&format!(
        "WITH d AS (
             UPDATE assets_invader_definitions
             SET collection_id = CASE WHEN $2 THEN $3 ELSE collection_id END,
                 code = COALESCE($4, code), name = COALESCE($5, name),
                 category = COALESCE($6, category),
                 config_schema = COALESCE($7, config_schema),
                 compiler_hooks = COALESCE($8, compiler_hooks),
                 version = COALESCE($9, version)
             WHERE id = $1 AND deleted_at IS NULL RETURNING *
         )
         SELECT {COLUMNS} FROM d JOIN warehouses w ON w.id = d.warehouse_id"
    ))
    .bind(current.id)
    .bind(patch.collection_id.is_some())
    .bind(patch.collection_id.flatten())
    .bind(patch.code)
    .bind(patch.name)
    .bind(patch.category)
    .bind(patch.config_schema)
    .bind(patch.compiler_hooks)
    .bind(patch.version)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("invader definition"))?;
    let metadata = serde_json::json!({
        "code": patch.code, "name": patch.name, "category": patch.category,
        "collection_id": patch.collection_id, "version": patch.version,
        "schema_changed": patch.config_schema.is_some(),
    });
    let target = ("invader_definition", current.id);
    let (org, action) = (current.org_id, "invader_definition.updated");
    audit_in(&mut tx, actor, org, action, target, metadata).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Soft-deletes a live definition (audited `invader_definition.deleted`). Blocks still naming it
/// lose the usage at the next projection (§4 Rule 6: only live definitions of the organization).
pub async fn soft_delete(
    pool: &PgPool,
    current: &InvaderDefinition,
    actor: &Actor<'_>,
) -> Result<(), WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    let deleted = sqlx::query(
        "UPDATE assets_invader_definitions SET deleted_at = NOW()
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(current.id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("invader definition").into());
    }
    let metadata = serde_json::json!({ "code": current.code });
    let target = ("invader_definition", current.id);
    let (org, action) = (current.org_id, "invader_definition.deleted");
    audit_in(&mut tx, actor, org, action, target, metadata).await?;
    tx.commit().await?;
    Ok(())
}
