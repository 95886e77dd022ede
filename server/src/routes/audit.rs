//! `GET /orgs/{org_id}/audit-logs`: the organization's audit trail, newest first (`audit:read`).

use axum::extract::State;
use chrono::{DateTime, Utc};
use nox_persistence::iam::audit::{self, AuditFilter, AuditLog};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{self, AuthUser};
use crate::auth::Permission;
use crate::error::ApiResult;
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};
use crate::pagination::{page_request, Page};
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub actor_id: Uuid,
    /// Dotted verb: `member.removed`, `project.created`, `invitation.accepted`, ...
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<AuditLog> for AuditLogView {
    fn from(a: AuditLog) -> Self {
        AuditLogView {
            id: a.id,
            org_id: a.org_id,
            actor_id: a.actor_id,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            metadata: a.metadata,
            ip_address: a.ip_address,
            user_agent: a.user_agent,
            created_at: a.created_at,
        }
    }
}

/// Filters (combined with AND) and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    /// Entries at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Entries before this instant (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The audit log, newest first, filtered (`audit:read`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit-logs", tag = "audit",
    params(("org_id" = Uuid, Path), AuditQuery),
    responses((status = 200, body = Page<AuditLogView>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Query(query): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditLogView>>> {
    access::org_permission(&state.db, user, org_id, Permission::AuditRead).await?;
    let page = page_request(query.limit, query.cursor.as_deref())?;
    if let (Some(since), Some(until)) = (query.since, query.until) {
        Validator::new()
            .check(since <= until, "since", "must not be after until")
            .finish()?;
    }
    let filter = AuditFilter {
        action: query.action,
        actor_id: query.actor_id,
        target_type: query.target_type,
        target_id: query.target_id,
        since: query.since,
        until: query.until,
    };
    let rows = audit::list(state.db.pool(), org_id, &filter, page.after, page.fetch()).await?;
    Ok(Json(page.page(
        rows,
        |a| (a.created_at, a.id),
        AuditLogView::from,
    )))
}
