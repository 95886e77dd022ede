//! Tenancy checks shared by the routes. Anything the caller cannot see answers 404, exactly as if it
//! did not exist; a member lacking a permission gets 403.

use nox_persistence::iam::orgs::{self, Membership};
use nox_persistence::iam::workspaces::{self, WorkspaceAccess};
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::error::ApiError;
use crate::state::AppState;

/// The caller's membership in `org_id`, or 404.
pub async fn require_org_member(
    state: &AppState,
    user: AuthUser,
    org_id: Uuid,
) -> Result<Membership, ApiError> {
    orgs::membership(state.db.pool(), org_id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// 403 unless `permissions` grants `needed`.
pub fn require_permission(permissions: &[String], needed: Permission) -> Result<(), ApiError> {
    if needed.granted_by(permissions) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this action needs the '{}' permission",
            needed.as_str()
        )))
    }
}

/// The workspace and the caller's permissions in its organization; 404 when it does not exist or
/// the caller is not a member of its organization.
pub async fn require_workspace(
    state: &AppState,
    user_id: Uuid,
    workspace_id: Uuid,
) -> Result<(WorkspaceAccess, Vec<String>), ApiError> {
    let access = workspaces::access(state.db.pool(), workspace_id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let permissions = access
        .permissions
        .clone()
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok((access, permissions))
}
