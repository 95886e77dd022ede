//! The warehouse (docs/design.md §17): `POST/GET /orgs/{org_id}/warehouses`,
//! `GET/PATCH/DELETE /warehouses/{id}`, and its folders: `POST/GET /warehouses/{id}/collections`,
//! `GET/PATCH/DELETE /collections/{id}`. Templates are `warehouse_templates.rs`, invader
//! definitions `warehouse_invaders.rs`; the helpers every warehouse route shares are here.
//!
//! Reading needs `workspace:read` in the owning organization, writing `assets:manage` (deleting
//! the warehouse itself `org:admin`). Another organization's warehouse, folder or asset answers
//! 404 like a missing one.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::warehouse::collections::{self, Collection, CollectionPatch};
use nox_persistence::warehouse::{self, Warehouse, WarehouseError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{self, AccessError, AuthUser};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{nullable, Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{page_request, Page, PageParams};
use crate::state::AppState;
use crate::validate::Validator;

/// Maps a refused warehouse change to its HTTP answer: unique names and codes are 409, references
/// outside the warehouse 422.
pub fn warehouse_error(err: WarehouseError) -> ApiError {
    if let Some(constraint) = err.unique_violation() {
        let (code, message) = match constraint.as_str() {
            "warehouses_owner_id_owner_type_live_key" => (
                "warehouse_exists",
                "the organization already has a warehouse",
            ),
            "asset_collections_warehouse_id_name_key" => (
                "collection_name_taken",
                "a collection with this name exists in the warehouse",
            ),
            "assets_invader_definitions_warehouse_code_live_key" => (
                "invader_code_taken",
                "an invader definition with this code exists in the warehouse",
            ),
            _ => ("conflict", "the change conflicts with an existing entry"),
        };
        return ApiError::conflict(code, message);
    }
    match err {
        WarehouseError::Iam(e) => e.into(),
        WarehouseError::InvalidReference(field) => ApiError::validation(vec![FieldError::new(
            field,
            "must name a collection of this warehouse",
        )]),
        WarehouseError::CollectionCycle => ApiError::validation(vec![FieldError::new(
            "parent_collection_id",
            "cannot be the collection itself or one of its sub-collections",
        )]),
        WarehouseError::CollectionNotEmpty => ApiError::conflict(
            "collection_not_empty",
            "the collection still has sub-collections; move or delete them first",
        ),
    }
}

/// `found` when the caller is a member of its organization (`org_of`) holding `needed`; 404 named
/// `what` when it is missing or the caller is a stranger, 403 when a member lacks `needed`.
pub async fn reach<T>(
    state: &AppState,
    user: AuthUser,
    found: Option<T>,
    org_of: impl Fn(&T) -> Uuid,
    what: &'static str,
    needed: Permission,
) -> ApiResult<T> {
    let found = found.ok_or(AccessError::NotFound(what))?;
    match access::org_permission(&state.db, user, org_of(&found), needed).await {
        Ok(_) => Ok(found),
        Err(AccessError::NotFound(_)) => Err(ApiError::not_found(what)),
        Err(other) => Err(other.into()),
    }
}

/// The live warehouse `id`, reached with `needed`.
pub async fn reach_warehouse(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    needed: Permission,
) -> ApiResult<Warehouse> {
    let found = warehouse::find_live(state.db.pool(), id).await?;
    reach(state, user, found, |w| w.org_id, "warehouse", needed).await
}

/// An optional text of at most `max` characters (empty allowed: it clears the value).
pub fn optional_text(v: &mut Validator, field: &str, value: Option<&str>, max: usize) {
    if let Some(value) = value {
        v.check(
            value.chars().count() <= max && !value.contains('\0'),
            field,
            &format!("must be at most {max} characters"),
        );
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: Option<String>,
    pub is_system: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Warehouse> for WarehouseView {
    fn from(w: Warehouse) -> Self {
        WarehouseView {
            id: w.id,
            org_id: w.org_id,
            name: w.name,
            is_system: w.is_system,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseRequest {
    pub name: Option<String>,
}

fn validate_warehouse(body: &WarehouseRequest) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(name) = &body.name {
        v.text("name", name, 255);
    }
    v.finish()
}

/// Creates the organization's warehouse (`assets:manage`); one live warehouse per organization.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/warehouses", tag = "warehouse",
    params(("org_id" = Uuid, Path)), request_body = WarehouseRequest,
    responses((status = 201, body = WarehouseView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "warehouse_exists", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_warehouse(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<WarehouseRequest>,
) -> ApiResult<(StatusCode, Json<WarehouseView>)> {
    access::org_permission(&state.db, user, org_id, Permission::AssetsManage).await?;
    validate_warehouse(&body)?;
    let name = body.name.as_deref().map(str::trim);
    let created = warehouse::create(state.db.pool(), org_id, name, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    tracing::info!(warehouse_id = %created.id, %org_id, "warehouse created");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The organization's live warehouses (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/warehouses", tag = "warehouse",
    params(("org_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<WarehouseView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_warehouses(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<WarehouseView>>> {
    access::org_permission(&state.db, user, org_id, Permission::WorkspaceRead).await?;
    let page = params.resolve()?;
    let rows = warehouse::list_for_org(state.db.pool(), org_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |w| (w.created_at, w.id),
        WarehouseView::from,
    )))
}

#[utoipa::path(get, path = "/api/v1/warehouses/{warehouse_id}", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)),
    responses((status = 200, body = WarehouseView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_warehouse(
    State(state): State<AppState>,
    user: AuthUser,
    Path(warehouse_id): Path<Uuid>,
) -> ApiResult<Json<WarehouseView>> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::WorkspaceRead).await?;
    Ok(Json(found.into()))
}

/// Renames the warehouse (`assets:manage`).
#[utoipa::path(patch, path = "/api/v1/warehouses/{warehouse_id}", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)), request_body = WarehouseRequest,
    responses((status = 200, body = WarehouseView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_warehouse(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
    Json(body): Json<WarehouseRequest>,
) -> ApiResult<Json<WarehouseView>> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::AssetsManage).await?;
    validate_warehouse(&body)?;
    let name = body.name.as_deref().map(str::trim);
    let actor = client.actor(&user);
    let updated = warehouse::rename(state.db.pool(), found.org_id, found.id, name, &actor)
        .await
        .map_err(warehouse_error)?;
    Ok(Json(updated.into()))
}

/// Soft-deletes the warehouse and with it every asset in it (`org:admin`).
#[utoipa::path(delete, path = "/api/v1/warehouses/{warehouse_id}", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_warehouse(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::OrgAdmin).await?;
    warehouse::soft_delete(
        state.db.pool(),
        found.org_id,
        found.id,
        &client.actor(&user),
    )
    .await
    .map_err(warehouse_error)?;
    tracing::info!(%warehouse_id, "warehouse deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    pub name: String,
    pub parent_collection_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Collection> for CollectionView {
    fn from(c: Collection) -> Self {
        CollectionView {
            id: c.id,
            warehouse_id: c.warehouse_id,
            name: c.name,
            parent_collection_id: c.parent_collection_id,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// Unique in the warehouse.
    pub name: String,
    /// Another collection of the same warehouse; absent or null: top level.
    pub parent_collection_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionRequest {
    pub name: Option<String>,
    /// Moves the collection; null moves it to the top level.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_collection_id: Option<Option<Uuid>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CollectionFilter {
    /// Only the children of this collection; `root` for the top level.
    pub parent: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Creates a collection (`assets:manage`).
#[utoipa::path(post, path = "/api/v1/warehouses/{warehouse_id}/collections", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)), request_body = CreateCollectionRequest,
    responses((status = 201, body = CollectionView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "collection_name_taken", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
    Json(body): Json<CreateCollectionRequest>,
) -> ApiResult<(StatusCode, Json<CollectionView>)> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::AssetsManage).await?;
    Validator::new().text("name", &body.name, 255).finish()?;
    let created = collections::create(
        state.db.pool(),
        found.org_id,
        found.id,
        body.name.trim(),
        body.parent_collection_id,
        &client.actor(&user),
    )
    .await
    .map_err(warehouse_error)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The warehouse's collections, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/warehouses/{warehouse_id}/collections", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path), CollectionFilter),
    responses((status = 200, body = Page<CollectionView>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_collections(
    State(state): State<AppState>,
    user: AuthUser,
    Path(warehouse_id): Path<Uuid>,
    Query(filter): Query<CollectionFilter>,
) -> ApiResult<Json<Page<CollectionView>>> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::WorkspaceRead).await?;
    let page = page_request(filter.limit, filter.cursor.as_deref())?;
    let parent = match filter.parent.as_deref() {
        None => None,
        Some("root") => Some(None),
        Some(id) => Some(Some(Uuid::parse_str(id).map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                "parent",
                "must be a collection id or `root`",
            )])
        })?)),
    };
    let rows =
        collections::list(state.db.pool(), found.id, parent, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |c| (c.created_at, c.id),
        CollectionView::from,
    )))
}

async fn reach_collection(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    needed: Permission,
) -> ApiResult<Collection> {
    let found = collections::find_live(state.db.pool(), id).await?;
    reach(state, user, found, |c| c.org_id, "collection", needed).await
}

#[utoipa::path(get, path = "/api/v1/collections/{collection_id}", tag = "warehouse",
    params(("collection_id" = Uuid, Path)),
    responses((status = 200, body = CollectionView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    user: AuthUser,
    Path(collection_id): Path<Uuid>,
) -> ApiResult<Json<CollectionView>> {
    let found = reach_collection(&state, user, collection_id, Permission::WorkspaceRead).await?;
    Ok(Json(found.into()))
}

/// Renames or moves a collection (`assets:manage`).
#[utoipa::path(patch, path = "/api/v1/collections/{collection_id}", tag = "warehouse",
    params(("collection_id" = Uuid, Path)), request_body = UpdateCollectionRequest,
    responses((status = 200, body = CollectionView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_collection(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(collection_id): Path<Uuid>,
    Json(body): Json<UpdateCollectionRequest>,
) -> ApiResult<Json<CollectionView>> {
    let found = reach_collection(&state, user, collection_id, Permission::AssetsManage).await?;
    if let Some(name) = &body.name {
        Validator::new().text("name", name, 255).finish()?;
    }
    let patch = CollectionPatch {
        name: body.name.as_deref().map(str::trim),
        parent: body.parent_collection_id,
    };
    let updated = collections::update(state.db.pool(), &found, patch, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(Json(updated.into()))
}

/// Deletes a collection without sub-collections (`assets:manage`); its templates and invader
/// definitions stay in the warehouse, outside any folder.
#[utoipa::path(delete, path = "/api/v1/collections/{collection_id}", tag = "warehouse",
    params(("collection_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "collection_not_empty", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(collection_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let found = reach_collection(&state, user, collection_id, Permission::AssetsManage).await?;
    collections::delete(state.db.pool(), &found, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(StatusCode::NO_CONTENT)
}
