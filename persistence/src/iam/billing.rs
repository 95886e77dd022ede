//! `subscriptions` and `org_usage_metrics`: which plan an organization is on, what it may use, and
//! what it uses.
//!
//! Quotas live in `subscriptions.quotas` (copied from the plan catalogue below when the plan is
//! chosen) so an operator can raise one organization's limits by editing its row. A missing or
//! `null` quota means unlimited. Enforcement counts live rows inside the transaction that adds one,
//! under the organization lock ([`crate::iam::orgs::lock_live`]); `org_usage_metrics` is a
//! recount written by the same transaction, so it is always current and never drifts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;
use crate::iam::audit::{self, Actor};
use crate::iam::orgs::{self, IamError};

/// Limits of a plan; `None` is unlimited.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Quotas {
    pub max_projects: Option<i64>,
    pub max_workspaces: Option<i64>,
    pub max_members: Option<i64>,
    pub max_blocks_per_workspace: Option<i64>,
    pub max_connections: Option<i64>,
    /// Bytes of live uploaded files in the organization (each upload counts, even when the store
    /// shares identical content).
    pub max_storage_bytes: Option<i64>,
    /// Largest single upload, in bytes.
    pub max_file_bytes: Option<i64>,
}

/// One entry of the plan catalogue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    pub quotas: Quotas,
}

/// The plans an organization can be on. New organizations start on the first one.
pub const PLANS: [Plan; 3] = [
    Plan {
        id: "free",
        name: "Free",
        quotas: Quotas {
            max_projects: Some(5),
            max_workspaces: Some(25),
            max_members: Some(10),
            max_blocks_per_workspace: Some(5_000),
            max_connections: Some(50),
            max_storage_bytes: Some(1 << 30),
            max_file_bytes: Some(10 << 20),
        },
    },
    Plan {
        id: "team",
        name: "Team",
        quotas: Quotas {
            max_projects: Some(100),
            max_workspaces: Some(1_000),
            max_members: Some(100),
            max_blocks_per_workspace: Some(50_000),
            max_connections: Some(1_000),
            max_storage_bytes: Some(100 << 30),
            max_file_bytes: Some(100 << 20),
        },
    },
    Plan {
        id: "enterprise",
        name: "Enterprise",
        quotas: Quotas {
            max_projects: None,
            max_workspaces: None,
            max_members: None,
            max_blocks_per_workspace: None,
            max_connections: None,
            max_storage_bytes: None,
            max_file_bytes: None,
        },
    },
];

pub fn default_plan() -> &'static Plan {
    &PLANS[0]
}

pub fn find_plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

/// A resource whose count is limited by a plan and tracked in `org_usage_metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Projects,
    Workspaces,
    Members,
    /// Bytes of live files (issue 16); checked with [`check_storage`], not [`check_quota`].
    StorageBytes,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Projects,
        Resource::Workspaces,
        Resource::Members,
        Resource::StorageBytes,
    ];

    /// The `org_usage_metrics.metric_type` of this resource.
    pub fn metric(self) -> &'static str {
        match self {
            Resource::Projects => "projects",
            Resource::Workspaces => "workspaces",
            Resource::Members => "members",
            Resource::StorageBytes => "storage_bytes",
        }
    }

    /// The key of this resource's limit in `subscriptions.quotas`.
    pub fn quota_key(self) -> &'static str {
        match self {
            Resource::Projects => "max_projects",
            Resource::Workspaces => "max_workspaces",
            Resource::Members => "max_members",
            Resource::StorageBytes => "max_storage_bytes",
        }
    }

    fn limit_in(self, quotas: &Quotas) -> Option<i64> {
        match self {
            Resource::Projects => quotas.max_projects,
            Resource::Workspaces => quotas.max_workspaces,
            Resource::Members => quotas.max_members,
            Resource::StorageBytes => quotas.max_storage_bytes,
        }
    }

    /// Live rows of this resource in the organization `$1`.
    fn count_sql(self) -> &'static str {
        match self {
            Resource::Projects => {
                "SELECT COUNT(*) FROM projects WHERE org_id = $1 AND deleted_at IS NULL"
            }
            Resource::Workspaces => {
                "SELECT COUNT(*) FROM workspaces w JOIN projects p ON p.id = w.project_id
                 WHERE p.org_id = $1 AND p.deleted_at IS NULL AND w.deleted_at IS NULL"
            }
            // Deleted accounts keep their membership rows but hold no seat.
            Resource::Members => {
                "SELECT COUNT(*) FROM org_members m
                 JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
                 WHERE m.org_id = $1"
            }
            Resource::StorageBytes => {
                "SELECT COALESCE(SUM(f.file_size), 0)::bigint FROM files f
                 JOIN projects p ON p.id = f.project_id
                 WHERE p.org_id = $1 AND p.deleted_at IS NULL AND f.deleted_at IS NULL"
            }
        }
    }
}

/// Adding one more of a resource would pass the plan's limit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the {plan_id} plan allows at most {limit} {resource}", resource = .resource.metric())]
pub struct QuotaExceeded {
    pub resource: Resource,
    pub limit: i64,
    pub plan_id: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Subscription {
    pub org_id: Uuid,
    pub plan_id: String,
    pub status: String,
    pub quotas: serde_json::Value,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct UsageMetric {
    pub metric_type: String,
    pub current_value: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

const SUBSCRIPTION_COLUMNS: &str =
    "org_id, plan_id, status, quotas, current_period_start, current_period_end, updated_at";

fn quotas_json(plan: &Plan) -> Result<serde_json::Value, PersistenceError> {
    serde_json::to_value(plan.quotas).map_err(|e| PersistenceError::Invariant(e.to_string()))
}

/// Puts a new organization on `plan`.
pub async fn create_subscription(
    conn: &mut PgConnection,
    org_id: Uuid,
    plan: &Plan,
) -> Result<Subscription, PersistenceError> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO subscriptions (org_id, plan_id, quotas, current_period_start)
         VALUES ($1, $2, $3, NOW()) RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(org_id)
    .bind(plan.id)
    .bind(quotas_json(plan)?)
    .fetch_one(conn)
    .await?)
}

/// The organization's subscription; organizations created before subscriptions existed get one
/// on the default plan here, so every reader sees a row.
pub async fn subscription(
    conn: &mut PgConnection,
    org_id: Uuid,
) -> Result<Subscription, PersistenceError> {
    let found: Option<Subscription> = sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE org_id = $1"
    ))
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    match found {
        Some(sub) => Ok(sub),
        None => create_subscription(conn, org_id, default_plan()).await,
    }
}

/// The subscription of a live organization, read outside any transaction.
pub async fn get_subscription(pool: &PgPool, org_id: Uuid) -> Result<Subscription, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let sub = subscription(&mut tx, org_id).await?;
    tx.commit().await?;
    Ok(sub)
}

async fn count(
    conn: &mut PgConnection,
    org_id: Uuid,
    resource: Resource,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(resource.count_sql())
        .bind(org_id)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// The organization's current limit for `resource`; `None` is unlimited.
async fn limit(
    conn: &mut PgConnection,
    org_id: Uuid,
    resource: Resource,
) -> Result<(Option<i64>, String), PersistenceError> {
    let sub = subscription(conn, org_id).await?;
    let limit = sub
        .quotas
        .get(resource.quota_key())
        .and_then(|v| v.as_i64());
    Ok((limit, sub.plan_id))
}

/// Refuses to add `adding` more of `resource` beyond the plan. `reserved` counts things that will
/// become the resource later (pending invitations for members). Call under the org lock.
pub async fn check_quota(
    conn: &mut PgConnection,
    org_id: Uuid,
    resource: Resource,
    reserved: i64,
) -> Result<(), IamError> {
    let (Some(limit), plan_id) = limit(conn, org_id, resource).await? else {
        return Ok(());
    };
    let used = count(conn, org_id, resource).await? + reserved;
    if used + 1 > limit {
        return Err(QuotaExceeded {
            resource,
            limit,
            plan_id,
        }
        .into());
    }
    Ok(())
}

/// Refuses `adding` more bytes of files beyond the plan's `max_storage_bytes`. Call under the
/// org lock.
pub async fn check_storage(
    conn: &mut PgConnection,
    org_id: Uuid,
    adding: i64,
) -> Result<(), IamError> {
    let resource = Resource::StorageBytes;
    let (Some(limit), plan_id) = limit(conn, org_id, resource).await? else {
        return Ok(());
    };
    if count(conn, org_id, resource).await? + adding > limit {
        return Err(QuotaExceeded {
            resource,
            limit,
            plan_id,
        }
        .into());
    }
    Ok(())
}

/// The largest single upload the organization's plan allows; `None` is unlimited.
pub async fn max_file_bytes(pool: &PgPool, org_id: Uuid) -> Result<Option<i64>, PersistenceError> {
    let mut conn = pool.acquire().await?;
    let sub = subscription(&mut conn, org_id).await?;
    Ok(sub.quotas.get("max_file_bytes").and_then(|v| v.as_i64()))
}

/// Recounts projects, workspaces, members and stored bytes into `org_usage_metrics`.
pub async fn refresh_usage(conn: &mut PgConnection, org_id: Uuid) -> Result<(), PersistenceError> {
    for resource in Resource::ALL {
        let value = count(conn, org_id, resource).await?;
        sqlx::query(
            "INSERT INTO org_usage_metrics (org_id, metric_type, current_value, updated_at)
             VALUES ($1, $2, $3, NOW())
             ON CONFLICT (org_id, metric_type)
             DO UPDATE SET current_value = EXCLUDED.current_value, updated_at = NOW()",
        )
        .bind(org_id)
        .bind(resource.metric())
        .bind(value)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The organization's usage counters, by metric name.
pub async fn usage(pool: &PgPool, org_id: Uuid) -> Result<Vec<UsageMetric>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT metric_type, COALESCE(current_value, 0) AS current_value, updated_at
         FROM org_usage_metrics WHERE org_id = $1 ORDER BY metric_type",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

/// Moves the organization to `plan`, refusing a plan whose limits are below current usage
/// (audited as `subscription.changed`).
pub async fn change_plan(
    pool: &PgPool,
    org_id: Uuid,
    plan: &Plan,
    actor: &Actor<'_>,
) -> Result<Subscription, IamError> {
    let mut tx = pool.begin().await?;
    orgs::lock_live(&mut tx, org_id).await?;
    let before = subscription(&mut tx, org_id).await?;
    let mut over = Vec::new();
    for resource in Resource::ALL {
        if let Some(limit) = resource.limit_in(&plan.quotas) {
            let used = count(&mut tx, org_id, resource).await?;
            if used > limit {
                over.push(format!("{} {used} > {limit}", resource.metric()));
            }
        }
    }
    if !over.is_empty() {
        return Err(IamError::UsageExceedsPlan(over.join(", ")));
    }
    let sub: Subscription = sqlx::query_as(&format!(
        "UPDATE subscriptions SET plan_id = $2, quotas = $3, status = 'ACTIVE', updated_at = NOW()
         WHERE org_id = $1 RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(org_id)
    .bind(plan.id)
    .bind(quotas_json(plan)?)
    .fetch_one(&mut *tx)
    .await?;
    let metadata = serde_json::json!({ "from": before.plan_id, "to": plan.id });
    let entry = actor.entry(
        org_id,
        "subscription.changed",
        "organization",
        org_id,
        Some(metadata),
    );
    audit::record(&mut *tx, entry).await?;
    tx.commit().await?;
    Ok(sub)
}

/// The organization's concurrent-connection limit and plan, read without locking (checked on every
/// WebSocket connect). `None` limit: unlimited (or no subscription row yet).
pub async fn connection_limit(
    pool: &PgPool,
    org_id: Uuid,
) -> Result<(Option<i64>, String), PersistenceError> {
    let row: Option<(Option<i64>, String)> = sqlx::query_as(
        "SELECT (quotas->>'max_connections')::BIGINT, plan_id FROM subscriptions WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.unwrap_or((None, default_plan().id.to_string())))
}

/// The organization's `max_blocks_per_workspace` (`None`: unlimited or no subscription row).
pub async fn block_limit(pool: &PgPool, org_id: Uuid) -> Result<Option<i64>, PersistenceError> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT (quotas->>'max_blocks_per_workspace')::BIGINT FROM subscriptions WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| r.0))
}
