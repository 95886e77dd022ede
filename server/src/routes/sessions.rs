//! `/me/sessions`: the caller's signed-in devices, and signing one out.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use nox_persistence::iam::sessions::{self, SessionInfo};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{AuthUser, Scope};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::http_caller::ClientInfo;
use crate::routes::security_events::{self as events, action, SecurityEvent};
use crate::state::AppState;

/// A session in the list, flagged when it is the one making the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    /// `desktop`, `mobile` or `api`, from the user agent at login.
    pub device_type: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub last_active_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// True for the session making this request.
    pub current: bool,
}

impl SessionView {
    fn new(s: SessionInfo, current: Uuid) -> Self {
        Self {
            current: s.id == current,
            id: s.id,
            device_type: s.device_type,
            user_agent: s.user_agent,
            ip_address: s.ip_address,
            last_active_at: s.last_active_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

/// `GET /me/sessions`: live sessions, most recently active first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "sessions",
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody),
        (status = 403, description = "session_required (API key)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<SessionList>> {
    let current = user.session()?;
    let items = sessions::list_active(state.db.pool(), user.user_id)
        .await?
        .into_iter()
        .map(|session| SessionView::new(session, current))
        .collect();
    Ok(Json(SessionList { items }))
}

/// `DELETE /me/sessions/{id}`: signs that session out at once. Another user's session is 404,
/// exactly like a missing one.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "sessions",
    params(("session_id" = Uuid, Path)),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(session_id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    user.session()?;
    let revoked = sessions::revoke(
        state.db.pool(),
        session_id,
        user.user_id,
        sessions::reason::USER_REVOKED,
    )
    .await?;
    state.live.recheck(Scope::User(user.user_id));
    if !revoked {
        return Err(ApiError::not_found("session"));
    }
    events::record(
        &state,
        &client,
        SecurityEvent::new(user.user_id, action::SESSION_REVOKED).target("session", session_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
