//! Test support for the black-box tests: spawn a real Nox Sync server on a fresh database and talk
//! to it over HTTP like any client would.

pub mod hocuspocus;
pub mod http;
pub mod warehouse;
pub mod ws;

use std::net::SocketAddr;

use nox_persistence::testing::{fresh_database, TestDatabase};
use nox_server::config::Config;
use nox_server::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use http::{Session, TestClient};
pub use ws::WsClient;

/// A running server on its own fresh database (cloned from the migrated template).
pub struct TestApp {
    pub addr: SocketAddr,
    pub config: Config,
    pub db: TestDatabase,
    pub client: TestClient,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A server with default configuration on a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change (limits, intervals, ...).
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = fresh_database().await.expect("fresh test database");
        let config = test_config(&db.url, adjust);
        Self::start(db, config).await
    }

    /// Graceful shutdown, then a new server (new port) on the same database and configuration.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown().await;
        let TestApp { db, config, .. } = self;
        Self::start(db, config).await
    }

    async fn start(db: TestDatabase, config: Config) -> TestApp {
        let app = Application::build(config.clone())
            .await
            .expect("build application");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            config,
            db,
            client: TestClient::new(addr),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Another node of the same cluster: a second server on this app's database and
    /// configuration (DESIGN §7).
    pub async fn join_node(&self) -> TestNode {
        let app = Application::build(self.config.clone())
            .await
            .expect("build another node");
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        TestNode {
            addr,
            client: TestClient::new(addr),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The test database's pool, for assertions on rows.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.db.pool
    }

    /// Graceful shutdown, waiting until the server has stopped.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server io");
        }
    }
}

/// A further node of a [`TestApp`]'s cluster (same database, same configuration).
pub struct TestNode {
    pub addr: SocketAddr,
    pub client: TestClient,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestNode {
    /// Graceful shutdown (its leases are released), waiting until it has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("node task").expect("node io");
        }
    }
}

/// Configuration for an in-process test server: port 0, a fixed secret, the given database.
pub fn test_config(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::defaults();
    config.addr = "127.0.0.1:0".parse().expect("addr");
    config.database_url = Some(database_url.to_string());
    config.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
    config.db_max_connections = 5;
    // Abuse limits are per server; tests from one IP would trip the production values. The
    // rate-limit tests lower them again through `spawn_with`.
    config.rate_limit_login = 10_000;
    config.rate_limit_register = 10_000;
    config.rate_limit_refresh = 10_000;
    config.rate_limit_invitations = 10_000;
    // Content-addressed, so test servers can share one store.
    config.file_store = Some(std::env::temp_dir().join("nox-tests-files"));
    adjust(&mut config);
    config
}
