//! The [`AuthUser`] extractor: a verified access token whose session is still live.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use nox_persistence::iam::sessions;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl AuthUser {
    /// Verifies a raw access token: signature, expiry, and that its session is not revoked.
    /// The session check makes logout and revocation take effect at once.
    pub async fn from_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
        let claims = state
            .tokens
            .verify(token)
            .ok_or_else(|| ApiError::unauthorized("invalid or expired access token"))?;
        if !sessions::is_active(state.db.pool(), claims.sid, claims.sub).await? {
            return Err(ApiError::unauthorized("session revoked or expired"));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be 'Bearer <token>'")
            })?;
        AuthUser::from_token(state, token).await
    }
}
