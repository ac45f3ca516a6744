//! The seed's story on the shared egress gateway configuration (`gateways/egress-gateway.yaml`, as
//! the demo and docker-compose run it): only `www.google.com` and `google.com` leave the mesh (to
//! local stand-ins, no internet); everything else is blocked before the "internet" upstream.

use e2e::client::{self, HttpRequest, Protocol};
use e2e::envoy::tail;
use e2e::gateways::{GatewayPorts, LocalGateways, APP_HOST};

use crate::support::{ALLOWED, DENIED, REASON_HEADER};

#[test]
fn the_egress_gateway_lets_out_only_google_and_blocks_the_rest() {
    let gateways = LocalGateways::start(GatewayPorts::any()).unwrap();
    let egress = gateways.egress_http().unwrap();
    let log = || tail(&gateways.egress.log(), 40);

    let allowed = [
        "www.google.com",
        "google.com",
        "WWW.Google.Com.",
        "google.com:80",
    ];
    let blocked = [
        "example.org",
        "mail.google.com",
        "www.google.com.evil.net",
        "google.com.evil.net",
        "evilgoogle.com",
        "142.250.74.196",
    ];
    for protocol in [Protocol::Http1, Protocol::Http2] {
        for host in allowed {
            let response =
                client::send(egress, protocol, None, &HttpRequest::get(host, "/")).unwrap();
            assert_eq!(
                response.status,
                200,
                "{protocol:?} {host}: {}\n{}",
                response.body_text(),
                log()
            );
            assert_eq!(response.header("x-upstream"), Some("google"), "{host}");
        }
        for host in blocked {
            let response =
                client::send(egress, protocol, None, &HttpRequest::get(host, "/")).unwrap();
            assert_eq!(
                response.status,
                403,
                "{protocol:?} {host}: {}\n{}",
                response.body_text(),
                log()
            );
            assert_eq!(response.header(REASON_HEADER), Some("host_not_listed"));
            assert_eq!(response.body_text(), "host not allowed");
        }
    }
    // The app behind the ingress gateway calls out through its sidecar: a listed host answers; a
    // host with a ServiceEntry routed through the egress gateway but not allowlisted gets the
    // egress gateway's denial; a host no ServiceEntry lists gets the sidecar's 502.
    let ingress = gateways.ingress_http().unwrap();
    let fetch = |host: &str| {
        client::send(
            ingress,
            Protocol::Http1,
            None,
            &HttpRequest::get(APP_HOST, &format!("/fetch?host={host}")),
        )
        .unwrap()
    };
    let response = fetch("www.google.com");
    assert_eq!(
        (response.status, response.header("x-egress-upstream")),
        (200, Some("google"))
    );
    let response = fetch("example.org");
    assert_eq!(response.status, 502, "{}\n{}", response.body_text(), log());
    assert_eq!(response.header("x-egress-upstream"), None);
    let response = fetch("evil.example.com");
    assert_eq!(response.status, 403, "{}\n{}", response.body_text(), log());
    assert_eq!(response.body_text(), "host not allowed");
    assert_eq!(response.header("x-egress-upstream"), None);

    assert!(
        gateways.internet.requests().is_empty(),
        "{:#?}",
        gateways.internet.requests()
    );
    assert_eq!(gateways.internet.connections(), 0);
    let to_google = gateways.google.requests().len();
    assert_eq!(to_google, 2 * allowed.len() + 1);
    let stat = |name| gateways.egress.stat(name).unwrap().unwrap_or(0);
    assert_eq!(stat(ALLOWED), to_google as u64, "{}", log());
    assert_eq!(stat(DENIED), 2 * blocked.len() as u64 + 1, "{}", log());
}
