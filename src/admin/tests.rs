use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::*;

fn asset(path: &str) -> Asset {
    *ASSETS
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("no asset {path}"))
}

fn scripts() -> impl Iterator<Item = Asset> {
    ASSETS
        .iter()
        .copied()
        .filter(|a| a.content_type == JAVASCRIPT)
}

/// The text between `start` and the next `end`, for each `start` in `text`.
fn each_between<'a>(text: &'a str, start: &str, end: char) -> Vec<&'a str> {
    text.match_indices(start)
        .filter_map(|(i, _)| {
            let rest = &text[i + start.len()..];
            rest.find(end).map(|j| &rest[..j])
        })
        .collect()
}

#[test]
fn every_file_the_page_names_is_served() {
    let html = asset(PAGE_PATH).body;
    let mut named: Vec<String> = each_between(html, "src=\"", '"')
        .into_iter()
        .chain(each_between(html, "href=\"admin/", '"'))
        .filter(|p| !p.starts_with("data:"))
        .map(|p| format!("/{}", p.trim_start_matches('/')))
        .map(|p| {
            if p.starts_with("/admin/") {
                p
            } else {
                format!("/admin{p}")
            }
        })
        .collect();
    for script in scripts() {
        for import in each_between(script.body, "from './", '\'') {
            named.push(format!("/admin/{import}"));
        }
    }
    assert!(named.contains(&"/admin/app.js".to_owned()), "{named:?}");
    assert!(named.contains(&"/admin/style.css".to_owned()), "{named:?}");
    for path in &named {
        assert!(
            ASSETS.iter().any(|a| a.path == path),
            "{path} is named but not served"
        );
    }
    // And nothing is served that nothing uses.
    for a in ASSETS.iter().filter(|a| a.path != PAGE_PATH) {
        assert!(named.iter().any(|p| p == a.path), "{} is unused", a.path);
    }
}

#[test]
fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
    let html = asset(PAGE_PATH).body;
    for tag in each_between(html, "<script", '>') {
        assert!(
            tag.contains("src=\"admin/"),
            "inline or foreign script: {tag}"
        );
    }
    for script_body in each_between(html, "<script", '<') {
        assert!(script_body.ends_with('>'), "inline script: {script_body}");
    }
    assert!(!html.contains(" style="), "inline style attribute");
    assert!(!html.contains("<style"), "inline style element");
    let lower = html.to_ascii_lowercase();
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "inline handler {handler}");
    }
    for a in ASSETS {
        for remote in ["http://", "https://", "//cdn", "@import"] {
            assert!(
                !a.body.contains(remote),
                "{} names {remote}: the page must work offline",
                a.path
            );
        }
    }
}

#[test]
fn scripts_never_write_markup_or_keep_the_token() {
    for script in scripts() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "localStorage",
            "sessionStorage",
            "document.cookie",
            "indexedDB",
        ] {
            assert!(
                !script.body.contains(banned),
                "{} uses {banned}: text goes into the DOM as text, and the token stays in memory",
                script.path
            );
        }
    }
    // Every request leaves cookies out, so no ambient credential rides along.
    assert!(asset("/admin/api.js").body.contains("credentials: 'omit'"));
}

#[test]
fn the_policy_allows_only_the_daemons_own_files() {
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    assert!(!CONTENT_SECURITY_POLICY.contains('*'));
}

async fn get(path: &str) -> axum::response::Response {
    routes::<()>()
        .into_iter()
        .fold(axum::Router::new(), |router, r| {
            router.route(&r.path, r.handler)
        })
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_file_is_served_with_its_type_and_the_locked_down_headers() {
    for a in ASSETS {
        let response = get(a.path).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", a.path);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], a.content_type, "{}", a.path);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body, a.body.as_bytes(), "{}", a.path);
    }
    assert_eq!(asset(PAGE_PATH).content_type, "text/html; charset=utf-8");
    assert_eq!(
        asset("/admin/app.js").content_type,
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn the_page_with_a_trailing_slash_redirects_relatively() {
    let response = get("/admin/").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()[header::LOCATION], "../admin");
}
