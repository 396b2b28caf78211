//! Accounts (INTERFACE.md section 3): create a child, read, replace, patch, delete,
//! children and descendants listings, and the account's API key.

use std::borrow::Cow;

use axum::extract::{Path, State};
use eventlog::{AccountId, Event};
use serde_json::{json, Map, Value};

use actors::{kazoo_events, Account};

use super::auth::Caller;
use super::body::{CrossbarBody, QueryPairs};
use super::envelope::Reply;
use super::error::ApiError;
use super::listing::ListQuery;
use super::schemas::{self, AccountPath, ListParams};
use super::state::AppState;
use super::validate::{check_text, merge_patch, require_object, strip_private, MAX_NAME_CHARS};
use crate::kazoo_errors::{Errors, Violation};

/// The public view of an account.
fn account_out(account: &Account) -> Value {
    let mut doc = account.doc.clone();
    doc.insert("id".into(), account.id.as_str().into());
    if let Some(parent) = &account.parent_id {
        doc.insert("parent_id".into(), parent.as_str().into());
    }
    Value::Object(doc)
}

/// Validates an account document: `name` is a required string.
fn validate_account(data: Value) -> Result<Map<String, Value>, ApiError> {
    let mut doc = require_object(data)?;
    strip_private(&mut doc);
    doc.remove("parent_id");
    let mut errors = Errors::default();
    match doc.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            check_text("name", s, MAX_NAME_CHARS, &mut errors)
        }
        Some(Value::String(_)) => errors.add("name", Violation::min_length(1, "")),
        None | Some(Value::Null) => errors.add("name", Violation::required_in(&doc)),
        Some(other) => errors.add("name", Violation::wrong_type("string", other)),
    }
    errors.into_result()?;
    Ok(doc)
}

/// `PUT /v2/accounts/{PARENT_ID}`: a new child account.
#[utoipa::path(
    put,
    path = "/v2/accounts/{account_id}",
    tag = "accounts",
    summary = "Create a child account",
    params(AccountPath),
    request_body = schemas::Request<schemas::AccountInput>,
    responses(
        (status = 201, description = "The new child account.", body = schemas::Envelope<schemas::Account>,
         headers(("Location" = String, description = "The new account's path"))),
        (status = 400, description = "A validation error, or a limit reached (`--max-account-depth`, `--max-children`).", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn create_child_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(parent): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let doc = validate_account(body.data()?)?;
    state.limits().check_document(&doc)?;
    let _creating = state.limits().creating().await;
    let parent_id = {
        let registry = state.registry();
        let parent_id = caller.authorize(&registry, &parent)?;
        state.limits().check_new_child(&registry, &parent_id)?;
        parent_id
    };
    let account_id = AccountId::generate();
    let api_key = hex::encode(rand::random::<[u8; 32]>());
    state
        .commit(vec![
            Event::AccountCreated {
                account_id: account_id.clone(),
                parent_id: Some(parent_id),
                api_key,
                doc: Value::Object(doc),
            },
            kazoo_events::account_object(&account_id, "doc_created"),
        ])
        .await?;
    let registry = state.registry();
    let account = registry
        .account(&account_id)
        .ok_or_else(|| ApiError::BadIdentifier(account_id.to_string()))?;
    Ok(Reply::created(account_out(account)).with_location(format!("/v2/accounts/{account_id}")))
}

/// `GET /v2/accounts/{ID}`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}",
    tag = "accounts",
    summary = "Read an account",
    params(AccountPath),
    responses((status = 200, description = "The account.", body = schemas::Envelope<schemas::Account>))
)]
pub(crate) async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let id = caller.authorize(&registry, &account)?;
    let account = registry
        .account(&id)
        .ok_or(ApiError::BadIdentifier(account))?;
    Ok(Reply::ok(account_out(account)))
}

async fn save_account(
    state: &AppState,
    id: AccountId,
    doc: Map<String, Value>,
) -> Result<Reply, ApiError> {
    state.limits().check_document(&doc)?;
    state
        .commit(vec![
            Event::AccountUpdated {
                account_id: id.clone(),
                doc: Value::Object(doc),
            },
            kazoo_events::account_object(&id, "doc_edited"),
        ])
        .await?;
    let registry = state.registry();
    let account = registry
        .account(&id)
        .ok_or_else(|| ApiError::BadIdentifier(id.to_string()))?;
    Ok(Reply::ok(account_out(account)))
}

/// `POST /v2/accounts/{ID}`: replace the account document.
#[utoipa::path(
    post,
    path = "/v2/accounts/{account_id}",
    tag = "accounts",
    summary = "Replace an account document",
    params(AccountPath),
    request_body = schemas::Request<schemas::AccountInput>,
    responses((status = 200, description = "The stored account.", body = schemas::Envelope<schemas::Account>))
)]
pub(crate) async fn update_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let id = caller.authorize(&state.registry(), &account)?;
    let doc = validate_account(body.data()?)?;
    save_account(&state, id, doc).await
}

/// `PATCH /v2/accounts/{ID}`: merge into the account document.
#[utoipa::path(
    patch,
    path = "/v2/accounts/{account_id}",
    tag = "accounts",
    summary = "Merge into an account document",
    params(AccountPath),
    request_body = schemas::Request<schemas::AccountPatch>,
    responses((status = 200, description = "The stored account.", body = schemas::Envelope<schemas::Account>))
)]
pub(crate) async fn patch_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let (id, mut doc) = {
        let registry = state.registry();
        let id = caller.authorize(&registry, &account)?;
        let doc = registry
            .account(&id)
            .map(|a| a.doc.clone())
            .ok_or(ApiError::BadIdentifier(account))?;
        (id, doc)
    };
    let mut patch = require_object(body.data()?)?;
    strip_private(&mut patch);
    merge_patch(&mut doc, patch);
    let doc = validate_account(Value::Object(doc))?;
    save_account(&state, id, doc).await
}

/// `DELETE /v2/accounts/{ID}`: deletes the account and its webhooks; refused while it has
/// children, and for the master account.
#[utoipa::path(
    delete,
    path = "/v2/accounts/{account_id}",
    tag = "accounts",
    summary = "Delete an account and its webhooks",
    params(AccountPath),
    responses(
        (status = 200, description = "The deleted account, with `_read_only.deleted`.", body = schemas::Envelope<schemas::Account>),
        (status = 400, description = "The account has children (`data.children` lists them).", body = schemas::ErrorEnvelope),
        (status = 403, description = "The master account, or one outside the caller's subtree.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn delete_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> Result<Reply, ApiError> {
    let (id, out) = {
        let registry = state.registry();
        let id = caller.authorize(&registry, &account)?;
        let acct = registry
            .account(&id)
            .ok_or_else(|| ApiError::BadIdentifier(account.clone()))?;
        if acct.parent_id.is_none() {
            return Err(ApiError::Forbidden);
        }
        if !acct.children.is_empty() {
            return Err(ApiError::BadRequest {
                message: "account has children",
                data: json!({
                    "message": "delete the account's child accounts first",
                    "cause": account,
                    "children": acct.children.iter().map(AccountId::as_str).collect::<Vec<_>>(),
                }),
            });
        }
        let mut out = account_out(acct);
        if let Value::Object(map) = &mut out {
            map.insert("_read_only".into(), json!({"deleted": true}));
        }
        (id, out)
    };
    state
        .commit(vec![
            // Fired before the deletion, while the account still has its place in the
            // tree, so its ancestors' subaccount hooks hear of it.
            kazoo_events::account_object(&id, "doc_deleted"),
            Event::AccountDeleted { account_id: id },
        ])
        .await?;
    Ok(Reply::ok(out))
}

fn list_accounts(mut accounts: Vec<&Account>, query: &QueryPairs) -> Reply {
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    let items = accounts.into_iter().map(|a| (a.id.to_string(), a));
    let (data, page) = ListQuery::from_query(query).page_with(
        items,
        false,
        |a| Cow::Owned(account_out(a)),
        |a| json!({"id": a.id.as_str(), "name": a.name()}),
    );
    Reply::ok(Value::Array(data)).paged(page)
}

/// `GET /v2/accounts/{ID}/children`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/children",
    tag = "accounts",
    summary = "List an account's children",
    params(AccountPath, ListParams),
    responses((status = 200, description = "A page of child accounts, ids ascending by default.", body = schemas::Page<schemas::AccountSummary>))
)]
pub(crate) async fn list_children(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let id = caller.authorize(&registry, &account)?;
    Ok(list_accounts(registry.children(&id), &query))
}

/// `GET /v2/accounts/{ID}/descendants`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/descendants",
    tag = "accounts",
    summary = "List an account's descendants",
    params(AccountPath, ListParams),
    responses((status = 200, description = "A page of descendant accounts, ids ascending by default.", body = schemas::Page<schemas::AccountSummary>))
)]
pub(crate) async fn list_descendants(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    query: QueryPairs,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let id = caller.authorize(&registry, &account)?;
    Ok(list_accounts(registry.descendants(&id), &query))
}

/// `GET /v2/accounts/{ID}/api_key`.
#[utoipa::path(
    get,
    path = "/v2/accounts/{account_id}/api_key",
    tag = "accounts",
    summary = "Read an account's API key",
    params(AccountPath),
    responses((status = 200, description = "The API key.", body = schemas::Envelope<schemas::AccountApiKey>))
)]
pub(crate) async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> Result<Reply, ApiError> {
    let registry = state.registry();
    let id = caller.authorize(&registry, &account)?;
    let account = registry
        .account(&id)
        .ok_or(ApiError::BadIdentifier(account))?;
    Ok(Reply::ok(json!({"api_key": account.api_key})))
}
