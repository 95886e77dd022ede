//! Schema migrations, embedded in the binary from `migrations/` at the workspace root.

use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::error::PersistenceError;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Applies every pending migration. Safe to run concurrently from several processes: sqlx takes a
/// PostgreSQL advisory lock around the run.
pub async fn run(pool: &PgPool) -> Result<(), PersistenceError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when every migration the binary knows has been applied (used by `/readyz`).
pub async fn is_up_to_date(pool: &PgPool) -> Result<bool, PersistenceError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .all(|m| applied.binary_search(&m.version).is_ok()))
}
