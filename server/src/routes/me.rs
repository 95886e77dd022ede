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

use crate::access::{AuthUser, Scope};
use crate::auth::password;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{nullable, Json};
use crate::http_caller::ClientInfo;
use crate::routes::security_events::{self as events, action, SecurityEvent};
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

/// Profile fields to change. A field left out keeps its value; `null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// 1-255 characters (trimmed), or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    /// An absolute `http` or `https` URL of at most 2048 characters, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

/// Longest accepted `avatar_url`.
pub const MAX_AVATAR_URL: usize = 2048;

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

/// `PATCH /me`: changes the caller's `full_name` and/or `avatar_url`.
#[utoipa::path(patch, path = "/api/v1/me", tag = "account",
    request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<UpdateMeRequest>,
) -> ApiResult<Json<UserView>> {
    let mut v = Validator::new();
    if let Some(Some(name)) = &body.full_name {
        v.text("full_name", name, 255);
    }
    if let Some(Some(url)) = &body.avatar_url {
        v.check(
            is_avatar_url(url),
            "avatar_url",
            "must be an http or https URL of at most 2048 characters",
        );
    }
    v.finish()?;
    let patch = users::ProfilePatch {
        full_name: body.full_name.as_ref().map(|n| n.as_deref().map(str::trim)),
        avatar_url: body
            .avatar_url
            .as_ref()
            .map(|u| u.as_deref().map(str::trim)),
    };
    users::update_profile(state.db.pool(), user.user_id, patch)
        .await?
        .map(|u| Json(u.into()))
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))
}

/// An absolute `http(s)://host…` URL without whitespace or control characters: anything else
/// (`javascript:`, `data:`, relative paths) must never end up in an `<img src>` of another client.
fn is_avatar_url(url: &str) -> bool {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    url.chars().count() <= MAX_AVATAR_URL
        && !host.is_empty()
        && !host.starts_with(':')
        && !host.contains('@')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
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

#[cfg(test)]
mod tests {
    use super::is_avatar_url;

    #[test]
    fn avatar_urls_must_be_absolute_http_or_https() {
        assert!(is_avatar_url("https://cdn.example.com/a.png"));
        assert!(is_avatar_url("HTTP://example.com:8080/a?b=c"));
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "/relative.png",
            "ftp://example.com/a.png",
            "https://",
            "https:///path",
            "https://user@evil.example/a.png",
            "https://example.com/a b.png",
        ] {
            assert!(!is_avatar_url(bad), "{bad}");
        }
        assert!(!is_avatar_url(&format!(
            "https://e.com/{}",
            "a".repeat(2048)
        )));
    }
}
