//! `audit_logs`: who did what to which resource, from where (DESIGN §6: admin actions are audited).
//!
//! Writers take any executor so the audit row can be written in the same transaction as the action
//! it records: either both exist or neither does.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::error::PersistenceError;

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub org_id: Uuid,
    pub actor_id: Uuid,
    /// Dotted verb, e.g. `member.removed`, `project.deleted`, `auth.login_failed`.
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<Uuid>,
    pub metadata: Option<serde_json::Value>,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Who performs an audited change and from where; mutation functions in [`crate::iam`] take one
/// and write the audit row in the transaction of the change itself.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: Uuid,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<'a> Actor<'a> {
    /// An entry by this actor in `org_id`.
    pub fn entry(
        &self,
        org_id: Uuid,
        action: &'a str,
        target_type: &'a str,
        target_id: Uuid,
        metadata: Option<serde_json::Value>,
    ) -> NewAuditEntry<'a> {
        NewAuditEntry {
            org_id,
            actor_id: self.user_id,
            action,
            target_type: Some(target_type),
            target_id: Some(target_id),
            metadata,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
        }
    }
}

/// A stored audit row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditLog {
    pub id: Uuid,
    pub org_id: Uuid,
    pub actor_id: Uuid,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub metadata: Option<serde_json::Value>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `ip_address` is VARCHAR(45); an over-long value must not make the audited action fail.
fn clip(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}

/// Writes one audit row with `executor` (a pool, a connection or an open transaction).
pub async fn record<'e>(
    executor: impl PgExecutor<'e>,
    entry: NewAuditEntry<'_>,
) -> Result<(), PersistenceError> {
    sqlx::query(
        "INSERT INTO audit_logs
           (org_id, actor_id, action, target_type, target_id, metadata, ip_address, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(entry.org_id)
    .bind(entry.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.metadata)
    .bind(clip(entry.ip_address, 45))
    .bind(entry.user_agent)
    .execute(executor)
    .await?;
    Ok(())
}

/// Writes one copy of `entry` per live organization `user_id` belongs to (its `org_id` is ignored).
///
/// Security events (failed logins, lockouts, MFA changes, session revocation) concern a user rather
/// than an organization, but `audit_logs` is per organization: every org the user can act in gets to
/// see them. A user without organizations leaves no row. Returns how many rows were written.
pub async fn record_for_user_orgs<'e>(
    executor: impl PgExecutor<'e>,
    user_id: Uuid,
    entry: NewAuditEntry<'_>,
) -> Result<u64, PersistenceError> {
    let result = sqlx::query(
        "INSERT INTO audit_logs
           (org_id, actor_id, action, target_type, target_id, metadata, ip_address, user_agent)
         SELECT m.org_id, $2, $3, $4, $5, $6, $7, $8
         FROM org_members m
         JOIN organizations o ON o.id = m.org_id AND o.deleted_at IS NULL
         WHERE m.user_id = $1",
    )
    .bind(user_id)
    .bind(entry.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.metadata)
    .bind(clip(entry.ip_address, 45))
    .bind(entry.user_agent)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// Filters of the audit log listing; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One page of an organization's audit log, newest first, after the keyset `cursor`
/// (`(created_at, id)` of the last row of the previous page). Fetches `limit` rows.
pub async fn list(
    pool: &PgPool,
    org_id: Uuid,
    filter: &AuditFilter,
    cursor: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AuditLog>, PersistenceError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT id, org_id, actor_id, action, target_type, target_id, metadata, ip_address,
                user_agent, created_at
         FROM audit_logs WHERE org_id = ",
    );
    q.push_bind(org_id);
    if let Some(action) = &filter.action {
        q.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(actor) = filter.actor_id {
        q.push(" AND actor_id = ").push_bind(actor);
    }
    if let Some(target_type) = &filter.target_type {
        q.push(" AND target_type = ").push_bind(target_type.clone());
    }
    if let Some(target_id) = filter.target_id {
        q.push(" AND target_id = ").push_bind(target_id);
    }
    if let Some(since) = filter.since {
        q.push(" AND created_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        q.push(" AND created_at < ").push_bind(until);
    }
    if let Some((at, id)) = cursor {
        q.push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    Ok(q.build_query_as().fetch_all(pool).await?)
}
