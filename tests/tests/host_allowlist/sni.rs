//! A TLS-terminating listener: requests whose TLS server name (SNI) names another host than their
//! authority get 421 unless both are allowed (HTTP/2 connection coalescing under a multi-name
//! certificate), over HTTP/1.1 and HTTP/2; `on_sni_mismatch: "strict"` refuses even that, `"allow"`
//! turns the check off.

use e2e::client::{self, HttpRequest, Protocol};
use serde_json::json;

use crate::support::{Expect, HttpGateway, Observed, ALLOWED, DENIED};

/// One certificate for all these names, so that a client may coalesce them on one connection.
const CERT_NAMES: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "secure.example.com",
    "evil.example.com",
    "localhost",
];

fn hosts() -> serde_json::Value {
    json!(["a.example.com:*", "b.example.com", "secure.example.com:443"])
}

#[test]
fn sni_and_authority_must_name_allowed_hosts_over_https_http1_and_http2() {
    let gateway = HttpGateway::tls(
        "allowlist-sni",
        &json!({"hosts": hosts()}).to_string(),
        CERT_NAMES,
    );
    let cases = [
        // (SNI, authority, expected)
        (Some("a.example.com"), "a.example.com", Expect::Passes),
        (Some("a.example.com"), "A.Example.COM.", Expect::Passes),
        (Some("a.example.com"), "a.example.com:443", Expect::Passes),
        // Coalescing: another name of the certificate, allowed too.
        (Some("a.example.com"), "b.example.com", Expect::Passes),
        (Some("b.example.com"), "a.example.com", Expect::Passes),
        // `secure.example.com:443` allows https://secure.example.com/ (the scheme's default port),
        // and is a valid SNI for another allowed authority on port 443.
        (
            Some("secure.example.com"),
            "secure.example.com",
            Expect::Passes,
        ),
        (Some("secure.example.com"), "a.example.com", Expect::Passes),
        (Some("a.example.com"), "secure.example.com", Expect::Passes),
        // The SNI names a host that is not allowed: misdirected.
        (
            Some("evil.example.com"),
            "a.example.com",
            Expect::Misdirected,
        ),
        (
            Some("evil.example.com"),
            "secure.example.com",
            Expect::Misdirected,
        ),
        // The SNI is allowed only on port 443, the authority is on 8443.
        (
            Some("secure.example.com"),
            "a.example.com:8443",
            Expect::Misdirected,
        ),
        // A denied authority gets the usual denial, whatever the SNI.
        (
            Some("a.example.com"),
            "evil.example.com",
            Expect::Denied("host_not_listed"),
        ),
        (
            Some("evil.example.com"),
            "evil.example.com",
            Expect::Denied("host_not_listed"),
        ),
        (
            Some("a.example.com"),
            "secure.example.com:8443",
            Expect::Denied("host_not_listed"),
        ),
        // Without SNI the authority alone decides.
        (None, "a.example.com", Expect::Passes),
        (None, "evil.example.com", Expect::Denied("host_not_listed")),
    ];
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for (sni, authority, expect) in cases {
            let tls = gateway.tls_client(protocol, sni);
            let before = gateway.upstream.requests().len();
            let response = gateway.send(protocol, Some(&tls), &HttpRequest::get(authority, "/"));
            let observed = gateway.observe(&response, before);
            assert_eq!(
                observed,
                Observed::from(expect),
                "{protocol:?} SNI {sni:?} authority {authority:?}\n{}",
                gateway.log_tail()
            );
        }
    }
    let passed = cases
        .iter()
        .filter(|(_, _, expect)| *expect == Expect::Passes)
        .count() as u64;
    assert_eq!(gateway.counter(ALLOWED), 2 * passed);
    assert_eq!(gateway.counter(DENIED), 2 * (cases.len() as u64 - passed));
}

#[test]
fn coalesced_http2_requests_are_decided_one_by_one() {
    let gateway = HttpGateway::tls(
        "allowlist-coalesce",
        &json!({"hosts": hosts()}).to_string(),
        CERT_NAMES,
    );
    // One connection opened for a.example.com carries requests for the other names of its
    // certificate, as browsers coalesce them.
    let tls = gateway.tls_client(Protocol::Http2, Some("a.example.com"));
    let requests = [
        HttpRequest::get("a.example.com", "/a"),
        HttpRequest::get("b.example.com", "/b"),
        HttpRequest::get("evil.example.com", "/evil"),
        HttpRequest::get("secure.example.com", "/secure"),
    ];
    let responses = client::send_http2_on_one_connection(gateway.addr, Some(&tls), &requests)
        .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 200, 403, 200], "{}", gateway.log_tail());
    // A connection opened for a name that is not allowed gets 421 for every allowed authority.
    let tls = gateway.tls_client(Protocol::Http2, Some("evil.example.com"));
    let requests = [
        HttpRequest::get("a.example.com", "/a2"),
        HttpRequest::get("b.example.com", "/b2"),
    ];
    let responses = client::send_http2_on_one_connection(gateway.addr, Some(&tls), &requests)
        .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [421, 421], "{}", gateway.log_tail());

    let seen = gateway.upstream.requests();
    let paths: Vec<&str> = seen.iter().map(|request| request.path.as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/secure"]);
}

#[test]
fn on_sni_mismatch_allow_decides_on_the_authority_alone() {
    let gateway = HttpGateway::tls(
        "allowlist-sni-allow",
        &json!({"hosts": hosts(), "on_sni_mismatch": "allow"}).to_string(),
        CERT_NAMES,
    );
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let tls = gateway.tls_client(protocol, Some("evil.example.com"));
        gateway.check(
            protocol,
            Some(&tls),
            &HttpRequest::get("a.example.com", "/"),
            Expect::Passes,
        );
        gateway.check(
            protocol,
            Some(&tls),
            &HttpRequest::get("evil.example.com", "/"),
            Expect::Denied("host_not_listed"),
        );
    }
}

#[test]
fn on_sni_mismatch_strict_misdirects_every_other_host_even_an_allowed_one() {
    let gateway = HttpGateway::tls(
        "allowlist-sni-strict",
        &json!({"hosts": hosts(), "on_sni_mismatch": "strict"}).to_string(),
        CERT_NAMES,
    );
    let cases = [
        // (SNI, authority, expected)
        (Some("a.example.com"), "a.example.com", Expect::Passes),
        (Some("a.example.com"), "A.Example.COM.", Expect::Passes),
        (
            Some("secure.example.com"),
            "secure.example.com",
            Expect::Passes,
        ),
        // Domain fronting between two allowed hosts: what `reject` lets through as coalescing.
        (Some("a.example.com"), "b.example.com", Expect::Misdirected),
        (
            Some("b.example.com"),
            "secure.example.com",
            Expect::Misdirected,
        ),
        (
            Some("evil.example.com"),
            "a.example.com",
            Expect::Misdirected,
        ),
        (
            Some("a.example.com"),
            "evil.example.com",
            Expect::Denied("host_not_listed"),
        ),
        (None, "a.example.com", Expect::Passes),
    ];
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for (sni, authority, expect) in cases {
            let tls = gateway.tls_client(protocol, sni);
            let before = gateway.upstream.requests().len();
            let response = gateway.send(protocol, Some(&tls), &HttpRequest::get(authority, "/"));
            assert_eq!(
                gateway.observe(&response, before),
                Observed::from(expect),
                "{protocol:?} SNI {sni:?} authority {authority:?}\n{}",
                gateway.log_tail()
            );
        }
    }
    // An HTTP/2 connection opened for a.example.com carries only a.example.com's requests.
    let tls = gateway.tls_client(Protocol::Http2, Some("a.example.com"));
    let requests = [
        HttpRequest::get("a.example.com", "/a"),
        HttpRequest::get("b.example.com", "/b"),
    ];
    let responses = client::send_http2_on_one_connection(gateway.addr, Some(&tls), &requests)
        .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 421], "{}", gateway.log_tail());
}
