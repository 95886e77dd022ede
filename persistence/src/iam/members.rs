//! `org_members`: who belongs to an organization and with which role.
//!
//! Every change here keeps one invariant: a live organization always has at least one member whose
//! role grants [`ADMIN_PERMISSION`] — otherwise nobody could ever administer it again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::iam::audit::{self, Actor};
use crate::iam::billing::{self, Resource};
use crate::iam::orgs::{self, IamError};

/// The permission that makes a member an owner of the organization.
pub const ADMIN_PERMISSION: &str = "org:admin";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub full_name: Option<String>,
    pub role_id: Uuid,
    pub role_name: String,
    pub permissions: Vec<String>,
    pub joined_at: DateTime<Utc>,
    pub invited_by: Option<Uuid>,
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.full_name, r.id AS role_id,
        r.name AS role_name, r.permissions, m.joined_at, m.invited_by
     FROM org_members m
     JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
     JOIN roles r ON r.id = m.role_id";

/// One page of members, in joining order, after the keyset `(joined_at, user_id)`.
pub async fn list(
    pool: &PgPool,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Member>, IamError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(&format!(
        "{MEMBER_SELECT}
         WHERE m.org_id = $1 AND ($2::timestamptz IS NULL OR (m.joined_at, m.user_id) > ($2, $3))
         ORDER BY m.joined_at, m.user_id LIMIT $4"
    ))
    .bind(org_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

async fn find_in(
    conn: &mut PgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

pub async fn find(pool: &PgPool, org_id: Uuid, user_id: Uuid) -> Result<Option<Member>, IamError> {
    let mut conn = pool.acquire().await?;
    Ok(find_in(&mut conn, org_id, user_id).await?)
}

/// Fails with [`IamError::LastAdmin`] when no member of the organization holds `org:admin`; called
/// at the end of a transaction that changed roles or membership, so the change is rolled back.
pub async fn ensure_admin_remains(conn: &mut PgConnection, org_id: Uuid) -> Result<(), IamError> {
    let (admins,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM org_members m
         JOIN roles r ON r.id = m.role_id
         JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
         WHERE m.org_id = $1 AND $2 = ANY(r.permissions)",
    )
    .bind(org_id)
    .bind(ADMIN_PERMISSION)
    .fetch_one(conn)
    .await?;
    if admins == 0 {
        return Err(IamError::LastAdmin);
    }
    Ok(())
}

/// A live organization in which a user is the only live member holding [`ADMIN_PERMISSION`].
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SoleAdminOrg {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
}

/// The live organizations `user_id` alone administers: deleting the account would leave them
/// without an admin. Call with those organizations locked ([`lock_member_orgs`]).
pub async fn sole_admin_orgs(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<SoleAdminOrg>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.name, o.slug
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
         JOIN roles r ON r.id = m.role_id
         WHERE m.user_id = $1 AND $2 = ANY(r.permissions)
           AND NOT EXISTS (
               SELECT 1 FROM org_members other
               JOIN roles other_role ON other_role.id = other.role_id
               JOIN users other_user ON other_user.id = other.user_id
                                    AND other_user.deleted_at IS NULL
               WHERE other.org_id = m.org_id AND other.user_id <> $1
                 AND $2 = ANY(other_role.permissions))
         ORDER BY o.name, o.id",
    )
    .bind(user_id)
    .bind(ADMIN_PERMISSION)
    .fetch_all(conn)
    .await
}

/// Locks every live organization `user_id` belongs to (in id order, so two such transactions
/// cannot deadlock) and returns their ids.
pub async fn lock_member_orgs(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT o.id FROM organizations o JOIN org_members m ON m.org_id = o.id
         WHERE m.user_id = $1 AND o.deleted_at IS NULL
         ORDER BY o.id FOR NO KEY UPDATE OF o",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Adds `user_id` with `role_id`, enforcing the member quota. Call under the org lock.
pub async fn add(
    conn: &mut PgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
    invited_by: Option<Uuid>,
) -> Result<(), IamError> {
    if find_in(conn, org_id, user_id).await?.is_some() {
        return Err(IamError::AlreadyMember);
    }
    billing::check_quota(conn, org_id, Resource::Members, 0).await?;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role_id, invited_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role_id)
    .bind(invited_by)
    .execute(&mut *conn)
    .await?;
    billing::refresh_usage(conn, org_id).await?;
    Ok(())
}

/// Gives a member another role of the same organization (audited as `member.role_changed`).
pub async fn change_role(
    pool: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
    actor: &Actor<'_>,
) -> Result<Member, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let before = find_in(&mut tx, org_id, user_id)
        .await?
        .ok_or(IamError::NotFound("member"))?;
    let updated = sqlx::query(
        "UPDATE org_members SET role_id = $3
         WHERE org_id = $1 AND user_id = $2
           AND EXISTS (SELECT 1 FROM roles WHERE id = $3 AND org_id = $1)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(IamError::NotFound("role"));
    }
    ensure_admin_remains(&mut tx, org_id).await?;
    let after = find_in(&mut tx, org_id, user_id)
        .await?
        .ok_or(IamError::NotFound("member"))?;
    let metadata = serde_json::json!({
        "from_role_id": before.role_id, "from_role": before.role_name,
        "to_role_id": after.role_id, "to_role": after.role_name,
    });
    let entry = actor.entry(
        org_id,
        "member.role_changed",
        "user",
        user_id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(after)
}

/// Removes a member (audited as `member.removed`, or `member.left` when they remove themselves).
pub async fn remove(
    pool: &PgPool,
    org_id: Uuid,
    user_id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let member = find_in(&mut tx, org_id, user_id)
        .await?
        .ok_or(IamError::NotFound("member"))?;
    sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    ensure_admin_remains(&mut tx, org_id).await?;
    billing::refresh_usage(&mut tx, org_id).await?;
    let action = if actor.user_id == user_id {
        "member.left"
    } else {
        "member.removed"
    };
    let metadata = serde_json::json!({ "email": member.email, "role": member.role_name });
    let entry = actor.entry(org_id, action, "user", user_id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
