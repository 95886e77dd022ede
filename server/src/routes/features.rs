//! Feature flags: `GET /orgs/{org_id}/features` (effective values, any member — clients read
//! them), `PUT/DELETE /orgs/{org_id}/features/{key}` (per-organization override, `org:admin`).

use axum::extract::State;
use nox_persistence::iam::features::{self, Feature};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::features::Flag;
use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::http_caller::ClientInfo;
use crate::pagination::Page;
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureView {
    pub key: String,
    pub description: Option<String>,
    /// The value for this organization: its override, else the default.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    #[schema(value_type = Object)]
    pub default_value: serde_json::Value,
    pub overridden: bool,
}

impl From<Feature> for FeatureView {
    fn from(f: Feature) -> Self {
        FeatureView {
            key: f.key,
            description: f.description,
            value: f.value,
            default_value: f.default_value,
            overridden: f.overridden,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetFeatureRequest {
    /// The flag's type: a boolean for `canvas.relations` and `hocuspocus`, a number from 1 to 64
    /// for `canvas.max_zoom`.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// Every feature flag with its effective value for the organization (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/features", tag = "features",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = Page<FeatureView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<Page<FeatureView>>> {
    access::org_member(&state.db, user, org_id).await?;
    let rows = features::list(state.db.pool(), org_id).await?;
    Ok(Json(Page::whole(
        rows.into_iter().map(FeatureView::from).collect(),
    )))
}

/// Overrides a flag for the organization (`org:admin`).
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/features/{key}", tag = "features",
    params(("org_id" = Uuid, Path), ("key" = String, Path)), request_body = SetFeatureRequest,
    responses((status = 200, body = FeatureView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, key)): Path<(Uuid, String)>,
    Json(body): Json<SetFeatureRequest>,
) -> ApiResult<Json<FeatureView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let flag = Flag::from_key(&key).ok_or_else(|| ApiError::not_found("feature flag"))?;
    let mut v = Validator::new();
    v.check(
        !body.value.is_null(),
        "value",
        "must not be null (DELETE the override instead)",
    );
    if !body.value.is_null() {
        if let Err(expected) = flag.check_value(&body.value) {
            v.check(false, "value", expected);
        }
    }
    v.finish()?;
    let feature = features::set_override(
        state.db.pool(),
        org_id,
        &key,
        &body.value,
        &client.actor(&user),
    )
    .await?;
    Ok(Json(feature.into()))
}

/// Drops the organization's override of a flag, back to its default (`org:admin`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/features/{key}", tag = "features",
    params(("org_id" = Uuid, Path), ("key" = String, Path)),
    responses((status = 200, body = FeatureView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn clear(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, key)): Path<(Uuid, String)>,
) -> ApiResult<Json<FeatureView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let feature =
        features::clear_override(state.db.pool(), org_id, &key, &client.actor(&user)).await?;
    Ok(Json(feature.into()))
}
