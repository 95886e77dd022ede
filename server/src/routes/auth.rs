//! Sign-up, login (with the MFA step-up), token refresh and logout.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use nox_persistence::iam::sessions::{self, Rotation};
use nox_persistence::iam::users::{LoginRecord, User};
use nox_persistence::iam::{mfa, security, users};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{AuthUser, Scope};
use crate::auth::{password, tokens, totp};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::http_caller::ClientInfo;
use crate::routes::account;
use crate::routes::me::UserView;
use crate::routes::security_events::{self as events, action, SecurityEvent};
use crate::state::AppState;
use crate::validate::Validator;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaLoginRequest {
    pub mfa_token: String,
    /// A current TOTP code or an unused backup code.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What a successful register, login or refresh returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    pub user: UserView,
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub session_id: Uuid,
}

/// The password was right but the account has MFA: exchange `mfa_token` and a code at
/// `POST /auth/mfa` for a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    pub mfa_token: String,
    /// Seconds until `mfa_token` expires.
    pub expires_in: i64,
}

/// A login answers either with a session or with an MFA challenge.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Session(Box<SessionResponse>),
    Mfa(MfaChallenge),
}

/// The rate-limit key of a client: its IP (or one shared bucket when the IP is unknown).
pub(crate) fn ip_key(client: &ClientInfo) -> &str {
    client.ip.as_deref().unwrap_or("unknown")
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse),
        (status = 409, description = "email_taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After)", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<SessionResponse>)> {
    state.rate_limits.register_ip.check(ip_key(&client))?;
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
    account::send_verification_mail(&state, &user).await?;
    let session = open_session(&state, user, &client).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// A session, or `{mfa_required: true, mfa_token}` for an account with MFA.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 423, description = "account_locked (Retry-After)", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After)", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Validator::new()
        .email("email", &body.email)
        .check(!body.password.is_empty(), "password", "must not be empty")
        .finish()?;
    let email = body.email.trim().to_lowercase();
    state.rate_limits.login_ip.check(ip_key(&client))?;
    state.rate_limits.login_email.check(&email)?;

    let invalid = || ApiError::unauthorized("invalid email or password");
    let Some(record) = users::find_login_record(state.db.pool(), &email).await? else {
        // Spend the same time as a real check so the response does not reveal unknown emails.
        let _ = password::verify(body.password, password::dummy_hash().await?).await;
        return Err(invalid());
    };
    ensure_not_locked(&record)?;
    let Some(stored) = record.password_hash.clone() else {
        return Err(invalid());
    };
    if !password::verify(body.password, stored).await? {
        return Err(login_failed(&state, &client, record.id, action::LOGIN_FAILED).await);
    }
    security::reset_failed_logins(state.db.pool(), record.id).await?;
    let user = users::find_live(state.db.pool(), record.id)
        .await?
        .ok_or_else(invalid)?;
    let mfa_enabled = security::get(state.db.pool(), user.id)
        .await?
        .is_some_and(|s| s.mfa_enabled);
    if mfa_enabled {
        let mfa_token = state
            .tokens
            .issue_mfa(user.id)
            .map_err(ApiError::internal)?;
        return Ok(Json(LoginResponse::Mfa(MfaChallenge {
            mfa_required: true,
            mfa_token,
            expires_in: tokens::MFA_TOKEN_TTL_SECS,
        })));
    }
    tracing::info!(user_id = %user.id, "user logged in");
    let session = open_session(&state, user, &client).await?;
    Ok(Json(LoginResponse::Session(Box::new(session))))
}

/// `POST /auth/mfa`: the second step of a login to an account with MFA.
#[utoipa::path(post, path = "/api/v1/auth/mfa", tag = "auth",
    request_body = MfaLoginRequest,
    responses((status = 200, body = SessionResponse),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 423, description = "account_locked (Retry-After)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn login_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<MfaLoginRequest>,
) -> ApiResult<Json<SessionResponse>> {
    Validator::new()
        .check(
            !body.mfa_token.trim().is_empty(),
            "mfa_token",
            "must not be empty",
        )
        .check(!body.code.trim().is_empty(), "code", "must not be empty")
        .finish()?;
    state.rate_limits.login_ip.check(ip_key(&client))?;
    let invalid_token = || ApiError::unauthorized("invalid, expired or already used MFA token");
    let claims = state
        .tokens
        .verify_mfa(body.mfa_token.trim())
        .ok_or_else(invalid_token)?;
    let user_id = claims.sub;
    let Some(record) = users::find_login_record_by_id(state.db.pool(), user_id).await? else {
        return Err(invalid_token());
    };
    ensure_not_locked(&record)?;
    if mfa::mfa_token_redeemed(state.db.pool(), claims.jti).await? {
        return Err(invalid_token());
    }
    if !check_second_factor(&state, user_id, &body.code).await? {
        return Err(login_failed(&state, &client, user_id, action::MFA_FAILED).await);
    }
    // Redeemed only with a right code, so a typo does not cost the user a new password round;
    // the insert is atomic, so of two requests racing with one token only one gets a session.
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    if !mfa::redeem_mfa_token(state.db.pool(), claims.jti, user_id, expires_at).await? {
        return Err(invalid_token());
    }
    security::reset_failed_logins(state.db.pool(), user_id).await?;
    let user = users::find_live(state.db.pool(), user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    tracing::info!(user_id = %user.id, "user logged in with MFA");
    Ok(Json(open_session(&state, user, &client).await?))
}

/// Whether `code` is a valid, not yet used TOTP code or an unused backup code (either is then
/// used up). False as well when the user has no MFA enabled.
pub(crate) async fn check_second_factor(
    state: &AppState,
    user_id: Uuid,
    code: &str,
) -> ApiResult<bool> {
    let Some(sec) = security::get(state.db.pool(), user_id).await? else {
        return Ok(false);
    };
    let (true, Some(secret)) = (sec.mfa_enabled, sec.mfa_secret) else {
        return Ok(false);
    };
    let now = Utc::now().timestamp().max(0) as u64;
    if let Some(step) = totp::matching_step(&secret, code, now) {
        // A code whose step (or a later one) was already accepted is a replay: refused.
        return Ok(mfa::accept_totp_step(state.db.pool(), user_id, step).await?);
    }
    let hash = account::backup_code_hash(code);
    Ok(mfa::consume_backup_code(state.db.pool(), user_id, &hash).await?)
}

/// 423 `account_locked` with `Retry-After` while the account is locked.
fn ensure_not_locked(record: &LoginRecord) -> ApiResult<()> {
    match record.locked_until {
        Some(until) if until > Utc::now() => Err(locked_error(until)),
        _ => Ok(()),
    }
}

fn locked_error(until: chrono::DateTime<Utc>) -> ApiError {
    let secs = (until - Utc::now()).num_seconds().max(1) as u64;
    let mut err = ApiError::new(
        StatusCode::LOCKED,
        "account_locked",
        "too many failed logins; the account is locked for a while",
    );
    err.retry_after = Some(secs);
    err
}

/// Counts a failed login (wrong password or wrong second factor), audits it, and returns the
/// error to answer: 401, or 423 when this failure locked the account.
async fn login_failed(
    state: &AppState,
    client: &ClientInfo,
    user_id: Uuid,
    what: &'static str,
) -> ApiError {
    let locked = security::record_failed_login(
        state.db.pool(),
        user_id,
        state.config.lockout_threshold.min(i32::MAX as u32) as i32,
        state.config.lockout_secs.min(i64::MAX as u64) as i64,
    )
    .await;
    events::record(
        state,
        client,
        SecurityEvent::new(user_id, what).target("user", user_id),
    )
    .await;
    match locked {
        Ok(Some(until)) => {
            tracing::warn!(%user_id, "account locked after repeated failed logins");
            events::record(
                state,
                client,
                SecurityEvent::new(user_id, action::ACCOUNT_LOCKED)
                    .target("user", user_id)
                    .metadata(serde_json::json!({ "locked_until": until })),
            )
            .await;
            locked_error(until)
        }
        Ok(None) if what == action::MFA_FAILED => ApiError::unauthorized("invalid MFA code"),
        Ok(None) => ApiError::unauthorized("invalid email or password"),
        Err(err) => err.into(),
    }
}

/// `POST /auth/refresh`: a new token pair for a current refresh token. The old refresh token is
/// retired; presenting it again revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = SessionResponse),
        (status = 401, description = "unauthorized, or refresh_token_reused (session revoked)",
            body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<SessionResponse>> {
    Validator::new()
        .check(
            !body.refresh_token.trim().is_empty(),
            "refresh_token",
            "must not be empty",
        )
        .finish()?;
    state.rate_limits.refresh_ip.check(ip_key(&client))?;
    let new_refresh = tokens::random_token();
    let rotation = sessions::rotate(
        state.db.pool(),
        &tokens::hash_token(body.refresh_token.trim()),
        &tokens::hash_token(&new_refresh),
    )
    .await?;
    let (session_id, user_id) = match rotation {
        Rotation::Rotated {
            session_id,
            user_id,
        } => (session_id, user_id),
        Rotation::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(%user_id, %session_id, "rotated refresh token reused; session revoked");
            events::record(
                &state,
                &client,
                SecurityEvent::new(user_id, action::REFRESH_REUSE).target("session", session_id),
            )
            .await;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; the session has been revoked",
            ));
        }
        Rotation::Invalid => {
            return Err(ApiError::unauthorized("invalid or expired refresh token"))
        }
    };
    let user = users::find_live(state.db.pool(), user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    let access_token = state
        .tokens
        .issue(user.id, session_id)
        .map_err(ApiError::internal)?;
    Ok(Json(SessionResponse {
        user: user.into(),
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token: new_refresh,
        session_id,
    }))
}

/// `POST /auth/logout`: ends the caller's session; its access and refresh tokens stop working.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out"), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<StatusCode> {
    let session_id = user.session()?;
    sessions::revoke(
        state.db.pool(),
        session_id,
        user.user_id,
        sessions::reason::LOGOUT,
    )
    .await?;
    state.live.recheck(Scope::User(user.user_id));
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a `user_sessions` row and the token pair that belongs to it.
pub(crate) async fn open_session(
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
        user: user.into(),
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token,
        session_id,
    })
}
