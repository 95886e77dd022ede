//! How a [`CanvasState`] becomes `core_blocks` / `core_relations` / `block_invader_usages` rows
//! (DESIGN §4).
//!
//! The CRDT can converge to states the tables forbid. [`project`] resolves each of them
//! deterministically (the same state always gives the same rows, whatever order edits arrived in),
//! never fails as a whole, and reports every case as a [`ProjectionConflict`]. Nothing is ever
//! removed from the doc: fixing the doc fixes the rows at the next projection.
//!
//! Choices made where the design leaves room:
//! - Ids are UUIDs in the 36-character hyphenated form, any case. If two doc keys spell the same
//!   UUID (`ABC…` and `abc…`), the canonical lowercase key wins, else the smallest key; the other is
//!   an `InvalidId` conflict.
//! - A missing (or null) `name` is projected as `""`: the column only needs NOT NULL. A missing
//!   `config` / `visual` / `rules` is `{}`.
//! - A null `parent_block_id`, `origin_asset_id` or `created_by_id` is a plain NULL, not a conflict.
//! - Strings containing U+0000 are refused as `InvalidValue`: PostgreSQL cannot store them in TEXT
//!   or JSONB, and one such value would make the whole compaction transaction fail.
//! - A parent cycle is broken at the block with the smallest id in the cycle (its parent becomes
//!   NULL): a property of the cycle alone, so independent of traversal order.

use std::collections::{hash_map::Entry, BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use uuid::Uuid;

use crate::canvas::{BlockEntry, CanvasState, RelationEntry};

/// `core_blocks.type` / `core_relations.type` are VARCHAR(50).
pub const MAX_TYPE_CHARS: usize = 50;
/// `core_blocks.name` is VARCHAR(255).
pub const MAX_NAME_CHARS: usize = 255;
/// `block_invader_usages.applied_version` is VARCHAR(20).
pub const MAX_VERSION_CHARS: usize = 20;

/// A `core_blocks` row (always live: removed blocks are simply absent from a [`Projection`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRow {
    pub id: Uuid,
    pub parent_block_id: Option<Uuid>,
    pub origin_asset_id: Option<Uuid>,
    pub block_type: String,
    pub name: String,
    pub config: Value,
    pub visual: Value,
    pub created_by_id: Option<Uuid>,
}

/// A `core_relations` row; `deleted` rows are kept so the row can say why it is not live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationRow {
    pub id: Uuid,
    pub source_block_id: Uuid,
    pub target_block_id: Uuid,
    pub relation_type: String,
    pub rules: Value,
    pub visual: Value,
    pub deleted: bool,
}

/// A `block_invader_usages` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvaderUsageRow {
    pub block_id: Uuid,
    pub invader_asset_id: Uuid,
    pub applied_version: Option<String>,
    pub config_snapshot: Option<Value>,
}

/// What changed between two projections: only this is written. Every vector is sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectionDiff {
    pub upsert_blocks: Vec<BlockRow>,
    pub soft_delete_blocks: Vec<Uuid>,
    pub upsert_relations: Vec<RelationRow>,
    pub soft_delete_relations: Vec<Uuid>,
    pub upsert_usages: Vec<InvaderUsageRow>,
    pub delete_usages: Vec<(Uuid, Uuid)>,
}

impl ProjectionDiff {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upsert_blocks.is_empty()
            && self.soft_delete_blocks.is_empty()
            && self.upsert_relations.is_empty()
            && self.soft_delete_relations.is_empty()
            && self.upsert_usages.is_empty()
            && self.delete_usages.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Block,
    Relation,
    InvaderUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The doc key is not a UUID (or another key already spells the same UUID). Skipped.
    InvalidId,
    /// The type is missing, not a string, or empty. Skipped.
    MissingType,
    /// A value violates its column. Skipped.
    InvalidValue,
    /// The id is a row of another workspace. Skipped.
    ForeignId,
    /// An endpoint is not a live block. Projected deleted, or skipped if no row can hold it.
    DanglingRelation,
    /// Another live relation with the same (source, target) has a smaller id. Projected deleted.
    DuplicateRelation,
    /// The parent is not a live block of this doc, or is the block itself. Projected NULL.
    BadParent,
    /// The block closes a parent cycle and has the smallest id in it. Its parent is projected NULL.
    ParentCycle,
    /// A user, origin asset or invader asset reference that does not exist. NULL, or usage skipped.
    UnknownReference,
}

impl ConflictKind {
    /// Stable label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidId => "invalid_id",
            Self::MissingType => "missing_type",
            Self::InvalidValue => "invalid_value",
            Self::ForeignId => "foreign_id",
            Self::DanglingRelation => "dangling_relation",
            Self::DuplicateRelation => "duplicate_relation",
            Self::BadParent => "bad_parent",
            Self::ParentCycle => "parent_cycle",
            Self::UnknownReference => "unknown_reference",
        }
    }
}

/// One entity that could not be projected as it is, for admins and metrics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProjectionConflict {
    pub entity: EntityKind,
    /// The raw doc key (for a usage: `blockId/invaderKey`).
    pub id: String,
    pub kind: ConflictKind,
    pub detail: String,
}

/// The rows a canvas state projects to. `conflicts` is sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub blocks: BTreeMap<Uuid, BlockRow>,
    pub relations: BTreeMap<Uuid, RelationRow>,
    pub usages: BTreeMap<(Uuid, Uuid), InvaderUsageRow>,
    pub conflicts: Vec<ProjectionConflict>,
}

/// What the database knows about the ids a state mentions (see [`referenced_ids`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionContext {
    pub known_users: HashSet<Uuid>,
    pub known_origin_assets: HashSet<Uuid>,
    pub known_invader_assets: HashSet<Uuid>,
    /// Block ids whose rows belong to another workspace.
    pub foreign_block_ids: HashSet<Uuid>,
    /// Relation ids whose rows belong to another workspace.
    pub foreign_relation_ids: HashSet<Uuid>,
    /// Block rows of this workspace, live or soft-deleted (a deleted relation may still point at them).
    pub existing_block_rows: HashSet<Uuid>,
}

/// Every syntactically valid UUID a state mentions, grouped by what it should be looked up as.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferencedIds {
    pub users: HashSet<Uuid>,
    pub origin_assets: HashSet<Uuid>,
    pub invader_assets: HashSet<Uuid>,
    /// Block keys, parents and relation endpoints.
    pub block_ids: HashSet<Uuid>,
    pub relation_ids: HashSet<Uuid>,
}

/// The ids to look up in SQL to build the [`ProjectionContext`] for `state`.
pub fn referenced_ids(state: &CanvasState) -> ReferencedIds {
    let mut ids = ReferencedIds::default();
    for (key, block) in &state.blocks {
        ids.block_ids.extend(parse_uuid(key));
        ids.block_ids.extend(parse_ref(&block.parent_block_id));
        ids.users.extend(parse_ref(&block.created_by_id));
        ids.origin_assets.extend(parse_ref(&block.origin_asset_id));
        if let Value::Object(invaders) = &block.invaders {
            ids.invader_assets
                .extend(invaders.keys().filter_map(|k| parse_uuid(k)));
        }
    }
    for (key, relation) in &state.relations {
        ids.relation_ids.extend(parse_uuid(key));
        ids.block_ids.extend(parse_ref(&relation.source_block_id));
        ids.block_ids.extend(parse_ref(&relation.target_block_id));
    }
    ids
}

/// Projects a canvas state to rows. Pure and deterministic; every rule of DESIGN §4 is applied
/// and each deviation is reported in `conflicts`.
pub fn project(state: &CanvasState, ctx: &ProjectionContext) -> Projection {
    let mut conflicts = Conflicts::default();
    let (mut blocks, raw) = project_blocks(state, ctx, &mut conflicts);
    resolve_parents(&mut blocks, &raw, &mut conflicts);
    let usages = project_all_usages(&raw, ctx, &mut conflicts);
    let relations = project_relations(state, ctx, &blocks, &mut conflicts);
    let mut conflicts = conflicts.0;
    conflicts.sort();
    Projection {
        blocks,
        relations,
        usages,
        conflicts,
    }
}

/// Rows to write to go from `previous` to `next`: new or changed rows are upserted (a relation
/// that turns deleted is an upsert with `deleted: true`); live rows that disappeared are
/// soft-deleted; usages that disappeared are deleted.
pub fn diff(previous: &Projection, next: &Projection) -> ProjectionDiff {
    ProjectionDiff {
        upsert_blocks: changed(&previous.blocks, &next.blocks),
        soft_delete_blocks: removed(&previous.blocks, &next.blocks, |_| true),
        upsert_relations: changed(&previous.relations, &next.relations),
        soft_delete_relations: removed(&previous.relations, &next.relations, |r| !r.deleted),
        upsert_usages: changed(&previous.usages, &next.usages),
        delete_usages: removed(&previous.usages, &next.usages, |_| true),
    }
}

/// Conflicts per kind, for metrics.
pub fn conflict_counts(conflicts: &[ProjectionConflict]) -> BTreeMap<ConflictKind, usize> {
    let mut counts = BTreeMap::new();
    for conflict in conflicts {
        *counts.entry(conflict.kind).or_insert(0) += 1;
    }
    counts
}

fn changed<K: Ord, V: PartialEq + Clone>(
    previous: &BTreeMap<K, V>,
    next: &BTreeMap<K, V>,
) -> Vec<V> {
    next.iter()
        .filter(|(key, row)| previous.get(key) != Some(row))
        .map(|(_, row)| row.clone())
        .collect()
}

fn removed<K: Ord + Copy, V>(
    previous: &BTreeMap<K, V>,
    next: &BTreeMap<K, V>,
    was_live: impl Fn(&V) -> bool,
) -> Vec<K> {
    previous
        .iter()
        .filter(|(key, row)| was_live(row) && !next.contains_key(key))
        .map(|(key, _)| *key)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Conflicts and value checks

/// Why one value cannot be projected as it is.
#[derive(Debug, Clone, PartialEq)]
struct Issue {
    kind: ConflictKind,
    detail: String,
}

fn issue(kind: ConflictKind, detail: impl Into<String>) -> Issue {
    Issue {
        kind,
        detail: detail.into(),
    }
}

#[derive(Default)]
struct Conflicts(Vec<ProjectionConflict>);

impl Conflicts {
    fn push(&mut self, entity: EntityKind, id: impl Into<String>, issue: Issue) {
        self.0.push(ProjectionConflict {
            entity,
            id: id.into(),
            kind: issue.kind,
            detail: issue.detail,
        });
    }
}

/// Only the 36-character hyphenated form (any case): other spellings parse too, but would let
/// many doc keys name one row.
fn parse_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

fn parse_ref(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(parse_uuid)
}

/// Short rendering of an offending value for conflict details (values may be huge).
fn describe(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// True if any string or key inside `value` holds U+0000 (iterative: values may be deep).
fn contains_nul(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// A VARCHAR(max) column value.
fn text_column(field: &str, text: &str, max: usize) -> Result<String, Issue> {
    if text.contains('\0') {
        return Err(issue(
            ConflictKind::InvalidValue,
            format!("{field} contains U+0000"),
        ));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(issue(
            ConflictKind::InvalidValue,
            format!("{field} has {chars} characters, more than {max}"),
        ));
    }
    Ok(text.to_owned())
}

/// The required `type` of a block or relation.
fn entity_type(value: &Value) -> Result<String, Issue> {
    match value {
        Value::String(text) if !text.is_empty() => text_column("type", text, MAX_TYPE_CHARS),
        other => Err(issue(
            ConflictKind::MissingType,
            format!("type is {}", describe(other)),
        )),
    }
}

/// A block name: missing is `""` (see module docs).
fn block_name(value: &Value) -> Result<String, Issue> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(text) => text_column("name", text, MAX_NAME_CHARS),
        other => Err(issue(
            ConflictKind::InvalidValue,
            format!("name is not a string: {}", describe(other)),
        )),
    }
}

/// A JSONB object column (`config`, `visual`, `rules`): missing is `{}`.
fn json_object(field: &str, value: &Value) -> Result<Value, Issue> {
    match value {
        Value::Null => Ok(Value::Object(JsonMap::new())),
        Value::Object(_) if contains_nul(value) => Err(issue(
            ConflictKind::InvalidValue,
            format!("{field} contains U+0000"),
        )),
        Value::Object(_) => Ok(value.clone()),
        other => Err(issue(
            ConflictKind::InvalidValue,
            format!("{field} is not an object: {}", describe(other)),
        )),
    }
}

/// A nullable foreign key to a table outside the doc: kept only if it exists, else NULL + issue.
fn known_reference(
    field: &str,
    value: &Value,
    known: &HashSet<Uuid>,
) -> (Option<Uuid>, Option<Issue>) {
    if value.is_null() {
        return (None, None);
    }
    match parse_ref(value) {
        Some(id) if known.contains(&id) => (Some(id), None),
        Some(id) => (
            None,
            Some(issue(
                ConflictKind::UnknownReference,
                format!("{field} {id} does not exist"),
            )),
        ),
        None => (
            None,
            Some(issue(
                ConflictKind::UnknownReference,
                format!("{field} is not a UUID: {}", describe(value)),
            )),
        ),
    }
}

/// Parses the doc keys of one root map into UUIDs, reporting non-UUID keys, second spellings of
/// the same UUID, and ids owned by another workspace.
fn entity_ids<'a, E>(
    entries: &'a BTreeMap<String, E>,
    foreign: &HashSet<Uuid>,
    entity: EntityKind,
    conflicts: &mut Conflicts,
) -> BTreeMap<Uuid, (&'a str, &'a E)> {
    let mut ids: HashMap<Uuid, (&'a str, &'a E)> = HashMap::new();
    for (key, value) in entries {
        let Some(id) = parse_uuid(key) else {
            conflicts.push(
                entity,
                key,
                issue(ConflictKind::InvalidId, "key is not a UUID"),
            );
            continue;
        };
        match ids.entry(id) {
            Entry::Vacant(slot) => {
                slot.insert((key, value));
            }
            Entry::Occupied(mut slot) => {
                // Keys arrive in ascending order: the kept one is the canonical spelling, else the first.
                let loser = if *key == id.to_string() {
                    slot.insert((key, value)).0
                } else {
                    key
                };
                let detail = format!("another key also spells {id}");
                conflicts.push(entity, loser, issue(ConflictKind::InvalidId, detail));
            }
        }
    }
    let mut result = BTreeMap::new();
    for (id, (key, value)) in ids {
        if foreign.contains(&id) {
            let detail = "the id belongs to another workspace";
            conflicts.push(entity, key, issue(ConflictKind::ForeignId, detail));
        } else {
            result.insert(id, (key, value));
        }
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Blocks

/// A projected block with its raw entry, for the steps that need the doc values again.
struct RawBlock<'a> {
    key: &'a str,
    entry: &'a BlockEntry,
}

/// Rules 1 and 2: rows with their own columns checked; parents are resolved afterwards, once the
/// set of projected blocks is known.
fn project_blocks<'a>(
    state: &'a CanvasState,
    ctx: &ProjectionContext,
    conflicts: &mut Conflicts,
) -> (BTreeMap<Uuid, BlockRow>, BTreeMap<Uuid, RawBlock<'a>>) {
    let mut rows = BTreeMap::new();
    let mut raw = BTreeMap::new();
    for (id, (key, entry)) in entity_ids(
        &state.blocks,
        &ctx.foreign_block_ids,
        EntityKind::Block,
        conflicts,
    ) {
        match block_row(id, entry, ctx) {
            Ok((row, issues)) => {
                for found in issues {
                    conflicts.push(EntityKind::Block, key, found);
                }
                rows.insert(id, row);
                raw.insert(id, RawBlock { key, entry });
            }
            Err(found) => conflicts.push(EntityKind::Block, key, found),
        }
    }
    (rows, raw)
}

/// One block's row (parent still NULL) and its non-fatal issues, or the issue that skips it.
fn block_row(
    id: Uuid,
    entry: &BlockEntry,
    ctx: &ProjectionContext,
) -> Result<(BlockRow, Vec<Issue>), Issue> {
    let block_type = entity_type(&entry.block_type)?;
    let name = block_name(&entry.name)?;
    let config = json_object("config", &entry.config)?;
    let visual = json_object("visual", &entry.visual)?;
    let (origin_asset_id, origin_issue) = known_reference(
        "origin_asset_id",
        &entry.origin_asset_id,
        &ctx.known_origin_assets,
    );
    let (created_by_id, creator_issue) =
        known_reference("created_by_id", &entry.created_by_id, &ctx.known_users);
    let row = BlockRow {
        id,
        parent_block_id: None,
        origin_asset_id,
        block_type,
        name,
        config,
        visual,
        created_by_id,
    };
    Ok((row, origin_issue.into_iter().chain(creator_issue).collect()))
}

/// Rule 3: each parent must be another projected block, and parent chains must not loop.
fn resolve_parents(
    blocks: &mut BTreeMap<Uuid, BlockRow>,
    raw: &BTreeMap<Uuid, RawBlock<'_>>,
    conflicts: &mut Conflicts,
) {
    let mut parents = BTreeMap::new();
    for (id, block) in raw {
        let parent = match valid_parent(*id, &block.entry.parent_block_id, blocks) {
            Ok(parent) => parent,
            Err(found) => {
                conflicts.push(EntityKind::Block, block.key, found);
                None
            }
        };
        parents.insert(*id, parent);
    }
    for (broken, cycle) in cycle_breaks(&parents) {
        parents.insert(broken, None);
        let members: Vec<String> = cycle.iter().map(Uuid::to_string).collect();
        let detail = format!("parent cycle {}; parent set to NULL", members.join(" → "));
        let key = raw
            .get(&broken)
            .map_or_else(|| broken.to_string(), |b| b.key.to_owned());
        conflicts.push(
            EntityKind::Block,
            key,
            issue(ConflictKind::ParentCycle, detail),
        );
    }
    for (id, parent) in parents {
        if let Some(row) = blocks.get_mut(&id) {
            row.parent_block_id = parent;
        }
    }
}

/// A parent that is absent/null is a root block; anything else must name another projected block.
fn valid_parent(
    id: Uuid,
    value: &Value,
    blocks: &BTreeMap<Uuid, BlockRow>,
) -> Result<Option<Uuid>, Issue> {
    if value.is_null() {
        return Ok(None);
    }
    let Some(parent) = parse_ref(value) else {
        let detail = format!("parent_block_id is not a UUID: {}", describe(value));
        return Err(issue(ConflictKind::BadParent, detail));
    };
    if parent == id {
        return Err(issue(ConflictKind::BadParent, "block is its own parent"));
    }
    if !blocks.contains_key(&parent) {
        let detail = format!("parent {parent} is not a live block of this workspace");
        return Err(issue(ConflictKind::BadParent, detail));
    }
    Ok(Some(parent))
}

#[derive(Clone, Copy)]
enum Visit {
    /// On the path being walked, at this index.
    OnPath(usize),
    Done,
}

/// Finds every parent cycle and returns, per cycle, the block whose parent link is cut (the
/// smallest id of the cycle) and the cycle itself starting from it. Iterative and O(n): each
/// block has at most one parent, so every walk ends at a root, a visited block, or a new cycle.
fn cycle_breaks(parents: &BTreeMap<Uuid, Option<Uuid>>) -> Vec<(Uuid, Vec<Uuid>)> {
    let mut visits: HashMap<Uuid, Visit> = HashMap::with_capacity(parents.len());
    let mut breaks = Vec::new();
    for &start in parents.keys() {
        let mut path = Vec::new();
        let mut cursor = Some(start);
        while let Some(node) = cursor {
            match visits.get(&node) {
                Some(Visit::Done) => break,
                Some(Visit::OnPath(index)) => {
                    breaks.push(cut_cycle(&path[*index..]));
                    break;
                }
                None => {
                    visits.insert(node, Visit::OnPath(path.len()));
                    path.push(node);
                    cursor = parents.get(&node).copied().flatten();
                }
            }
        }
        for node in path {
            visits.insert(node, Visit::Done);
        }
    }
    breaks.sort();
    breaks
}

/// The smallest id of a cycle (child → parent order), and the cycle rotated to start there.
fn cut_cycle(cycle: &[Uuid]) -> (Uuid, Vec<Uuid>) {
    let start = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, id)| **id)
        .map_or(0, |(index, _)| index);
    let rotated: Vec<Uuid> = cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect();
    (rotated[0], rotated)
}

// ---------------------------------------------------------------------------------------------
// Invader usages

/// Rule 6 for every projected block.
fn project_all_usages(
    raw: &BTreeMap<Uuid, RawBlock<'_>>,
    ctx: &ProjectionContext,
    conflicts: &mut Conflicts,
) -> BTreeMap<(Uuid, Uuid), InvaderUsageRow> {
    let mut usages = BTreeMap::new();
    for (block_id, block) in raw {
        for usage in project_usages(*block_id, block, ctx, conflicts) {
            usages.insert((usage.block_id, usage.invader_asset_id), usage);
        }
    }
    usages
}

fn project_usages(
    block_id: Uuid,
    block: &RawBlock<'_>,
    ctx: &ProjectionContext,
    conflicts: &mut Conflicts,
) -> Vec<InvaderUsageRow> {
    let invaders = match &block.entry.invaders {
        Value::Null => return Vec::new(),
        Value::Object(invaders) => invaders,
        other => {
            let detail = format!("invaders is not an object: {}", describe(other));
            conflicts.push(
                EntityKind::InvaderUsage,
                block.key,
                issue(ConflictKind::InvalidValue, detail),
            );
            return Vec::new();
        }
    };
    let mut rows = Vec::new();
    for (key, value) in invaders {
        match usage_row(block_id, key, value, ctx) {
            Ok(row) => rows.push(row),
            Err(found) => conflicts.push(
                EntityKind::InvaderUsage,
                format!("{}/{key}", block.key),
                found,
            ),
        }
    }
    rows
}

/// One `invaders` entry: `invaderAssetId → {applied_version, config_snapshot}`.
fn usage_row(
    block_id: Uuid,
    key: &str,
    value: &Value,
    ctx: &ProjectionContext,
) -> Result<InvaderUsageRow, Issue> {
    let Some(invader_asset_id) = parse_uuid(key) else {
        return Err(issue(
            ConflictKind::UnknownReference,
            "invader asset key is not a UUID",
        ));
    };
    if !ctx.known_invader_assets.contains(&invader_asset_id) {
        let detail = format!("invader asset {invader_asset_id} does not exist");
        return Err(issue(ConflictKind::UnknownReference, detail));
    }
    let Value::Object(fields) = value else {
        let detail = format!("usage is not an object: {}", describe(value));
        return Err(issue(ConflictKind::InvalidValue, detail));
    };
    let applied_version = match fields.get("applied_version").unwrap_or(&Value::Null) {
        Value::Null => None,
        Value::String(text) => Some(text_column("applied_version", text, MAX_VERSION_CHARS)?),
        other => {
            let detail = format!("applied_version is not a string: {}", describe(other));
            return Err(issue(ConflictKind::InvalidValue, detail));
        }
    };
    let config_snapshot = match fields.get("config_snapshot").unwrap_or(&Value::Null) {
        Value::Null => None,
        snapshot if contains_nul(snapshot) => {
            return Err(issue(
                ConflictKind::InvalidValue,
                "config_snapshot contains U+0000",
            ));
        }
        snapshot => Some(snapshot.clone()),
    };
    Ok(InvaderUsageRow {
        block_id,
        invader_asset_id,
        applied_version,
        config_snapshot,
    })
}

// ---------------------------------------------------------------------------------------------
// Relations

/// Rules 4 and 5.
fn project_relations(
    state: &CanvasState,
    ctx: &ProjectionContext,
    blocks: &BTreeMap<Uuid, BlockRow>,
    conflicts: &mut Conflicts,
) -> BTreeMap<Uuid, RelationRow> {
    let mut rows = BTreeMap::new();
    let mut keys = HashMap::new();
    let ids = entity_ids(
        &state.relations,
        &ctx.foreign_relation_ids,
        EntityKind::Relation,
        conflicts,
    );
    for (id, (key, entry)) in ids {
        match relation_row(id, entry, ctx, blocks) {
            Ok((row, dangling)) => {
                if let Some(found) = dangling {
                    conflicts.push(EntityKind::Relation, key, found);
                }
                rows.insert(id, row);
                keys.insert(id, key);
            }
            Err(found) => conflicts.push(EntityKind::Relation, key, found),
        }
    }
    mark_duplicates(&mut rows, &keys, conflicts);
    rows
}

/// A relation row (maybe deleted) with its dangling issue, or the issue that skips it.
fn relation_row(
    id: Uuid,
    entry: &RelationEntry,
    ctx: &ProjectionContext,
    blocks: &BTreeMap<Uuid, BlockRow>,
) -> Result<(RelationRow, Option<Issue>), Issue> {
    let relation_type = entity_type(&entry.relation_type)?;
    let rules = json_object("rules", &entry.rules)?;
    let visual = json_object("visual", &entry.visual)?;
    let (source_block_id, target_block_id, dangling) = endpoints(entry, ctx, blocks)?;
    let row = RelationRow {
        id,
        source_block_id,
        target_block_id,
        relation_type,
        rules,
        visual,
        deleted: dangling.is_some(),
    };
    Ok((row, dangling))
}

/// Both endpoints live → live relation. Otherwise it dangles: projected deleted if both endpoint
/// rows exist (the foreign keys need them), else skipped.
fn endpoints(
    entry: &RelationEntry,
    ctx: &ProjectionContext,
    blocks: &BTreeMap<Uuid, BlockRow>,
) -> Result<(Uuid, Uuid, Option<Issue>), Issue> {
    let source = parse_ref(&entry.source_block_id);
    let target = parse_ref(&entry.target_block_id);
    let live = |id: Option<Uuid>| id.is_some_and(|id| blocks.contains_key(&id));
    let row_exists = |id: &Uuid| {
        blocks.contains_key(id)
            || (ctx.existing_block_rows.contains(id) && !ctx.foreign_block_ids.contains(id))
    };
    let detail = format!(
        "source {} / target {}: not both live blocks",
        describe(&entry.source_block_id),
        describe(&entry.target_block_id)
    );
    match (source, target) {
        (Some(s), Some(t)) if live(source) && live(target) => Ok((s, t, None)),
        (Some(s), Some(t)) if row_exists(&s) && row_exists(&t) => {
            Ok((s, t, Some(issue(ConflictKind::DanglingRelation, detail))))
        }
        _ => Err(issue(
            ConflictKind::DanglingRelation,
            format!("{detail}; skipped (no row to point at)"),
        )),
    }
}

/// Rule 5: among live relations with one (source, target), the smallest id stays live.
fn mark_duplicates(
    rows: &mut BTreeMap<Uuid, RelationRow>,
    keys: &HashMap<Uuid, &str>,
    conflicts: &mut Conflicts,
) {
    let mut kept: HashMap<(Uuid, Uuid), Uuid> = HashMap::new();
    for (id, row) in rows.iter_mut().filter(|(_, row)| !row.deleted) {
        match kept.entry((row.source_block_id, row.target_block_id)) {
            Entry::Vacant(slot) => {
                slot.insert(*id);
            }
            Entry::Occupied(slot) => {
                row.deleted = true;
                let key = keys
                    .get(id)
                    .map_or_else(|| id.to_string(), |k| (*k).to_owned());
                let detail = format!("duplicate of live relation {}", slot.get());
                conflicts.push(
                    EntityKind::Relation,
                    key,
                    issue(ConflictKind::DuplicateRelation, detail),
                );
            }
        }
    }
}
