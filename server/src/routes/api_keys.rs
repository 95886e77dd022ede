//! `/orgs/{org_id}/api-keys`: organization API keys. The full key is returned once, at creation;
//! afterwards only its prefix is known.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::api_keys::{self, ApiKey, NewApiKey};
use nox_persistence::iam::audit::{self, NewAuditEntry};
use nox_persistence::iam::orgs;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser, Scope};
use crate::auth::{api_key, Permission, PermissionSet};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path};
use crate::http_caller::ClientInfo;
use crate::routes::security_events::action;
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKeyRequest {
    pub name: String,
    /// Permissions the key gets; a subset of the creator's in the org. Default: all of them.
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key as listed: never the secret or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    /// `nox_<8 hex>`: the start of the key, to tell keys apart.
    pub key_prefix: String,
    pub name: String,
    /// The creator; the key acts as this user, within its scopes.
    pub user_id: Uuid,
    pub org_id: Uuid,
    pub scopes: Option<Vec<String>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            key_prefix: k.key_prefix,
            name: k.name,
            user_id: k.user_id,
            org_id: k.org_id,
            scopes: k.scopes,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            created_at: k.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The full key (`nox_<prefix>_<secret>`). Shown only in this response.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// The caller's `api_keys:manage` permissions in `org_id` (the full list), 404 when not a member,
/// 403 without the permission. Managing keys needs a user session: a key cannot mint keys.
async fn manager_permissions(
    state: &AppState,
    user: &AuthUser,
    org_id: Uuid,
) -> ApiResult<Vec<String>> {
    let membership = orgs::membership(state.db.pool(), org_id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let permissions = user
        .restrict(org_id, membership.permissions)
        .ok_or_else(|| ApiError::not_found("organization"))?;
    user.session()?;
    access::require(&permissions, Permission::ApiKeysManage)?;
    Ok(permissions)
}

/// Validates the requested scopes: known names (422) that the creator holds (403).
fn resolve_scopes(requested: Option<Vec<String>>, held: &[String]) -> ApiResult<Vec<String>> {
    let held_set = PermissionSet::from_strings(held);
    let Some(requested) = requested else {
        return Ok(held_set.to_strings());
    };
    let unknown: Vec<FieldError> = requested
        .iter()
        .enumerate()
        .filter(|(_, s)| Permission::parse(s).is_none())
        .map(|(i, s)| FieldError::new(format!("scopes[{i}]"), format!("unknown permission '{s}'")))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::validation(unknown));
    }
    let wanted = PermissionSet::from_strings(&requested);
    if let Some(missing) = Permission::ALL
        .into_iter()
        .find(|p| wanted.contains(*p) && !held_set.contains(*p))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_not_held",
            format!(
                "a key cannot get '{}': you do not hold it in this organization",
                missing.as_str()
            ),
        ));
    }
    Ok(wanted.to_strings())
}

/// `POST /orgs/{org_id}/api-keys` (`api_keys:manage`, user session only).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/api-keys", tag = "api-keys",
    params(("org_id" = Uuid, Path)), request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden, scope_not_held or session_required",
            body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let held = manager_permissions(&state, &user, org_id).await?;
    Validator::new()
        .text("name", &body.name, 255)
        .check(
            body.expires_at.is_none_or(|at| at > Utc::now()),
            "expires_at",
            "must be in the future",
        )
        .finish()?;
    let scopes = resolve_scopes(body.scopes, &held)?;
    let minted = api_key::mint();
    let key = api_keys::create(
        state.db.pool(),
        NewApiKey {
            key_hash: &minted.hash,
            key_prefix: &minted.prefix,
            name: body.name.trim(),
            user_id: user.user_id,
            org_id,
            scopes: &scopes,
            expires_at: body.expires_at,
        },
    )
    .await?;
    audit_key(&state, &user, &client, &key, action::API_KEY_CREATED).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: key.into(),
            key: minted.full,
        }),
    ))
}

/// `GET /orgs/{org_id}/api-keys`: every key of the org, without secrets.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/api-keys", tag = "api-keys",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<ApiKeyList>> {
    manager_permissions(&state, &user, org_id).await?;
    let items = api_keys::list_for_org(state.db.pool(), org_id)
        .await?
        .into_iter()
        .map(ApiKeyView::from)
        .collect();
    Ok(Json(ApiKeyList { items }))
}

/// `DELETE /orgs/{org_id}/api-keys/{id}`: the key stops working at once.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/api-keys/{key_id}", tag = "api-keys",
    params(("org_id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, key_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    manager_permissions(&state, &user, org_id).await?;
    let key = api_keys::delete(state.db.pool(), org_id, key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("api key"))?;
    state.live.recheck(Scope::ApiKey(key_id));
    audit_key(&state, &user, &client, &key, action::API_KEY_REVOKED).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit_key(
    state: &AppState,
    user: &AuthUser,
    client: &ClientInfo,
    key: &ApiKey,
    what: &str,
) -> ApiResult<()> {
    audit::record(
        state.db.pool(),
        NewAuditEntry {
            org_id: key.org_id,
            actor_id: user.user_id,
            action: what,
            target_type: Some("api_key"),
            target_id: Some(key.id),
            metadata: Some(serde_json::json!({
                "name": key.name,
                "key_prefix": key.key_prefix,
                "scopes": key.scopes,
            })),
            ip_address: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_default_to_held_and_must_be_a_subset() {
        let held = strings(&["workspace:read", "workspace:write", "api_keys:manage"]);
        assert_eq!(resolve_scopes(None, &held).expect("default"), held);
        assert_eq!(
            resolve_scopes(Some(strings(&["workspace:read"])), &held).expect("subset"),
            strings(&["workspace:read"])
        );
        let err = resolve_scopes(Some(strings(&["org:admin"])), &held).expect_err("not held");
        assert_eq!(err.code, "scope_not_held");
        let err = resolve_scopes(Some(strings(&["nope"])), &held).expect_err("unknown");
        assert_eq!(err.fields[0].field, "scopes[0]");
    }
}
