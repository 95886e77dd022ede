//! Notes: personal (`PRIVATE`) or `SHARED` notes of a project or a workspace.
//!
//! `POST/GET /projects/{project_id}/notes`, `POST/GET /workspaces/{workspace_id}/notes`,
//! `GET/PATCH/DELETE /notes/{note_id}`.
//!
//! Reading needs `workspace:read`, writing `workspace:write`. A `PRIVATE` note exists only for
//! its author: anyone else gets 404, exactly as for a missing note. A `SHARED` note can be edited
//! by any member with `workspace:write`; deleting it, or changing its visibility, is for its
//! author (or `project:manage`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::collab::notes::{self, NewNote, Note, NotePatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::validate::Validator;

pub const VISIBILITIES: [&str; 2] = ["PRIVATE", "SHARED"];
const MAX_TITLE_CHARS: usize = 255;
const MAX_CONTENT_CHARS: usize = 100_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    /// `PROJECT` or `WORKSPACE`.
    pub owner_type: String,
    pub owner_id: Uuid,
    pub title: Option<String>,
    pub content: Option<String>,
    /// `PRIVATE` (its author only) or `SHARED`.
    pub visibility: String,
    pub created_by_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Note> for NoteView {
    fn from(n: Note) -> Self {
        NoteView {
            id: n.id,
            owner_type: n.owner_type,
            owner_id: n.owner_id,
            title: n.title,
            content: n.content,
            visibility: n.visibility,
            created_by_id: n.created_by_id,
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub title: Option<String>,
    pub content: Option<String>,
    /// `PRIVATE` (the default on create) or `SHARED`.
    pub visibility: Option<String>,
}

fn validate(body: &NoteRequest) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(title) = &body.title {
        v.check(
            title.chars().count() <= MAX_TITLE_CHARS,
            "title",
            "must be at most 255 characters",
        );
    }
    if let Some(content) = &body.content {
        v.check(
            content.chars().count() <= MAX_CONTENT_CHARS,
            "content",
            "must be at most 100000 characters",
        );
    }
    if let Some(vis) = &body.visibility {
        v.check(
            VISIBILITIES.contains(&vis.as_str()),
            "visibility",
            "must be one of PRIVATE, SHARED",
        );
    }
    v.finish()
}

/// Who owns new notes, and in which organization, when the caller holds `needed` there.
async fn owner(
    state: &AppState,
    user: AuthUser,
    owner_type: &'static str,
    owner_id: Uuid,
    needed: Permission,
) -> ApiResult<(Uuid, Vec<String>)> {
    if owner_type == "WORKSPACE" {
        let grant = access::workspace_permission(&state.db, user, owner_id, needed).await?;
        let org_id = grant.org_id();
        return Ok((org_id, grant.permissions));
    }
    let (project, permissions) = access::project(&state.db, user, owner_id).await?;
    access::require(&permissions, needed)?;
    if needed == Permission::WorkspaceWrite && project.status == "ARCHIVED" {
        return Err(access::AccessError::ProjectArchived.into());
    }
    Ok((project.org_id, permissions))
}

async fn create(
    state: AppState,
    user: AuthUser,
    client: ClientInfo,
    owner_type: &'static str,
    owner_id: Uuid,
    body: NoteRequest,
) -> ApiResult<(StatusCode, Json<NoteView>)> {
    let (org_id, _) = owner(
        &state,
        user,
        owner_type,
        owner_id,
        Permission::WorkspaceWrite,
    )
    .await?;
    validate(&body)?;
    let new = NewNote {
        org_id,
        owner_type,
        owner_id,
        title: body.title.as_deref(),
        content: body.content.as_deref(),
        visibility: body.visibility.as_deref().unwrap_or(VISIBILITIES[0]),
    };
    let note = notes::create(state.db.pool(), new, &client.actor(&user)).await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

async fn list(
    state: AppState,
    user: AuthUser,
    owner_type: &'static str,
    owner_id: Uuid,
    params: PageParams,
) -> ApiResult<Json<Page<NoteView>>> {
    owner(
        &state,
        user,
        owner_type,
        owner_id,
        Permission::WorkspaceRead,
    )
    .await?;
    let page = params.resolve()?;
    let rows = notes::list(
        state.db.pool(),
        owner_type,
        owner_id,
        user.user_id,
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(Json(page.page(
        rows,
        |n| (n.created_at, n.id),
        NoteView::from,
    )))
}

/// Creates a note on a project (`workspace:write`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/notes", tag = "notes",
    params(("project_id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_for_project(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
    Json(body): Json<NoteRequest>,
) -> ApiResult<(StatusCode, Json<NoteView>)> {
    create(state, user, client, "PROJECT", project_id, body).await
}

/// The project's notes the caller may see: shared ones and their own (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/notes", tag = "notes",
    params(("project_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<NoteView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_for_project(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<NoteView>>> {
    list(state, user, "PROJECT", project_id, params).await
}

/// Creates a note on a workspace (`workspace:write`).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/notes", tag = "notes",
    params(("workspace_id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 201, body = NoteView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_for_workspace(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<NoteRequest>,
) -> ApiResult<(StatusCode, Json<NoteView>)> {
    create(state, user, client, "WORKSPACE", workspace_id, body).await
}

/// The workspace's notes the caller may see (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/notes", tag = "notes",
    params(("workspace_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<NoteView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_for_workspace(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<NoteView>>> {
    list(state, user, "WORKSPACE", workspace_id, params).await
}

/// The note, when the caller may see it and holds `needed` where it lives; with the
/// organization and the caller's permissions there.
async fn visible_note(
    state: &AppState,
    user: AuthUser,
    note_id: Uuid,
    needed: Permission,
) -> ApiResult<(Note, Uuid, Vec<String>)> {
    let (note, project_id) = notes::find_visible(state.db.pool(), note_id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("note"))?;
    let owner_type = if note.owner_type == "WORKSPACE" {
        "WORKSPACE"
    } else {
        "PROJECT"
    };
    let owner_id = if owner_type == "WORKSPACE" {
        note.owner_id
    } else {
        project_id
    };
    match owner(state, user, owner_type, owner_id, needed).await {
        Ok((org_id, permissions)) => Ok((note, org_id, permissions)),
        Err(err) if err.status == StatusCode::NOT_FOUND => Err(ApiError::not_found("note")),
        Err(err) => Err(err),
    }
}

/// One note (`workspace:read`; a private note only for its author).
#[utoipa::path(get, path = "/api/v1/notes/{note_id}", tag = "notes",
    params(("note_id" = Uuid, Path)),
    responses((status = 200, body = NoteView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(note_id): Path<Uuid>,
) -> ApiResult<Json<NoteView>> {
    let (note, _, _) = visible_note(&state, user, note_id, Permission::WorkspaceRead).await?;
    Ok(Json(note.into()))
}

/// The author, or a holder of `project:manage`.
fn require_author_or_manager(
    user: &AuthUser,
    note: &Note,
    permissions: &[String],
) -> ApiResult<()> {
    if note.created_by_id == Some(user.user_id) {
        return Ok(());
    }
    access::require(permissions, Permission::ProjectManage)?;
    Ok(())
}

/// Edits a note (`workspace:write`; visibility only by its author or `project:manage`).
#[utoipa::path(patch, path = "/api/v1/notes/{note_id}", tag = "notes",
    params(("note_id" = Uuid, Path)), request_body = NoteRequest,
    responses((status = 200, body = NoteView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(note_id): Path<Uuid>,
    Json(body): Json<NoteRequest>,
) -> ApiResult<Json<NoteView>> {
    let (note, org_id, permissions) =
        visible_note(&state, user, note_id, Permission::WorkspaceWrite).await?;
    validate(&body)?;
    if body.visibility.is_some() {
        require_author_or_manager(&user, &note, &permissions)?;
    }
    let patch = NotePatch {
        title: body.title.as_deref(),
        content: body.content.as_deref(),
        visibility: body.visibility.as_deref(),
    };
    let note = notes::update(
        state.db.pool(),
        org_id,
        note_id,
        patch,
        &client.actor(&user),
    )
    .await?;
    Ok(Json(note.into()))
}

/// Deletes a note (`workspace:write`; its author or `project:manage`).
#[utoipa::path(delete, path = "/api/v1/notes/{note_id}", tag = "notes",
    params(("note_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(note_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let (note, org_id, permissions) =
        visible_note(&state, user, note_id, Permission::WorkspaceWrite).await?;
    require_author_or_manager(&user, &note, &permissions)?;
    notes::soft_delete(state.db.pool(), org_id, note_id, &client.actor(&user)).await?;
    Ok(StatusCode::NO_CONTENT)
}
