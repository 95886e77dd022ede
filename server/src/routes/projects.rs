//! `POST /orgs/{org_id}/projects`, `GET /orgs/{org_id}/projects`.

use axum::extract::State;
use axum::http::StatusCode;
use nox_persistence::iam::projects::{self, NewProject, Project};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{AuthUser, Permission};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::routes::{require_org_member, require_permission};
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize)]
pub struct CreateProjectRequest {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Json(body): Json<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let member = require_org_member(&state, user, org_id).await?;
    require_permission(&member.permissions, Permission::ProjectManage)?;
    Validator::new()
        .text("name", &body.name, 255)
        .slug("slug", &body.slug)
        .finish()?;
    let project = projects::create(
        state.db.pool(),
        NewProject {
            org_id,
            name: body.name.trim(),
            slug: &body.slug,
            description: body.description.as_deref(),
            created_by: user.user_id,
        },
    )
    .await
    .map_err(|e| match e.unique_violation() {
        Some(_) => ApiError::conflict("slug_taken", "a project with this slug exists"),
        None => e.into(),
    })?;
    tracing::info!(project_id = %project.id, %org_id, "project created");
    Ok((StatusCode::CREATED, Json(project)))
}

pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
) -> ApiResult<Json<Vec<Project>>> {
    require_org_member(&state, user, org_id).await?;
    Ok(Json(projects::list_for_org(state.db.pool(), org_id).await?))
}
