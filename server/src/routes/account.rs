//! Account security flows: email verification, password reset (both by single-use mailed
//! tokens) and TOTP MFA management.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use nox_persistence::iam::security::{self, purpose};
use nox_persistence::iam::users::{self, User};
use nox_persistence::iam::{mfa, sessions};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{AuthUser, Scope};
use crate::auth::{password, tokens, totp};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Json;
use crate::http_caller::ClientInfo;
use crate::mailer::Mail;
use crate::routes::auth::{check_second_factor, ip_key};
use crate::routes::me::UserView;
use crate::routes::security_events::{self as events, action, SecurityEvent};
use crate::state::AppState;
use crate::validate::Validator;

/// How long an email-verification link works.
const VERIFY_TTL_HOURS: i64 = 24;
/// How long a password-reset link works: short, it grants the account.
const RESET_TTL_MINUTES: i64 = 60;
/// Backup codes handed out when MFA is confirmed.
const BACKUP_CODES: usize = 10;
/// The issuer shown in authenticator apps.
const TOTP_ISSUER: &str = "Nox Sync";

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetConfirm {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MfaDisableRequest {
    pub password: String,
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaEnrollment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    /// `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaEnabled {
    pub mfa_enabled: bool,
    /// Shown once; each works once instead of a TOTP code.
    pub backup_codes: Vec<String>,
}

/// Creates a token for `user` and mails it. The body is the only place the token exists in clear.
async fn send_account_token(
    state: &AppState,
    user: &User,
    token_purpose: &'static str,
    ttl: Duration,
    subject: &str,
    intro: &str,
) -> ApiResult<()> {
    let token = tokens::random_token();
    security::create_account_token(
        state.db.pool(),
        user.id,
        token_purpose,
        &tokens::hash_token(&token),
        Utc::now() + ttl,
    )
    .await?;
    let body = format!(
        "{intro}\n\nThis token expires in {} minutes and works once.\n\nToken: {token}\n",
        ttl.num_minutes()
    );
    state
        .mailer
        .send(&Mail {
            to: user.email.clone(),
            kind: token_purpose,
            subject: subject.to_string(),
            body,
        })
        .await
}

/// Mails a verification token to a new or unverified user.
pub(crate) async fn send_verification_mail(state: &AppState, user: &User) -> ApiResult<()> {
    send_account_token(
        state,
        user,
        purpose::VERIFY_EMAIL,
        Duration::hours(VERIFY_TTL_HOURS),
        "Verify your email address",
        "Confirm your email address for Nox Sync with POST /api/v1/auth/verify-email.",
    )
    .await
}

/// `POST /auth/verify-email/request`: mails a fresh verification token to the caller.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/request", tag = "auth",
    responses((status = 202, body = Accepted), (status = 401, body = ErrorBody),
        (status = 409, description = "already_verified", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn request_verification(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    user.session()?;
    let me = users::find_live(state.db.pool(), user.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    if me.is_email_verified {
        return Err(ApiError::conflict(
            "already_verified",
            "the email address is already verified",
        ));
    }
    send_verification_mail(&state, &me).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "sent" })))
}

/// `POST /auth/verify-email`: redeems a verification token.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, body = UserView),
        (status = 400, description = "invalid_token (unknown, expired or used)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    Json(body): Json<TokenRequest>,
) -> ApiResult<Json<UserView>> {
    non_empty("token", &body.token)?;
    let user_id =
        security::consume_account_token(state.db.pool(), purpose::VERIFY_EMAIL, &hash(&body.token))
            .await?
            .ok_or_else(invalid_token)?;
    users::mark_email_verified(state.db.pool(), user_id).await?;
    users::find_live(state.db.pool(), user_id)
        .await?
        .map(|u| Json(u.into()))
        .ok_or_else(invalid_token)
}

/// `POST /auth/password-reset/request`: always 202, whether or not the email has an account, so
/// the endpoint cannot be used to find accounts. The lookup and mail happen in the background so
/// the response time does not tell either.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/request", tag = "auth",
    request_body = ResetRequest,
    responses((status = 202, description = "always, whether or not the account exists",
            body = Accepted),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<ResetRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    Validator::new().email("email", &body.email).finish()?;
    state
        .rate_limits
        .register_ip
        .check(&format!("reset:{}", ip_key(&client)))?;
    let email = body.email.trim().to_string();
    let task_state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = mail_reset_token(&task_state, &email).await {
            tracing::warn!(error = %err, "could not send a password-reset mail");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "accepted" })))
}

async fn mail_reset_token(state: &AppState, email: &str) -> ApiResult<()> {
    let Some(user) = users::find_live_by_email(state.db.pool(), email).await? else {
        return Ok(());
    };
    send_account_token(
        state,
        &user,
        purpose::PASSWORD_RESET,
        Duration::minutes(RESET_TTL_MINUTES),
        "Reset your password",
        "Someone asked to reset your Nox Sync password. If it was you, set a new one with \
         POST /api/v1/auth/password-reset; otherwise ignore this mail.",
    )
    .await
}

/// `POST /auth/password-reset`: sets a new password with a reset token and signs out every
/// session (whoever had the old password is out).
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth",
    request_body = ResetConfirm,
    responses((status = 204, description = "password set; every session signed out"),
        (status = 400, description = "invalid_token", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(body): Json<ResetConfirm>,
) -> ApiResult<StatusCode> {
    Validator::new()
        .check(!body.token.trim().is_empty(), "token", "must not be empty")
        .password("new_password", &body.new_password)
        .finish()?;
    let user_id = security::consume_account_token(
        state.db.pool(),
        purpose::PASSWORD_RESET,
        &hash(&body.token),
    )
    .await?
    .ok_or_else(invalid_token)?;
    let new_hash = password::hash(body.new_password).await?;
    security::set_password(state.db.pool(), user_id, &new_hash).await?;
    let revoked = sessions::revoke_all(
        state.db.pool(),
        user_id,
        None,
        sessions::reason::PASSWORD_RESET,
    )
    .await?;
    state.live.recheck(Scope::User(user_id));
    events::record(
        &state,
        &client,
        SecurityEvent::new(user_id, action::PASSWORD_RESET)
            .target("user", user_id)
            .metadata(serde_json::json!({ "sessions_revoked": revoked.len() })),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /me/mfa/enroll`: a new TOTP secret, not active until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/me/mfa/enroll", tag = "mfa",
    responses((status = 200, body = MfaEnrollment), (status = 401, body = ErrorBody),
        (status = 409, description = "mfa_already_enabled", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn mfa_enroll(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<MfaEnrollment>> {
    user.session()?;
    let me = users::find_live(state.db.pool(), user.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    let secret = totp::generate_secret();
    if !mfa::set_pending_secret(state.db.pool(), me.id, &secret).await? {
        return Err(mfa_already_enabled());
    }
    Ok(Json(MfaEnrollment {
        otpauth_uri: totp::otpauth_uri(TOTP_ISSUER, &me.email, &secret),
        secret,
    }))
}

/// `POST /me/mfa/confirm`: proves the authenticator works, turns MFA on, and hands out backup
/// codes (once).
#[utoipa::path(post, path = "/api/v1/me/mfa/confirm", tag = "mfa",
    request_body = CodeRequest,
    responses((status = 200, body = MfaEnabled), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn mfa_confirm(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<CodeRequest>,
) -> ApiResult<Json<MfaEnabled>> {
    user.session()?;
    non_empty("code", &body.code)?;
    let sec = security::get(state.db.pool(), user.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    if sec.mfa_enabled {
        return Err(mfa_already_enabled());
    }
    let secret = sec
        .mfa_secret
        .ok_or_else(|| ApiError::conflict("mfa_not_enrolled", "call POST /me/mfa/enroll first"))?;
    let now = Utc::now().timestamp().max(0) as u64;
    let Some(step) = totp::matching_step(&secret, &body.code, now) else {
        return Err(field_error("code", "is not a valid code"));
    };
    // The confirming code is used up like a login code: it cannot then log in a second time.
    if !mfa::accept_totp_step(state.db.pool(), user.user_id, step).await? {
        return Err(field_error(
            "code",
            "was already used; wait for the next code",
        ));
    }
    let codes: Vec<String> = (0..BACKUP_CODES).map(|_| new_backup_code()).collect();
    let hashes: Vec<String> = codes.iter().map(|c| backup_code_hash(c)).collect();
    mfa::enable(state.db.pool(), user.user_id, &hashes).await?;
    events::record(
        &state,
        &client,
        SecurityEvent::new(user.user_id, action::MFA_ENABLED).target("user", user.user_id),
    )
    .await;
    Ok(Json(MfaEnabled {
        mfa_enabled: true,
        backup_codes: codes,
    }))
}

/// `POST /me/mfa/disable`: needs both the password and a current code (or backup code).
#[utoipa::path(post, path = "/api/v1/me/mfa/disable", tag = "mfa",
    request_body = MfaDisableRequest,
    responses((status = 204, description = "disabled"), (status = 401, body = ErrorBody),
        (status = 409, description = "mfa_not_enabled", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn mfa_disable(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<MfaDisableRequest>,
) -> ApiResult<StatusCode> {
    user.session()?;
    Validator::new()
        .check(!body.password.is_empty(), "password", "must not be empty")
        .check(!body.code.trim().is_empty(), "code", "must not be empty")
        .finish()?;
    let sec = security::get(state.db.pool(), user.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    if !sec.mfa_enabled {
        return Err(ApiError::conflict("mfa_not_enabled", "MFA is not enabled"));
    }
    let stored = sec.password_hash.unwrap_or_default();
    if !password::verify(body.password, stored).await? {
        return Err(field_error("password", "is incorrect"));
    }
    if !check_second_factor(&state, user.user_id, &body.code).await? {
        return Err(field_error("code", "is not a valid code"));
    }
    mfa::disable(state.db.pool(), user.user_id).await?;
    events::record(
        &state,
        &client,
        SecurityEvent::new(user.user_id, action::MFA_DISABLED).target("user", user.user_id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A backup code: 10 base32 characters (50 bits) shown as `xxxxx-xxxxx`.
fn new_backup_code() -> String {
    let mut bytes = [0u8; 7];
    rand::thread_rng().fill_bytes(&mut bytes);
    let text = totp::base32_encode(&bytes).to_lowercase();
    format!("{}-{}", &text[..5], &text[5..10])
}

/// How backup codes are stored: SHA-256 of the code without dashes, spaces or case, so users may
/// type it either way. The codes are random, so no salt is needed.
pub(crate) fn backup_code_hash(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    tokens::hash_token(&normalized)
}

fn hash(token: &str) -> String {
    tokens::hash_token(token.trim())
}

fn non_empty(field: &str, value: &str) -> ApiResult<()> {
    Validator::new()
        .check(!value.trim().is_empty(), field, "must not be empty")
        .finish()
}

fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

fn invalid_token() -> ApiError {
    ApiError::bad_request(
        "invalid_token",
        "the token is invalid, expired or already used",
    )
}

fn mfa_already_enabled() -> ApiError {
    ApiError::conflict(
        "mfa_already_enabled",
        "MFA is already enabled; disable it first",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_codes_hash_the_same_however_typed() {
        let code = new_backup_code();
        assert_eq!(code.len(), 11);
        assert_eq!(
            backup_code_hash(&code),
            backup_code_hash(&code.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            backup_code_hash(&code),
            backup_code_hash(&new_backup_code())
        );
    }
}
