//! Organizations: `POST /orgs`, `GET /orgs`, `GET/PATCH/DELETE /orgs/{org_id}`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::orgs::{self, MemberOrganization, OrgPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser, Scope};
use crate::auth::permissions::{default_roles, OWNER_ROLE};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{conflict_on_unique, ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::validate::Validator;

/// An organization with the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgView {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// Free-form organization settings (a JSON object).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller's role.
    pub role_id: Uuid,
    pub role_name: String,
    /// The caller's permissions.
    pub permissions: Vec<String>,
}

impl From<MemberOrganization> for OrgView {
    fn from(m: MemberOrganization) -> Self {
        OrgView {
            id: m.org.id,
            name: m.org.name,
            slug: m.org.slug,
            settings: m.org.settings,
            created_at: m.org.created_at,
            updated_at: m.org.updated_at,
            role_id: m.role_id,
            role_name: m.role_name,
            permissions: m.permissions,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrgRequest {
    pub name: String,
    /// Unique among live organizations: a-z, 0-9 and '-'.
    pub slug: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateOrgRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Replaces the settings object.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

fn slug_taken(err: orgs::IamError) -> ApiError {
    conflict_on_unique(err, "slug_taken", "an organization with this slug exists")
}

/// Creates an organization with the default roles and the free plan; the caller becomes its Owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "organizations",
    request_body = CreateOrgRequest,
    responses((status = 201, body = OrgView), (status = 409, description = "slug taken", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    // An API key is confined to its organization: it cannot found new ones.
    user.session()?;
    Validator::new()
        .text("name", &body.name, 255)
        .slug("slug", &body.slug)
        .finish()?;
    let org = orgs::create_with_owner(
        state.db.pool(),
        body.name.trim(),
        &body.slug,
        &client.actor(&user),
        &default_roles(),
        OWNER_ROLE,
    )
    .await
    .map_err(slug_taken)?;
    tracing::info!(org_id = %org.org.id, user_id = %user.user_id, "organization created");
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// The organizations the caller belongs to, with the caller's role in each, oldest first.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "organizations", params(PageParams),
    responses((status = 200, body = Page<OrgView>), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<OrgView>>> {
    let page = params.resolve()?;
    let rows =
        orgs::list_for_member(state.db.pool(), user.user_id, page.after, page.fetch()).await?;
    let rows = rows
        .into_iter()
        .filter(|m| user.restrict(m.org.id, Vec::new()).is_some())
        .collect();
    Ok(Json(page.page(
        rows,
        |m| (m.org.created_at, m.org.id),
        OrgView::from,
    )))
}

async fn view(state: &AppState, user: AuthUser, org_id: Uuid) -> ApiResult<OrgView> {
    let member = access::org_member(&state.db, user, org_id).await?;
    let mut org = orgs::find_for_member(state.db.pool(), org_id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    org.permissions = member.permissions;
    Ok(org.into())
}

/// One organization the caller belongs to.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = OrgView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<OrgView>> {
    Ok(Json(view(&state, user, org_id).await?))
}

/// Renames an organization, changes its slug or replaces its settings (`org:admin`).
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)), request_body = UpdateOrgRequest,
    responses((status = 200, body = OrgView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<UpdateOrgRequest>,
) -> ApiResult<Json<OrgView>> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let mut v = Validator::new();
    v.check(
        body.name.is_some() || body.slug.is_some() || body.settings.is_some(),
        "body",
        "give at least one of name, slug, settings",
    );
    if let Some(name) = &body.name {
        v.text("name", name, 255);
    }
    if let Some(slug) = &body.slug {
        v.slug("slug", slug);
    }
    if let Some(settings) = &body.settings {
        v.check(settings.is_object(), "settings", "must be a JSON object");
    }
    v.finish()?;
    let patch = OrgPatch {
        name: body.name.as_deref().map(str::trim),
        slug: body.slug.as_deref(),
        settings: body.settings,
    };
    orgs::update(state.db.pool(), org_id, patch, &client.actor(&user))
        .await
        .map_err(slug_taken)?;
    Ok(Json(view(&state, user, org_id).await?))
}

/// Soft-deletes an organization (`org:admin`); its slug becomes free and all of its data
/// unreachable.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    access::org_permission(&state.db, user, org_id, Permission::OrgAdmin).await?;
    let workspaces = orgs::soft_delete(state.db.pool(), org_id, &client.actor(&user)).await?;
    state.live.recheck(Scope::Org(org_id));
    tracing::info!(%org_id, workspaces = workspaces.len(), "organization deleted");
    Ok(StatusCode::NO_CONTENT)
}
