//! Stage 3 of a delivery: one HTTP try with the Piston headers (the hook's custom headers,
//! the Standard Webhooks signature computed for this try) and a whole-request timeout,
//! reading at most a bounded prefix of the response body. The only stage that does I/O;
//! it never fails (what happened is a [`TryResult`]). It signs nothing itself: the
//! signature is made by the caller over the request's bytes and handed in.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use tracing::debug;

use super::{
    classify_status, classify_transport_error, is_local_transport_fault, DeliveryRequest, HttpVerb,
    TryResult,
};
use crate::signing::{
    Signature, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};

/// The `User-Agent` of every delivery: `piston-webhooks/<crate version>`.
pub const USER_AGENT: &str = concat!("piston-webhooks/", env!("CARGO_PKG_VERSION"));

/// Header naming the webhook (its id), as Kazoo sends it.
pub const HOOK_ID_HEADER: &str = "X-Hook-ID";

/// Header naming the hook owner's account, as Kazoo sends it. For an ancestor's
/// `include_subaccounts` hook this is the ancestor, not the account of the event.
pub const ACCOUNT_ID_HEADER: &str = "X-Account-ID";

/// Header carrying the event's id: the same for every hook and every retry, so receivers
/// can drop duplicates of an at-least-once delivery.
pub const EVENT_ID_HEADER: &str = "X-Event-ID";

/// The identifying headers of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryHeaders<'a> {
    /// `X-Hook-ID`: the webhook's id.
    pub hook_id: &'a str,
    /// `X-Account-ID`: the hook owner's account id.
    pub account_id: &'a str,
    /// `X-Event-ID`: the event's id, the same for every hook and every retry.
    pub event_id: &'a str,
    /// `User-Agent`; normally [`USER_AGENT`].
    pub user_agent: &'a str,
    /// `webhook-timestamp` and `webhook-signature` of this try (with `webhook-id` the
    /// event id); `None` sends no signature (a hook without a secret).
    pub signature: Option<&'a Signature>,
    /// The hook's `custom_request_headers`, sent before the daemon's own.
    pub custom: &'a [(HeaderName, HeaderValue)],
}

impl<'a> DeliveryHeaders<'a> {
    /// Headers for the given ids, with the default [`USER_AGENT`].
    pub fn new(hook_id: &'a str, account_id: &'a str, event_id: &'a str) -> Self {
        Self {
            hook_id,
            account_id,
            event_id,
            user_agent: USER_AGENT,
            signature: None,
            custom: &[],
        }
    }

    /// These headers, signed.
    pub fn signed(self, signature: Option<&'a Signature>) -> Self {
        Self { signature, ..self }
    }

    /// These headers, with a hook's custom headers.
    pub fn with_custom(self, custom: &'a [(HeaderName, HeaderValue)]) -> Self {
        Self { custom, ..self }
    }
}

/// Sends `req` once and reports what happened. Never fails: a transport error is a
/// [`TryOutcome::Retryable`](super::TryOutcome::Retryable) result with a `client_error`,
/// and a receiver's 4xx/5xx is data, not an error.
///
/// Sends the hook's custom headers, then `X-Hook-ID`, `X-Account-ID`, `X-Event-ID`,
/// `User-Agent` (overriding any client default), the signature headers (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) when given and, for POST/PUT,
/// `Content-Type`. `timeout` bounds the whole try, from
/// connecting to the end of the response body. Reads at most `max_response_body` bytes of
/// the body and then stops reading (the rest is never buffered); a body read that fails
/// after the status arrived leaves the outcome as the status says.
///
/// What happens on redirects, proxies and private addresses is the `client`'s
/// configuration: build it with `redirect::Policy::none()` so a 3xx reaches
/// [`classify_status`] as a final failure rather than being followed.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(
        hook_id = headers.hook_id,
        account_id = headers.account_id,
        event_id = headers.event_id,
        method = req.method.as_str(),
    )
)]
pub async fn send_try(
    client: &reqwest::Client,
    req: &DeliveryRequest,
    headers: &DeliveryHeaders<'_>,
    timeout: Duration,
    max_response_body: usize,
) -> TryResult {
    let started = Instant::now();
    let mut builder = client
        .request(req.method.as_method(), req.url.clone())
        .timeout(timeout);
    for (name, value) in headers.custom {
        builder = builder.header(name.clone(), value.clone());
    }
    builder = builder
        .header(HOOK_ID_HEADER, headers.hook_id)
        .header(ACCOUNT_ID_HEADER, headers.account_id)
        .header(EVENT_ID_HEADER, headers.event_id)
        .header(reqwest::header::USER_AGENT, headers.user_agent);
    if let Some(signature) = headers.signature {
        builder = builder
            .header(WEBHOOK_ID_HEADER, headers.event_id)
            .header(WEBHOOK_TIMESTAMP_HEADER, signature.timestamp.as_str())
            .header(WEBHOOK_SIGNATURE_HEADER, signature.signatures.as_str());
    }
    if let Some(content_type) = req.content_type {
        builder = builder.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if req.method != HttpVerb::Get {
        builder = builder.body(req.body.clone());
    }

    let response = match builder.send().await {
        Ok(response) => response,
        Err(err) => {
            // reqwest's errors name the URL, which may carry credentials or a token:
            // never into logs or attempts.
            let err = err.without_url();
            let client_error = classify_transport_error(&err);
            debug!(error = %err, client_error = %client_error, "delivery try failed to get an answer");
            if is_local_transport_fault(&err) {
                return TryResult::local_fault(client_error, elapsed_ms(started));
            }
            return TryResult::no_answer(client_error, elapsed_ms(started));
        }
    };

    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let outcome = classify_status(status, retry_after.as_deref());
    let response_body = read_body_bounded(response, max_response_body).await;
    let latency_ms = elapsed_ms(started);
    debug!(status, latency_ms, ?outcome, "delivery try answered");
    TryResult {
        outcome,
        response_code: Some(status),
        response_body,
        client_error: None,
        latency_ms,
        local_fault: false,
    }
}

/// Reads at most `max` bytes of the body, chunk by chunk, and stops there.
async fn read_body_bounded(mut response: reqwest::Response, max: usize) -> Option<String> {
    if max == 0 {
        return None;
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max.saturating_sub(body.len());
                body.extend(chunk.iter().take(room));
                if body.len() >= max {
                    break;
                }
            }
            Ok(None) => break,
            Err(err) => {
                debug!(error = %err, "response body read failed; keeping what was read");
                break;
            }
        }
    }
    if body.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&body).into_owned())
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
