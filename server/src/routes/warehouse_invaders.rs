//! Invader definitions (docs/design.md §17): `POST/GET /warehouses/{id}/invaders`,
//! `GET/PATCH/DELETE /invaders/{id}`, and applying one to a block:
//! `PUT /workspaces/{id}/blocks/{block_id}/invaders/{invader_id}`. `config_schema` is compiled
//! with the `jsonschema` crate on create and update (422 when it is not a valid schema); a
//! block's invader config is checked against it wherever it is written over HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::warehouse::invaders::{self, InvaderDefinition, InvaderPatch, NewInvader};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map as JsonMap, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::canvas::{self, BlockDoc};
use super::warehouse::{reach, reach_warehouse, warehouse_error};
use super::warehouse_templates::AssetFilter;
use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{nullable, Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{page_request, Page};
use crate::rooms::CanvasEdit;
use crate::state::AppState;
use crate::validate::Validator;
use crate::warehouse::schema::ConfigSchema;
use nox_sync_protocol::rules::body::BlockChanges;
use nox_sync_protocol::rules::parse_id;

#[derive(Debug, Serialize, ToSchema)]
pub struct InvaderView {
    pub id: Uuid,
    pub warehouse_id: Uuid,
    pub collection_id: Option<Uuid>,
    /// Unique among the warehouse's live definitions.
    pub code: String,
    pub name: String,
    pub category: String,
    /// The JSON Schema a block's invader config must satisfy.
    #[schema(value_type = Object)]
    pub config_schema: Value,
    #[schema(value_type = Object)]
    pub compiler_hooks: Value,
    pub version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<InvaderDefinition> for InvaderView {
    fn from(d: InvaderDefinition) -> Self {
        InvaderView {
            id: d.id,
            warehouse_id: d.warehouse_id,
            collection_id: d.collection_id,
            code: d.code,
            name: d.name,
            category: d.category,
            config_schema: d.config_schema,
            compiler_hooks: d.compiler_hooks,
            version: d.version,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvaderRequest {
    /// 1-100 characters of a-z, 0-9, `-`, `_`, `.`; unique in the warehouse.
    pub code: String,
    pub name: String,
    /// 1-50 characters.
    pub category: String,
    /// A JSON Schema (object or boolean).
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// Any JSON object; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub compiler_hooks: Option<Value>,
    pub version: Option<String>,
    pub collection_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInvaderRequest {
    pub code: Option<String>,
    pub name: Option<String>,
    pub category: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub compiler_hooks: Option<Value>,
    pub version: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub collection_id: Option<Option<Uuid>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyInvaderRequest {
    /// The block's config for this invader; must satisfy the definition's `config_schema`.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Default: the definition's version.
    pub applied_version: Option<String>,
}

fn is_code(code: &str) -> bool {
    (1..=100).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

struct InvaderFields<'a> {
    code: Option<&'a str>,
    name: Option<&'a str>,
    category: Option<&'a str>,
    config_schema: Option<&'a Value>,
    compiler_hooks: Option<&'a Value>,
    version: Option<&'a str>,
}

fn validate_invader(f: &InvaderFields<'_>) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(code) = f.code {
        v.check(
            is_code(code),
            "code",
            "must be 1-100 characters of a-z, 0-9, '-', '_', '.'",
        );
    }
    if let Some(name) = f.name {
        v.text("name", name, 255);
    }
    if let Some(category) = f.category {
        v.text("category", category, 50);
    }
    if let Some(version) = f.version {
        v.text("version", version, 20);
    }
    if let Some(hooks) = f.compiler_hooks {
        v.check(hooks.is_object(), "compiler_hooks", "must be a JSON object");
    }
    if let Some(schema) = f.config_schema {
        if let Err(message) = ConfigSchema::compile(schema) {
            v.check(false, "config_schema", &message);
        }
    }
    v.finish()
}

/// Creates an invader definition (`assets:manage`).
#[utoipa::path(post, path = "/api/v1/warehouses/{warehouse_id}/invaders", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path)), request_body = CreateInvaderRequest,
    responses((status = 201, body = InvaderView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "invader_code_taken", body = ErrorBody),
        (status = 422, description = "including an invalid config_schema", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_invader(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(warehouse_id): Path<Uuid>,
    Json(body): Json<CreateInvaderRequest>,
) -> ApiResult<(StatusCode, Json<InvaderView>)> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::AssetsManage).await?;
    let hooks = body.compiler_hooks.clone().unwrap_or_else(|| json!({}));
    validate_invader(&InvaderFields {
        code: Some(&body.code),
        name: Some(&body.name),
        category: Some(&body.category),
        config_schema: Some(&body.config_schema),
        compiler_hooks: Some(&hooks),
        version: body.version.as_deref(),
    })?;
    let new = NewInvader {
        org_id: found.org_id,
        warehouse_id: found.id,
        collection_id: body.collection_id,
        code: &body.code,
        name: body.name.trim(),
        category: body.category.trim(),
        config_schema: &body.config_schema,
        compiler_hooks: &hooks,
        version: body.version.as_deref(),
    };
    let created = invaders::create(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The warehouse's live invader definitions, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/warehouses/{warehouse_id}/invaders", tag = "warehouse",
    params(("warehouse_id" = Uuid, Path), AssetFilter),
    responses((status = 200, body = Page<InvaderView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_invaders(
    State(state): State<AppState>,
    user: AuthUser,
    Path(warehouse_id): Path<Uuid>,
    Query(filter): Query<AssetFilter>,
) -> ApiResult<Json<Page<InvaderView>>> {
    let found = reach_warehouse(&state, user, warehouse_id, Permission::WorkspaceRead).await?;
    let page = page_request(filter.limit, filter.cursor.as_deref())?;
    let pool = state.db.pool();
    let rows = invaders::list(
        pool,
        found.id,
        filter.collection_id,
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(Json(page.page(
        rows,
        |d| (d.created_at, d.id),
        InvaderView::from,
    )))
}

async fn reach_invader(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    needed: Permission,
) -> ApiResult<InvaderDefinition> {
    let found = invaders::find_live(state.db.pool(), id).await?;
    reach(
        state,
        user,
        found,
        |d| d.org_id,
        "invader definition",
        needed,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/invaders/{invader_id}", tag = "warehouse",
    params(("invader_id" = Uuid, Path)),
    responses((status = 200, body = InvaderView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_invader(
    State(state): State<AppState>,
    user: AuthUser,
    Path(invader_id): Path<Uuid>,
) -> ApiResult<Json<InvaderView>> {
    let found = reach_invader(&state, user, invader_id, Permission::WorkspaceRead).await?;
    Ok(Json(found.into()))
}

/// Changes a definition (`assets:manage`). A new `config_schema` must compile; blocks whose
/// configs no longer satisfy it lose the usage at their workspace's next compaction (which runs
/// after the workspace's next edit, not at once).
#[utoipa::path(patch, path = "/api/v1/invaders/{invader_id}", tag = "warehouse",
    params(("invader_id" = Uuid, Path)), request_body = UpdateInvaderRequest,
    responses((status = 200, body = InvaderView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_invader(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(invader_id): Path<Uuid>,
    Json(body): Json<UpdateInvaderRequest>,
) -> ApiResult<Json<InvaderView>> {
    let found = reach_invader(&state, user, invader_id, Permission::AssetsManage).await?;
    validate_invader(&InvaderFields {
        code: body.code.as_deref(),
        name: body.name.as_deref(),
        category: body.category.as_deref(),
        config_schema: body.config_schema.as_ref(),
        compiler_hooks: body.compiler_hooks.as_ref(),
        version: body.version.as_deref(),
    })?;
    let patch = InvaderPatch {
        collection_id: body.collection_id,
        code: body.code.as_deref(),
        name: body.name.as_deref().map(str::trim),
        category: body.category.as_deref().map(str::trim),
        config_schema: body.config_schema.as_ref(),
        compiler_hooks: body.compiler_hooks.as_ref(),
        version: body.version.as_deref(),
    };
    let updated = invaders::update(state.db.pool(), &found, patch, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(Json(updated.into()))
}

/// Soft-deletes a definition (`assets:manage`).
#[utoipa::path(delete, path = "/api/v1/invaders/{invader_id}", tag = "warehouse",
    params(("invader_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_invader(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(invader_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let found = reach_invader(&state, user, invader_id, Permission::AssetsManage).await?;
    invaders::soft_delete(state.db.pool(), &found, &client.actor(&user))
        .await
        .map_err(warehouse_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Applies an invader to a block (`workspace:write`): sets `invaders[invader_id]` to
/// `{applied_version, config_snapshot}` through the room. The definition must be a live one of
/// the workspace's organization (else 422) and `config` must satisfy its schema (else 422).
#[utoipa::path(put,
    path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}/invaders/{invader_id}",
    tag = "warehouse",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path), ("invader_id" = Uuid, Path)),
    request_body = ApplyInvaderRequest,
    responses((status = 200, body = BlockDoc), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 423, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn apply_invader(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, block_id, invader_id)): Path<(Uuid, String, Uuid)>,
    Json(body): Json<ApplyInvaderRequest>,
) -> ApiResult<Json<Value>> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceWrite)
            .await?;
    let definitions = invaders::live_of_org(state.db.pool(), grant.org_id(), &[invader_id]).await?;
    let Some(definition) = definitions.get(&invader_id) else {
        return Err(ApiError::validation(vec![FieldError::new(
            "invader_id",
            "must be an invader definition of this organization's warehouse",
        )]));
    };
    let version = body.applied_version.clone().or(definition.version.clone());
    let mut v = Validator::new();
    if let Some(version) = &version {
        v.text("applied_version", version, 20);
    }
    v.finish()?;
    let schema = ConfigSchema::compile(&definition.config_schema)
        .map_err(|m| ApiError::validation(vec![FieldError::new("invader_id", m)]))?;
    if let Err(messages) = schema.check(&body.config) {
        let errors = messages
            .into_iter()
            .map(|m| FieldError::new("config", m))
            .collect();
        return Err(ApiError::validation(errors));
    }
    let id = parse_id(&block_id).ok_or_else(|| ApiError::invalid_id("block_id"))?;
    let mut usage = JsonMap::new();
    usage.insert(
        invader_id.to_string(),
        json!({ "applied_version": version, "config_snapshot": body.config }),
    );
    // A patch of `invaders` sets this one key of the block's nested map; other usages stay.
    let changes = BlockChanges {
        invaders: Some(usage),
        ..BlockChanges::default()
    };
    let edit = CanvasEdit::PatchBlock { id, changes };
    let edited = canvas::edit_canvas(&state, workspace_id, user.user_id, edit).await?;
    canvas::shown(id, edited)
}
