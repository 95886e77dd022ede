//! `POST /projects/{id}/workspaces`, `GET /projects/{id}/workspaces`, `GET /workspaces/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use nox_persistence::iam::projects::{self, Project};
use nox_persistence::iam::workspaces::{self, Workspace};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::routes::{require_org_member, require_permission, require_workspace};
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize)]
pub struct CreateWorkspaceRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub workspace_type: String,
}

/// A live project the caller's organization owns, with the caller's permissions; else 404.
async fn visible_project(
    state: &AppState,
    user: AuthUser,
    project_id: Uuid,
) -> ApiResult<(Project, Vec<String>)> {
    let project = projects::find_live(state.db.pool(), project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let member = require_org_member(state, user, project.org_id)
        .await
        .map_err(|_| ApiError::not_found("project"))?;
    Ok((project, member.permissions))
}

pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
    Json(body): Json<CreateWorkspaceRequest>,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let (project, permissions) = visible_project(&state, user, project_id).await?;
    require_permission(&permissions, Permission::ProjectManage)?;
    Validator::new()
        .text("name", &body.name, 255)
        .text("type", &body.workspace_type, 50)
        .finish()?;
    let workspace = workspaces::create(
        state.db.pool(),
        project.id,
        body.name.trim(),
        body.workspace_type.trim(),
        user.user_id,
    )
    .await?;
    tracing::info!(workspace_id = %workspace.id, %project_id, "workspace created");
    Ok((StatusCode::CREATED, Json(workspace)))
}

pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
) -> ApiResult<Json<Vec<Workspace>>> {
    let (project, permissions) = visible_project(&state, user, project_id).await?;
    require_permission(&permissions, Permission::WorkspaceRead)?;
    Ok(Json(
        workspaces::list_for_project(state.db.pool(), project.id).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<Json<Workspace>> {
    let (_, permissions) = require_workspace(&state, user.user_id, workspace_id).await?;
    require_permission(&permissions, Permission::WorkspaceRead)?;
    workspaces::find_live(state.db.pool(), workspace_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("workspace"))
}
