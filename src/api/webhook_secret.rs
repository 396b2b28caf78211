//! A webhook's signing secret (INTERFACE.md section 9): `GET …/webhooks/{ID}/secret`
//! answers `{"key":"whsec_…"}`; `PUT …/webhooks/{ID}/secret` rotates it (`{}`: a new
//! random secret) or sets the one given (`{"key":"whsec_…"}`, validated), and answers the
//! secret now in force. A rotation is one `WebhookSecretSet` record; the replaced secret
//! keeps signing for `--secret-rotation-overlap-secs`.
//!
//! The secret appears nowhere else: not in the webhook document, listings or logs. A key
//! refused by validation is not echoed back in the error either.

use axum::extract::{Path, State};
use eventlog::{Event, Secret};
use serde_json::{json, Value};

use actors::signing::{decode_secret, generate_secret, MAX_SECRET_BYTES, MIN_SECRET_BYTES};

use super::auth::{webhook_in, Caller};
use super::body::CrossbarBody;
use super::envelope::Reply;
use super::error::ApiError;
use super::schemas::{self, WebhookPath};
use super::state::AppState;
use super::validate::require_object;
use crate::kazoo_errors::{Errors, Violation};

/// `GET /v2/accounts/{A}/webhooks/{ID}/secret`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}/secret",
    tag = "webhooks",
    summary = "Read a webhook's signing secret",
    params(WebhookPath),
    responses((status = 200, description = "The secret in force.", body = schemas::Envelope<schemas::WebhookSecret>))
)]
pub(crate) async fn get_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let account_id = caller.authorize(&registry, &account)?;
    let hook = webhook_in(&registry, &account_id, &webhook)?;
    // Every webhook has one once the daemon has started (those created before secrets
    // existed get one at start), so a missing one is a fault, not the caller's.
    let secret = hook
        .secrets
        .current
        .as_ref()
        .ok_or_else(|| ApiError::Storage(format!("webhook {} has no secret", hook.id)))?;
    Ok(secret_reply(secret))
}

/// `PUT /v2/accounts/{A}/webhooks/{ID}/secret`: `{}` rotates to a new random secret,
/// `{"key": "whsec_…"}` sets that one.
#[utoipa::path(
    put,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}/secret",
    tag = "webhooks",
    summary = "Rotate or set a webhook's signing secret",
    description = "The replaced secret keeps signing for `--secret-rotation-overlap-secs`.",
    params(WebhookPath),
    request_body = schemas::Request<schemas::WebhookSecretInput>,
    responses((status = 200, description = "The secret now in force.", body = schemas::Envelope<schemas::WebhookSecret>))
)]
pub(crate) async fn put_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let (account_id, webhook_id) = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        let hook = webhook_in(&registry, &account_id, &webhook)?;
        (account_id, hook.id.clone())
    };
    let data = require_object(body.data()?)?;
    let secret = match data.get("key") {
        None | Some(Value::Null) => generate_secret(),
        Some(Value::String(key)) => given_secret(key)?,
        Some(other) => {
            return Err(Errors::one("key", Violation::wrong_type("string", other)).into())
        }
    };
    state
        .commit(vec![Event::WebhookSecretSet {
            account_id,
            webhook_id,
            secret: secret.clone(),
        }])
        .await?;
    Ok(secret_reply(&secret))
}

/// A secret the caller chose: `whsec_` + standard base64 of 24 to 64 bytes. The error
/// says why it is refused without repeating it.
fn given_secret(key: &str) -> Result<Secret, ApiError> {
    match decode_secret(key) {
        Ok(_) => Ok(Secret::new(key)),
        Err(why) => Err(Errors::one(
            "key",
            Violation::new(
                "wrong_format",
                json!({
                    "message": "Field is not in the correct format",
                    "format": format!(
                        "whsec_ followed by the standard base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
                    ),
                    "cause": why.to_string(),
                }),
            ),
        )
        .into()),
    }
}

fn secret_reply(secret: &Secret) -> Reply {
    Reply::ok(json!({ "key": secret.expose() }))
}
