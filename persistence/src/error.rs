//! [`PersistenceError`]: what can go wrong below the server.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    /// A stored value breaks an invariant the code relies on (a bug or a hand-edited row).
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// The write named a workspace lease that another node has since taken (docs/design.md §7):
    /// this node's room is stale and must stop without writing.
    #[error("workspace {workspace_id}: lease epoch {epoch} is no longer this node's")]
    Fenced {
        workspace_id: uuid::Uuid,
        epoch: i64,
    },
}

impl PersistenceError {
    /// The database answered and refused the statement (a constraint, a bad value), as opposed to
    /// being unreachable or timing out: retrying the same data elsewhere cannot help it, but other
    /// data in the same statement may be fine.
    pub fn is_rejected_by_database(&self) -> bool {
        matches!(self, PersistenceError::Database(sqlx::Error::Database(_)))
    }
}

/// Failures of the embedded PostgreSQL launcher. The messages are written for the person running
/// `nox-sync serve`: they say what is missing and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb`, `pg_ctl` and `postgres` on PATH and in \
         /usr/lib/postgresql/*/bin). Install them (Debian/Ubuntu: `apt-get install postgresql`) or set \
         DATABASE_URL to use an existing server"
    )]
    BinariesNotFound,
    #[error(
        "running as root, the embedded PostgreSQL must run as the `postgres` system user, which does not \
         exist. Create it (`useradd --system postgres`), run nox-sync as a normal user, or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` user cannot reach {0}: choose a NOX_DATA_DIR whose parent directories are \
         world-traversable (e.g. under /var/lib or /tmp), run nox-sync as a normal user, or set DATABASE_URL"
    )]
    Unreachable(PathBuf),
    #[error("the socket path {0} is too long for a Unix socket (max 107 bytes): use a shorter NOX_DATA_DIR")]
    SocketPathTooLong(PathBuf),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}
