//! Crossbar listings: paging (`page_size`, `start_key`, `next_start_key`, `ascending`,
//! `paginate=false`) and query-string filters (`filter_K=V`, `filter_not_K=V`,
//! `has_key=K`, `key_missing=K`; `K` may be a dotted path), applied to the full stored
//! document of each item before paging.
//!
//! Start keys are the items' own sort keys (ids, sequence numbers): opaque to clients,
//! stable across pages, and valid even after the item they name is deleted.

use std::borrow::Cow;

use serde_json::Value;

use super::body::QueryPairs;
use super::fields::PageInfo;

/// Crossbar's default page size.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 50;

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Equals(String, String),
    NotEquals(String, String),
    HasKey(String),
    KeyMissing(String),
}

/// What a listing request asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    page_size: Option<usize>,
    start_key: Option<String>,
    ascending: Option<bool>,
    filters: Vec<Filter>,
}

impl ListQuery {
    /// Reads the paging and filter parameters; anything unusable falls back to the default.
    pub(crate) fn from_query(query: &QueryPairs) -> Self {
        let mut q = ListQuery {
            page_size: Some(DEFAULT_PAGE_SIZE),
            start_key: None,
            ascending: None,
            filters: Vec::new(),
        };
        for (key, value) in &query.0 {
            match key.as_str() {
                "page_size" => {
                    q.page_size = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .unwrap_or(DEFAULT_PAGE_SIZE),
                    );
                }
                "paginate" if is_false(value) => q.page_size = None,
                "start_key" => q.start_key = Some(value.clone()),
                "ascending" => q.ascending = Some(is_true(value)),
                "descending" => q.ascending = Some(!is_true(value)),
                "has_key" => q.filters.push(Filter::HasKey(value.clone())),
                "key_missing" => q.filters.push(Filter::KeyMissing(value.clone())),
                _ => {
                    if let Some(path) = key.strip_prefix("filter_not_") {
                        q.filters
                            .push(Filter::NotEquals(path.to_owned(), value.clone()));
                    } else if let Some(path) = key.strip_prefix("filter_") {
                        q.filters
                            .push(Filter::Equals(path.to_owned(), value.clone()));
                    }
                }
            }
        }
        q
    }

    /// How many items a page holds (`usize::MAX` with `paginate=false`).
    pub(crate) fn page_limit(&self) -> usize {
        self.page_size.unwrap_or(usize::MAX)
    }

    /// The `start_key` asked for.
    pub(crate) fn start_key(&self) -> Option<&str> {
        self.start_key.as_deref()
    }

    /// Whether the listing runs in ascending key order.
    pub(crate) fn ascending(&self, descending_by_default: bool) -> bool {
        self.ascending.unwrap_or(!descending_by_default)
    }

    /// Whether a stored document passes every filter.
    pub(crate) fn matches(&self, doc: &Value) -> bool {
        self.filters.iter().all(|f| match f {
            Filter::Equals(path, want) => lookup(doc, path).is_some_and(|v| equals(v, want)),
            Filter::NotEquals(path, want) => !lookup(doc, path).is_some_and(|v| equals(v, want)),
            Filter::HasKey(path) => lookup(doc, path).is_some(),
            Filter::KeyMissing(path) => lookup(doc, path).is_none(),
        })
    }

    /// Filters and pages `items`, given as `(sort key, stored document, output)` in
    /// ascending key order. `descending_by_default` is Crossbar's default order for the
    /// listing (ids descending); samples keep their natural order.
    pub(crate) fn page<I>(&self, items: I, descending_by_default: bool) -> (Vec<Value>, PageInfo)
    where
        I: DoubleEndedIterator<Item = (String, Value, Value)>,
    {
        self.page_with(
            items.map(|(key, doc, out)| (key, (doc, out))),
            descending_by_default,
            |(doc, _)| Cow::Borrowed(doc),
            |(_, out)| out,
        )
    }

    /// Filters and pages `items`, given as `(sort key, item)` in ascending key order,
    /// without building what is not needed: `stored` (the full stored document the
    /// filters look at) is called only when the query has filters, and `render` only for
    /// the items on the page. So a page of a long listing costs its own items, not a copy
    /// of every document.
    pub(crate) fn page_with<T, I>(
        &self,
        items: I,
        descending_by_default: bool,
        stored: impl Fn(&T) -> Cow<'_, Value>,
        mut render: impl FnMut(T) -> Value,
    ) -> (Vec<Value>, PageInfo)
    where
        I: DoubleEndedIterator<Item = (String, T)>,
    {
        let ascending = self.ascending(descending_by_default);
        let ordered: Box<dyn Iterator<Item = (String, T)>> = if ascending {
            Box::new(items)
        } else {
            Box::new(items.rev())
        };
        let start = self.start_key.clone();
        let mut matching = ordered
            .filter(|(key, _)| match &start {
                None => true,
                Some(s) if ascending => key.as_str() >= s.as_str(),
                Some(s) => key.as_str() <= s.as_str(),
            })
            .filter(|(_, item)| self.filters.is_empty() || self.matches(&stored(item)));
        let limit = self.page_size.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut first_key = None;
        let mut next_start_key = None;
        for (key, item) in matching.by_ref() {
            if out.len() == limit {
                next_start_key = Some(key);
                break;
            }
            if first_key.is_none() {
                first_key = Some(key);
            }
            out.push(render(item));
        }
        let info = PageInfo {
            page_size: out.len(),
            start_key: first_key,
            next_start_key,
        };
        (out, info)
    }
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

fn is_false(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no")
}

/// The value at a dotted path.
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, part| v.get(part))
}

/// Query values are text: compare strings as they are and other scalars by their JSON
/// text (`true`, `2`); a list matches when one member does.
fn equals(value: &Value, want: &str) -> bool {
    match value {
        Value::String(s) => s == want,
        Value::Array(items) => items.iter().any(|v| equals(v, want)),
        Value::Object(_) => false,
        Value::Number(n) => n.to_string() == want,
        Value::Bool(b) => want == if *b { "true" } else { "false" },
        Value::Null => want == "null",
    }
}

#[cfg(test)]
mod tests;
