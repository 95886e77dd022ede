//! A template's `structure_data` (docs/design.md §17): the blocks and relations of a selection,
//! with ids of their own. Saving a selection remaps the document's ids to fresh ones (a template
//! never carries another workspace's ids); inserting remaps them again, so every insertion makes
//! new entities.
//!
//! ```json
//! {"blocks": [{"id", "type", "name", "parent_block_id", "config", "visual", "invaders"}],
//!  "relations": [{"id", "source_block_id", "target_block_id", "type", "rules", "visual"}]}
//! ```
//! `parent_block_id` and the relation endpoints name blocks of the template. Positions
//! (`visual.x`, `visual.y`) are relative to the selection's top-left corner.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use nox_sync_protocol::canvas::{BlockEntry, CanvasState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map as JsonMap, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// A template holds at most this many blocks (and as many relations as blocks squared would
/// allow is not a useful bound, so relations have their own).
pub const MAX_TEMPLATE_BLOCKS: usize = 2_000;
pub const MAX_TEMPLATE_RELATIONS: usize = 10_000;

type Object = JsonMap<String, Value>;

/// One reason a structure is refused: the field it is about and what is wrong with it (the
/// routes turn these into 422 field errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateStructure {
    pub blocks: Vec<TemplateBlock>,
    #[serde(default)]
    pub relations: Vec<TemplateRelation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBlock {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub block_type: String,
    #[serde(default)]
    pub name: String,
    /// Another block of the template, or null.
    #[serde(default)]
    pub parent_block_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Object,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub visual: Object,
    /// invader definition id → `{applied_version, config_snapshot}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub invaders: Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRelation {
    pub id: Uuid,
    pub source_block_id: Uuid,
    pub target_block_id: Uuid,
    #[serde(rename = "type")]
    pub relation_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub rules: Object,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub visual: Object,
}

impl TemplateStructure {
    /// Reads and checks a stored or submitted `structure_data`; errors name `field`.
    pub fn parse(value: &Value, field: &str) -> Result<TemplateStructure, Vec<FieldError>> {
        let structure: TemplateStructure = serde_json::from_value(value.clone())
            .map_err(|e| vec![FieldError::new(field, format!("is not a template: {e}"))])?;
        let errors = structure.problems(field);
        if errors.is_empty() {
            Ok(structure)
        } else {
            Err(errors)
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Everything that would make an inserted block or relation refused or skipped by the
    /// projection (§4 Rules 1–4), plus the size bounds.
    fn problems(&self, field: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut fail = |what: String, message: &str| {
            errors.push(FieldError::new(format!("{field}.{what}"), message));
        };
        if self.blocks.is_empty() {
            fail("blocks".into(), "must hold at least one block");
        }
        if self.blocks.len() > MAX_TEMPLATE_BLOCKS {
            fail("blocks".into(), "holds too many blocks (at most 2000)");
        }
        if self.relations.len() > MAX_TEMPLATE_RELATIONS {
            fail(
                "relations".into(),
                "holds too many relations (at most 10000)",
            );
        }
        let mut block_ids = HashSet::new();
        for (i, b) in self.blocks.iter().enumerate() {
            if !block_ids.insert(b.id) {
                fail(format!("blocks[{i}].id"), "is used twice");
            }
            if !short_text(&b.block_type, 50, false) {
                fail(format!("blocks[{i}].type"), "must be 1-50 characters");
            }
            if !short_text(&b.name, 255, true) {
                fail(
                    format!("blocks[{i}].name"),
                    "must be at most 255 characters",
                );
            }
            let nested = [&b.config, &b.visual, &b.invaders];
            if nested.iter().any(|o| holds_nul(o)) {
                fail(format!("blocks[{i}]"), "must not contain U+0000");
            }
        }
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(parent) = b.parent_block_id {
                if parent == b.id || !block_ids.contains(&parent) {
                    fail(
                        format!("blocks[{i}].parent_block_id"),
                        "must be another block of the template",
                    );
                }
            }
        }
        if has_parent_cycle(&self.blocks) {
            fail("blocks".into(), "parents form a cycle");
        }
        let mut relation_ids = HashSet::new();
        for (i, r) in self.relations.iter().enumerate() {
            if !relation_ids.insert(r.id) || block_ids.contains(&r.id) {
                fail(format!("relations[{i}].id"), "is used twice");
            }
            if !short_text(&r.relation_type, 50, false) {
                fail(format!("relations[{i}].type"), "must be 1-50 characters");
            }
            for end in [r.source_block_id, r.target_block_id] {
                if !block_ids.contains(&end) {
                    fail(
                        format!("relations[{i}]"),
                        "endpoints must be blocks of the template",
                    );
                }
            }
            if holds_nul(&r.rules) || holds_nul(&r.visual) {
                fail(format!("relations[{i}]"), "must not contain U+0000");
            }
        }
        errors
    }
}

fn short_text(text: &str, max: usize, empty_ok: bool) -> bool {
    (empty_ok || !text.trim().is_empty()) && text.chars().count() <= max && !text.contains('\0')
}

fn holds_nul(object: &Object) -> bool {
    object
        .iter()
        .any(|(k, v)| k.contains('\0') || value_holds_nul(v))
}

fn value_holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(value_holds_nul),
        Value::Object(map) => holds_nul(map),
        _ => false,
    }
}

/// Whether following parents from some block comes back to it.
fn has_parent_cycle(blocks: &[TemplateBlock]) -> bool {
    let parents: HashMap<Uuid, Uuid> = blocks
        .iter()
        .filter_map(|b| b.parent_block_id.map(|p| (b.id, p)))
        .collect();
    blocks.iter().any(|b| {
        let mut at = b.id;
        // A chain longer than the template revisits a block: a cycle.
        for _ in 0..=blocks.len() {
            match parents.get(&at) {
                Some(parent) if *parent == b.id => return true,
                Some(parent) => at = *parent,
                None => return false,
            }
        }
        true
    })
}

/// Why a selection cannot be saved.
#[derive(Debug, PartialEq, Eq)]
pub enum SelectionError {
    /// These selected ids are not blocks of the document.
    UnknownBlocks(Vec<Uuid>),
    /// The selection (with descendants) holds a block the projection would skip: no valid type.
    Untyped(String),
    TooLarge,
}

/// The template of `selected` blocks of `canvas`: those blocks, all their descendants, and the
/// relations whose two endpoints are among them, with fresh ids. A parent outside the selection
/// becomes null; `origin_asset_id` and `created_by_id` are not kept (insertion sets them).
pub fn from_selection(
    canvas: &CanvasState,
    selected: &[Uuid],
) -> Result<TemplateStructure, SelectionError> {
    let keys = canonical_block_keys(canvas);
    let unknown: Vec<Uuid> = selected
        .iter()
        .filter(|id| !keys.contains_key(id))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(SelectionError::UnknownBlocks(unknown));
    }
    let chosen = with_descendants(canvas, &keys, selected);
    if chosen.len() > MAX_TEMPLATE_BLOCKS {
        return Err(SelectionError::TooLarge);
    }
    let fresh: BTreeMap<Uuid, Uuid> = chosen.iter().map(|id| (*id, Uuid::new_v4())).collect();
    let mut blocks = Vec::with_capacity(chosen.len());
    for old in &chosen {
        let key = keys[old];
        let entry = &canvas.blocks[key];
        blocks.push(template_block(key, entry, fresh[old], &fresh)?);
    }
    let relations = canvas
        .relations
        .values()
        .filter_map(|r| {
            let source = parse_ref(&r.source_block_id).and_then(|s| fresh.get(&s))?;
            let target = parse_ref(&r.target_block_id).and_then(|t| fresh.get(&t))?;
            let relation_type = r.relation_type.as_str()?.to_string();
            Some(TemplateRelation {
                id: Uuid::new_v4(),
                source_block_id: *source,
                target_block_id: *target,
                relation_type,
                rules: object_or_empty(&r.rules),
                visual: object_or_empty(&r.visual),
            })
        })
        .collect();
    let mut structure = TemplateStructure { blocks, relations };
    structure.normalize_positions();
    Ok(structure)
}

/// Block ids of the document by UUID (a key may spell its UUID in upper case; the lowercase
/// spelling wins, like the projection's Rule 1).
fn canonical_block_keys(canvas: &CanvasState) -> HashMap<Uuid, &str> {
    let mut keys: HashMap<Uuid, &str> = HashMap::new();
    for key in canvas.blocks.keys() {
        if let Ok(id) = Uuid::parse_str(key) {
            let canonical = key.as_str() == id.to_string();
            if canonical || !keys.contains_key(&id) {
                keys.insert(id, key.as_str());
            }
        }
    }
    keys
}

fn with_descendants(
    canvas: &CanvasState,
    keys: &HashMap<Uuid, &str>,
    selected: &[Uuid],
) -> BTreeSet<Uuid> {
    let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (id, key) in keys {
        if let Some(parent) = parse_ref(&canvas.blocks[*key].parent_block_id) {
            children.entry(parent).or_default().push(*id);
        }
    }
    let mut chosen = BTreeSet::new();
    let mut stack: Vec<Uuid> = selected.to_vec();
    while let Some(id) = stack.pop() {
        if chosen.insert(id) {
            stack.extend(children.get(&id).into_iter().flatten().copied());
        }
    }
    chosen
}

fn template_block(
    key: &str,
    entry: &BlockEntry,
    id: Uuid,
    fresh: &BTreeMap<Uuid, Uuid>,
) -> Result<TemplateBlock, SelectionError> {
    let block_type = match entry.block_type.as_str() {
        Some(t) if short_text(t, 50, false) => t.to_string(),
        _ => return Err(SelectionError::Untyped(key.to_string())),
    };
    let name: String = entry
        .name
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    let parent_block_id = parse_ref(&entry.parent_block_id).and_then(|p| fresh.get(&p).copied());
    Ok(TemplateBlock {
        id,
        block_type,
        name,
        parent_block_id,
        config: object_or_empty(&entry.config),
        visual: object_or_empty(&entry.visual),
        invaders: object_or_empty(&entry.invaders),
    })
}

fn parse_ref(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

fn object_or_empty(value: &Value) -> Object {
    value.as_object().cloned().unwrap_or_default()
}

impl TemplateStructure {
    /// Shifts positions so the top-left of the blocks that have one is (0, 0).
    fn normalize_positions(&mut self) {
        let positions: Vec<(f64, f64)> = self
            .blocks
            .iter()
            .filter_map(|b| position(&b.visual))
            .collect();
        let min_x = positions.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let min_y = positions.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        if positions.is_empty() {
            return;
        }
        for block in &mut self.blocks {
            shift(&mut block.visual, -min_x, -min_y);
        }
    }
}

/// `(x, y)` of a `visual` holding two numbers.
fn position(visual: &Object) -> Option<(f64, f64)> {
    Some((visual.get("x")?.as_f64()?, visual.get("y")?.as_f64()?))
}

fn shift(visual: &mut Object, dx: f64, dy: f64) {
    if let Some((x, y)) = position(visual) {
        visual.insert("x".into(), number(x + dx));
        visual.insert("y".into(), number(y + dy));
    }
}

/// Whole numbers stay integers (the editor writes integers), others are floats.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// The blocks and relations one insertion of `structure` at `(x, y)` writes: fresh ids,
/// `origin_asset_id` = the template, `created_by_id` = the inserting user.
pub struct Insertion {
    pub blocks: Vec<(String, Object)>,
    pub relations: Vec<(String, Object)>,
}

pub fn insertion(
    structure: &TemplateStructure,
    template_id: Uuid,
    creator: Uuid,
    at: (f64, f64),
) -> Insertion {
    let fresh: HashMap<Uuid, Uuid> = structure
        .blocks
        .iter()
        .map(|b| (b.id, Uuid::new_v4()))
        .collect();
    let blocks = structure
        .blocks
        .iter()
        .map(|b| {
            let mut visual = b.visual.clone();
            shift(&mut visual, at.0, at.1);
            let parent = b.parent_block_id.and_then(|p| fresh.get(&p));
            let fields = json!({
                "type": b.block_type,
                "name": b.name,
                "parent_block_id": parent.map(Uuid::to_string),
                "origin_asset_id": template_id.to_string(),
                "created_by_id": creator.to_string(),
                "config": b.config,
                "visual": visual,
                "invaders": b.invaders,
            });
            (fresh[&b.id].to_string(), into_object(fields))
        })
        .collect();
    let relations = structure
        .relations
        .iter()
        .filter_map(|r| {
            let source = fresh.get(&r.source_block_id)?;
            let target = fresh.get(&r.target_block_id)?;
            let fields = json!({
                "type": r.relation_type,
                "source_block_id": source.to_string(),
                "target_block_id": target.to_string(),
                "rules": r.rules,
                "visual": r.visual,
            });
            Some((Uuid::new_v4().to_string(), into_object(fields)))
        })
        .collect();
    Insertion { blocks, relations }
}

fn into_object(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        _ => Object::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nox_sync_protocol::canvas::RelationEntry;

    fn block(block_type: &str, parent: Option<&str>, x: i64, y: i64) -> BlockEntry {
        BlockEntry {
            block_type: json!(block_type),
            name: json!(block_type),
            parent_block_id: parent.map_or(Value::Null, |p| json!(p)),
            origin_asset_id: Value::Null,
            created_by_id: json!(Uuid::new_v4().to_string()),
            config: json!({"k": 1}),
            visual: json!({"x": x, "y": y, "w": 10}),
            invaders: Value::Null,
        }
    }

    fn relation(source: &str, target: &str) -> RelationEntry {
        RelationEntry {
            source_block_id: json!(source),
            target_block_id: json!(target),
            relation_type: json!("LINK"),
            rules: json!({}),
            visual: json!({}),
        }
    }

    /// a ⊃ a1; b; c (unselected). Relations a→a1, a1→b, a→c.
    fn canvas() -> (CanvasState, [Uuid; 4]) {
        let ids = [
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        ];
        let s = ids.map(|i| i.to_string());
        let mut canvas = CanvasState::default();
        canvas
            .blocks
            .insert(s[0].clone(), block("A", None, 100, 50));
        canvas
            .blocks
            .insert(s[1].clone(), block("A1", Some(&s[0]), 120, 70));
        canvas
            .blocks
            .insert(s[2].clone(), block("B", None, 300, 40));
        canvas.blocks.insert(s[3].clone(), block("C", None, 0, 0));
        canvas
            .relations
            .insert(Uuid::new_v4().to_string(), relation(&s[0], &s[1]));
        canvas
            .relations
            .insert(Uuid::new_v4().to_string(), relation(&s[1], &s[2]));
        canvas
            .relations
            .insert(Uuid::new_v4().to_string(), relation(&s[0], &s[3]));
        (canvas, ids)
    }

    #[test]
    fn a_selection_takes_descendants_and_inner_relations_with_fresh_ids() {
        let (canvas, [a, _a1, b, c]) = canvas();
        let structure = from_selection(&canvas, &[a, b]).expect("present");
        assert_eq!(structure.blocks.len(), 3);
        assert_eq!(structure.relations.len(), 2, "a→c leaves the selection");
        let doc_ids: HashSet<String> = canvas.blocks.keys().cloned().collect();
        for block in &structure.blocks {
            assert!(!doc_ids.contains(&block.id.to_string()), "ids are remapped");
        }
        let child = structure
            .blocks
            .iter()
            .find(|b| b.block_type == "A1")
            .expect("present");
        let parent = structure
            .blocks
            .iter()
            .find(|b| b.block_type == "A")
            .expect("present");
        assert_eq!(child.parent_block_id, Some(parent.id));
        assert!(!structure.blocks.iter().any(|b| b.block_type == "C") && c != a);
        // Positions relative to the selection's top-left (100, 40).
        assert_eq!(parent.visual["x"], json!(0));
        assert_eq!(parent.visual["y"], json!(10));
        assert!(TemplateStructure::parse(&structure.to_value(), "s").is_ok());
    }

    #[test]
    fn unknown_selected_blocks_are_named() {
        let (canvas, _) = canvas();
        let stranger = Uuid::new_v4();
        assert_eq!(
            from_selection(&canvas, &[stranger]),
            Err(SelectionError::UnknownBlocks(vec![stranger]))
        );
    }

    #[test]
    fn insertion_remaps_again_and_places_at_the_point() {
        let (canvas, [a, ..]) = canvas();
        let structure = from_selection(&canvas, &[a]).expect("present");
        let (template, user) = (Uuid::new_v4(), Uuid::new_v4());
        let first = insertion(&structure, template, user, (500.0, 500.0));
        let second = insertion(&structure, template, user, (0.0, 0.0));
        assert_eq!(first.blocks.len(), 2);
        assert_eq!(first.relations.len(), 1);
        assert_ne!(first.blocks[0].0, second.blocks[0].0);
        let ids: HashSet<&String> = first.blocks.iter().map(|(id, _)| id).collect();
        let (_, rel) = &first.relations[0];
        assert!(ids.contains(
            &rel["source_block_id"]
                .as_str()
                .expect("present")
                .to_string()
        ));
        for (_, fields) in &first.blocks {
            assert_eq!(fields["origin_asset_id"], json!(template.to_string()));
            assert_eq!(fields["created_by_id"], json!(user.to_string()));
        }
        let top = first
            .blocks
            .iter()
            .find(|(_, f)| f["type"] == "A")
            .expect("present");
        assert_eq!(top.1["visual"]["x"], json!(500));
        let child = first
            .blocks
            .iter()
            .find(|(_, f)| f["type"] == "A1")
            .expect("present");
        assert_eq!(child.1["parent_block_id"], json!(top.0));
    }

    #[test]
    fn bad_structures_are_refused_with_field_names() {
        let id = Uuid::new_v4();
        let cyclic = json!({"blocks": [
            {"id": id, "type": "X", "parent_block_id": id},
        ]});
        let errors = TemplateStructure::parse(&cyclic, "structure_data").expect_err("refused");
        assert!(errors
            .iter()
            .any(|e| e.field == "structure_data.blocks[0].parent_block_id"));
        let dangling = json!({"blocks": [{"id": id, "type": "X"}], "relations": [
            {"id": Uuid::new_v4(), "source_block_id": id, "target_block_id": Uuid::new_v4(), "type": "L"}
        ]});
        assert!(TemplateStructure::parse(&dangling, "s").is_err());
        assert!(TemplateStructure::parse(&json!({"blocks": []}), "s").is_err());
        assert!(TemplateStructure::parse(&json!({"blocks": [{"id": id}]}), "s").is_err());
        assert!(TemplateStructure::parse(&json!({"nodes": 1}), "s").is_err());
        let nul = json!({"blocks": [{"id": id, "type": "X", "config": {"a": "\u{0}"}}]});
        assert!(TemplateStructure::parse(&nul, "s").is_err());
    }
}
