//! Roles: `GET/POST /orgs/{org_id}/roles`, `PATCH/DELETE /orgs/{org_id}/roles/{role_id}`.
//!
//! Permissions come from the fixed vocabulary of [`Permission`]. The Owner role keeps its name and
//! `org:admin`, nobody grants permissions they do not hold, and no change may leave the
//! organization without a member holding `org:admin` (checked in the transaction).

use axum::extract::State;
use axum::http::StatusCode;
use nox_persistence::iam::orgs::IamError;
use nox_persistence::iam::roles::{self, Role, RolePatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser, Scope};
use crate::auth::permissions::OWNER_ROLE;
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{conflict_on_unique, ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::http_caller::ClientInfo;
use crate::pagination::Page;
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Entries of the permission vocabulary: `org:admin`, `members:manage`, `roles:manage`,
    /// `project:manage`, `workspace:read`, `workspace:write`, `locks:override`, `audit:read`,
    /// `api_keys:manage`.
    pub permissions: Vec<String>,
    /// Members holding the role.
    pub member_count: i64,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        RoleView {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            permissions: r.permissions,
            member_count: r.member_count,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRoleRequest {
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRoleRequest {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// The permissions in vocabulary order without duplicates, or a field error naming the unknown
/// entries.
fn parse_permissions(list: &[String]) -> Result<Vec<String>, FieldError> {
    let unknown: Vec<&str> = list
        .iter()
        .filter(|p| Permission::parse(p).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(FieldError::new(
            "permissions",
            format!("unknown permissions: {}", unknown.join(", ")),
        ));
    }
    Ok(Permission::ALL
        .into_iter()
        .filter(|p| p.granted_by(list))
        .map(|p| p.as_str().to_string())
        .collect())
}

fn owner_protected(message: &str) -> ApiError {
    ApiError::conflict("owner_role_protected", message)
}

fn name_taken(err: IamError) -> ApiError {
    conflict_on_unique(err, "role_name_taken", "a role with this name exists")
}

async fn existing(state: &AppState, org_id: Uuid, role_id: Uuid) -> ApiResult<Role> {
    roles::find(state.db.pool(), org_id, role_id)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))
}

/// The organization's roles by name (any member: inviting needs role ids).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/roles", tag = "roles",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = Page<RoleView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<Page<RoleView>>> {
    access::org_member(&state.db, user, org_id).await?;
    let rows = roles::list(state.db.pool(), org_id).await?;
    Ok(Json(Page::whole(
        rows.into_iter().map(RoleView::from).collect(),
    )))
}

/// Creates a role (`roles:manage`) with permissions the caller holds.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/roles", tag = "roles",
    params(("org_id" = Uuid, Path)), request_body = CreateRoleRequest,
    responses((status = 201, body = RoleView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<CreateRoleRequest>,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    let member = access::org_permission(&state.db, user, org_id, Permission::RolesManage).await?;
    let mut v = Validator::new();
    v.text("name", &body.name, 100);
    let permissions = parse_permissions(&body.permissions);
    if let Err(e) = &permissions {
        v.check(false, &e.field, &e.message);
    }
    v.finish()?;
    let permissions = permissions.map_err(|e| ApiError::validation(vec![e]))?;
    access::require_grantable(&member.permissions, &permissions)?;
    let role = roles::create(
        state.db.pool(),
        org_id,
        body.name.trim(),
        &permissions,
        &client.actor(&user),
    )
    .await
    .map_err(name_taken)?;
    Ok((StatusCode::CREATED, Json(role.into())))
}

/// Renames a role or replaces its permissions (`roles:manage`).
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/roles/{role_id}", tag = "roles",
    params(("org_id" = Uuid, Path), ("role_id" = Uuid, Path)), request_body = UpdateRoleRequest,
    responses((status = 200, body = RoleView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "name taken, Owner role protected, or last owner", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, role_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<UpdateRoleRequest>,
) -> ApiResult<Json<RoleView>> {
    let member = access::org_permission(&state.db, user, org_id, Permission::RolesManage).await?;
    let mut v = Validator::new();
    v.check(
        body.name.is_some() || body.permissions.is_some(),
        "body",
        "give at least one of name, permissions",
    );
    if let Some(name) = &body.name {
        v.text("name", name, 100);
    }
    let permissions = body
        .permissions
        .as_deref()
        .map(parse_permissions)
        .transpose();
    if let Err(e) = &permissions {
        v.check(false, &e.field, &e.message);
    }
    v.finish()?;
    let permissions = permissions.map_err(|e| ApiError::validation(vec![e]))?;
    let role = existing(&state, org_id, role_id).await?;
    access::require_grantable(&member.permissions, &role.permissions)?;
    if let Some(new) = &permissions {
        access::require_grantable(&member.permissions, new)?;
    }
    if role.name == OWNER_ROLE {
        if body.name.as_deref().is_some_and(|n| n.trim() != OWNER_ROLE) {
            return Err(owner_protected("the Owner role cannot be renamed"));
        }
        if permissions
            .as_ref()
            .is_some_and(|p| !Permission::OrgAdmin.granted_by(p))
        {
            return Err(owner_protected("the Owner role must keep org:admin"));
        }
    }
    let patch = RolePatch {
        name: body.name.as_deref().map(str::trim),
        permissions: permissions.as_deref(),
    };
    let role = roles::update(
        state.db.pool(),
        org_id,
        role_id,
        patch,
        &client.actor(&user),
    )
    .await
    .map_err(name_taken)?;
    // Members holding this role may have lost rights on open sockets.
    state.live.recheck(Scope::Org(org_id));
    Ok(Json(role.into()))
}

/// Deletes a role nobody holds (`roles:manage`); the Owner role cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/roles/{role_id}", tag = "roles",
    params(("org_id" = Uuid, Path), ("role_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "role in use or Owner role", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, role_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let member = access::org_permission(&state.db, user, org_id, Permission::RolesManage).await?;
    let role = existing(&state, org_id, role_id).await?;
    access::require_grantable(&member.permissions, &role.permissions)?;
    if role.name == OWNER_ROLE {
        return Err(owner_protected("the Owner role cannot be deleted"));
    }
    roles::delete(state.db.pool(), org_id, role_id, &client.actor(&user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_normalized_or_rejected_by_name() {
        let ok = parse_permissions(&[
            "workspace:write".into(),
            "workspace:read".into(),
            "workspace:read".into(),
        ])
        .expect("valid");
        assert_eq!(ok, ["workspace:read", "workspace:write"]);
        let err = parse_permissions(&["workspace:read".into(), "root".into(), "x:y".into()])
            .expect_err("invalid");
        assert_eq!(err.field, "permissions");
        assert!(err.message.contains("root, x:y"), "{}", err.message);
    }
}
