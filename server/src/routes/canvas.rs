//! Blocks and relations over HTTP, through the workspace's room (DESIGN §4, last point): reads come
//! from the live document, writes are server-originated Yjs transactions — live editors see them at
//! once, and they are logged, compacted and projected like any client update. A write to a
//! resource locked by someone else answers 423.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use nox_sync_protocol::canvas::CanvasState;
use serde::Deserialize;
use serde_json::{json, Map as JsonMap, Value};
use uuid::Uuid;

use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path, Query};
use crate::rooms::{CanvasEdit, EditError, HttpRequest, JoinError};
use crate::state::AppState;
use nox_persistence::iam::billing;
use nox_persistence::iam::workspaces::WorkspaceAccess;

const BLOCK_FIELDS: [&str; 7] = [
    "type",
    "name",
    "parent_block_id",
    "origin_asset_id",
    "config",
    "visual",
    "invaders",
];
const RELATION_FIELDS: [&str; 5] = [
    "type",
    "source_block_id",
    "target_block_id",
    "rules",
    "visual",
];

/// A block as the API shows it (documentation schema; bodies are validated field by field).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BlockDoc {
    /// UUID; generated when a create body has none.
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub block_type: String,
    pub name: Option<String>,
    pub parent_block_id: Option<Uuid>,
    pub origin_asset_id: Option<Uuid>,
    /// Set by the server to the creating user.
    pub created_by_id: Option<Uuid>,
    pub config: Option<Object>,
    pub visual: Option<Object>,
    /// invader asset id → `{applied_version, config_snapshot}`.
    pub invaders: Option<Object>,
}

/// A relation as the API shows it (documentation schema).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RelationDoc {
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub relation_type: String,
    pub source_block_id: Uuid,
    pub target_block_id: Uuid,
    pub rules: Option<Object>,
    pub visual: Option<Object>,
}

/// Any JSON object.
type Object = std::collections::HashMap<String, serde_json::Value>;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlockFilter {
    #[serde(rename = "type")]
    block_type: Option<String>,
    parent: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelationFilter {
    #[serde(rename = "type")]
    relation_type: Option<String>,
    source: Option<String>,
    target: Option<String>,
}

/// Checks the caller may `needed` in the workspace (404 for strangers, 403 for members without it).
pub async fn authorize(
    state: &AppState,
    user: &AuthUser,
    workspace_id: Uuid,
    needed: Permission,
) -> ApiResult<WorkspaceAccess> {
    let grant = access::workspace_permission(&state.db, *user, workspace_id, needed).await?;
    Ok(grant.access)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/blocks", tag = "canvas",
    params(("workspace_id" = Uuid, Path), BlockFilter),
    responses((status = 200, description = "`{\"blocks\": [...]}` from the live document"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_blocks(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(filter): Query<BlockFilter>,
) -> ApiResult<impl IntoResponse> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let canvas = read_canvas(&state, workspace_id).await?;
    let blocks: Vec<Value> = canvas
        .blocks
        .iter()
        .filter(|(_, b)| {
            filter
                .block_type
                .as_deref()
                .is_none_or(|t| b.block_type == t)
        })
        .filter(|(_, b)| {
            filter
                .parent
                .as_deref()
                .is_none_or(|p| b.parent_block_id == p)
        })
        .map(|(id, b)| entity_json(id, b))
        .collect();
    Ok(Json(json!({ "blocks": blocks })))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path)),
    responses((status = 200, body = BlockDoc), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
) -> ApiResult<Json<Value>> {
    get_entity(&state, &user, workspace_id, Entity::Block, &id).await
}

#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/blocks", tag = "canvas",
    params(("workspace_id" = Uuid, Path)), request_body = BlockDoc,
    responses((status = 201, body = BlockDoc), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<JsonMap<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    create_entity(&state, &user, workspace_id, Entity::Block, body).await
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path)), request_body = BlockDoc,
    responses((status = 200, body = BlockDoc), (status = 404, body = ErrorBody),
        (status = 423, description = "locked by another user", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
    Json(body): Json<JsonMap<String, Value>>,
) -> ApiResult<Json<Value>> {
    patch_entity(&state, &user, workspace_id, Entity::Block, id, body).await
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    edit_canvas(&state, workspace_id, user.user_id, Entity::Block.remove(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/relations", tag = "canvas",
    params(("workspace_id" = Uuid, Path), RelationFilter),
    responses((status = 200, description = "`{\"relations\": [...]}` from the live document"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_relations(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(filter): Query<RelationFilter>,
) -> ApiResult<impl IntoResponse> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let canvas = read_canvas(&state, workspace_id).await?;
    let matches =
        |value: &Value, wanted: &Option<String>| wanted.as_deref().is_none_or(|w| value == w);
    let relations: Vec<Value> = canvas
        .relations
        .iter()
        .filter(|(_, r)| matches(&r.relation_type, &filter.relation_type))
        .filter(|(_, r)| matches(&r.source_block_id, &filter.source))
        .filter(|(_, r)| matches(&r.target_block_id, &filter.target))
        .map(|(id, r)| entity_json(id, r))
        .collect();
    Ok(Json(json!({ "relations": relations })))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/relations/{relation_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("relation_id" = String, Path)),
    responses((status = 200, body = RelationDoc), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
) -> ApiResult<Json<Value>> {
    get_entity(&state, &user, workspace_id, Entity::Relation, &id).await
}

#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/relations", tag = "canvas",
    params(("workspace_id" = Uuid, Path)), request_body = RelationDoc,
    responses((status = 201, body = RelationDoc), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<JsonMap<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    create_entity(&state, &user, workspace_id, Entity::Relation, body).await
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/relations/{relation_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("relation_id" = String, Path)), request_body = RelationDoc,
    responses((status = 200, body = RelationDoc), (status = 404, body = ErrorBody),
        (status = 423, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
    Json(body): Json<JsonMap<String, Value>>,
) -> ApiResult<Json<Value>> {
    patch_entity(&state, &user, workspace_id, Entity::Relation, id, body).await
}

#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/relations/{relation_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("relation_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 423, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    edit_canvas(
        &state,
        workspace_id,
        user.user_id,
        Entity::Relation.remove(id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Blocks and relations are handled alike; this says where they differ.
#[derive(Debug, Clone, Copy)]
enum Entity {
    Block,
    Relation,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Block => "block",
            Entity::Relation => "relation",
        }
    }

    /// The entity as the API shows it, read from the canvas.
    fn find(self, canvas: &CanvasState, id: &str) -> Option<Value> {
        match self {
            Entity::Block => canvas.blocks.get(id).map(|b| entity_json(id, b)),
            Entity::Relation => canvas.relations.get(id).map(|r| entity_json(id, r)),
        }
    }

    fn validate(self, fields: &JsonMap<String, Value>, create: bool) -> ApiResult<()> {
        match self {
            Entity::Block => validate_block(fields, create),
            Entity::Relation => validate_relation(fields, create),
        }
    }

    /// Defaults of a new entity: empty nested maps, an empty name, and who created a block.
    fn fill_defaults(self, fields: &mut JsonMap<String, Value>, creator: Uuid) {
        let nested = match self {
            Entity::Block => ["config", "visual"],
            Entity::Relation => ["rules", "visual"],
        };
        for key in nested {
            fields.entry(key).or_insert_with(|| json!({}));
        }
        if let Entity::Block = self {
            fields
                .entry("name")
                .or_insert_with(|| Value::String(String::new()));
            fields.insert("created_by_id".into(), Value::String(creator.to_string()));
        }
    }

    fn put(self, id: String, fields: JsonMap<String, Value>, create: bool) -> CanvasEdit {
        match self {
            Entity::Block => CanvasEdit::PutBlock { id, fields, create },
            Entity::Relation => CanvasEdit::PutRelation { id, fields, create },
        }
    }

    fn remove(self, id: String) -> CanvasEdit {
        match self {
            Entity::Block => CanvasEdit::RemoveBlock { id },
            Entity::Relation => CanvasEdit::RemoveRelation { id },
        }
    }
}

async fn get_entity(
    state: &AppState,
    user: &AuthUser,
    workspace_id: Uuid,
    entity: Entity,
    id: &str,
) -> ApiResult<Json<Value>> {
    authorize(state, user, workspace_id, Permission::WorkspaceRead).await?;
    let canvas = read_canvas(state, workspace_id).await?;
    let found = entity.find(&canvas, id);
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(entity.name()))
}

async fn create_entity(
    state: &AppState,
    user: &AuthUser,
    workspace_id: Uuid,
    entity: Entity,
    body: JsonMap<String, Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = authorize(state, user, workspace_id, Permission::WorkspaceWrite).await?;
    let (id, mut fields) = split_id(body)?;
    entity.validate(&fields, true)?;
    if let Entity::Block = entity {
        super::warehouse_references::check_block_fields(&state.db, access.org_id, &fields).await?;
        check_block_quota(state, access.org_id, workspace_id).await?;
    }
    entity.fill_defaults(&mut fields, user.user_id);
    let edit = entity.put(id.clone(), fields, true);
    let canvas = edit_canvas(state, workspace_id, user.user_id, edit).await?;
    let created = entity.find(&canvas, &id);
    let created = created.ok_or_else(|| ApiError::not_found(entity.name()))?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn patch_entity(
    state: &AppState,
    user: &AuthUser,
    workspace_id: Uuid,
    entity: Entity,
    id: String,
    body: JsonMap<String, Value>,
) -> ApiResult<Json<Value>> {
    let access = authorize(state, user, workspace_id, Permission::WorkspaceWrite).await?;
    entity.validate(&body, false)?;
    if let Entity::Block = entity {
        super::warehouse_references::check_block_fields(&state.db, access.org_id, &body).await?;
    }
    let edit = entity.put(id.clone(), body, false);
    let canvas = edit_canvas(state, workspace_id, user.user_id, edit).await?;
    let found = entity.find(&canvas, &id);
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(entity.name()))
}

/// 402 when the workspace already has as many blocks as the plan allows. Enforced where blocks are
/// created over HTTP; a CRDT update from an editor cannot be partly refused (see the issue note).
async fn check_block_quota(state: &AppState, org_id: Uuid, workspace_id: Uuid) -> ApiResult<()> {
    let Some(limit) = billing::block_limit(state.db.pool(), org_id).await? else {
        return Ok(());
    };
    let blocks = read_canvas(state, workspace_id).await?.blocks.len() as i64;
    if blocks >= limit {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "quota_exceeded",
            format!("the plan allows at most {limit} blocks per workspace"),
        ));
    }
    Ok(())
}

async fn read_canvas(state: &AppState, workspace_id: Uuid) -> ApiResult<CanvasState> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Canvas { reply })
        .await
        .map_err(room_unavailable)
}

async fn edit_canvas(
    state: &AppState,
    workspace_id: Uuid,
    user_id: Uuid,
    edit: CanvasEdit,
) -> ApiResult<CanvasState> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Edit {
            user_id,
            edit: edit.clone(),
            reply,
        })
        .await
        .map_err(room_unavailable)?
        .map_err(edit_error)
}

pub fn room_unavailable(err: JoinError) -> ApiError {
    tracing::warn!(error = %err, "workspace room unavailable");
    ApiError::service_unavailable("the workspace is not available right now; retry")
}

fn edit_error(err: EditError) -> ApiError {
    match err {
        EditError::NotFound => ApiError::not_found("resource"),
        EditError::Exists => ApiError::conflict("already_exists", "an entity with this id exists"),
        EditError::Locked(lock) => ApiError::new(
            StatusCode::LOCKED,
            "locked",
            format!(
                "locked by {} until {} (ms since epoch)",
                lock.user_name
                    .clone()
                    .unwrap_or_else(|| lock.user_id.to_string()),
                lock.expires_at
            ),
        ),
        EditError::Invalid(message) => ApiError::validation(vec![FieldError::new("body", message)]),
        EditError::Unavailable => {
            ApiError::service_unavailable("the change could not be stored; retry")
        }
    }
}

/// Takes the optional `id` out of a create body (a new UUID when absent).
fn split_id(mut body: JsonMap<String, Value>) -> ApiResult<(String, JsonMap<String, Value>)> {
    let id = match body.remove("id") {
        None | Some(Value::Null) => Uuid::new_v4(),
        Some(Value::String(s)) => Uuid::parse_str(&s)
            .map_err(|_| ApiError::validation(vec![FieldError::new("id", "must be a UUID")]))?,
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "id",
                "must be a UUID",
            )]))
        }
    };
    Ok((id.to_string(), body))
}

fn validate_block(fields: &JsonMap<String, Value>, create: bool) -> ApiResult<()> {
    let mut errors = unknown_fields(fields, &BLOCK_FIELDS);
    required_text(fields, "type", 50, create, &mut errors);
    optional_text(fields, "name", 255, &mut errors);
    for key in ["parent_block_id", "origin_asset_id"] {
        nullable_uuid(fields, key, &mut errors);
    }
    for key in ["config", "visual", "invaders"] {
        object(fields, key, &mut errors);
    }
    finish(errors)
}

fn validate_relation(fields: &JsonMap<String, Value>, create: bool) -> ApiResult<()> {
    let mut errors = unknown_fields(fields, &RELATION_FIELDS);
    required_text(fields, "type", 50, create, &mut errors);
    for key in ["source_block_id", "target_block_id"] {
        match fields.get(key) {
            None if create => errors.push(FieldError::new(key, "is required")),
            None => {}
            Some(v) if v.as_str().and_then(|s| Uuid::parse_str(s).ok()).is_some() => {}
            Some(_) => errors.push(FieldError::new(key, "must be a UUID")),
        }
    }
    for key in ["rules", "visual"] {
        object(fields, key, &mut errors);
    }
    finish(errors)
}

fn unknown_fields(fields: &JsonMap<String, Value>, allowed: &[&str]) -> Vec<FieldError> {
    fields
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| FieldError::new(k.as_str(), "unknown field"))
        .collect()
}

fn required_text(
    fields: &JsonMap<String, Value>,
    key: &str,
    max: usize,
    required: bool,
    errors: &mut Vec<FieldError>,
) {
    match fields.get(key) {
        None if required => errors.push(FieldError::new(key, "is required")),
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {}
        Some(_) => errors.push(FieldError::new(
            key,
            format!("must be a non-empty string of at most {max} characters"),
        )),
    }
}

fn optional_text(
    fields: &JsonMap<String, Value>,
    key: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) {
    match fields.get(key) {
        None => {}
        Some(Value::String(s)) if s.chars().count() <= max => {}
        Some(_) => errors.push(FieldError::new(
            key,
            format!("must be a string of at most {max} characters"),
        )),
    }
}

fn nullable_uuid(fields: &JsonMap<String, Value>, key: &str, errors: &mut Vec<FieldError>) {
    match fields.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if Uuid::parse_str(s).is_ok() => {}
        Some(_) => errors.push(FieldError::new(key, "must be a UUID or null")),
    }
}

fn object(fields: &JsonMap<String, Value>, key: &str, errors: &mut Vec<FieldError>) {
    if fields.get(key).is_some_and(|v| !v.is_object()) {
        errors.push(FieldError::new(key, "must be a JSON object"));
    }
}

fn finish(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// A block or relation as the API shows it: its fields plus its `id`.
fn entity_json(id: &str, entity: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(entity).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("id".into(), Value::String(id.to_string()));
    }
    value
}
