use super::*;

#[test]
fn public_http_and_https_uris_pass() {
    for uri in [
        "http://example.com/hook",
        "https://hooks.example.org:8443/a?b=c",
        "http://user:pass@example.com/x",
        "http://93.184.216.34/",
        "http://[2606:2800:220:1::1]/",
    ] {
        assert!(check_uri(uri, false).is_ok(), "{uri}");
    }
}

#[test]
fn other_schemes_and_hostless_uris_are_refused_even_when_private_is_allowed() {
    for uri in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
    ] {
        assert_eq!(check_uri(uri, true), Err(UriError::Refused), "{uri}");
    }
    assert_eq!(check_uri("not a uri", true), Err(UriError::Malformed));
    assert_eq!(check_uri("", false), Err(UriError::Malformed));
}

#[test]
fn private_targets_are_refused_unless_allowed() {
    for uri in [
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://127.0.0.1:8080/",
        "http://127.1.2.3/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/", // 127.0.0.1 as one decimal number
        "http://0x7f000001/",
    ] {
        assert_eq!(check_uri(uri, false), Err(UriError::Refused), "{uri}");
        assert!(check_uri(uri, true).is_ok(), "{uri}");
    }
}

#[test]
fn neighbours_of_private_ranges_pass() {
    for uri in [
        "http://172.32.0.1/",
        "http://11.0.0.1/",
        "http://100.128.0.1/",
    ] {
        assert!(check_uri(uri, false).is_ok(), "{uri}");
    }
}

#[test]
fn literal_forbidden_hosts_are_seen_without_dns() {
    let url = |u: &str| Url::parse(u).unwrap();
    assert!(literal_host_is_forbidden(&url("http://127.0.0.1:8080/")));
    assert!(literal_host_is_forbidden(&url("http://[::1]/")));
    assert!(literal_host_is_forbidden(&url("http://10.1.2.3/")));
    assert!(!literal_host_is_forbidden(&url("http://93.184.216.34/")));
    // Names are the resolver's to check.
    assert!(!literal_host_is_forbidden(&url("http://localhost/")));
}

#[tokio::test]
async fn localhost_is_refused_unless_allowed() {
    let guarded = GuardedResolver::new(false);
    let name: Name = "localhost".parse().unwrap();
    let err = match guarded.resolve(name).await {
        Ok(_) => panic!("localhost resolved through the guard"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("refused"), "{err}");
    let open = GuardedResolver::new(true);
    let name: Name = "localhost".parse().unwrap();
    let addrs: Vec<SocketAddr> = open.resolve(name).await.unwrap().collect();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
}
