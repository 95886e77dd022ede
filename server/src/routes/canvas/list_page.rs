//! Pages of the live lists (blocks, relations, locks): in-memory collections ordered by id, served
//! in the API's one list envelope `{items, next_cursor}` ([`Page`]). The cursor is the last id
//! served, so a page stays stable while entities are added or removed around it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, FieldError};
use crate::pagination::Page;

/// Items per page when `?limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `?limit`.
pub const MAX_LIMIT: u32 = 1000;

/// `?limit=&cursor=` of a list without filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked page request: how many, and after which id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPage {
    limit: usize,
    after: Option<String>,
}

impl IdPage {
    /// Checks `limit` and decodes `cursor`; 422 naming each bad field otherwise.
    pub fn resolve(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
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
            Some(cursor) => {
                let decoded = decode(cursor);
                if decoded.is_none() {
                    errors.push(FieldError::new("cursor", "is not a cursor from this API"));
                }
                decoded
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(Self {
            limit: limit as usize,
            after,
        })
    }

    /// The page of `items` (sorted ascending by their id) after the cursor.
    pub fn page<T>(&self, items: impl IntoIterator<Item = (String, T)>) -> Page<T> {
        let mut rest = items
            .into_iter()
            .skip_while(|(id, _)| self.after.as_ref().is_some_and(|after| id <= after));
        let served: Vec<(String, T)> = rest.by_ref().take(self.limit).collect();
        let more = rest.next().is_some();
        let next_cursor = if more {
            served.last().map(|(id, _)| encode(id))
        } else {
            None
        };
        Page {
            items: served.into_iter().map(|(_, item)| item).collect(),
            next_cursor,
        }
    }
}

/// Marks a cursor as one this API issued, so a made-up string is refused rather than read as an id.
const CURSOR_TAG: &str = "id:";

fn encode(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_TAG}{id}"))
}

fn decode(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(CURSOR_TAG)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("id-{i:03}"), i)).collect()
    }

    #[test]
    fn pages_walk_the_whole_list_once() {
        let page = IdPage::resolve(Some(2), None).expect("valid");
        let first = page.page(numbered(5));
        assert_eq!(first.items, [0, 1]);
        let mut seen = first.items;
        let mut cursor = first.next_cursor;
        while let Some(c) = cursor {
            let next = IdPage::resolve(Some(2), Some(&c))
                .expect("valid")
                .page(numbered(5));
            seen.extend(next.items);
            cursor = next.next_cursor;
        }
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_last_full_page_has_no_cursor() {
        let page = IdPage::resolve(Some(5), None).expect("valid");
        assert_eq!(page.page(numbered(5)).next_cursor, None);
        assert_eq!(IdPage::resolve(None, None).expect("valid").limit, 100);
    }

    #[test]
    fn bad_limits_and_cursors_are_named() {
        let err = IdPage::resolve(Some(0), Some("not base64!")).expect_err("invalid");
        let fields: Vec<&str> = err.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["limit", "cursor"]);
        assert!(IdPage::resolve(Some(MAX_LIMIT + 1), None).is_err());
        assert!(IdPage::resolve(Some(MAX_LIMIT), None).is_ok());
        // Well-formed base64 the API never issued is refused too.
        let made_up = URL_SAFE_NO_PAD.encode("not-a-cursor");
        assert!(IdPage::resolve(None, Some(&made_up)).is_err());
    }
}
