//! `feature_flags` (global defaults, seeded by migrations) and `org_feature_overrides`.

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::{self, IamError};

/// A flag's effective value for one organization.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Feature {
    pub key: String,
    pub description: Option<String>,
    pub default_value: serde_json::Value,
    /// The override when there is one, else the default.
    pub value: serde_json::Value,
    pub overridden: bool,
}

const FEATURE_SELECT: &str = "SELECT f.key, f.description, f.default_value,
        COALESCE(o.value, f.default_value) AS value, o.id IS NOT NULL AS overridden
     FROM feature_flags f
     LEFT JOIN org_feature_overrides o ON o.feature_flag_id = f.id AND o.org_id = $1";

/// Every flag with its effective value, by key. There are few flags, so this is not paginated.
pub async fn list(pool: &PgPool, org_id: Uuid) -> Result<Vec<Feature>, IamError> {
    Ok(sqlx::query_as(&format!("{FEATURE_SELECT} ORDER BY f.key"))
        .bind(org_id)
        .fetch_all(pool)
        .await?)
}

async fn find_in(
    conn: &mut PgConnection,
    org_id: Uuid,
    key: &str,
) -> Result<Option<Feature>, sqlx::Error> {
    sqlx::query_as(&format!("{FEATURE_SELECT} WHERE f.key = $2"))
        .bind(org_id)
        .bind(key)
        .fetch_optional(conn)
        .await
}

async fn flag_id(conn: &mut PgConnection, key: &str) -> Result<Uuid, IamError> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM feature_flags WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(|(id,)| id)
        .ok_or(IamError::NotFound("feature flag"))
}

/// Sets the organization's value of flag `key` (audited as `feature.overridden`).
pub async fn set_override(
    pool: &PgPool,
    org_id: Uuid,
    key: &str,
    value: &serde_json::Value,
    actor: &Actor<'_>,
) -> Result<Feature, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let flag = flag_id(&mut tx, key).await?;
    sqlx::query(
        "INSERT INTO org_feature_overrides (org_id, feature_flag_id, value) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, feature_flag_id) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(org_id)
    .bind(flag)
    .bind(value)
    .execute(&mut *tx)
    .await?;
    let feature = find_in(&mut tx, org_id, key)
        .await?
        .ok_or(IamError::NotFound("feature flag"))?;
    let metadata = serde_json::json!({ "key": key, "value": value });
    let entry = actor.entry(
        org_id,
        "feature.overridden",
        "feature_flag",
        flag,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(feature)
}

/// Drops the organization's override of `key`, back to the default (audited as
/// `feature.override_cleared`). Clearing an absent override is not an error.
pub async fn clear_override(
    pool: &PgPool,
    org_id: Uuid,
    key: &str,
    actor: &Actor<'_>,
) -> Result<Feature, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let flag = flag_id(&mut tx, key).await?;
    sqlx::query("DELETE FROM org_feature_overrides WHERE org_id = $1 AND feature_flag_id = $2")
        .bind(org_id)
        .bind(flag)
        .execute(&mut *tx)
        .await?;
    let feature = find_in(&mut tx, org_id, key)
        .await?
        .ok_or(IamError::NotFound("feature flag"))?;
    let metadata = serde_json::json!({ "key": key });
    let entry = actor.entry(
        org_id,
        "feature.override_cleared",
        "feature_flag",
        flag,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(feature)
}

/// The effective value of flag `key` for one organization (its override, else the default); `None`
/// for a flag no migration created.
pub async fn value(
    pool: &PgPool,
    org_id: Uuid,
    key: &str,
) -> Result<Option<serde_json::Value>, PersistenceError> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT COALESCE(o.value, f.default_value)
         FROM feature_flags f
         LEFT JOIN org_feature_overrides o ON o.feature_flag_id = f.id AND o.org_id = $1
         WHERE f.key = $2",
    )
    .bind(org_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(value,)| value))
}
