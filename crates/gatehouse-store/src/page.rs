//! Keyset pagination: `limit` and an opaque `cursor` (the last key seen).

use serde::Serialize;

use crate::StoreError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: i64,
    /// The sort key after which to continue.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: i64) -> Self {
        Self { limit, after: None }
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// The cursor of a list keyed by an integer id; any other text is bad
    /// input naming `cursor`.
    pub(crate) fn after_id(&self) -> Result<Option<i64>, StoreError> {
        self.after
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    StoreError::Invalid(gatehouse_core::InvalidInput::new(
                        "cursor",
                        "is not a cursor of this list",
                    ))
                })
            })
            .transpose()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows, keyed by `key`.
    pub(crate) fn from_rows(
        mut rows: Vec<T>,
        req: &PageRequest,
        key: impl Fn(&T) -> String,
    ) -> Self {
        let more = rows.len() as i64 > req.limit;
        rows.truncate(req.limit.max(0) as usize);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}
