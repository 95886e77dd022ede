//! `POST /orgs`, `GET /orgs`.

use axum::extract::State;
use axum::http::StatusCode;
use nox_persistence::iam::orgs::{self, MemberOrganization};
use serde::Deserialize;

use crate::auth::permissions::{default_roles, OWNER_ROLE};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize)]
pub struct CreateOrgRequest {
    pub name: String,
    pub slug: String,
}

/// Creates an organization with the default roles; the caller becomes its Owner.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<MemberOrganization>)> {
    Validator::new()
        .text("name", &body.name, 255)
        .slug("slug", &body.slug)
        .finish()?;
    let org = orgs::create_with_owner(
        state.db.pool(),
        body.name.trim(),
        &body.slug,
        user.user_id,
        &default_roles(),
        OWNER_ROLE,
    )
    .await
    .map_err(|e| match e.unique_violation() {
        Some(_) => ApiError::conflict("slug_taken", "an organization with this slug exists"),
        None => e.into(),
    })?;
    tracing::info!(org_id = %org.org.id, user_id = %user.user_id, "organization created");
    Ok((StatusCode::CREATED, Json(org)))
}

/// The organizations the caller belongs to, with the caller's role in each.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<MemberOrganization>>> {
    Ok(Json(
        orgs::list_for_member(state.db.pool(), user.user_id).await?,
    ))
}
