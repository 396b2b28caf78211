//! The SSRF guard: which webhook URIs and addresses may be contacted.
//!
//! A URI must be `http` or `https` with a host. Unless private targets are allowed, its
//! host must not be `localhost` (or `*.localhost`) nor a literal loopback, private,
//! link-local, shared (CGNAT), unspecified, broadcast or documentation address. Kazoo
//! only refuses `localhost`, `127.0.0.1` and `0.0.0.0`; see INTERFACE.md section 7.
//! [`is_forbidden_ip`] is also what the delivery path checks on the address it actually
//! connects to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
        Host::Ipv4(ip) => is_forbidden_ip(IpAddr::V4(ip)),
        Host::Ipv6(ip) => is_forbidden_ip(IpAddr::V6(ip)),
    };
    if forbidden {
        Err(UriError::Refused)
    } else {
        Ok(url)
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

#[cfg(test)]
mod tests;
