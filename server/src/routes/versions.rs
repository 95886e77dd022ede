//! Version history of a workspace (issue 14): `/api/v1/workspaces/{id}/versions…`.
//!
//! A version is the state of the workspace's document, taken by its room (so it holds only
//! durable updates) and stored in `core_snapshots`: whole (named versions), or as the changes
//! since the newest full version when that is worth it (the others). A read parses the stored
//! update (with its base's)
//! (`restore::StoredVersion`; a state holding content that reader leaves to yrs is decoded into a
//! document instead), and the last few read versions are kept (`recent_versions.rs`). A restore
//! is a forward change made by the room, with a `before_restore` version of the state it
//! replaces, committed together with the audit row once the restore is durable, so restoring that
//! one undoes it (docs/design.md §19).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::versions::{self, NewVersion, VersionKind, VersionMeta};
use nox_sync_protocol::canvas::{self, CanvasState};
use nox_sync_protocol::diff::{self, CanvasDiff};
use nox_sync_protocol::restore::{RestoreSummary, StoredVersion, VersionSource};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{Transact, Update};

use super::canvas::authorize;
use crate::access::AuthUser;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::{nullable, Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::recent_versions::drop_off_the_request_path;
use crate::rooms::{EditError, HttpRequest, JoinError, RestoreOutcome, VersionState};
use crate::state::AppState;
use crate::validate::Validator;

/// A version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// `named` (asked for by a user, never pruned automatically), `auto` (taken after the
    /// workspace changed and went quiet) or `before_restore` (taken just before a restore).
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    /// Null for automatic versions.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub block_count: i32,
    pub relation_count: i32,
    /// Bytes of the stored Yjs v1 update: the whole state, or the changes since
    /// `base_version_id`.
    pub size_bytes: i64,
    /// Bytes it takes in the database (after PostgreSQL's compression).
    pub stored_bytes: i64,
    /// Set when the version is stored as the changes since that (full) version of the workspace:
    /// it is kept as long as this one is.
    pub base_version_id: Option<Uuid>,
}

impl From<VersionMeta> for VersionView {
    fn from(v: VersionMeta) -> Self {
        VersionView {
            id: v.id,
            workspace_id: v.workspace_id,
            kind: v.kind.as_str().to_string(),
            name: v.name,
            description: v.description,
            created_by: v.created_by,
            created_at: v.created_at,
            block_count: v.block_count,
            relation_count: v.relation_count,
            size_bytes: v.size_bytes,
            stored_bytes: v.stored_bytes,
            base_version_id: v.base_version_id,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateVersionRequest {
    /// 1–255 characters.
    pub name: String,
    /// At most 10 000 characters.
    pub description: Option<String>,
}

/// A version's name or description to change: a field left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVersionRequest {
    /// 1–255 characters. Naming an automatic or before-restore version keeps it for good: it
    /// becomes `named`.
    pub name: Option<String>,
    /// At most 10 000 characters, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// What a restore did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreView {
    /// The version the canvas now equals.
    pub restored: VersionView,
    /// The state just before the restore; restoring it undoes the restore.
    pub before_restore: VersionView,
    /// Entities added, removed and changed by the restore.
    #[schema(value_type = Object)]
    pub changes: RestoreSummary,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// `current` (the live document, the default) or the id of another version of this workspace.
    against: Option<String>,
}

/// Where the other side of a diff comes from.
enum DiffTarget {
    Current,
    Version(Uuid),
}

const MAX_DESCRIPTION: usize = 10_000;

/// Stores a named version of the workspace's current state (`workspace:write`).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/versions", tag = "versions",
    params(("workspace_id" = Uuid, Path)), request_body = CreateVersionRequest,
    responses((status = 201, body = VersionView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<CreateVersionRequest>,
) -> ApiResult<(StatusCode, Json<VersionView>)> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let mut v = Validator::new();
    v.text("name", &body.name, 255);
    check_description(&mut v, body.description.as_deref());
    v.finish()?;
    let started = std::time::Instant::now();
    // A version named when taken is stored whole: it is kept for good, a base for the others.
    let taken = take_state(&state, workspace_id, None).await?;
    let taken_after = started.elapsed();
    let version = taken.to_new_version(
        workspace_id,
        VersionKind::Named,
        body.name.trim(),
        body.description.as_deref(),
        Some(user.user_id),
    );
    let who = client.actor(&user);
    let stored = versions::insert_audited(state.db.pool(), &version, |stored| {
        who.entry(
            access.org_id,
            "workspace.version_created",
            "workspace",
            workspace_id,
            Some(json!({ "version_id": stored.id, "name": stored.name })),
        )
    })
    .await?
    .ok_or_else(|| ApiError::not_found("workspace"))?;
    tracing::info!(
        %workspace_id,
        version_id = %stored.id,
        taken_ms = taken_after.as_millis(),
        total_ms = started.elapsed().as_millis(),
        bytes = stored.size_bytes,
        "named version stored"
    );
    Ok((StatusCode::CREATED, Json(stored.into())))
}

fn check_description(v: &mut Validator, description: Option<&str>) {
    if let Some(d) = description {
        v.check(
            d.chars().count() <= MAX_DESCRIPTION,
            "description",
            "must be at most 10000 characters",
        );
    }
}

/// Renames or re-describes a version (`workspace:write`, audited). Naming an automatic version
/// keeps it for good (it becomes `named`, never pruned automatically).
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    tag = "versions", params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path)),
    request_body = UpdateVersionRequest,
    responses((status = 200, body = VersionView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<UpdateVersionRequest>,
) -> ApiResult<Json<VersionView>> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let mut v = Validator::new();
    if let Some(name) = &body.name {
        v.text("name", name, 255);
    }
    check_description(&mut v, body.description.as_ref().and_then(Option::as_deref));
    v.check(
        body.name.is_some() || body.description.is_some(),
        "name",
        "give a name or a description to change",
    );
    v.finish()?;
    let edit = versions::VersionEdit {
        name: body.name.as_deref().map(str::trim),
        description: body.description.as_ref().map(Option::as_deref),
    };
    let who = client.actor(&user);
    let edited = versions::edit_audited(state.db.pool(), workspace_id, version_id, edit, |v| {
        who.entry(
            access.org_id,
            "workspace.version_updated",
            "workspace",
            workspace_id,
            Some(json!({ "version_id": v.id, "name": v.name, "kind": v.kind })),
        )
    })
    .await?
    .ok_or_else(|| ApiError::not_found("version"))?;
    Ok(Json(edited.into()))
}

/// Deletes a version (`workspace:write`, audited). Versions stored as the changes since it are
/// rewritten whole first, so they read as before.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    tag = "versions", params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let who = client.actor(&user);
    versions::delete_audited(state.db.pool(), workspace_id, version_id, |v, rewritten| {
        who.entry(
            access.org_id,
            "workspace.version_deleted",
            "workspace",
            workspace_id,
            Some(json!({
                "version_id": v.id,
                "name": v.name,
                "kind": v.kind,
                "rewritten_whole": rewritten,
            })),
        )
    })
    .await?
    .ok_or_else(|| ApiError::not_found("version"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workspace's versions, newest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/versions", tag = "versions",
    params(("workspace_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<VersionView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<VersionView>>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let page = params.resolve()?;
    let rows = versions::list(state.db.pool(), workspace_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |v| (v.created_at, v.id),
        VersionView::from,
    )))
}

/// One version's metadata with its block and relation counts (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    tag = "versions", params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path)),
    responses((status = 200, body = VersionView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<VersionView>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let found = find_version(&state, workspace_id, version_id).await?;
    Ok(Json(found.into()))
}

/// The blocks and relations of a version, as the block / relation REST shows them.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}/canvas",
    tag = "versions", params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path)),
    responses((status = 200, description = "`{\"blocks\": [...], \"relations\": [...]}`"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn canvas(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Value>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let canvas = version_canvas(&state, workspace_id, version_id).await?;
    let blocks: Vec<Value> = canvas
        .blocks
        .iter()
        .map(|(id, b)| diff::entity_json(id, b))
        .collect();
    let relations: Vec<Value> = canvas
        .relations
        .iter()
        .map(|(id, r)| diff::entity_json(id, r))
        .collect();
    Ok(Json(json!({ "blocks": blocks, "relations": relations })))
}

/// What changed from the version to `against` (the live document by default, or another version):
/// entities added, removed and changed, field by field (`before` = the version).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}/diff",
    tag = "versions",
    params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path), DiffParams),
    responses((status = 200, description = "`{\"base\", \"against\", \"blocks\": {added, removed, \
        changed}, \"relations\": {...}}`"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn diff(
    State(state): State<AppState>,
    user: AuthUser,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
    Query(params): Query<DiffParams>,
) -> ApiResult<Json<Value>> {
    let target = parse_against(params.against.as_deref())?;
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    // Both sides are read at once (the live canvas from the room, the version off the workers).
    let base = version_canvas(&state, workspace_id, version_id);
    let (base, other, against) = match target {
        DiffTarget::Current => {
            let (base, other) = tokio::try_join!(base, current_canvas(&state, workspace_id))?;
            (base, other, json!("current"))
        }
        DiffTarget::Version(other_id) => {
            let other = version_canvas(&state, workspace_id, other_id);
            let (base, other) = tokio::try_join!(base, other)?;
            (base, other, json!(other_id))
        }
    };
    let CanvasDiff { blocks, relations } =
        tokio::task::spawn_blocking(move || diff::diff_canvas(&base, &other))
            .await
            .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "base": version_id,
        "against": against,
        "blocks": blocks,
        "relations": relations,
    })))
}

/// Brings the live canvas back to the version, as a forward change that open editors see at once
/// (`workspace:write`, audited). The state it replaces is stored first as a `before_restore`
/// version.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/versions/{version_id}/restore",
    tag = "versions", params(("workspace_id" = Uuid, Path), ("version_id" = Uuid, Path)),
    responses((status = 200, body = RestoreView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn restore(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, version_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<RestoreView>> {
    let access = authorize(&state, &user, workspace_id, Permission::WorkspaceWrite).await?;
    let started = std::time::Instant::now();
    // The transaction the before-restore version is written in holds its base (the newest full
    // version) against retention.
    let (restored, (tx, base)) =
        tokio::try_join!(find_version(&state, workspace_id, version_id), async {
            Ok(versions::begin_with_base(state.db.pool(), workspace_id).await?)
        })?;
    let name = format!("Before restoring \u{201c}{}\u{201d}", restored.name);
    let name: String = name.chars().take(255).collect();
    let user_id = user.user_id;
    // Three things overlap (docs/design.md §19): reading the version (the slow part for a large
    // canvas); the room taking the current state, then the route writing it as the
    // `before_restore` row, in a transaction that commits only once the restore is durable; and,
    // once both the version and that state are in hand, the room applying the restore.
    let read = tokio::spawn({
        let state = state.clone();
        async move { read_version(&state, workspace_id, version_id).await }
    });
    let taken = take_state(&state, workspace_id, base.clone()).await?;
    let state_taken = started.elapsed();
    let mut version_read = Duration::ZERO;
    let apply = async {
        let target = read.await.map_err(ApiError::internal)??;
        version_read = started.elapsed();
        let outcome = state
            .rooms
            .request(workspace_id, |reply| HttpRequest::Restore {
                user_id,
                target: target.clone(),
                prepared: taken.document_version,
                base: base.clone(),
                reply,
            })
            .await;
        drop_off_the_request_path(target);
        outcome
            .map_err(room_unavailable)?
            .map_err(|err: EditError| {
                tracing::warn!(%workspace_id, error = %err, "restore not applied");
                ApiError::service_unavailable("the restore could not be stored; retry")
            })
    };
    let before_version = before_restore_row(&taken, workspace_id, &name, user_id);
    let (applied, written) = tokio::join!(apply, write_pending(tx, &before_version));
    // A restore that failed leaves nothing: its pending row (if written) rolls back on drop.
    let outcome: RestoreOutcome = applied?;
    let mut pending = match written {
        Ok(pending) => pending,
        // The restore is applied: its undo is worth a second try.
        Err(err) => {
            tracing::warn!(%workspace_id, error = ?err, "before-restore version not written; retrying");
            let (tx, _) = versions::begin_with_base(state.db.pool(), workspace_id).await?;
            write_pending(tx, &before_version).await?
        }
    };
    let applied = started.elapsed();
    if let Some(replaced) = &outcome.before {
        // The document changed between the prepared state and the restore: store the state the
        // restore actually replaced.
        let row = before_restore_row(replaced, workspace_id, &name, user_id);
        pending.replace_state(&row).await?;
    }
    let who = client.actor(&user);
    let summary = outcome.summary;
    let before_restore = pending
        .commit_audited(|stored| {
            who.entry(
                access.org_id,
                "workspace.version_restored",
                "workspace",
                workspace_id,
                Some(json!({
                    "version_id": version_id,
                    "before_restore_version_id": stored.id,
                    "changes": summary,
                })),
            )
        })
        .await?;
    // The restore is done: a retention that fails now is retried by the next version stored.
    if let Err(err) = versions::prune_for_plan(state.db.pool(), workspace_id).await {
        tracing::warn!(%workspace_id, error = %err, "retention not applied");
    }
    tracing::info!(
        %workspace_id,
        %version_id,
        changes = ?outcome.summary,
        compared = ?outcome.compared,
        before_retaken = outcome.before.is_some(),
        before_stored_against = ?before_restore.base_version_id,
        before_bytes = before_restore.size_bytes,
        state_taken_ms = state_taken.as_millis(),
        version_read_ms = version_read.as_millis(),
        applied_ms = applied.as_millis(),
        total_ms = started.elapsed().as_millis(),
        "version restored"
    );
    Ok(Json(RestoreView {
        restored: restored.into(),
        before_restore: before_restore.into(),
        changes: outcome.summary,
    }))
}

/// The `before_restore` row of the state a restore replaces.
fn before_restore_row<'a>(
    replaced: &'a VersionState,
    workspace_id: Uuid,
    name: &'a str,
    user_id: Uuid,
) -> NewVersion<'a> {
    replaced.to_new_version(
        workspace_id,
        VersionKind::BeforeRestore,
        name,
        None,
        Some(user_id),
    )
}

/// Writes the state a restore is about to replace as its `before_restore` version, in `tx`, left
/// open (committed with the restore's audit row once the restore is durable).
async fn write_pending(
    tx: versions::VersionTx,
    version: &NewVersion<'_>,
) -> ApiResult<versions::PendingVersion> {
    versions::insert_pending(tx, version)
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))
}

fn parse_against(against: Option<&str>) -> ApiResult<DiffTarget> {
    match against {
        None | Some("") | Some("current") => Ok(DiffTarget::Current),
        Some(text) => Uuid::parse_str(text).map(DiffTarget::Version).map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                "against",
                "must be `current` or a version id",
            )])
        }),
    }
}

async fn find_version(
    state: &AppState,
    workspace_id: Uuid,
    version_id: Uuid,
) -> ApiResult<VersionMeta> {
    versions::find(state.db.pool(), workspace_id, version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("version"))
}

async fn version_canvas(
    state: &AppState,
    workspace_id: Uuid,
    version_id: Uuid,
) -> ApiResult<CanvasState> {
    // The read version may come from the cache: the version must still exist.
    find_version(state, workspace_id, version_id).await?;
    let version = read_version(state, workspace_id, version_id).await?;
    tokio::task::spawn_blocking(move || match version {
        VersionSource::Stored(stored) => stored.canvas(),
        VersionSource::Document(doc) => canvas::read_canvas(&doc.transact()),
    })
    .await
    .map_err(ApiError::internal)
}

/// A stored version, read for a look or a restore: its stored update parsed (`StoredVersion`,
/// ~3× cheaper than decoding it, and half the memory to keep) or, for states holding content that
/// reader leaves to yrs, decoded into a document; from the recently read versions when there,
/// and kept there for a while. Callers check the version exists.
async fn read_version(
    state: &AppState,
    workspace_id: Uuid,
    version_id: Uuid,
) -> ApiResult<VersionSource> {
    if let Some(version) = state.recent_versions.get(workspace_id, version_id) {
        return Ok(version);
    }
    let started = std::time::Instant::now();
    let stored = versions::state(state.db.pool(), workspace_id, version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("version"))?;
    let fetched = started.elapsed();
    let state_len = stored.state.len() + stored.base.as_ref().map_or(0, Vec::len);
    let version = tokio::task::spawn_blocking(move || parse_or_decode(stored))
        .await
        .map_err(ApiError::internal)?
        .map_err(|detail| {
            tracing::error!(%workspace_id, %version_id, %detail, "stored version does not decode");
            ApiError::internal("stored version is corrupt")
        })?;
    tracing::debug!(
        %workspace_id,
        %version_id,
        state_len,
        fetched_ms = fetched.as_millis(),
        total_ms = started.elapsed().as_millis(),
        "version read"
    );
    state
        .recent_versions
        .insert(workspace_id, version_id, version.clone(), state_len);
    Ok(version)
}

/// A stored state (with its base's) parsed, or (when the parser leaves it to yrs) decoded into a
/// new document.
fn parse_or_decode(stored: versions::StoredState) -> Result<VersionSource, String> {
    let parsed = match &stored.base {
        Some(base) => StoredVersion::parse_with_base(base, &stored.state),
        // Kept for the fallback (a copy costs ~1 ms for 5 MB; the parse keeps its own).
        None => StoredVersion::parse(stored.state.clone()),
    };
    match parsed {
        Ok(parsed) => Ok(VersionSource::Stored(Arc::new(parsed))),
        Err(why) => {
            tracing::debug!(%why, "the version is decoded into a document");
            let doc = canvas::new_canvas_doc();
            for bytes in stored.base.iter().chain([&stored.state]) {
                let update = Update::decode_v1(bytes).map_err(|e| e.to_string())?;
                doc.transact_mut()
                    .apply_update(update)
                    .map_err(|e| e.to_string())?;
            }
            Ok(VersionSource::Document(Arc::new(doc)))
        }
    }
}

async fn current_canvas(state: &AppState, workspace_id: Uuid) -> ApiResult<CanvasState> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::Canvas { reply })
        .await
        .map_err(room_unavailable)
}

/// The room's durable state: the changes since `base` when worth it, else the full state.
async fn take_state(
    state: &AppState,
    workspace_id: Uuid,
    base: Option<versions::DeltaBase>,
) -> ApiResult<VersionState> {
    state
        .rooms
        .request(workspace_id, |reply| HttpRequest::TakeVersion {
            base: base.clone(),
            reply,
        })
        .await
        .map_err(room_unavailable)
}

fn room_unavailable(err: JoinError) -> ApiError {
    tracing::warn!(error = %err, "workspace room unavailable");
    ApiError::service_unavailable("the workspace is not available right now; retry")
}
