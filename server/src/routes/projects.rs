//! Projects: `POST/GET /orgs/{org_id}/projects`, `GET/PATCH/DELETE /projects/{project_id}`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::orgs::IamError;
use nox_persistence::iam::projects::{self, NewProject, Project, ProjectPatch};
use nox_persistence::iam::workspaces;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, AuthUser, Scope};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{conflict_on_unique, ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::validate::Validator;

pub const VISIBILITIES: [&str; 3] = ["PRIVATE", "INTERNAL", "PUBLIC"];
pub const STATUSES: [&str; 2] = ["ACTIVE", "ARCHIVED"];

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `PRIVATE`, `INTERNAL` or `PUBLIC`.
    pub visibility: String,
    /// `ACTIVE` or `ARCHIVED`.
    pub status: String,
    pub created_by_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectView {
    fn from(p: Project) -> Self {
        ProjectView {
            id: p.id,
            org_id: p.org_id,
            name: p.name,
            slug: p.slug,
            description: p.description,
            visibility: p.visibility,
            status: p.status,
            created_by_id: p.created_by_id,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProjectRequest {
    pub name: String,
    /// Unique among the organization's live projects.
    pub slug: String,
    pub description: Option<String>,
    /// `PRIVATE` (the default), `INTERNAL` or `PUBLIC`.
    pub visibility: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProjectRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// An empty string clears the description.
    pub description: Option<String>,
    pub visibility: Option<String>,
    pub status: Option<String>,
}

fn slug_taken(err: IamError) -> ApiError {
    conflict_on_unique(err, "slug_taken", "a project with this slug exists")
}

/// Creates a project (`project:manage`) within the plan's `max_projects`.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/projects", tag = "projects",
    params(("org_id" = Uuid, Path)), request_body = CreateProjectRequest,
    responses((status = 201, body = ProjectView),
        (status = 402, description = "quota_exceeded", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<CreateProjectRequest>,
) -> ApiResult<(StatusCode, Json<ProjectView>)> {
    let member = access::org_member(&state.db, user, org_id).await?;
    access::require(&member.permissions, Permission::ProjectManage)?;
    let mut v = Validator::new();
    v.text("name", &body.name, 255).slug("slug", &body.slug);
    if let Some(d) = &body.description {
        v.check(
            d.chars().count() <= 10_000,
            "description",
            "must be at most 10000 characters",
        );
    }
    check_visibility(&mut v, body.visibility.as_deref());
    v.finish()?;
    let new = NewProject {
        org_id,
        name: body.name.trim(),
        slug: &body.slug,
        description: body.description.as_deref(),
        visibility: body.visibility.as_deref().unwrap_or(VISIBILITIES[0]),
    };
    let project = projects::create(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(slug_taken)?;
    tracing::info!(project_id = %project.id, %org_id, "project created");
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// The organization's live projects, oldest first (any member).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/projects", tag = "projects",
    params(("org_id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<ProjectView>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<ProjectView>>> {
    access::org_member(&state.db, user, org_id).await?;
    let page = params.resolve()?;
    let rows = projects::list_for_org(state.db.pool(), org_id, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |p| (p.created_at, p.id),
        ProjectView::from,
    )))
}

/// One live project (any member of its organization).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = Uuid, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(project_id): Path<Uuid>,
) -> ApiResult<Json<ProjectView>> {
    let (project, _) = access::project(&state.db, user, project_id).await?;
    Ok(Json(project.into()))
}

/// A given visibility must be one of [`VISIBILITIES`], exactly as stored.
fn check_visibility(v: &mut Validator, visibility: Option<&str>) {
    if let Some(vis) = visibility {
        v.check(
            VISIBILITIES.contains(&vis),
            "visibility",
            "must be one of PRIVATE, INTERNAL, PUBLIC",
        );
    }
}

fn validate_patch(body: &UpdateProjectRequest) -> ApiResult<()> {
    let mut v = Validator::new();
    if let Some(name) = &body.name {
        v.text("name", name, 255);
    }
    if let Some(slug) = &body.slug {
        v.slug("slug", slug);
    }
    if let Some(d) = &body.description {
        v.check(
            d.chars().count() <= 10_000,
            "description",
            "must be at most 10000 characters",
        );
    }
    check_visibility(&mut v, body.visibility.as_deref());
    if let Some(status) = &body.status {
        v.check(
            STATUSES.contains(&status.as_str()),
            "status",
            "must be one of ACTIVE, ARCHIVED",
        );
    }
    v.finish()
}

/// Changes a project (`project:manage`).
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = Uuid, Path)), request_body = UpdateProjectRequest,
    responses((status = 200, body = ProjectView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
    Json(body): Json<UpdateProjectRequest>,
) -> ApiResult<Json<ProjectView>> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::ProjectManage)?;
    validate_patch(&body)?;
    let patch = ProjectPatch {
        name: body.name.as_deref().map(str::trim),
        slug: body.slug.as_deref(),
        description: body.description.as_deref(),
        visibility: body.visibility.as_deref(),
        status: body.status.as_deref(),
    };
    let updated = projects::update(
        state.db.pool(),
        project.org_id,
        project.id,
        patch,
        &client.actor(&user),
    )
    .await
    .map_err(slug_taken)?;
    if body.status.is_some() {
        // Archiving makes the project's open editors read-only (and un-archiving writable) now.
        let ids = workspaces::ids_of_project(state.db.pool(), project.id).await?;
        state.live.recheck(Scope::Workspaces(ids));
    }
    Ok(Json(updated.into()))
}

/// Soft-deletes a project and its workspaces (`project:manage`).
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(project_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let (project, permissions) = access::project(&state.db, user, project_id).await?;
    access::require(&permissions, Permission::ProjectManage)?;
    let workspaces = projects::soft_delete(
        state.db.pool(),
        project.org_id,
        project.id,
        &client.actor(&user),
    )
    .await?;
    state.live.recheck(Scope::Workspaces(workspaces.clone()));
    tracing::info!(%project_id, workspaces = workspaces.len(), "project deleted");
    Ok(StatusCode::NO_CONTENT)
}
