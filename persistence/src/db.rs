//! [`Database`]: the connection pool every repository function takes.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::error::PersistenceError;

/// A cheap-to-clone handle on the PostgreSQL pool.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
}

impl Database {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, PersistenceError> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options, max_connections).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, PersistenceError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl PersistenceError {
    /// The database could not be reached, or is shutting down or starting up: the same request
    /// may succeed later (an HTTP 503, not a 500). Connection failures, pool timeouts and the
    /// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: admin shutdown,
    /// crash shutdown, cannot connect now).
    pub fn is_unavailable(&self) -> bool {
        match self {
            PersistenceError::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
                _ => false,
            },
            _ => false,
        }
    }

    /// The name of the violated unique constraint or index, when this is a unique violation.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            PersistenceError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Some(db.constraint().unwrap_or_default().to_string())
            }
            _ => None,
        }
    }
}
