//! `/me`: the caller's own profile, password change and account deletion.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::members::SoleAdminOrg;
use nox_persistence::iam::users::{self, AccountDeletion, User};
use nox_persistence::iam::{security, sessions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::events::{self, action, SecurityEvent};
use crate::auth::{password, AuthUser};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Json;
use crate::live_access::Scope;
use crate::openapi::ErrorBody;
use crate::routes::ClientInfo;
use crate::state::AppState;
use crate::validate::Validator;

/// A user's profile as the API shows it (no security fields).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub is_email_verified: bool,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    /// `PENDING_VERIFICATION` until the email is verified, then `ACTIVE`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            is_email_verified: u.is_email_verified,
            full_name: u.full_name,
            avatar_url: u.avatar_url,
            status: u.status,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteMeRequest {
    pub password: String,
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<UserView>> {
    users::find_live(state.db.pool(), user.user_id)
        .await?
        .map(|u| Json(u.into()))
        // The account was deleted after the token was issued.
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))
}

/// `POST /me/password`: needs the current password; signs out every other session, since
/// whoever else knew the old password should not stay in.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "account",
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "changed; other sessions signed out"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "invalid fields or wrong current_password", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let session_id = user.session()?;
    Validator::new()
        .check(
            !body.current_password.is_empty(),
            "current_password",
            "must not be empty",
        )
        .password("new_password", &body.new_password)
        .finish()?;
    verify_password(&state, &user, "current_password", body.current_password).await?;
    let new_hash = password::hash(body.new_password).await?;
    security::set_password(state.db.pool(), user.user_id, &new_hash).await?;
    let revoked = sessions::revoke_all(
        state.db.pool(),
        user.user_id,
        Some(session_id),
        sessions::reason::PASSWORD_CHANGED,
    )
    .await?;
    state.live.recheck(Scope::User(user.user_id));
    events::record(
        &state,
        &client,
        SecurityEvent::new(user.user_id, action::PASSWORD_CHANGED)
            .target("user", user.user_id)
            .metadata(serde_json::json!({ "sessions_revoked": revoked.len() })),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /me`: soft-deletes the account (the email becomes free again) and ends its sessions;
/// its API keys stop working because their creator is gone. Refused with 409 `last_owner` while
/// the account is the only admin of an organization (the error's `details.organizations` names
/// them), since nobody could administer those again.
#[utoipa::path(delete, path = "/api/v1/me", tag = "account",
    request_body = DeleteMeRequest,
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "last_owner: sole admin of an organization", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_me(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<DeleteMeRequest>,
) -> ApiResult<StatusCode> {
    user.session()?;
    Validator::new()
        .check(!body.password.is_empty(), "password", "must not be empty")
        .finish()?;
    verify_password(&state, &user, "password", body.password).await?;
    match users::delete_account(state.db.pool(), user.user_id).await? {
        AccountDeletion::Deleted => {}
        AccountDeletion::AlreadyGone => {
            return Err(ApiError::unauthorized("account no longer exists"))
        }
        AccountDeletion::SoleAdmin(orgs) => return Err(sole_owner_error(&orgs)),
    }
    // The membership rows stay (marked by the user's deleted_at), so every org still gets the row.
    events::record(
        &state,
        &client,
        SecurityEvent::new(user.user_id, action::USER_DELETED).target("user", user.user_id),
    )
    .await;
    sessions::revoke_all(
        state.db.pool(),
        user.user_id,
        None,
        sessions::reason::ACCOUNT_DELETED,
    )
    .await?;
    state.live.recheck(Scope::User(user.user_id));
    tracing::info!(user_id = %user.user_id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// 409 `last_owner`: the account alone administers these organizations; deleting it would leave
/// them without an admin. The caller must hand `org:admin` to another member or delete them first.
fn sole_owner_error(orgs: &[SoleAdminOrg]) -> ApiError {
    let names: Vec<String> = orgs
        .iter()
        .map(|o| format!("{} ({})", o.name, o.slug))
        .collect();
    ApiError::conflict(
        "last_owner",
        format!(
            "you are the only owner of {}; give another member an owner role or delete the \
             organization first",
            names.join(", ")
        ),
    )
    .with_details(serde_json::json!({ "organizations": orgs }))
}

/// 422 on `field` unless `given` is the caller's password.
async fn verify_password(
    state: &AppState,
    user: &AuthUser,
    field: &str,
    given: String,
) -> ApiResult<()> {
    let stored = security::get(state.db.pool(), user.user_id)
        .await?
        .and_then(|s| s.password_hash)
        .unwrap_or_default();
    if password::verify(given, stored).await? {
        Ok(())
    } else {
        Err(ApiError::validation(vec![FieldError::new(
            field,
            "is incorrect",
        )]))
    }
}
