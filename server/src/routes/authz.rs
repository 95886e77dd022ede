//! Tenancy checks shared by the routes. Anything the caller cannot see answers 404, exactly as if it
//! did not exist; a member lacking a permission gets 403. API keys are narrowed here too: a key
//! only reaches its own organization (others answer 404) and only with its scopes.

use axum::http::StatusCode;
use nox_persistence::iam::audit::Actor;
use nox_persistence::iam::orgs::{self, IamError, Membership};
use nox_persistence::iam::projects::{self, Project};
use nox_persistence::iam::workspaces::{self, WorkspaceAccess};
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::error::ApiError;
use crate::routes::ClientInfo;
use crate::state::AppState;

/// The caller's membership in `org_id` (permissions narrowed to an API key's scopes), or 404.
pub async fn require_org_member(
    state: &AppState,
    user: AuthUser,
    org_id: Uuid,
) -> Result<Membership, ApiError> {
    let mut member = orgs::membership(state.db.pool(), org_id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    member.permissions = user
        .restrict(org_id, member.permissions)
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(member)
}

/// The caller's membership in `org_id` when it grants `needed`: 404 for non-members, 403 otherwise.
pub async fn require_org_permission(
    state: &AppState,
    user: AuthUser,
    org_id: Uuid,
    needed: Permission,
) -> Result<Membership, ApiError> {
    let member = require_org_member(state, user, org_id).await?;
    require_permission(&member.permissions, needed)?;
    Ok(member)
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

/// 403 unless the caller holds every permission of `role`: nobody hands out (or takes away from
/// someone else) rights they do not have themselves, so `members:manage` cannot mint an Owner.
pub fn require_grantable(caller: &[String], role: &[String]) -> Result<(), ApiError> {
    let missing: Vec<&str> = role
        .iter()
        .filter(|p| !caller.contains(p))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "you cannot grant or revoke permissions you do not hold: {}",
            missing.join(", ")
        )))
    }
}

/// The workspace and `user_id`'s permissions in its organization; 404 when it does not exist or
/// the user is not a member of its organization. Private on purpose: it ignores API-key scopes, so
/// every caller goes through [`require_workspace_for`].
async fn workspace_permissions(
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

/// The workspace and the caller's permissions in its organization; 404 when the caller cannot
/// see it. An API key of another organization gets 404 and a key's permissions are narrowed to its
/// scopes.
pub async fn require_workspace_for(
    state: &AppState,
    user: AuthUser,
    workspace_id: Uuid,
) -> Result<(WorkspaceAccess, Vec<String>), ApiError> {
    let (access, held) = workspace_permissions(state, user.user_id, workspace_id).await?;
    let permissions = user
        .restrict(access.org_id, held)
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    Ok((access, permissions))
}

/// A live project in an organization the caller can reach, with the caller's permissions; else 404.
pub async fn require_project(
    state: &AppState,
    user: AuthUser,
    project_id: Uuid,
) -> Result<(Project, Vec<String>), ApiError> {
    let project = projects::find_live(state.db.pool(), project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let member = require_org_member(state, user, project.org_id)
        .await
        .map_err(|_| ApiError::not_found("project"))?;
    Ok((project, member.permissions))
}

/// The audit identity of a request.
pub fn actor<'a>(user: &AuthUser, client: &'a ClientInfo) -> Actor<'a> {
    Actor {
        user_id: user.user_id,
        ip_address: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
    }
}

/// 402 `quota_exceeded`: the plan, not the request, is the problem; upgrading fixes it.
pub fn quota_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "quota_exceeded", message)
}

impl From<IamError> for ApiError {
    fn from(err: IamError) -> Self {
        match err {
            IamError::Db(e) => e.into(),
            IamError::NotFound(what) => ApiError::not_found(what),
            IamError::Quota(q) => quota_exceeded(q.to_string()),
            IamError::LastAdmin => ApiError::conflict(
                "last_owner",
                "the organization must keep at least one member holding org:admin",
            ),
            IamError::RoleInUse(n) => ApiError::conflict(
                "role_in_use",
                format!("the role is assigned to {n} member(s) or pending invitation(s)"),
            ),
            IamError::InvitationClosed(status) => match status.as_str() {
                "ACCEPTED" => {
                    ApiError::conflict("invitation_accepted", "the invitation was already accepted")
                }
                "REVOKED" => ApiError::new(
                    StatusCode::GONE,
                    "invitation_revoked",
                    "the invitation was revoked",
                ),
                _ => ApiError::new(
                    StatusCode::GONE,
                    "invitation_expired",
                    "the invitation has expired",
                ),
            },
            IamError::EmailMismatch => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_mismatch",
                "the invitation was sent to a different email address",
            ),
            IamError::AlreadyMember => ApiError::conflict(
                "already_member",
                "the user is already a member of this organization",
            ),
            IamError::UsageExceedsPlan(detail) => ApiError::conflict(
                "usage_exceeds_plan",
                format!("current usage exceeds the plan's quotas: {detail}"),
            ),
        }
    }
}

/// Maps a unique violation to 409 `code`, anything else through the usual conversion.
pub fn conflict_on_unique(err: IamError, code: &'static str, message: &str) -> ApiError {
    match err.unique_violation() {
        Some(_) => ApiError::conflict(code, message),
        None => err.into(),
    }
}
