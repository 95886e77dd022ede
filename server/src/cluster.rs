//! This process as one node of a cluster on a shared PostgreSQL (docs/design.md §7).
//!
//! [`Cluster`] is the node's identity (a fresh id per process, the address other nodes reach it
//! at), its lease requests for workspace rooms, its view of the other live nodes (refreshed with
//! every heartbeat) and the cluster bus: PostgreSQL `LISTEN/NOTIFY` on one channel, for what a
//! node must tell the others (re-check these sockets' rights, push this event to a workspace's
//! peers). Leases and fencing themselves are SQL (`nox_persistence::cluster`); the loops that
//! heartbeat and listen are the process's (`node.rs`).

use std::sync::RwLock;
use std::time::Duration;

use nox_persistence::cluster::{self as store, Lease, LeaseOutcome, NodeInfo};
use nox_persistence::db::Database;
use nox_persistence::error::PersistenceError;
use serde::{Deserialize, Serialize};

use crate::auth::tokens::constant_time_eq;
use uuid::Uuid;

/// The one notification channel of the cluster bus.
pub const BUS_CHANNEL: &str = "nox_cluster";
/// NOTIFY payloads must stay below PostgreSQL's 8000 bytes; larger messages are not sent inline.
const MAX_INLINE_PAYLOAD: usize = 7000;

/// A request header on a socket or request one node relays to another: "serve it here or refuse
/// it; do not relay it again" (no relay loops while a lease moves). Its value is the cluster's
/// relay key, so only nodes can set it.
pub const RELAYED_HEADER: &str = "x-nox-relay-key";

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// Re-check the rights of the live sockets in this scope (a serialized `access::Scope`).
    Recheck { scope: serde_json::Value },
    /// Push a stateless event to the opted-in peers of a workspace, where its room is loaded.
    RoomEvent {
        workspace_id: Uuid,
        event: String,
        audience: String,
    },
}

/// A bus message as sent, with its origin (a node ignores its own messages).
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub from: Uuid,
    #[serde(flatten)]
    pub message: BusMessage,
}

pub struct Cluster {
    db: Database,
    node: NodeInfo,
    ttl: Duration,
    /// Proves a relayed request comes from a node: derived from the token signing secret, which
    /// every node of a cluster shares.
    relay_key: String,
    /// Other nodes whose heartbeat was fresh at our last heartbeat.
    others: RwLock<Vec<NodeInfo>>,
}

impl Cluster {
    /// Registers this process as a node reachable at `addr`.
    pub async fn join(
        db: Database,
        addr: String,
        ttl: Duration,
        relay_key: String,
    ) -> Result<Self, PersistenceError> {
        let node = NodeInfo {
            id: Uuid::new_v4(),
            addr,
        };
        store::register_node(db.pool(), &node).await?;
        tracing::info!(node_id = %node.id, addr = %node.addr, "joined the cluster");
        let cluster = Self {
            db,
            node,
            ttl,
            relay_key,
            others: RwLock::default(),
        };
        cluster.refresh_others().await?;
        Ok(cluster)
    }

    pub fn node_id(&self) -> Uuid {
        self.node.id
    }

    pub fn addr(&self) -> &str {
        &self.node.addr
    }

    pub fn relay_key(&self) -> &str {
        &self.relay_key
    }

    /// Whether a request carries this cluster's relay key (compared in constant time).
    pub fn is_relayed(&self, headers: &axum::http::HeaderMap) -> bool {
        headers
            .get(RELAYED_HEADER)
            .is_some_and(|offered| constant_time_eq(offered.as_bytes(), self.relay_key.as_bytes()))
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often heartbeats go out: five per TTL, so one lost heartbeat never costs a lease.
    pub fn heartbeat_interval(&self) -> Duration {
        self.ttl / 5
    }

    /// Takes the workspace's lease, unless another live node holds it.
    pub async fn acquire(&self, workspace_id: Uuid) -> Result<LeaseOutcome, PersistenceError> {
        store::acquire_lease(self.db.pool(), workspace_id, self.node.id, self.ttl).await
    }

    /// Gives a lease up after the room's last write; failures only delay the next owner by a TTL.
    pub async fn release(&self, lease: &Lease) {
        if let Err(err) = store::release_lease(self.db.pool(), lease).await {
            tracing::warn!(workspace_id = %lease.workspace_id, error = %err,
                "could not release the workspace lease; it expires with this node's heartbeat");
        }
    }

    /// Renews this node's heartbeat; answers the leases it still holds.
    pub async fn heartbeat(&self) -> Result<Vec<Lease>, PersistenceError> {
        let held = store::heartbeat(self.db.pool(), &self.node).await?;
        self.refresh_others().await?;
        Ok(held)
    }

    async fn refresh_others(&self) -> Result<(), PersistenceError> {
        let live = store::live_nodes(self.db.pool(), self.ttl).await?;
        let others = live.into_iter().filter(|n| n.id != self.node.id).collect();
        if let Ok(mut slot) = self.others.write() {
            *slot = others;
        }
        Ok(())
    }

    /// Whether any other node was alive at the last heartbeat. A lone node never asks the
    /// database who owns a workspace: it owns every room it loads.
    pub fn has_others(&self) -> bool {
        self.others.read().map(|o| !o.is_empty()).unwrap_or(false)
    }

    /// The other live node that owns the workspace, if one does.
    pub async fn remote_owner(
        &self,
        workspace_id: Uuid,
    ) -> Result<Option<NodeInfo>, PersistenceError> {
        if !self.has_others() {
            return Ok(None);
        }
        let owner = store::owner(self.db.pool(), workspace_id, self.ttl).await?;
        Ok(owner.filter(|n| n.id != self.node.id))
    }

    /// Reports this node's open connections per organization (with each heartbeat).
    pub async fn report_connections(
        &self,
        per_org: &[(Uuid, i32)],
    ) -> Result<(), PersistenceError> {
        store::report_connections(self.db.pool(), self.node.id, per_org).await
    }

    /// An organization's open connections on the other live nodes (0 for a lone node).
    pub async fn connections_elsewhere(&self, org_id: Uuid) -> Result<i64, PersistenceError> {
        if !self.has_others() {
            return Ok(0);
        }
        store::connections_elsewhere(self.db.pool(), org_id, self.node.id, self.ttl).await
    }

    /// Tells the other nodes (best effort: a lost message is covered by each socket's periodic
    /// re-check, and events describe rows already committed).
    pub async fn publish(&self, message: BusMessage) {
        if !self.has_others() {
            return;
        }
        let envelope = Envelope {
            from: self.node.id,
            message,
        };
        let payload = match serde_json::to_string(&envelope) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "could not encode a cluster message");
                return;
            }
        };
        let sent = if payload.len() <= MAX_INLINE_PAYLOAD {
            store::notify(self.db.pool(), BUS_CHANNEL, &payload).await
        } else {
            store::notify_stored(self.db.pool(), BUS_CHANNEL, &payload).await
        };
        if let Err(err) = sent {
            tracing::warn!(error = %err, "could not publish a cluster message");
        }
    }

    /// Decodes a notification of [`BUS_CHANNEL`]; `None` for this node's own messages.
    pub async fn receive(&self, payload: &str) -> Option<BusMessage> {
        let payload = match store::stored_payload(self.db.pool(), payload).await {
            Ok(Some(stored)) => stored,
            Ok(None) => payload.to_string(),
            Err(err) => {
                tracing::warn!(error = %err, "could not read a stored cluster message");
                return None;
            }
        };
        match serde_json::from_str::<Envelope>(&payload) {
            Ok(envelope) if envelope.from != self.node.id => Some(envelope.message),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(error = %err, "ignoring a malformed cluster message");
                None
            }
        }
    }

    /// Leaves the cluster (graceful shutdown): leases released, the node row removed.
    pub async fn leave(&self) {
        if let Err(err) = store::deregister_node(self.db.pool(), self.node.id).await {
            tracing::warn!(error = %err, "could not leave the cluster cleanly");
        }
    }
}
