//! `assets_block_templates`: blocks and relations saved for reuse. `structure_data` holds them in
//! the shape the server defines (`server/src/warehouse/structure.rs`); this module stores it
//! as given.

use std::collections::HashSet;

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
pub struct Template {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    /// The organization owning the warehouse.
    pub org_id: Uuid,
    pub collection_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub thumbnail_url: Option<String>,
    pub structure_data: Value,
    pub version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "t.id, t.warehouse_id, w.owner_id AS org_id, t.collection_id, t.name,
    t.description, t.thumbnail_url, t.structure_data, t.version, t.created_at, t.updated_at";

pub struct NewTemplate<'a> {
    pub org_id: Uuid,
    pub warehouse_id: Uuid,
    pub collection_id: Option<Uuid>,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub thumbnail_url: Option<&'a str>,
    pub structure_data: &'a Value,
    pub version: Option<&'a str>,
}

/// Creates a template (audited `asset_template.created`).
pub async fn create(
    pool: &PgPool,
    new: NewTemplate<'_>,
    actor: &Actor<'_>,
) -> Result<Template, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, new.org_id).await?;
    check_collection(
        &mut tx,
        new.warehouse_id,
        new.collection_id,
        "collection_id",
    )
    .await?;
    let created: Template = sqlx::query_as(&format!(
        "WITH t AS (
             INSERT INTO assets_block_templates
               (warehouse_id, collection_id, name, description, thumbnail_url, structure_data,
                version)
             VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, '1.0.0')) RETURNING *
         )
         SELECT {COLUMNS} FROM t JOIN warehouses w ON w.id = t.warehouse_id"
    ))
    .bind(new.warehouse_id)
    .bind(new.collection_id)
    .bind(new.name)
    .bind(new.description)
    .bind(new.thumbnail_url)
    .bind(new.structure_data)
    .bind(new.version)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({ "name": created.name, "warehouse_id": new.warehouse_id });
    let target = ("asset_template", created.id);
    audit_in(
        &mut tx,
        actor,
        new.org_id,
        "asset_template.created",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// One page of a warehouse's live templates, oldest first, optionally of one collection.
pub async fn list(
    pool: &PgPool,
    warehouse_id: Uuid,
    collection_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Template>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets_block_templates t JOIN warehouses w ON w.id = t.warehouse_id
         WHERE t.warehouse_id = $1 AND t.deleted_at IS NULL
           AND ($2::uuid IS NULL OR t.collection_id = $2)
           AND ($3::timestamptz IS NULL OR (t.created_at, t.id) > ($3, $4))
         ORDER BY t.created_at, t.id LIMIT $5"
    ))
    .bind(warehouse_id)
    .bind(collection_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live template of a live warehouse of a live organization.
pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<Template>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM assets_block_templates t JOIN warehouses w ON w.id = t.warehouse_id
         WHERE t.id = $1 AND t.deleted_at IS NULL AND {LIVE_WAREHOUSE}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Of `ids`, those that are live templates of `org_id`'s live warehouse.
pub async fn live_ids_of_org(
    pool: &PgPool,
    org_id: Uuid,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, PersistenceError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT t.id FROM assets_block_templates t JOIN warehouses w ON w.id = t.warehouse_id
         WHERE t.id = ANY($1) AND w.owner_id = $2 AND t.deleted_at IS NULL AND {LIVE_WAREHOUSE}"
    ))
    .bind(ids)
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    Ok(found.into_iter().collect())
}

/// Fields to change; `None` keeps the value, `collection_id: Some(None)` takes it out of its
/// folder, an empty description or thumbnail clears it.
#[derive(Debug, Default)]
pub struct TemplatePatch<'a> {
    pub collection_id: Option<Option<Uuid>>,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub thumbnail_url: Option<&'a str>,
    pub structure_data: Option<&'a Value>,
    pub version: Option<&'a str>,
}

/// Changes a live template (audited `asset_template.updated`).
pub async fn update(
    pool: &PgPool,
    current: &Template,
    patch: TemplatePatch<'_>,
    actor: &Actor<'_>,
) -> Result<Template, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    if let Some(collection) = patch.collection_id {
        check_collection(&mut tx, current.warehouse_id, collection, "collection_id").await?;
    }
    let updated: Template = sqlx::query_as(&format!(
        "WITH t AS (
             UPDATE assets_block_templates
             SET collection_id = CASE WHEN $2 THEN $3 ELSE collection_id END,
                 name = COALESCE($4, name),
                 description = CASE WHEN $5::text IS NULL THEN description ELSE NULLIF($5, '') END,
                 thumbnail_url =
                   CASE WHEN $6::text IS NULL THEN thumbnail_url ELSE NULLIF($6, '') END,
                 structure_data = COALESCE($7, structure_data),
                 version = COALESCE($8, version)
             WHERE id = $1 AND deleted_at IS NULL RETURNING *
         )
         SELECT {COLUMNS} FROM t JOIN warehouses w ON w.id = t.warehouse_id"
    ))
    .bind(current.id)
    .bind(patch.collection_id.is_some())
    .bind(patch.collection_id.flatten())
    .bind(patch.name)
    .bind(patch.description)
    .bind(patch.thumbnail_url)
    .bind(patch.structure_data)
    .bind(patch.version)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("template"))?;
    let metadata = serde_json::json!({
        "name": patch.name, "collection_id": patch.collection_id, "version": patch.version,
        "structure_changed": patch.structure_data.is_some(),
    });
    let target = ("asset_template", current.id);
    let org = current.org_id;
    audit_in(
        &mut tx,
        actor,
        org,
        "asset_template.updated",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Soft-deletes a live template (audited `asset_template.deleted`). Blocks made from it keep their
/// `origin_asset_id`: the row still exists.
pub async fn soft_delete(
    pool: &PgPool,
    current: &Template,
    actor: &Actor<'_>,
) -> Result<(), WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    let deleted = sqlx::query(
        "UPDATE assets_block_templates SET deleted_at = NOW()
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(current.id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("template").into());
    }
    let metadata = serde_json::json!({ "name": current.name });
    let target = ("asset_template", current.id);
    let org = current.org_id;
    audit_in(
        &mut tx,
        actor,
        org,
        "asset_template.deleted",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
