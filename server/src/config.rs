//! Runtime configuration: parsed once from the command line and environment into [`Config`].
//!
//! Every setting has a default so `nox-sync serve` runs with zero configuration: without
//! `DATABASE_URL` the server starts its own PostgreSQL cluster inside `NOX_DATA_DIR`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// `nox-sync`: the Nox block canvas collaboration server.
#[derive(Debug, Parser)]
#[command(name = "nox-sync", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run only the embedded PostgreSQL of NOX_DATA_DIR (migrated), print its `DATABASE_URL`, and
    /// keep it running until SIGINT/SIGTERM: the shared database of several nodes on one machine.
    Database,
}

/// Every setting of the server. Each field can be given as a flag or an environment variable.
#[derive(Clone, Args)]
pub struct Config {
    /// Address the HTTP/WebSocket server listens on.
    #[arg(long, env = "NOX_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// PostgreSQL connection URL. When unset, Nox Sync starts a private PostgreSQL cluster
    /// in NOX_DATA_DIR from the system's PostgreSQL binaries.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for the embedded PostgreSQL cluster and generated secrets.
    #[arg(long, env = "NOX_DATA_DIR", default_value = "./nox-data")]
    pub data_dir: PathBuf,

    /// Secret used to sign access tokens (HS256). When unset, one is generated once: kept in the
    /// database when DATABASE_URL is set (so every node of a cluster shares it), else in
    /// NOX_DATA_DIR/jwt-secret. Never logged.
    #[arg(long, env = "NOX_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of an access token, in seconds.
    #[arg(long, env = "NOX_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,

    /// Lifetime of a refresh token (and its session), in seconds.
    #[arg(long, env = "NOX_REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009.
    #[arg(long, env = "NOX_MAX_FRAME_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest HTTP request body accepted, in bytes.
    #[arg(long, env = "NOX_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Where uploaded files are kept (content-addressed). Defaults to NOX_DATA_DIR/files.
    #[arg(long, env = "NOX_FILE_STORE")]
    pub file_store: Option<PathBuf>,

    /// Largest file upload accepted, in bytes, whatever the plan allows (the upload route's
    /// body limit; every other route keeps NOX_MAX_BODY_BYTES).
    #[arg(long, env = "NOX_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Messages queued for one WebSocket peer before it counts as a slow consumer (close 1013).
    #[arg(long, env = "NOX_PEER_QUEUE", default_value_t = 1024)]
    pub peer_queue: usize,

    /// Milliseconds between compactions of a room that has new updates.
    #[arg(long, env = "NOX_COMPACT_INTERVAL_MS", default_value_t = 3000)]
    pub compact_interval_ms: u64,

    /// Compactions (snapshot + projection) running at once across all rooms; a room whose turn
    /// comes while all are busy compacts later. Keeps compaction from starving live appends of
    /// CPU and database connections.
    #[arg(long, env = "NOX_COMPACTION_CONCURRENCY", default_value_t = 2)]
    pub compaction_concurrency: usize,

    /// Seconds a room with no connections stays loaded before it is compacted and unloaded.
    #[arg(long, env = "NOX_ROOM_IDLE_SECS", default_value_t = 30)]
    pub room_idle_secs: u64,

    /// Seconds of quiet after a change (or of continuous editing) after which a workspace's state
    /// is stored as an automatic version. 0 turns automatic versions off.
    #[arg(long, env = "NOX_AUTO_VERSION_SECS", default_value_t = 300)]
    pub auto_version_secs: u64,

    /// Milliseconds after which an awareness state its client has not renewed is dropped (the
    /// y-websocket server uses 30 s; clients renew every 15 s).
    #[arg(long, env = "NOX_AWARENESS_TIMEOUT_MS", default_value_t = 30_000)]
    pub awareness_timeout_ms: u64,

    /// Maximum PostgreSQL connections in the pool.
    #[arg(long, env = "NOX_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Login attempts allowed per client IP and, separately, per email, in each rate-limit window.
    /// 0 disables the limit.
    #[arg(long, env = "NOX_RATE_LIMIT_LOGIN", default_value_t = 10)]
    pub rate_limit_login: u32,

    /// Registrations (and password-reset requests) allowed per client IP in each window.
    #[arg(long, env = "NOX_RATE_LIMIT_REGISTER", default_value_t = 5)]
    pub rate_limit_register: u32,

    /// Token refreshes allowed per client IP in each window.
    #[arg(long, env = "NOX_RATE_LIMIT_REFRESH", default_value_t = 30)]
    pub rate_limit_refresh: u32,

    /// Invitations allowed per key (see `RateLimits::invitations`) in each window.
    #[arg(long, env = "NOX_RATE_LIMIT_INVITATIONS", default_value_t = 20)]
    pub rate_limit_invitations: u32,

    /// Length of a rate-limit window, in seconds.
    #[arg(long, env = "NOX_RATE_LIMIT_WINDOW_SECS", default_value_t = 60)]
    pub rate_limit_window_secs: u64,

    /// Consecutive failed logins that lock an account.
    #[arg(long, env = "NOX_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,

    /// How long a locked account stays locked, in seconds.
    #[arg(long, env = "NOX_LOCKOUT_SECS", default_value_t = 15 * 60)]
    pub lockout_secs: u64,

    /// Address (`host:port`) other nodes reach this one at, for relaying sockets and requests of
    /// the workspaces it owns (docs/design.md §7). Needed when several nodes share DATABASE_URL on
    /// different machines; defaults to the listening address (127.0.0.1 when listening on all
    /// interfaces).
    #[arg(long, env = "NOX_NODE_ADDR")]
    pub node_addr: Option<String>,

    /// Milliseconds a node may go without a heartbeat before another node may take over its
    /// workspaces (failover time). Heartbeats are sent five times per TTL.
    #[arg(long, env = "NOX_NODE_TTL_MS", default_value_t = 5000)]
    pub node_ttl_ms: u64,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `nox_server=debug`.
    #[arg(long, env = "NOX_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `text` or `json`.
    #[arg(long, env = "NOX_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Config {
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }
    pub fn refresh_token_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_secs)
    }
    pub fn compact_interval(&self) -> Duration {
        Duration::from_millis(self.compact_interval_ms)
    }
    pub fn room_idle(&self) -> Duration {
        Duration::from_secs(self.room_idle_secs)
    }
    /// `None` when automatic versions are off.
    pub fn auto_version(&self) -> Option<Duration> {
        (self.auto_version_secs > 0).then(|| Duration::from_secs(self.auto_version_secs))
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms.max(100))
    }

    /// The address other nodes reach this one at, given the address it is listening on.
    pub fn node_addr(&self, listening: SocketAddr) -> String {
        if let Some(addr) = &self.node_addr {
            return addr.clone();
        }
        if listening.ip().is_unspecified() {
            format!("127.0.0.1:{}", listening.port())
        } else {
            listening.to_string()
        }
    }

    /// The file store's directory: NOX_FILE_STORE, else NOX_DATA_DIR/files.
    pub fn file_store_dir(&self) -> PathBuf {
        self.file_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files"))
    }

    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Cli::parse_from(["nox-sync"]).config
    }
}

/// Hand-written so that secrets never reach a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<set>"))
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("peer_queue", &self.peer_queue)
            .field("compact_interval_ms", &self.compact_interval_ms)
            .field("compaction_concurrency", &self.compaction_concurrency)
            .field("room_idle_secs", &self.room_idle_secs)
            .field("auto_version_secs", &self.auto_version_secs)
            .field("node_addr", &self.node_addr)
            .field("node_ttl_ms", &self.node_ttl_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_usable_without_any_environment() {
        let config = Cli::parse_from(["nox-sync"]).config;
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./nox-data"));
        assert_eq!(config.max_frame_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut config = Cli::parse_from(["nox-sync"]).config;
        config.jwt_secret = Some("super-secret-value".into());
        config.database_url = Some("postgres://u:pw@h/db".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("super-secret-value"));
        assert!(!shown.contains("pw@h"));
    }

    #[test]
    fn database_subcommand_parses() {
        let cli = Cli::parse_from(["nox-sync", "database"]);
        assert!(matches!(cli.command, Some(Command::Database)));
    }

    #[test]
    fn node_address_defaults_to_the_listening_one() {
        let mut config = Cli::parse_from(["nox-sync"]).config;
        let listening: SocketAddr = "0.0.0.0:9000".parse().expect("addr");
        assert_eq!(config.node_addr(listening), "127.0.0.1:9000");
        assert_eq!(
            config.node_addr("10.0.0.5:80".parse().expect("addr")),
            "10.0.0.5:80"
        );
        config.node_addr = Some("nox-2.internal:8080".into());
        assert_eq!(config.node_addr(listening), "nox-2.internal:8080");
    }

    #[test]
    fn migrate_subcommand_parses() {
        let cli = Cli::parse_from(["nox-sync", "migrate"]);
        assert!(matches!(cli.command, Some(Command::Migrate)));
    }
}
