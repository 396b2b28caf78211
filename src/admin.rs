//! `GET /admin`: the operator page (INTERFACE.md section 10), served from files embedded
//! in the binary — plain HTML, CSS and JavaScript modules under `src/admin/`, with no
//! build step and nothing fetched from anywhere but this daemon.
//!
//! This module owns the page's files and how they are served: their paths, content
//! types, and the headers that lock the page down (a strict `Content-Security-Policy`
//! with `script-src 'self'` and no inline script or style, `nosniff`, no framing, no
//! referrer). The files are public, like `/healthz`: everything they show comes from the
//! API, which the page calls with the token it gets by signing in and keeps in memory
//! only (never a cookie or web storage, so nothing the API would accept outlives the
//! tab).
//!
//! What it must not do: read state or take a token. The page is a client of the public
//! API and nothing else; the answers here carry no Crossbar envelope (they set no
//! envelope fields, so the envelope middleware passes them through untouched).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

/// The page's policy: its own scripts, styles and API only; no inline code, no plugins,
/// no forms posted anywhere, no framing. `img-src data:` is for the empty favicon.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Where the page lives; its files are under this path too.
pub(crate) const PAGE_PATH: &str = "/admin";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file: the path it is served at, its content type and its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asset {
    pub(crate) path: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
}

/// An embedded file of `src/admin/`, served under `/admin/`.
macro_rules! asset {
    ($file:literal, $content_type:expr) => {
        Asset {
            path: concat!("/admin/", $file),
            content_type: $content_type,
            body: include_str!(concat!("admin/", $file)),
        }
    };
}

/// Every file of the page. The HTML loads `admin/app.js` as a module; the other modules
/// are imported from it by relative paths, so the page works under any path prefix a
/// reverse proxy adds.
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        path: PAGE_PATH,
        content_type: HTML,
        body: include_str!("admin/index.html"),
    },
    asset!("style.css", CSS),
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("dom.js", JAVASCRIPT),
    asset!("format.js", JAVASCRIPT),
    asset!("metrics.js", JAVASCRIPT),
    asset!("status.js", JAVASCRIPT),
    asset!("accounts.js", JAVASCRIPT),
    asset!("webhooks.js", JAVASCRIPT),
    asset!("attempts.js", JAVASCRIPT),
];

/// One route of the page: a `GET` path, what it answers, and its handler. The route
/// table (`crate::api`) routes and documents each.
pub(crate) struct PageRoute<S> {
    pub(crate) path: String,
    pub(crate) answer: PageAnswer,
    pub(crate) handler: MethodRouter<S>,
}

/// What a page route answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PageAnswer {
    /// 200 with a file of this content type.
    File(&'static str),
    /// 308 to the page.
    Redirect,
}

/// The page's routes: each embedded file at its path, and `/admin/` sent to `/admin`
/// (relative, so a path prefix survives). No state, no token.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Vec<PageRoute<S>> {
    let mut routes: Vec<PageRoute<S>> = ASSETS
        .iter()
        .map(|asset| {
            let asset = *asset;
            PageRoute {
                path: asset.path.to_owned(),
                answer: PageAnswer::File(asset.content_type),
                handler: get(move || async move { serve(asset) }),
            }
        })
        .collect();
    routes.push(PageRoute {
        path: format!("{PAGE_PATH}/"),
        answer: PageAnswer::Redirect,
        handler: get(redirect_to_page),
    });
    routes
}

/// One file with the page's headers.
fn serve(asset: Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    lock_down(headers);
    response
}

/// `/admin/` → `/admin`, so the page's relative paths resolve from one place.
async fn redirect_to_page() -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("../admin"));
    lock_down(headers);
    response
}

/// The headers every answer of the page carries.
fn lock_down(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Small files that change with the binary: always revalidated, never stale.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests;
