//! `api_keys`: organization-scoped credentials. Only a SHA-256 of the full key is stored; the
//! `key_prefix` lets people tell their keys apart.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

/// An API key as listed to the organization's admins (no secret, no hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub key_prefix: String,
    pub name: String,
    /// The user who created the key; the key acts as this user, within its scopes.
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub scopes: Option<Vec<String>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub key_hash: &'a str,
    pub key_prefix: &'a str,
    pub name: &'a str,
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "id, key_prefix, name, user_id, org_id, scopes, last_used_at, expires_at, created_at";

pub async fn create(pool: &PgPool, key: NewApiKey<'_>) -> Result<ApiKey, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO api_keys (key_hash, key_prefix, name, user_id, org_id, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
    ))
    .bind(key.key_hash)
    .bind(key.key_prefix)
    .bind(key.name)
    .bind(key.user_id)
    .bind(key.org_id)
    .bind(key.scopes)
    .bind(key.expires_at)
    .fetch_one(pool)
    .await?)
}

/// The organization's keys, newest first.
pub async fn list_for_org(pool: &PgPool, org_id: Uuid) -> Result<Vec<ApiKey>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

/// Deletes (revokes) a key of `org_id`; `None` when the org has no key with that id.
pub async fn delete(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<ApiKey>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "DELETE FROM api_keys WHERE id = $1 AND org_id = $2 RETURNING {KEY_COLUMNS}"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?)
}

/// The key with this hash if it can authenticate now: not expired, its creator not deleted and
/// its organization not deleted.
pub async fn find_usable(
    pool: &PgPool,
    key_hash: &str,
) -> Result<Option<ApiKey>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {cols} FROM api_keys k
         JOIN users u ON u.id = k.user_id AND u.deleted_at IS NULL
         JOIN organizations o ON o.id = k.org_id AND o.deleted_at IS NULL
         WHERE k.key_hash = $1 AND (k.expires_at IS NULL OR k.expires_at > NOW())",
        cols = KEY_COLUMNS
            .split(", ")
            .map(|c| format!("k.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(key_hash)
    .fetch_optional(pool)
    .await?)
}

/// Records a use, at most once a minute per key so busy keys do not write on every request.
pub async fn touch(pool: &PgPool, id: Uuid) -> Result<(), PersistenceError> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = NOW()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < NOW() - INTERVAL '1 minute')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// True while the key exists, has not expired, and its creator and organization are live (the
/// re-check of open WebSockets that authenticated with it).
pub async fn is_usable(pool: &PgPool, key_id: Uuid) -> Result<bool, PersistenceError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_keys k
           JOIN users u ON u.id = k.user_id AND u.deleted_at IS NULL
           JOIN organizations o ON o.id = k.org_id AND o.deleted_at IS NULL
          WHERE k.id = $1 AND (k.expires_at IS NULL OR k.expires_at > NOW()))",
    )
    .bind(key_id)
    .fetch_one(pool)
    .await?)
}
