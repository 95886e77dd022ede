//! What a live connection may do in its workspace, and the re-check that keeps it true while the
//! connection stays open.

use nox_persistence::db::Database;
use nox_persistence::iam::{api_keys, sessions};
use uuid::Uuid;

use super::{tenancy, AccessError, AuthUser};
use crate::auth::Permission;

/// What a connection may do in its workspace right now. Reading is implied: a caller without
/// `workspace:read` is never admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Its updates are applied (otherwise dropped with a permission-denied answer), and it may
    /// take edit locks.
    pub can_write: bool,
    /// May break other users' edit locks (`locks:override`).
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

/// Re-runs the authorization a live connection was admitted with: the credential must still be
/// usable ([`AccessError::Unauthenticated`] otherwise) and the workspace still readable
/// ([`AccessError::NotFound`] / [`AccessError::MissingPermission`]). [`AccessError::Storage`]
/// means the question could not be answered, which callers must not treat as a refusal.
pub async fn recheck(
    db: &Database,
    caller: AuthUser,
    workspace_id: Uuid,
) -> Result<Rights, AccessError> {
    let usable = match caller.api_key {
        Some(key) => api_keys::is_usable(db.pool(), key.key_id).await?,
        None => sessions::is_active(db.pool(), caller.session_id, caller.user_id).await?,
    };
    if !usable {
        return Err(AccessError::Unauthenticated(
            "credential revoked or expired",
        ));
    }
    let grant = tenancy::workspace(db, caller, workspace_id).await?;
    grant.require(Permission::WorkspaceRead)?;
    Ok(grant.rights())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_the_permission_list() {
        let held = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Rights::from_permissions(&held(&["workspace:read"])),
            Rights {
                can_write: false,
                can_override_locks: false
            }
        );
        let editor = Rights::from_permissions(&held(&["workspace:read", "workspace:write"]));
        assert!(editor.can_write && !editor.can_override_locks);
        assert!(Rights::from_permissions(&held(&["locks:override"])).can_override_locks);
    }
}
