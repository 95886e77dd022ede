//! Members: `GET /orgs/{org_id}/members`, `PATCH/DELETE /orgs/{org_id}/members/{user_id}`.
//!
//! Changing or removing a member needs `members:manage` and every permission the member's old and
//! new roles hold, so a manager cannot demote an Owner or crown themselves. Leaving (removing
//! oneself) needs nothing. The last member holding `org:admin` can neither be demoted nor leave.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::members::{self, Member};
use nox_persistence::iam::roles;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser, Scope};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub full_name: Option<String>,
    pub role_id: Uuid,
    pub role_name: String,
    pub permissions: Vec<String>,
    pub joined_at: DateTime<Utc>,
    pub invited_by: Option<Uuid>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            full_name: m.full_name,
            role_id: m.role_id,
            role_name: m.role_name,
            permissions: m.permissions,
            joined_at: m.joined_at,
            invited_by: m.invited_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeRoleRequest {
    pub role_id: Uuid,
}

async fn existing(state: &AppState, org_id: Uuid, user_id: Uuid) -> ApiResult<Member> {
    members::find(state.db.pool(), org_id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))
}

/// The organization's members in joining order, with email, name and role (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", tag = "members",
    params(("org_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<MemberView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<MemberView>>> {
    access::org_member(&state.db, user, org_id).await?;
    let page = params.resolve()?;
    let rows = members::list(state.db.pool(), org_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |m| (m.joined_at, m.user_id),
        MemberView::from,
    )))
}

/// Gives a member another role (`members:manage`).
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ChangeRoleRequest,
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "last owner", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_role(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<ChangeRoleRequest>,
) -> ApiResult<Json<MemberView>> {
    let caller = access::org_permission(&state.db, user, org_id, Permission::MembersManage).await?;
    let target = existing(&state, org_id, user_id).await?;
    let role = roles::find(state.db.pool(), org_id, body.role_id)
        .await?
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "role_id",
                "no such role in this organization",
            )])
        })?;
    access::require_grantable(&caller.permissions, &target.permissions)?;
    access::require_grantable(&caller.permissions, &role.permissions)?;
    let member = members::change_role(
        state.db.pool(),
        org_id,
        user_id,
        role.id,
        &client.actor(&user),
    )
    .await?;
    // The new role may have lost write or read: open sockets re-check at once.
    state.live.recheck(Scope::Org(org_id));
    Ok(Json(member.into()))
}

/// Removes a member (`members:manage`), or leaves the organization when `user_id` is the caller.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/members/{user_id}", tag = "members",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "last owner", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let caller = access::org_member(&state.db, user, org_id).await?;
    if user_id != user.user_id {
        access::require(&caller.permissions, Permission::MembersManage)?;
        let target = existing(&state, org_id, user_id).await?;
        access::require_grantable(&caller.permissions, &target.permissions)?;
    }
    members::remove(state.db.pool(), org_id, user_id, &client.actor(&user)).await?;
    state.live.recheck(Scope::Org(org_id));
    Ok(StatusCode::NO_CONTENT)
}
