//! What every webhook actor shares: the daemon's delivery settings, the HTTP client, the
//! log and the registry, the observer told of tries and disables, and the global bound on tries in flight (shared fairly between
//! accounts, [`FairPermits`]); and how one try is made with them
//! ([`DeliveryContext::try_delivery`]: its account's turn for a permit, then the request
//! built from the hook's configuration, signed once over its bytes, and sent). Must not:
//! decide what a try means or schedule anything (that is `decision` and the actor shell).

use std::sync::Arc;
use std::time::Duration;

use eventlog::EventLog;
use parking_lot::RwLock;

use crate::delivery::{
    build_payload, build_request_within, send_try, Content, DeliveryError, DeliveryHeaders,
    Envelope, PayloadVersion, RetryPolicy, TryResult,
};
use crate::fair::FairPermits;
use crate::hook_config::{HookConfig, TargetError};
use crate::observe::{DeliveryObserver, NoObserver};
use crate::registry::{PendingDelivery, Registry};

/// Delivery settings from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_base: Duration,
    pub request_timeout: Duration,
    pub failure_threshold: u32,
    pub failure_window: Duration,
    pub max_in_flight_per_hook: usize,
    /// Tries in flight across all webhooks: more only adds contention on 2 cores.
    pub max_in_flight_total: usize,
    pub max_response_body: usize,
    /// The largest encoded payload a try sends (`--max-delivery-bytes`).
    pub max_delivery_bytes: usize,
    pub allow_private_targets: bool,
    /// How long after a secret rotation tries are also signed with the replaced secret
    /// (`--secret-rotation-overlap-secs`).
    pub secret_rotation_overlap: Duration,
    /// How long a webhook actor with nothing to do lives on before it stops (the router
    /// starts a new one when work comes): idle hooks cost no actor.
    pub idle_stop: Duration,
}

impl DeliverySettings {
    /// The retry policy these settings give every hook.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.retry_base)
    }
}

/// What every webhook actor shares.
pub struct DeliveryContext {
    pub client: reqwest::Client,
    pub log: EventLog,
    pub registry: Arc<RwLock<Registry>>,
    pub settings: DeliverySettings,
    /// Told of every finished try and every durable auto-disable.
    pub observer: Arc<dyn DeliveryObserver>,
    /// Permits for tries in flight across all webhooks, shared fairly between the
    /// accounts with tries waiting.
    tries: Arc<FairPermits>,
}

impl DeliveryContext {
    pub fn new(
        client: reqwest::Client,
        log: EventLog,
        registry: Arc<RwLock<Registry>>,
        settings: DeliverySettings,
    ) -> Self {
        let tries = FairPermits::new(settings.max_in_flight_total);
        DeliveryContext {
            client,
            log,
            registry,
            settings,
            observer: Arc::new(NoObserver),
            tries,
        }
    }

    /// The same context, reporting to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn DeliveryObserver>) -> Self {
        self.observer = observer;
        self
    }
}

impl DeliveryContext {
    /// One try: once a global permit allows, the request built from the hook's
    /// configuration and the event, signed over the bytes it carries, and sent.
    ///
    /// The request is built after the permit, so its time (`webhook-timestamp`, and a v2
    /// body's `timestamp`) is when it is sent, however long the wait for capacity was:
    /// receivers reject signatures more than a few minutes old.
    pub(super) async fn try_delivery(
        &self,
        hook: &HookConfig,
        delivery: &PendingDelivery,
    ) -> TryResult {
        let url = match &hook.target {
            Ok(url) => url.clone(),
            Err(e) => return local_failure(e.to_string()),
        };
        // Waits for its account's turn at the global capacity.
        let _permit = self.tries.acquire(&hook.account_id).await;
        let now_ms = eventlog::now_ms();
        let event = &delivery.event;
        let payload = build_payload(
            &event.payload,
            &event.hook_event,
            hook.custom_data.as_ref(),
            hook.kind(),
        );
        let content: Content<'_> = match hook.version {
            PayloadVersion::V1 => payload.into(),
            PayloadVersion::V2 => {
                let timestamp = now_ms / 1000;
                match Envelope::new(
                    &event.hook_event,
                    payload,
                    timestamp,
                    hook.sha256_key.as_ref(),
                ) {
                    Ok(envelope) => envelope.into(),
                    Err(e) => return local_failure(e.to_string()),
                }
            }
        };
        let max_bytes = self.settings.max_delivery_bytes;
        let request = match build_request_within(url, hook.verb, hook.format, content, max_bytes) {
            Ok(r) => r,
            Err(e @ DeliveryError::TooLarge { .. }) => return TryResult::not_sent(e.to_string()),
            Err(e) => return local_failure(TargetError::Malformed(e).to_string()),
        };
        // Signed once, over the bytes the request carries (never encoded again).
        let signature = hook.signing.as_ref().map(|keys| {
            keys.sign(
                event.event_id.as_str(),
                now_ms,
                request.signed_content(),
                self.settings.secret_rotation_overlap,
            )
        });
        let headers = DeliveryHeaders::new(
            hook.id.as_str(),
            hook.account_id.as_str(),
            event.event_id.as_str(),
        )
        .signed(signature.as_ref())
        .with_custom(hook.custom_headers.as_slice());
        send_try(
            &self.client,
            &request,
            &headers,
            self.settings.request_timeout,
            self.settings.max_response_body,
        )
        .await
    }
}

/// A try refused before any connection (an unusable target, a private literal address):
/// retried like a transport error, but a fault on our side, which never counts towards
/// auto-disable (INTERFACE.md section 8).
fn local_failure(client_error: String) -> TryResult {
    TryResult::local_fault(client_error, 0)
}
