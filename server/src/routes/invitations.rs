//! Invitations: `POST/GET /orgs/{org_id}/invitations`,
//! `POST /orgs/{org_id}/invitations/{invitation_id}/resend`,
//! `DELETE /orgs/{org_id}/invitations/{invitation_id}`, `POST /invitations/accept`.
//!
//! The accept token is random (256 bits), mailed once and stored only as its SHA-256; resending
//! replaces it. Sending is rate-limited per inviting user.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use nox_persistence::iam::invitations::{self, Invitation, NewInvitation};
use nox_persistence::iam::orgs;
use nox_persistence::iam::roles::{self, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access::{self, AuthUser};
use crate::auth::tokens::{hash_token, random_token};
use crate::auth::Permission;
use crate::error::ErrorBody;
use crate::error::{conflict_on_unique, ApiError, ApiResult, FieldError};
use crate::extract::{Json, Path, Query};
use crate::http_caller::ClientInfo;
use crate::mailer::Mail;
use crate::pagination::{page_request, Page};
use crate::state::AppState;
use crate::validate::Validator;

/// How long an invitation (and each resent token) stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;

pub const STATUSES: [&str; 4] = ["PENDING", "ACCEPTED", "REVOKED", "EXPIRED"];

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    pub role_name: String,
    pub invited_by_id: Uuid,
    /// `PENDING`, `ACCEPTED`, `REVOKED` or `EXPIRED`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resent_count: i32,
    pub last_sent_at: Option<DateTime<Utc>>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        InvitationView {
            id: i.id,
            org_id: i.org_id,
            email: i.email,
            role_id: i.role_id,
            role_name: i.role_name,
            invited_by_id: i.invited_by_id,
            status: i.status,
            expires_at: i.expires_at,
            created_at: i.created_at,
            accepted_at: i.accepted_at,
            resent_count: i.resent_count,
            last_sent_at: i.last_sent_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateInvitationRequest {
    pub email: String,
    pub role_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AcceptInvitationRequest {
    /// The token from the invitation mail.
    pub token: String,
}

/// `?status=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListInvitationsParams {
    /// `PENDING`, `ACCEPTED`, `REVOKED` or `EXPIRED`.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The role offered by an invitation: it must be the organization's and the caller must hold all
/// of its permissions.
async fn grantable_role(
    state: &AppState,
    org_id: Uuid,
    role_id: Uuid,
    caller: &[String],
) -> ApiResult<Role> {
    let role = roles::find(state.db.pool(), org_id, role_id)
        .await?
        .ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "role_id",
                "no such role in this organization",
            )])
        })?;
    access::require_grantable(caller, &role.permissions)?;
    Ok(role)
}

/// A fresh token and its stored hash and expiry.
fn new_token() -> (String, String, DateTime<Utc>) {
    let token = random_token();
    let hash = hash_token(&token);
    (
        token,
        hash,
        Utc::now() + Duration::days(INVITATION_TTL_DAYS),
    )
}

async fn send_mail(
    state: &AppState,
    org_id: Uuid,
    user: AuthUser,
    invitation: &Invitation,
    token: &str,
) -> ApiResult<()> {
    let org_name = orgs::find_for_member(state.db.pool(), org_id, user.user_id)
        .await?
        .map(|o| o.org.name)
        .unwrap_or_default();
    let mail = Mail {
        to: invitation.email.clone(),
        kind: "invitation",
        subject: format!("You are invited to join {org_name} on Nox Sync"),
        body: format!(
            "You have been invited to join {org_name} as {role}.\n\n\
             Sign in (or register with this email address) and accept with\n\
             POST /api/v1/invitations/accept {{\"token\": \"{token}\"}}\n\n\
             Invitation token: {token}\n\nThe invitation expires at {expires}.\n",
            role = invitation.role_name,
            expires = invitation.expires_at.to_rfc3339(),
        ),
    };
    state.mailer.send(&mail).await
}

/// Invites an email address with a role (`members:manage`); the members quota counts pending
/// invitations.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/invitations", tag = "invitations",
    params(("org_id" = Uuid, Path)), request_body = CreateInvitationRequest,
    responses((status = 201, body = InvitationView),
        (status = 402, description = "quota_exceeded", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "already pending, or already a member", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path(org_id): Path<Uuid>,
    Json(body): Json<CreateInvitationRequest>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let caller = access::org_permission(&state.db, user, org_id, Permission::MembersManage).await?;
    Validator::new().email("email", &body.email).finish()?;
    let role = grantable_role(&state, org_id, body.role_id, &caller.permissions).await?;
    state
        .rate_limits
        .invitations
        .check(&format!("user:{}", user.user_id))?;
    let (token, hash, expires_at) = new_token();
    let new = NewInvitation {
        org_id,
        email: body.email.trim(),
        role_id: role.id,
        token_hash: &hash,
        expires_at,
    };
    let invitation = invitations::create(state.db.pool(), new, &client.actor(&user))
        .await
        .map_err(|e| {
            conflict_on_unique(
                e,
                "invitation_pending",
                "a pending invitation for this email exists",
            )
        })?;
    send_mail(&state, org_id, user, &invitation, &token).await?;
    Ok((StatusCode::CREATED, Json(invitation.into())))
}

/// The organization's invitations, oldest first, optionally by status (`members:manage`).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/invitations", tag = "invitations",
    params(("org_id" = Uuid, Path), ListInvitationsParams),
    responses((status = 200, body = Page<InvitationView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_id): Path<Uuid>,
    Query(params): Query<ListInvitationsParams>,
) -> ApiResult<Json<Page<InvitationView>>> {
    access::org_permission(&state.db, user, org_id, Permission::MembersManage).await?;
    let status = params.status.as_deref().map(str::to_ascii_uppercase);
    if let Some(s) = &status {
        Validator::new()
            .check(
                STATUSES.contains(&s.as_str()),
                "status",
                "must be one of PENDING, ACCEPTED, REVOKED, EXPIRED",
            )
            .finish()?;
    }
    let page = page_request(params.limit, params.cursor.as_deref())?;
    let rows = invitations::list(
        state.db.pool(),
        org_id,
        status.as_deref(),
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(Json(page.page(
        rows,
        |i| (i.created_at, i.id),
        InvitationView::from,
    )))
}

/// Mails a pending invitation again with a new token and a new 7-day expiry (`members:manage`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/invitations/{invitation_id}/resend",
    tag = "invitations",
    params(("org_id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses((status = 200, body = InvitationView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "no longer pending", body = ErrorBody),
        (status = 410, description = "revoked", body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, invitation_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<InvitationView>> {
    access::org_permission(&state.db, user, org_id, Permission::MembersManage).await?;
    state
        .rate_limits
        .invitations
        .check(&format!("user:{}", user.user_id))?;
    let (token, hash, expires_at) = new_token();
    let invitation = invitations::resend(
        state.db.pool(),
        org_id,
        invitation_id,
        &hash,
        expires_at,
        &client.actor(&user),
    )
    .await?;
    send_mail(&state, org_id, user, &invitation, &token).await?;
    Ok(Json(invitation.into()))
}

/// Revokes a pending invitation (`members:manage`).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/invitations/{invitation_id}",
    tag = "invitations",
    params(("org_id" = Uuid, Path), ("invitation_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "already accepted", body = ErrorBody),
        (status = 410, description = "already revoked or expired", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Path((org_id, invitation_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    access::org_permission(&state.db, user, org_id, Permission::MembersManage).await?;
    invitations::revoke(state.db.pool(), org_id, invitation_id, &client.actor(&user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Joins the invitation's organization with its role. The signed-in user's email must match the
/// invitation (case-insensitive); API keys cannot accept.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "invitations",
    request_body = AcceptInvitationRequest,
    responses((status = 200, body = InvitationView),
        (status = 402, description = "quota_exceeded", body = ErrorBody),
        (status = 403, description = "email_mismatch", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "already accepted, or already a member", body = ErrorBody),
        (status = 410, description = "revoked or expired", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    user: AuthUser,
    client: ClientInfo,
    Json(body): Json<AcceptInvitationRequest>,
) -> ApiResult<Json<InvitationView>> {
    user.session()?;
    Validator::new().text("token", &body.token, 255).finish()?;
    let invitation = invitations::accept(
        state.db.pool(),
        &hash_token(body.token.trim()),
        &client.actor(&user),
    )
    .await?;
    tracing::info!(org_id = %invitation.org_id, user_id = %user.user_id, "invitation accepted");
    Ok(Json(invitation.into()))
}
