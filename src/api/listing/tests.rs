use serde_json::json;

use super::*;

fn query(q: &str) -> ListQuery {
    ListQuery::from_query(&QueryPairs(
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect(),
    ))
}

fn items(n: usize) -> Vec<(String, Value, Value)> {
    (0..n)
        .map(|i| {
            let key = format!("{i:02}");
            let doc = json!({"n": i, "even": i % 2 == 0, "inner": {"k": format!("v{}", i % 3)}});
            (key.clone(), doc, json!(key))
        })
        .collect()
}

#[test]
fn descending_by_default_with_next_start_key_until_the_last_page() {
    let q = query("page_size=4");
    let (page1, info1) = q.page(items(10).into_iter(), true);
    assert_eq!(
        page1,
        vec![json!("09"), json!("08"), json!("07"), json!("06")]
    );
    assert_eq!(info1.next_start_key.as_deref(), Some("05"));
    assert_eq!(info1.page_size, 4);
    let (page3, info3) = query("page_size=4&start_key=01").page(items(10).into_iter(), true);
    assert_eq!(page3, vec![json!("01"), json!("00")]);
    assert_eq!(info3.next_start_key, None);
}

#[test]
fn ascending_walks_every_item_exactly_once() {
    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    for _ in 0..10 {
        let q = match &start {
            Some(s) => query(&format!("ascending=true&page_size=3&start_key={s}")),
            None => query("ascending=true&page_size=3"),
        };
        let (page, info) = q.page(items(10).into_iter(), true);
        seen.extend(page);
        match info.next_start_key {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    let want: Vec<Value> = (0..10).map(|i| json!(format!("{i:02}"))).collect();
    assert_eq!(seen, want);
}

#[test]
fn bad_page_sizes_fall_back_to_the_default_and_paginate_false_returns_all() {
    assert_eq!(query("page_size=0").page_size, Some(DEFAULT_PAGE_SIZE));
    assert_eq!(query("page_size=-3").page_size, Some(DEFAULT_PAGE_SIZE));
    assert_eq!(query("page_size=x").page_size, Some(DEFAULT_PAGE_SIZE));
    let (all, info) = query("paginate=false").page(items(60).into_iter(), true);
    assert_eq!(all.len(), 60);
    assert_eq!(info.next_start_key, None);
}

#[test]
fn filters_apply_to_the_stored_document_with_dotted_paths() {
    let (page, _) = query("filter_even=true").page(items(6).into_iter(), false);
    assert_eq!(page, vec![json!("00"), json!("02"), json!("04")]);
    let (page, _) = query("filter_inner.k=v1&filter_not_n=4").page(items(6).into_iter(), false);
    assert_eq!(page, vec![json!("01")]);
    let (page, _) = query("has_key=inner.k&key_missing=nope").page(items(2).into_iter(), false);
    assert_eq!(page.len(), 2);
    let (page, _) = query("filter_missing=x").page(items(3).into_iter(), false);
    assert!(page.is_empty());
}
