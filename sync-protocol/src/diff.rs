//! The difference between two canvas states (issue 14: version diffs), field by field.
//!
//! `diff_canvas(base, other)` says what changed going from `base` to `other`: entities only in
//! `other` are *added*, entities only in `base` are *removed*, and entities in both whose fields
//! differ are *changed*, with the `before` (base) and `after` (other) value of each differing field.
//! Ids are listed in key order, so the same two states always give the same diff.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::canvas::CanvasState;

/// What changed between two canvas states.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CanvasDiff {
    pub blocks: EntityDiff,
    pub relations: EntityDiff,
}

impl CanvasDiff {
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.relations.is_empty()
    }
}

/// The changes of one kind of entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EntityDiff {
    /// Entities only in the other state, as JSON objects with their `id`.
    pub added: Vec<Value>,
    /// Entities only in the base state, as JSON objects with their `id`.
    pub removed: Vec<Value>,
    pub changed: Vec<EntityChange>,
}

impl EntityDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// An entity present in both states with at least one differing field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityChange {
    pub id: String,
    /// Field name (as the API names it, e.g. `type`) → its two values.
    pub fields: BTreeMap<String, FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub before: Value,
    pub after: Value,
}

/// What changed from `base` to `other`.
pub fn diff_canvas(base: &CanvasState, other: &CanvasState) -> CanvasDiff {
    CanvasDiff {
        blocks: diff_entities(&base.blocks, &other.blocks),
        relations: diff_entities(&base.relations, &other.relations),
    }
}

fn diff_entities<E: PartialEq + Serialize>(
    base: &BTreeMap<String, E>,
    other: &BTreeMap<String, E>,
) -> EntityDiff {
    let mut diff = EntityDiff::default();
    for (id, before) in base {
        match other.get(id) {
            None => diff.removed.push(entity_json(id, before)),
            // Comparing the typed entries first keeps unchanged entities (the common case) free
            // of any JSON conversion.
            Some(after) if after != before => {
                let fields = changed_fields(&entity_fields(before), &entity_fields(after));
                diff.changed.push(EntityChange {
                    id: id.clone(),
                    fields,
                });
            }
            Some(_) => {}
        }
    }
    for (id, after) in other {
        if !base.contains_key(id) {
            diff.added.push(entity_json(id, after));
        }
    }
    diff
}

/// An entity's fields as a JSON object (the API's field names).
pub fn entity_fields(entity: &impl Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(entity) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// An entity as the block / relation REST shows it: its fields plus `id`.
pub fn entity_json(id: &str, entity: &impl Serialize) -> Value {
    let mut fields = entity_fields(entity);
    fields.insert("id".into(), Value::String(id.to_string()));
    Value::Object(fields)
}

fn changed_fields(
    before: &serde_json::Map<String, Value>,
    after: &serde_json::Map<String, Value>,
) -> BTreeMap<String, FieldChange> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let old = before.get(key).cloned().unwrap_or(Value::Null);
            let new = after.get(key).cloned().unwrap_or(Value::Null);
            (old != new).then(|| {
                (
                    key.clone(),
                    FieldChange {
                        before: old,
                        after: new,
                    },
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{BlockEntry, RelationEntry};
    use serde_json::json;

    fn block(name: &str, x: i64) -> BlockEntry {
        BlockEntry {
            block_type: json!("NODE"),
            name: json!(name),
            parent_block_id: Value::Null,
            origin_asset_id: Value::Null,
            created_by_id: Value::Null,
            config: json!({}),
            visual: json!({ "x": x }),
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

    fn canvas(blocks: &[(&str, BlockEntry)], relations: &[(&str, RelationEntry)]) -> CanvasState {
        CanvasState {
            blocks: blocks
                .iter()
                .map(|(id, b)| (id.to_string(), b.clone()))
                .collect(),
            relations: relations
                .iter()
                .map(|(id, r)| (id.to_string(), r.clone()))
                .collect(),
        }
    }

    #[test]
    fn equal_states_have_an_empty_diff() {
        let state = canvas(&[("a", block("A", 1))], &[("r", relation("a", "a"))]);
        assert!(diff_canvas(&state, &state).is_empty());
        assert!(diff_canvas(&CanvasState::default(), &CanvasState::default()).is_empty());
    }

    #[test]
    fn added_removed_and_changed_entities_are_told_apart() {
        let base = canvas(
            &[
                ("a", block("A", 1)),
                ("b", block("B", 2)),
                ("c", block("C", 3)),
            ],
            &[("r1", relation("a", "b"))],
        );
        let other = canvas(
            &[
                ("a", block("A", 1)),
                ("b", block("B2", 5)),
                ("d", block("D", 4)),
            ],
            &[("r2", relation("a", "d"))],
        );
        let diff = diff_canvas(&base, &other);

        assert_eq!(diff.blocks.added.len(), 1);
        assert_eq!(diff.blocks.added[0]["id"], "d");
        assert_eq!(diff.blocks.added[0]["name"], "D");
        assert_eq!(diff.blocks.removed.len(), 1);
        assert_eq!(diff.blocks.removed[0]["id"], "c");
        assert_eq!(diff.blocks.changed.len(), 1, "a is unchanged: {diff:?}");
        let change = &diff.blocks.changed[0];
        assert_eq!(change.id, "b");
        let fields: Vec<&str> = change.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, ["name", "visual"], "only differing fields");
        assert_eq!(change.fields["name"].before, "B");
        assert_eq!(change.fields["name"].after, "B2");
        assert_eq!(change.fields["visual"].after, json!({ "x": 5 }));

        assert_eq!(diff.relations.added[0]["id"], "r2");
        assert_eq!(diff.relations.added[0]["type"], "LINK", "API field names");
        assert_eq!(diff.relations.removed[0]["id"], "r1");
        assert!(diff.relations.changed.is_empty());
    }

    #[test]
    fn the_diff_reversed_swaps_added_and_removed_and_before_and_after() {
        let base = canvas(&[("a", block("A", 1)), ("b", block("B", 1))], &[]);
        let other = canvas(&[("a", block("A", 9)), ("c", block("C", 1))], &[]);
        let forward = diff_canvas(&base, &other);
        let backward = diff_canvas(&other, &base);
        assert_eq!(forward.blocks.added, backward.blocks.removed);
        assert_eq!(forward.blocks.removed, backward.blocks.added);
        let (f, b) = (&forward.blocks.changed[0], &backward.blocks.changed[0]);
        assert_eq!(f.fields["visual"].before, b.fields["visual"].after);
        assert_eq!(f.fields["visual"].after, b.fields["visual"].before);
    }

    #[test]
    fn a_field_that_appears_counts_as_changed_from_null() {
        let mut with_parent = block("A", 1);
        with_parent.parent_block_id = json!("p");
        let diff = diff_canvas(
            &canvas(&[("a", block("A", 1))], &[]),
            &canvas(&[("a", with_parent)], &[]),
        );
        let change = &diff.blocks.changed[0].fields["parent_block_id"];
        assert_eq!(change.before, Value::Null);
        assert_eq!(change.after, "p");
    }
}
