//! Pagination of every list endpoint: keyset cursors.
//!
//! A list takes `?limit=` (1–200, default 50) and `?cursor=` (opaque, from the previous page) and
//! answers `{"items": [...], "next_cursor": "..." | null}`; `next_cursor` is null on the last page.
//! The cursor encodes the sort key `(timestamp, id)` of the last item served, so pages stay stable
//! while rows are inserted, unlike `OFFSET`. Small bounded lists (roles, feature flags) come whole
//! in the same envelope with a null cursor.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// `?limit=&cursor=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u32,
    /// Sort key of the last item of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A complete list in one page.
    pub fn whole(items: Vec<T>) -> Self {
        Page {
            items,
            next_cursor: None,
        }
    }
}

impl PageParams {
    /// Checks `limit` and decodes `cursor`; 422 naming the bad field otherwise.
    pub fn resolve(&self) -> Result<PageRequest, ApiError> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

/// [`PageParams::resolve`] for query structs that carry `limit` and `cursor` next to filters
/// (`serde(flatten)` does not work with query strings).
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let mut errors = Vec::new();
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let after = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(key) => Some(key),
            None => {
                errors.push(FieldError::new("cursor", "is not a cursor from this API"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(PageRequest { limit, after })
}

impl PageRequest {
    /// Rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Turns fetched rows into a page, mapping each to its response type; `key` is the row's sort
    /// key, as used by the query.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> (DateTime<Utc>, Uuid),
        map: impl FnMut(R) -> T,
    ) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| encode_cursor(key(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

fn encode_cursor((at, id): (DateTime<Utc>, Uuid)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('|')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_to_the_microsecond() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        let id = Uuid::new_v4();
        let cursor = encode_cursor((at, id));
        assert_eq!(decode_cursor(&cursor), Some((at, id)));
        assert_eq!(decode_cursor("garbage!"), None);
    }

    #[test]
    fn limits_and_cursors_are_validated() {
        assert_eq!(page_request(None, None).expect("ok").limit, DEFAULT_LIMIT);
        let err = page_request(Some(0), Some("nope")).expect_err("invalid");
        let fields: Vec<_> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["limit", "cursor"]);
        assert!(page_request(Some(MAX_LIMIT + 1), None).is_err());
    }

    #[test]
    fn pages_report_a_cursor_only_when_more_follow() {
        let req = page_request(Some(2), None).expect("ok");
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_001).expect("time");
        let rows: Vec<(DateTime<Utc>, Uuid)> = (0..3).map(|_| (at, Uuid::new_v4())).collect();
        let page = req.page(rows.clone(), |r| *r, |r| r.1);
        assert_eq!(page.items, [rows[0].1, rows[1].1]);
        assert_eq!(
            page.next_cursor.as_deref().and_then(decode_cursor),
            Some(rows[1])
        );
        let last = req.page(rows[..2].to_vec(), |r| *r, |r| r.1);
        assert!(last.next_cursor.is_none());
    }
}
