//! The SSRF guard: which webhook URIs and addresses may be contacted. The one home of
//! that rule; it is applied in three places, each with what it can see:
//!
//! - [`check_uri`], when the API stores a hook: the URI must be `http` or `https` with a
//!   host and, unless private targets are allowed, its host must not be `localhost` (or
//!   `*.localhost`) nor a literal forbidden address;
//! - [`literal_host_is_forbidden`], when a webhook actor reads a hook's URI: a literal IP
//!   host skips DNS, so the resolver cannot see it;
//! - [`GuardedResolver`], on every connection of the delivery client: a name that
//!   resolves only to forbidden addresses is never contacted (nor are the forbidden
//!   addresses among its others).
//!
//! Forbidden ([`is_forbidden_ip`]): loopback, private, link-local, shared (CGNAT),
//! unspecified, broadcast, documentation, benchmarking, multicast and reserved
//! addresses. Kazoo only refuses `localhost`, `127.0.0.1` and `0.0.0.0`; see
//! INTERFACE.md section 7.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not a URI at all.
    #[error("not a valid URI")]
    Malformed,
    /// A URI, but not one we may call.
    #[error("invalid client URL")]
    Refused,
}

/// Parses and checks a webhook URI.
pub fn check_uri(uri: &str, allow_private: bool) -> Result<Url, UriError> {
    let url = Url::parse(uri).map_err(|_| UriError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UriError::Refused);
    }
    let host = url.host().ok_or(UriError::Refused)?;
    if allow_private {
        return Ok(url);
    }
    let forbidden = match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        literal => literal_ip_is_forbidden(&literal),
    };
    if forbidden {
        Err(UriError::Refused)
    } else {
        Ok(url)
    }
}

/// Whether `url`'s host is a literal IP address a webhook must not reach (names are
/// left to [`GuardedResolver`]). Checked when private targets are not allowed.
pub fn literal_host_is_forbidden(url: &Url) -> bool {
    url.host()
        .is_some_and(|host| literal_ip_is_forbidden(&host))
}

fn literal_ip_is_forbidden(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(_) => false,
        Host::Ipv4(ip) => is_forbidden_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => is_forbidden_ip(IpAddr::V6(*ip)),
    }
}

/// Whether an address is one a webhook must not reach unless private targets are allowed.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
}

/// The delivery client's DNS resolver: the system resolver, then the guard on every
/// address found, so a name that resolves to a forbidden address is never contacted.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

/// Why a name was not resolved to a usable address.
#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("{0} resolves only to private or local addresses, refused")]
    Private(String),
    #[error("{0} has no address")]
    NoAddress(String),
    /// The system resolver could not answer now (not: the name does not exist).
    #[error("resolving {0}: the resolver is unavailable: {1}")]
    ResolverUnavailable(String, std::io::Error),
}

/// Whether `error` is this guard's refusal of a private address, or a resolver that
/// could not answer: faults on our side, never the receiver's (they do not count
/// towards auto-disable).
pub fn is_local_resolver_fault(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<GuardError>(),
        Some(GuardError::Private(_) | GuardError::ResolverUnavailable(..))
    )
}

/// Whether a lookup error means the resolver could not answer (getaddrinfo's
/// `EAI_AGAIN` and system errors), as opposed to a name that does not exist. The standard
/// library gives these no `ErrorKind`, so the text it renders from `gai_strerror` is read.
fn resolver_unavailable(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.contains("Temporary failure in name resolution")
        || text.contains("System error")
        || e.raw_os_error().is_some()
}

impl GuardedResolver {
    /// A resolver that drops forbidden addresses, unless private targets are allowed.
    pub fn new(allow_private: bool) -> Self {
        GuardedResolver { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let looked_up = tokio::net::lookup_host((host.clone(), 0)).await;
            let found: Vec<SocketAddr> = match looked_up {
                Ok(found) => found.collect(),
                Err(e) if resolver_unavailable(&e) => {
                    return Err(Box::new(GuardError::ResolverUnavailable(host, e)) as _)
                }
                Err(e) => return Err(Box::new(e) as _),
            };
            if found.is_empty() {
                return Err(Box::new(GuardError::NoAddress(host)) as _);
            }
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || !is_forbidden_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(GuardError::Private(host)) as _);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests;
