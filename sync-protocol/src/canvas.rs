//! The canvas document model: the `blocks` and `relations` root maps of a workspace's Yjs doc
//! (DESIGN §2), read into plain JSON and written by server-originated transactions.
//!
//! Reading is deliberately lenient and raw: clients differ (a block or its `config` may be a nested
//! `Y.Map` or a plain JSON object stored as one `Any` value), and the CRDT can converge to values the
//! tables forbid. Everything is read as `serde_json::Value`; what is valid is said by
//! [`crate::rules`] (refused at the HTTP edge) and applied to the document by [`crate::projection`]
//! (repaired and reported).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map as JsonMap, Value};
use uuid::Uuid;
use yrs::{
    Any, Array, Doc, GetString, Map, MapPrelim, MapRef, Number, OffsetKind, Options, Out, ReadTxn,
    StateVector, Transact, TransactionMut, WriteTxn,
};

use crate::projection::{BlockRow, InvaderUsageRow, RelationRow};
use crate::rules::graph::Cascade;
use crate::rules::{
    BLOCK_FIELDS, BLOCK_OBJECT_FIELDS as BLOCK_NESTED, RELATION_FIELDS,
    RELATION_OBJECT_FIELDS as RELATION_NESTED,
};

/// Root map of blocks: `blockId → Y.Map` (or a plain JSON object).
pub const BLOCKS: &str = "blocks";
/// Root map of relations: `relationId → Y.Map` (or a plain JSON object).
pub const RELATIONS: &str = "relations";

/// Nesting deeper than this is read as `null`: it bounds recursion (stack) on hostile documents and
/// is far beyond anything the editor writes.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a write was refused. Nothing is written when an error is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanvasError {
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("field `{0}` must be a JSON object or null")]
    NotAnObject(String),
}

/// One block as found in the doc, raw and unvalidated; an absent field is `Value::Null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// The doc key `type` (a keyword in Rust).
    #[serde(rename = "type")]
    pub block_type: Value,
    pub name: Value,
    pub parent_block_id: Value,
    pub origin_asset_id: Value,
    pub created_by_id: Value,
    pub config: Value,
    pub visual: Value,
    pub invaders: Value,
}

/// One relation as found in the doc, raw and unvalidated; an absent field is `Value::Null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationEntry {
    pub source_block_id: Value,
    pub target_block_id: Value,
    #[serde(rename = "type")]
    pub relation_type: Value,
    pub rules: Value,
    pub visual: Value,
}

/// The whole canvas, keyed by the raw doc keys (which need not be UUIDs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanvasState {
    pub blocks: BTreeMap<String, BlockEntry>,
    pub relations: BTreeMap<String, RelationEntry>,
}

/// A fresh canvas doc: random client id (yrs' default, so two loads never reuse one), UTF-16 offsets
/// like the JS clients, and both root maps created now, because `get_or_insert_map` on the doc
/// deadlocks if a transaction is open later on the same thread.
pub fn new_canvas_doc() -> Doc {
    let doc = Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    });
    doc.get_or_insert_map(BLOCKS);
    doc.get_or_insert_map(RELATIONS);
    doc
}

/// Reads the canvas inside an existing transaction (the server reads while it holds one).
pub fn read_canvas<T: ReadTxn>(txn: &T) -> CanvasState {
    CanvasState {
        blocks: read_root(txn, BLOCKS, block_entry),
        relations: read_root(txn, RELATIONS, relation_entry),
    }
}

/// The canvas of entities already read as JSON (each entity as [`read_canvas`] reads it from a
/// document), e.g. from a stored version without a document.
pub fn canvas_from_json(
    blocks: impl IntoIterator<Item = (String, Value)>,
    relations: impl IntoIterator<Item = (String, Value)>,
) -> CanvasState {
    CanvasState {
        blocks: blocks
            .into_iter()
            .map(|(id, value)| (id, block_entry(value)))
            .collect(),
        relations: relations
            .into_iter()
            .map(|(id, value)| (id, relation_entry(value)))
            .collect(),
    }
}

/// Reads block `id` alone (`None` when absent): what an edit answers with, without reading the
/// whole canvas again.
pub fn read_block<T: ReadTxn>(txn: &T, id: &str) -> Option<BlockEntry> {
    read_entry(txn, BLOCKS, id, block_entry)
}

/// Reads relation `id` alone (`None` when absent).
pub fn read_relation<T: ReadTxn>(txn: &T, id: &str) -> Option<RelationEntry> {
    read_entry(txn, RELATIONS, id, relation_entry)
}

fn read_entry<T: ReadTxn, E>(txn: &T, root: &str, id: &str, entry: fn(Value) -> E) -> Option<E> {
    let value = txn.get_map(root)?.get(txn, id)?;
    Some(entry(out_to_json(txn, &value, 0)))
}

fn read_root<T: ReadTxn, E>(txn: &T, name: &str, entry: fn(Value) -> E) -> BTreeMap<String, E> {
    let Some(root) = txn.get_map(name) else {
        return BTreeMap::new();
    };
    root.iter(txn)
        .map(|(key, value)| (key.to_owned(), entry(out_to_json(txn, &value, 0))))
        .collect()
}

/// A block value that is not an object (say a number) reads as all-null fields, so the projection
/// reports it instead of it vanishing silently.
fn block_entry(value: Value) -> BlockEntry {
    let mut fields = into_object(value);
    let mut take = |key: &str| fields.remove(key).unwrap_or(Value::Null);
    BlockEntry {
        block_type: take("type"),
        name: take("name"),
        parent_block_id: take("parent_block_id"),
        origin_asset_id: take("origin_asset_id"),
        created_by_id: take("created_by_id"),
        config: take("config"),
        visual: take("visual"),
        invaders: take("invaders"),
    }
}

fn relation_entry(value: Value) -> RelationEntry {
    let mut fields = into_object(value);
    let mut take = |key: &str| fields.remove(key).unwrap_or(Value::Null);
    RelationEntry {
        source_block_id: take("source_block_id"),
        target_block_id: take("target_block_id"),
        relation_type: take("type"),
        rules: take("rules"),
        visual: take("visual"),
    }
}

fn into_object(value: Value) -> JsonMap<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => JsonMap::new(),
    }
}

/// Converts any doc value to JSON, shared types recursively. Types the canvas does not use (XML,
/// sub-documents, unresolved references) read as `null`.
pub(crate) fn out_to_json<T: ReadTxn>(txn: &T, value: &Out, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        Out::Any(any) => any_to_json(any, depth),
        Out::YText(text) => Value::String(text.get_string(txn)),
        Out::YArray(array) => Value::Array(
            array
                .iter(txn)
                .map(|item| out_to_json(txn, &item, depth + 1))
                .collect(),
        ),
        Out::YMap(map) => Value::Object(
            map.iter(txn)
                .map(|(key, item)| (key.to_owned(), out_to_json(txn, &item, depth + 1)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Converts an `Any` to JSON. Binary buffers have no JSON form and read as `null`.
pub fn any_to_json(value: &Any, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        Any::Null | Any::Undefined | Any::Buffer(_) => Value::Null,
        Any::Bool(b) => Value::Bool(*b),
        Any::Number(n) => number_to_json(*n),
        Any::String(s) => Value::String(s.to_string()),
        Any::Array(items) => {
            Value::Array(items.iter().map(|i| any_to_json(i, depth + 1)).collect())
        }
        Any::Map(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), any_to_json(v, depth + 1)))
                .collect(),
        ),
    }
}

/// JS has a single number type: an integral float (yrs may decode `3` as a float, depending on the
/// encoder) reads as an integer, so the same doc always yields the same JSON. NaN/∞ (not JSON) → null.
fn number_to_json(number: Number) -> Value {
    let integral = match number {
        Number::Float(f) => Number::try_i64(f),
        int => int,
    };
    match integral {
        Number::Int(i) => Value::from(i),
        Number::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

/// Converts JSON to an `Any` (an atomic value in the doc: nested objects inside it are not `Y.Map`s).
pub fn json_to_any(value: &Value) -> Any {
    match value {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Any::Number(Number::Int(i)),
            None => Any::Number(Number::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Any::String(Arc::from(s.as_str())),
        Value::Array(items) => Any::Array(items.iter().map(json_to_any).collect()),
        Value::Object(map) => Any::Map(Arc::new(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_any(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

/// Creates or updates block `id`, setting only the given fields (a patch is a put with fewer
/// fields). Scalars are set as given (`null` sets null). `config`, `visual` and `invaders` are
/// merged one level: each key of the given object is set inside the block's nested `Y.Map`, other
/// keys are kept (so a concurrent edit of another key survives); `null` for the whole field
/// replaces it with null. A block stored as a plain JSON object is converted to a `Y.Map` first,
/// keeping its fields.
pub fn put_block(
    txn: &mut TransactionMut,
    id: &str,
    fields: &JsonMap<String, Value>,
) -> Result<(), CanvasError> {
    validate_fields(fields, &BLOCK_FIELDS, &BLOCK_NESTED)?;
    write_entity(txn, BLOCKS, id, fields, &BLOCK_NESTED);
    Ok(())
}

/// Creates or updates relation `id`; same semantics as [`put_block`], with `rules` and `visual`
/// as the nested maps.
pub fn put_relation(
    txn: &mut TransactionMut,
    id: &str,
    fields: &JsonMap<String, Value>,
) -> Result<(), CanvasError> {
    validate_fields(fields, &RELATION_FIELDS, &RELATION_NESTED)?;
    write_entity(txn, RELATIONS, id, fields, &RELATION_NESTED);
    Ok(())
}

/// Removes block `id` alone, as a stock client does (its children and relations are left: the
/// projection repairs them). Returns whether it existed. The server removes with
/// [`remove_cascade`].
pub fn remove_block(txn: &mut TransactionMut, id: &str) -> bool {
    remove_entity(txn, BLOCKS, id)
}

/// Removes every block and relation of `cascade` (see [`crate::rules::graph::cascade`]) in the
/// caller's transaction, so peers receive the delete and its consequences as one update.
pub fn remove_cascade(txn: &mut TransactionMut, cascade: &Cascade) {
    for key in &cascade.relations {
        remove_entity(txn, RELATIONS, key);
    }
    for key in &cascade.blocks {
        remove_entity(txn, BLOCKS, key);
    }
}

/// Removes relation `id`. Returns whether it existed.
pub fn remove_relation(txn: &mut TransactionMut, id: &str) -> bool {
    remove_entity(txn, RELATIONS, id)
}

fn remove_entity(txn: &mut TransactionMut, root: &str, id: &str) -> bool {
    match txn.get_map(root) {
        Some(map) => map.remove(txn, id).is_some(),
        None => false,
    }
}

/// Checked before anything is written, so a refused put leaves the doc untouched.
fn validate_fields(
    fields: &JsonMap<String, Value>,
    allowed: &[&str],
    nested: &[&str],
) -> Result<(), CanvasError> {
    for (key, value) in fields {
        if !allowed.contains(&key.as_str()) {
            return Err(CanvasError::UnknownField(key.clone()));
        }
        if nested.contains(&key.as_str()) && !(value.is_object() || value.is_null()) {
            return Err(CanvasError::NotAnObject(key.clone()));
        }
    }
    Ok(())
}

/// Infallible writer shared by the public puts and the import from rows (rows may hold odd JSONB,
/// which is then written as an atomic value for the projection to judge).
pub(crate) fn write_entity(
    txn: &mut TransactionMut,
    root: &str,
    id: &str,
    fields: &JsonMap<String, Value>,
    nested: &[&str],
) {
    let root = txn.get_or_insert_map(root);
    let entity = ensure_ymap(txn, &root, id);
    for (key, value) in fields {
        match value {
            Value::Object(object) if nested.contains(&key.as_str()) => {
                let inner = ensure_ymap(txn, &entity, key);
                for (inner_key, inner_value) in object {
                    inner.insert(txn, inner_key.as_str(), json_to_any(inner_value));
                }
            }
            _ => {
                entity.insert(txn, key.as_str(), json_to_any(value));
            }
        }
    }
}

/// Returns the `Y.Map` under `key`, creating it if absent. A plain JSON object found there is
/// converted to a `Y.Map` with the same entries, so a merge keeps them; any other value is replaced.
fn ensure_ymap(txn: &mut TransactionMut, parent: &MapRef, key: &str) -> MapRef {
    match parent.get(&*txn, key) {
        Some(Out::YMap(map)) => map,
        Some(Out::Any(Any::Map(old))) => {
            let prelim: MapPrelim = old.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            parent.insert(txn, key, prelim)
        }
        _ => parent.insert(txn, key, MapPrelim::default()),
    }
}

/// Builds a doc from projected rows (a workspace imported as rows, without a snapshot) and returns
/// its full state as a v1 update. Deleted relations are left out; usages of blocks not in `blocks`
/// are dropped (they would have nowhere to live).
pub fn canvas_update_from_rows(
    blocks: &[BlockRow],
    relations: &[RelationRow],
    usages: &[InvaderUsageRow],
) -> Vec<u8> {
    let doc = new_canvas_doc();
    let invaders = invaders_by_block(usages);
    {
        let mut txn = doc.transact_mut();
        for row in blocks {
            let fields = block_row_fields(row, invaders.get(&row.id));
            write_entity(
                &mut txn,
                BLOCKS,
                &row.id.to_string(),
                &fields,
                &BLOCK_NESTED,
            );
        }
        for row in relations.iter().filter(|r| !r.deleted) {
            let fields = relation_row_fields(row);
            write_entity(
                &mut txn,
                RELATIONS,
                &row.id.to_string(),
                &fields,
                &RELATION_NESTED,
            );
        }
    }
    let txn = doc.transact();
    txn.encode_state_as_update_v1(&StateVector::default())
}

fn invaders_by_block(usages: &[InvaderUsageRow]) -> HashMap<Uuid, JsonMap<String, Value>> {
    let mut by_block: HashMap<Uuid, JsonMap<String, Value>> = HashMap::new();
    for usage in usages {
        let entry = serde_json::json!({
            "applied_version": usage.applied_version,
            "config_snapshot": usage.config_snapshot,
        });
        by_block
            .entry(usage.block_id)
            .or_default()
            .insert(usage.invader_asset_id.to_string(), entry);
    }
    by_block
}

fn optional_id(id: Option<Uuid>) -> Value {
    id.map_or(Value::Null, |id| Value::String(id.to_string()))
}

fn block_row_fields(
    row: &BlockRow,
    invaders: Option<&JsonMap<String, Value>>,
) -> JsonMap<String, Value> {
    let mut fields = JsonMap::new();
    fields.insert("type".into(), Value::String(row.block_type.clone()));
    fields.insert("name".into(), Value::String(row.name.clone()));
    fields.insert("parent_block_id".into(), optional_id(row.parent_block_id));
    fields.insert("origin_asset_id".into(), optional_id(row.origin_asset_id));
    fields.insert("created_by_id".into(), optional_id(row.created_by_id));
    fields.insert("config".into(), row.config.clone());
    fields.insert("visual".into(), row.visual.clone());
    if let Some(invaders) = invaders {
        fields.insert("invaders".into(), Value::Object(invaders.clone()));
    }
    fields
}

fn relation_row_fields(row: &RelationRow) -> JsonMap<String, Value> {
    let mut fields = JsonMap::new();
    fields.insert(
        "source_block_id".into(),
        Value::String(row.source_block_id.to_string()),
    );
    fields.insert(
        "target_block_id".into(),
        Value::String(row.target_block_id.to_string()),
    );
    fields.insert("type".into(), Value::String(row.relation_type.clone()));
    fields.insert("rules".into(), row.rules.clone());
    fields.insert("visual".into(), row.visual.clone());
    fields
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::projection::{project, ProjectionContext};
    use serde_json::json;
    use yrs::{updates::decoder::Decode, Text, Update};

    fn object(value: Value) -> JsonMap<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn read(doc: &Doc) -> CanvasState {
        read_canvas(&doc.transact())
    }

    fn put(doc: &Doc, id: &str, fields: Value) {
        put_block(&mut doc.transact_mut(), id, &object(fields)).unwrap();
    }

    /// Applies everything `from` has to `to`, as a remote peer's update would arrive.
    fn sync(from: &Doc, to: &Doc) {
        let update = from
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        to.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
    }

    #[test]
    fn put_block_reads_back() {
        let doc = new_canvas_doc();
        put(
            &doc,
            "b1",
            json!({"type": "note", "name": "N", "parent_block_id": null,
                   "config": {"a": 1, "deep": {"x": [1, "two", null]}}, "visual": {"x": 1.5}}),
        );
        let block = &read(&doc).blocks["b1"];
        assert_eq!(read_block(&doc.transact(), "b1").as_ref(), Some(block));
        assert_eq!(read_block(&doc.transact(), "b2"), None);
        assert_eq!(block.block_type, json!("note"));
        assert_eq!(block.name, json!("N"));
        assert_eq!(block.parent_block_id, Value::Null);
        assert_eq!(block.origin_asset_id, Value::Null);
        assert_eq!(
            block.config,
            json!({"a": 1, "deep": {"x": [1, "two", null]}})
        );
        assert_eq!(block.visual, json!({"x": 1.5}));
        assert_eq!(block.invaders, Value::Null);
    }

    #[test]
    fn config_is_written_as_nested_ymap() {
        let doc = new_canvas_doc();
        put(&doc, "b1", json!({"config": {"a": 1}}));
        let txn = doc.transact();
        let blocks = txn.get_map(BLOCKS).unwrap();
        let Some(Out::YMap(block)) = blocks.get(&txn, "b1") else {
            panic!("block is not a Y.Map")
        };
        assert!(matches!(block.get(&txn, "config"), Some(Out::YMap(_))));
    }

    #[test]
    fn nested_map_and_plain_object_read_the_same() {
        let nested = new_canvas_doc();
        put(
            &nested,
            "b1",
            json!({"type": "t", "config": {"a": 1, "b": [true]}}),
        );

        let plain = new_canvas_doc();
        {
            let mut txn = plain.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            let block = blocks.insert(&mut txn, "b1", MapPrelim::default());
            block.insert(&mut txn, "type", "t");
            block.insert(
                &mut txn,
                "config",
                json_to_any(&json!({"a": 1, "b": [true]})),
            );
        }
        assert_eq!(read(&nested), read(&plain));
    }

    #[test]
    fn block_stored_as_plain_json_object_is_read() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            blocks.insert(
                &mut txn,
                "b1",
                json_to_any(&json!({"type": "t", "name": "n", "config": {"k": 2}})),
            );
            blocks.insert(&mut txn, "b2", 42);
        }
        let state = read(&doc);
        assert_eq!(state.blocks["b1"].block_type, json!("t"));
        assert_eq!(state.blocks["b1"].config, json!({"k": 2}));
        assert_eq!(state.blocks["b2"].block_type, Value::Null);
    }

    #[test]
    fn utf16_name_with_emoji() {
        let doc = new_canvas_doc();
        put(&doc, "b1", json!({"name": "🦀 crab ünïcode"}));
        assert_eq!(read(&doc).blocks["b1"].name, json!("🦀 crab ünïcode"));

        // A Y.Text name edited at a UTF-16 offset (after the 2-unit crab), as a JS client would.
        {
            let mut txn = doc.transact_mut();
            let Some(Out::YMap(block)) = txn.get_map(BLOCKS).unwrap().get(&txn, "b1") else {
                panic!("block is not a Y.Map")
            };
            let text = block.insert(&mut txn, "name", yrs::TextPrelim::new("a🦀c"));
            text.insert(&mut txn, 3, "b");
        }
        assert_eq!(read(&doc).blocks["b1"].name, json!("a🦀bc"));
    }

    #[test]
    fn patch_merges_nested_maps_one_level() {
        let doc = new_canvas_doc();
        put(
            &doc,
            "b1",
            json!({"type": "t", "name": "n", "config": {"a": 1, "b": 2}}),
        );
        put(
            &doc,
            "b1",
            json!({"name": "m", "config": {"b": 3, "c": {"d": 4}}}),
        );
        let block = &read(&doc).blocks["b1"];
        assert_eq!(block.block_type, json!("t"));
        assert_eq!(block.name, json!("m"));
        assert_eq!(block.config, json!({"a": 1, "b": 3, "c": {"d": 4}}));
    }

    #[test]
    fn patch_upgrades_plain_object_block_keeping_fields() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            blocks.insert(
                &mut txn,
                "b1",
                json_to_any(&json!({"type": "t", "config": {"a": 1}})),
            );
        }
        put(&doc, "b1", json!({"config": {"b": 2}}));
        let block = &read(&doc).blocks["b1"];
        assert_eq!(block.block_type, json!("t"));
        assert_eq!(block.config, json!({"a": 1, "b": 2}));
    }

    #[test]
    fn null_replaces_a_nested_field() {
        let doc = new_canvas_doc();
        put(&doc, "b1", json!({"config": {"a": 1}}));
        put(&doc, "b1", json!({"config": null}));
        assert_eq!(read(&doc).blocks["b1"].config, Value::Null);
    }

    #[test]
    fn refused_writes_change_nothing() {
        let doc = new_canvas_doc();
        let mut txn = doc.transact_mut();
        let bad_field = object(json!({"type": "t", "colour": "red"}));
        assert_eq!(
            put_block(&mut txn, "b1", &bad_field),
            Err(CanvasError::UnknownField("colour".into()))
        );
        let bad_rules = object(json!({"rules": 3}));
        assert_eq!(
            put_relation(&mut txn, "r1", &bad_rules),
            Err(CanvasError::NotAnObject("rules".into()))
        );
        drop(txn);
        assert_eq!(read(&doc), CanvasState::default());
    }

    #[test]
    fn remove_block_and_relation() {
        let doc = new_canvas_doc();
        put(&doc, "b1", json!({"type": "t"}));
        put_relation(&mut doc.transact_mut(), "r1", &object(json!({"type": "x"}))).unwrap();
        let mut txn = doc.transact_mut();
        assert!(remove_block(&mut txn, "b1"));
        assert!(!remove_block(&mut txn, "b1"));
        assert!(remove_relation(&mut txn, "r1"));
        assert!(!remove_relation(&mut txn, "nope"));
        drop(txn);
        assert_eq!(read(&doc), CanvasState::default());
    }

    #[test]
    fn remove_cascade_removes_blocks_and_relations_in_one_transaction() {
        let doc = new_canvas_doc();
        let (parent, child, other) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        put(&doc, &parent.to_string(), json!({"type": "t"}));
        put(
            &doc,
            &child.to_string(),
            json!({"type": "t", "parent_block_id": parent.to_string()}),
        );
        put(&doc, &other.to_string(), json!({"type": "t"}));
        let link = json!({"type": "l", "source_block_id": other.to_string(),
                          "target_block_id": child.to_string()});
        put_relation(&mut doc.transact_mut(), "r1", &object(link)).unwrap();
        let updates = Arc::new(std::sync::Mutex::new(0));
        let counter = updates.clone();
        doc.observe_update_v1("count", move |_, _| *counter.lock().unwrap() += 1)
            .unwrap();
        let removed = crate::rules::graph::cascade(&read(&doc), parent);
        remove_cascade(&mut doc.transact_mut(), &removed);
        assert_eq!(
            *updates.lock().unwrap(),
            1,
            "one update for the whole cascade"
        );
        let left = read(&doc);
        assert_eq!(left.blocks.keys().collect::<Vec<_>>(), [&other.to_string()]);
        assert!(left.relations.is_empty());
    }

    #[test]
    fn update_from_another_doc_reads_equal() {
        // A "JS" peer with default (byte) offsets mixing nested maps and plain objects.
        let js = Doc::new();
        let blocks = js.get_or_insert_map(BLOCKS);
        let relations = js.get_or_insert_map(RELATIONS);
        {
            let mut txn = js.transact_mut();
            let block = blocks.insert(&mut txn, "b1", MapPrelim::default());
            block.insert(&mut txn, "type", "note");
            block.insert(&mut txn, "visual", MapPrelim::from([("x", 1)]));
            blocks.insert(
                &mut txn,
                "b2",
                json_to_any(&json!({"type": "plain", "config": {"k": "v"}})),
            );
            relations.insert(
                &mut txn,
                "r1",
                json_to_any(
                    &json!({"source_block_id": "b1", "target_block_id": "b2", "type": "x"}),
                ),
            );
        }
        let server = new_canvas_doc();
        sync(&js, &server);
        assert_eq!(read(&server), read(&js));

        // And the server's own edit flows back.
        put(&server, "b3", json!({"type": "s", "config": {"z": 0}}));
        sync(&server, &js);
        assert_eq!(read(&server), read(&js));
        assert_eq!(read(&js).relations["r1"].relation_type, json!("x"));
    }

    #[test]
    fn integral_floats_read_as_integers() {
        assert_eq!(number_to_json(Number::Float(3.0)), json!(3));
        assert_eq!(number_to_json(Number::Float(0.5)), json!(0.5));
        assert_eq!(number_to_json(Number::Float(f64::NAN)), Value::Null);
        assert_eq!(
            any_to_json(&Any::Buffer(Arc::from(vec![1u8])), 0),
            Value::Null
        );
    }

    #[test]
    fn deep_nesting_is_cut_not_overflowed() {
        let mut any = Any::Null;
        for _ in 0..1_000 {
            any = Any::Array(Arc::from(vec![any]));
        }
        let json = any_to_json(&any, 0);
        let mut depth = 0;
        let mut cursor = &json;
        while let Value::Array(items) = cursor {
            depth += 1;
            cursor = &items[0];
        }
        assert_eq!(depth, MAX_DEPTH + 1);
    }

    #[test]
    fn rows_round_trip_through_a_doc() {
        let id = |n: u128| Uuid::from_u128(n);
        let user = id(100);
        let asset = id(200);
        let blocks = vec![
            BlockRow {
                id: id(1),
                parent_block_id: None,
                origin_asset_id: None,
                block_type: "frame".into(),
                name: "Root 🦀".into(),
                config: json!({"a": 1, "nested": {"b": [1, 2]}}),
                visual: json!({}),
                created_by_id: Some(user),
            },
            BlockRow {
                id: id(2),
                parent_block_id: Some(id(1)),
                origin_asset_id: None,
                block_type: "note".into(),
                name: String::new(),
                config: json!({}),
                visual: json!({"x": 2.5}),
                created_by_id: None,
            },
        ];
        let live = RelationRow {
            id: id(10),
            source_block_id: id(1),
            target_block_id: id(2),
            relation_type: "link".into(),
            rules: json!({"r": true}),
            visual: json!({}),
            deleted: false,
        };
        let dead = RelationRow {
            id: id(11),
            deleted: true,
            ..live.clone()
        };
        let usages = vec![InvaderUsageRow {
            block_id: id(2),
            invader_asset_id: asset,
            applied_version: Some("1.2.0".into()),
            config_snapshot: Some(json!({"s": 1})),
        }];

        let update = canvas_update_from_rows(&blocks, &[live.clone(), dead], &usages);
        let doc = new_canvas_doc();
        doc.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let ctx = ProjectionContext {
            known_users: [user].into(),
            known_invader_assets: [asset].into(),
            ..ProjectionContext::default()
        };
        let projection = project(&read(&doc), &ctx);

        assert_eq!(projection.conflicts, vec![]);
        assert_eq!(projection.blocks.into_values().collect::<Vec<_>>(), blocks);
        assert_eq!(
            projection.relations.into_values().collect::<Vec<_>>(),
            vec![live]
        );
        assert_eq!(projection.usages.into_values().collect::<Vec<_>>(), usages);
    }
}
