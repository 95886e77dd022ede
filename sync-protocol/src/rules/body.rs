//! The request bodies of the blocks and relations API, typed, and their checks against the rules.
//!
//! A body names its fields, but each field is kept as sent (absent, `null`, or a JSON value) and
//! checked afterwards, so one answer can name *every* bad field at once (a strict serde type stops
//! at the first) and a patch can tell "leave as is" (absent) from "set to null". Keys a body does
//! not know are collected and refused by name. A checked body is a typed value ([`NewBlock`],
//! [`BlockChanges`], [`NewRelation`], [`RelationChanges`]) whose serialization is exactly the
//! document fields it writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map as JsonMap, Value};
use uuid::Uuid;

use super::{
    check_invader_usage, check_json_object, check_name, check_type, parse_id, FieldViolation,
    Problem,
};

type Object = JsonMap<String, Value>;

/// A field that may be absent (`None`), null (`Some(Value::Null)`) or a value.
fn sent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The fields of a block as sent; also the body of `PATCH /blocks/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlockBody {
    #[serde(rename = "type", default, deserialize_with = "sent")]
    pub block_type: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub parent_block_id: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub origin_asset_id: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub config: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub visual: Option<Value>,
    /// invader asset id → `{applied_version, config_snapshot}`.
    #[serde(default, deserialize_with = "sent")]
    pub invaders: Option<Value>,
    /// Every other key: refused by name.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// The body of `POST /blocks`: an optional `id` (the server makes one when absent) and the fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewBlockBody {
    #[serde(default, deserialize_with = "sent")]
    pub id: Option<Value>,
    #[serde(flatten)]
    pub fields: BlockBody,
}

/// The fields of a relation as sent; also the body of `PATCH /relations/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RelationBody {
    #[serde(rename = "type", default, deserialize_with = "sent")]
    pub relation_type: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub source_block_id: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub target_block_id: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub rules: Option<Value>,
    #[serde(default, deserialize_with = "sent")]
    pub visual: Option<Value>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// The body of `POST /relations`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewRelationBody {
    #[serde(default, deserialize_with = "sent")]
    pub id: Option<Value>,
    #[serde(flatten)]
    pub fields: RelationBody,
}

/// Checked changes to a block; `None` leaves a field as it is (`Some(None)` sets null). Serializes
/// to the document fields it sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlockChanges {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub block_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_block_id: Option<Option<Uuid>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_asset_id: Option<Option<Uuid>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visual: Option<Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invaders: Option<Object>,
}

/// A checked new block: `block_type` is always set.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBlock {
    /// The id the client chose, if any.
    pub id: Option<Uuid>,
    pub fields: BlockChanges,
}

/// Checked changes to a relation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RelationChanges {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub relation_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_block_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_block_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Object>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visual: Option<Object>,
}

/// A checked new relation: type and both ends are always set, and differ.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelation {
    pub id: Option<Uuid>,
    pub fields: RelationChanges,
}

impl BlockChanges {
    /// The document fields these changes set.
    pub fn doc_fields(&self) -> Object {
        to_object(self)
    }
}

impl NewBlock {
    /// The document fields of the new block: the given ones, the column defaults for the others
    /// (`name` `""`, `config` and `visual` `{}`), and who created it.
    pub fn doc_fields(&self, created_by: Uuid) -> Object {
        let mut fields = self.fields.doc_fields();
        fields
            .entry("name")
            .or_insert_with(|| Value::String(String::new()));
        for key in ["config", "visual"] {
            fields
                .entry(key)
                .or_insert_with(|| Value::Object(Object::new()));
        }
        fields.insert(
            "created_by_id".into(),
            Value::String(created_by.to_string()),
        );
        fields
    }
}

impl RelationChanges {
    pub fn doc_fields(&self) -> Object {
        to_object(self)
    }
}

impl NewRelation {
    /// The document fields of the new relation, with `rules` and `visual` defaulting to `{}`.
    pub fn doc_fields(&self) -> Object {
        let mut fields = self.fields.doc_fields();
        for key in ["rules", "visual"] {
            fields
                .entry(key)
                .or_insert_with(|| Value::Object(Object::new()));
        }
        fields
    }
}

/// Plain structs of strings, ids and JSON objects always serialize to an object.
fn to_object(value: &impl Serialize) -> Object {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Object::new(),
    }
}

impl BlockBody {
    /// Checks a patch: every field optional, `parent_block_id` / `origin_asset_id` nullable.
    pub fn check_patch(self) -> Result<BlockChanges, Vec<FieldViolation>> {
        self.check(false)
    }

    fn check(self, create: bool) -> Result<BlockChanges, Vec<FieldViolation>> {
        let mut found = Violations::default();
        found.unknown(self.unknown);
        let changes = BlockChanges {
            block_type: found.required("type", self.block_type, create, entity_type),
            name: found.required("name", self.name, false, name),
            parent_block_id: found.nullable("parent_block_id", self.parent_block_id, id),
            origin_asset_id: found.nullable("origin_asset_id", self.origin_asset_id, id),
            config: found.required("config", self.config, false, object),
            visual: found.required("visual", self.visual, false, object),
            invaders: found.required("invaders", self.invaders, false, invaders),
        };
        found.finish(changes)
    }
}

impl NewBlockBody {
    /// Checks a create: `type` required, `id` an id when given.
    pub fn check(self) -> Result<NewBlock, Vec<FieldViolation>> {
        let mut found = Violations::default();
        let id = found.nullable("id", self.id, id).flatten();
        let fields = self.fields.check(true).map_err(|e| found.extend(e));
        match (found.0.is_empty(), fields) {
            (true, Ok(fields)) => Ok(NewBlock { id, fields }),
            _ => Err(found.0),
        }
    }
}

impl RelationBody {
    /// Checks a patch: every field optional, none nullable.
    pub fn check_patch(self) -> Result<RelationChanges, Vec<FieldViolation>> {
        self.check(false)
    }

    fn check(self, create: bool) -> Result<RelationChanges, Vec<FieldViolation>> {
        let mut found = Violations::default();
        found.unknown(self.unknown);
        let changes = RelationChanges {
            relation_type: found.required("type", self.relation_type, create, entity_type),
            source_block_id: found.required("source_block_id", self.source_block_id, create, id),
            target_block_id: found.required("target_block_id", self.target_block_id, create, id),
            rules: found.required("rules", self.rules, false, object),
            visual: found.required("visual", self.visual, false, object),
        };
        found.finish(changes)
    }
}

impl NewRelationBody {
    /// Checks a create: type and both ends required, and the ends must differ.
    pub fn check(self) -> Result<NewRelation, Vec<FieldViolation>> {
        let mut found = Violations::default();
        let id = found.nullable("id", self.id, id).flatten();
        let fields = self.fields.check(true).map_err(|e| found.extend(e));
        if let Ok(fields) = &fields {
            if fields.source_block_id == fields.target_block_id {
                found.push(FieldViolation::new(
                    "target_block_id",
                    Problem::SelfRelation,
                ));
            }
        }
        match (found.0.is_empty(), fields) {
            (true, Ok(fields)) => Ok(NewRelation { id, fields }),
            _ => Err(found.0),
        }
    }
}

/// Every violation found in one body.
#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn push(&mut self, violation: FieldViolation) {
        self.0.push(violation);
    }

    fn extend(&mut self, violations: Vec<FieldViolation>) {
        self.0.extend(violations);
    }

    fn unknown(&mut self, keys: BTreeMap<String, Value>) {
        for key in keys.into_keys() {
            self.push(FieldViolation::new(key, Problem::UnknownField));
        }
    }

    /// A field that may be absent (unless `required`) but not null.
    fn required<T>(
        &mut self,
        field: &str,
        sent: Option<Value>,
        required: bool,
        check: fn(&str, Value) -> Result<T, FieldViolation>,
    ) -> Option<T> {
        let outcome = match sent {
            None if required => Err(FieldViolation::new(field, Problem::Required)),
            None => return None,
            Some(Value::Null) => Err(FieldViolation::new(field, Problem::Null)),
            Some(value) => check(field, value),
        };
        outcome.map_err(|v| self.push(v)).ok()
    }

    /// A field that may be absent or null: `Some(None)` is an explicit null.
    fn nullable<T>(
        &mut self,
        field: &str,
        sent: Option<Value>,
        check: fn(&str, Value) -> Result<T, FieldViolation>,
    ) -> Option<Option<T>> {
        match sent? {
            Value::Null => Some(None),
            value => check(field, value).map_err(|v| self.push(v)).ok().map(Some),
        }
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<FieldViolation>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

fn string(field: &str, value: Value) -> Result<String, FieldViolation> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(FieldViolation::new(field, Problem::NotAString)),
    }
}

/// A type: the column rule, and not only blanks (the edge is stricter than the projection, which
/// keeps what stock clients already wrote).
fn entity_type(field: &str, value: Value) -> Result<String, FieldViolation> {
    let text = string(field, value)?;
    if text.trim().is_empty() {
        return Err(FieldViolation::new(field, Problem::Empty));
    }
    check_type(&text).map_err(|p| FieldViolation::new(field, p))?;
    Ok(text)
}

fn name(field: &str, value: Value) -> Result<String, FieldViolation> {
    let text = string(field, value)?;
    check_name(&text).map_err(|p| FieldViolation::new(field, p))?;
    Ok(text)
}

fn id(field: &str, value: Value) -> Result<Uuid, FieldViolation> {
    value
        .as_str()
        .and_then(parse_id)
        .ok_or_else(|| FieldViolation::new(field, Problem::NotAnId))
}

fn object(field: &str, value: Value) -> Result<Object, FieldViolation> {
    check_json_object(&value).map_err(|p| FieldViolation::new(field, p))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FieldViolation::new(field, Problem::NotAnObject)),
    }
}

/// `invaders`: an object keyed by invader asset ids, each entry a usage (see
/// [`check_invader_usage`]); a bad entry is named `invaders.<key>[.<field>]`.
fn invaders(field: &str, value: Value) -> Result<Object, FieldViolation> {
    let map = object(field, value)?;
    for (key, usage) in &map {
        if parse_id(key).is_none() {
            return Err(FieldViolation::new(
                format!("{field}.{key}"),
                Problem::NotAnId,
            ));
        }
        check_invader_usage(usage).map_err(|v| {
            let inner = if v.field == "usage" {
                format!("{field}.{key}")
            } else {
                format!("{field}.{key}.{}", v.field)
            };
            FieldViolation::new(inner, v.problem)
        })?;
    }
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::rules::{BLOCK_FIELDS, MAX_NAME_CHARS, RELATION_FIELDS, SERVER_BLOCK_FIELDS};
    use serde_json::json;

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn new_block(body: Value) -> Result<NewBlock, Vec<FieldViolation>> {
        serde_json::from_value::<NewBlockBody>(body)
            .unwrap()
            .check()
    }

    fn block_patch(body: Value) -> Result<BlockChanges, Vec<FieldViolation>> {
        serde_json::from_value::<BlockBody>(body)
            .unwrap()
            .check_patch()
    }

    fn new_relation(body: Value) -> Result<NewRelation, Vec<FieldViolation>> {
        serde_json::from_value::<NewRelationBody>(body)
            .unwrap()
            .check()
    }

    fn fields(violations: Vec<FieldViolation>) -> Vec<String> {
        let mut names: Vec<String> = violations.into_iter().map(|v| v.field).collect();
        names.sort();
        names
    }

    #[test]
    fn a_full_block_body_writes_every_client_field_of_the_rules() {
        let body = json!({
            "id": uid(1), "type": "NODE", "name": "n", "parent_block_id": uid(2),
            "origin_asset_id": uid(3), "config": {"a": 1}, "visual": {"x": 1},
            "invaders": { uid(4).to_string(): {"applied_version": "1.0"} },
        });
        let block = new_block(body).unwrap();
        assert_eq!(block.id, Some(uid(1)));
        let written = block.doc_fields(uid(9));
        let mut keys: Vec<&str> = written.keys().map(String::as_str).collect();
        keys.sort();
        let mut expected = BLOCK_FIELDS.to_vec();
        expected.sort();
        assert_eq!(
            keys, expected,
            "the body and the rules name the same fields"
        );
        assert_eq!(written["created_by_id"], json!(uid(9)));
        assert_eq!(written["parent_block_id"], json!(uid(2)));
    }

    #[test]
    fn a_full_relation_body_writes_every_field_of_the_rules() {
        let relation = new_relation(json!({
            "type": "LINK", "source_block_id": uid(1), "target_block_id": uid(2),
            "rules": {}, "visual": {},
        }))
        .unwrap();
        assert_eq!(relation.id, None);
        let written = relation.doc_fields();
        let mut keys: Vec<&str> = written.keys().map(String::as_str).collect();
        keys.sort();
        let mut expected = RELATION_FIELDS.to_vec();
        expected.sort();
        assert_eq!(keys, expected);
    }

    #[test]
    fn a_minimal_block_gets_the_column_defaults() {
        let block = new_block(json!({"type": "NODE"})).unwrap();
        let written = block.doc_fields(uid(9));
        assert_eq!(written["name"], json!(""));
        assert_eq!(written["config"], json!({}));
        assert_eq!(written["visual"], json!({}));
        assert!(!written.contains_key("parent_block_id"));
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let err = new_block(json!({
            "type": "", "colour": "red", "config": 3, "parent_block_id": "nope",
            "name": "n".repeat(MAX_NAME_CHARS + 1), "id": 7,
        }))
        .unwrap_err();
        assert_eq!(
            fields(err),
            ["colour", "config", "id", "name", "parent_block_id", "type"]
        );
    }

    #[test]
    fn server_fields_cannot_be_sent() {
        for field in SERVER_BLOCK_FIELDS {
            let err = new_block(json!({"type": "NODE", field: uid(1)})).unwrap_err();
            assert_eq!(err, [FieldViolation::new(field, Problem::UnknownField)]);
        }
    }

    #[test]
    fn type_is_required_on_create_only_and_never_null_or_blank() {
        let err = new_block(json!({})).unwrap_err();
        assert_eq!(err, [FieldViolation::new("type", Problem::Required)]);
        assert_eq!(block_patch(json!({})), Ok(BlockChanges::default()));
        for (bad, problem) in [
            (json!(null), Problem::Null),
            (json!("  "), Problem::Empty),
            (json!(5), Problem::NotAString),
            (json!("a\0"), Problem::ContainsNul),
        ] {
            let err = block_patch(json!({ "type": bad })).unwrap_err();
            assert_eq!(err, [FieldViolation::new("type", problem)]);
        }
    }

    #[test]
    fn a_patch_tells_absent_from_null() {
        let detach = block_patch(json!({"parent_block_id": null})).unwrap();
        assert_eq!(detach.parent_block_id, Some(None));
        assert_eq!(
            detach.doc_fields(),
            *json!({"parent_block_id": null}).as_object().unwrap()
        );
        let keep = block_patch(json!({"name": "x"})).unwrap();
        assert_eq!(keep.parent_block_id, None);
        assert_eq!(
            keep.doc_fields(),
            *json!({"name": "x"}).as_object().unwrap()
        );
        let err = block_patch(json!({"config": null, "name": null})).unwrap_err();
        assert_eq!(fields(err), ["config", "name"]);
    }

    #[test]
    fn ids_are_written_in_canonical_form() {
        let upper = uid(0xab).to_string().to_uppercase();
        let patch = block_patch(json!({ "parent_block_id": upper })).unwrap();
        assert_eq!(patch.doc_fields()["parent_block_id"], json!(uid(0xab)));
        let err = block_patch(json!({ "parent_block_id": uid(1).simple().to_string() }));
        assert_eq!(
            err.unwrap_err(),
            [FieldViolation::new("parent_block_id", Problem::NotAnId)]
        );
    }

    #[test]
    fn invader_entries_are_checked_and_named() {
        let asset = uid(4).to_string();
        let err = block_patch(json!({"invaders": { "x": {} }})).unwrap_err();
        assert_eq!(err, [FieldViolation::new("invaders.x", Problem::NotAnId)]);
        let err = block_patch(json!({"invaders": { &asset: {"applied_version": 3} }})).unwrap_err();
        assert_eq!(err[0].field, format!("invaders.{asset}.applied_version"));
        let err = block_patch(json!({"invaders": { &asset: 1 }})).unwrap_err();
        assert_eq!(err[0].field, format!("invaders.{asset}"));
    }

    #[test]
    fn relations_need_two_different_live_ends_and_a_type() {
        let err = new_relation(json!({})).unwrap_err();
        assert_eq!(fields(err), ["source_block_id", "target_block_id", "type"]);
        let err = new_relation(json!({
            "type": "LINK", "source_block_id": uid(1), "target_block_id": uid(1),
        }))
        .unwrap_err();
        assert_eq!(
            err,
            [FieldViolation::new(
                "target_block_id",
                Problem::SelfRelation
            )]
        );
        let err =
            serde_json::from_value::<RelationBody>(json!({"source_block_id": null, "id": uid(1)}))
                .unwrap()
                .check_patch()
                .unwrap_err();
        assert_eq!(fields(err), ["id", "source_block_id"]);
    }
}
