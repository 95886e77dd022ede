//! Invader `config_schema`s: JSON Schema documents compiled with the `jsonschema` crate (built
//! without remote or file `$ref` resolution, so a schema can never make the server fetch
//! anything). A schema is compiled when a definition is created or changed (an invalid one is
//! refused) and again wherever a config is checked against it.

use std::collections::HashMap;

use nox_sync_protocol::projection::{ConflictKind, EntityKind, Projection, ProjectionConflict};
use serde_json::Value;
use uuid::Uuid;

/// How many validation messages one refusal lists at most.
const MAX_MESSAGES: usize = 5;
/// A conflict's detail is clipped to this many characters (the validator's messages quote the
/// offending value, which may be long; §4 Rule 8 keeps conflict reports small).
const MAX_DETAIL_CHARS: usize = 200;

/// A compiled `config_schema`.
pub struct ConfigSchema(jsonschema::Validator);

impl std::fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSchema")
    }
}

impl ConfigSchema {
    /// Compiles `schema` (an object or a boolean, valid against its draft's meta-schema); the
    /// error says why it is not a usable schema.
    pub fn compile(schema: &Value) -> Result<ConfigSchema, String> {
        if !(schema.is_object() || schema.is_boolean()) {
            return Err("must be a JSON Schema (an object or a boolean)".into());
        }
        // The crate reports bad schemas as errors; the guard keeps a panic on an exotic document
        // from taking the request (or a compaction) down with it.
        let compiled = std::panic::catch_unwind(|| jsonschema::validator_for(schema))
            .map_err(|_| "is not a JSON Schema this server can compile".to_string())?;
        compiled
            .map(ConfigSchema)
            .map_err(|e| format!("is not a valid JSON Schema: {e}"))
    }

    /// `Ok` when `config` satisfies the schema, else up to five messages naming where it fails.
    pub fn check(&self, config: &Value) -> Result<(), Vec<String>> {
        let messages: Vec<String> = self
            .0
            .iter_errors(config)
            .take(MAX_MESSAGES)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("{at}: {e}")
            })
            .collect();
        if messages.is_empty() {
            Ok(())
        } else {
            Err(messages)
        }
    }
}

/// Drops from `projection` every invader usage whose `config_snapshot` (null when absent) does not
/// satisfy its definition's `config_schema`, and records each as an `invalid_value` conflict of
/// the usage (§4 Rule 6). `schemas` holds the schemas of the definitions the projection kept; a
/// stored schema that no longer compiles accepts nothing.
pub fn screen_usages(projection: &mut Projection, schemas: &HashMap<Uuid, Value>) {
    let compiled: HashMap<Uuid, Option<ConfigSchema>> = schemas
        .iter()
        .map(|(id, schema)| (*id, ConfigSchema::compile(schema).ok()))
        .collect();
    let mut refused = Vec::new();
    for (key, usage) in &projection.usages {
        let config = usage.config_snapshot.clone().unwrap_or(Value::Null);
        let verdict = match compiled.get(&usage.invader_asset_id) {
            Some(Some(schema)) => schema.check(&config).map_err(|m| m.join("; ")),
            Some(None) => Err("the definition's config_schema does not compile".into()),
            None => Ok(()),
        };
        if let Err(message) = verdict {
            refused.push((*key, message));
        }
    }
    for ((block_id, invader_id), message) in refused {
        projection.usages.remove(&(block_id, invader_id));
        let detail: String = format!("config_snapshot does not match config_schema: {message}")
            .chars()
            .take(MAX_DETAIL_CHARS)
            .collect();
        projection.conflicts.push(ProjectionConflict {
            entity: EntityKind::InvaderUsage,
            id: format!("{block_id}/{invader_id}"),
            kind: ConflictKind::InvalidValue,
            detail,
        });
    }
    projection.conflicts.sort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use nox_sync_protocol::projection::InvaderUsageRow;
    use serde_json::json;

    #[test]
    fn compiles_valid_schemas_and_refuses_broken_ones() {
        assert!(ConfigSchema::compile(&json!({"type": "object"})).is_ok());
        assert!(ConfigSchema::compile(&json!(true)).is_ok());
        assert!(ConfigSchema::compile(&json!({"type": "no-such-type"})).is_err());
        assert!(ConfigSchema::compile(&json!({"minLength": "three"})).is_err());
        assert!(ConfigSchema::compile(&json!("a string")).is_err());
        assert!(ConfigSchema::compile(&json!([1, 2])).is_err());
    }

    #[test]
    fn a_remote_reference_is_not_fetched() {
        let schema = json!({"$ref": "http://127.0.0.1:9/schema.json"});
        assert!(ConfigSchema::compile(&schema).is_err());
    }

    #[test]
    fn check_lists_where_a_config_fails() {
        let schema = ConfigSchema::compile(&json!({
            "type": "object",
            "properties": {"retries": {"type": "integer", "minimum": 0}},
            "required": ["retries"],
        }))
        .expect("present");
        assert!(schema.check(&json!({"retries": 3})).is_ok());
        let errors = schema.check(&json!({"retries": -1})).expect_err("refused");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("/retries"), "{errors:?}");
        assert!(schema.check(&json!({})).is_err());
    }

    #[test]
    fn screening_drops_invalid_usages_and_counts_them() {
        let (block, good, bad) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let usage = |invader: Uuid, config: Value| InvaderUsageRow {
            block_id: block,
            invader_asset_id: invader,
            applied_version: None,
            config_snapshot: Some(config),
        };
        let mut projection = Projection::default();
        projection
            .usages
            .insert((block, good), usage(good, json!({"n": 1})));
        projection
            .usages
            .insert((block, bad), usage(bad, json!({"n": "x"})));
        let schema = json!({"properties": {"n": {"type": "integer"}}});
        let schemas = HashMap::from([(good, schema.clone()), (bad, schema)]);
        screen_usages(&mut projection, &schemas);
        assert!(projection.usages.contains_key(&(block, good)));
        assert!(!projection.usages.contains_key(&(block, bad)));
        assert_eq!(projection.conflicts.len(), 1);
        assert_eq!(projection.conflicts[0].kind, ConflictKind::InvalidValue);
        assert_eq!(projection.conflicts[0].id, format!("{block}/{bad}"));
    }
}
