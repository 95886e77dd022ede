//! Workspaces: `POST/GET /projects/{project_id}/workspaces`,
//! `GET/PATCH/DELETE /workspaces/{workspace_id}`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::workspaces::{
    self, Workspace, WorkspacePatch, WorkspaceWriteError, WORKSPACE_TYPES,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AccessError, AuthUser, Scope};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// `CANVAS` or `WHITEBOARD`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub workspace_type: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        WorkspaceView {
            id: w.id,
            project_id: w.project_id,
            org_id: w.org_id,
            name: w.name,
            workspace_type: w.workspace_type,
            created_by: w.created_by,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    pub name: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub workspace_type: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateWorkspaceRequest {
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub workspace_type: Option<String>,
}

/// A workspace type must be one of [`WORKSPACE_TYPES`] (surrounding spaces aside).
fn check_type(v: &mut Validator, workspace_type: &str) {
    v.check(
        WORKSPACE_TYPES.contains(&workspace_type.trim()),
        "type",
        "must be one of CANVAS, WHITEBOARD",
    );
}

/// 409 `project_archived` for a write to a workspace of an archived project.
pub(crate) fn write_refused(err: WorkspaceWriteError) -> ApiError {
    match err {
        WorkspaceWriteError::Iam(e) => e.into(),
        WorkspaceWriteError::ProjectArchived => AccessError::ProjectArchived.into(),
    }
}

/// Creates a workspace (`project:manage`) within the plan's `max_workspaces`.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/workspaces", tag = "workspaces",
    params(("project_id" = Uuid, Path)), request_body = CreateWorkspaceRequest,
    responses((status = 201, body = WorkspaceView),
        (status = 402, description = "quota_exceeded", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "project_archived", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
    Json(body): Json<CreateWorkspaceRequest>,
) -> ApiResult<(StatusCode, Json<WorkspaceView>)> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::ProjectManage)?;
    let mut v = Validator::new();
    v.text("name", &body.name, 255);
    check_type(&mut v, &body.workspace_type);
    v.finish()?;
    let workspace = workspaces::create(
        state.db.pool(),
        project.org_id,
        project.id,
        body.name.trim(),
        body.workspace_type.trim(),
        &client.actor(&user),
    )
    .await
    .map_err(write_refused)?;
    tracing::info!(workspace_id = %workspace.id, %project_id, "workspace created");
    Ok((StatusCode::CREATED, Json(workspace.into())))
}

/// A project's live workspaces, oldest first (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/workspaces", tag = "workspaces",
    params(("project_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<WorkspaceView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<WorkspaceView>>> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::WorkspaceRead)?;
    let page = params.resolve()?;
    let rows =
        workspaces::list_for_project(state.db.pool(), project.id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |w| (w.created_at, w.id),
        WorkspaceView::from,
    )))
}

/// One live workspace (`workspace:read`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 200, body = WorkspaceView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<Json<WorkspaceView>> {
    access::workspace_permission(&state.db, user, workspace_id, Permission::WorkspaceRead).await?;
    workspaces::find_live(state.db.pool(), workspace_id)
        .await?
        .map(|w| Json(w.into()))
        .ok_or_else(|| ApiError::not_found("workspace"))
}

/// Renames or retypes a workspace (`project:manage`).
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = Uuid, Path)), request_body = UpdateWorkspaceRequest,
    responses((status = 200, body = WorkspaceView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "project_archived", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(workspace_id): Path<Uuid>,
    Json(body): Json<UpdateWorkspaceRequest>,
) -> ApiResult<Json<WorkspaceView>> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::ProjectManage)
            .await?;
    let mut v = Validator::new();
    v.check(
        body.name.is_some() || body.workspace_type.is_some(),
        "body",
        "give at least one of name, type",
    );
    if let Some(name) = &body.name {
        v.text("name", name, 255);
    }
    if let Some(t) = &body.workspace_type {
        check_type(&mut v, t);
    }
    v.finish()?;
    let patch = WorkspacePatch {
        name: body.name.as_deref().map(str::trim),
        workspace_type: body.workspace_type.as_deref().map(str::trim),
    };
    let workspace = workspaces::update(
        state.db.pool(),
        grant.org_id(),
        workspace_id,
        patch,
        &client.actor(&user),
    )
    .await
    .map_err(write_refused)?;
    Ok(Json(workspace.into()))
}

/// Soft-deletes a workspace (`project:manage`).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "project_archived", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::ProjectManage)
            .await?;
    workspaces::soft_delete(
        state.db.pool(),
        grant.org_id(),
        workspace_id,
        &client.actor(&user),
    )
    .await
    .map_err(write_refused)?;
    state.live.recheck(Scope::Workspaces(vec![workspace_id]));
    tracing::info!(%workspace_id, "workspace deleted");
    Ok(StatusCode::NO_CONTENT)
}
