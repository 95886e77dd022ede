//! Authorization that holds on open WebSockets (issue: rights changed while connected).
//!
//! Every open workspace socket registers here with who it is (user, session or API key, org,
//! workspace) and a [`Notify`]. A route that changes rights — removing a member, editing a role,
//! revoking a session or key, deleting a workspace — calls [`LiveAccess::recheck`] with the
//! affected [`Scope`]; each matching socket re-runs its authorization against the database at once
//! and closes (4401 / 4403) or drops to read-only. Sockets also re-check on their own every
//! [`PERIODIC_RECHECK`], which catches expiry and changes made outside the API.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;
use uuid::Uuid;

use axum::http::StatusCode;
use nox_persistence::iam::{api_keys, billing, sessions};

use crate::auth::{AuthUser, Permission};
use crate::error::ApiError;
use crate::rooms::peer::{CloseReason, ConnId, PeerInfo};
use crate::rooms::{RoomCommand, RoomHandle};
use crate::routes::require_workspace_for;
use crate::state::AppState;

/// How often an open socket re-checks its rights even without an event.
pub const PERIODIC_RECHECK: Duration = Duration::from_secs(60);

/// Which sockets a change may affect. Over-matching is harmless (one query per socket).
#[derive(Debug, Clone)]
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

#[derive(Debug, Default)]
pub struct LiveAccess {
    conns: DashMap<ConnId, LiveConn>,
}

impl LiveAccess {
    /// Registers a socket; it stays registered until the returned guard drops.
    pub fn register(self: &Arc<Self>, conn: ConnId, entry: LiveConn) -> Registration {
        self.conns.insert(conn, entry);
        Registration {
            access: self.clone(),
            conn,
        }
    }

    /// Wakes every socket in `scope` to re-check its rights. Returns how many were woken.
    pub fn recheck(&self, scope: Scope) -> usize {
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

    /// Open sockets on workspaces of one organization (the `max_connections` quota).
    pub fn count_org(&self, org_id: Uuid) -> usize {
        self.conns
            .iter()
            .filter(|e| e.value().org_id == org_id)
            .count()
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

/// What a connection may do in its workspace right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub can_write: bool,
    pub can_override_locks: bool,
}

impl Rights {
    pub fn from_permissions(permissions: &[String]) -> Self {
        Self {
            can_write: Permission::WorkspaceWrite.granted_by(permissions),
            can_override_locks: Permission::LocksOverride.granted_by(permissions),
        }
    }
}

/// 402 when the organization already has as many open sockets as its plan allows.
pub async fn check_connection_quota(state: &AppState, org_id: Uuid) -> Result<(), ApiError> {
    let (limit, plan) = billing::connection_limit(state.db.pool(), org_id).await?;
    match limit {
        Some(max) if state.live.count_org(org_id) as i64 >= max => Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "quota_exceeded",
            format!("the {plan} plan allows at most {max} concurrent connections"),
        )),
        _ => Ok(()),
    }
}

/// Re-runs the authorization a socket was admitted with. Err closes it: 4401 when the credential
/// is gone, 4403 when the workspace is no longer reachable. `Ok(None)`: the database could not
/// answer; keep the current rights rather than drop a healthy connection.
pub async fn current_rights(
    state: &AppState,
    auth: AuthUser,
    workspace_id: Uuid,
) -> Result<Option<Rights>, CloseReason> {
    let pool = state.db.pool();
    let alive = match auth.api_key {
        Some(key) => api_keys::is_usable(pool, key.key_id).await,
        None => sessions::is_active(pool, auth.session_id, auth.user_id).await,
    };
    if matches!(alive, Ok(false)) {
        return Err(CloseReason::new(4401, "credential revoked or expired"));
    }
    let revoked = || CloseReason::new(4403, "access to this workspace was revoked");
    let permissions = match require_workspace_for(state, auth, workspace_id).await {
        Ok((_, permissions)) => permissions,
        Err(err) if err.status == StatusCode::NOT_FOUND => return Err(revoked()),
        Err(_) => return Ok(None),
    };
    if !Permission::WorkspaceRead.granted_by(&permissions) {
        return Err(revoked());
    }
    Ok(Some(Rights::from_permissions(&permissions)))
}

/// Re-checks one joined connection and tells its room when its rights changed.
pub async fn reauthorize(
    state: &AppState,
    auth: AuthUser,
    workspace_id: Uuid,
    info: &mut PeerInfo,
    room: &RoomHandle,
) -> Result<(), CloseReason> {
    let Some(rights) = current_rights(state, auth, workspace_id).await? else {
        return Ok(());
    };
    let before = Rights {
        can_write: info.can_write,
        can_override_locks: info.can_override_locks,
    };
    if rights != before {
        info.can_write = rights.can_write;
        info.can_override_locks = rights.can_override_locks;
        let _ = room
            .send(RoomCommand::SetAccess {
                conn: info.conn,
                can_write: rights.can_write,
                can_override_locks: rights.can_override_locks,
            })
            .await;
    }
    Ok(())
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
