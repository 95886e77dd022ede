//! The canvas rules, defined once (the seed schema's `core_blocks` / `core_relations` /
//! `block_invader_usages`): which fields a block and a relation have, the column limits, what an id
//! is, and the checks of single values against them.
//!
//! Two places apply these rules, differently:
//! - the projection ([`crate::projection`]) applies them to whatever stock clients converged to: it
//!   repairs or skips, and reports a conflict;
//! - the HTTP edge refuses: [`body`] turns request bodies into typed, checked edits, and [`graph`]
//!   checks an edit against the live canvas (references, duplicates, cycles) and computes what a
//!   delete removes with it. Every refusal is a [`FieldViolation`] naming the field.

pub mod body;
pub mod graph;

use serde_json::Value;
use uuid::Uuid;

/// `core_blocks.type` / `core_relations.type` are VARCHAR(50).
pub const MAX_TYPE_CHARS: usize = 50;
/// `core_blocks.name` is VARCHAR(255).
pub const MAX_NAME_CHARS: usize = 255;
/// `block_invader_usages.applied_version` is VARCHAR(20).
pub const MAX_VERSION_CHARS: usize = 20;

/// The fields a block holds in the document (`core_blocks` columns but id and bookkeeping, plus
/// `invaders`, which projects to `block_invader_usages`).
pub const BLOCK_FIELDS: [&str; 8] = [
    "type",
    "name",
    "parent_block_id",
    "origin_asset_id",
    "created_by_id",
    "config",
    "visual",
    "invaders",
];
/// Block fields only the server writes: a request body may not set them.
pub const SERVER_BLOCK_FIELDS: [&str; 1] = ["created_by_id"];
/// The fields a relation holds in the document (`core_relations` columns but id and bookkeeping).
pub const RELATION_FIELDS: [&str; 5] = [
    "source_block_id",
    "target_block_id",
    "type",
    "rules",
    "visual",
];
/// Block fields that are JSON objects, stored as nested `Y.Map`s so concurrent edits to different
/// keys both survive.
pub const BLOCK_OBJECT_FIELDS: [&str; 3] = ["config", "visual", "invaders"];
/// Relation fields that are JSON objects (nested `Y.Map`s).
pub const RELATION_OBJECT_FIELDS: [&str; 2] = ["rules", "visual"];

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("is required")]
    Required,
    #[error("is not a field of this resource")]
    UnknownField,
    #[error("must not be null")]
    Null,
    #[error("must be a string")]
    NotAString,
    #[error("must not be empty")]
    Empty,
    #[error("has {chars} characters, more than {max}")]
    TooLong { chars: usize, max: usize },
    #[error("contains U+0000")]
    ContainsNul,
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("must be a UUID (36 characters, hyphenated)")]
    NotAnId,
    #[error("must be a live block of this workspace")]
    NotALiveBlock,
    #[error("must not be the block itself or one of its descendants")]
    ParentCycle,
    #[error("must differ from source_block_id (a block cannot relate to itself)")]
    SelfRelation,
    #[error("relation {existing} already links this source to this target")]
    DuplicateRelation { existing: String },
}

/// A refused field: its name (as in the JSON body) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldViolation {
    pub field: String,
    pub problem: Problem,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        Self {
            field: field.into(),
            problem,
        }
    }
}

/// An id: a UUID in the 36-character hyphenated form, any case. Other spellings parse too, but
/// would let many document keys name one row.
pub fn parse_id(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// A reference held in a document value: a string that is an id.
pub fn parse_ref(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(parse_id)
}

/// A VARCHAR(`max`) column: at most `max` characters (not bytes), and no U+0000, which PostgreSQL
/// cannot store in TEXT or JSONB (one such value would fail a whole compaction).
pub fn check_text(text: &str, max: usize) -> Result<(), Problem> {
    if text.contains('\0') {
        return Err(Problem::ContainsNul);
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(Problem::TooLong { chars, max });
    }
    Ok(())
}

/// The required `type` of a block or relation: non-empty VARCHAR(50).
pub fn check_type(text: &str) -> Result<(), Problem> {
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    check_text(text, MAX_TYPE_CHARS)
}

/// A block `name`: VARCHAR(255), may be empty.
pub fn check_name(text: &str) -> Result<(), Problem> {
    check_text(text, MAX_NAME_CHARS)
}

/// A JSONB object column (`config`, `visual`, `rules`).
pub fn check_json_object(value: &Value) -> Result<(), Problem> {
    if !value.is_object() {
        return Err(Problem::NotAnObject);
    }
    check_json(value)
}

/// Any JSONB value: no U+0000 in a string or key.
pub fn check_json(value: &Value) -> Result<(), Problem> {
    if contains_nul(value) {
        return Err(Problem::ContainsNul);
    }
    Ok(())
}

/// One entry of a block's `invaders` map (a `block_invader_usages` row without its keys):
/// `{applied_version: VARCHAR(20) | null, config_snapshot: JSONB | null}`; absent is null.
pub fn check_invader_usage(value: &Value) -> Result<InvaderUsage, FieldViolation> {
    let Value::Object(fields) = value else {
        return Err(FieldViolation::new("usage", Problem::NotAnObject));
    };
    let applied_version = match fields.get("applied_version").unwrap_or(&Value::Null) {
        Value::Null => None,
        Value::String(text) => {
            check_text(text, MAX_VERSION_CHARS)
                .map_err(|p| FieldViolation::new("applied_version", p))?;
            Some(text.clone())
        }
        _ => return Err(FieldViolation::new("applied_version", Problem::NotAString)),
    };
    let config_snapshot = match fields.get("config_snapshot").unwrap_or(&Value::Null) {
        Value::Null => None,
        snapshot => {
            check_json(snapshot).map_err(|p| FieldViolation::new("config_snapshot", p))?;
            Some(snapshot.clone())
        }
    };
    Ok(InvaderUsage {
        applied_version,
        config_snapshot,
    })
}

/// The columns of a `block_invader_usages` row carried by an `invaders` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct InvaderUsage {
    pub applied_version: Option<String>,
    pub config_snapshot: Option<Value>,
}

/// True if any string or key inside `value` holds U+0000 (iterative: values may be deep).
pub fn contains_nul(value: &Value) -> bool {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_the_hyphenated_form_in_any_case() {
        let id = Uuid::from_u128(0xab);
        assert_eq!(parse_id(&id.to_string()), Some(id));
        assert_eq!(parse_id(&id.to_string().to_uppercase()), Some(id));
        for bad in [
            "",
            "b1",
            "000000000000000000000000000000ab",
            "{00000000-0000-0000-0000-0000000000ab}",
            "urn:uuid:00000000-0000-0000-0000-0000000000ab",
        ] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
        assert_eq!(parse_ref(&json!(id.to_string())), Some(id));
        assert_eq!(parse_ref(&json!(1)), None);
    }

    #[test]
    fn text_columns_count_characters_and_refuse_nul() {
        assert_eq!(
            check_text(&"é".repeat(MAX_NAME_CHARS), MAX_NAME_CHARS),
            Ok(())
        );
        assert_eq!(
            check_name(&"n".repeat(MAX_NAME_CHARS + 1)),
            Err(Problem::TooLong {
                chars: MAX_NAME_CHARS + 1,
                max: MAX_NAME_CHARS
            })
        );
        assert_eq!(check_name("a\0b"), Err(Problem::ContainsNul));
        assert_eq!(check_name(""), Ok(()));
    }

    #[test]
    fn types_are_required_non_empty_and_bounded() {
        assert_eq!(check_type(""), Err(Problem::Empty));
        assert_eq!(check_type(&"🦀".repeat(MAX_TYPE_CHARS)), Ok(()));
        assert!(matches!(
            check_type(&"x".repeat(MAX_TYPE_CHARS + 1)),
            Err(Problem::TooLong { .. })
        ));
    }

    #[test]
    fn json_objects_are_objects_without_nul() {
        assert_eq!(check_json_object(&json!({"a": [1, {"b": "c"}]})), Ok(()));
        assert_eq!(check_json_object(&json!([1])), Err(Problem::NotAnObject));
        assert_eq!(check_json_object(&json!(null)), Err(Problem::NotAnObject));
        assert_eq!(
            check_json_object(&json!({"a": [{"b": "x\0"}]})),
            Err(Problem::ContainsNul)
        );
        assert_eq!(
            check_json_object(&json!({"k\0": 1})),
            Err(Problem::ContainsNul)
        );
    }

    #[test]
    fn invader_usages_follow_their_columns() {
        assert_eq!(
            check_invader_usage(&json!({"applied_version": "1.0", "config_snapshot": {"a": 1}})),
            Ok(InvaderUsage {
                applied_version: Some("1.0".into()),
                config_snapshot: Some(json!({"a": 1})),
            })
        );
        assert_eq!(
            check_invader_usage(&json!({})),
            Ok(InvaderUsage {
                applied_version: None,
                config_snapshot: None
            })
        );
        let field = |v: Value| check_invader_usage(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"applied_version": "1".repeat(21)})),
            "applied_version"
        );
        assert_eq!(field(json!({"applied_version": 1})), "applied_version");
        assert_eq!(field(json!({"config_snapshot": "a\0"})), "config_snapshot");
        assert_eq!(field(json!("1.0")), "usage");
    }

    #[test]
    fn violations_read_as_field_and_problem() {
        let violation = FieldViolation::new("type", Problem::Required);
        assert_eq!(violation.to_string(), "type is required");
    }
}
