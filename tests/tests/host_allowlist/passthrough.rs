//! TLS passthrough by SNI: the module as a network filter before a TCP proxy to an HTTPS upstream.
//! An allowed SNI handshakes end to end with the upstream; a denied or missing SNI is closed
//! before the TCP proxy opens any upstream connection.

use e2e::client::{self, HttpRequest, Protocol};
use serde_json::json;

use crate::support::{PassthroughGateway, ALLOWED, DENIED};

#[test]
fn allowed_sni_reaches_the_https_upstream_and_others_are_closed_before_it() {
    let gateway = PassthroughGateway::start(
        "allowlist-passthrough",
        &json!({"hosts": ["www.google.com", "google.com", "*.googleapis.com", "pinned.example.com:1"]}).to_string(),
        &["www.google.com", "google.com", "storage.googleapis.com", "pinned.example.com", "evil.example.com", "localhost"],
    );
    // Allowed: the client's TLS session is with the upstream itself, which saw the SNI.
    for (protocol, sni) in [
        (Protocol::Http1, "www.google.com"),
        (Protocol::Http2, "google.com"),
        (Protocol::Http1, "storage.googleapis.com"),
    ] {
        let tls = gateway.client(protocol, Some(sni));
        let response = client::send(
            gateway.addr,
            protocol,
            Some(&tls),
            &HttpRequest::get(sni, "/search"),
        )
        .unwrap_or_else(|error| panic!("{protocol:?} {sni}: {error}\n{}", gateway.log_tail()));
        assert_eq!(response.status, 200, "{sni}: {}", gateway.log_tail());
        assert_eq!(response.header("x-upstream"), Some(gateway.upstream.name()));
        let last = gateway.upstream.requests().pop().unwrap();
        assert_eq!(last.sni.as_deref(), Some(sni));
        assert_eq!(last.authority(), Some(sni));
    }
    let connections = gateway.upstream.connections();
    assert_eq!(connections, 3);
    assert_eq!(gateway.upstream.requests().len(), 3);

    // Denied: not listed, listed on another port than the one connected to, or no SNI at all.
    // The handshake fails (the gateway closes the connection) and the upstream sees no
    // connection, so not a byte of the ClientHello.
    let denied = [
        Some("evil.example.com"),
        Some("pinned.example.com"),
        Some("googleapis.com"),
        None,
    ];
    for sni in denied {
        let tls = gateway.client(Protocol::Http1, sni);
        let handshake = client::tls_handshake(gateway.addr, &tls);
        assert!(
            handshake.is_err(),
            "SNI {sni:?}: the handshake succeeded\n{}",
            gateway.log_tail()
        );
        let request = client::send(
            gateway.addr,
            Protocol::Http1,
            Some(&tls),
            &HttpRequest::get("www.google.com", "/"),
        );
        assert!(
            request.is_err(),
            "SNI {sni:?}: a request went through: {request:?}"
        );
    }
    assert_eq!(
        gateway.upstream.connections(),
        connections,
        "{}",
        gateway.log_tail()
    );
    assert_eq!(gateway.upstream.requests().len(), 3);
    assert_eq!(gateway.counter(ALLOWED), 3);
    assert_eq!(
        gateway.counter(DENIED),
        2 * denied.len() as u64,
        "{}",
        gateway.log_tail()
    );
    // Envoy's own count agrees: the TCP proxy opened no upstream connection for them.
    let upstream_connections = gateway
        .envoy
        .stat("cluster.upstream.upstream_cx_total")
        .unwrap();
    assert_eq!(upstream_connections, Some(3), "{}", gateway.log_tail());
}
