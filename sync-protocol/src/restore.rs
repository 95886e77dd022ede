//! Restoring a version as a forward change (issue 14): the writes that make a document's `blocks`
//! and `relations` equal to a target canvas state, inside one transaction of the live document.
//!
//! Nothing of the document's history is rewritten: entities the target lacks are deleted, missing
//! ones are inserted, and of an entity present in both only the differing fields are set (inside a
//! nested `Y.Map`, only the differing keys), so the change is small and concurrent edits of other
//! fields survive. Keys the canvas model does not know are left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use yrs::branch::{Branch, BranchID};
use yrs::{
    Array, Doc, GetString, Map, MapPrelim, MapRef, Out, ReadTxn, Transact, TransactionMut,
    WriteTxn, ID,
};

use crate::canvas::{json_to_any, out_to_json, BLOCKS, RELATIONS};
use crate::rules::{BLOCK_OBJECT_FIELDS, RELATION_OBJECT_FIELDS};

mod stored;
mod touched;
pub use stored::{KeyOrderLookup, StoredEntity, StoredValue, StoredVersion, Unsupported};
pub use touched::{touched_since, SearchLimits, Touched};

/// The canvas exactly as stored: every entity's JSON with all its keys (explicit `null`s and keys
/// the canvas model does not know included), so a restore reproduces the version faithfully.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawCanvas {
    pub blocks: BTreeMap<String, Value>,
    pub relations: BTreeMap<String, Value>,
}

/// Reads the raw canvas of a document.
pub fn read_raw_canvas<T: ReadTxn>(txn: &T) -> RawCanvas {
    let read = |name: &str| -> BTreeMap<String, Value> {
        txn.get_map(name).map_or_else(BTreeMap::new, |root| {
            root.iter(txn)
                .map(|(key, value)| (key.to_owned(), out_to_json(txn, &value, 0)))
                .collect()
        })
    };
    RawCanvas {
        blocks: read(BLOCKS),
        relations: read(RELATIONS),
    }
}

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

    /// From the (added, removed, changed) counts of each root.
    fn of_roots(blocks: (usize, usize, usize), relations: (usize, usize, usize)) -> Self {
        RestoreSummary {
            blocks_added: blocks.0,
            blocks_removed: blocks.1,
            blocks_changed: blocks.2,
            relations_added: relations.0,
            relations_removed: relations.1,
            relations_changed: relations.2,
        }
    }

    fn plus(self, other: RestoreSummary) -> RestoreSummary {
        RestoreSummary {
            blocks_added: self.blocks_added + other.blocks_added,
            blocks_removed: self.blocks_removed + other.blocks_removed,
            blocks_changed: self.blocks_changed + other.blocks_changed,
            relations_added: self.relations_added + other.relations_added,
            relations_removed: self.relations_removed + other.relations_removed,
            relations_changed: self.relations_changed + other.relations_changed,
        }
    }
}

/// Writes into `txn` what makes its `blocks` and `relations` equal to those of `version` (a
/// transaction on the version's document).
///
/// Entities are compared structurally, value by value, without building JSON: on a large canvas
/// most entities are unchanged and cost only the walk. Only entities that differ are read as JSON
/// and written.
pub fn restore_canvas<V: ReadTxn>(txn: &mut TransactionMut, version: &V) -> RestoreSummary {
    let blocks = restore_root(txn, version, BLOCKS, &BLOCK_OBJECT_FIELDS);
    let relations = restore_root(txn, version, RELATIONS, &RELATION_OBJECT_FIELDS);
    RestoreSummary::of_roots(blocks, relations)
}

/// What a restore compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// Only the entities touched since the version (this many).
    Touched(usize),
    /// Every entity.
    All,
    /// The touched entities, then every entity: the counts disagreed after the first pass (a
    /// case the search missed; never seen, but a restore must be exact).
    AllAfterMismatch,
}

/// Like [`restore_canvas`], but compares only the entities the live document touched since
/// `version` (an earlier state of the same document; see [`touched_since`]), and every entity
/// when that cannot be told cheaply. Same result: the touched entities are the only ones that can
/// differ. As a guard, the entity counts are checked afterwards and a full comparison runs in the
/// same transaction if they disagree.
pub fn restore_canvas_since<V: ReadTxn>(
    txn: &mut TransactionMut,
    version: &V,
    limits: SearchLimits,
) -> (RestoreSummary, Compared) {
    let Touched::Keys { blocks, relations } = touched_since(txn, version, limits) else {
        return (restore_canvas(txn, version), Compared::All);
    };
    let compared = blocks.len() + relations.len();
    let summary = RestoreSummary::of_roots(
        restore_keys(txn, version, BLOCKS, &BLOCK_OBJECT_FIELDS, &blocks),
        restore_keys(txn, version, RELATIONS, &RELATION_OBJECT_FIELDS, &relations),
    );
    if !same_counts(txn, version) {
        let rest = restore_canvas(txn, version);
        return (summary.plus(rest), Compared::AllAfterMismatch);
    }
    (summary, Compared::Touched(compared))
}

/// A version to restore: decoded into a document, or read straight from its stored update.
#[derive(Clone)]
pub enum VersionSource {
    Document(Arc<Doc>),
    Stored(Arc<StoredVersion>),
}

impl VersionSource {
    /// Restores the canvas of this version into `txn`, comparing only the entities touched since
    /// it when that can be told cheaply.
    pub fn restore_into(
        &self,
        txn: &mut TransactionMut,
        limits: SearchLimits,
    ) -> (RestoreSummary, Compared) {
        match self {
            VersionSource::Document(doc) => restore_canvas_since(txn, &doc.transact(), limits),
            VersionSource::Stored(stored) => restore_canvas_from_stored(txn, stored, limits),
        }
    }
}

/// Like [`restore_canvas_since`], with the version read straight from its stored update
/// ([`StoredVersion`]) instead of a decoded document. Entities are compared as JSON (as the canvas
/// reads them), so values that read the same (e.g. `1` stored as an integer or as a float) are
/// left as they are.
pub fn restore_canvas_from_stored(
    txn: &mut TransactionMut,
    version: &StoredVersion,
    limits: SearchLimits,
) -> (RestoreSummary, Compared) {
    let (keys, compared) = match touched::touched_since_side(txn, version, limits) {
        Touched::Keys { blocks, relations } => {
            let compared = Compared::Touched(blocks.len() + relations.len());
            ([blocks, relations], compared)
        }
        Touched::All => (all_keys(txn, version), Compared::All),
    };
    let summary = restore_stored_keys(txn, version, &keys);
    if stored_counts_match(txn, version) {
        return (summary, compared);
    }
    let rest = restore_stored_keys(txn, version, &all_keys(txn, version));
    (summary.plus(rest), Compared::AllAfterMismatch)
}

/// Every key of both roots, in the live document or in the version.
fn all_keys(txn: &TransactionMut, version: &StoredVersion) -> [BTreeSet<String>; 2] {
    [BLOCKS, RELATIONS].map(|name| {
        let mut keys: BTreeSet<String> = version
            .entries(name)
            .map(|(key, _)| key.to_owned())
            .collect();
        if let Some(root) = txn.get_map(name) {
            keys.extend(root.keys(txn).map(str::to_owned));
        }
        keys
    })
}

fn stored_counts_match(txn: &TransactionMut, version: &StoredVersion) -> bool {
    [BLOCKS, RELATIONS].into_iter().all(|name| {
        let live = txn.get_map(name).map_or(0, |m| m.len(txn) as usize);
        live == version.len(name)
    })
}

fn restore_stored_keys(
    txn: &mut TransactionMut,
    version: &StoredVersion,
    [blocks, relations]: &[BTreeSet<String>; 2],
) -> RestoreSummary {
    RestoreSummary::of_roots(
        restore_keys_json(txn, version, BLOCKS, &BLOCK_OBJECT_FIELDS, blocks),
        restore_keys_json(txn, version, RELATIONS, &RELATION_OBJECT_FIELDS, relations),
    )
}

/// Restores the keys `ids` of one root map from the stored version; returns (added, removed,
/// changed).
fn restore_keys_json(
    txn: &mut TransactionMut,
    version: &StoredVersion,
    root_name: &str,
    nested: &[&str],
    ids: &BTreeSet<String>,
) -> (usize, usize, usize) {
    let root = txn.get_or_insert_map(root_name);
    let (mut added, mut changed) = (0, 0);
    let mut gone = Removals::default();
    let mut stored = version.entities_in_order(root_name);
    for id in ids {
        // Each case reads the version's entity once, in the form it needs.
        match (root.get(txn, id), stored.seek(id)) {
            (None, None) => {}
            (Some(now), None) => gone.push(&now, id),
            (None, Some(wanted)) => {
                insert_stored_entity(txn, &root, id, nested, wanted.value());
                added += 1;
            }
            (Some(now), Some(wanted)) => {
                let wanted = wanted.json();
                let now = out_to_json(txn, &now, 0);
                if now != wanted {
                    overwrite_entity(txn, &root, id, nested, &now, &wanted);
                    changed += 1;
                }
            }
        }
    }
    (added, gone.remove_from(txn, &root), changed)
}

/// Whether both roots hold as many entities as the version's.
fn same_counts<V: ReadTxn>(txn: &TransactionMut, version: &V) -> bool {
    [BLOCKS, RELATIONS].into_iter().all(|name| {
        let live = txn.get_map(name).map_or(0, |m| m.len(txn));
        live == version.get_map(name).map_or(0, |m| m.len(version))
    })
}

/// Restores the keys `ids` of one root map; returns (added, removed, changed).
fn restore_keys<V: ReadTxn>(
    txn: &mut TransactionMut,
    version: &V,
    root_name: &str,
    nested: &[&str],
    ids: &BTreeSet<String>,
) -> (usize, usize, usize) {
    let root = txn.get_or_insert_map(root_name);
    let wanted_root = version.get_map(root_name);
    let (mut added, mut changed) = (0, 0);
    let mut gone = Removals::default();
    for id in ids {
        let wanted = wanted_root.as_ref().and_then(|w| w.get(version, id));
        match (root.get(txn, id), wanted) {
            (None, None) => {}
            (Some(now), None) => gone.push(&now, id),
            (None, Some(wanted)) => {
                let wanted = out_to_json(version, &wanted, 0);
                insert_entity(txn, &root, id, nested, &wanted);
                added += 1;
            }
            (Some(now), Some(wanted)) => {
                if !same_value(txn, &now, version, &wanted, 0) {
                    let (now, wanted) =
                        (out_to_json(txn, &now, 0), out_to_json(version, &wanted, 0));
                    overwrite_entity(txn, &root, id, nested, &now, &wanted);
                    changed += 1;
                }
            }
        }
    }
    (added, gone.remove_from(txn, &root), changed)
}

/// Restores one root map; returns (added, removed, changed).
fn restore_root<V: ReadTxn>(
    txn: &mut TransactionMut,
    version: &V,
    root_name: &str,
    nested: &[&str],
) -> (usize, usize, usize) {
    let root = txn.get_or_insert_map(root_name);
    let wanted_root = version.get_map(root_name);
    let mut gone = Removals::default();
    for (id, now) in root.iter(txn) {
        if wanted_root
            .as_ref()
            .is_none_or(|w| !w.contains_key(version, id))
        {
            gone.push(&now, id.to_owned());
        }
    }
    let removed = gone.remove_from(txn, &root);
    let Some(wanted_root) = wanted_root else {
        return (0, removed, 0);
    };
    let (mut added, mut changed) = (0, 0);
    for (id, wanted) in wanted_root.iter(version) {
        match root.get(txn, id) {
            None => {
                let wanted = out_to_json(version, &wanted, 0);
                insert_entity(txn, &root, id, nested, &wanted);
                added += 1;
            }
            Some(now) if !same_value(txn, &now, version, &wanted, 0) => {
                let (now, wanted) = (out_to_json(txn, &now, 0), out_to_json(version, &wanted, 0));
                overwrite_entity(txn, &root, id, nested, &now, &wanted);
                changed += 1;
            }
            Some(_) => {}
        }
    }
    (added, removed, changed)
}

/// Entities to remove from a root map, removed in the order they were created. The transaction's
/// delete set is kept sorted by clock, so removals in key order (random for UUID keys) would each
/// insert into its middle: quadratic for a whole canvas, where creation order only appends.
struct Removals<K>(Vec<(Option<ID>, K)>);

impl<K> Default for Removals<K> {
    fn default() -> Self {
        Removals(Vec::new())
    }
}

impl<K: AsRef<str>> Removals<K> {
    fn push(&mut self, now: &Out, id: K) {
        self.0.push((created_as(now), id));
    }

    /// Removes them all; returns how many.
    fn remove_from(mut self, txn: &mut TransactionMut, root: &MapRef) -> usize {
        self.0.sort_unstable_by_key(|(created, _)| *created);
        for (_, id) in &self.0 {
            root.remove(txn, id.as_ref());
        }
        self.0.len()
    }
}

/// The id an entity's entry was created with (entities are `Y.Map`s; an atomic entity has none
/// the API shows, and is removed first).
fn created_as(value: &Out) -> Option<ID> {
    match value {
        Out::YMap(map) => match AsRef::<Branch>::as_ref(map).id() {
            BranchID::Nested(id) => Some(id),
            BranchID::Root(_) => None,
        },
        _ => None,
    }
}

/// Whether two values (of two documents) read the same, compared without converting them.
/// Conservative: types the canvas does not use compare unequal (and are rewritten).
fn same_value<A: ReadTxn, B: ReadTxn>(
    a_txn: &A,
    a: &Out,
    b_txn: &B,
    b: &Out,
    depth: usize,
) -> bool {
    if depth > MAX_COMPARE_DEPTH {
        return false;
    }
    match (a, b) {
        (Out::Any(x), Out::Any(y)) => x == y,
        (Out::YMap(x), Out::YMap(y)) => {
            x.len(a_txn) == y.len(b_txn)
                && x.iter(a_txn).all(|(key, value)| {
                    y.get(b_txn, key)
                        .is_some_and(|other| same_value(a_txn, &value, b_txn, &other, depth + 1))
                })
        }
        (Out::YText(x), Out::YText(y)) => x.get_string(a_txn) == y.get_string(b_txn),
        (Out::YArray(x), Out::YArray(y)) => {
            x.len(a_txn) == y.len(b_txn)
                && x.iter(a_txn)
                    .zip(y.iter(b_txn))
                    .all(|(v, w)| same_value(a_txn, &v, b_txn, &w, depth + 1))
        }
        _ => false,
    }
}

/// Deeper than the JSON reader goes: such values are rewritten rather than compared.
const MAX_COMPARE_DEPTH: usize = 64;

/// Inserts entity `id` as a `Y.Map` (nested fields as nested `Y.Map`s, like the editor writes
/// them); a value that is not an object is stored as it was, an atomic value.
fn insert_entity(
    txn: &mut TransactionMut,
    root: &MapRef,
    id: &str,
    nested: &[&str],
    wanted: &Value,
) {
    let Value::Object(fields) = wanted else {
        root.insert(txn, id, json_to_any(wanted));
        return;
    };
    let entity = root.insert(txn, id, MapPrelim::default());
    for (key, value) in fields {
        set_field(txn, &entity, nested, key, value);
    }
}

/// [`insert_entity`] from a stored version's values: the same shape (an object entity as a
/// `Y.Map`, its nested fields as nested `Y.Map`s of atomic values), with the version's values
/// exactly as stored and no JSON in between.
fn insert_stored_entity(
    txn: &mut TransactionMut,
    root: &MapRef,
    id: &str,
    nested: &[&str],
    wanted: StoredValue,
) {
    let fields = match wanted.into_entries() {
        Ok(fields) => fields,
        Err(atomic) => {
            root.insert(txn, id, atomic);
            return;
        }
    };
    let entity = root.insert(txn, id, MapPrelim::default());
    for (key, value) in fields {
        if !nested.contains(&key.as_str()) {
            entity.insert(txn, key, value.into_any());
            continue;
        }
        match value.into_entries() {
            Ok(inner_fields) => {
                let inner = entity.insert(txn, key, MapPrelim::default());
                for (k, v) in inner_fields {
                    inner.insert(txn, k, v.into_any());
                }
            }
            Err(atomic) => {
                entity.insert(txn, key, atomic);
            }
        }
    }
}

fn set_field(txn: &mut TransactionMut, entity: &MapRef, nested: &[&str], key: &str, value: &Value) {
    match value {
        Value::Object(object) if nested.contains(&key) => {
            let inner = entity.insert(txn, key, MapPrelim::default());
            for (k, v) in object {
                inner.insert(txn, k.as_str(), json_to_any(v));
            }
        }
        other => {
            entity.insert(txn, key, json_to_any(other));
        }
    }
}

/// Sets the keys of entity `id` that differ from `wanted` and removes the ones it lacks.
fn overwrite_entity(
    txn: &mut TransactionMut,
    root: &MapRef,
    id: &str,
    nested: &[&str],
    now: &Value,
    wanted: &Value,
) {
    let (Some(Out::YMap(entity)), Value::Object(fields), Value::Object(before)) =
        (root.get(txn, id), wanted, now)
    else {
        // A plain JSON value on either side: replace the entity as a whole.
        insert_entity(txn, root, id, nested, wanted);
        return;
    };
    for key in before.keys().filter(|k| !fields.contains_key(*k)) {
        entity.remove(txn, key);
    }
    for (key, value) in fields {
        if before.get(key) == Some(value) {
            continue;
        }
        match (value, entity.get(txn, key)) {
            (Value::Object(object), Some(Out::YMap(inner))) if nested.contains(&key.as_str()) => {
                overwrite_nested(txn, &inner, before.get(key), object);
            }
            _ => set_field(txn, &entity, nested, key, value),
        }
    }
}

/// Makes a nested `Y.Map` hold exactly `wanted`, touching only the differing keys (concurrent
/// edits of other keys survive).
fn overwrite_nested(
    txn: &mut TransactionMut,
    inner: &MapRef,
    before: Option<&Value>,
    wanted: &JsonMap<String, Value>,
) {
    let old = before.and_then(Value::as_object);
    let stale: Vec<String> = inner
        .keys(txn)
        .filter(|k| !wanted.contains_key(*k))
        .map(str::to_owned)
        .collect();
    for k in stale {
        inner.remove(txn, &k);
    }
    for (k, v) in wanted {
        if old.and_then(|o| o.get(k)) != Some(v) {
            inner.insert(txn, k.as_str(), json_to_any(v));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{
        new_canvas_doc, put_block, put_relation, read_canvas, remove_block, CanvasState,
    };
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

    fn raw(doc: &Doc) -> RawCanvas {
        read_raw_canvas(&doc.transact())
    }

    fn restore(doc: &Doc, version: &Doc) -> RestoreSummary {
        restore_canvas(&mut doc.transact_mut(), &version.transact())
    }

    /// A copy of `doc` as a version stores it (its full state, decoded into a new document).
    pub(super) fn copy(doc: &Doc) -> Doc {
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let copy = new_canvas_doc();
        copy.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        copy
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
        let version = raw(&doc);
        let version_doc = copy(&doc);
        let version_canvas = read(&doc);

        // Everything that can change after the version was taken.
        block(
            &doc,
            "a",
            json!({"name": "A2", "config": {"k": 2, "new": "x"}, "parent_block_id": "b"}),
        );
        remove_block(&mut doc.transact_mut(), "b");
        block(&doc, "c", json!({"type": "NODE", "name": "C"}));
        crate::canvas::remove_relation(&mut doc.transact_mut(), "r");
        assert!(!diff_canvas(&read(&doc), &version_canvas).is_empty());

        let summary = restore(&doc, &version_doc);
        assert_eq!(raw(&doc), version);
        assert_eq!(read(&doc), version_canvas);
        assert_eq!(summary.blocks_added, 1, "b comes back");
        assert_eq!(summary.blocks_removed, 1, "c goes");
        assert_eq!(summary.blocks_changed, 1, "a is set back");
        assert_eq!(summary.relations_added, 1);
        assert!(
            restore(&doc, &version_doc).is_empty(),
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
        let version = raw(&server);
        let version_doc = copy(&server);
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
        restore(&server, &version_doc);
        let forward = server.transact().encode_diff_v1(&before);
        editor
            .transact_mut()
            .apply_update(Update::decode_v1(&forward).unwrap())
            .unwrap();
        assert_eq!(
            raw(&editor),
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
        let version = raw(&doc);
        let version_doc = copy(&doc);
        block(&doc, "a", json!({"name": "renamed"}));
        let before = doc.transact().state_vector();
        restore(&doc, &version_doc);
        assert_eq!(raw(&doc), version);
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

    #[test]
    fn explicit_nulls_unknown_keys_and_plain_json_entities_come_back_exactly() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            let a = blocks.insert(&mut txn, "a", MapPrelim::default());
            a.insert(&mut txn, "name", "A");
            a.insert(&mut txn, "parent_block_id", yrs::Any::Null);
            a.insert(&mut txn, "x-editor-hint", "kept");
            blocks.insert(
                &mut txn,
                "plain",
                json_to_any(&json!({"name": "P", "type": "NODE"})),
            );
        }
        let version = raw(&doc);
        let version_doc = copy(&doc);
        assert_eq!(version.blocks["a"]["parent_block_id"], Value::Null);
        assert!(version.blocks["a"]
            .as_object()
            .unwrap()
            .contains_key("parent_block_id"));
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            let Some(Out::YMap(a)) = blocks.get(&txn, "a") else {
                panic!("a is a map")
            };
            a.remove(&mut txn, "parent_block_id");
            a.remove(&mut txn, "x-editor-hint");
            a.insert(&mut txn, "extra", 1);
            blocks.remove(&mut txn, "plain");
        }
        restore(&doc, &version_doc);
        assert_eq!(raw(&doc), version);
    }
}
/// A realistic round: many entities, the editor that made the bad change receives the restore.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod replica_tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, read_canvas, remove_block};
    use serde_json::json;
    use yrs::updates::decoder::Decode;
    use yrs::{ReadTxn, StateVector, Transact, Update};

    #[test]
    fn the_editor_that_made_the_changes_converges_to_the_restored_version() {
        let writer = new_canvas_doc();
        let ids: Vec<String> = (0..1000)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        {
            let mut txn = writer.transact_mut();
            for (i, id) in ids.iter().enumerate() {
                let f = json!({"type":"service","name":format!("Block {i}"),"config":{"replicas":1,"image":"x"},"visual":{"x":(i%100) as f64 * 40.0}});
                put_block(&mut txn, id, f.as_object().unwrap()).unwrap();
            }
        }
        let server = new_canvas_doc();
        let full = writer
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        server
            .transact_mut()
            .apply_update(Update::decode_v1(&full).unwrap())
            .unwrap();
        let version = super::tests::copy(&server);
        let expected = read_canvas(&server.transact());
        {
            let sv = writer.transact().state_vector();
            let mut txn = writer.transact_mut();
            for id in &ids[..100] {
                put_block(&mut txn, id, json!({"name":"renamed"}).as_object().unwrap()).unwrap();
            }
            for id in &ids[100..200] {
                remove_block(&mut txn, id);
            }
            for i in 0..100 {
                let f = json!({"type":"service","name":format!("New {i}")});
                put_block(
                    &mut txn,
                    &uuid::Uuid::new_v4().to_string(),
                    f.as_object().unwrap(),
                )
                .unwrap();
            }
            drop(txn);
            let d = writer.transact().encode_diff_v1(&sv);
            server
                .transact_mut()
                .apply_update(Update::decode_v1(&d).unwrap())
                .unwrap();
        }
        let sv = server.transact().state_vector();
        restore_canvas(&mut server.transact_mut(), &version.transact());
        assert_eq!(read_canvas(&server.transact()), expected, "server");
        let d = server.transact().encode_diff_v1(&sv);
        writer
            .transact_mut()
            .apply_update(Update::decode_v1(&d).unwrap())
            .unwrap();
        let got = read_canvas(&writer.transact());
        assert_eq!(got.blocks.len(), expected.blocks.len(), "writer count");
        assert_eq!(got, expected, "writer");
    }

    fn full_state(doc: &yrs::Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    fn replica(state: &[u8]) -> yrs::Doc {
        let doc = new_canvas_doc();
        doc.transact_mut()
            .apply_update(Update::decode_v1(state).unwrap())
            .unwrap();
        doc
    }

    /// The whole-canvas replacements: every other entity removed (many separate runs of collected
    /// structs in one commit: the patched yrs compaction), then everything removed, then
    /// everything written back from the stored version with its values exactly as stored.
    #[test]
    fn whole_canvas_replacements_from_the_stored_version_are_exact_and_replicate() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(crate::canvas::BLOCKS);
            for i in 0..400 {
                let f = json!({"type": "service", "name": format!("Block {i}"),
                    "config": {"replicas": i % 3, "ratio": 0.5}, "visual": {"x": i as f64}});
                put_block(&mut txn, &format!("b{i:04}"), f.as_object().unwrap()).unwrap();
            }
            // Values JSON would not keep as they are: an integral float, a binary, an atomic
            // map entity.
            let typed = blocks
                .get(&txn, "b0000")
                .unwrap()
                .cast::<yrs::MapRef>()
                .unwrap();
            typed.insert(
                &mut txn,
                "weight",
                yrs::Any::Number(yrs::Number::Float(2.0)),
            );
            typed.insert(&mut txn, "blob", yrs::Any::Buffer(vec![1u8, 2, 3].into()));
            blocks.insert(&mut txn, "atomic", yrs::Any::from(vec![1i64, 2]));
        }
        let version_state = full_state(&doc);
        let version = StoredVersion::parse(version_state.clone()).unwrap();
        let expected = read_canvas(&doc.transact());
        let empty = StoredVersion::parse(full_state(&new_canvas_doc())).unwrap();

        let live = replica(&version_state);
        let before = live.transact().state_vector();
        {
            let mut txn = live.transact_mut();
            for i in (0..400).step_by(2) {
                remove_block(&mut txn, &format!("b{i:04}"));
            }
        }
        assert_eq!(read_canvas(&live.transact()).blocks.len(), 201);
        let (summary, _) =
            restore_canvas_from_stored(&mut live.transact_mut(), &empty, SearchLimits::default());
        assert_eq!((summary.blocks_removed, summary.blocks_added), (201, 0));
        assert!(read_canvas(&live.transact()).blocks.is_empty());
        let (summary, _) =
            restore_canvas_from_stored(&mut live.transact_mut(), &version, SearchLimits::default());
        assert_eq!(summary.blocks_added, 401);
        assert_eq!(read_canvas(&live.transact()), expected);
        {
            let txn = live.transact();
            let blocks = txn.get_map(crate::canvas::BLOCKS).unwrap();
            let typed = blocks
                .get(&txn, "b0000")
                .unwrap()
                .cast::<yrs::MapRef>()
                .unwrap();
            let any = |key: &str| match typed.get(&txn, key) {
                Some(yrs::Out::Any(any)) => any,
                other => panic!("{key}: {other:?}"),
            };
            let float = yrs::Any::Number(yrs::Number::Float(2.0));
            assert_eq!(any("weight"), float, "an integral float stays a float");
            let blob = yrs::Any::Buffer(vec![1u8, 2, 3].into());
            assert_eq!(any("blob"), blob, "binary kept");
            let visual = typed.get(&txn, "visual").unwrap();
            assert!(
                visual.cast::<yrs::MapRef>().is_ok(),
                "nested fields as a Y.Map"
            );
        }
        // The document's own full state rebuilds it, and a replica that had the version
        // converges through the forward changes alone.
        let rebuilt = replica(&full_state(&live));
        assert_eq!(read_canvas(&rebuilt.transact()), expected, "full state");
        let editor = replica(&version_state);
        let changes = live.transact().encode_diff_v1(&before);
        editor
            .transact_mut()
            .apply_update(Update::decode_v1(&changes).unwrap())
            .unwrap();
        assert_eq!(read_canvas(&editor.transact()), expected, "editor");
    }
}
