//! What a block may reference from the warehouse (docs/design.md §17): only its own
//! organization's templates (`origin_asset_id`) and live invader definitions (`invaders` keys),
//! and each invader's `config_snapshot` must satisfy the definition's `config_schema`. Checked on
//! every HTTP write of a block; a refusal is 422 naming the field. (Editors' socket updates cannot
//! be refused: the projection drops what breaks these rules and counts it, §4 Rules 2 and 6.)

use std::collections::HashMap;

use nox_persistence::db::Database;
use nox_persistence::warehouse::{invaders, templates};
use serde_json::{Map as JsonMap, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::warehouse::schema::ConfigSchema;
use nox_sync_protocol::rules::body::BlockChanges;

/// Refuses (422) a checked block body whose `origin_asset_id` or `invaders` name anything but
/// the organization's own live assets, or whose invader configs break their schemas. Absent or
/// null fields pass; shapes were checked by the canvas rules.
pub async fn check_block_fields(
    db: &Database,
    org_id: Uuid,
    fields: &BlockChanges,
) -> ApiResult<()> {
    let mut errors = Vec::new();
    if let Some(Some(id)) = fields.origin_asset_id {
        let known = templates::live_ids_of_org(db.pool(), org_id, &[id])
            .await?
            .contains(&id);
        if !known {
            errors.push(FieldError::new(
                "origin_asset_id",
                "must be a template of this organization's warehouse",
            ));
        }
    }
    if let Some(usages) = &fields.invaders {
        errors.extend(check_invaders(db, org_id, usages, "invaders").await?);
    }
    finish(errors)
}

/// The problems of an `invaders` map (`invaderAssetId → {applied_version, config_snapshot}`),
/// each named `{field}.{key}`.
pub async fn check_invaders(
    db: &Database,
    org_id: Uuid,
    usages: &JsonMap<String, Value>,
    field: &str,
) -> ApiResult<Vec<FieldError>> {
    let schemas = InvaderSchemas::load(db, org_id, usages.keys()).await?;
    Ok(schemas.problems(usages, field))
}

/// The compiled schemas of some of an organization's live invader definitions, loaded in one
/// query, to check many `invaders` maps (a whole template) without a query per block.
pub struct InvaderSchemas(HashMap<Uuid, Result<ConfigSchema, String>>);

impl InvaderSchemas {
    /// The schemas of those `keys` that are live definitions of `org_id`.
    pub async fn load<'a>(
        db: &Database,
        org_id: Uuid,
        keys: impl Iterator<Item = &'a String>,
    ) -> ApiResult<InvaderSchemas> {
        let ids: Vec<Uuid> = keys.filter_map(|k| Uuid::parse_str(k).ok()).collect();
        let definitions = invaders::live_of_org(db.pool(), org_id, &ids).await?;
        Ok(InvaderSchemas(
            definitions
                .iter()
                .map(|(id, d)| (*id, ConfigSchema::compile(&d.config_schema)))
                .collect(),
        ))
    }

    /// The problems of one `invaders` map, each named `{field}.{key}`.
    pub fn problems(&self, usages: &JsonMap<String, Value>, field: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (key, usage) in usages {
            let name = format!("{field}.{key}");
            let schema = Uuid::parse_str(key).ok().and_then(|id| self.0.get(&id));
            let Some(schema) = schema else {
                errors.push(FieldError::new(
                    name,
                    "must be an invader definition of this organization's warehouse",
                ));
                continue;
            };
            if let Err(message) = check_usage(schema, usage) {
                errors.push(FieldError::new(name, message));
            }
        }
        errors
    }
}

/// One usage value: an object with `applied_version` (null or a string of at most 20 characters)
/// and a `config_snapshot` that satisfies the schema.
fn check_usage(schema: &Result<ConfigSchema, String>, usage: &Value) -> Result<(), String> {
    let Value::Object(fields) = usage else {
        return Err("must be an object {applied_version, config_snapshot}".into());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["applied_version", "config_snapshot"].contains(&k.as_str()))
    {
        return Err(format!("unknown field `{unknown}`"));
    }
    match fields.get("applied_version") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v.chars().count() <= 20 => {}
        Some(_) => return Err("applied_version must be a string of at most 20 characters".into()),
    }
    let schema = schema
        .as_ref()
        .map_err(|_| "the definition's config_schema does not compile".to_string())?;
    let config = fields.get("config_snapshot").unwrap_or(&Value::Null);
    schema.check(config).map_err(|m| {
        format!(
            "config_snapshot does not match config_schema: {}",
            m.join("; ")
        )
    })
}

fn finish(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}
