//! `POST /auth/register` and `POST /auth/login`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use nox_persistence::iam::users::User;
use nox_persistence::iam::{sessions, users};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{password, tokens};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::ClientInfo;
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// What a successful register or login returns.
#[derive(Debug, Serialize)]
pub struct SessionResponse {
    pub user: User,
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub session_id: Uuid,
}

pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    let mut v = Validator::new();
    v.email("email", &body.email)
        .password("password", &body.password);
    if let Some(name) = &body.full_name {
        v.text("full_name", name, 255);
    }
    v.finish()?;

    let hash = password::hash(body.password).await?;
    let email = body.email.trim();
    let full_name = body.full_name.as_deref().map(str::trim);
    let user = users::create_with_password(state.db.pool(), email, full_name, &hash)
        .await
        .map_err(|e| match e.unique_violation() {
            Some(_) => ApiError::conflict("email_taken", "an account with this email exists"),
            None => e.into(),
        })?;
    tracing::info!(user_id = %user.id, "user registered");
    let session = open_session(&state, user, &client).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<SessionResponse>> {
    let invalid = || ApiError::unauthorized("invalid email or password");
    let record = users::find_login_record(state.db.pool(), body.email.trim()).await?;
    let Some(record) = record else {
        // Spend the same time as a real check so the response does not reveal unknown emails.
        let _ = password::verify(body.password, password::dummy_hash().await?).await;
        return Err(invalid());
    };
    let Some(stored) = record.password_hash.clone() else {
        return Err(invalid());
    };
    if !password::verify(body.password, stored).await? {
        return Err(invalid());
    }
    let user = users::find_live(state.db.pool(), record.id)
        .await?
        .ok_or_else(invalid)?;
    tracing::info!(user_id = %user.id, "user logged in");
    Ok(Json(open_session(&state, user, &client).await?))
}

/// Creates a `user_sessions` row and the token pair that belongs to it.
async fn open_session(
    state: &AppState,
    user: User,
    client: &ClientInfo,
) -> ApiResult<SessionResponse> {
    let refresh_token = tokens::random_token();
    let refresh_hash = tokens::hash_token(&refresh_token);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.config.refresh_token_ttl())
            .map_err(ApiError::internal)?;
    let session_id = sessions::create(
        state.db.pool(),
        sessions::NewSession {
            user_id: user.id,
            refresh_token_hash: &refresh_hash,
            device_type: Some(client.device_type()),
            user_agent: client.user_agent.as_deref(),
            ip_address: client.ip.as_deref(),
            expires_at,
        },
    )
    .await?;
    let access_token = state
        .tokens
        .issue(user.id, session_id)
        .map_err(ApiError::internal)?;
    Ok(SessionResponse {
        user,
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token,
        session_id,
    })
}
