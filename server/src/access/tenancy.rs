//! Tenancy: which organizations, projects and workspaces a caller reaches, with which permissions.
//!
//! Anything the caller cannot see is [`AccessError::NotFound`], exactly as if it did not exist; a
//! member lacking a permission gets [`AccessError::MissingPermission`]. API keys are narrowed here
//! too: a key only reaches its own organization (others are not found) and only with its scopes.

use nox_persistence::db::Database;
use nox_persistence::iam::orgs::{self, Membership};
use nox_persistence::iam::projects::{self, Project};
use nox_persistence::iam::workspaces::{self, WorkspaceAccess};
use uuid::Uuid;

use super::{AccessError, AuthUser, Rights};
use crate::auth::Permission;

/// The caller's membership in `org_id` (permissions narrowed to an API key's scopes).
pub async fn org_member(
    db: &Database,
    user: AuthUser,
    org_id: Uuid,
) -> Result<Membership, AccessError> {
    let mut member = orgs::membership(db.pool(), org_id, user.user_id)
        .await?
        .ok_or(AccessError::NotFound("organization"))?;
    member.permissions = user
        .restrict(org_id, member.permissions)
        .ok_or(AccessError::NotFound("organization"))?;
    Ok(member)
}

/// The caller's membership in `org_id` when it grants `needed`.
pub async fn org_permission(
    db: &Database,
    user: AuthUser,
    org_id: Uuid,
    needed: Permission,
) -> Result<Membership, AccessError> {
    let member = org_member(db, user, org_id).await?;
    require(&member.permissions, needed)?;
    Ok(member)
}

/// Refused unless `permissions` grants `needed`.
pub fn require(permissions: &[String], needed: Permission) -> Result<(), AccessError> {
    if needed.granted_by(permissions) {
        Ok(())
    } else {
        Err(AccessError::MissingPermission(needed))
    }
}

/// Refused unless the caller holds every permission of `role`: nobody hands out (or takes away
/// from someone else) rights they do not have themselves, so `members:manage` cannot mint an Owner.
pub fn require_grantable(caller: &[String], role: &[String]) -> Result<(), AccessError> {
    let missing: Vec<&str> = role
        .iter()
        .filter(|p| !caller.contains(p))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AccessError::NotGrantable(missing.join(", ")))
    }
}

/// A workspace the caller reaches, and what it may do there.
#[derive(Debug, Clone)]
pub struct WorkspaceGrant {
    pub access: WorkspaceAccess,
    /// The caller's permissions in the owning organization, narrowed to an API key's scopes.
    pub permissions: Vec<String>,
}

impl WorkspaceGrant {
    pub fn org_id(&self) -> Uuid {
        self.access.org_id
    }

    /// Refused unless the grant includes `needed`. Writing to a workspace of an ARCHIVED project
    /// is refused whatever the role holds: archiving makes a project read-only.
    pub fn require(&self, needed: Permission) -> Result<(), AccessError> {
        require(&self.permissions, needed)?;
        if needed == Permission::WorkspaceWrite && self.access.project_archived {
            return Err(AccessError::ProjectArchived);
        }
        Ok(())
    }

    /// What a live connection with this grant may do (read-only in an archived project).
    pub fn rights(&self) -> Rights {
        let mut rights = Rights::from_permissions(&self.permissions);
        rights.can_write &= !self.access.project_archived;
        rights
    }
}

/// The workspace and the caller's permissions in its organization; not found when it does not
/// exist, is deleted, or the caller (or its API key) cannot reach its organization.
pub async fn workspace(
    db: &Database,
    user: AuthUser,
    workspace_id: Uuid,
) -> Result<WorkspaceGrant, AccessError> {
    let access = workspaces::access(db.pool(), workspace_id, user.user_id)
        .await?
        .ok_or(AccessError::NotFound("workspace"))?;
    let held = access
        .permissions
        .clone()
        .ok_or(AccessError::NotFound("workspace"))?;
    let permissions = user
        .restrict(access.org_id, held)
        .ok_or(AccessError::NotFound("workspace"))?;
    Ok(WorkspaceGrant {
        access,
        permissions,
    })
}

/// The workspace, when the caller reaches it *and* holds `needed` there (not found for strangers,
/// missing permission for members without it).
pub async fn workspace_permission(
    db: &Database,
    user: AuthUser,
    workspace_id: Uuid,
    needed: Permission,
) -> Result<WorkspaceGrant, AccessError> {
    let grant = workspace(db, user, workspace_id).await?;
    grant.require(needed)?;
    Ok(grant)
}

/// A live project in an organization the caller reaches, with the caller's permissions there.
pub async fn project(
    db: &Database,
    user: AuthUser,
    project_id: Uuid,
) -> Result<(Project, Vec<String>), AccessError> {
    let project = projects::find_live(db.pool(), project_id)
        .await?
        .ok_or(AccessError::NotFound("project"))?;
    let member = match org_member(db, user, project.org_id).await {
        Ok(member) => member,
        Err(AccessError::NotFound(_)) => return Err(AccessError::NotFound("project")),
        Err(other) => return Err(other),
    };
    Ok((project, member.permissions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantable_only_within_the_callers_own_permissions() {
        let caller = vec!["members:manage".to_string(), "workspace:read".to_string()];
        assert!(require_grantable(&caller, &["workspace:read".to_string()]).is_ok());
        let err = require_grantable(&caller, &["org:admin".to_string()]).expect_err("refused");
        assert!(err.to_string().contains("org:admin"));
    }

    #[test]
    fn require_names_the_missing_permission() {
        let err = require(&[], Permission::WorkspaceWrite).expect_err("refused");
        assert!(matches!(
            err,
            AccessError::MissingPermission(Permission::WorkspaceWrite)
        ));
        assert!(err.to_string().contains("workspace:write"));
    }
}
