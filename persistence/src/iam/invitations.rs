//! `invitations`: an email address invited into an organization with a role.
//!
//! The token is generated and hashed by the server; only the hash is stored (`invitations.token`),
//! so a database leak does not let anyone join. The server mails the token after the change commits
//! (through its mailer, by default the `mail_outbox` table).
//! An invitation past `expires_at` is reported as `EXPIRED` even while its stored status is still
//! `PENDING`; it is marked for real when a new invitation for the same address is created.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::iam::audit::{self, Actor};
use crate::iam::billing::{self, Resource};
use crate::iam::members;
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Invitation {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    pub role_name: String,
    pub invited_by_id: Uuid,
    /// `PENDING`, `ACCEPTED`, `REVOKED` or `EXPIRED` (derived from `expires_at`).
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resent_count: i32,
    pub last_sent_at: Option<DateTime<Utc>>,
}

pub struct NewInvitation<'a> {
    pub org_id: Uuid,
    pub email: &'a str,
    pub role_id: Uuid,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

const INVITATION_SELECT: &str = "SELECT * FROM (
       SELECT i.id, i.org_id, i.email, i.role_id, r.name AS role_name, i.invited_by_id,
              CASE WHEN i.status = 'PENDING' AND i.expires_at <= NOW() THEN 'EXPIRED'
                   ELSE i.status END AS status,
              i.expires_at, i.created_at, i.accepted_at,
              COALESCE(i.resent_count, 0) AS resent_count, i.last_sent_at
       FROM invitations i JOIN roles r ON r.id = i.role_id) inv";

async fn find_in(
    conn: &mut PgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Invitation>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{INVITATION_SELECT} WHERE inv.org_id = $1 AND inv.id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Creates a pending invitation (audited as `invitation.created`).
///
/// Refused when the role is not the organization's, the address already belongs to a member, or
/// members plus pending invitations would pass the member quota. A second pending invitation for
/// the same address is a unique violation of `invitations_org_id_email_pending_key`.
pub async fn create(
    pool: &PgPool,
    new: NewInvitation<'_>,
    actor: &Actor<'_>,
) -> Result<Invitation, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, new.org_id).await?;
    let role: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM roles WHERE id = $1 AND org_id = $2")
            .bind(new.role_id)
            .bind(new.org_id)
            .fetch_optional(&mut *tx)
            .await?;
    if role.is_none() {
        return Err(IamError::NotFound("role"));
    }
    let member: Option<(Uuid,)> = sqlx::query_as(
        "SELECT m.user_id FROM org_members m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = $1 AND LOWER(u.email) = LOWER($2) AND u.deleted_at IS NULL",
    )
    .bind(new.org_id)
    .bind(new.email)
    .fetch_optional(&mut *tx)
    .await?;
    if member.is_some() {
        return Err(IamError::AlreadyMember);
    }
    sqlx::query(
        "UPDATE invitations SET status = 'EXPIRED'
         WHERE org_id = $1 AND LOWER(email) = LOWER($2) AND status = 'PENDING' AND expires_at <= NOW()",
    )
    .bind(new.org_id)
    .bind(new.email)
    .execute(&mut *tx)
    .await?;
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND status = 'PENDING' AND expires_at > NOW()",
    )
    .bind(new.org_id)
    .fetch_one(&mut *tx)
    .await?;
    billing::check_quota(&mut tx, new.org_id, Resource::Members, pending).await?;
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO invitations (email, org_id, role_id, token, invited_by_id, expires_at, last_sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, NOW()) RETURNING id",
    )
    .bind(new.email)
    .bind(new.org_id)
    .bind(new.role_id)
    .bind(new.token_hash)
    .bind(actor.user_id)
    .bind(new.expires_at)
    .fetch_one(&mut *tx)
    .await?;
    let invitation = find_in(&mut tx, new.org_id, id)
        .await?
        .ok_or(IamError::NotFound("invitation"))?;
    let metadata = serde_json::json!({ "email": new.email, "role_id": new.role_id });
    let entry = actor.entry(
        new.org_id,
        "invitation.created",
        "invitation",
        id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// One page of invitations, oldest first, optionally only those with `status` (derived status).
pub async fn list(
    pool: &PgPool,
    org_id: Uuid,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Invitation>, IamError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "{INVITATION_SELECT}
         WHERE inv.org_id = $1 AND ($2::text IS NULL OR inv.status = $2)
           AND ($3::timestamptz IS NULL OR (inv.created_at, inv.id) > ($3, $4))
         ORDER BY inv.created_at, inv.id LIMIT $5"
    ))
    .bind(org_id)
    .bind(status)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Locks an invitation of the organization and checks its stored status is still `PENDING`.
async fn lock_pending(conn: &mut PgConnection, org_id: Uuid, id: Uuid) -> Result<(), IamError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT status FROM invitations WHERE org_id = $1 AND id = $2 FOR UPDATE")
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        None => Err(IamError::NotFound("invitation")),
        Some((status,)) if status == "PENDING" => Ok(()),
        Some((status,)) => Err(IamError::InvitationClosed(status)),
    }
}

/// Replaces the token of a pending (possibly expired) invitation and extends its expiry, for the
/// caller to mail again (audited as `invitation.resent`).
pub async fn resend(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
    actor: &Actor<'_>,
) -> Result<Invitation, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    lock_pending(&mut tx, org_id, id).await?;
    let (email,): (String,) = sqlx::query_as(
        "UPDATE invitations
         SET token = $2, expires_at = $3, resent_count = COALESCE(resent_count, 0) + 1,
             last_sent_at = NOW()
         WHERE id = $1 RETURNING email",
    )
    .bind(id)
    .bind(token_hash)
    .bind(expires_at)
    .fetch_one(&mut *tx)
    .await?;
    let invitation = find_in(&mut tx, org_id, id)
        .await?
        .ok_or(IamError::NotFound("invitation"))?;
    let metadata = serde_json::json!({ "email": email, "resent_count": invitation.resent_count });
    let entry = actor.entry(
        org_id,
        "invitation.resent",
        "invitation",
        id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Revokes a pending invitation (audited as `invitation.revoked`).
pub async fn revoke(
    pool: &PgPool,
    org_id: Uuid,
    id: Uuid,
    actor: &Actor<'_>,
) -> Result<Invitation, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    lock_pending(&mut tx, org_id, id).await?;
    sqlx::query("UPDATE invitations SET status = 'REVOKED' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let invitation = find_in(&mut tx, org_id, id)
        .await?
        .ok_or(IamError::NotFound("invitation"))?;
    let metadata = serde_json::json!({ "email": invitation.email });
    let entry = actor.entry(
        org_id,
        "invitation.revoked",
        "invitation",
        id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(invitation)
}

/// Accepts the invitation whose token hashes to `token_hash` on behalf of the actor, who must be
/// a live user with the invited email (case-insensitive). The actor joins with the invitation's
/// role (audited as `invitation.accepted`). Returns the accepted invitation.
pub async fn accept(
    pool: &PgPool,
    token_hash: &str,
    actor: &Actor<'_>,
) -> Result<Invitation, IamError> {
    let mut tx = pool.begin().await?;
    let row: Option<(Uuid, Uuid, String, Uuid, Uuid, String, bool)> = sqlx::query_as(
        "SELECT i.id, i.org_id, i.email, i.role_id, i.invited_by_id, i.status, i.expires_at <= NOW()
         FROM invitations i JOIN organizations o ON o.id = i.org_id AND o.deleted_at IS NULL
         WHERE i.token = $1 FOR UPDATE OF i",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, org_id, email, role_id, invited_by, status, expired) =
        row.ok_or(IamError::NotFound("invitation"))?;
    if status != "PENDING" {
        return Err(IamError::InvitationClosed(status));
    }
    if expired {
        return Err(IamError::InvitationClosed("EXPIRED".into()));
    }
    let user: Option<(String,)> =
        sqlx::query_as("SELECT email FROM users WHERE id = $1 AND deleted_at IS NULL")
            .bind(actor.user_id)
            .fetch_optional(&mut *tx)
            .await?;
    match user {
        Some((user_email,)) if user_email.to_lowercase() == email.to_lowercase() => {}
        _ => return Err(IamError::EmailMismatch),
    }
    orgs::lock_live(&mut tx, org_id).await?;
    members::add(&mut tx, org_id, actor.user_id, role_id, Some(invited_by)).await?;
    sqlx::query("UPDATE invitations SET status = 'ACCEPTED', accepted_at = NOW() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let invitation = find_in(&mut tx, org_id, id)
        .await?
        .ok_or(IamError::NotFound("invitation"))?;
    let metadata = serde_json::json!({ "email": email, "role_id": role_id });
    let entry = actor.entry(
        org_id,
        "invitation.accepted",
        "invitation",
        id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(invitation)
}
