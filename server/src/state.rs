//! [`AppState`]: what every handler can reach.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use nox_persistence::db::Database;

use crate::access::LiveAccess;
use crate::auth::tokens::TokenKeys;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::file_store::FileStore;
use crate::mailer::Mailer;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::recent_versions::RecentVersions;
use crate::rooms::RoomRegistry;

#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub config: Arc<Config>,
    pub tokens: TokenKeys,
    pub metrics: Metrics,
    pub rooms: Arc<RoomRegistry>,
    /// Source of process-unique WebSocket connection ids.
    pub next_conn: Arc<AtomicU64>,
    /// Abuse limits of login, register, refresh and invitations.
    pub rate_limits: Arc<RateLimits>,
    /// Where verification, reset and invitation mails go.
    pub mailer: Arc<dyn Mailer>,
    /// Open sockets, so rights changes reach them at once.
    pub live: Arc<LiveAccess>,
    /// Uploaded files' bytes.
    pub files: Arc<dyn FileStore>,
    /// This process as a node of the cluster (DESIGN §7).
    pub cluster: Arc<Cluster>,
    /// Version documents decoded lately (a restore often follows a diff of the same version).
    pub recent_versions: Arc<RecentVersions>,
}
