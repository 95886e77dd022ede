//! Restoring a version as a forward change (issue 14): the writes that make a document's `blocks`
//! and `relations` equal to a target canvas state, inside one transaction of the live document.
//!
//! Nothing of the document's history is rewritten: entities the target lacks are deleted, missing
//! ones are inserted, and of an entity present in both only the differing fields are set (inside a
//! nested `Y.Map`, only the differing keys), so the change is small and concurrent edits of other
//! fields survive. Keys the canvas model does not know are left alone.

use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use yrs::{Any, Map, MapPrelim, MapRef, Out, TransactionMut, WriteTxn};

use crate::canvas::{
    json_to_any, read_canvas, write_entity, CanvasState, BLOCKS, BLOCK_NESTED, RELATIONS,
    RELATION_NESTED,
};
use crate::diff::entity_fields;

/// How many entities a restore touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RestoreSummary {
    pub blocks_added: usize,
    pub blocks_removed: usize,
    pub blocks_changed: usize,
    pub relations_added: usize,
    pub relations_removed: usize,
    pub relations_changed: usize,
}

impl RestoreSummary {
    pub fn is_empty(&self) -> bool {
        *self == RestoreSummary::default()
    }
}

/// Writes into `txn` what makes the canvas read from it equal to `target`.
pub fn restore_canvas(txn: &mut TransactionMut, target: &CanvasState) -> RestoreSummary {
    let current = read_canvas(txn);
    let (blocks_added, blocks_removed, blocks_changed) =
        restore_root(txn, BLOCKS, &BLOCK_NESTED, &current.blocks, &target.blocks);
    let (relations_added, relations_removed, relations_changed) = restore_root(
        txn,
        RELATIONS,
        &RELATION_NESTED,
        &current.relations,
        &target.relations,
    );
    RestoreSummary {
        blocks_added,
        blocks_removed,
        blocks_changed,
        relations_added,
        relations_removed,
        relations_changed,
    }
}

/// Restores one root map; returns (added, removed, changed).
fn restore_root<E: PartialEq + Serialize>(
    txn: &mut TransactionMut,
    root_name: &str,
    nested: &[&str],
    current: &std::collections::BTreeMap<String, E>,
    target: &std::collections::BTreeMap<String, E>,
) -> (usize, usize, usize) {
    let root = txn.get_or_insert_map(root_name);
    let mut removed = 0;
    for id in current.keys().filter(|id| !target.contains_key(*id)) {
        root.remove(txn, id);
        removed += 1;
    }
    let (mut added, mut changed) = (0, 0);
    for (id, wanted) in target {
        match current.get(id) {
            None => {
                write_entity(txn, root_name, id, &present_fields(wanted), nested);
                added += 1;
            }
            Some(now) if now != wanted => {
                overwrite_entity(txn, &root, root_name, id, nested, now, wanted);
                changed += 1;
            }
            Some(_) => {}
        }
    }
    (added, removed, changed)
}

/// The non-null fields of an entity (an absent field reads as null, so null is "absent").
fn present_fields(entity: &impl Serialize) -> JsonMap<String, Value> {
    let mut fields = entity_fields(entity);
    fields.retain(|_, value| !value.is_null());
    fields
}

/// Sets the fields of entity `id` that differ from `wanted`.
fn overwrite_entity<E: Serialize>(
    txn: &mut TransactionMut,
    root: &MapRef,
    root_name: &str,
    id: &str,
    nested: &[&str],
    now: &E,
    wanted: &E,
) {
    let Some(Out::YMap(entity)) = root.get(txn, id) else {
        // Stored as a plain JSON value (or something odd): replace it with a proper Y.Map.
        root.remove(txn, id);
        write_entity(txn, root_name, id, &present_fields(wanted), nested);
        return;
    };
    let before = entity_fields(now);
    for (key, value) in entity_fields(wanted) {
        if before.get(&key) == Some(&value) {
            continue;
        }
        match value {
            Value::Null => {
                entity.remove(txn, &key);
            }
            Value::Object(object) if nested.contains(&key.as_str()) => {
                overwrite_nested(txn, &entity, &key, before.get(&key), object);
            }
            other => {
                entity.insert(txn, key.as_str(), json_to_any(&other));
            }
        }
    }
}

/// Makes the nested map `key` of `entity` hold exactly `wanted`, touching only differing keys
/// when it already is a `Y.Map`.
fn overwrite_nested(
    txn: &mut TransactionMut,
    entity: &MapRef,
    key: &str,
    before: Option<&Value>,
    wanted: JsonMap<String, Value>,
) {
    let inner = match entity.get(txn, key) {
        Some(Out::YMap(inner)) => inner,
        _ => {
            let fresh: MapPrelim = wanted
                .iter()
                .map(|(k, v)| (k.as_str(), json_to_any(v)))
                .collect::<Vec<(&str, Any)>>()
                .into_iter()
                .collect();
            entity.insert(txn, key, fresh);
            return;
        }
    };
    let old = before.and_then(Value::as_object);
    let stale: Vec<String> = inner
        .keys(txn)
        .filter(|k| !wanted.contains_key(*k))
        .map(str::to_owned)
        .collect();
    for k in stale {
        inner.remove(txn, &k);
    }
    for (k, v) in &wanted {
        if old.and_then(|o| o.get(k)) != Some(v) {
            inner.insert(txn, k.as_str(), json_to_any(v));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, put_relation, remove_block};
    use crate::diff::diff_canvas;
    use serde_json::json;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

    fn object(value: Value) -> JsonMap<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn read(doc: &Doc) -> CanvasState {
        read_canvas(&doc.transact())
    }

    fn block(doc: &Doc, id: &str, fields: Value) {
        put_block(&mut doc.transact_mut(), id, &object(fields)).unwrap();
    }

    fn restore(doc: &Doc, target: &CanvasState) -> RestoreSummary {
        restore_canvas(&mut doc.transact_mut(), target)
    }

    #[test]
    fn restoring_makes_the_canvas_equal_to_the_version() {
        let doc = new_canvas_doc();
        block(
            &doc,
            "a",
            json!({"type": "NODE", "name": "A", "config": {"k": 1, "gone": true}}),
        );
        block(&doc, "b", json!({"type": "NODE", "name": "B"}));
        put_relation(
            &mut doc.transact_mut(),
            "r",
            &object(json!({"source_block_id": "a", "target_block_id": "b", "type": "LINK"})),
        )
        .unwrap();
        let version = read(&doc);

        // Everything that can change after the version was taken.
        block(
            &doc,
            "a",
            json!({"name": "A2", "config": {"k": 2, "new": "x"}, "parent_block_id": "b"}),
        );
        remove_block(&mut doc.transact_mut(), "b");
        block(&doc, "c", json!({"type": "NODE", "name": "C"}));
        crate::canvas::remove_relation(&mut doc.transact_mut(), "r");
        assert!(!diff_canvas(&read(&doc), &version).is_empty());

        let summary = restore(&doc, &version);
        assert_eq!(read(&doc), version);
        assert_eq!(summary.blocks_added, 1, "b comes back");
        assert_eq!(summary.blocks_removed, 1, "c goes");
        assert_eq!(summary.blocks_changed, 1, "a is set back");
        assert_eq!(summary.relations_added, 1);
        assert!(
            restore(&doc, &version).is_empty(),
            "a second restore changes nothing"
        );
    }

    #[test]
    fn a_restore_is_an_update_other_replicas_converge_to() {
        let server = new_canvas_doc();
        block(
            &server,
            "a",
            json!({"type": "NODE", "name": "A", "visual": {"x": 1}}),
        );
        let version = read(&server);
        block(&server, "a", json!({"visual": {"x": 2, "y": 3}}));
        let editor = new_canvas_doc();
        let full = server
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        editor
            .transact_mut()
            .apply_update(Update::decode_v1(&full).unwrap())
            .unwrap();

        let before = server.transact().state_vector();
        restore(&server, &version);
        let forward = server.transact().encode_diff_v1(&before);
        editor
            .transact_mut()
            .apply_update(Update::decode_v1(&forward).unwrap())
            .unwrap();
        assert_eq!(
            read(&editor),
            version,
            "the editor sees the canvas jump back"
        );
    }

    #[test]
    fn unchanged_fields_are_not_rewritten() {
        let doc = new_canvas_doc();
        block(
            &doc,
            "a",
            json!({"type": "NODE", "name": "A", "config": {"k": 1}}),
        );
        let version = read(&doc);
        block(&doc, "a", json!({"name": "renamed"}));
        let before = doc.transact().state_vector();
        restore(&doc, &version);
        let forward = doc.transact().encode_diff_v1(&before);
        // One map entry (the name), not a re-inserted block with its nested maps.
        let small = {
            let scratch = new_canvas_doc();
            let sv = scratch.transact().state_vector();
            block(&scratch, "z", json!({"name": "A"}));
            let size = scratch.transact().encode_diff_v1(&sv).len();
            size
        };
        assert!(
            forward.len() <= small + 8,
            "restore update {} bytes vs one field {small}",
            forward.len()
        );
    }
}
