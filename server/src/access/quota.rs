//! Plan limits checked before admitting work. Limits enforced inside a transaction (members,
//! projects, workspaces, blocks) live beside their SQL in `persistence/src/iam/billing.rs`; this is
//! the one limit only the running servers can count: concurrent live connections, this node's
//! plus those the other nodes of the cluster reported with their last heartbeat (DESIGN §7).

use nox_persistence::db::Database;
use nox_persistence::iam::billing;
use uuid::Uuid;

use super::{AccessError, LiveAccess};
use crate::cluster::Cluster;

/// Refused when the organization already has as many open live connections as its plan allows.
pub async fn connection_quota(
    db: &Database,
    live: &LiveAccess,
    cluster: &Cluster,
    org_id: Uuid,
) -> Result<(), AccessError> {
    let (limit, plan) = billing::connection_limit(db.pool(), org_id).await?;
    let Some(max) = limit else {
        return Ok(());
    };
    let open = live.count_org(org_id) as i64 + cluster.connections_elsewhere(org_id).await?;
    if open >= max {
        return Err(AccessError::QuotaExceeded(format!(
            "the {plan} plan allows at most {max} concurrent connections"
        )));
    }
    Ok(())
}
