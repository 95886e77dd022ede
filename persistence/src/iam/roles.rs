//! `roles`: named permission lists per organization. The vocabulary is checked by the server; here
//! roles are only stored, and changes keep the "someone holds org:admin" invariant of
//! [`crate::iam::members`].

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::iam::audit::{self, Actor};
use crate::iam::members::ensure_admin_remains;
use crate::iam::orgs::{self, IamError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Role {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub permissions: Vec<String>,
    /// Members holding this role.
    pub member_count: i64,
}

/// Fields of a role to change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct RolePatch<'a> {
    pub name: Option<&'a str>,
    pub permissions: Option<&'a [String]>,
}

const ROLE_SELECT: &str = "SELECT r.id, r.org_id, r.name, r.permissions,
        (SELECT COUNT(*) FROM org_members m
         JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
         WHERE m.role_id = r.id) AS member_count
     FROM roles r";

/// Every role of the organization by name. Organizations have a handful of roles, so this list is
/// not paginated.
pub async fn list(pool: &PgPool, org_id: Uuid) -> Result<Vec<Role>, IamError> {
    Ok(sqlx::query_as(&format!(
        "{ROLE_SELECT} WHERE r.org_id = $1 ORDER BY r.name, r.id"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

async fn find_in(
    conn: &mut PgConnection,
    org_id: Uuid,
    role_id: Uuid,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_as(&format!("{ROLE_SELECT} WHERE r.org_id = $1 AND r.id = $2"))
        .bind(org_id)
        .bind(role_id)
        .fetch_optional(conn)
        .await
}

/// The role `role_id` of `org_id`; `None` for another organization's role too.
pub async fn find(pool: &PgPool, org_id: Uuid, role_id: Uuid) -> Result<Option<Role>, IamError> {
    let mut conn = pool.acquire().await?;
    Ok(find_in(&mut conn, org_id, role_id).await?)
}

/// Creates a role (audited as `role.created`); a duplicate name is a unique violation of
/// `roles_org_id_name_key`.
pub async fn create(
    pool: &PgPool,
    org_id: Uuid,
    name: &str,
    permissions: &[String],
    actor: &Actor<'_>,
) -> Result<Role, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let (id,): (Uuid,) = sqlx::query_as(
        "INSERT INTO roles (org_id, name, permissions) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(org_id)
    .bind(name)
    .bind(permissions)
    .fetch_one(&mut *tx)
    .await?;
    let role = find_in(&mut tx, org_id, id)
        .await?
        .ok_or(IamError::NotFound("role"))?;
    let metadata = serde_json::json!({ "name": name, "permissions": permissions });
    audit::record(
        &mut *tx,
        actor.entry(org_id, "role.created", "role", id, Some(metadata)),
    )
    .await?;
    tx.commit().await?;
    Ok(role)
}

/// Renames a role and/or replaces its permissions (audited as `role.updated`), refusing a change
/// that leaves nobody with org:admin.
pub async fn update(
    pool: &PgPool,
    org_id: Uuid,
    role_id: Uuid,
    patch: RolePatch<'_>,
    actor: &Actor<'_>,
) -> Result<Role, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let before = find_in(&mut tx, org_id, role_id)
        .await?
        .ok_or(IamError::NotFound("role"))?;
    sqlx::query(
        "UPDATE roles SET name = COALESCE($3, name), permissions = COALESCE($4, permissions)
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(role_id)
    .bind(patch.name)
    .bind(patch.permissions)
    .execute(&mut *tx)
    .await?;
    ensure_admin_remains(&mut tx, org_id).await?;
    let after = find_in(&mut tx, org_id, role_id)
        .await?
        .ok_or(IamError::NotFound("role"))?;
    let metadata = serde_json::json!({
        "from": { "name": before.name, "permissions": before.permissions },
        "to": { "name": after.name, "permissions": after.permissions },
    });
    let entry = actor.entry(org_id, "role.updated", "role", role_id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a role nobody holds and no pending invitation offers (audited as `role.deleted`).
/// Closed invitations that named the role go with it; the audit log keeps their history.
pub async fn delete(
    pool: &PgPool,
    org_id: Uuid,
    role_id: Uuid,
    actor: &Actor<'_>,
) -> Result<(), IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let role = find_in(&mut tx, org_id, role_id)
        .await?
        .ok_or(IamError::NotFound("role"))?;
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM invitations WHERE role_id = $1 AND status = 'PENDING'",
    )
    .bind(role_id)
    .fetch_one(&mut *tx)
    .await?;
    if role.member_count + pending > 0 {
        return Err(IamError::RoleInUse(role.member_count + pending));
    }
    // Deleted accounts do not count as holders, but their rows still reference the role.
    sqlx::query(
        "DELETE FROM org_members m USING users u
         WHERE m.role_id = $1 AND u.id = m.user_id AND u.deleted_at IS NOT NULL",
    )
    .bind(role_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM invitations WHERE role_id = $1")
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(role_id)
        .execute(&mut *tx)
        .await?;
    let metadata = serde_json::json!({ "name": role.name, "permissions": role.permissions });
    let entry = actor.entry(org_id, "role.deleted", "role", role_id, Some(metadata));
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
