//! Test support: one PostgreSQL per test process, one fresh database per test.
//!
//! With `DATABASE_URL` set, tests use that server; otherwise the first test starts a private
//! cluster with the same launcher `nox-sync serve` uses (DESIGN §8) in a temporary directory, and a
//! watchdog stops and removes it when the test process exits. Either way the migrations run once,
//! into a template database, and every test gets `CREATE DATABASE … TEMPLATE` — a copy in
//! milliseconds instead of a migration run per test.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use tokio::sync::{Mutex, OnceCell};

use crate::embedded::EmbeddedPostgres;
use crate::error::PersistenceError;

/// A database of its own for one test. Its pool is small: tests open few connections.
pub struct TestDatabase {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

/// Where the test databases live: a server (embedded or external) and the template to copy.
struct TestServer {
    /// Options for the maintenance database (`postgres`), used to create databases.
    admin: PgConnectOptions,
    template: String,
    /// Turns a database name into a URL the server under test can use.
    url_for: UrlFor,
}

type UrlFor = Box<dyn Fn(&str) -> String + Send + Sync>;

static SERVER: OnceCell<Result<TestServer, String>> = OnceCell::const_new();
/// `CREATE DATABASE … TEMPLATE` fails when another clone of the same template runs at that moment.
static CLONE_LOCK: Mutex<()> = Mutex::const_new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated database for one test.
pub async fn fresh_database() -> Result<TestDatabase, PersistenceError> {
    let server = SERVER
        .get_or_init(|| async { start_server().await.map_err(|e| e.to_string()) })
        .await
        .as_ref()
        .map_err(|e| PersistenceError::Invariant(format!("test database server: {e}")))?;
    let name = format!(
        "nox_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    {
        let _guard = CLONE_LOCK.lock().await;
        let mut admin = PgConnection::connect_with(&server.admin).await?;
        sqlx::query(&format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            server.template
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
    }
    let options = server.admin.clone().database(&name);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    Ok(TestDatabase {
        pool,
        url: (server.url_for)(&name),
        name,
    })
}

async fn start_server() -> Result<TestServer, PersistenceError> {
    let (admin, url_for): (PgConnectOptions, UrlFor) = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let options: PgConnectOptions = url.parse()?;
            let base = url.clone();
            (
                options.database("postgres"),
                Box::new(move |db: &str| replace_database(&base, db)),
            )
        }
        Err(_) => {
            let pg = start_embedded().await?;
            let admin = pg.connect_options("postgres");
            (admin, Box::new(move |db: &str| pg.url(db)))
        }
    };
    let admin = admin.disable_statement_logging();
    let template = format!("nox_template_{}", std::process::id());
    let mut conn = PgConnection::connect_with(&admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {template}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {template}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    // Migrate through a pool that is closed afterwards: a template must have no connections.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone().database(&template))
        .await?;
    crate::migrate::run(&pool).await?;
    pool.close().await;
    Ok(TestServer {
        admin,
        template,
        url_for,
    })
}

/// Starts a throwaway cluster under /tmp (short path: the socket path must fit in 107 bytes) and
/// spawns a watchdog that stops and deletes it once this test process is gone.
async fn start_embedded() -> Result<EmbeddedPostgres, PersistenceError> {
    let dir = std::env::temp_dir().join(format!("nox-test-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| PersistenceError::Invariant(e.to_string()))?;
    let pg = EmbeddedPostgres::start(&dir).await?;
    spawn_watchdog(&pg, &dir);
    Ok(pg)
}

fn spawn_watchdog(pg: &EmbeddedPostgres, dir: &std::path::Path) {
    let pg_ctl = crate::embedded::PgBinaries::find()
        .map(|b| b.bin_dir.join("pg_ctl"))
        .unwrap_or_else(|_| "pg_ctl".into());
    // `pg_ctl stop` must run as the cluster's owner; `su` when we are root.
    let stop = format!(
        "{} stop -D {} -m immediate",
        pg_ctl.display(),
        pg.data_dir().display()
    );
    let stop = if nix::unistd::Uid::effective().is_root() {
        format!("su postgres -s /bin/sh -c '{stop}'")
    } else {
        stop
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Detached on purpose: it must outlive us. Its exit status is of no interest.
    let spawned = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "could not spawn the test cluster watchdog");
    }
}

/// A PostgreSQL cluster owned by one test, for tests that stop and restart the database under a
/// running server. The shared per-process cluster ([`fresh_database`]) must never be stopped: other
/// tests of the process use it. The cluster lives in its own directory under /tmp (same watchdog as
/// the shared one) and restarts on the same data directory and socket, so a URL stays valid
/// across [`PrivateCluster::stop`] / [`PrivateCluster::start_again`].
pub struct PrivateCluster {
    pg: EmbeddedPostgres,
    dir: std::path::PathBuf,
    /// URL of the cluster's migrated `nox` database.
    pub url: String,
}

impl PrivateCluster {
    /// Starts a new cluster and migrates its `nox` database.
    pub async fn start() -> Result<Self, PersistenceError> {
        let dir = std::env::temp_dir().join(format!(
            "nox-test-pgp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| PersistenceError::Invariant(e.to_string()))?;
        let pg = EmbeddedPostgres::start(&dir).await?;
        spawn_watchdog(&pg, &dir);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(pg.connect_options("nox").disable_statement_logging())
            .await?;
        crate::migrate::run(&pool).await?;
        pool.close().await;
        let url = pg.url("nox");
        Ok(Self { pg, dir, url })
    }

    /// Fast shutdown (`pg_ctl stop -m fast`): open connections are terminated, new ones refused.
    pub async fn stop(&self) -> Result<(), PersistenceError> {
        Ok(self.pg.stop().await?)
    }

    /// Starts the stopped cluster again on the same data directory and socket.
    pub async fn start_again(&mut self) -> Result<(), PersistenceError> {
        self.pg = EmbeddedPostgres::start(&self.dir).await?;
        Ok(())
    }
}

/// `postgres://u@h/old?x` → `postgres://u@h/<db>?x`.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A workspace with the user, organization and project it needs (named after `slug`), for tests
/// that write its log or rows. Returns (workspace id, user id).
pub async fn insert_workspace(
    pool: &sqlx::PgPool,
    slug: &str,
) -> Result<(uuid::Uuid, uuid::Uuid), sqlx::Error> {
    let user: uuid::Uuid = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind(format!("{slug}@example.com"))
        .fetch_one(pool)
        .await?;
    let org: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO organizations (name, slug) VALUES ('O', $1) RETURNING id")
            .bind(slug)
            .fetch_one(pool)
            .await?;
    let project: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO projects (org_id, name, slug, created_by_id) VALUES ($1, 'P', 'p', $2) RETURNING id",
    )
    .bind(org)
    .bind(user)
    .fetch_one(pool)
    .await?;
    let workspace = sqlx::query_scalar(
        "INSERT INTO workspaces (project_id, name, type, created_by) VALUES ($1, 'W', 'CANVAS', $2) RETURNING id",
    )
    .bind(project)
    .bind(user)
    .fetch_one(pool)
    .await?;
    Ok((workspace, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/app?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "t2"),
            "postgres://u@h/t2"
        );
    }

    #[tokio::test]
    async fn fresh_databases_are_migrated_and_independent() {
        let a = fresh_database().await.expect("a");
        let b = fresh_database().await.expect("b");
        assert_ne!(a.name, b.name);
        sqlx::query("INSERT INTO notes (owner_type, owner_id) VALUES ('USER', gen_random_uuid())")
            .execute(&a.pool)
            .await
            .expect("insert into a");
        let in_b: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&b.pool)
            .await
            .expect("count b");
        assert_eq!(in_b, 0);
        // The URL works for a separate client (that is how the server under test connects).
        let mut conn = PgConnection::connect(&a.url).await.expect("connect by url");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&mut conn)
            .await
            .expect("count a");
        assert_eq!(n, 1);
    }
}
