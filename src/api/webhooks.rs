//! Webhooks (INTERFACE.md section 4): available hooks, samples, the account's webhooks
//! (summary list, create, get, POST replace, PATCH merge, DELETE) and the bulk re-enable.

use std::borrow::Cow;

use axum::extract::{Path, State};
use eventlog::{AccountId, Event, WebhookId};
use serde_json::{json, Map, Value};

use actors::Webhook;

use super::auth::{webhook_in, Caller};
use super::body::{CrossbarBody, QueryPairs};
use super::envelope::Reply;
use super::error::ApiError;
use super::listing::ListQuery;
use super::schemas::{self, AccountPath, ListParams, WebhookPath};
use super::state::AppState;
use super::validate::{
    merge_patch, require_object, strip_private, Validator, ADMIN_ONLY_NOTIFICATIONS,
};
use crate::catalog;
use crate::kazoo_errors::{Errors, Violation};

/// The full public document of a webhook.
pub(crate) fn webhook_out(hook: &Webhook) -> Value {
    let mut doc = hook.doc.clone();
    doc.insert("id".into(), hook.id.as_str().into());
    if let Some(reason) = &hook.disable_reason {
        doc.insert("disable_reason".into(), reason.as_str().into());
    }
    Value::Object(doc)
}

/// The summary listing item (Crossbar's `crossbar_listing` view).
fn webhook_summary(hook: &Webhook) -> Value {
    let mut item = json!({
        "id": hook.id.as_str(),
        "hook": hook.hook(),
        "name": hook.doc.get("name").cloned().unwrap_or(Value::Null),
        "uri": hook.doc.get("uri").cloned().unwrap_or(Value::Null),
        "enabled": hook.enabled(),
    });
    if let (Some(reason), Value::Object(map)) = (&hook.disable_reason, &mut item) {
        map.insert("disable_reason".into(), reason.as_str().into());
    }
    item
}

fn validator(state: &AppState, caller: &Caller) -> Validator {
    Validator {
        allow_private_targets: state.config().allow_private_targets,
        super_admin: caller.is_master,
    }
}

/// `GET /v2/webhooks` (no auth): the hooks one can subscribe to.
#[utoipa::path(
    get,
    path = "/v2/webhooks",
    tag = "webhooks",
    summary = "List the hooks one can subscribe to",
    security(()),
    params(ListParams),
    responses((status = 200, description = "A page of available hooks, ids descending by default.", body = schemas::Page<schemas::AvailableHook>))
)]
pub(crate) async fn list_available_hooks(query: QueryPairs) -> Reply {
    let items = catalog::available_hooks().iter().map(|hook| {
        let id = hook
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let shown = hide_admin_only_notifications(hook.clone());
        (id, shown.clone(), shown)
    });
    let mut items: Vec<_> = items.collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (data, page) = ListQuery::from_query(&query).page(items.into_iter(), true);
    Reply::ok(Value::Array(data)).paged(page)
}

/// Kazoo shows `system_alert` and `webhook_disabled` to super admins only; this listing
/// needs no token, so it never shows them (they are still accepted on create).
fn hide_admin_only_notifications(mut hook: Value) -> Value {
    if let Some(items) = hook
        .pointer_mut("/modifiers/type/items")
        .and_then(Value::as_object_mut)
    {
        if hook_is_notifications(items) {
            for hidden in ADMIN_ONLY_NOTIFICATIONS {
                items.remove(*hidden);
            }
        }
    }
    hook
}

/// Only the notifications modifier keys its items by notification type.
fn hook_is_notifications(items: &Map<String, Value>) -> bool {
    items.contains_key("missed_call")
}

/// `GET /v2/webhooks/samples` (no auth): the sample ids.
#[utoipa::path(
    get,
    path = "/v2/webhooks/samples",
    tag = "webhooks",
    summary = "List the sample ids",
    security(()),
    responses((status = 200, description = "The sample ids.", body = schemas::Envelope<Vec<String>>))
)]
pub(crate) async fn list_samples() -> Reply {
    Reply::ok(json!(catalog::sample_ids()))
}

/// `GET /v2/webhooks/samples/{SAMPLE_ID}` (no auth): sample payloads, `filter_` applies.
#[utoipa::path(
    get,
    path = "/v2/webhooks/samples/{sample_id}",
    tag = "webhooks",
    summary = "Read a hook's sample payloads",
    security(()),
    params(
        ("sample_id" = String, Path, description = "A sample id (`webhooks_channel_create`, ...; the singular `webhook_X` too)."),
        ListParams,
    ),
    responses(
        (status = 200, description = "A page of sample payloads, in their order.", body = schemas::Page<schemas::Sample>),
        (status = 404, description = "`bad_identifier`: no such sample.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn get_sample(
    Path(sample_id): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let samples =
        catalog::samples(&sample_id).ok_or_else(|| ApiError::BadIdentifier(sample_id.clone()))?;
    let items = samples
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("{i:06}"), s.clone(), s.clone()));
    let (data, page) = ListQuery::from_query(&query).page(items, false);
    Ok(Reply::ok(Value::Array(data)).paged(page))
}

/// `GET /v2/accounts/{A}/webhooks`: the summary list, ids descending by default.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/webhooks",
    tag = "webhooks",
    summary = "List an account's webhooks",
    params(AccountPath, ListParams),
    responses((status = 200, description = "A page of webhook summaries, ids descending by default; filters see the full document.", body = schemas::Page<schemas::WebhookSummary>))
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let id = caller.authorize(&registry, &account)?;
    let items = registry.webhooks_of(&id).map(|h| (h.id.to_string(), h));
    let (data, page) = ListQuery::from_query(&query).page_with(
        items,
        true,
        |h| Cow::Owned(webhook_out(h)),
        webhook_summary,
    );
    Ok(Reply::ok(Value::Array(data)).paged(page))
}

/// `PUT /v2/accounts/{A}/webhooks`: create (201 with the stored document).
#[utoipa::path(
    put,
    path = "/v2/accounts/{account_id}/webhooks",
    tag = "webhooks",
    summary = "Create a webhook",
    params(AccountPath),
    request_body = schemas::Request<schemas::WebhookInput>,
    responses(
        (status = 201, description = "The stored webhook, defaults filled.", body = schemas::Envelope<schemas::Webhook>,
         headers(("Location" = String, description = "The new webhook's path"))),
        (status = 400, description = "A validation error, or `--max-webhooks-per-account` reached.", body = schemas::ErrorEnvelope),
        (status = 409, description = "The `id` asked for was used before (by any account).", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let data = require_object(body.data()?)?;
    let _creating = state.limits().creating().await;
    let account_id = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        state.limits().check_new_webhook(&registry, &account_id)?;
        account_id
    };
    let webhook_id = chosen_id(&state, &data)?;
    let doc = validator(&state, &caller).webhook(data)?;
    state.limits().check_document(&doc)?;
    // The webhook and its signing secret in one append: no try of it is ever unsigned.
    state
        .commit(vec![
            Event::WebhookCreated {
                account_id: account_id.clone(),
                webhook_id: webhook_id.clone(),
                doc: Value::Object(doc),
            },
            Event::WebhookSecretSet {
                account_id: account_id.clone(),
                webhook_id: webhook_id.clone(),
                secret: actors::signing::generate_secret(),
            },
        ])
        .await?;
    let registry = state.registry();
    let hook = webhook_in(&registry, &account_id, webhook_id.as_str())?;
    Ok(Reply::created(webhook_out(hook))
        .with_location(format!("/v2/accounts/{account_id}/webhooks/{webhook_id}")))
}

/// Crossbar accepts a client-chosen `id` on create; it must be a free 32-hex id.
fn chosen_id(state: &AppState, data: &Map<String, Value>) -> Result<WebhookId, ApiError> {
    match data.get("id") {
        None | Some(Value::Null) => Ok(WebhookId::generate()),
        Some(Value::String(s)) => {
            let id = WebhookId::parse(s).map_err(|_| {
                Errors::one(
                    "id",
                    Violation::wrong_format(s, "32 lowercase hex characters"),
                )
            })?;
            // Ids are never reused: one that any account ever used (live or deleted)
            // is refused alike, so the answer tells nothing of who holds it.
            if state.registry().webhook(&id).is_some() || state.webhook_id_used(&id)? {
                return Err(ApiError::Conflict(format!("webhook id {id} is taken")));
            }
            Ok(id)
        }
        Some(other) => Err(Errors::one("id", Violation::wrong_type("string", other)).into()),
    }
}

/// `GET /v2/accounts/{A}/webhooks/{ID}`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Read a webhook",
    params(WebhookPath),
    responses((status = 200, description = "The webhook.", body = schemas::Envelope<schemas::Webhook>))
)]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let account_id = caller.authorize(&registry, &account)?;
    let hook = webhook_in(&registry, &account_id, &webhook)?;
    Ok(Reply::ok(webhook_out(hook)))
}

async fn save_webhook(
    state: &AppState,
    account_id: AccountId,
    webhook_id: WebhookId,
    doc: Map<String, Value>,
) -> Result<Reply, ApiError> {
    state.limits().check_document(&doc)?;
    state
        .commit(vec![Event::WebhookUpdated {
            account_id: account_id.clone(),
            webhook_id: webhook_id.clone(),
            doc: Value::Object(doc),
        }])
        .await?;
    let registry = state.registry();
    let hook = webhook_in(&registry, &account_id, webhook_id.as_str())?;
    Ok(Reply::ok(webhook_out(hook)))
}

/// `POST /v2/accounts/{A}/webhooks/{ID}`: replace; defaults fill what is missing, except
/// `enabled`, which keeps its stored value (a deliberate difference from Kazoo).
#[utoipa::path(
    post,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Replace a webhook",
    description = "Defaults fill what is missing, except `enabled`, which keeps its stored value.",
    params(WebhookPath),
    request_body = schemas::Request<schemas::WebhookInput>,
    responses((status = 200, description = "The stored webhook.", body = schemas::Envelope<schemas::Webhook>))
)]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let (account_id, webhook_id, stored_enabled) = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        let hook = webhook_in(&registry, &account_id, &webhook)?;
        (account_id, hook.id.clone(), hook.enabled())
    };
    let mut data = require_object(body.data()?)?;
    if matches!(data.get("enabled"), None | Some(Value::Null)) {
        data.insert("enabled".into(), Value::Bool(stored_enabled));
    }
    let doc = validator(&state, &caller).webhook(data)?;
    save_webhook(&state, account_id, webhook_id, doc).await
}

/// `PATCH /v2/accounts/{A}/webhooks/{ID}`: merge; a `null` removes a key.
#[utoipa::path(
    patch,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Merge into a webhook",
    params(WebhookPath),
    request_body = schemas::Request<schemas::WebhookPatch>,
    responses((status = 200, description = "The stored webhook.", body = schemas::Envelope<schemas::Webhook>))
)]
pub(crate) async fn patch_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let (account_id, webhook_id, mut doc) = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        let hook = webhook_in(&registry, &account_id, &webhook)?;
        (account_id, hook.id.clone(), hook.doc.clone())
    };
    let mut patch = require_object(body.data()?)?;
    strip_private(&mut patch);
    merge_patch(&mut doc, patch);
    let doc = validator(&state, &caller).webhook(doc)?;
    save_webhook(&state, account_id, webhook_id, doc).await
}

/// `DELETE /v2/accounts/{A}/webhooks/{ID}`: answers the deleted document.
#[utoipa::path(
    delete,
    path = "/v2/accounts/{account_id}/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Delete a webhook",
    params(WebhookPath),
    responses((status = 200, description = "The deleted webhook, with `_read_only.deleted`.", body = schemas::Envelope<schemas::Webhook>))
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, webhook)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let (account_id, webhook_id, mut out) = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        let hook = webhook_in(&registry, &account_id, &webhook)?;
        (account_id, hook.id.clone(), webhook_out(hook))
    };
    state
        .commit(vec![Event::WebhookDeleted {
            account_id,
            webhook_id,
        }])
        .await?;
    if let Value::Object(map) = &mut out {
        map.insert("_read_only".into(), json!({"deleted": true}));
    }
    Ok(Reply::ok(out))
}

/// Checks the bulk body: `re-enable` must be present and true (or `"true"`).
fn check_reenable_body(data: Value) -> Result<(), ApiError> {
    let data = require_object(data)?;
    let mut errors = Errors::default();
    match data.get("re-enable") {
        None => errors.add(
            "re-enable",
            Violation::new(
                "required",
                json!({"message": "re-enable is required to patch collections"}),
            ),
        ),
        Some(Value::Bool(true)) => {}
        Some(Value::String(s)) if s == "true" => {}
        Some(other) => errors.add(
            "re-enable",
            Violation::new(
                "enum",
                json!({"message": "value not found in enumerated list of values", "target": [true], "value": other}),
            ),
        ),
    }
    errors.into_result().map_err(ApiError::from)
}

/// Re-enables the auto-disabled hooks of `accounts`; hooks disabled by hand stay so.
async fn reenable(state: &AppState, accounts: Vec<AccountId>) -> Result<Reply, ApiError> {
    let webhook_ids: Vec<WebhookId> = {
        let registry = state.registry();
        accounts
            .iter()
            .flat_map(|a| registry.webhooks_of(a))
            .filter(|h| h.auto_disabled())
            .map(|h| h.id.clone())
            .collect()
    };
    if !webhook_ids.is_empty() {
        state
            .commit(vec![Event::WebhooksReenabled { webhook_ids }])
            .await?;
    }
    Ok(Reply::ok(json!("hooks updated")))
}

/// `PATCH /v2/accounts/{A}/webhooks` with `{"re-enable": true}`.
#[utoipa::path(
    patch,
    path = "/v2/accounts/{account_id}/webhooks",
    tag = "webhooks",
    summary = "Re-enable the account's auto-disabled webhooks",
    description = "Webhooks disabled by hand stay disabled.",
    params(AccountPath),
    request_body = schemas::Request<schemas::Reenable>,
    responses((status = 200, description = "`\"hooks updated\"`.", body = schemas::Envelope<String>))
)]
pub(crate) async fn reenable_account_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let account_id = caller.authorize(&state.registry(), &account)?;
    check_reenable_body(body.data()?)?;
    reenable(&state, vec![account_id]).await
}

/// `PATCH /v2/accounts/{A}/descendants/webhooks` with `{"re-enable": true}`.
#[utoipa::path(
    patch,
    path = "/v2/accounts/{account_id}/descendants/webhooks",
    tag = "webhooks",
    summary = "Re-enable the auto-disabled webhooks of an account and its descendants",
    params(AccountPath),
    request_body = schemas::Request<schemas::Reenable>,
    responses((status = 200, description = "`\"hooks updated\"`.", body = schemas::Envelope<String>))
)]
pub(crate) async fn reenable_descendant_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let accounts = {
        let registry = state.registry();
        let account_id = caller.authorize(&registry, &account)?;
        let mut accounts: Vec<AccountId> = registry
            .descendants(&account_id)
            .iter()
            .map(|a| a.id.clone())
            .collect();
        accounts.insert(0, account_id);
        accounts
    };
    check_reenable_body(body.data()?)?;
    reenable(&state, accounts).await
}
