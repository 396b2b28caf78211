//! The one integration-test binary: every test starts the real `piston-webhooks` daemon
//! on 127.0.0.1:0 with a temp data dir and drives it over HTTP.

// Helpers are `pub` for the test modules of this binary, and test code may unwrap.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod browser;
mod receiver;
mod support;

mod accounts;
mod admin;
mod amqp;
mod audit;
mod connections;
mod crash;
mod delivery;
mod durability;
mod envelope;
mod hostile;
mod log_health;
mod metrics;
mod openapi;
mod redelivery;
mod restart;
mod shutdown;
mod signing;
mod tenancy;
mod webhooks;
