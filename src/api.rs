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
//! `envelope → fields, state`; `auth` and the resources (`accounts`, `attempts`,
//! `events`, `health`, `metrics`, `redelivery`, `webhooks`, `webhook_secret`) above those; this file, the route table, on top.
//! Nothing in `api/` imports this file. The operator page's files (`crate::admin`) are
//! merged into the table here: they share the middleware but set no envelope fields, so
//! the envelope middleware leaves their answers as they are.

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, patch, post, put};
use axum::Router;

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
mod redelivery;
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
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/v2/api_auth", put(auth::create_token))
        .route(
            "/v2/accounts/{account_id}",
            put(accounts::create_child_account)
                .get(accounts::get_account)
                .post(accounts::update_account)
                .patch(accounts::patch_account)
                .delete(accounts::delete_account),
        )
        .route(
            "/v2/accounts/{account_id}/children",
            get(accounts::list_children),
        )
        .route(
            "/v2/accounts/{account_id}/descendants",
            get(accounts::list_descendants),
        )
        .route(
            "/v2/accounts/{account_id}/api_key",
            get(accounts::get_api_key),
        )
        .route("/v2/events", post(events::ingest_events))
        .route("/v2/webhooks", get(webhooks::list_available_hooks))
        .route("/v2/webhooks/samples", get(webhooks::list_samples))
        .route(
            "/v2/webhooks/samples/{sample_id}",
            get(webhooks::get_sample),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks",
            get(webhooks::list_webhooks)
                .put(webhooks::create_webhook)
                .patch(webhooks::reenable_account_webhooks),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/attempts",
            get(attempts::list_account_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}/attempts",
            get(attempts::list_webhook_attempts),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}/attempts/{attempt_id}/resend",
            put(redelivery::resend_attempt),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}/recover",
            put(redelivery::recover),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}/secret",
            get(webhook_secret::get_webhook_secret).put(webhook_secret::put_webhook_secret),
        )
        .route(
            "/v2/accounts/{account_id}/webhooks/{webhook_id}",
            get(webhooks::get_webhook)
                .post(webhooks::update_webhook)
                .patch(webhooks::patch_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route(
            "/v2/accounts/{account_id}/descendants/webhooks",
            patch(webhooks::reenable_descendant_webhooks),
        )
        // `GET /admin` and its files (INTERFACE.md section 10): public, no envelope.
        .merge(crate::admin::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
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

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
