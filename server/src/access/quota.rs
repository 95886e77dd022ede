//! Plan limits checked before admitting work. Limits enforced inside a transaction (members,
//! projects, workspaces, blocks) live beside their SQL in `persistence/src/iam/billing.rs`; this is
//! the one limit only the running server can count: concurrent live connections.

use nox_persistence::db::Database;
use nox_persistence::iam::billing;
use uuid::Uuid;

use super::{AccessError, LiveAccess};

/// Refused when the organization already has as many open live connections as its plan allows.
pub async fn connection_quota(
    db: &Database,
    live: &LiveAccess,
    org_id: Uuid,
) -> Result<(), AccessError> {
    let (limit, plan) = billing::connection_limit(db.pool(), org_id).await?;
    match limit {
        Some(max) if live.count_org(org_id) as i64 >= max => Err(AccessError::QuotaExceeded(
            format!("the {plan} plan allows at most {max} concurrent connections"),
        )),
        _ => Ok(()),
    }
}
