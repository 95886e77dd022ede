//! `asset_collections`: folders of a warehouse, nested through `parent_collection_id` (the seed's
//! self-reference). Names are unique per warehouse (the seed's `(warehouse_id, name)` key). A
//! collection has no soft delete in the seed: deleting one removes the row, its templates and
//! invader definitions keep living outside any folder (`ON DELETE SET NULL`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{audit_in, check_collection, WarehouseError, LIVE_WAREHOUSE};
use crate::error::PersistenceError;
use crate::iam::audit::Actor;
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Collection {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    /// The organization owning the warehouse.
    pub org_id: Uuid,
    pub name: String,
    pub parent_collection_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "c.id, c.warehouse_id, w.owner_id AS org_id, c.name, c.parent_collection_id, c.created_at";

/// Creates a collection in `warehouse_id` of `org_id`, optionally under `parent` (audited
/// `asset_collection.created`).
pub async fn create(
    pool: &PgPool,
    org_id: Uuid,
    warehouse_id: Uuid,
    name: &str,
    parent: Option<Uuid>,
    actor: &Actor<'_>,
) -> Result<Collection, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    check_collection(&mut tx, warehouse_id, parent, "parent_collection_id").await?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO asset_collections (warehouse_id, name, parent_collection_id)
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(warehouse_id)
    .bind(name)
    .bind(parent)
    .fetch_one(&mut *tx)
    .await?;
    let created = fetch(&mut tx, id).await?;
    let metadata = serde_json::json!({ "name": name, "parent_collection_id": parent });
    let target = ("asset_collection", id);
    audit_in(
        &mut tx,
        actor,
        org_id,
        "asset_collection.created",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

async fn fetch(conn: &mut PgConnection, id: Uuid) -> Result<Collection, WarehouseError> {
    let found: Option<Collection> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM asset_collections c JOIN warehouses w ON w.id = c.warehouse_id
         WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    found.ok_or(WarehouseError::Iam(IamError::NotFound("collection")))
}

/// One page of a warehouse's collections, oldest first; `parent` keeps the children of one
/// collection only (`Some(None)`: the top level).
pub async fn list(
    pool: &PgPool,
    warehouse_id: Uuid,
    parent: Option<Option<Uuid>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Collection>, PersistenceError> {
    let (at, id) = after.unzip();
    let filter_parent = parent.is_some();
    let parent_id = parent.flatten();
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM asset_collections c JOIN warehouses w ON w.id = c.warehouse_id
         WHERE c.warehouse_id = $1
           AND (NOT $2 OR c.parent_collection_id IS NOT DISTINCT FROM $3)
           AND ($4::timestamptz IS NULL OR (c.created_at, c.id) > ($4, $5))
         ORDER BY c.created_at, c.id LIMIT $6"
    ))
    .bind(warehouse_id)
    .bind(filter_parent)
    .bind(parent_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A collection of a live warehouse of a live organization.
pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<Collection>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM asset_collections c JOIN warehouses w ON w.id = c.warehouse_id
         WHERE c.id = $1 AND {LIVE_WAREHOUSE}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// What to change; `parent: Some(None)` moves the collection to the top level.
#[derive(Debug, Default)]
pub struct CollectionPatch<'a> {
    pub name: Option<&'a str>,
    pub parent: Option<Option<Uuid>>,
}

/// Renames or moves a collection (audited `asset_collection.updated`). A move under itself or
/// one of its descendants is refused.
pub async fn update(
    pool: &PgPool,
    current: &Collection,
    patch: CollectionPatch<'_>,
    actor: &Actor<'_>,
) -> Result<Collection, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    if let Some(parent) = patch.parent {
        check_collection(
            &mut tx,
            current.warehouse_id,
            parent,
            "parent_collection_id",
        )
        .await?;
        if let Some(parent) = parent {
            if is_within(&mut tx, parent, current.id).await? {
                return Err(WarehouseError::CollectionCycle);
            }
        }
    }
    let changed = sqlx::query(
        "UPDATE asset_collections
         SET name = COALESCE($2, name),
             parent_collection_id = CASE WHEN $3 THEN $4 ELSE parent_collection_id END
         WHERE id = $1",
    )
    .bind(current.id)
    .bind(patch.name)
    .bind(patch.parent.is_some())
    .bind(patch.parent.flatten())
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(IamError::NotFound("collection").into());
    }
    let updated = fetch(&mut tx, current.id).await?;
    let metadata = serde_json::json!({
        "name": patch.name, "parent_collection_id": patch.parent,
    });
    let target = ("asset_collection", current.id);
    let org = current.org_id;
    audit_in(
        &mut tx,
        actor,
        org,
        "asset_collection.updated",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Whether `candidate` is `ancestor` or lies below it (walks up from `candidate`; the walk is
/// bounded by the depth of the tree, which has no cycles because every move goes through here).
async fn is_within(
    conn: &mut PgConnection,
    candidate: Uuid,
    ancestor: Uuid,
) -> Result<bool, WarehouseError> {
    let found: Option<i32> = sqlx::query_scalar(
        "WITH RECURSIVE up(id, parent, depth) AS (
             SELECT id, parent_collection_id, 0 FROM asset_collections WHERE id = $1
             UNION ALL
             SELECT c.id, c.parent_collection_id, up.depth + 1
             FROM asset_collections c JOIN up ON c.id = up.parent
             WHERE up.depth < 10000
         )
         SELECT 1 FROM up WHERE id = $2 LIMIT 1",
    )
    .bind(candidate)
    .bind(ancestor)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// Deletes an empty-of-folders collection (audited `asset_collection.deleted`); its templates and
/// definitions stay in the warehouse without a folder.
pub async fn delete(
    pool: &PgPool,
    current: &Collection,
    actor: &Actor<'_>,
) -> Result<(), WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, current.org_id).await?;
    let children: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM asset_collections WHERE parent_collection_id = $1",
    )
    .bind(current.id)
    .fetch_one(&mut *tx)
    .await?;
    if children > 0 {
        return Err(WarehouseError::CollectionNotEmpty);
    }
    let deleted = sqlx::query("DELETE FROM asset_collections WHERE id = $1")
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("collection").into());
    }
    let metadata = serde_json::json!({ "name": current.name });
    let target = ("asset_collection", current.id);
    let org = current.org_id;
    audit_in(
        &mut tx,
        actor,
        org,
        "asset_collection.deleted",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
