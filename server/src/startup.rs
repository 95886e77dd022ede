//! [`Application`]: resolves the database (external or embedded), migrates, binds the listener, and
//! runs the server until a shutdown signal — then shuts down in order.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use nox_persistence::db::Database;
use nox_persistence::embedded::EmbeddedPostgres;
use nox_persistence::error::PersistenceError;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::access::LiveAccess;
use crate::auth::tokens::{self, TokenKeys};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::node;
use crate::rooms::{LogWriter, RoomContext, RoomRegistry, RoomSettings};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] PersistenceError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// A built server, listening but not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    embedded: Option<EmbeddedPostgres>,
}

impl Application {
    /// Connects to `DATABASE_URL` or starts the embedded cluster, applies migrations and binds.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let (db, embedded) = open_database(&config).await?;
        nox_persistence::migrate::run(db.pool()).await?;
        let secret = match (&config.jwt_secret, &config.database_url) {
            // Nodes sharing an external database share its secret (DESIGN §7).
            (None, Some(_)) => shared_jwt_secret(&db).await?,
            _ => jwt_secret(&config)?,
        };
        let tokens = TokenKeys::new(&secret, config.access_token_ttl());
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let files_dir = config.file_store_dir();
        let files =
            crate::file_store::LocalFileStore::open(files_dir.clone()).map_err(|source| {
                StartupError::DataDir {
                    path: files_dir.display().to_string(),
                    source,
                }
            })?;
        let files = Arc::new(files);
        let metrics = Metrics::new();
        let listening = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.addr,
            source,
        })?;
        let cluster = Arc::new(
            Cluster::join(
                db.clone(),
                config.node_addr(listening),
                config.node_ttl(),
                tokens::relay_key(&secret),
            )
            .await?,
        );
        let rooms = Arc::new(RoomRegistry::new(RoomContext {
            db: db.clone(),
            metrics: metrics.clone(),
            log: LogWriter::spawn(db.clone(), metrics.clone()),
            compaction_slots: Arc::new(Semaphore::new(config.compaction_concurrency.max(1))),
            cluster: cluster.clone(),
            settings: RoomSettings {
                compact_interval: config.compact_interval(),
                idle_unload: config.room_idle(),
                awareness_timeout: Duration::from_millis(config.awareness_timeout_ms),
                auto_version: config.auto_version(),
            },
        }));
        let state = AppState {
            rate_limits: Arc::new(crate::rate_limit::RateLimits::from_config(&config)),
            mailer: Arc::new(crate::mailer::OutboxMailer::new(db.clone())),
            db,
            config: Arc::new(config),
            tokens,
            metrics,
            rooms,
            next_conn: Arc::new(AtomicU64::new(1)),
            live: Arc::new(LiveAccess::in_cluster(cluster.clone())),
            cluster,
            files,
            recent_versions: Arc::default(),
        };
        Ok(Self {
            listener,
            state,
            embedded,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn router(&self) -> Router {
        crate::app::router(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then drains and stops the embedded PostgreSQL last.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let Application {
            listener,
            state,
            embedded,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "nox-sync listening");
        // Graceful shutdown (DESIGN §3): on the signal, rooms flush, compact and close their
        // sockets with 1012 first; then the HTTP server drains; the database goes last.
        let rooms = state.rooms.clone();
        let cluster = state.cluster.clone();
        let node_tasks = node::spawn(&state);
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: compacting rooms");
            rooms.shutdown().await;
            node_tasks.stop();
            // Leases go back at once: other nodes take these workspaces without waiting a TTL.
            cluster.leave().await;
        };
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        tracing::info!("HTTP server stopped");
        close_database(state, embedded).await;
        served
    }

    /// Stops without serving (used by `nox-sync migrate`).
    pub async fn close(self) {
        close_database(self.state, self.embedded).await;
    }
}

/// `nox-sync database`: starts (and migrates) the embedded PostgreSQL of the data directory,
/// hands its URL to `announce` (for the nodes that will share it), and stops it when `shutdown`
/// resolves. Answers the URL it served.
pub async fn serve_database(
    config: &Config,
    announce: impl FnOnce(&str),
    shutdown: impl Future<Output = ()>,
) -> Result<String, StartupError> {
    ensure_dir(&config.data_dir)?;
    let pg = EmbeddedPostgres::start(&config.data_dir)
        .await
        .map_err(PersistenceError::from)?;
    let db = Database::connect_with(pg.connect_options("nox"), 2).await?;
    nox_persistence::migrate::run(db.pool()).await?;
    db.close().await;
    let url = pg.url("nox");
    announce(&url);
    shutdown.await;
    if let Err(err) = pg.stop().await {
        tracing::warn!(error = %err, "embedded PostgreSQL did not stop cleanly");
    }
    Ok(url)
}

/// Closes the pool, then stops the embedded PostgreSQL: always the last thing to go.
async fn close_database(state: AppState, embedded: Option<EmbeddedPostgres>) {
    state.db.close().await;
    if let Some(pg) = embedded {
        if let Err(err) = pg.stop().await {
            tracing::warn!(error = %err, "embedded PostgreSQL did not stop cleanly");
        }
    }
}

async fn open_database(
    config: &Config,
) -> Result<(Database, Option<EmbeddedPostgres>), StartupError> {
    if let Some(url) = &config.database_url {
        let db = Database::connect(url, config.db_max_connections).await?;
        return Ok((db, None));
    }
    ensure_dir(&config.data_dir)?;
    let pg = EmbeddedPostgres::start(&config.data_dir)
        .await
        .map_err(PersistenceError::from)?;
    let db = Database::connect_with(pg.connect_options("nox"), config.db_max_connections).await?;
    Ok((db, Some(pg)))
}

fn ensure_dir(path: &Path) -> Result<(), StartupError> {
    std::fs::create_dir_all(path).map_err(|source| StartupError::DataDir {
        path: path.display().to_string(),
        source,
    })
}

/// The token signing secret of a cluster on an external database when NOX_JWT_SECRET is unset:
/// generated by the first node and kept in the database, so every node verifies every token.
async fn shared_jwt_secret(db: &Database) -> Result<Vec<u8>, StartupError> {
    let candidate = format!("{}{}", tokens::random_token(), tokens::random_token());
    let secret =
        nox_persistence::cluster::shared_secret(db.pool(), "jwt_signing", &candidate).await?;
    Ok(secret.into_bytes())
}

/// `NOX_JWT_SECRET`, or (embedded database) a secret generated once and kept in
/// `<data dir>/jwt-secret` (mode 0600) so tokens survive restarts.
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    ensure_dir(&config.data_dir)?;
    let path = config.data_dir.join("jwt-secret");
    let io_err = |source| StartupError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= 32 => {
            return Ok(existing.trim().as_bytes().to_vec())
        }
        Ok(_) => tracing::warn!(path = %path.display(), "jwt-secret file too short; replacing it"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let secret = format!("{}{}", tokens::random_token(), tokens::random_token());
    write_private(&path, &secret).map_err(io_err)?;
    tracing::info!(path = %path.display(), "generated a new JWT signing secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::defaults();
        config.jwt_secret = None;
        config.data_dir = dir.path().to_path_buf();
        let first = jwt_secret(&config).expect("generate");
        let second = jwt_secret(&config).expect("reuse");
        assert_eq!(first, second);
        assert!(first.len() >= 64);
        let mode = std::fs::metadata(dir.path().join("jwt-secret"))
            .expect("file")
            .permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn explicit_secret_wins() {
        let mut config = Config::defaults();
        config.jwt_secret = Some("from-the-environment".into());
        assert_eq!(
            jwt_secret(&config).expect("secret"),
            b"from-the-environment"
        );
    }
}
