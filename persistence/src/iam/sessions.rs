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

/// How stale `last_active_at` may get before a use of the session moves it: a write at most once
/// a minute per session, not one per request.
pub const ACTIVITY_RESOLUTION_SECS: i64 = 60;

/// True when the session exists, belongs to `user_id`, is not revoked and has not expired. A
/// check is a use of the session (every authenticated request and live-connection recheck makes
/// one), so in the same statement it moves `last_active_at` to now when that is more than
/// [`ACTIVITY_RESOLUTION_SECS`] old; otherwise nothing is written.
pub async fn is_active(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<bool, PersistenceError> {
    let active: bool = sqlx::query_scalar(
        "WITH live AS (
             SELECT id, last_active_at FROM user_sessions
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > NOW()
         ), touched AS (
             UPDATE user_sessions s SET last_active_at = NOW()
             FROM live
             WHERE s.id = live.id
               AND live.last_active_at < NOW() - make_interval(secs => $3::double precision)
             RETURNING s.id
         )
         SELECT EXISTS (SELECT 1 FROM live)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(ACTIVITY_RESOLUTION_SECS as f64)
    .fetch_one(pool)
    .await?;
    Ok(active)
}

/// A live session as shown to its owner (`GET /me/sessions`).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct SessionInfo {
    pub id: Uuid,
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: the session now holds the new hash.
    Rotated { session_id: Uuid, user_id: Uuid },
    /// The token had already been rotated away: the session has been revoked.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

/// Why a session ended, stored in `revoke_reason`.
pub mod reason {
    pub const LOGOUT: &str = "logout";
    pub const USER_REVOKED: &str = "user_revoked";
    pub const REFRESH_REUSE: &str = "refresh_reuse";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const ACCOUNT_DELETED: &str = "account_deleted";
}

/// Swaps the session's refresh token hash `old_hash` for `new_hash` and remembers the old one.
///
/// The `UPDATE … WHERE refresh_token = old` is atomic, so of two concurrent refreshes with the same
/// token exactly one wins; the other finds the token in the history and revokes the session, which
/// is the intended reaction to a replayed token.
pub async fn rotate(
    pool: &PgPool,
    old_hash: &str,
    new_hash: &str,
) -> Result<Rotation, PersistenceError> {
    let mut tx = pool.begin().await?;
    let rotated: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE user_sessions SET refresh_token = $2, last_active_at = NOW()
         WHERE refresh_token = $1 AND revoked_at IS NULL AND expires_at > NOW()
         RETURNING id, user_id",
    )
    .bind(old_hash)
    .bind(new_hash)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((session_id, user_id)) = rotated {
        sqlx::query(
            "INSERT INTO user_session_refresh_history (token_hash, session_id) VALUES ($1, $2)
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(old_hash)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(Rotation::Rotated {
            session_id,
            user_id,
        });
    }
    let reused: Option<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT s.id, s.user_id FROM user_session_refresh_history h
         JOIN user_sessions s ON s.id = h.session_id
         WHERE h.token_hash = $1",
    )
    .bind(old_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((session_id, user_id)) = reused else {
        return Ok(Rotation::Invalid);
    };
    sqlx::query(
        "UPDATE user_sessions SET revoked_at = NOW(), revoke_reason = $2
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(reason::REFRESH_REUSE)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Rotation::Reused {
        session_id,
        user_id,
    })
}

/// The user's sessions that are neither revoked nor expired, most recently active first.
pub async fn list_active(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<SessionInfo>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT id, device_type, user_agent, ip_address, last_active_at, expires_at
         FROM user_sessions
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > NOW()
         ORDER BY last_active_at DESC, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// Revokes one live session of `user_id`; false when there is none with that id (or it belongs to
/// someone else), so the caller can answer 404 without revealing other users' sessions.
pub async fn revoke(
    pool: &PgPool,
    session_id: Uuid,
    user_id: Uuid,
    why: &str,
) -> Result<bool, PersistenceError> {
    let done = sqlx::query(
        "UPDATE user_sessions SET revoked_at = NOW(), revoke_reason = $3
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > NOW()",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(why)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live session of `user_id` except `keep`; returns the ids revoked.
pub async fn revoke_all(
    pool: &PgPool,
    user_id: Uuid,
    keep: Option<Uuid>,
    why: &str,
) -> Result<Vec<Uuid>, PersistenceError> {
    Ok(sqlx::query_scalar(
        "UPDATE user_sessions SET revoked_at = NOW(), revoke_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2)
         RETURNING id",
    )
    .bind(user_id)
    .bind(keep)
    .bind(why)
    .fetch_all(pool)
    .await?)
}
