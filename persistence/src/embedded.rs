//! The embedded default (DESIGN §8): a private PostgreSQL cluster that `nox-sync serve` creates and
//! starts itself from the system's binaries when `DATABASE_URL` is unset.
//!
//! Layout inside the data directory:
//!
//! ```text
//! <data dir>/postgres/        owned by the user the cluster runs as, mode 0700
//!            ├── data/        PGDATA (created by initdb on first start, reused afterwards)
//!            ├── run/         the Unix socket; the cluster does not listen on TCP
//!            └── postgres.log
//! ```
//!
//! PostgreSQL refuses to run as root, so when we are root the cluster runs as the `postgres` system
//! user. Authentication is `trust` over a socket that only its owner (and root) can reach.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};
use sqlx::postgres::PgConnectOptions;
use tokio::process::Command;

use crate::error::EmbeddedError;

/// The superuser initdb creates; the server connects as it.
const SUPERUSER: &str = "nox";
/// Only used to name the socket file (`.s.PGSQL.5432`): the cluster has no TCP listener.
const PORT: u16 = 5432;
/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The directory holding `initdb`, `pg_ctl` and `postgres` of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Searches `PATH`, then `/usr/lib/postgresql/<version>/bin` (newest version first).
    pub fn find() -> Result<Self, EmbeddedError> {
        let path_dirs = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        path_dirs
            .into_iter()
            .chain(debian_bin_dirs())
            .find(|dir| has_server_binaries(dir))
            .map(|bin_dir| Self { bin_dir })
            .ok_or(EmbeddedError::BinariesNotFound)
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|tool| dir.join(tool).is_file())
}

/// `/usr/lib/postgresql/*/bin`, highest major version first.
fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// Which OS user the cluster's processes run as.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: Uid,
    gid: Gid,
    /// True when we must switch to this user (we are root).
    switch: bool,
}

impl RunAs {
    fn detect() -> Result<Self, EmbeddedError> {
        if !Uid::effective().is_root() {
            return Ok(Self {
                uid: Uid::effective(),
                gid: Gid::effective(),
                switch: false,
            });
        }
        let user = User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or(EmbeddedError::NoPostgresUser)?;
        Ok(Self {
            uid: user.uid,
            gid: user.gid,
            switch: true,
        })
    }

    fn command(&self, program: impl Into<OsString>) -> Command {
        let mut cmd = Command::new(program.into());
        if self.switch {
            cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
            // HOME of root is not readable by postgres; some tools look at it.
            cmd.env("HOME", "/tmp");
        }
        cmd.env_remove("PGDATA").env("LC_ALL", "C.UTF-8");
        cmd.kill_on_drop(false);
        cmd
    }
}

/// A running private cluster. Stop it with [`EmbeddedPostgres::stop`]; dropping it leaves the
/// cluster running (a later start reuses it), which is what a crashed server needs.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    binaries: PgBinaries,
    run_as: RunAs,
    root: PathBuf,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, starts it (or reuses it when it is already running) and
    /// makes sure the `nox` database exists.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let binaries = PgBinaries::find()?;
        let run_as = RunAs::detect()?;
        let data_dir = absolute(data_dir)?;
        let pg = Self {
            binaries,
            run_as,
            root: data_dir.join("postgres"),
        };
        pg.check_socket_path()?;
        pg.prepare_dirs().await?;
        if !pg.data_dir().join("PG_VERSION").is_file() {
            pg.initdb().await?;
        }
        if !pg.is_running().await? {
            pg.pg_ctl_start().await?;
        }
        pg.ensure_database("nox").await?;
        tracing::info!(socket_dir = %pg.socket_dir().display(), "embedded PostgreSQL ready");
        Ok(pg)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// Connection options for one database of the cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir())
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// A `postgres://` URL for one database (the socket directory goes in the `host` parameter).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={}",
            self.socket_dir().display()
        )
    }

    /// Fast shutdown: disconnects clients, checkpoints, exits.
    pub async fn stop(&self) -> Result<(), EmbeddedError> {
        let mut cmd = self.pg_ctl();
        cmd.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w"]);
        run(cmd, "pg_ctl stop").await?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    fn check_socket_path(&self) -> Result<(), EmbeddedError> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::SocketPathTooLong(socket));
        }
        Ok(())
    }

    async fn prepare_dirs(&self) -> Result<(), EmbeddedError> {
        for dir in [self.root.clone(), self.socket_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
            set_private(&dir)?;
            if self.run_as.switch {
                nix::unistd::chown(&dir, Some(self.run_as.uid), Some(self.run_as.gid))
                    .map_err(|e| io_error(&dir, e.into()))?;
            }
        }
        if self.run_as.switch {
            self.check_reachable().await?;
        }
        Ok(())
    }

    /// As root we created the directories, but the `postgres` user must be able to walk to them.
    async fn check_reachable(&self) -> Result<(), EmbeddedError> {
        let mut cmd = self.run_as.command("test");
        cmd.arg("-w").arg(&self.root);
        let reachable = cmd
            .status()
            .await
            .map(|status| status.success())
            .unwrap_or(false);
        if reachable {
            Ok(())
        } else {
            Err(EmbeddedError::Unreachable(self.root.clone()))
        }
    }

    async fn initdb(&self) -> Result<(), EmbeddedError> {
        tracing::info!(data_dir = %self.data_dir().display(), "creating the embedded PostgreSQL cluster");
        let mut cmd = self.run_as.command(self.binaries.tool("initdb"));
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ]);
        run(cmd, "initdb").await.map(|_| ())
    }

    async fn is_running(&self) -> Result<bool, EmbeddedError> {
        let mut cmd = self.pg_ctl();
        cmd.arg("status").arg("-D").arg(self.data_dir());
        let output = cmd
            .output()
            .await
            .map_err(|e| spawn_error("pg_ctl status", e))?;
        // pg_ctl status: 0 = running, 3 = not running, 4 = no usable data directory.
        Ok(output.status.code() == Some(0))
    }

    async fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c unix_socket_permissions=0700 \
             -c max_connections=200 -c shared_buffers=128MB -c fsync=on",
            self.socket_dir().display()
        );
        let mut cmd = self.pg_ctl();
        cmd.arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &options]);
        run(cmd, "pg_ctl start").await.map_err(|err| {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            let tail: String = log.lines().rev().take(10).collect::<Vec<_>>().join("\n");
            EmbeddedError::Command {
                what: "starting the embedded PostgreSQL".into(),
                detail: format!("{err}; last log lines:\n{tail}"),
            }
        })?;
        Ok(())
    }

    /// Creates `name` unless it exists (connects to the always-present `postgres` database).
    pub async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        use sqlx::Connection;
        let sql_error = |e: sqlx::Error| EmbeddedError::Command {
            what: format!("creating database {name}"),
            detail: e.to_string(),
        };
        let mut conn = sqlx::PgConnection::connect_with(&self.connect_options("postgres"))
            .await
            .map_err(sql_error)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .map_err(sql_error)?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE \"{}\"", name.replace('"', "")))
                .execute(&mut conn)
                .await
                .map_err(sql_error)?;
        }
        conn.close().await.map_err(sql_error)?;
        Ok(())
    }

    fn pg_ctl(&self) -> Command {
        self.run_as.command(self.binaries.tool("pg_ctl"))
    }
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(|source| io_error(path, source))
}

fn set_private(dir: &Path) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|source| io_error(dir, source))
}

fn io_error(path: &Path, source: std::io::Error) -> EmbeddedError {
    EmbeddedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn spawn_error(what: &str, e: std::io::Error) -> EmbeddedError {
    EmbeddedError::Command {
        what: what.into(),
        detail: e.to_string(),
    }
}

/// Runs a command to completion; a non-zero exit becomes an error carrying its stderr.
async fn run(mut cmd: Command, what: &str) -> Result<std::process::Output, EmbeddedError> {
    let output = cmd.output().await.map_err(|e| spawn_error(what, e))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(EmbeddedError::Command {
        what: what.into(),
        detail: format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    #[test]
    fn finds_the_system_binaries() {
        let binaries =
            PgBinaries::find().expect("PostgreSQL binaries are installed by the test command");
        assert!(binaries.tool("initdb").is_file());
    }

    #[test]
    fn refuses_socket_paths_that_do_not_fit() {
        let pg = EmbeddedPostgres {
            binaries: PgBinaries {
                bin_dir: PathBuf::from("/nowhere"),
            },
            run_as: RunAs::detect().expect("run as"),
            root: PathBuf::from(format!("/tmp/{}", "x".repeat(120))),
        };
        assert!(matches!(
            pg.check_socket_path(),
            Err(EmbeddedError::SocketPathTooLong(_))
        ));
    }

    #[tokio::test]
    async fn starts_restarts_and_reuses_a_cluster() {
        let dir = tempfile::Builder::new()
            .prefix("nox-emb")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let pg = EmbeddedPostgres::start(dir.path())
            .await
            .expect("first start");
        let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("nox"))
            .await
            .expect("connect");
        sqlx::raw_sql("CREATE TABLE kept (v INT); INSERT INTO kept VALUES (42)")
            .execute(&mut conn)
            .await
            .expect("write");
        conn.close().await.expect("close");

        // A second start while it runs reuses the running cluster.
        let again = EmbeddedPostgres::start(dir.path())
            .await
            .expect("reuse running");
        assert!(again.is_running().await.expect("status"));

        pg.stop().await.expect("stop");
        assert!(!pg.is_running().await.expect("status"));

        // Restart: same cluster, data intact, no second initdb.
        let restarted = EmbeddedPostgres::start(dir.path()).await.expect("restart");
        let mut conn = sqlx::PgConnection::connect_with(&restarted.connect_options("nox"))
            .await
            .expect("reconnect");
        let v: i32 = sqlx::query_scalar("SELECT v FROM kept")
            .fetch_one(&mut conn)
            .await
            .expect("read");
        assert_eq!(v, 42);
        conn.close().await.expect("close");

        if Uid::effective().is_root() {
            // As root, the cluster's files belong to the postgres user, never to root.
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(restarted.data_dir()).expect("meta").uid();
            assert_ne!(owner, 0, "PGDATA must not be owned by root");
        }
        restarted.stop().await.expect("final stop");
    }
}
