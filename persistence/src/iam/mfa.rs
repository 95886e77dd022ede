//! TOTP MFA state: `user_security.mfa_secret` / `mfa_enabled` and `user_mfa_backup_codes`.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

/// Stores a new, not yet confirmed secret. Refused (false) while MFA is enabled: replacing the
/// secret of an active second factor must go through `disable` first.
pub async fn set_pending_secret(
    pool: &PgPool,
    user_id: Uuid,
    secret: &str,
) -> Result<bool, PersistenceError> {
    let done = sqlx::query(
        "UPDATE user_security SET mfa_secret = $2, totp_last_step = NULL, updated_at = NOW()
         WHERE user_id = $1 AND NOT mfa_enabled",
    )
    .bind(user_id)
    .bind(secret)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Turns MFA on and replaces the backup codes with `code_hashes`, in one transaction.
pub async fn enable(
    pool: &PgPool,
    user_id: Uuid,
    code_hashes: &[String],
) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE user_security SET mfa_enabled = TRUE, updated_at = NOW() WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM user_mfa_backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_mfa_backup_codes (user_id, code_hash) SELECT $1, UNNEST($2::text[])",
    )
    .bind(user_id)
    .bind(code_hashes)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns MFA off, forgets the secret and deletes the backup codes.
pub async fn disable(pool: &PgPool, user_id: Uuid) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE user_security SET mfa_enabled = FALSE, mfa_secret = NULL, updated_at = NOW()
         WHERE user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM user_mfa_backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Accepts TOTP time step `step` for the user: true when it is later than every step accepted
/// before (then recorded), false when this step or a later one was already used. One atomic
/// UPDATE, so two requests racing with the same code cannot both win.
pub async fn accept_totp_step(
    pool: &PgPool,
    user_id: Uuid,
    step: u64,
) -> Result<bool, PersistenceError> {
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "UPDATE user_security SET totp_last_step = $2, updated_at = NOW()
         WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Redeems the MFA step-up token `jti`: true the first time, false ever after (the primary key
/// decides, atomically). Expired redemptions are swept on the way: their tokens no longer verify.
pub async fn redeem_mfa_token(
    pool: &PgPool,
    jti: Uuid,
    user_id: Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, PersistenceError> {
    sqlx::query("DELETE FROM mfa_token_redemptions WHERE expires_at < NOW() - INTERVAL '1 minute'")
        .execute(pool)
        .await?;
    let done = sqlx::query(
        "INSERT INTO mfa_token_redemptions (jti, user_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(user_id)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the MFA token `jti` was already redeemed (a cheap early refusal, before a backup code
/// would be spent on a replayed token; [`redeem_mfa_token`] is the atomic check).
pub async fn mfa_token_redeemed(pool: &PgPool, jti: Uuid) -> Result<bool, PersistenceError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM mfa_token_redemptions WHERE jti = $1)")
            .bind(jti)
            .fetch_one(pool)
            .await?,
    )
}

/// Uses up one backup code; false when no unused code has this hash.
pub async fn consume_backup_code(
    pool: &PgPool,
    user_id: Uuid,
    code_hash: &str,
) -> Result<bool, PersistenceError> {
    let done = sqlx::query(
        "UPDATE user_mfa_backup_codes SET used = TRUE, used_at = NOW()
         WHERE id = (SELECT id FROM user_mfa_backup_codes
                     WHERE user_id = $1 AND code_hash = $2 AND used IS NOT TRUE
                     LIMIT 1 FOR UPDATE)",
    )
    .bind(user_id)
    .bind(code_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many unused backup codes the user has left.
pub async fn remaining_backup_codes(pool: &PgPool, user_id: Uuid) -> Result<i64, PersistenceError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_mfa_backup_codes WHERE user_id = $1 AND used IS NOT TRUE",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?)
}
