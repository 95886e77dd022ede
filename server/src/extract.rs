//! Axum extractors whose rejections are [`ApiError`]s, so malformed JSON or a malformed path id
//! gets the same JSON error shape as everything else.
//!
//! They also refuse text PostgreSQL cannot store: a U+0000 (NUL) anywhere in a JSON string, a query
//! value or a path segment answers `400 invalid_text` naming the field, here at the edge, so no
//! handler can forget it (PostgreSQL's `text` and `jsonb` reject NUL, which would be a 500).

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body (`Content-Type: application/json`) with no NUL in any of its strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::from(
                axum::extract::rejection::JsonRejection::MissingJsonContentType(Default::default()),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(axum::extract::rejection::JsonRejection::from(e)))?;
        refuse_nul_in_json(&bytes)?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json` accepts.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// In JSON a NUL can only be written as the escape `\u0000`, so bodies without that escape
/// (all but hostile ones) are not parsed twice. When it is there, the body is walked to name the
/// field; a body that does not parse is left to the typed parse and its own error.
fn refuse_nul_in_json(bytes: &[u8]) -> Result<(), ApiError> {
    if !contains_nul_escape(bytes) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match nul_field(&value, String::new()) {
        Some(field) => Err(ApiError::invalid_text(&field)),
        None => Ok(()),
    }
}

/// `\u0000` in any letter case. (A `\\u0000`, an escaped backslash, is a false positive that the
/// walk over the parsed value clears.)
fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && (w[1] == b'u' || w[1] == b'U') && &w[2..] == b"0000")
}

/// The path (`a.b[2].c`, `""` for the root) of the first string or key that holds a NUL.
fn nul_field(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_field(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(child.replace('\0', "\\u0000"))
            } else {
                nul_field(item, child)
            }
        }),
        _ => None,
    }
}

/// Path parameters; a segment holding a NUL (`%00`) answers `invalid_text`, one that does not
/// parse (a malformed id) `400 invalid_id`.
#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            if let Some((key, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
                return Err(ApiError::invalid_text(key));
            }
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Path(value))
    }
}

/// A query string; a value or key holding a NUL (`%00`) answers `invalid_text`.
#[derive(Debug, Clone, Copy)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(query) = parts.uri.query() {
            refuse_nul_in_query(query)?;
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(ApiError::from)?;
        Ok(Query(value))
    }
}

/// A URI cannot carry a raw NUL byte, so a NUL can only arrive percent-encoded as `%00`.
fn refuse_nul_in_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&') {
        if pair.contains("%00") {
            let key = pair.split('=').next().unwrap_or_default();
            let key = if key.contains("%00") { "query" } else { key };
            return Err(ApiError::invalid_text(key));
        }
    }
    Ok(())
}

/// For a JSON body field that may be left out, set or cleared: `#[serde(default,
/// deserialize_with = "nullable")]` on an `Option<Option<T>>` reads `null` as `Some(None)` and
/// leaves an absent field `None` (serde alone reads both as `None`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_fields_tell_null_from_left_out() {
        #[derive(serde::Deserialize)]
        struct Patch {
            #[serde(default, deserialize_with = "nullable")]
            note: Option<Option<String>>,
        }
        let read = |body: Value| serde_json::from_value::<Patch>(body).map(|p| p.note).ok();
        assert_eq!(read(json!({})), Some(None), "left out");
        assert_eq!(read(json!({ "note": null })), Some(Some(None)), "cleared");
        assert_eq!(
            read(json!({ "note": "x" })),
            Some(Some(Some("x".to_string())))
        );
        assert_eq!(read(json!({ "note": 1 })), None, "a wrong type is refused");
    }

    #[test]
    fn nul_escapes_are_found_in_any_case_and_only_there() {
        assert!(contains_nul_escape(br#"{"a":"x\u0000"}"#));
        assert!(contains_nul_escape(br#"{"a":"\U0000"}"#));
        assert!(!contains_nul_escape(br#"{"a":"\u0001 0000"}"#));
    }

    #[test]
    fn the_field_holding_a_nul_is_named() {
        let body = json!({"name": "ok", "meta": {"tags": ["fine", "bad\u{0}"]}});
        assert_eq!(
            nul_field(&body, String::new()).as_deref(),
            Some("meta.tags[1]")
        );
        assert_eq!(nul_field(&json!({"a": "fine"}), String::new()), None);
        assert_eq!(
            nul_field(&json!({"k\u{0}": 1}), String::new()).as_deref(),
            Some("k\\u0000")
        );
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_not_a_nul() {
        assert!(refuse_nul_in_json(br#"{"a":"\\u0000"}"#).is_ok());
        let err = refuse_nul_in_json(br#"{"a":"x\u0000"}"#).expect_err("refused");
        assert_eq!(err.code, "invalid_text");
    }

    #[test]
    fn a_nul_in_a_query_names_its_key() {
        let err = refuse_nul_in_query("limit=5&action=a%00b").expect_err("refused");
        assert_eq!(err.code, "invalid_text");
        assert!(err.message.contains("action"), "{}", err.message);
        assert!(refuse_nul_in_query("action=a%2500").is_ok());
    }
}
