//! Feature flags as the server reads them: each flag the code knows, the type of its value, and the
//! check that gates behaviour on it. Values are stored as JSON (`feature_flags.default_value`,
//! `org_feature_overrides.value`); an override of the wrong type is refused when it is set, so a
//! stored value always has its flag's type.

use nox_persistence::db::Database;
use nox_persistence::iam::features;
use serde_json::Value;
use uuid::Uuid;

use super::AccessError;

/// A feature flag the server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `canvas.relations` (boolean): relations between blocks may be created over HTTP.
    CanvasRelations,
    /// `hocuspocus` (boolean): the Hocuspocus dialect (`/hocuspocus`) admits the organization.
    Hocuspocus,
    /// `canvas.max_zoom` (number 1–64): the largest zoom the canvas page offers.
    CanvasMaxZoom,
}

/// The largest `canvas.max_zoom` accepted.
const MAX_ZOOM: f64 = 64.0;

impl Flag {
    pub const ALL: [Flag; 3] = [Flag::CanvasRelations, Flag::Hocuspocus, Flag::CanvasMaxZoom];

    pub fn key(self) -> &'static str {
        match self {
            Flag::CanvasRelations => "canvas.relations",
            Flag::Hocuspocus => "hocuspocus",
            Flag::CanvasMaxZoom => "canvas.max_zoom",
        }
    }

    pub fn from_key(key: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|flag| flag.key() == key)
    }

    /// Checks a value for this flag; Err says what the value must be.
    pub fn check_value(self, value: &Value) -> Result<(), &'static str> {
        match self {
            Flag::CanvasRelations | Flag::Hocuspocus => value
                .is_boolean()
                .then_some(())
                .ok_or("must be true or false"),
            Flag::CanvasMaxZoom => match value.as_f64() {
                Some(zoom) if (1.0..=MAX_ZOOM).contains(&zoom) => Ok(()),
                _ => Err("must be a number from 1 to 64"),
            },
        }
    }
}

/// Whether the boolean `flag` is on for `org_id`. A flag whose row is missing counts as on: the
/// flags gate optional behaviour that works by default, and a database without the seed row must
/// not lock users out.
pub async fn enabled(db: &Database, org_id: Uuid, flag: Flag) -> Result<bool, AccessError> {
    let value = features::value(db.pool(), org_id, flag.key()).await?;
    Ok(value.and_then(|v| v.as_bool()).unwrap_or(true))
}

/// Refused with [`AccessError::FeatureDisabled`] unless the boolean `flag` is on for `org_id`.
pub async fn require_enabled(db: &Database, org_id: Uuid, flag: Flag) -> Result<(), AccessError> {
    if enabled(db, org_id, flag).await? {
        Ok(())
    } else {
        Err(AccessError::FeatureDisabled(flag.key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_must_have_their_flags_type() {
        assert!(Flag::Hocuspocus.check_value(&json!(false)).is_ok());
        assert!(Flag::Hocuspocus.check_value(&json!("yes")).is_err());
        assert!(Flag::CanvasRelations.check_value(&json!(1)).is_err());
        assert!(Flag::CanvasMaxZoom.check_value(&json!(4)).is_ok());
        assert!(Flag::CanvasMaxZoom.check_value(&json!(2.5)).is_ok());
        assert!(Flag::CanvasMaxZoom.check_value(&json!("lots")).is_err());
        assert!(Flag::CanvasMaxZoom.check_value(&json!(0)).is_err());
        assert!(Flag::CanvasMaxZoom.check_value(&json!(1000)).is_err());
    }

    #[test]
    fn keys_round_trip() {
        for flag in Flag::ALL {
            assert_eq!(Flag::from_key(flag.key()), Some(flag));
        }
        assert_eq!(Flag::from_key("nope"), None);
    }
}
