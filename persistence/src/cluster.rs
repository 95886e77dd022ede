//! Several nodes on one PostgreSQL: node heartbeats, workspace leases and fencing
//! (docs/design.md §7).
//!
//! At most one node owns a workspace's room: the holder of its row in `workspace_leases`, valid
//! while that node's heartbeat in `nodes` is younger than the TTL. Taking a lease bumps its
//! `epoch`. Every write a room makes (log append, compaction, lock acquire) names its
//! [`Lease`] and share-locks the lease row in the same statement or transaction ([`fence`]), so:
//! - a write of a stale owner (its epoch or node no longer in the row) is refused by the database;
//! - a takeover, which updates the row, waits until the writes in flight have committed — the new
//!   owner's load, which starts after its takeover commits, sees all of them.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::PersistenceError;

/// A node's claim on one workspace's room, carried by every write of that room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub workspace_id: Uuid,
    pub node_id: Uuid,
    pub epoch: i64,
}

/// Another live node, as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeInfo {
    pub id: Uuid,
    /// `host:port` other nodes reach it at (HTTP and WebSocket).
    pub addr: String,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired(Lease),
    /// Another node with a fresh heartbeat owns the workspace.
    HeldBy(NodeInfo),
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Adds (or re-adds) this node with a fresh heartbeat.
pub async fn register_node(pool: &PgPool, node: &NodeInfo) -> Result<(), PersistenceError> {
    sqlx::query(
        "INSERT INTO nodes (id, addr) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET addr = EXCLUDED.addr, heartbeat_at = NOW()",
    )
    .bind(node.id)
    .bind(&node.addr)
    .execute(pool)
    .await?;
    Ok(())
}

/// Renews this node's heartbeat (and with it every lease it holds). Answers the leases the node
/// still holds, so rooms whose lease another node took over can stop.
pub async fn heartbeat(pool: &PgPool, node: &NodeInfo) -> Result<Vec<Lease>, PersistenceError> {
    register_node(pool, node).await?;
    let held: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT workspace_id, epoch FROM workspace_leases WHERE node_id = $1")
            .bind(node.id)
            .fetch_all(pool)
            .await?;
    Ok(held
        .into_iter()
        .map(|(workspace_id, epoch)| Lease {
            workspace_id,
            node_id: node.id,
            epoch,
        })
        .collect())
}

/// Removes this node (graceful shutdown): its leases are released so others take them at once,
/// and rows of nodes dead for long are swept.
pub async fn deregister_node(pool: &PgPool, node_id: Uuid) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE workspace_leases SET node_id = NULL WHERE node_id = $1")
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM nodes WHERE id = $1 OR heartbeat_at < NOW() - INTERVAL '1 day'")
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The nodes whose heartbeat is younger than `ttl`, this one included.
pub async fn live_nodes(pool: &PgPool, ttl: Duration) -> Result<Vec<NodeInfo>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT id, addr FROM nodes
         WHERE heartbeat_at > NOW() - make_interval(secs => $1::BIGINT / 1000.0)
         ORDER BY id",
    )
    .bind(ttl_ms(ttl))
    .fetch_all(pool)
    .await?)
}

/// Takes the workspace's lease for `node_id` unless another node with a fresh heartbeat holds it.
/// Taking it (again) always bumps the epoch, which fences every earlier holder, this node's
/// earlier rooms included.
pub async fn acquire_lease(
    pool: &PgPool,
    workspace_id: Uuid,
    node_id: Uuid,
    ttl: Duration,
) -> Result<LeaseOutcome, PersistenceError> {
    // The row lock of ON CONFLICT DO UPDATE orders racing acquirers, and it waits for the
    // FOR SHARE locks of the current holder's writes in flight.
    let acquired: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO workspace_leases AS l (workspace_id, node_id, epoch) VALUES ($1, $2, 1)
         ON CONFLICT (workspace_id) DO UPDATE
           SET node_id = EXCLUDED.node_id, epoch = l.epoch + 1, acquired_at = NOW()
         WHERE l.node_id IS NULL
            OR l.node_id = EXCLUDED.node_id
            OR NOT EXISTS (
                 SELECT 1 FROM nodes n
                 WHERE n.id = l.node_id
                   AND n.heartbeat_at > NOW() - make_interval(secs => $3::BIGINT / 1000.0))
         RETURNING epoch",
    )
    .bind(workspace_id)
    .bind(node_id)
    .bind(ttl_ms(ttl))
    .fetch_optional(pool)
    .await?;
    if let Some((epoch,)) = acquired {
        return Ok(LeaseOutcome::Acquired(Lease {
            workspace_id,
            node_id,
            epoch,
        }));
    }
    let holder: Option<NodeInfo> = sqlx::query_as(
        "SELECT n.id, n.addr FROM workspace_leases l JOIN nodes n ON n.id = l.node_id
         WHERE l.workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?;
    match holder {
        Some(node) => Ok(LeaseOutcome::HeldBy(node)),
        // The holder released or vanished between the two statements: try once more.
        None => Box::pin(acquire_lease(pool, workspace_id, node_id, ttl)).await,
    }
}

/// The live node that owns the workspace, if any (none: whoever loads it first takes it).
pub async fn owner(
    pool: &PgPool,
    workspace_id: Uuid,
    ttl: Duration,
) -> Result<Option<NodeInfo>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT n.id, n.addr FROM workspace_leases l JOIN nodes n ON n.id = l.node_id
         WHERE l.workspace_id = $1
           AND n.heartbeat_at > NOW() - make_interval(secs => $2::BIGINT / 1000.0)",
    )
    .bind(workspace_id)
    .bind(ttl_ms(ttl))
    .fetch_optional(pool)
    .await?)
}

/// Gives the lease up (the room unloaded after its last compaction), if it is still this one.
pub async fn release_lease(pool: &PgPool, lease: &Lease) -> Result<(), PersistenceError> {
    sqlx::query(
        "UPDATE workspace_leases SET node_id = NULL
         WHERE workspace_id = $1 AND node_id = $2 AND epoch = $3",
    )
    .bind(lease.workspace_id)
    .bind(lease.node_id)
    .bind(lease.epoch)
    .execute(pool)
    .await?;
    Ok(())
}

/// Inside a transaction: holds the lease row share-locked until commit, or refuses with
/// [`PersistenceError::Fenced`] when the lease has moved on.
pub async fn fence(conn: &mut PgConnection, lease: &Lease) -> Result<(), PersistenceError> {
    let held: Option<(i64,)> = sqlx::query_as(
        "SELECT epoch FROM workspace_leases
         WHERE workspace_id = $1 AND node_id = $2 AND epoch = $3
         FOR SHARE",
    )
    .bind(lease.workspace_id)
    .bind(lease.node_id)
    .bind(lease.epoch)
    .fetch_optional(&mut *conn)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(PersistenceError::Fenced {
            workspace_id: lease.workspace_id,
            epoch: lease.epoch,
        }),
    }
}

/// Sends a notification to every node listening on `channel` (after the caller's commit).
pub async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<(), PersistenceError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

/// A connection that receives the notifications of `channels`.
pub async fn listen(
    pool: &PgPool,
    channels: &[&str],
) -> Result<sqlx::postgres::PgListener, PersistenceError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}

/// The prefix of a notification whose message is stored in `cluster_messages`.
const STORED_PREFIX: &str = "stored:";

/// Sends a message too large for a NOTIFY payload: stored in a row, announced by its id.
pub async fn notify_stored(
    pool: &PgPool,
    channel: &str,
    payload: &str,
) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM cluster_messages WHERE created_at < NOW() - INTERVAL '5 minutes'")
        .execute(&mut *tx)
        .await?;
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO cluster_messages (payload) VALUES ($1) RETURNING id")
            .bind(payload)
            .fetch_one(&mut *tx)
            .await?;
    // Delivered at commit, so receivers find the row.
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(format!("{STORED_PREFIX}{id}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The stored message a notification points at; `None` when the payload is the message itself.
pub async fn stored_payload(
    pool: &PgPool,
    notification: &str,
) -> Result<Option<String>, PersistenceError> {
    let Some(id) = notification
        .strip_prefix(STORED_PREFIX)
        .and_then(|id| id.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let row: Option<(String,)> =
        sqlx::query_as("SELECT payload FROM cluster_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(|(payload,)| Some(payload))
        .ok_or_else(|| PersistenceError::Invariant(format!("cluster message {id} is gone")))
}

/// The cluster-wide secret `name`: `candidate` when this node is the first to ask, else the value
/// the first node stored. Every node of a cluster ends up with the same one.
pub async fn shared_secret(
    pool: &PgPool,
    name: &str,
    candidate: &str,
) -> Result<String, PersistenceError> {
    sqlx::query(
        "INSERT INTO cluster_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .execute(pool)
    .await?;
    let (value,): (String,) = sqlx::query_as("SELECT value FROM cluster_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(value)
}

/// Replaces this node's report of its open connections per organization.
pub async fn report_connections(
    pool: &PgPool,
    node_id: Uuid,
    per_org: &[(Uuid, i32)],
) -> Result<(), PersistenceError> {
    let orgs: Vec<Uuid> = per_org.iter().map(|(org, _)| *org).collect();
    let counts: Vec<i32> = per_org.iter().map(|(_, n)| *n).collect();
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM node_connections WHERE node_id = $1")
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO node_connections (node_id, org_id, connections)
         SELECT $1, o, n FROM UNNEST($2::UUID[], $3::INTEGER[]) AS t(o, n)",
    )
    .bind(node_id)
    .bind(&orgs)
    .bind(&counts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The organization's open connections on the other live nodes, as they last reported them.
pub async fn connections_elsewhere(
    pool: &PgPool,
    org_id: Uuid,
    node_id: Uuid,
    ttl: Duration,
) -> Result<i64, PersistenceError> {
    let (total,): (Option<i64>,) = sqlx::query_as(
        "SELECT SUM(c.connections)::BIGINT FROM node_connections c JOIN nodes n ON n.id = c.node_id
         WHERE c.org_id = $1 AND c.node_id <> $2
           AND n.heartbeat_at > NOW() - make_interval(secs => $3::BIGINT / 1000.0)",
    )
    .bind(org_id)
    .bind(node_id)
    .bind(ttl_ms(ttl))
    .fetch_one(pool)
    .await?;
    Ok(total.unwrap_or(0))
}
