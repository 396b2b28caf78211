//! The REST API: the route table over one file per resource, and the Crossbar
//! conventions.
//!
//! Handlers read the [`Registry`](actors::Registry) for validation and answers, and change
//! state only by committing events to the log ([`AppState::commit`]); the log's commit
//! hook applies them before the commit returns, so a handler sees its own change when it
//! reads back.
//!
//! Inside `api/` imports point one way, from the resources down to the conventions
//! (`a → b`: `a` imports `b`): `error → fields` (envelope fields as plain data),
//! `body → error`, `listing → body, fields`, `validate → error`, `limits → error`,
//! `state → error, limits`,
//! `envelope → fields, state`, `schemas → validate`, `openapi → schemas`; `auth` and the
//! resources (`accounts`, `attempts`, `events`, `health`, `metrics`, `redelivery`,
//! `webhooks`, `webhook_secret`) above those, each handler annotated for
//! `/openapi.json`; this file, the route table, on top.
//! Nothing in `api/` imports this file. The operator page's files (`crate::admin`) are
//! merged into the table here: they share the middleware but set no envelope fields, so
//! the envelope middleware leaves their answers as they are.

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::{Extension, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod accounts;
mod attempts;
mod auth;
mod body;
mod envelope;
mod error;
mod events;
mod fields;
mod health;
mod limits;
mod listing;
mod metrics;
mod openapi;
mod redelivery;
mod schemas;
mod state;
mod validate;
mod webhook_secret;
mod webhooks;

pub(crate) use error::ApiError;
pub use state::{AppState, HealthFigures, StartInfo};

/// Every route of INTERFACE.md sections 3, 4, 9 and 10, with the envelope middleware.
pub fn router(state: AppState) -> Router {
    let body_settings = body::BodySettings {
        max_bytes: state.config().max_body_bytes,
        timeout: state.config().body_timeout(),
    };
    let (routes, doc) = route_table().split_for_parts();
    let doc = openapi::OpenApiJson::new(&openapi::finish(doc));
    routes
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(doc))
        // Inside the envelope, so a refused body gets the Crossbar error envelope too.
        .layer(axum::middleware::from_fn_with_state(
            body_settings,
            body::read_whole_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            envelope::complete_envelope,
        ))
        // The body is already read within the limit; the extractors need no second one.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// The OpenAPI document `GET /openapi.json` serves, as JSON.
pub fn openapi_document() -> serde_json::Value {
    let (_, doc) = route_table().split_for_parts();
    serde_json::to_value(openapi::finish(doc)).unwrap_or_default()
}

/// The route table: one `routes!` per path, naming every handler of that path; each
/// handler's `#[utoipa::path]` gives its method and path, to the router and to the
/// document alike (see `api/openapi.rs`).
fn route_table() -> OpenApiRouter<AppState> {
    let table = openapi::base()
        .routes(routes!(health::healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(auth::create_token))
        .routes(routes!(
            accounts::create_child_account,
            accounts::get_account,
            accounts::update_account,
            accounts::patch_account,
            accounts::delete_account,
        ))
        .routes(routes!(accounts::list_children))
        .routes(routes!(accounts::list_descendants))
        .routes(routes!(accounts::get_api_key))
        .routes(routes!(events::ingest_events))
        .routes(routes!(webhooks::list_available_hooks))
        .routes(routes!(webhooks::list_samples))
        .routes(routes!(webhooks::get_sample))
        .routes(routes!(
            webhooks::list_webhooks,
            webhooks::create_webhook,
            webhooks::reenable_account_webhooks,
        ))
        .routes(routes!(attempts::list_account_attempts))
        .routes(routes!(attempts::list_webhook_attempts))
        .routes(routes!(redelivery::resend_attempt))
        .routes(routes!(redelivery::recover))
        .routes(routes!(
            webhook_secret::get_webhook_secret,
            webhook_secret::put_webhook_secret,
        ))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::patch_webhook,
            webhooks::delete_webhook,
        ))
        .routes(routes!(webhooks::reenable_descendant_webhooks));
    // `GET /admin` and its files (INTERFACE.md section 10): public, no envelope.
    openapi::page_routes(table, crate::admin::routes())
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
