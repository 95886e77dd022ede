//! `user_sessions`: one row per login; the refresh token is stored only as a hash.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub user_id: Uuid,
    pub refresh_token_hash: &'a str,
    pub device_type: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(pool: &PgPool, session: NewSession<'_>) -> Result<Uuid, PersistenceError> {
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO user_sessions (user_id, refresh_token, device_type, user_agent, ip_address, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(session.user_id)
    .bind(session.refresh_token_hash)
    .bind(session.device_type)
    .bind(session.user_agent)
    .bind(session.ip_address)
    .bind(session.expires_at)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// True when the session exists, belongs to `user_id`, is not revoked and has not expired.
pub async fn is_active(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<bool, PersistenceError> {
    let row: Option<(bool,)> = sqlx::query_as(
        "SELECT TRUE FROM user_sessions
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > NOW()",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}
