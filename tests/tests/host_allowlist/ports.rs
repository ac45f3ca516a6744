//! Which port a request is held to: the authority's, else its connection's default (443 over TLS,
//! 80 in plain text), never what `:scheme` claims; an entry without a port covers 80 and 443 only,
//! `host:*` every port, CONNECT included.

use e2e::client::{self, HttpRequest};
use serde_json::json;

use crate::support::{Expect, HttpGateway, Observed, ALLOWED, REASON_HEADER};

fn config() -> String {
    json!({"hosts": ["secure.example.com:443", "www.example.com", "dev.example.com:*"]}).to_string()
}

#[test]
fn a_plain_text_request_is_on_port_80_whatever_its_scheme_claims() {
    let gateway = HttpGateway::plain("allowlist-port-scheme", &config());
    // h2c claiming `:scheme: https`: still a plain-text connection, so port 80.
    let responses = client::send_http2_with_scheme(
        gateway.addr,
        None,
        "https",
        &[
            HttpRequest::get("secure.example.com", "/"),
            HttpRequest::get("secure.example.com:443", "/"),
        ],
    )
    .unwrap_or_else(|error| panic!("{error}\n{}", gateway.log_tail()));
    assert_eq!(responses[0].status, 403, "{}", gateway.log_tail());
    assert_eq!(responses[0].header(REASON_HEADER), Some("host_not_listed"));
    // The authority's own port is where the request goes.
    assert_eq!(responses[1].status, 200, "{}", gateway.log_tail());
    gateway.check_authorities(&[
        ("secure.example.com", Expect::Denied("host_not_listed")),
        ("secure.example.com:443", Expect::Passes),
        ("www.example.com", Expect::Passes),
        ("www.example.com:443", Expect::Passes),
        ("www.example.com:8080", Expect::Denied("host_not_listed")),
        ("dev.example.com:8080", Expect::Passes),
    ]);
}

#[test]
fn connect_is_held_to_the_entry_ports() {
    let gateway = HttpGateway::plain("allowlist-port-connect", &config());
    let connect =
        |target: &str| format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n").into_bytes();
    // An entry without a port does not open SSH on the host.
    for target in [
        "www.example.com:22",
        "secure.example.com:22",
        "evil.example.com:443",
    ] {
        assert_eq!(
            gateway.observe_raw(None, &connect(target)),
            Observed::Denied("host_not_listed".to_string()),
            "{target}\n{}",
            gateway.log_tail()
        );
    }
    assert_eq!(gateway.counter(ALLOWED), 0);
    // Listed ports pass the filter (this gateway has no CONNECT route, so Envoy answers them).
    for target in [
        "www.example.com:443",
        "secure.example.com:443",
        "dev.example.com:22",
    ] {
        let observed = gateway.observe_raw(None, &connect(target));
        assert!(
            !matches!(observed, Observed::Denied(_)),
            "{target}: {observed:?}\n{}",
            gateway.log_tail()
        );
    }
    assert_eq!(gateway.counter(ALLOWED), 3, "{}", gateway.log_tail());
}
