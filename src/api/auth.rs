//! Authentication and scoping: `PUT /v2/api_auth`, the `X-Auth-Token` extractor, and the
//! rule that a token acts on its own account and its descendants only.
//!
//! Tokens are random 256-bit values; only their BLAKE3 hash is logged and kept. A token
//! is valid for its whole TTL to the millisecond.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use eventlog::{AccountId, Event, WebhookId};
use serde_json::{json, Value};

use actors::{Registry, Webhook};

use super::body::CrossbarBody;
use super::envelope::Reply;
use super::error::ApiError;
use super::schemas;
use super::state::AppState;
use super::validate::require_object;
use crate::clock;
use crate::kazoo_errors::{Errors, Violation};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) account_id: AccountId,
    /// The master account is Kazoo's super admin.
    pub(crate) is_master: bool,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = token_hash(token);
        let registry = state.registry();
        let account = registry
            .token_account(&hash, clock::now_unix_ms())
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            account_id: account.id.clone(),
            is_master: account.parent_id.is_none(),
        })
    }
}

impl Caller {
    /// The account named in the URL, if it exists (404) and the caller may act on it (403).
    pub(crate) fn authorize(
        &self,
        registry: &Registry,
        account: &str,
    ) -> Result<AccountId, ApiError> {
        let id =
            AccountId::parse(account).map_err(|_| ApiError::BadIdentifier(account.to_owned()))?;
        if registry.account(&id).is_none() {
            return Err(ApiError::BadIdentifier(account.to_owned()));
        }
        if !registry.is_in_subtree(&self.account_id, &id) {
            return Err(ApiError::Forbidden);
        }
        Ok(id)
    }
}

/// A webhook of the URL's account; any other webhook id is 404, as if it did not exist.
pub(crate) fn webhook_in<'r>(
    registry: &'r Registry,
    account: &AccountId,
    webhook: &str,
) -> Result<&'r Webhook, ApiError> {
    WebhookId::parse(webhook)
        .ok()
        .and_then(|id| registry.webhook(&id))
        .filter(|h| &h.account_id == account)
        .ok_or_else(|| ApiError::BadIdentifier(webhook.to_owned()))
}

/// The hash under which a token is logged and looked up.
pub(crate) fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// `PUT /v2/api_auth`: trade an account's API key for a token.
#[utoipa::path(
    put,
    path = "/v2/api_auth",
    tag = "auth",
    summary = "Trade an API key for a token",
    description = "The token is the answer's top-level `auth_token`; send it as `X-Auth-Token`.",
    security(()),
    request_body = schemas::Request<schemas::ApiKey>,
    responses(
        (status = 201, description = "A new token.", body = schemas::Envelope<schemas::TokenIssued>),
        (status = 401, description = "No account has this API key.", body = schemas::ErrorEnvelope),
        (status = 503, description = "The event log cannot take writes.", body = schemas::ErrorEnvelope),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    body: CrossbarBody,
) -> Result<Reply, ApiError> {
    let data = require_object(body.data()?)?;
    let api_key = match data.get("api_key") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(Errors::one("api_key", Violation::required_in(&data)).into());
        }
        Some(other) => {
            return Err(Errors::one("api_key", Violation::wrong_type("string", other)).into());
        }
    };
    let now = clock::now_unix_ms();
    let (account_id, account_name, revoked) = {
        let registry = state.registry();
        let account = registry
            .account_by_api_key(&api_key)
            .ok_or(ApiError::Unauthorized)?;
        // An account holds at most --max-tokens-per-account: its oldest make room.
        let revoked =
            registry.tokens_to_revoke(&account.id, state.config().max_tokens_per_account, now);
        (account.id.clone(), account.name().to_owned(), revoked)
    };
    let token = hex::encode(rand::random::<[u8; 32]>());
    let expires_at_ms = ttl_expiry_ms(now, state.config().token_ttl_secs);
    let mut events: Vec<Event> = revoked
        .into_iter()
        .map(|(token_hash, expires_at_ms)| Event::TokenRevoked {
            token_hash,
            account_id: account_id.clone(),
            expires_at_ms,
        })
        .collect();
    events.push(token_issued(
        token_hash(&token),
        account_id.clone(),
        expires_at_ms,
    ));
    state.commit(events).await?;
    Ok(Reply::created(json!({
        "account_id": account_id,
        "account_name": account_name,
        "expires_at": clock::gregorian_secs(expires_at_ms),
    }))
    .with_auth_token(token))
}

/// When a token issued at `now_ms` (Unix ms) for `ttl_secs` expires: the whole TTL later,
/// to the millisecond.
pub(crate) fn ttl_expiry_ms(now_ms: u64, ttl_secs: u64) -> u64 {
    now_ms.saturating_add(ttl_secs.saturating_mul(1000))
}

/// The record of a token refused from `expires_at_ms` (Unix ms) on. `expires_at` holds
/// that instant rounded up to a whole second, for readers that know only that field.
pub(crate) fn token_issued(token_hash: String, account_id: AccountId, expires_at_ms: u64) -> Event {
    Event::TokenIssued {
        token_hash,
        account_id,
        expires_at: expires_at_ms.div_ceil(1000),
        expires_at_ms: Some(expires_at_ms),
    }
}

#[cfg(test)]
mod tests;
