//! State, matching, routing and delivery of Piston Webhooks.
//!
//! Owns: the projection rebuilt from the log ([`registry`], its [`snapshot`] format, and
//! the wiring that feeds it and the router from the log, [`projection`]), what the log
//! indexes and may forget ([`index`], [`retention`]), matching ([`matching`]), the URI
//! guard, a hook's typed delivery configuration ([`hook_config`]), the delivery stages
//! ([`delivery`], [`form`]), resend and recover streamed from the log
//! ([`redelivery`]), signing secrets and signatures ([`signing`]), the actors
//! that run them ([`router`], [`webhook`]), what they report ([`observe`]) and the
//! events the daemon publishes itself ([`kazoo_events`]). Must not: know axum, the Crossbar envelope or tokens.

pub mod client;
pub mod delivery;
pub mod fair;
pub mod form;
pub mod hook_config;
pub mod index;
pub mod kazoo_events;
pub mod matching;
pub mod observe;
pub mod projection;
pub mod redelivery;
pub mod registry;
pub mod retention;
pub mod router;
pub mod signing;
pub mod snapshot;
pub mod uri_guard;
pub mod webhook;

pub use observe::{AutoDisabled, DeliveryObserver, NoObserver};
pub use projection::{PendingResume, Projection, ProjectionError, Restored, RouterHandle};
pub use registry::{
    AcceptedEvent, Account, Effect, HookChange, PendingDelivery, Registry, Webhook, WebhookStates,
    AUTO_DISABLE_REASON,
};
pub use router::{RestartPolicy, Router, RouterArgs, RouterMsg};
pub use webhook::{DeliveryContext, DeliverySettings, WebhookActor, WebhookMsg};
