//! `organizations`, their default roles and owner, and [`IamError`]: the refusals every tenancy
//! mutation in [`crate::iam`] can give.
//!
//! Mutations that depend on a count or an invariant over the whole organization (quotas, "someone
//! must keep org:admin") first take [`lock_live`] on the organization row, which serializes them per
//! organization without blocking foreign-key checks elsewhere.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::billing::{self, QuotaExceeded};

/// Why a tenancy mutation was refused. Unique violations stay inside [`IamError::Db`]; callers
/// read them with [`PersistenceError::unique_violation`].
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Db(#[from] PersistenceError),
    /// The named resource does not exist (or is deleted, or belongs to another organization).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// The change would leave the organization without any member holding `org:admin`.
    #[error("the organization must keep at least one member holding org:admin")]
    LastAdmin,
    /// The role is still assigned to members or pending invitations.
    #[error("the role is still assigned to {0} member(s) or pending invitation(s)")]
    RoleInUse(i64),
    /// The invitation is no longer pending: `ACCEPTED`, `REVOKED` or `EXPIRED`.
    #[error("the invitation is {0}")]
    InvitationClosed(String),
    #[error("the invitation was sent to a different email address")]
    EmailMismatch,
    #[error("the user is already a member of this organization")]
    AlreadyMember,
    /// A plan change whose quotas are below current usage; the string says which.
    #[error("current usage exceeds the plan: {0}")]
    UsageExceedsPlan(String),
}

impl From<sqlx::Error> for IamError {
    fn from(err: sqlx::Error) -> Self {
        IamError::Db(err.into())
    }
}

impl IamError {
    /// The violated unique constraint, when this is a unique violation.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            IamError::Db(e) => e.unique_violation(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An organization as seen by one of its members.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MemberOrganization {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub org: Organization,
    pub role_id: Uuid,
    pub role_name: String,
    pub permissions: Vec<String>,
}

/// A caller's standing in one organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Membership {
    pub org_id: Uuid,
    pub role_id: Uuid,
    pub role_name: String,
    pub permissions: Vec<String>,
}

/// A role every new organization gets.
#[derive(Debug, Clone)]
pub struct RoleTemplate {
    pub name: &'static str,
    pub permissions: Vec<String>,
}

/// Fields of an organization to change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct OrgPatch<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
    pub settings: Option<serde_json::Value>,
}

const ORG_COLUMNS: &str = "o.id, o.name, o.slug, o.settings, o.created_at, o.updated_at";

/// Locks a live organization's row for the rest of the transaction, or `NotFound`.
pub async fn lock_live(conn: &mut PgConnection, org_id: Uuid) -> Result<(), IamError> {
    sqlx::query(
        "SELECT 1 FROM organizations WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
    )
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|_| ())
    .ok_or(IamError::NotFound("organization"))
}

/// Creates an organization, its default roles, its subscription on the default plan and makes
/// `actor` a member with the role named `owner_role`, all in one transaction.
pub async fn create_with_owner(
    pool: &PgPool,
    name: &str,
    slug: &str,
    actor: &Actor<'_>,
    roles: &[RoleTemplate],
    owner_role: &str,
) -> Result<MemberOrganization, IamError> {
    let mut tx = pool.begin().await?;
    let org: Organization = sqlx::query_as(&format!(
        "INSERT INTO organizations AS o (name, slug) VALUES ($1, $2) RETURNING {ORG_COLUMNS}"
    ))
    .bind(name)
    .bind(slug)
    .fetch_one(&mut *tx)
    .await?;
    let mut owner_role_row = None;
    for role in roles {
        let (role_id,): (Uuid,) = sqlx::query_as(
            "INSERT INTO roles (org_id, name, permissions) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(org.id)
        .bind(role.name)
        .bind(&role.permissions)
        .fetch_one(&mut *tx)
        .await?;
        if role.name == owner_role {
            owner_role_row = Some((role_id, role));
        }
    }
    let Some((role_id, role)) = owner_role_row else {
        return Err(PersistenceError::Invariant(format!(
            "owner role {owner_role} is not among the default roles"
        ))
        .into());
    };
    sqlx::query("INSERT INTO org_members (org_id, user_id, role_id) VALUES ($1, $2, $3)")
        .bind(org.id)
        .bind(actor.user_id)
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    billing::create_subscription(&mut tx, org.id, billing::default_plan()).await?;
    billing::refresh_usage(&mut tx, org.id).await?;
    let entry = actor.entry(org.id, "org.created", "organization", org.id, None);
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(MemberOrganization {
        org,
        role_id,
        role_name: role.name.to_string(),
        permissions: role.permissions.clone(),
    })
}

const MEMBER_ORG_SELECT: &str = "FROM org_members m
     JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
     JOIN roles r ON r.id = m.role_id";

/// One page of the live organizations `user_id` belongs to, oldest first, after the keyset
/// `after` = `(created_at, id)` of the previous page's last row.
pub async fn list_for_member(
    pool: &PgPool,
    user_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MemberOrganization>, PersistenceError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS}, r.id AS role_id, r.name AS role_name, r.permissions
         {MEMBER_ORG_SELECT}
         WHERE m.user_id = $1 AND ($2::timestamptz IS NULL OR (o.created_at, o.id) > ($2, $3))
         ORDER BY o.created_at, o.id LIMIT $4"
    ))
    .bind(user_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A live organization with the caller's role in it, or `None` when the caller is not a member.
pub async fn find_for_member(
    pool: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberOrganization>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS}, r.id AS role_id, r.name AS role_name, r.permissions
         {MEMBER_ORG_SELECT}
         WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// The caller's membership in a live organization, or `None` (not a member, or no such org).
pub async fn membership(
    pool: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Membership>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT m.org_id, r.id AS role_id, r.name AS role_name, r.permissions
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
         JOIN roles r ON r.id = m.role_id
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Changes name, slug and/or settings of a live organization (audited as `org.updated`).
pub async fn update(
    pool: &PgPool,
    org_id: Uuid,
    patch: OrgPatch<'_>,
    actor: &Actor<'_>,
) -> Result<Organization, IamError> {
    let mut changed = Vec::new();
    for (field, set) in [
        ("name", patch.name.is_some()),
        ("slug", patch.slug.is_some()),
        ("settings", patch.settings.is_some()),
    ] {
        if set {
            changed.push(field);
        }
    }
    let mut tx = pool.begin().await?;
    let org: Organization = sqlx::query_as(&format!(
        "UPDATE organizations AS o
         SET name = COALESCE($2, o.name), slug = COALESCE($3, o.slug),
             settings = COALESCE($4, o.settings), updated_at = NOW()
         WHERE o.id = $1 AND o.deleted_at IS NULL
         RETURNING {ORG_COLUMNS}"
    ))
    .bind(org_id)
    .bind(patch.name)
    .bind(patch.slug)
    .bind(patch.settings)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IamError::NotFound("organization"))?;
    let metadata = serde_json::json!({ "changed": changed });
    let entry = actor.entry(
        org_id,
        "org.updated",
        "organization",
        org_id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(org)
}

/// Soft-deletes a live organization (its slug becomes reusable) and returns the ids of the live
/// workspaces that just became unreachable, so their live sockets can be closed.
pub async fn soft_delete(
    pool: &PgPool,
    org_id: Uuid,
    actor: &Actor<'_>,
) -> Result<Vec<Uuid>, IamError> {
    let mut tx = pool.begin().await?;
    lock_live(&mut tx, org_id).await?;
    sqlx::query("UPDATE organizations SET deleted_at = NOW(), updated_at = NOW() WHERE id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let workspaces: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT w.id FROM workspaces w JOIN projects p ON p.id = w.project_id
         WHERE p.org_id = $1 AND p.deleted_at IS NULL AND w.deleted_at IS NULL",
    )
    .bind(org_id)
    .fetch_all(&mut *tx)
    .await?;
    let entry = actor.entry(org_id, "org.deleted", "organization", org_id, None);
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(workspaces.into_iter().map(|(id,)| id).collect())
}
