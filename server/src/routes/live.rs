//! What is happening in a workspace right now: who is connected, which locks are held, and which
//! entities the projection could not write as they are.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use nox_persistence::iam::audit::{self, NewAuditEntry};
use nox_persistence::iam::users;
use nox_persistence::locks;
use nox_persistence::projection_store;
use nox_sync_protocol::locks::LockView;
use serde_json::json;
use uuid::Uuid;

use super::canvas::authorize;
use super::canvas::list_page::{IdPage, ListParams};
use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::http_forward::room_unavailable;
use crate::pagination::Page;
use crate::rooms::lock_view;
use crate::rooms::HttpRequest;
use crate::state::AppState;

/// `GET /workspaces/{id}/presence`: the users connected, from the server's own knowledge of each
/// socket (never from client-asserted awareness). A workspace nobody has open is not loaded for
/// this: its presence is empty.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/presence", tag = "live",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 200, description = "`{\"items\": [{user_id, full_name, avatar_url, connections, since}], \"next_cursor\": null}` (one page: everyone connected)"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn presence(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let entries = match state.rooms.loaded_handle(workspace_id) {
        None => Vec::new(),
        Some(_) => state
            .rooms
            .request(workspace_id, |reply| HttpRequest::Presence { reply })
            .await
            .map_err(room_unavailable)?,
    };
    let mut list = Vec::with_capacity(entries.len());
    for entry in entries {
        let profile = users::find_live(state.db.pool(), entry.user_id).await?;
        list.push(json!({
            "user_id": entry.user_id,
            "full_name": profile.as_ref().and_then(|u| u.full_name.clone()).or(entry.user_name),
            "avatar_url": profile.as_ref().and_then(|u| u.avatar_url.clone()),
            "connections": entry.connections,
            "since": entry.since,
        }));
    }
    Ok(Json(Page::whole(list)))
}

/// A live edit lock as `GET /locks` shows it (documentation schema of `LockView`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LockDoc {
    pub id: Uuid,
    /// `BLOCK` or `RELATION`.
    pub resource_type: String,
    pub resource_id: Uuid,
    pub user_id: Uuid,
    pub user_name: Option<String>,
    /// Milliseconds since the epoch.
    pub acquired_at: i64,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// `GET /workspaces/{id}/locks`: live locks (from the room when loaded, else from the rows),
/// ordered by lock id, in pages.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/locks", tag = "live",
    params(("workspace_id" = Uuid, Path), ListParams),
    responses((status = 200, body = Page<LockDoc>),
        (status = 404, body = ErrorBody),
        (status = 422, description = "bad `limit` or `cursor`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_locks(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<LockView>>> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let page = IdPage::resolve(params.limit, params.cursor.as_deref())?;
    let locks: Vec<LockView> = match state.rooms.loaded_handle(workspace_id) {
        Some(_) => state
            .rooms
            .request(workspace_id, |reply| HttpRequest::Locks { reply })
            .await
            .map_err(room_unavailable)?,
        None => locks::live_for_workspace(state.db.pool(), workspace_id)
            .await?
            .iter()
            .filter_map(lock_view)
            .collect(),
    };
    let mut by_id: Vec<(String, LockView)> =
        locks.into_iter().map(|l| (l.id.to_string(), l)).collect();
    by_id.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Json(page.page(by_id)))
}

/// `DELETE /workspaces/{id}/locks/{lock_id}`: breaks a lock (needs `locks:override`); every peer
/// is told, as when a lock is broken over the WebSocket.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/locks/{lock_id}", tag = "live",
    params(("workspace_id" = Uuid, Path), ("lock_id" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "needs locks:override", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn break_lock(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((workspace_id, lock_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let grant =
        access::workspace_permission(&state.db, user, workspace_id, Permission::LocksOverride)
            .await?;
    let by = user.user_id;
    let broken = state
        .rooms
        .request(workspace_id, |reply| HttpRequest::BreakLock {
            lock_id,
            by,
            reply,
        })
        .await
        .map_err(room_unavailable)?;
    let lock = broken.ok_or_else(|| ApiError::not_found("lock"))?;
    tracing::info!(%workspace_id, %lock_id, holder = %lock.user_id, by = %by, "lock broken over HTTP");
    audit::record(
        state.db.pool(),
        NewAuditEntry {
            org_id: grant.org_id(),
            actor_id: by,
            action: "lock.broken",
            target_type: Some("edit_lock"),
            target_id: Some(lock_id),
            metadata: Some(json!({
                "workspace_id": workspace_id,
                "resource_type": lock.resource_type,
                "resource_id": lock.resource_id,
                "holder": lock.user_id,
            })),
            ip_address: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /workspaces/{id}/projection`: the entities the last compaction could not project as they
/// are, and why (DESIGN §4).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/projection", tag = "live",
    params(("workspace_id" = Uuid, Path)),
    responses((status = 200, description = "`{projected_at, conflict_count, conflicts: [{entity, id, kind, detail}]}`"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn projection_status(
    State(state): State<AppState>,
    user: AuthUser,
    Path(workspace_id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    authorize(&state, &user, workspace_id, Permission::WorkspaceRead).await?;
    let status = projection_store::status(state.db.pool(), workspace_id).await?;
    Ok(Json(match status {
        Some(s) => json!({
            "projected_at": s.projected_at,
            "conflict_count": s.conflict_count,
            "conflicts": s.conflicts,
        }),
        None => json!({ "projected_at": null, "conflict_count": 0, "conflicts": [] }),
    }))
}
