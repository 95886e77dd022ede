//! Compaction: fold the log into a snapshot and bring the relational projection up to date, all in
//! **one transaction**, so a crash at any instant leaves `snapshot + log` = every accepted update
//! and rows that match some state of the document.

use nox_sync_protocol::projection::{
    BlockRow, InvaderUsageRow, ProjectionConflict, ProjectionDiff, RelationRow,
};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cluster::{self, Lease};
use crate::error::PersistenceError;

/// Everything one compaction writes.
pub struct Compaction<'a> {
    /// The room's lease: a compaction of a stale owner is refused (docs/design.md §7).
    pub lease: &'a Lease,
    pub workspace_id: Uuid,
    /// The full document state (a v1 update from the empty state vector).
    pub state: &'a [u8],
    pub state_vector: &'a [u8],
    /// The highest log seq the state includes; log entries up to it are deleted.
    pub covers_seq: i64,
    pub diff: &'a ProjectionDiff,
    /// Entities that could not be projected as they are, for admins.
    pub conflicts: &'a [ProjectionConflict],
}

pub async fn compact(pool: &PgPool, c: Compaction<'_>) -> Result<(), PersistenceError> {
    let mut tx = pool.begin().await?;
    cluster::fence(&mut tx, c.lease).await?;
    sqlx::query(
        "INSERT INTO workspace_snapshots (workspace_id, state, state_vector, covers_seq)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id) DO UPDATE
           SET state = EXCLUDED.state, state_vector = EXCLUDED.state_vector,
               covers_seq = EXCLUDED.covers_seq, updated_at = NOW()
         WHERE workspace_snapshots.covers_seq <= EXCLUDED.covers_seq",
    )
    .bind(c.workspace_id)
    .bind(c.state)
    .bind(c.state_vector)
    .bind(c.covers_seq)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM workspace_update_log WHERE workspace_id = $1 AND seq <= $2")
        .bind(c.workspace_id)
        .bind(c.covers_seq)
        .execute(&mut *tx)
        .await?;
    apply_projection_diff(&mut tx, c.workspace_id, c.diff).await?;
    record_conflicts(&mut tx, c.workspace_id, c.conflicts).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes only what changed. Order matters for the constraints: blocks before the relations and
/// usages that reference them, and relations that become deleted before the ones that become live
/// (the live `(source, target)` pair is unique).
pub async fn apply_projection_diff(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    diff: &ProjectionDiff,
) -> Result<(), PersistenceError> {
    upsert_blocks(conn, workspace_id, &diff.upsert_blocks).await?;
    let (dead, live): (Vec<&RelationRow>, Vec<&RelationRow>) =
        diff.upsert_relations.iter().partition(|r| r.deleted);
    soft_delete(
        conn,
        "core_relations",
        workspace_id,
        &diff.soft_delete_relations,
    )
    .await?;
    upsert_relations(conn, workspace_id, &dead).await?;
    upsert_relations(conn, workspace_id, &live).await?;
    delete_usages(conn, workspace_id, &diff.delete_usages).await?;
    upsert_usages(conn, workspace_id, &diff.upsert_usages).await?;
    // Blocks last: a relation to a removed block is already projected as deleted above.
    soft_delete(conn, "core_blocks", workspace_id, &diff.soft_delete_blocks).await?;
    Ok(())
}

async fn upsert_blocks(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    rows: &[BlockRow],
) -> Result<(), PersistenceError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let parents: Vec<Option<Uuid>> = rows.iter().map(|r| r.parent_block_id).collect();
    let origins: Vec<Option<Uuid>> = rows.iter().map(|r| r.origin_asset_id).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.block_type.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let configs: Vec<&Value> = rows.iter().map(|r| &r.config).collect();
    let visuals: Vec<&Value> = rows.iter().map(|r| &r.visual).collect();
    let creators: Vec<Option<Uuid>> = rows.iter().map(|r| r.created_by_id).collect();
    // The WHERE on the conflict arm is the tenancy guard: a client-chosen id that already belongs
    // to another workspace never overwrites that workspace's row.
    sqlx::query(
        "INSERT INTO core_blocks AS b
           (id, workspace_id, parent_block_id, origin_asset_id, type, name, config, visual, created_by_id)
         SELECT id, $1, parent, origin, ty, nm, cfg, vis, creator
         FROM UNNEST($2::UUID[], $3::UUID[], $4::UUID[], $5::TEXT[], $6::TEXT[], $7::JSONB[], $8::JSONB[], $9::UUID[])
              AS t(id, parent, origin, ty, nm, cfg, vis, creator)
         ON CONFLICT (id) DO UPDATE SET
           parent_block_id = EXCLUDED.parent_block_id, origin_asset_id = EXCLUDED.origin_asset_id,
           type = EXCLUDED.type, name = EXCLUDED.name, config = EXCLUDED.config,
           visual = EXCLUDED.visual, created_by_id = EXCLUDED.created_by_id,
           updated_at = NOW(), deleted_at = NULL
         WHERE b.workspace_id = EXCLUDED.workspace_id",
    )
    .bind(workspace_id)
    .bind(&ids)
    .bind(&parents)
    .bind(&origins)
    .bind(&types)
    .bind(&names)
    .bind(&configs)
    .bind(&visuals)
    .bind(&creators)
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_relations(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    rows: &[&RelationRow],
) -> Result<(), PersistenceError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let sources: Vec<Uuid> = rows.iter().map(|r| r.source_block_id).collect();
    let targets: Vec<Uuid> = rows.iter().map(|r| r.target_block_id).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.relation_type.as_str()).collect();
    let rules: Vec<&Value> = rows.iter().map(|r| &r.rules).collect();
    let visuals: Vec<&Value> = rows.iter().map(|r| &r.visual).collect();
    let deleted: Vec<bool> = rows.iter().map(|r| r.deleted).collect();
    sqlx::query(
        "INSERT INTO core_relations AS r
           (id, workspace_id, source_block_id, target_block_id, type, rules, visual, deleted_at)
         SELECT id, $1, src, tgt, ty, rl, vis, CASE WHEN del THEN NOW() END
         FROM UNNEST($2::UUID[], $3::UUID[], $4::UUID[], $5::TEXT[], $6::JSONB[], $7::JSONB[], $8::BOOL[])
              AS t(id, src, tgt, ty, rl, vis, del)
         ON CONFLICT (id) DO UPDATE SET
           source_block_id = EXCLUDED.source_block_id, target_block_id = EXCLUDED.target_block_id,
           type = EXCLUDED.type, rules = EXCLUDED.rules, visual = EXCLUDED.visual,
           deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL
                             ELSE COALESCE(r.deleted_at, EXCLUDED.deleted_at) END
         WHERE r.workspace_id = EXCLUDED.workspace_id",
    )
    .bind(workspace_id)
    .bind(&ids)
    .bind(&sources)
    .bind(&targets)
    .bind(&types)
    .bind(&rules)
    .bind(&visuals)
    .bind(&deleted)
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_usages(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    rows: &[InvaderUsageRow],
) -> Result<(), PersistenceError> {
    if rows.is_empty() {
        return Ok(());
    }
    let blocks: Vec<Uuid> = rows.iter().map(|r| r.block_id).collect();
    let assets: Vec<Uuid> = rows.iter().map(|r| r.invader_asset_id).collect();
    let versions: Vec<Option<&str>> = rows.iter().map(|r| r.applied_version.as_deref()).collect();
    let snapshots: Vec<Option<&Value>> = rows.iter().map(|r| r.config_snapshot.as_ref()).collect();
    // Only usages of this workspace's blocks: the join is the tenancy guard.
    sqlx::query(
        "INSERT INTO block_invader_usages (block_id, invader_asset_id, applied_version, config_snapshot)
         SELECT t.blk, t.asset, t.ver, t.snap
         FROM UNNEST($2::UUID[], $3::UUID[], $4::TEXT[], $5::JSONB[]) AS t(blk, asset, ver, snap)
         JOIN core_blocks b ON b.id = t.blk AND b.workspace_id = $1
         ON CONFLICT (block_id, invader_asset_id) DO UPDATE SET
           applied_version = EXCLUDED.applied_version, config_snapshot = EXCLUDED.config_snapshot",
    )
    .bind(workspace_id)
    .bind(&blocks)
    .bind(&assets)
    .bind(&versions)
    .bind(&snapshots)
    .execute(conn)
    .await?;
    Ok(())
}

async fn delete_usages(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    keys: &[(Uuid, Uuid)],
) -> Result<(), PersistenceError> {
    if keys.is_empty() {
        return Ok(());
    }
    let blocks: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let assets: Vec<Uuid> = keys.iter().map(|k| k.1).collect();
    sqlx::query(
        "DELETE FROM block_invader_usages u
         USING UNNEST($2::UUID[], $3::UUID[]) AS t(blk, asset), core_blocks b
         WHERE u.block_id = t.blk AND u.invader_asset_id = t.asset
           AND b.id = u.block_id AND b.workspace_id = $1",
    )
    .bind(workspace_id)
    .bind(&blocks)
    .bind(&assets)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks rows deleted (keeps them: the doc is the source of truth and may bring them back).
async fn soft_delete(
    conn: &mut PgConnection,
    table: &'static str,
    workspace_id: Uuid,
    ids: &[Uuid],
) -> Result<(), PersistenceError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "UPDATE {table} SET deleted_at = NOW()
         WHERE workspace_id = $1 AND id = ANY($2) AND deleted_at IS NULL"
    ))
    .bind(workspace_id)
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

async fn record_conflicts(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    conflicts: &[ProjectionConflict],
) -> Result<(), PersistenceError> {
    let list =
        serde_json::to_value(conflicts).map_err(|e| PersistenceError::Invariant(e.to_string()))?;
    sqlx::query(
        "INSERT INTO workspace_projection_status (workspace_id, projected_at, conflict_count, conflicts)
         VALUES ($1, NOW(), $2, $3)
         ON CONFLICT (workspace_id) DO UPDATE
           SET projected_at = NOW(), conflict_count = EXCLUDED.conflict_count, conflicts = EXCLUDED.conflicts",
    )
    .bind(workspace_id)
    .bind(conflicts.len() as i32)
    .bind(list)
    .execute(conn)
    .await?;
    Ok(())
}
