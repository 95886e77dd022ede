//! How a [`CanvasState`] becomes `core_blocks` / `core_relations` / `block_invader_usages` rows
//! (DESIGN §4).
//!
//! The CRDT can converge to states the tables forbid. [`project`] resolves each of them
//! deterministically (the same state always gives the same rows, whatever order edits arrived in),
//! never fails as a whole, and reports every case as a [`ProjectionConflict`]. Nothing is ever
//! removed from the doc: fixing the doc fixes the rows at the next projection.
//!
//! Choices made where the design leaves room:
//! - Ids are UUIDs in the 36-character hyphenated form, any case ([`rules::parse_id`]). If two doc
//!   keys spell the same UUID (`ABC…` and `abc…`), the canonical lowercase key wins, else the
//!   smallest key; the other is an `InvalidId` conflict.
//! - Column limits and value checks are those of [`crate::rules`], shared with the HTTP edge: where
//!   the edge refuses, the projection skips or repairs and reports.
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
use crate::rules::{self, parse_id, parse_ref, FieldViolation, Problem};

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
        ids.block_ids.extend(parse_id(key));
        ids.block_ids.extend(parse_ref(&block.parent_block_id));
        ids.users.extend(parse_ref(&block.created_by_id));
        ids.origin_assets.extend(parse_ref(&block.origin_asset_id));
        if let Value::Object(invaders) = &block.invaders {
            ids.invader_assets
                .extend(invaders.keys().filter_map(|k| parse_id(k)));
        }
    }
    for (key, relation) in &state.relations {
        ids.relation_ids.extend(parse_id(key));
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

/// A projection reduced to one fingerprint per row: what a room keeps between compactions to diff
/// the next projection against. Rows with their JSON cost about a kilobyte each in memory; a
/// fingerprint costs 16 bytes (the idle benchmark found cached rows to be ~13 KiB of every loaded
/// 10-block workspace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionDigest {
    blocks: BTreeMap<Uuid, RowDigest>,
    relations: BTreeMap<Uuid, RowDigest>,
    usages: BTreeMap<(Uuid, Uuid), RowDigest>,
    conflict_counts: BTreeMap<ConflictKind, usize>,
}

/// A row's fingerprint (128 bits: a collision would hide one change until the row changes again)
/// and whether it is live (relations stay as deleted rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowDigest {
    fingerprint: u128,
    live: bool,
}

impl ProjectionDigest {
    /// Conflicts per kind of the projection this digest was made from (for metrics).
    pub fn conflict_counts(&self) -> &BTreeMap<ConflictKind, usize> {
        &self.conflict_counts
    }

    /// Rows digested (blocks + relations + usages).
    pub fn len(&self) -> usize {
        self.blocks.len() + self.relations.len() + self.usages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Projection {
    /// The fingerprints of every row, to diff later projections against.
    pub fn digest(&self) -> ProjectionDigest {
        ProjectionDigest {
            blocks: digest_rows(&self.blocks, |_| true),
            relations: digest_rows(&self.relations, |r| !r.deleted),
            usages: digest_rows(&self.usages, |_| true),
            conflict_counts: conflict_counts(&self.conflicts),
        }
    }
}

fn digest_rows<K: Ord + Copy, V: Serialize>(
    rows: &BTreeMap<K, V>,
    live: impl Fn(&V) -> bool,
) -> BTreeMap<K, RowDigest> {
    rows.iter()
        .map(|(key, row)| {
            let digest = RowDigest {
                fingerprint: fingerprint(row),
                live: live(row),
            };
            (*key, digest)
        })
        .collect()
}

/// Two independent 64-bit SipHashes of the row's JSON serialization (object keys are sorted, so
/// equal rows serialize equally). Digests live in memory only, never across processes.
fn fingerprint(row: &impl Serialize) -> u128 {
    use std::hash::Hasher;
    struct TwoHashes(std::hash::DefaultHasher, std::hash::DefaultHasher);
    impl std::io::Write for TwoHashes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            self.1.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut second = std::hash::DefaultHasher::new();
    second.write_u8(0x5a);
    let mut hashes = TwoHashes(std::hash::DefaultHasher::new(), second);
    // Serializing plain rows into a hasher cannot fail (no I/O, no non-string map keys).
    let _ = serde_json::to_writer(&mut hashes, row);
    (u128::from(hashes.0.finish()) << 64) | u128::from(hashes.1.finish())
}

/// Rows to write to go from `previous` (the digest of what the rows hold) to `next`: new or
/// changed rows are upserted (a relation that turns deleted is an upsert with `deleted: true`);
/// live rows that disappeared are soft-deleted; usages that disappeared are deleted.
pub fn diff(previous: &ProjectionDigest, next: &Projection) -> ProjectionDiff {
    diff_digested(previous, next, &next.digest())
}

/// [`diff`] when the digest of `next` is at hand already (a compaction keeps it as the base of the
/// next diff, so it is computed once).
pub fn diff_digested(
    previous: &ProjectionDigest,
    next: &Projection,
    next_digest: &ProjectionDigest,
) -> ProjectionDiff {
    ProjectionDiff {
        upsert_blocks: changed(&previous.blocks, &next.blocks, &next_digest.blocks),
        soft_delete_blocks: removed(&previous.blocks, &next.blocks),
        upsert_relations: changed(&previous.relations, &next.relations, &next_digest.relations),
        soft_delete_relations: removed(&previous.relations, &next.relations),
        upsert_usages: changed(&previous.usages, &next.usages, &next_digest.usages),
        delete_usages: removed(&previous.usages, &next.usages),
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

fn changed<K: Ord, V: Clone>(
    previous: &BTreeMap<K, RowDigest>,
    next: &BTreeMap<K, V>,
    next_digest: &BTreeMap<K, RowDigest>,
) -> Vec<V> {
    next.iter()
        .filter(|(key, _)| {
            let before = previous.get(key).map(|d| d.fingerprint);
            before.is_none() || before != next_digest.get(key).map(|d| d.fingerprint)
        })
        .map(|(_, row)| row.clone())
        .collect()
}

fn removed<K: Ord + Copy, V>(previous: &BTreeMap<K, RowDigest>, next: &BTreeMap<K, V>) -> Vec<K> {
    previous
        .iter()
        .filter(|(key, digest)| digest.live && !next.contains_key(key))
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

/// Short rendering of an offending value for conflict details (values may be huge).
fn describe(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A column rule broken: the value is skipped.
fn invalid(field: &str, problem: Problem) -> Issue {
    issue(
        ConflictKind::InvalidValue,
        FieldViolation::new(field, problem).to_string(),
    )
}

/// The required `type` of a block or relation (missing or empty is its own conflict kind).
fn entity_type(value: &Value) -> Result<String, Issue> {
    match value {
        Value::String(text) if !text.is_empty() => {
            rules::check_type(text).map_err(|p| invalid("type", p))?;
            Ok(text.clone())
        }
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
        Value::String(text) => {
            rules::check_name(text).map_err(|p| invalid("name", p))?;
            Ok(text.clone())
        }
        other => Err(issue(
            ConflictKind::InvalidValue,
            format!("name is not a string: {}", describe(other)),
        )),
    }
}

/// A JSONB object column (`config`, `visual`, `rules`): missing is `{}`.
fn json_object(field: &str, value: &Value) -> Result<Value, Issue> {
    if value.is_null() {
        return Ok(Value::Object(JsonMap::new()));
    }
    match rules::check_json_object(value) {
        Ok(()) => Ok(value.clone()),
        Err(Problem::NotAnObject) => Err(issue(
            ConflictKind::InvalidValue,
            format!("{field} is not an object: {}", describe(value)),
        )),
        Err(problem) => Err(invalid(field, problem)),
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
        let Some(id) = parse_id(key) else {
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
    let Some(invader_asset_id) = parse_id(key) else {
        return Err(issue(
            ConflictKind::UnknownReference,
            "invader asset key is not a UUID",
        ));
    };
    if !ctx.known_invader_assets.contains(&invader_asset_id) {
        let detail = format!("invader asset {invader_asset_id} does not exist");
        return Err(issue(ConflictKind::UnknownReference, detail));
    }
    let usage = rules::check_invader_usage(value).map_err(|violation| {
        let detail = format!("{violation}: {}", describe(value));
        issue(ConflictKind::InvalidValue, detail)
    })?;
    Ok(InvaderUsageRow {
        block_id,
        invader_asset_id,
        applied_version: usage.applied_version,
        config_snapshot: usage.config_snapshot,
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
    let detail = || {
        format!(
            "source {} / target {}: not both live blocks",
            describe(&entry.source_block_id),
            describe(&entry.target_block_id)
        )
    };
    match (source, target) {
        (Some(s), Some(t)) if live(source) && live(target) => Ok((s, t, None)),
        (Some(s), Some(t)) if row_exists(&s) && row_exists(&t) => {
            Ok((s, t, Some(issue(ConflictKind::DanglingRelation, detail()))))
        }
        _ => Err(issue(
            ConflictKind::DanglingRelation,
            format!("{}; skipped (no row to point at)", detail()),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, put_relation, read_canvas};
    use crate::rules::{MAX_NAME_CHARS, MAX_TYPE_CHARS, MAX_VERSION_CHARS};
    use serde_json::json;
    use yrs::Transact;

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn key(n: u128) -> String {
        uid(n).to_string()
    }

    fn block(block_type: &str) -> BlockEntry {
        BlockEntry {
            block_type: json!(block_type),
            name: json!("name"),
            parent_block_id: Value::Null,
            origin_asset_id: Value::Null,
            created_by_id: Value::Null,
            config: Value::Null,
            visual: Value::Null,
            invaders: Value::Null,
        }
    }

    fn child_of(parent: u128) -> BlockEntry {
        BlockEntry {
            parent_block_id: json!(key(parent)),
            ..block("t")
        }
    }

    fn relation(source: u128, target: u128) -> RelationEntry {
        RelationEntry {
            source_block_id: json!(key(source)),
            target_block_id: json!(key(target)),
            relation_type: json!("link"),
            rules: Value::Null,
            visual: Value::Null,
        }
    }

    fn state(
        blocks: Vec<(String, BlockEntry)>,
        relations: Vec<(String, RelationEntry)>,
    ) -> CanvasState {
        CanvasState {
            blocks: blocks.into_iter().collect(),
            relations: relations.into_iter().collect(),
        }
    }

    fn project_blocks_only(blocks: Vec<(String, BlockEntry)>) -> Projection {
        project(&state(blocks, vec![]), &ProjectionContext::default())
    }

    fn kinds(projection: &Projection) -> Vec<ConflictKind> {
        projection.conflicts.iter().map(|c| c.kind).collect()
    }

    /// Projects one block and returns its conflict kinds (the block must be skipped).
    fn skipped_block(entry: BlockEntry) -> Vec<ConflictKind> {
        let projection = project_blocks_only(vec![(key(1), entry)]);
        assert!(projection.blocks.is_empty(), "block should be skipped");
        kinds(&projection)
    }

    // Rule 1 -------------------------------------------------------------------------------------

    #[test]
    fn valid_block_projects_with_defaults() {
        let projection = project_blocks_only(vec![(
            key(1),
            BlockEntry {
                name: Value::Null,
                ..block("note")
            },
        )]);
        assert_eq!(projection.conflicts, vec![]);
        assert_eq!(
            projection.blocks[&uid(1)],
            BlockRow {
                id: uid(1),
                parent_block_id: None,
                origin_asset_id: None,
                block_type: "note".into(),
                name: String::new(),
                config: json!({}),
                visual: json!({}),
                created_by_id: None,
            }
        );
    }

    #[test]
    fn non_uuid_keys_are_skipped() {
        for bad in [
            "b1",
            "",
            "00000000000000000000000000000001",
            "{00000000-0000-0000-0000-000000000001}",
        ] {
            let projection = project_blocks_only(vec![(bad.to_owned(), block("t"))]);
            assert!(projection.blocks.is_empty(), "{bad}");
            assert_eq!(kinds(&projection), vec![ConflictKind::InvalidId]);
            assert_eq!(projection.conflicts[0].id, bad);
        }
    }

    #[test]
    fn second_spelling_of_an_id_is_skipped_and_canonical_wins() {
        let upper = key(0xab).to_uppercase();
        let projection = project_blocks_only(vec![
            (upper.clone(), block("upper")),
            (key(0xab), block("lower")),
        ]);
        assert_eq!(projection.blocks[&uid(0xab)].block_type, "lower");
        assert_eq!(kinds(&projection), vec![ConflictKind::InvalidId]);
        assert_eq!(projection.conflicts[0].id, upper);
    }

    #[test]
    fn foreign_block_is_skipped() {
        let ctx = ProjectionContext {
            foreign_block_ids: [uid(1)].into(),
            ..Default::default()
        };
        let projection = project(&state(vec![(key(1), block("t"))], vec![]), &ctx);
        assert!(projection.blocks.is_empty());
        assert_eq!(kinds(&projection), vec![ConflictKind::ForeignId]);
    }

    #[test]
    fn missing_or_empty_type_is_skipped() {
        for bad in [Value::Null, json!(""), json!(7), json!(["t"])] {
            let entry = BlockEntry {
                block_type: bad,
                ..block("t")
            };
            assert_eq!(skipped_block(entry), vec![ConflictKind::MissingType]);
        }
    }

    #[test]
    fn type_length_is_counted_in_characters() {
        assert!(entity_type(&json!("é".repeat(MAX_TYPE_CHARS))).is_ok());
        let entry = block(&"x".repeat(MAX_TYPE_CHARS + 1));
        assert_eq!(skipped_block(entry), vec![ConflictKind::InvalidValue]);
    }

    #[test]
    fn bad_names_are_skipped() {
        assert_eq!(
            block_name(&json!("🦀".repeat(MAX_NAME_CHARS))),
            Ok("🦀".repeat(MAX_NAME_CHARS))
        );
        for bad in [
            json!("n".repeat(MAX_NAME_CHARS + 1)),
            json!(3),
            json!({"a": 1}),
            json!("a\0b"),
        ] {
            let entry = BlockEntry {
                name: bad,
                ..block("t")
            };
            assert_eq!(skipped_block(entry), vec![ConflictKind::InvalidValue]);
        }
    }

    #[test]
    fn non_object_config_or_visual_is_skipped() {
        for bad in [
            json!(1),
            json!("{}"),
            json!([1]),
            json!(true),
            json!({"k": "a\0"}),
        ] {
            let config = BlockEntry {
                config: bad.clone(),
                ..block("t")
            };
            assert_eq!(skipped_block(config), vec![ConflictKind::InvalidValue]);
            let visual = BlockEntry {
                visual: bad,
                ..block("t")
            };
            assert_eq!(skipped_block(visual), vec![ConflictKind::InvalidValue]);
        }
    }

    // Rule 2 -------------------------------------------------------------------------------------

    #[test]
    fn unknown_references_become_null_and_keep_the_block() {
        let ctx = ProjectionContext {
            known_users: [uid(100)].into(),
            known_origin_assets: [uid(200)].into(),
            ..Default::default()
        };
        let good = BlockEntry {
            created_by_id: json!(key(100)),
            origin_asset_id: json!(key(200)),
            ..block("t")
        };
        let bad = BlockEntry {
            created_by_id: json!(key(101)),
            origin_asset_id: json!(42),
            ..block("t")
        };
        let projection = project(&state(vec![(key(1), good), (key(2), bad)], vec![]), &ctx);
        assert_eq!(projection.blocks[&uid(1)].created_by_id, Some(uid(100)));
        assert_eq!(projection.blocks[&uid(1)].origin_asset_id, Some(uid(200)));
        assert_eq!(projection.blocks[&uid(2)].created_by_id, None);
        assert_eq!(projection.blocks[&uid(2)].origin_asset_id, None);
        assert_eq!(kinds(&projection), vec![ConflictKind::UnknownReference; 2]);
    }

    // Rule 3 -------------------------------------------------------------------------------------

    #[test]
    fn valid_parent_is_kept() {
        let projection = project_blocks_only(vec![(key(1), block("t")), (key(2), child_of(1))]);
        assert_eq!(projection.blocks[&uid(2)].parent_block_id, Some(uid(1)));
        assert_eq!(projection.conflicts, vec![]);
    }

    #[test]
    fn bad_parents_become_null() {
        let cases = [
            json!(key(9)),       // missing block
            json!("not-a-uuid"), // not a UUID
            json!(key(2)),       // itself
            json!(key(3)),       // a block that was skipped
            json!(5),            // not a string
        ];
        for parent in cases {
            let projection = project_blocks_only(vec![
                (
                    key(2),
                    BlockEntry {
                        parent_block_id: parent.clone(),
                        ..block("t")
                    },
                ),
                (
                    key(3),
                    BlockEntry {
                        block_type: Value::Null,
                        ..block("t")
                    },
                ),
            ]);
            assert_eq!(projection.blocks[&uid(2)].parent_block_id, None, "{parent}");
            assert!(
                kinds(&projection).contains(&ConflictKind::BadParent),
                "{parent}"
            );
        }
    }

    #[test]
    fn two_cycle_is_broken_at_the_smallest_id() {
        let projection = project_blocks_only(vec![(key(5), child_of(3)), (key(3), child_of(5))]);
        assert_eq!(projection.blocks[&uid(3)].parent_block_id, None);
        assert_eq!(projection.blocks[&uid(5)].parent_block_id, Some(uid(3)));
        assert_eq!(kinds(&projection), vec![ConflictKind::ParentCycle]);
        assert_eq!(projection.conflicts[0].id, key(3));
    }

    #[test]
    fn long_cycles_with_tails_are_broken_once_each() {
        // 7 → 8 → 9 → 7 (cycle), 10 → 9 (tail); 20 → 21 → 20 (second cycle); 30 (root).
        let projection = project_blocks_only(vec![
            (key(7), child_of(8)),
            (key(8), child_of(9)),
            (key(9), child_of(7)),
            (key(10), child_of(9)),
            (key(20), child_of(21)),
            (key(21), child_of(20)),
            (key(30), block("t")),
        ]);
        let parent = |n| projection.blocks[&uid(n)].parent_block_id;
        assert_eq!(parent(7), None);
        assert_eq!(parent(8), Some(uid(9)));
        assert_eq!(parent(9), Some(uid(7)));
        assert_eq!(parent(10), Some(uid(9)));
        assert_eq!(parent(20), None);
        assert_eq!(parent(21), Some(uid(20)));
        assert_eq!(kinds(&projection), vec![ConflictKind::ParentCycle; 2]);
    }

    #[test]
    fn cycle_breaks_finds_each_cycle_from_any_start() {
        let parents: BTreeMap<Uuid, Option<Uuid>> = [
            (uid(4), Some(uid(2))),
            (uid(2), Some(uid(6))),
            (uid(6), Some(uid(4))),
            (uid(1), Some(uid(6))),
        ]
        .into();
        assert_eq!(
            cycle_breaks(&parents),
            vec![(uid(2), vec![uid(2), uid(6), uid(4)])]
        );
        assert_eq!(cycle_breaks(&[(uid(1), None)].into()), vec![]);
    }

    // Rule 4 -------------------------------------------------------------------------------------

    fn two_blocks() -> Vec<(String, BlockEntry)> {
        vec![(key(1), block("t")), (key(2), block("t"))]
    }

    fn project_relation(entry: RelationEntry, ctx: &ProjectionContext) -> Projection {
        project(&state(two_blocks(), vec![(key(50), entry)]), ctx)
    }

    #[test]
    fn valid_relation_and_self_relation_are_live() {
        let projection = project(
            &state(
                two_blocks(),
                vec![(key(50), relation(1, 2)), (key(51), relation(1, 1))],
            ),
            &ProjectionContext::default(),
        );
        assert_eq!(projection.conflicts, vec![]);
        assert_eq!(
            projection.relations[&uid(50)],
            RelationRow {
                id: uid(50),
                source_block_id: uid(1),
                target_block_id: uid(2),
                relation_type: "link".into(),
                rules: json!({}),
                visual: json!({}),
                deleted: false,
            }
        );
        assert!(!projection.relations[&uid(51)].deleted);
    }

    #[test]
    fn invalid_or_foreign_relation_ids_are_skipped() {
        let ctx = ProjectionContext {
            foreign_relation_ids: [uid(50)].into(),
            ..Default::default()
        };
        let projection = project(
            &state(
                two_blocks(),
                vec![(key(50), relation(1, 2)), ("r".into(), relation(1, 2))],
            ),
            &ctx,
        );
        assert!(projection.relations.is_empty());
        let mut found = kinds(&projection);
        found.sort();
        assert_eq!(
            found,
            vec![ConflictKind::InvalidId, ConflictKind::ForeignId]
        );
    }

    #[test]
    fn relation_with_bad_columns_is_skipped() {
        let ctx = ProjectionContext::default();
        let cases = [
            (
                RelationEntry {
                    relation_type: Value::Null,
                    ..relation(1, 2)
                },
                ConflictKind::MissingType,
            ),
            (
                RelationEntry {
                    relation_type: json!("x".repeat(51)),
                    ..relation(1, 2)
                },
                ConflictKind::InvalidValue,
            ),
            (
                RelationEntry {
                    rules: json!([1]),
                    ..relation(1, 2)
                },
                ConflictKind::InvalidValue,
            ),
            (
                RelationEntry {
                    visual: json!(2),
                    ..relation(1, 2)
                },
                ConflictKind::InvalidValue,
            ),
        ];
        for (entry, kind) in cases {
            let projection = project_relation(entry, &ctx);
            assert!(projection.relations.is_empty());
            assert_eq!(kinds(&projection), vec![kind]);
        }
    }

    #[test]
    fn dangling_relation_is_deleted_when_rows_exist() {
        let ctx = ProjectionContext {
            existing_block_rows: [uid(9)].into(),
            ..Default::default()
        };
        let projection = project_relation(relation(1, 9), &ctx);
        assert!(projection.relations[&uid(50)].deleted);
        assert_eq!(kinds(&projection), vec![ConflictKind::DanglingRelation]);
    }

    #[test]
    fn dangling_relation_without_rows_is_skipped() {
        let foreign_row = ProjectionContext {
            existing_block_rows: [uid(9)].into(),
            foreign_block_ids: [uid(9)].into(),
            ..Default::default()
        };
        for (entry, ctx) in [
            (relation(1, 9), ProjectionContext::default()),
            (
                RelationEntry {
                    target_block_id: json!("nope"),
                    ..relation(1, 2)
                },
                ProjectionContext::default(),
            ),
            (
                RelationEntry {
                    source_block_id: Value::Null,
                    ..relation(1, 2)
                },
                ProjectionContext::default(),
            ),
            (relation(1, 9), foreign_row),
        ] {
            let projection = project_relation(entry, &ctx);
            assert!(projection.relations.is_empty());
            assert_eq!(kinds(&projection), vec![ConflictKind::DanglingRelation]);
        }
    }

    // Rule 5 -------------------------------------------------------------------------------------

    #[test]
    fn duplicate_relations_keep_the_smallest_id_live() {
        let projection = project(
            &state(
                two_blocks(),
                vec![
                    (key(52), relation(1, 2)),
                    (key(50), relation(1, 2)),
                    (key(51), relation(1, 2)),
                    (key(53), relation(2, 1)),
                ],
            ),
            &ProjectionContext::default(),
        );
        let deleted: Vec<bool> = projection.relations.values().map(|r| r.deleted).collect();
        assert_eq!(deleted, vec![false, true, true, false]);
        assert_eq!(kinds(&projection), vec![ConflictKind::DuplicateRelation; 2]);
    }

    #[test]
    fn a_skipped_relation_does_not_count_as_a_duplicate() {
        let untyped = RelationEntry {
            relation_type: Value::Null,
            ..relation(1, 2)
        };
        let projection = project(
            &state(
                two_blocks(),
                vec![(key(50), untyped), (key(51), relation(1, 2))],
            ),
            &ProjectionContext::default(),
        );
        assert!(!projection.relations.contains_key(&uid(50)));
        assert!(!projection.relations[&uid(51)].deleted);
        assert_eq!(kinds(&projection), vec![ConflictKind::MissingType]);
    }

    // Rule 6 -------------------------------------------------------------------------------------

    fn with_invaders(invaders: Value) -> Projection {
        let ctx = ProjectionContext {
            known_invader_assets: [uid(300), uid(301)].into(),
            ..Default::default()
        };
        project(
            &state(
                vec![(
                    key(1),
                    BlockEntry {
                        invaders,
                        ..block("t")
                    },
                )],
                vec![],
            ),
            &ctx,
        )
    }

    #[test]
    fn valid_usages_project() {
        let projection = with_invaders(json!({
            key(300): {"applied_version": "1.0.0", "config_snapshot": {"a": [1]}},
            key(301): {"applied_version": null, "config_snapshot": null},
        }));
        assert_eq!(projection.conflicts, vec![]);
        assert_eq!(
            projection.usages.values().cloned().collect::<Vec<_>>(),
            vec![
                InvaderUsageRow {
                    block_id: uid(1),
                    invader_asset_id: uid(300),
                    applied_version: Some("1.0.0".into()),
                    config_snapshot: Some(json!({"a": [1]})),
                },
                InvaderUsageRow {
                    block_id: uid(1),
                    invader_asset_id: uid(301),
                    applied_version: None,
                    config_snapshot: None,
                },
            ]
        );
    }

    #[test]
    fn unknown_invader_assets_are_skipped() {
        let projection = with_invaders(json!({ key(999): {}, "asset": {} }));
        assert!(projection.usages.is_empty());
        assert_eq!(kinds(&projection), vec![ConflictKind::UnknownReference; 2]);
        assert_eq!(projection.blocks.len(), 1);
    }

    #[test]
    fn bad_usage_values_are_skipped() {
        for bad in [
            json!({"applied_version": "1".repeat(MAX_VERSION_CHARS + 1)}),
            json!({"applied_version": 1}),
            json!({"config_snapshot": "a\0"}),
            json!("1.0"),
        ] {
            let projection = with_invaders(json!({ key(300): bad }));
            assert!(projection.usages.is_empty());
            assert_eq!(kinds(&projection), vec![ConflictKind::InvalidValue]);
        }
        let projection = with_invaders(json!([1, 2]));
        assert_eq!(kinds(&projection), vec![ConflictKind::InvalidValue]);
        assert_eq!(projection.conflicts[0].entity, EntityKind::InvaderUsage);
    }

    #[test]
    fn usages_of_skipped_blocks_are_not_projected() {
        let ctx = ProjectionContext {
            known_invader_assets: [uid(300)].into(),
            ..Default::default()
        };
        let entry = BlockEntry {
            block_type: Value::Null,
            invaders: json!({ key(300): {} }),
            ..block("t")
        };
        let projection = project(&state(vec![(key(1), entry)], vec![]), &ctx);
        assert!(projection.usages.is_empty());
    }

    // Rule 7 -------------------------------------------------------------------------------------

    #[test]
    fn diff_upserts_changes_and_soft_deletes_removals() {
        let ctx = ProjectionContext {
            known_invader_assets: [uid(300)].into(),
            existing_block_rows: [uid(3)].into(),
            ..Default::default()
        };
        let usage = json!({ key(300): {"applied_version": "1"} });
        let before = project(
            &state(
                vec![
                    (key(1), block("t")),
                    (
                        key(2),
                        BlockEntry {
                            invaders: usage,
                            ..block("t")
                        },
                    ),
                    (key(3), block("t")),
                ],
                vec![
                    (key(50), relation(1, 2)),
                    (key(51), relation(2, 3)),
                    (key(52), relation(1, 3)),
                ],
            ),
            &ctx,
        );
        let after = project(
            &state(
                vec![
                    (key(1), block("changed")),
                    (key(2), block("t")),
                    (key(4), block("t")),
                ],
                vec![(key(50), relation(1, 2)), (key(51), relation(2, 3))],
            ),
            &ctx,
        );
        let d = diff(&before.digest(), &after);
        assert_eq!(
            d.upsert_blocks.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![uid(1), uid(4)]
        );
        assert_eq!(d.soft_delete_blocks, vec![uid(3)]);
        assert_eq!(d.upsert_relations.len(), 1);
        assert_eq!(d.upsert_relations[0].id, uid(51));
        assert!(d.upsert_relations[0].deleted);
        assert_eq!(d.soft_delete_relations, vec![uid(52)]);
        assert_eq!(d.upsert_usages, vec![]);
        assert_eq!(d.delete_usages, vec![(uid(2), uid(300))]);
        assert!(!d.is_empty());
        assert!(diff(&after.digest(), &after).is_empty());
    }

    #[test]
    fn the_digest_sees_a_change_deep_inside_a_json_value() {
        let row = |config: Value| BlockRow {
            id: uid(1),
            parent_block_id: None,
            origin_asset_id: None,
            block_type: "t".into(),
            name: "n".into(),
            config,
            visual: json!({ "x": 1 }),
            created_by_id: None,
        };
        let with = |config: Value| {
            let mut p = Projection::default();
            p.blocks.insert(uid(1), row(config));
            p
        };
        let before = with(json!({ "a": { "b": [1, 2, { "c": "x" }] } }));
        let digest = before.digest();
        assert_eq!(digest.len(), 1);
        assert!(diff(&digest, &before).is_empty());
        let after = with(json!({ "a": { "b": [1, 2, { "c": "y" }] } }));
        assert_eq!(
            diff(&digest, &after).upsert_blocks,
            vec![row(json!({ "a": { "b": [1, 2, { "c": "y" }] } }))]
        );
        let reordered = with(json!({ "a": { "b": [2, 1, { "c": "x" }] } }));
        assert_eq!(
            diff(&digest, &reordered).upsert_blocks.len(),
            1,
            "array order matters"
        );
    }

    #[test]
    fn diff_ignores_removal_of_already_deleted_relations() {
        let mut before = Projection::default();
        before.relations.insert(
            uid(50),
            RelationRow {
                id: uid(50),
                source_block_id: uid(1),
                target_block_id: uid(2),
                relation_type: "t".into(),
                rules: json!({}),
                visual: json!({}),
                deleted: true,
            },
        );
        assert!(diff(&before.digest(), &Projection::default()).is_empty());
        let from_empty = diff(&ProjectionDigest::default(), &before);
        assert_eq!(from_empty.upsert_relations.len(), 1);
    }

    // Rule 8, context, metrics -------------------------------------------------------------------

    #[test]
    fn odd_values_never_panic() {
        let huge = "x".repeat(1 << 20);
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep, {"k": deep.clone()}]);
            if deep.to_string().len() > 1 << 16 {
                deep = json!([deep[0].clone()]);
            }
        }
        let odd = [
            json!(1.5),
            json!(-3),
            json!(null),
            json!([]),
            json!([[[]]]),
            json!({}),
            json!(huge),
            deep,
        ];
        let mut blocks = Vec::new();
        let mut relations = Vec::new();
        for (i, value) in odd.iter().enumerate() {
            let entry = BlockEntry {
                block_type: value.clone(),
                name: value.clone(),
                parent_block_id: value.clone(),
                origin_asset_id: value.clone(),
                created_by_id: value.clone(),
                config: value.clone(),
                visual: value.clone(),
                invaders: value.clone(),
            };
            blocks.push((
                key(i as u128),
                BlockEntry {
                    block_type: json!("t"),
                    ..entry.clone()
                },
            ));
            blocks.push((format!("{i}"), entry));
            let rel = RelationEntry {
                source_block_id: value.clone(),
                target_block_id: value.clone(),
                relation_type: value.clone(),
                rules: value.clone(),
                visual: value.clone(),
            };
            relations.push((key(1000 + i as u128), rel));
        }
        blocks.push((huge.clone(), block("t")));
        let s = state(blocks, relations);
        let projection = project(&s, &ProjectionContext::default());
        let _ = referenced_ids(&s);
        let _ = diff(&projection.digest(), &Projection::default());
        assert!(!projection.conflicts.is_empty());
        // Details stay short even for huge values.
        assert!(projection
            .conflicts
            .iter()
            .all(|c| c.detail.chars().count() < 300));
    }

    #[test]
    fn referenced_ids_collects_every_valid_uuid() {
        let entry = BlockEntry {
            parent_block_id: json!(key(2)),
            created_by_id: json!(key(100)),
            origin_asset_id: json!(key(200)),
            invaders: json!({ key(300): {}, "x": {} }),
            ..block("t")
        };
        let s = state(
            vec![(key(1), entry), ("bad".into(), block("t"))],
            vec![(key(50), relation(3, 4)), ("bad".into(), relation(5, 5))],
        );
        let ids = referenced_ids(&s);
        assert_eq!(
            ids.block_ids,
            [uid(1), uid(2), uid(3), uid(4), uid(5)].into()
        );
        assert_eq!(ids.users, [uid(100)].into());
        assert_eq!(ids.origin_assets, [uid(200)].into());
        assert_eq!(ids.invader_assets, [uid(300)].into());
        assert_eq!(ids.relation_ids, [uid(50)].into());
    }

    #[test]
    fn conflicts_count_and_serialize_in_snake_case() {
        let projection = project_blocks_only(vec![
            ("a".into(), block("t")),
            ("b".into(), block("t")),
            (
                key(1),
                BlockEntry {
                    block_type: Value::Null,
                    ..block("t")
                },
            ),
        ]);
        let counts = conflict_counts(&projection.conflicts);
        assert_eq!(
            counts,
            [(ConflictKind::InvalidId, 2), (ConflictKind::MissingType, 1)].into()
        );
        assert_eq!(ConflictKind::ParentCycle.as_str(), "parent_cycle");
        // Sorted by entity, then id: the UUID key sorts before "a" and "b".
        let json = serde_json::to_value(&projection.conflicts[0]).unwrap();
        assert_eq!(json["entity"], "block");
        assert_eq!(json["kind"], "missing_type");
        assert_eq!(json["id"], key(1));
    }

    #[test]
    fn projection_is_independent_of_insertion_order() {
        let blocks = vec![
            (5u128, json!({"type": "t", "parent_block_id": key(6)})),
            (6, json!({"type": "t", "parent_block_id": key(5)})),
            (
                7,
                json!({"type": "t", "parent_block_id": key(7), "config": {"a": 1}}),
            ),
            (8, json!({"type": "", "name": "skipped"})),
            (9, json!({"type": "t", "parent_block_id": key(8)})),
        ];
        let relations = vec![
            (
                52u128,
                json!({"type": "l", "source_block_id": key(5), "target_block_id": key(6)}),
            ),
            (
                51,
                json!({"type": "l", "source_block_id": key(5), "target_block_id": key(6)}),
            ),
            (
                53,
                json!({"type": "l", "source_block_id": key(9), "target_block_id": key(8)}),
            ),
        ];
        let build = |reverse: bool| {
            let doc = new_canvas_doc();
            let mut txn = doc.transact_mut();
            let mut b = blocks.clone();
            let mut r = relations.clone();
            if reverse {
                b.reverse();
                r.reverse();
            }
            for (id, fields) in b {
                put_block(&mut txn, &key(id), fields.as_object().unwrap()).unwrap();
            }
            for (id, fields) in r {
                put_relation(&mut txn, &key(id), fields.as_object().unwrap()).unwrap();
            }
            drop(txn);
            let canvas = read_canvas(&doc.transact());
            project(&canvas, &ProjectionContext::default())
        };
        let forward = build(false);
        assert_eq!(forward, build(true));
        assert_eq!(forward.blocks[&uid(5)].parent_block_id, None);
        assert!(forward.relations[&uid(52)].deleted);
        assert!(!forward.relations.contains_key(&uid(53)));
    }

    #[test]
    fn ten_thousand_blocks_smoke() {
        let n = 10_000u128;
        let blocks = (0..n).map(|i| {
            let parent = if i % 100 == 0 {
                Value::Null
            } else {
                json!(key(i - 1))
            };
            (
                key(i),
                BlockEntry {
                    parent_block_id: parent,
                    ..block("t")
                },
            )
        });
        let relations = (0..n).map(|i| (key(n + i), relation(i, (i * 7) % n)));
        let s = state(blocks.collect(), relations.collect());
        let first = project(&s, &ProjectionContext::default());
        assert_eq!(first.blocks.len(), 10_000);
        let full = diff(&ProjectionDigest::default(), &first);
        assert_eq!(full.upsert_blocks.len(), 10_000);
        assert!(diff(&first.digest(), &first).is_empty());
    }
}
