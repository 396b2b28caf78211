//! Operator alerts (`--alert-url`): for each auto-disable of a webhook, a JSON alert
//! POSTed to the operator's URL, signed the Standard Webhooks way deliveries are
//! (docs/signing.md) with the alert secret (`--alert-secret`, or DATA_DIR/alert-secret).
//!
//! [`Alerts::webhook_disabled`] is called once the `WebhookAutoDisabled` record is in the
//! log; it never blocks: each alert is sent by a task of its own, tried
//! [`AlertPolicy::tries`] times with doubling waits, and at most
//! [`AlertPolicy::max_in_flight`] alerts are on their way at once (one more is dropped,
//! with a warning). An alert still on its way at shutdown is lost (the log keeps the
//! disable). The URL is the operator's: private and loopback targets are allowed.

use std::sync::Arc;
use std::time::Duration;

use actors::signing::{decode_secret, sign_v1, HmacKey, SecretError};
use actors::AutoDisabled;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::clock;

/// How alerts are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// Tries of one alert at most (the first included).
    pub tries: u32,
    /// The wait before the second try; each later wait doubles.
    pub first_retry: Duration,
    /// Whole-request timeout of one try.
    pub request_timeout: Duration,
    /// Alerts on their way at once at most; more are dropped with a warning.
    pub max_in_flight: usize,
}

impl Default for AlertPolicy {
    /// 5 tries over about 15 s (waits of 1, 2, 4 and 8 s), 10 s per try, 64 in flight.
    fn default() -> Self {
        AlertPolicy {
            tries: 5,
            first_retry: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 64,
        }
    }
}

/// Why alerts cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("the alert secret is not usable: {0}")]
    Secret(#[from] SecretError),
    #[error("cannot build the alert HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The alert sender. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: url::Url,
    key: HmacKey,
    policy: AlertPolicy,
    in_flight: Arc<Semaphore>,
}

impl Alerts {
    /// Alerts to `url`, signed with `secret` (`whsec_` + base64, as webhook secrets).
    pub fn new(url: url::Url, secret: &str, policy: AlertPolicy) -> Result<Alerts, AlertError> {
        let key = HmacKey::new(&decode_secret(secret)?);
        let client = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Alerts {
            inner: Arc::new(Inner {
                client,
                url,
                key,
                policy,
                in_flight: Arc::new(Semaphore::new(policy.max_in_flight)),
            }),
        })
    }

    /// Sends the alert of `disabled` in the background; returns at once.
    pub fn webhook_disabled(&self, disabled: &AutoDisabled) {
        let Ok(permit) = Arc::clone(&self.inner.in_flight).try_acquire_owned() else {
            tracing::warn!(webhook_id = %disabled.webhook_id, max_in_flight = self.inner.policy.max_in_flight, "too many alerts on their way; this auto-disable alert is dropped");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(webhook_id = %disabled.webhook_id, "no runtime to send the auto-disable alert on; dropped");
            return;
        };
        let alert_id = format!("alert_{}", hex::encode(rand::random::<[u8; 16]>()));
        let body = alert_body(&alert_id, disabled);
        let inner = Arc::clone(&self.inner);
        let webhook_id = disabled.webhook_id.clone();
        runtime.spawn(async move {
            inner.send(&alert_id, &body).await;
            drop(permit);
            tracing::trace!(%webhook_id, "alert task done");
        });
    }
}

impl Inner {
    /// Tries to deliver one alert, each try signed at its own time.
    async fn send(&self, alert_id: &str, body: &[u8]) {
        let mut wait = self.policy.first_retry;
        for attempt in 1..=self.policy.tries.max(1) {
            let timestamp = (eventlog::now_ms() / 1000).to_string();
            let signature = sign_v1(&self.key, alert_id, &timestamp, body);
            let sent = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(actors::signing::WEBHOOK_ID_HEADER, alert_id)
                .header(actors::signing::WEBHOOK_TIMESTAMP_HEADER, &timestamp)
                .header(actors::signing::WEBHOOK_SIGNATURE_HEADER, signature)
                .body(body.to_vec())
                .send()
                .await;
            let why = match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(alert_id, attempt, "auto-disable alert delivered");
                    return;
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(e) => e.to_string(),
            };
            if attempt >= self.policy.tries {
                tracing::warn!(alert_id, attempt, reason = %why, "auto-disable alert not delivered; giving up");
                return;
            }
            tracing::debug!(alert_id, attempt, reason = %why, retry_in_ms = wait.as_millis() as u64, "auto-disable alert not delivered; trying again");
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
}

/// The alert's JSON body.
fn alert_body(alert_id: &str, disabled: &AutoDisabled) -> Vec<u8> {
    json!({
        "type": "webhook_disabled",
        "alert_id": alert_id,
        "account_id": disabled.account_id.as_str(),
        "webhook_id": disabled.webhook_id.as_str(),
        "name": disabled.name,
        "uri": disabled.uri,
        "reason": disabled.reason,
        "failures": disabled.failures,
        "timestamp": clock::rfc3339(disabled.at_ms),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests;
