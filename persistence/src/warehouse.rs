//! The warehouse (docs/design.md §17): an organization's store of reusable assets — folders
//! ([`collections`]), block templates ([`templates`]) and invader definitions ([`invaders`]).
//!
//! The seed lets a warehouse belong to a user or an organization (`owner_type`); Nox Sync only
//! creates and serves organization warehouses, at most one live per organization (the seed's
//! unique index). Every mutation takes the organization's row lock and writes its audit row in
//! the same transaction, like the rest of [`crate::iam`]. Every read that serves a caller goes
//! through the owning organization, so another tenant's assets are simply not found.

pub mod collections;
pub mod invaders;
pub mod templates;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::{self, IamError};

/// Why a warehouse mutation was refused.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error(transparent)]
    Iam(#[from] IamError),
    /// A referenced id (the named field) is not an asset of the same warehouse.
    #[error("`{0}` does not name an entry of this warehouse")]
    InvalidReference(&'static str),
    /// Moving a collection under itself or one of its descendants.
    #[error("a collection cannot be moved under itself or one of its sub-collections")]
    CollectionCycle,
    /// Deleting a collection that still holds sub-collections.
    #[error("the collection still has sub-collections")]
    CollectionNotEmpty,
}

impl From<sqlx::Error> for WarehouseError {
    fn from(err: sqlx::Error) -> Self {
        WarehouseError::Iam(err.into())
    }
}

impl From<PersistenceError> for WarehouseError {
    fn from(err: PersistenceError) -> Self {
        WarehouseError::Iam(err.into())
    }
}

impl WarehouseError {
    /// The violated unique constraint, when this is a unique violation.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            WarehouseError::Iam(e) => e.unique_violation(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Warehouse {
    pub id: Uuid,
    /// The owning organization (`owner_id` with `owner_type = 'ORG'`).
    pub org_id: Uuid,
    pub name: Option<String>,
    pub is_system: bool,
    pub created_at: DateTime<Utc>,
}

const WAREHOUSE_COLUMNS: &str = "w.id, w.owner_id AS org_id, w.name, w.is_system, w.created_at";

/// SQL condition: warehouse `w` is live and belongs to a live organization.
pub(crate) const LIVE_WAREHOUSE: &str = "w.deleted_at IS NULL AND w.owner_type = 'ORG'
     AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = w.owner_id AND o.deleted_at IS NULL)";

/// Writes `action` on `target` to the audit log inside `conn`'s transaction.
pub(crate) async fn audit_in(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    org_id: Uuid,
    action: &'static str,
    target: (&'static str, Uuid),
    metadata: serde_json::Value,
) -> Result<(), PersistenceError> {
    let entry = actor.entry(org_id, action, target.0, target.1, Some(metadata));
    audit::record(&mut *conn, entry).await
}

/// Creates the organization's warehouse (audited `warehouse.created`). A second live warehouse
/// of the same organization is a unique violation of `warehouses_owner_id_owner_type_live_key`.
pub async fn create(
    pool: &PgPool,
    org_id: Uuid,
    name: Option<&str>,
    actor: &Actor<'_>,
) -> Result<Warehouse, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let created: Warehouse = sqlx::query_as(&format!(
        "INSERT INTO warehouses AS w (owner_id, owner_type, name) VALUES ($1, 'ORG', $2)
         RETURNING {WAREHOUSE_COLUMNS}"
    ))
    .bind(org_id)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    let target = ("warehouse", created.id);
    let metadata = serde_json::json!({ "name": created.name });
    audit_in(
        &mut tx,
        actor,
        org_id,
        "warehouse.created",
        target,
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// One page of the organization's live warehouses (at most one today), oldest first.
pub async fn list_for_org(
    pool: &PgPool,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Warehouse>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {WAREHOUSE_COLUMNS} FROM warehouses w
         WHERE w.owner_id = $1 AND {LIVE_WAREHOUSE}
           AND ($2::timestamptz IS NULL OR (w.created_at, w.id) > ($2, $3))
         ORDER BY w.created_at, w.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live organization warehouse of a live organization.
pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<Warehouse>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {WAREHOUSE_COLUMNS} FROM warehouses w WHERE w.id = $1 AND {LIVE_WAREHOUSE}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Renames a live warehouse of `org_id` (audited `warehouse.updated`); `None` keeps the name.
pub async fn rename(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    name: Option<&str>,
    actor: &Actor<'_>,
) -> Result<Warehouse, WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let updated: Warehouse = sqlx::query_as(&format!(
        "UPDATE warehouses w SET name = COALESCE($3, name)
         WHERE w.owner_id = $1 AND w.id = $2 AND w.owner_type = 'ORG' AND w.deleted_at IS NULL
         RETURNING {WAREHOUSE_COLUMNS}"
    ))
    .bind(org_id)
    .bind(id)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("warehouse"))?;
    let metadata = serde_json::json!({ "name": name });
    audit_in(
        &mut tx,
        actor,
        org_id,
        "warehouse.updated",
        ("warehouse", id),
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Soft-deletes a live warehouse of `org_id` (audited `warehouse.deleted`): its collections,
/// templates and invader definitions become unreachable with it, and the organization may create
/// a new one. Blocks keep their `origin_asset_id`; invader usages of its definitions are dropped
/// by the next projection (§4 Rule 6).
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), WarehouseError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let deleted = sqlx::query(
        "UPDATE warehouses SET deleted_at = NOW()
         WHERE owner_id = $1 AND id = $2 AND owner_type = 'ORG' AND deleted_at IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if deleted.rows_affected() == 0 {
        return Err(IamError::NotFound("warehouse").into());
    }
    let metadata = serde_json::json!({});
    audit_in(
        &mut tx,
        actor,
        org_id,
        "warehouse.deleted",
        ("warehouse", id),
        metadata,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refused unless `collection_id` is a collection of `warehouse_id` (`field` names it).
pub(crate) async fn check_collection(
    conn: &mut PgConnection,
    warehouse_id: Uuid,
    collection_id: Option<Uuid>,
    field: &'static str,
) -> Result<(), WarehouseError> {
    let Some(collection_id) = collection_id else {
        return Ok(());
    };
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM asset_collections WHERE id = $1 AND warehouse_id = $2")
            .bind(collection_id)
            .bind(warehouse_id)
            .fetch_optional(&mut *conn)
            .await?;
    found
        .map(|_| ())
        .ok_or(WarehouseError::InvalidReference(field))
}
