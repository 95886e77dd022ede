//! Reading the relational projection back: what was last projected (the base of the next diff),
//! the facts the projection needs from other tables (which ids exist, and where), and the rows of
//! imported workspaces that have no document yet.

use std::collections::HashSet;

use nox_sync_protocol::projection::{
    BlockRow, InvaderUsageRow, Projection, ProjectionContext, ReferencedIds, RelationRow,
};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::PersistenceError;

type BlockTuple = (
    Uuid,
    Option<Uuid>,
    Option<Uuid>,
    String,
    String,
    Value,
    Value,
    Option<Uuid>,
);
type RelationTuple = (Uuid, Uuid, Uuid, String, Value, Value, bool);
type UsageTuple = (Uuid, Uuid, Option<String>, Option<Value>);

/// The workspace's projected rows: live blocks, every relation row (deleted ones flagged), and the
/// usages of live blocks. This is "what was last projected" when a room compacts for the first time.
pub async fn load_projection(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Projection, PersistenceError> {
    let blocks = load_blocks(pool, workspace_id).await?;
    let relations = load_relations(pool, workspace_id).await?;
    let usages = load_usages(pool, workspace_id).await?;
    Ok(Projection {
        blocks: blocks.into_iter().map(|b| (b.id, b)).collect(),
        relations: relations.into_iter().map(|r| (r.id, r)).collect(),
        usages: usages
            .into_iter()
            .map(|u| ((u.block_id, u.invader_asset_id), u))
            .collect(),
        conflicts: Vec::new(),
    })
}

/// Rows of a workspace that has no document (imported data): live blocks, live relations, usages.
pub async fn load_rows(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<(Vec<BlockRow>, Vec<RelationRow>, Vec<InvaderUsageRow>), PersistenceError> {
    let blocks = load_blocks(pool, workspace_id).await?;
    let relations = load_relations(pool, workspace_id)
        .await?
        .into_iter()
        .filter(|r| !r.deleted)
        .collect();
    let usages = load_usages(pool, workspace_id).await?;
    Ok((blocks, relations, usages))
}

async fn load_blocks(pool: &PgPool, workspace_id: Uuid) -> Result<Vec<BlockRow>, PersistenceError> {
    let rows: Vec<BlockTuple> = sqlx::query_as(
        "SELECT id, parent_block_id, origin_asset_id, type, name, config, visual, created_by_id
         FROM core_blocks WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                parent_block_id,
                origin_asset_id,
                block_type,
                name,
                config,
                visual,
                created_by_id,
            )| {
                BlockRow {
                    id,
                    parent_block_id,
                    origin_asset_id,
                    block_type,
                    name,
                    config,
                    visual,
                    created_by_id,
                }
            },
        )
        .collect())
}

async fn load_relations(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Vec<RelationRow>, PersistenceError> {
    let rows: Vec<RelationTuple> = sqlx::query_as(
        "SELECT id, source_block_id, target_block_id, type, rules, visual, deleted_at IS NOT NULL
         FROM core_relations WHERE workspace_id = $1 ORDER BY id",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, source_block_id, target_block_id, relation_type, rules, visual, deleted)| {
                RelationRow {
                    id,
                    source_block_id,
                    target_block_id,
                    relation_type,
                    rules,
                    visual,
                    deleted,
                }
            },
        )
        .collect())
}

async fn load_usages(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Vec<InvaderUsageRow>, PersistenceError> {
    let rows: Vec<UsageTuple> = sqlx::query_as(
        "SELECT u.block_id, u.invader_asset_id, u.applied_version, u.config_snapshot
         FROM block_invader_usages u JOIN core_blocks b ON b.id = u.block_id
         WHERE b.workspace_id = $1 AND b.deleted_at IS NULL ORDER BY 1, 2",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(block_id, invader_asset_id, applied_version, config_snapshot)| InvaderUsageRow {
                block_id,
                invader_asset_id,
                applied_version,
                config_snapshot,
            },
        )
        .collect())
}

/// Looks up, in one round trip per table, which of the ids a document mentions exist and where: the
/// projection nulls references the foreign keys would reject and skips ids owned by another
/// workspace (a client-chosen id must never reach another tenant's row).
pub async fn load_context(
    pool: &PgPool,
    workspace_id: Uuid,
    ids: &ReferencedIds,
) -> Result<ProjectionContext, PersistenceError> {
    let users = existing(pool, "SELECT id FROM users WHERE id = ANY($1)", &ids.users).await?;
    let origin_assets = existing_in_org(
        pool,
        ORIGIN_TEMPLATES_OF_ORG,
        &ids.origin_assets,
        workspace_id,
    )
    .await?;
    let invader_assets =
        existing_in_org(pool, INVADERS_OF_ORG, &ids.invader_assets, workspace_id).await?;
    let (foreign_block_ids, existing_block_rows) = split_by_workspace(
        pool,
        CanvasTable::Blocks.name(),
        workspace_id,
        &ids.block_ids,
    )
    .await?;
    let (foreign_relation_ids, _) = split_by_workspace(
        pool,
        CanvasTable::Relations.name(),
        workspace_id,
        &ids.relation_ids,
    )
    .await?;
    Ok(ProjectionContext {
        known_users: users,
        known_origin_assets: origin_assets,
        known_invader_assets: invader_assets,
        foreign_block_ids,
        foreign_relation_ids,
        existing_block_rows,
    })
}

/// Which table of canvas rows an id is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanvasTable {
    Blocks,
    Relations,
}

impl CanvasTable {
    fn name(self) -> &'static str {
        match self {
            CanvasTable::Blocks => "core_blocks",
            CanvasTable::Relations => "core_relations",
        }
    }
}

/// Whether `id` is a row (live or soft-deleted) of another workspace than `workspace_id`: such an
/// id can never be projected here, and must not be confirmed to exist by any answer.
pub async fn is_used_elsewhere(
    pool: &PgPool,
    table: CanvasTable,
    workspace_id: Uuid,
    id: Uuid,
) -> Result<bool, PersistenceError> {
    let (foreign, _) =
        split_by_workspace(pool, table.name(), workspace_id, &HashSet::from([id])).await?;
    Ok(foreign.contains(&id))
}

/// Templates a block of workspace `$2` may name as `origin_asset_id`: those of its own
/// organization's warehouses (soft-deleted or not: the row exists and the block was made from it).
/// Another organization's template counts as unknown (docs/design.md §17).
const ORIGIN_TEMPLATES_OF_ORG: &str =
    "SELECT t.id FROM assets_block_templates t JOIN warehouses w ON w.id = t.warehouse_id
     WHERE t.id = ANY($1) AND w.owner_type = 'ORG' AND w.owner_id =
       (SELECT p.org_id FROM workspaces ws JOIN projects p ON p.id = ws.project_id WHERE ws.id = $2)";

/// Invader definitions a block of workspace `$2` may carry: live definitions in a live warehouse
/// of its own organization. Another organization's (or a deleted) definition counts as unknown.
const INVADERS_OF_ORG: &str =
    "SELECT d.id FROM assets_invader_definitions d JOIN warehouses w ON w.id = d.warehouse_id
     WHERE d.id = ANY($1) AND d.deleted_at IS NULL AND w.deleted_at IS NULL
       AND w.owner_type = 'ORG' AND w.owner_id =
       (SELECT p.org_id FROM workspaces ws JOIN projects p ON p.id = ws.project_id WHERE ws.id = $2)";

/// Of `ids`, those `sql` finds for workspace `$2`.
async fn existing_in_org(
    pool: &PgPool,
    sql: &'static str,
    ids: &HashSet<Uuid>,
    workspace_id: Uuid,
) -> Result<HashSet<Uuid>, PersistenceError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    let found: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(&ids)
        .bind(workspace_id)
        .fetch_all(pool)
        .await?;
    Ok(found.into_iter().collect())
}

async fn existing(
    pool: &PgPool,
    sql: &'static str,
    ids: &HashSet<Uuid>,
) -> Result<HashSet<Uuid>, PersistenceError> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    let found: Vec<Uuid> = sqlx::query_scalar(sql).bind(&ids).fetch_all(pool).await?;
    Ok(found.into_iter().collect())
}

/// `(ids owned by another workspace, ids that are rows of this workspace)`.
async fn split_by_workspace(
    pool: &PgPool,
    table: &'static str,
    workspace_id: Uuid,
    ids: &HashSet<Uuid>,
) -> Result<(HashSet<Uuid>, HashSet<Uuid>), PersistenceError> {
    if ids.is_empty() {
        return Ok((HashSet::new(), HashSet::new()));
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    let rows: Vec<(Uuid, bool)> = sqlx::query_as(&format!(
        "SELECT id, workspace_id = $2 FROM {table} WHERE id = ANY($1)"
    ))
    .bind(&ids)
    .bind(workspace_id)
    .fetch_all(pool)
    .await?;
    let (own, foreign): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, own)| *own);
    Ok((
        foreign.into_iter().map(|(id, _)| id).collect(),
        own.into_iter().map(|(id, _)| id).collect(),
    ))
}

/// What the last compaction reported about entities it could not project as they are.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectionStatus {
    pub projected_at: chrono::DateTime<chrono::Utc>,
    pub conflict_count: i32,
    pub conflicts: Value,
}

pub async fn status(
    pool: &PgPool,
    workspace_id: Uuid,
) -> Result<Option<ProjectionStatus>, PersistenceError> {
    Ok(sqlx::query_as(
        "SELECT projected_at, conflict_count, conflicts FROM workspace_projection_status
         WHERE workspace_id = $1",
    )
    .bind(workspace_id)
    .fetch_optional(pool)
    .await?)
}
