//! Blocks and relations over HTTP, through the workspace's room (DESIGN §4, last point): reads come
//! from the live document, writes are server-originated Yjs transactions — live editors see them at
//! once, and they are logged, compacted and projected like any client update. A write to a
//! resource locked by someone else answers 423.

use axum::extract::State;
use axum::http::StatusCode;
use nox_persistence::iam::billing;
use nox_persistence::iam::workspaces::WorkspaceAccess;
use nox_persistence::projection_store::{self, CanvasTable};
use nox_sync_protocol::canvas::CanvasState;
use nox_sync_protocol::rules::body::{BlockBody, NewBlockBody, NewRelationBody, RelationBody};
use nox_sync_protocol::rules::{parse_id, FieldViolation};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::access::features::{self, Flag};
use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path, Query};
use crate::http_forward::{read_canvas, room_unavailable};
use crate::pagination::Page;
use crate::rooms::{CanvasEdit, EditError, Edited, HttpRequest};
use crate::routes::warehouse_references::check_block_fields;
use crate::state::AppState;

pub(crate) mod list_page;

use list_page::IdPage;

/// A block as the API shows it (documentation schema). Request bodies are
/// [`NewBlockBody`] / [`BlockBody`], checked field by field by the canvas rules
/// (`nox_sync_protocol::rules`); a test keeps this schema's fields equal to the rules'.
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

/// Filters and page of `GET /blocks` (`limit` and `cursor` sit beside the filters:
/// `serde(flatten)` does not work with query strings).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlockFilter {
    /// Only blocks of this type.
    #[serde(rename = "type")]
    block_type: Option<String>,
    /// Only children of this block.
    parent: Option<String>,
    /// Items per page, 1–1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Filters and page of `GET /relations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelationFilter {
    #[serde(rename = "type")]
    relation_type: Option<String>,
    source: Option<String>,
    target: Option<String>,
    /// Items per page, 1–1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
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
    responses((status = 200, description = "Blocks of the live document, ordered by id",
            body = Page<BlockDoc>),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "bad `limit` or `cursor`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_blocks(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(filter): Query<BlockFilter>,
) -> ApiResult<Json<Page<Value>>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let page = IdPage::resolve(filter.limit, filter.cursor.as_deref())?;
    let canvas = read_canvas(&state, workspace_id).await?;
    let matches =
        |value: &Value, wanted: &Option<String>| wanted.as_deref().is_none_or(|w| value == w);
    let blocks = canvas
        .blocks
        .iter()
        .filter(|(_, b)| matches(&b.block_type, &filter.block_type))
        .filter(|(_, b)| matches(&b.parent_block_id, &filter.parent))
        .map(|(id, b)| (id.clone(), entity_json(id, b)));
    Ok(Json(page.page(blocks)))
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
    responses((status = 201, body = BlockDoc), (status = 402, description = "plan quota reached",
            body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`id_in_use`: the id is taken (in this workspace or \
            elsewhere; the answer does not say where)", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming each field: column rules, \
            a parent that is not a live block of this workspace or would close a cycle",
            body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<NewBlockBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let block = body.check().map_err(refused)?;
    let id = block.id.unwrap_or_else(Uuid::new_v4);
    check_block_fields(&state.db, access.org_id, &block.fields).await?;
    check_id_free(&state, CanvasTable::Blocks, workspace_id, id).await?;
    check_block_quota(&state, access.org_id, workspace_id).await?;
    let edit = CanvasEdit::CreateBlock { id, block };
    let edited = edit_canvas(&state, workspace_id, user.user_id, edit).await?;
    created(id, edited)
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path)), request_body = BlockDoc,
    responses((status = 200, body = BlockDoc), (status = 404, body = ErrorBody),
        (status = 423, description = "locked by another user", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming each field (a parent cycle \
            names `parent_block_id`)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
    Json(body): Json<BlockBody>,
) -> ApiResult<Json<Value>> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let id = path_id(Entity::Block, &id)?;
    let changes = body.check_patch().map_err(refused)?;
    check_block_fields(&state.db, access.org_id, &changes).await?;
    let edit = CanvasEdit::PatchBlock { id, changes };
    let edited = edit_canvas(&state, workspace_id, user.user_id, edit).await?;
    shown(id, edited)
}

/// Deletes the block with what the seed's foreign keys cascade to (`parent_block_id` and both
/// relation ends are `ON DELETE CASCADE`): its descendants and every relation touching one of them
/// go in the same Yjs transaction, so no editor or reader sees a child or a relation left behind.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/blocks/{block_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("block_id" = String, Path)),
    responses((status = 204, description = "deleted with its descendants and their relations"),
        (status = 404, body = ErrorBody),
        (status = 423, description = "the block, a descendant or one of their relations is \
            locked by another user", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_block(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let id = path_id(Entity::Block, &id)?;
    edit_canvas(
        &state,
        workspace_id,
        user.user_id,
        CanvasEdit::RemoveBlock { id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/relations", tag = "canvas",
    params(("workspace_id" = Uuid, Path), RelationFilter),
    responses((status = 200, description = "Relations of the live document, ordered by id",
            body = Page<RelationDoc>),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "bad `limit` or `cursor`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_relations(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(filter): Query<RelationFilter>,
) -> ApiResult<Json<Page<Value>>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let page = IdPage::resolve(filter.limit, filter.cursor.as_deref())?;
    let canvas = read_canvas(&state, workspace_id).await?;
    let matches =
        |value: &Value, wanted: &Option<String>| wanted.as_deref().is_none_or(|w| value == w);
    let relations = canvas
        .relations
        .iter()
        .filter(|(_, r)| matches(&r.relation_type, &filter.relation_type))
        .filter(|(_, r)| matches(&r.source_block_id, &filter.source))
        .filter(|(_, r)| matches(&r.target_block_id, &filter.target))
        .map(|(id, r)| (id.clone(), entity_json(id, r)));
    Ok(Json(page.page(relations)))
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
    responses((status = 201, body = RelationDoc), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`id_in_use`", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming each field: ends that are not \
            live blocks of this workspace, a self relation, a duplicate of a live relation",
            body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<NewRelationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    features::require_enabled(&state.db, access.org_id, Flag::CanvasRelations).await?;
    let relation = body.check().map_err(refused)?;
    let id = relation.id.unwrap_or_else(Uuid::new_v4);
    check_id_free(&state, CanvasTable::Relations, workspace_id, id).await?;
    let edit = CanvasEdit::CreateRelation { id, relation };
    let edited = edit_canvas(&state, workspace_id, user.user_id, edit).await?;
    created(id, edited)
}

#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/relations/{relation_id}", tag = "canvas",
    params(("workspace_id" = Uuid, Path), ("relation_id" = String, Path)), request_body = RelationDoc,
    responses((status = 200, body = RelationDoc), (status = 404, body = ErrorBody),
        (status = 423, body = ErrorBody),
        (status = 422, description = "`validation_failed` naming each field (ends as on create)",
            body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_relation(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, id)): Path<(Uuid, String)>,
    Json(body): Json<RelationBody>,
) -> ApiResult<Json<Value>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let id = path_id(Entity::Relation, &id)?;
    let changes = body.check_patch().map_err(refused)?;
    let edit = CanvasEdit::PatchRelation { id, changes };
    let edited = edit_canvas(&state, workspace_id, user.user_id, edit).await?;
    shown(id, edited)
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
    let id = path_id(Entity::Relation, &id)?;
    let edit = CanvasEdit::RemoveRelation { id };
    edit_canvas(&state, workspace_id, user.user_id, edit).await?;
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

    /// The path parameter naming it.
    fn id_param(self) -> &'static str {
        match self {
            Entity::Block => "block_id",
            Entity::Relation => "relation_id",
        }
    }

    /// The entity as the API shows it, read from the canvas.
    fn find(self, canvas: &CanvasState, id: &str) -> Option<Value> {
        match self {
            Entity::Block => canvas.blocks.get(id).map(|b| entity_json(id, b)),
            Entity::Relation => canvas.relations.get(id).map(|r| entity_json(id, r)),
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
    let id = path_id(entity, id)?.to_string();
    authorize(state, user, workspace_id, Permission::WorkspaceRead).await?;
    let canvas = read_canvas(state, workspace_id).await?;
    let found = entity.find(&canvas, &id);
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(entity.name()))
}

/// The entity an edit wrote, as the API shows it.
pub(crate) fn shown(id: Uuid, edited: Edited) -> ApiResult<Json<Value>> {
    let id = id.to_string();
    match edited {
        Edited::Block(block) => Ok(Json(entity_json(&id, &block))),
        Edited::Relation(relation) => Ok(Json(entity_json(&id, &relation))),
        Edited::Removed => Err(ApiError::not_found("resource")),
    }
}

fn created(id: Uuid, edited: Edited) -> ApiResult<(StatusCode, Json<Value>)> {
    shown(id, edited).map(|entity| (StatusCode::CREATED, entity))
}

/// A path id that is no UUID names nothing the API can reach: 400 `invalid_id`, as for every
/// other malformed path id. (Entities a stock client keyed by something else are never projected
/// and not addressable here.)
fn path_id(entity: Entity, id: &str) -> ApiResult<Uuid> {
    parse_id(id).ok_or_else(|| ApiError::invalid_id(entity.id_param()))
}

/// 409 `id_in_use` when the id is a row of another workspace: the projection could never store it
/// here. The answer is the one an id already in this workspace gets, so it tells nobody whether
/// the id belongs to their organization or another. (A row written elsewhere between this check
/// and the edit is still never stored here: the projection skips foreign ids.)
async fn check_id_free(
    state: &AppState,
    table: CanvasTable,
    workspace_id: Uuid,
    id: Uuid,
) -> ApiResult<()> {
    if projection_store::is_used_elsewhere(state.db.pool(), table, workspace_id, id).await? {
        return Err(id_in_use());
    }
    Ok(())
}

fn id_in_use() -> ApiError {
    ApiError::conflict("id_in_use", "this id is already in use; choose another")
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

pub(crate) async fn edit_canvas(
    state: &AppState,
    workspace_id: Uuid,
    user_id: Uuid,
    edit: CanvasEdit,
) -> ApiResult<Edited> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Edit {
            user_id,
            edit: Box::new(edit.clone()),
            reply,
        })
        .await
        .map_err(room_unavailable)?
        .map_err(edit_error)
}

fn edit_error(err: EditError) -> ApiError {
    match err {
        EditError::NotFound => ApiError::not_found("resource"),
        EditError::Exists => id_in_use(),
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
        EditError::Invalid(violations) => refused(violations),
        EditError::Unavailable => {
            ApiError::service_unavailable("the change could not be stored; retry")
        }
    }
}

/// 422 `validation_failed` with one entry per refused field.
fn refused(violations: Vec<FieldViolation>) -> ApiError {
    ApiError::validation(
        violations
            .into_iter()
            .map(|v| FieldError::new(v.field, v.problem.to_string()))
            .collect(),
    )
}

/// A block or relation as the API shows it: its fields plus its `id`.
fn entity_json(id: &str, entity: &impl serde::Serialize) -> Value {
    let mut value = serde_json::to_value(entity).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("id".into(), Value::String(id.to_string()));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use nox_sync_protocol::rules::{BLOCK_FIELDS, RELATION_FIELDS};

    fn keys(value: Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn with_id(fields: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        all.push("id".into());
        all.sort();
        all
    }

    /// The documentation schemas show exactly the fields the rules define.
    #[test]
    fn documented_fields_are_the_rules_fields() {
        let block = BlockDoc {
            id: None,
            block_type: String::new(),
            name: None,
            parent_block_id: None,
            origin_asset_id: None,
            created_by_id: None,
            config: None,
            visual: None,
            invaders: None,
        };
        let block = serde_json::to_value(block).unwrap_or_default();
        assert_eq!(keys(block), with_id(&BLOCK_FIELDS));
        let relation = RelationDoc {
            id: None,
            relation_type: String::new(),
            source_block_id: Uuid::nil(),
            target_block_id: Uuid::nil(),
            rules: None,
            visual: None,
        };
        let relation = serde_json::to_value(relation).unwrap_or_default();
        assert_eq!(keys(relation), with_id(&RELATION_FIELDS));
    }
}
