//! `users` + `user_security`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::billing;
use crate::iam::members::{self, SoleAdminOrg};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub is_email_verified: bool,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a login needs: the live user and its password hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRecord {
    pub id: Uuid,
    pub password_hash: Option<String>,
    pub failed_login_attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

const USER_COLUMNS: &str =
    "id, email, is_email_verified, full_name, avatar_url, status, created_at, updated_at";

/// Creates a user (status `PENDING_VERIFICATION` until the email is verified) and its security
/// row in one transaction. A live user with the same email
/// (case-insensitive) makes this fail with a unique violation.
pub async fn create_with_password(
    pool: &PgPool,
    email: &str,
    full_name: Option<&str>,
    password_hash: &str,
) -> Result<User, PersistenceError> {
    let mut tx = pool.begin().await?;
    let user: User = sqlx::query_as(&format!(
        "INSERT INTO users (email, full_name, status) VALUES ($1, $2, 'PENDING_VERIFICATION') RETURNING {USER_COLUMNS}"
    ))
    .bind(email)
    .bind(full_name)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO user_security (user_id, password_hash, is_password_set, last_password_change)
         VALUES ($1, $2, TRUE, NOW())",
    )
    .bind(user.id)
    .bind(password_hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn find_live(pool: &PgPool, id: Uuid) -> Result<Option<User>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

pub async fn find_login_record(
    pool: &PgPool,
    email: &str,
) -> Result<Option<LoginRecord>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT u.id, s.password_hash, COALESCE(s.failed_login_attempts, 0) AS failed_login_attempts,
                s.locked_until
         FROM users u LEFT JOIN user_security s ON s.user_id = u.id
         WHERE LOWER(u.email) = LOWER($1) AND u.deleted_at IS NULL",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?)
}

/// The live user with this email (case-insensitive).
pub async fn find_live_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<User>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE LOWER(email) = LOWER($1) AND deleted_at IS NULL"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await?)
}

/// Marks the email verified and the account `ACTIVE`.
pub async fn mark_email_verified(pool: &PgPool, id: Uuid) -> Result<(), PersistenceError> {
    sqlx::query(
        "UPDATE users SET is_email_verified = TRUE, status = 'ACTIVE', updated_at = NOW()
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Profile fields to change: `None` keeps the value, `Some(None)` clears it.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProfilePatch<'a> {
    pub full_name: Option<Option<&'a str>>,
    pub avatar_url: Option<Option<&'a str>>,
}

/// Changes the live user's profile; `None` when the user is gone.
pub async fn update_profile(
    pool: &PgPool,
    id: Uuid,
    patch: ProfilePatch<'_>,
) -> Result<Option<User>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE users SET
            full_name = CASE WHEN $2 THEN $3 ELSE full_name END,
            avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END,
            updated_at = NOW()
         WHERE id = $1 AND deleted_at IS NULL
         RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(patch.full_name.is_some())
    .bind(patch.full_name.flatten())
    .bind(patch.avatar_url.is_some())
    .bind(patch.avatar_url.flatten())
    .fetch_optional(pool)
    .await?)
}

/// What [`delete_account`] did.
#[derive(Debug, Clone)]
pub enum AccountDeletion {
    Deleted,
    /// Refused: the user is the only admin of these organizations.
    SoleAdmin(Vec<SoleAdminOrg>),
    /// The user was already deleted.
    AlreadyGone,
}

/// Soft-deletes the user (`deleted_at` set, status `DELETED`; the unique email index only covers
/// live rows, so the email can be registered again) unless that would leave one of their organizations without an admin,
/// and refreshes the member counts of their organizations, in one transaction that holds their
/// organizations locked (so two co-owners leaving at once cannot both go).
pub async fn delete_account(pool: &PgPool, id: Uuid) -> Result<AccountDeletion, PersistenceError> {
    let mut tx = pool.begin().await?;
    let org_ids = members::lock_member_orgs(&mut tx, id).await?;
    let sole = members::sole_admin_orgs(&mut tx, id).await?;
    if !sole.is_empty() {
        return Ok(AccountDeletion::SoleAdmin(sole));
    }
    let done = sqlx::query(
        "UPDATE users SET deleted_at = NOW(), status = 'DELETED', updated_at = NOW()
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(AccountDeletion::AlreadyGone);
    }
    for org_id in org_ids {
        billing::refresh_usage(&mut tx, org_id).await?;
    }
    tx.commit().await?;
    Ok(AccountDeletion::Deleted)
}

/// The login record of a live user by id (the MFA step of a login).
pub async fn find_login_record_by_id(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<LoginRecord>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT u.id, s.password_hash, COALESCE(s.failed_login_attempts, 0) AS failed_login_attempts,
                s.locked_until
         FROM users u LEFT JOIN user_security s ON s.user_id = u.id
         WHERE u.id = $1 AND u.deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}
