//! The one integration-test binary: every test starts the real `piston-webhooks` daemon
//! on 127.0.0.1:0 with a temp data dir and drives it over HTTP.

#![allow(unreachable_pub)] // helpers are `pub` for the test modules of this binary

mod support;

mod accounts;
mod envelope;
mod restart;
mod webhooks;
