//! `organizations`, `roles`, `org_members`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

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

const ORG_COLUMNS: &str = "o.id, o.name, o.slug, o.settings, o.created_at, o.updated_at";

/// Creates an organization, its default roles, and makes `owner` a member with the role named
/// `owner_role`, all in one transaction.
pub async fn create_with_owner(
    pool: &PgPool,
    name: &str,
    slug: &str,
    owner: Uuid,
    roles: &[RoleTemplate],
    owner_role: &str,
) -> Result<MemberOrganization, PersistenceError> {
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
        )));
    };
    sqlx::query("INSERT INTO org_members (org_id, user_id, role_id) VALUES ($1, $2, $3)")
        .bind(org.id)
        .bind(owner)
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(MemberOrganization {
        org,
        role_id,
        role_name: role.name.to_string(),
        permissions: role.permissions.clone(),
    })
}

/// Live organizations `user_id` belongs to, oldest first.
pub async fn list_for_member(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<MemberOrganization>, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS}, r.id AS role_id, r.name AS role_name, r.permissions
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
         JOIN roles r ON r.id = m.role_id
         WHERE m.user_id = $1
         ORDER BY o.created_at, o.id"
    ))
    .bind(user_id)
    .fetch_all(pool)
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
