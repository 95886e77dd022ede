//! `user_security` (password, lockout counters) and `account_tokens` (mailed single-use tokens).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

/// The security row of a user, for password and MFA checks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Security {
    pub user_id: Uuid,
    pub password_hash: Option<String>,
    pub failed_login_attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub mfa_enabled: bool,
    pub mfa_secret: Option<String>,
}

/// The security row of a live user.
pub async fn get(pool: &PgPool, user_id: Uuid) -> Result<Option<Security>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT s.user_id, s.password_hash, s.failed_login_attempts, s.locked_until,
                s.mfa_enabled, s.mfa_secret
         FROM user_security s JOIN users u ON u.id = s.user_id AND u.deleted_at IS NULL
         WHERE s.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Counts one failed login. Reaching `max_attempts` locks the account for `lock_secs`. A lock
/// that has already run out starts the count afresh, so one more failure does not re-lock at once.
/// Returns the new `locked_until` when this failure locked the account.
pub async fn record_failed_login(
    pool: &PgPool,
    user_id: Uuid,
    max_attempts: i32,
    lock_secs: i64,
) -> Result<Option<DateTime<Utc>>, PersistenceError> {
    let row: Option<(i32, Option<DateTime<Utc>>)> = sqlx::query_as(
        "UPDATE user_security SET
            failed_login_attempts = CASE WHEN locked_until <= NOW() THEN 1
                                         ELSE failed_login_attempts + 1 END,
            locked_until = CASE
                WHEN (CASE WHEN locked_until <= NOW() THEN 1 ELSE failed_login_attempts + 1 END) >= $2
                    THEN NOW() + make_interval(secs => $3::double precision)
                WHEN locked_until <= NOW() THEN NULL
                ELSE locked_until END,
            updated_at = NOW()
         WHERE user_id = $1
         RETURNING failed_login_attempts, locked_until",
    )
    .bind(user_id)
    .bind(max_attempts)
    .bind(lock_secs as f64)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some((attempts, until)) if attempts >= max_attempts => until,
        _ => None,
    })
}

/// A successful login clears the failure count and any lock.
pub async fn reset_failed_logins(pool: &PgPool, user_id: Uuid) -> Result<(), PersistenceError> {
    sqlx::query(
        "UPDATE user_security SET failed_login_attempts = 0, locked_until = NULL, updated_at = NOW()
         WHERE user_id = $1 AND (failed_login_attempts <> 0 OR locked_until IS NOT NULL)",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a new password hash (and clears any lockout: the owner proved control of the account).
pub async fn set_password(
    pool: &PgPool,
    user_id: Uuid,
    password_hash: &str,
) -> Result<(), PersistenceError> {
    sqlx::query(
        "INSERT INTO user_security (user_id, password_hash, is_password_set, last_password_change)
         VALUES ($1, $2, TRUE, NOW())
         ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash,
             is_password_set = TRUE, last_password_change = NOW(),
             failed_login_attempts = 0, locked_until = NULL, updated_at = NOW()",
    )
    .bind(user_id)
    .bind(password_hash)
    .execute(pool)
    .await?;
    Ok(())
}

/// What an account token is for (`account_tokens.purpose`).
pub mod purpose {
    pub const VERIFY_EMAIL: &str = "verify_email";
    pub const PASSWORD_RESET: &str = "password_reset";
}

/// Stores a new token for `user_id` and retires the user's earlier unused tokens of the same
/// purpose, so only the most recent mail works.
pub async fn create_account_token(
    pool: &PgPool,
    user_id: Uuid,
    purpose: &str,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE account_tokens SET used_at = NOW()
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO account_tokens (user_id, purpose, token_hash, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(purpose)
    .bind(token_hash)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Redeems a token: marks it used and returns its (live) user, or `None` when it is unknown,
/// expired, already used or of another purpose. One atomic `UPDATE`, so it works at most once.
pub async fn consume_account_token(
    pool: &PgPool,
    purpose: &str,
    token_hash: &str,
) -> Result<Option<Uuid>, PersistenceError> {
    Ok(sqlx::query_scalar(
        "UPDATE account_tokens t SET used_at = NOW()
         FROM users u
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > NOW()
           AND u.id = t.user_id AND u.deleted_at IS NULL
         RETURNING t.user_id",
    )
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(pool)
    .await?)
}
