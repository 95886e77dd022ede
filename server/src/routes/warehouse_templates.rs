//! Block templates (docs/design.md §17): `POST/GET /warehouses/{id}/templates`,
//! `POST /warehouses/{id}/templates/from-selection` ("save selection as template"),
//! `GET/PATCH/DELETE /templates/{id}`, and
//! `POST /workspaces/{id}/templates/{template_id}/instantiate` ("insert template"), which writes
//! the new blocks and relations through the workspace's room.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::billing;
use nox_persistence::warehouse::templates::{self, NewTemplate, Template, TemplatePatch};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::warehouse::{optional_text, reach, reach_warehouse, warehouse_error};
use super::warehouse_references::InvaderSchemas;
use crate::access::{self, AccessError, AuthUser};
use crate::auth::Permission;
use crate::error::{quota_exceeded, ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{nullable, Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::http_forward::{read_canvas, room_unavailable};
use crate::pagination::{page_request, Page};
use crate::rooms::{CanvasInsert, HttpRequest, InsertError};
use crate::state::AppState;
use crate::validate::Validator;
use crate::warehouse::structure::{self, SelectionError, TemplateStructure};

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    pub collection_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub thumbnail_url: Option<String>,
    /// `{blocks: [...], relations: [...]}` with the template's own ids.
    #[schema(value_type = TemplateStructure)]
    pub structure_data: Value,
    pub version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        TemplateView {
            id: t.id,
            warehouse_id: t.warehouse_id,
            collection_id: t.collection_id,
            name: t.name,
            description: t.description,
            thumbnail_url: t.thumbnail_url,
            structure_data: t.structure_data,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplateRequest {
    pub name: String,
    pub description: Option<String>,
    pub thumbnail_url: Option<String>,
    /// A collection of the same warehouse.
    pub collection_id: Option<Uuid>,
    /// At most 20 characters; default `1.0.0`.
    pub version: Option<String>,
    #[schema(value_type = TemplateStructure)]
    pub structure_data: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveSelectionRequest {
    /// The workspace the blocks are in (same organization as the warehouse).
    pub workspace_id: Uuid,
    /// Selected blocks; their descendants come along.
    pub block_ids: Vec<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub collection_id: Option<Uuid>,
    pub version: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTemplateRequest {
    pub name: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    /// An empty string clears it.
    pub thumbnail_url: Option<String>,
    /// Null takes the template out of its collection.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub collection_id: Option<Option<Uuid>>,
    pub version: Option<String>,
    #[schema(value_type = Option<TemplateStructure>)]
    pub structure_data: Option<Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetFilter {
    /// Only the entries of this collection.
    pub collection_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantiateRequest {
    /// Where the template's top-left corner goes.
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstantiateResponse {
    /// The new blocks, in the template's order.
    pub block_ids: Vec<Uuid>,
    pub relation_ids: Vec<Uuid>,
}

fn validate_texts(
    name: Option<&str>,
    description: Option<&str>,
    thumbnail: Option<&str>,
    version: Option<&str>,
) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(name) = name {
        v.text("name", name, 255);
    }
    optional_text(&mut v, "description", description, 10_000);
    optional_text(&mut v, "thumbnail_url", thumbnail, 2_048);
    if let Some(version) = version {
        v.text("version", version, 20);
    }
    v.finish()
}

/// Parses `structure_data` and checks its invaders belong to `org_id` and satisfy their schemas.
async fn checked_structure(
    state: &AppState,
    org_id: Uuid,
    value: &Value,
    field: &str,
) -> ApiResult<TemplateStructure> {
    let structure = TemplateStructure::parse(value, field).map_err(|problems| {
        let fields = problems
            .into_iter()
            .map(|p| FieldError::new(p.field, p.message))
            .collect();
        ApiError::validation(fields)
    })?;
    let schemas = invader_schemas(state, org_id, &structure).await?;
    let mut errors = Vec::new();
    for (i, block) in structure.blocks.iter().enumerate() {
        let name = format!("{field}.blocks[{i}].invaders");
        errors.extend(schemas.problems(&block.invaders, &name));
    }
    if errors.is_empty() {
        Ok(structure)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Creates a template from a given structure (`assets:manage`).
#[utoipa::path(post, path = "/api/v1/warehouses/{warehouse_id}/templates", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)), request_body = CreateTemplateRequest,
    responses((status = 201, body = TemplateView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_template(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
    Json(body): Json<CreateTemplateRequest>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::AssetsManage).await?;
    validate_texts(
        Some(&body.name),
        body.description.as_deref(),
        body.thumbnail_url.as_deref(),
        body.version.as_deref(),
    )?;
    let structure =
        checked_structure(&state, found.org_id, &body.structure_data, "structure_data").await?;
    let data = structure.to_value();
    let new = NewTemplate {
        org_id: found.org_id,
        warehouse_id: found.id,
        collection_id: body.collection_id,
        name: body.name.trim(),
        description: body.description.as_deref(),
        thumbnail_url: body.thumbnail_url.as_deref(),
        structure_data: &data,
        version: body.version.as_deref(),
    };
    let created = templates::create(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// "Save selection as template" (`assets:manage`, and `workspace:read` in the workspace): the
/// selected blocks, their descendants and the relations among them, with fresh ids. Invader
/// usages that are not the organization's live definitions, or whose configs break their
/// schemas, are left out (the projection drops them from the workspace too).
#[utoipa::path(post, path = "/api/v1/warehouses/{warehouse_id}/templates/from-selection",
    tag = "warehouse", params(("warehouse_id" = Uuid, Path)), request_body = SaveSelectionRequest,
    responses((status = 201, body = TemplateView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn save_selection(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
    Json(body): Json<SaveSelectionRequest>,
) -> ApiResult<(StatusCode, Json<TemplateView>)> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::AssetsManage).await?;
    validate_texts(
        Some(&body.name),
        body.description.as_deref(),
        None,
        body.version.as_deref(),
    )?;
    if body.block_ids.is_empty() || body.block_ids.len() > structure::MAX_TEMPLATE_BLOCKS {
        return Err(ApiError::validation(vec![FieldError::new(
            "block_ids",
            "must name 1-2000 blocks",
        )]));
    }
    let grant = access::workspace_permission(
        &state.db,
        user,
        body.workspace_id,
        Permission::WorkspaceRead,
    )
    .await?;
    if grant.org_id() != found.org_id {
        // A workspace of another organization is not found, exactly like a missing one.
        return Err(AccessError::NotFound("workspace").into());
    }
    let canvas = read_canvas(&state, body.workspace_id).await?;
    let mut structure =
        structure::from_selection(&canvas, &body.block_ids).map_err(selection_error)?;
    keep_valid_invaders(&state, found.org_id, &mut structure).await?;
    let data = structure.to_value();
    let new = NewTemplate {
        org_id: found.org_id,
        warehouse_id: found.id,
        collection_id: body.collection_id,
        name: body.name.trim(),
        description: body.description.as_deref(),
        thumbnail_url: None,
        structure_data: &data,
        version: body.version.as_deref(),
    };
    let created = templates::create(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    tracing::info!(template_id = %created.id, blocks = structure.blocks.len(), "selection saved as template");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The schemas of every invader the template's blocks use (one query).
async fn invader_schemas(
    state: &AppState,
    org_id: Uuid,
    structure: &TemplateStructure,
) -> ApiResult<InvaderSchemas> {
    let keys = structure.blocks.iter().flat_map(|b| b.invaders.keys());
    InvaderSchemas::load(&state.db, org_id, keys).await
}

/// Removes from each block the invader usages the reference check refuses.
async fn keep_valid_invaders(
    state: &AppState,
    org_id: Uuid,
    structure: &mut TemplateStructure,
) -> ApiResult<()> {
    let schemas = invader_schemas(state, org_id, structure).await?;
    for block in &mut structure.blocks {
        for error in schemas.problems(&block.invaders, "") {
            if let Some(key) = error.field.strip_prefix('.') {
                block.invaders.remove(key);
            }
        }
    }
    Ok(())
}

fn selection_error(err: SelectionError) -> ApiError {
    let message = match err {
        SelectionError::UnknownBlocks(ids) => {
            let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            format!("not blocks of the workspace: {}", ids.join(", "))
        }
        SelectionError::Untyped(key) => format!("block {key} has no valid type"),
        SelectionError::TooLarge => "the selection with its descendants exceeds 2000 blocks".into(),
    };
    ApiError::validation(vec![FieldError::new("block_ids", message)])
}

/// The warehouse's live templates, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/warehouses/{warehouse_id}/templates", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path), AssetFilter),
    responses((status = 200, body = Page<TemplateView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_templates(
    State(state): State<AppState>,
    user: AuthUser,
    Path(warehouse_id): Path<Uuid>,
    Query(filter): Query<AssetFilter>,
) -> ApiResult<Json<Page<TemplateView>>> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::WorkspaceRead).await?;
    let page = page_request(filter.limit, filter.cursor.as_deref())?;
    let pool = state.db.pool();
    let rows = templates::list(
        pool,
        found.id,
        filter.collection_id,
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(Json(page.page(
        rows,
        |t| (t.created_at, t.id),
        TemplateView::from,
    )))
}

async fn reach_template(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    needed: Permission,
) -> ApiResult<Template> {
    let found = templates::find_live(state.db.pool(), id).await?;
    reach(state, user, found, |t| t.org_id, "template", needed).await
}

#[utoipa::path(get, path = "/api/v1/templates/{template_id}", tag = "warehouse",
    params(("template_id" = Uuid, Path)),
    responses((status = 200, body = TemplateView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_template(
    State(state): State<AppState>,
    user: AuthUser,
    Path(template_id): Path<Uuid>,
) -> ApiResult<Json<TemplateView>> {
    let found = reach_template(&state, user, template_id, Permission::WorkspaceRead).await?;
    Ok(Json(found.into()))
}

/// Changes a template (`assets:manage`).
#[utoipa::path(patch, path = "/api/v1/templates/{template_id}", tag = "warehouse",
    params(("template_id" = Uuid, Path)), request_body = UpdateTemplateRequest,
    responses((status = 200, body = TemplateView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_template(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(template_id): Path<Uuid>,
    Json(body): Json<UpdateTemplateRequest>,
) -> ApiResult<Json<TemplateView>> {
    let found = reach_template(&state, user, template_id, Permission::AssetsManage).await?;
    validate_texts(
        body.name.as_deref(),
        body.description.as_deref(),
        body.thumbnail_url.as_deref(),
        body.version.as_deref(),
    )?;
    let data = match &body.structure_data {
        Some(value) => {
            let structure =
                checked_structure(&state, found.org_id, value, "structure_data").await?;
            Some(structure.to_value())
        }
        None => None,
    };
    let patch = TemplatePatch {
        collection_id: body.collection_id,
        name: body.name.as_deref().map(str::trim),
        description: body.description.as_deref(),
        thumbnail_url: body.thumbnail_url.as_deref(),
        structure_data: data.as_ref(),
        version: body.version.as_deref(),
    };
    let updated = templates::update(state.db.pool(), &found, patch, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(Json(updated.into()))
}

/// Soft-deletes a template (`assets:manage`); blocks made from it keep their `origin_asset_id`.
#[utoipa::path(delete, path = "/api/v1/templates/{template_id}", tag = "warehouse",
    params(("template_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_template(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(template_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let found = reach_template(&state, user, template_id, Permission::AssetsManage).await?;
    templates::soft_delete(state.db.pool(), &found, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// "Insert template" (`workspace:write`): new blocks and relations with fresh ids and
/// `origin_asset_id` = the template, written as one transaction in the workspace's room (editors
/// see them at once), answered once durable. The template must belong to the workspace's
/// organization (else 404). Within `max_blocks_per_workspace` (402).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/templates/{template_id}/instantiate",
    tag = "warehouse",
    params(("workspace_id" = Uuid, Path), ("template_id" = Uuid, Path)),
    request_body = InstantiateRequest,
    responses((status = 201, body = InstantiateResponse),
        (status = 402, description = "quota_exceeded", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn instantiate(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, template_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<InstantiateRequest>,
) -> ApiResult<(StatusCode, Json<InstantiateResponse>)> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceWrite)
            .await?;
    let template = templates::find_live(state.db.pool(), template_id)
        .await?
        .filter(|t| t.org_id == grant.org_id())
        .ok_or(AccessError::NotFound("template"))?;
    if !(body.x.is_finite() && body.y.is_finite()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "x",
            "x and y must be finite numbers",
        )]));
    }
    let structure =
        checked_structure(&state, grant.org_id(), &template.structure_data, "template").await?;
    let insertion = structure::insertion(&structure, template.id, user.user_id, (body.x, body.y));
    let answer = InstantiateResponse {
        block_ids: ids(&insertion.blocks),
        relation_ids: ids(&insertion.relations),
    };
    let max_blocks = billing::block_limit(state.db.pool(), grant.org_id()).await?;
    let structure::Insertion { blocks, relations } = insertion;
    let result = state
        .rooms
        .request(workspace_id, |reply| {
            HttpRequest::Insert(CanvasInsert {
                user_id: user.user_id,
                blocks: blocks.clone(),
                relations: relations.clone(),
                max_blocks,
                reply,
            })
        })
        .await
        .map_err(room_unavailable)?;
    result.map_err(insert_error)?;
    tracing::info!(%workspace_id, %template_id, blocks = answer.block_ids.len(), "template inserted");
    Ok((StatusCode::CREATED, Json(answer)))
}

fn ids(entities: &[(String, serde_json::Map<String, Value>)]) -> Vec<Uuid> {
    entities
        .iter()
        .filter_map(|(id, _)| Uuid::parse_str(id).ok())
        .collect()
}

fn insert_error(err: InsertError) -> ApiError {
    match err {
        InsertError::Quota(limit) => quota_exceeded(format!(
            "the plan allows at most {limit} blocks per workspace"
        )),
        InsertError::Exists(_) => {
            ApiError::conflict("already_exists", "an entity with a new id exists; retry")
        }
        InsertError::Invalid(message) => {
            ApiError::validation(vec![FieldError::new("template", message)])
        }
        InsertError::Unavailable => {
            ApiError::service_unavailable("the change could not be stored; retry")
        }
    }
}
