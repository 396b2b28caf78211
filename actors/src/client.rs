//! The one shared HTTP client for deliveries: pooled connections, the SSRF guard of
//! [`uri_guard`](crate::uri_guard) on the address actually connected (its
//! [`GuardedResolver`]), no redirects (a 3xx is a final failure, so a redirect cannot
//! lead into a private address either), and no proxies from the environment.

use std::sync::Arc;
use std::time::Duration;

use crate::uri_guard::GuardedResolver;

/// Builds the delivery client: pooled connections, guarded resolver, no redirects.
pub fn build_client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(allow_private)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
}
