//! State, matching, routing and delivery of Piston Webhooks.
//!
//! Owns: the projection rebuilt from the log ([`registry`]), matching ([`matching`]), the
//! URI guard, the delivery stages ([`delivery`], [`form`]) and the actors that run them
//! ([`router`], [`webhook`]). Must not: know axum, the Crossbar envelope or tokens.

pub mod client;
pub mod delivery;
pub mod fair;
pub mod form;
pub mod index;
pub mod matching;
pub mod registry;
pub mod router;
pub mod uri_guard;
pub mod webhook;

pub use registry::{
    AcceptedEvent, Account, Effect, PendingDelivery, Registry, Webhook, AUTO_DISABLE_REASON,
};
pub use router::{RestartPolicy, Router, RouterArgs, RouterMsg};
pub use webhook::{DeliveryContext, DeliverySettings, WebhookActor, WebhookMsg};
