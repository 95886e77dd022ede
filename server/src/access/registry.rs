//! The registry of open live connections, so authorization holds on them too.
//!
//! Every live connection to a workspace registers here with who it is (user, API key, org,
//! workspace) and a [`Notify`]. Code that changes rights — removing a member, editing a role,
//! revoking a session or key, deleting a workspace — calls [`LiveAccess::recheck`] with the
//! affected [`Scope`]; each matching connection re-runs [`super::rights::recheck`] at once and is
//! closed or dropped to read-only by its session (`live/session.rs`). Connections also re-check on
//! their own every [`PERIODIC_RECHECK`], which catches expiry and changes made elsewhere.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::cluster::{BusMessage, Cluster};
use crate::rooms::peer::ConnId;

/// How often an open socket re-checks its rights even without an event.
pub const PERIODIC_RECHECK: Duration = Duration::from_secs(60);

/// Which sockets a change may affect. Over-matching is harmless (one query per socket).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Every socket of a user (sessions revoked, password changed, account deleted).
    User(Uuid),
    /// Every socket authenticated with this API key.
    ApiKey(Uuid),
    /// Every socket on a workspace of this organization (roles, members, org deleted).
    Org(Uuid),
    /// Sockets on these workspaces (workspace or project deleted).
    Workspaces(Vec<Uuid>),
}

/// One registered socket.
#[derive(Debug)]
pub struct LiveConn {
    pub user_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub org_id: Uuid,
    pub workspace_id: Uuid,
    pub recheck: Arc<Notify>,
    /// Relayed here by another node: its client counts there, not here (DESIGN §7).
    pub relayed: bool,
}

impl LiveConn {
    fn matches(&self, scope: &Scope) -> bool {
        match scope {
            Scope::User(user) => self.user_id == *user,
            Scope::ApiKey(key) => self.api_key_id == Some(*key),
            Scope::Org(org) => self.org_id == *org,
            Scope::Workspaces(ids) => ids.contains(&self.workspace_id),
        }
    }
}

#[derive(Default)]
pub struct LiveAccess {
    conns: DashMap<ConnId, LiveConn>,
    /// Other nodes hold sockets too: re-checks go out on the cluster bus (DESIGN §7).
    cluster: Option<Arc<Cluster>>,
}

impl LiveAccess {
    /// The registry of a node: its re-checks also reach the sockets of the other nodes.
    pub fn in_cluster(cluster: Arc<Cluster>) -> Self {
        Self {
            conns: DashMap::new(),
            cluster: Some(cluster),
        }
    }

    /// Registers a socket; it stays registered until the returned guard drops.
    pub fn register(self: &Arc<Self>, conn: ConnId, entry: LiveConn) -> Registration {
        self.conns.insert(conn, entry);
        Registration {
            access: self.clone(),
            conn,
        }
    }

    /// Wakes every socket in `scope`, on every node, to re-check its rights. Returns how many
    /// were woken on this node.
    pub fn recheck(&self, scope: Scope) -> usize {
        let others = self.cluster.as_ref().filter(|c| c.has_others());
        if let (Some(cluster), Ok(scope)) = (others, serde_json::to_value(&scope)) {
            let cluster = cluster.clone();
            tokio::spawn(async move { cluster.publish(BusMessage::Recheck { scope }).await });
        }
        self.recheck_local(scope)
    }

    /// Wakes the sockets of this node in `scope` (a re-check another node asked for).
    pub fn recheck_local(&self, scope: Scope) -> usize {
        let mut woken = 0;
        for entry in self.conns.iter().filter(|e| e.value().matches(&scope)) {
            entry.value().recheck.notify_one();
            woken += 1;
        }
        if woken > 0 {
            tracing::debug!(?scope, woken, "re-checking live sockets");
        }
        woken
    }

    /// Open sockets of one organization's clients on this node (the `max_connections` quota).
    pub fn count_org(&self, org_id: Uuid) -> usize {
        self.conns
            .iter()
            .filter(|e| e.value().org_id == org_id && !e.value().relayed)
            .count()
    }

    /// Open sockets of clients on this node, per organization (reported to the cluster).
    pub fn count_by_org(&self) -> Vec<(Uuid, i32)> {
        let mut counts: std::collections::HashMap<Uuid, i32> = std::collections::HashMap::new();
        for entry in self.conns.iter().filter(|e| !e.value().relayed) {
            *counts.entry(entry.value().org_id).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// Removes its socket from [`LiveAccess`] when dropped.
pub struct Registration {
    access: Arc<LiveAccess>,
    conn: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.access.conns.remove(&self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recheck_wakes_only_matching_sockets_and_registrations_clean_up() {
        let live = Arc::new(LiveAccess::default());
        let (user, org, ws) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let entry = |user_id, workspace_id| LiveConn {
            user_id,
            api_key_id: None,
            org_id: org,
            workspace_id,
            recheck: Arc::new(Notify::new()),
            relayed: false,
        };
        let a = live.register(1, entry(user, ws));
        let b = live.register(2, entry(Uuid::new_v4(), Uuid::new_v4()));
        assert_eq!(live.recheck(Scope::User(user)), 1);
        assert_eq!(live.recheck(Scope::Org(org)), 2);
        assert_eq!(live.recheck(Scope::Workspaces(vec![ws])), 1);
        assert_eq!(live.recheck(Scope::ApiKey(Uuid::new_v4())), 0);
        drop(a);
        drop(b);
        assert!(live.is_empty());
    }
}
