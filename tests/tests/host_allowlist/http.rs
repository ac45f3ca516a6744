//! Allow and deny over HTTP/1.1 and HTTP/2 (h2c): the denial's status, body and reason header,
//! nothing of a denial upstream, counters, wildcards, regexes, audit mode.

use e2e::client::{self, HttpRequest, Protocol};
use serde_json::json;

use crate::support::{Expect, HttpGateway, Observed, ALLOWED, AUDIT_DENIED, DENIED, REASON_HEADER};

const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

#[test]
fn listed_hosts_pass_and_others_get_the_default_denial_over_http1_and_h2c() {
    let gateway = HttpGateway::plain(
        "allowlist-basic",
        &json!({"hosts": ["www.example.com", "google.com"]}).to_string(),
    );
    let cases = [
        ("www.example.com", Expect::Passes),
        ("google.com", Expect::Passes),
        ("evil.example", Expect::Denied("host_not_listed")),
        ("example.com", Expect::Denied("host_not_listed")),
        (
            "www.example.com.evil.net",
            Expect::Denied("host_not_listed"),
        ),
        ("www.google.com", Expect::Denied("host_not_listed")),
    ];
    gateway.check_authorities(&cases);
    // The default denial, exactly.
    let response = gateway.send(
        Protocol::Http1,
        None,
        &HttpRequest::get("evil.example", "/"),
    );
    assert_eq!(
        (
            response.status,
            response.body_text().as_str(),
            response.header(REASON_HEADER)
        ),
        (403, "host not allowed", Some("host_not_listed"))
    );

    let passed = cases
        .iter()
        .filter(|(_, expect)| *expect == Expect::Passes)
        .count() as u64;
    let denied = cases.len() as u64 - passed;
    assert_eq!(
        gateway.counter(ALLOWED),
        2 * passed,
        "{}",
        gateway.log_tail()
    );
    assert_eq!(
        gateway.counter(DENIED),
        2 * denied + 1,
        "{}",
        gateway.log_tail()
    );
    assert_eq!(gateway.counter(AUDIT_DENIED), 0);
    let seen = gateway.upstream.requests();
    assert_eq!(seen.len() as u64, 2 * passed);
    assert!(
        seen.iter()
            .all(|request| matches!(request.authority(), Some("www.example.com" | "google.com"))),
        "{seen:#?}"
    );
}

#[test]
fn every_request_on_one_http2_connection_is_decided_on_its_own() {
    let gateway = HttpGateway::plain(
        "allowlist-per-request",
        &json!({"hosts": ["a.example.com"]}).to_string(),
    );
    let requests = [
        HttpRequest::get("a.example.com", "/1"),
        HttpRequest::get("b.example.com", "/2"),
        HttpRequest::get("a.example.com", "/3"),
        HttpRequest::get("b.example.com", "/4"),
    ];
    let responses = client::send_http2_on_one_connection(gateway.addr, None, &requests)
        .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert_eq!(statuses, [200, 403, 200, 403], "{}", gateway.log_tail());
    let paths: Vec<String> = gateway
        .upstream
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, ["/1", "/3"]);
    assert_eq!(gateway.upstream.connections(), 1);
}

#[test]
fn wildcards_regexes_and_a_custom_denial() {
    let gateway = HttpGateway::plain(
        "allowlist-patterns",
        &json!({
            "hosts": ["*.example.com", "*.deep.example.org"],
            "host_regex": ["^bucket-[0-9]+\\.storage\\.example\\.net$", "api\\.example\\.io"],
            "deny": {"status": 451, "body": "blocked by egress policy\n"}
        })
        .to_string(),
    );
    let cases = [
        // `*.example.com`: one or more labels under it, never the name itself.
        ("a.example.com", Expect::Passes),
        ("a.b.example.com", Expect::Passes),
        ("A.B.Example.COM", Expect::Passes),
        ("example.com", Expect::Denied("host_not_listed")),
        ("aexample.com", Expect::Denied("host_not_listed")),
        ("a.example.com.evil.net", Expect::Denied("host_not_listed")),
        ("x.deep.example.org", Expect::Passes),
        ("deep.example.org", Expect::Denied("host_not_listed")),
        ("x.example.org", Expect::Denied("host_not_listed")),
        // Regexes are anchored on the whole name, case-insensitive, the port left out of the
        // match but held to 80 and 443, as for an entry without a port.
        ("bucket-7.storage.example.net", Expect::Passes),
        ("BUCKET-123.Storage.Example.Net", Expect::Passes),
        ("bucket-7.storage.example.net:443", Expect::Passes),
        (
            "bucket-7.storage.example.net:8080",
            Expect::Denied("host_not_listed"),
        ),
        (
            "bucket-x.storage.example.net",
            Expect::Denied("host_not_listed"),
        ),
        (
            "x.bucket-7.storage.example.net",
            Expect::Denied("host_not_listed"),
        ),
        (
            "bucket-7.storage.example.net.evil.org",
            Expect::Denied("host_not_listed"),
        ),
        ("api.example.io", Expect::Passes),
        ("api.example.io.evil.org", Expect::Denied("host_not_listed")),
        ("evil-api.example.io", Expect::Denied("host_not_listed")),
    ];
    gateway.check_authorities(&cases);
}

#[test]
fn audit_mode_lets_everything_through_and_records_what_it_would_deny() {
    let gateway = HttpGateway::plain(
        "allowlist-audit",
        &json!({"mode": "audit", "hosts": ["www.example.com"]}).to_string(),
    );
    for protocol in PROTOCOLS {
        gateway.check(
            protocol,
            None,
            &HttpRequest::get("www.example.com", "/"),
            Expect::Passes,
        );
        gateway.check(
            protocol,
            None,
            &HttpRequest::get("evil.example", "/"),
            Expect::Passes,
        );
    }
    // Even what does not parse passes in audit mode: the filter only records it.
    let raw = b"GET / HTTP/1.1\r\nhost: user@evil.example\r\nconnection: close\r\n\r\n";
    assert_eq!(
        gateway.observe_raw(None, raw),
        Observed::Passed,
        "{}",
        gateway.log_tail()
    );
    assert_eq!(gateway.counter(ALLOWED), 2);
    assert_eq!(gateway.counter(AUDIT_DENIED), 3, "{}", gateway.log_tail());
    assert_eq!(gateway.counter(DENIED), 0);
    let log = gateway.envoy.log();
    for line in [
        r#"host-allowlist: would deny authority "evil.example": host_not_listed"#,
        r#"host-allowlist: would deny authority "user@evil.example": invalid_host"#,
    ] {
        assert!(
            log.contains(line),
            "{line:?} not in the log:\n{}",
            gateway.log_tail()
        );
    }
    assert_eq!(
        log.matches(r#"would deny authority "evil.example""#)
            .count(),
        2
    );
}

/// Audit mode observes only: an allowed authority written otherwise than its canonical form
/// reaches the upstream exactly as sent (a request that signs its Host header stays valid), where
/// enforce mode sends the canonical form.
#[test]
fn audit_mode_changes_nothing_on_the_request() {
    let sent = "WWW.Example.COM:80";
    for (mode, upstream_sees) in [("audit", sent), ("enforce", "www.example.com")] {
        let gateway = HttpGateway::plain(
            &format!("allowlist-{mode}-authority"),
            &json!({"mode": mode, "hosts": ["www.example.com"]}).to_string(),
        );
        for protocol in PROTOCOLS {
            gateway.check(protocol, None, &HttpRequest::get(sent, "/"), Expect::Passes);
            let last = gateway.upstream.requests().pop().unwrap();
            assert_eq!(last.authority(), Some(upstream_sees), "{mode} {protocol:?}");
        }
    }
}

/// What a client sends is logged cut to 256 bytes: a long authority in audit mode (logged at info
/// on every request) cannot make each request write kilobytes.
#[test]
fn long_client_text_is_cut_in_the_log() {
    let gateway = HttpGateway::plain(
        "allowlist-audit-long",
        &json!({"mode": "audit", "hosts": ["www.example.com"]}).to_string(),
    );
    let authority = format!("{}.evil.example", "a".repeat(8 * 1024));
    gateway.check(
        Protocol::Http1,
        None,
        &HttpRequest::get(&authority, "/"),
        Expect::Passes,
    );
    let log = gateway.envoy.log();
    let line = format!(
        r#"host-allowlist: would deny authority "{}"…(cut, {} bytes): invalid_host"#,
        "a".repeat(256),
        authority.len()
    );
    assert!(log.contains(&line), "{line:?} not in the log");
    assert!(
        !log.contains(&"a".repeat(257)),
        "the whole authority was logged"
    );
}
