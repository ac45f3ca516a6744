//! Istio mutual TLS: a sidecar reaching the gateway over `ISTIO_MUTUAL` sends its cluster name as SNI
//! (`outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local`, or the DNS SRV form
//! `outbound_.80_.google_.…` under auto mutual TLS) unless the DestinationRule sets `sni`. That name
//! is Istio's own, not a fronting attempt: with `on_sni_mismatch: reject` the authority alone decides.
//! The client here is a real Envoy originating TLS with that SNI, as the sidecar does; a TLS client
//! library would refuse `|` in a server name.

use std::net::SocketAddr;

use e2e::client::{self, HttpRequest, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::paths;
use e2e::template::{self, Vars};
use serde_json::json;

use crate::support::{Expect, HttpGateway, Observed};

const GATEWAY_SERVICE: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// An Envoy that sends plain-text HTTP from its listener to `gateway` over TLS with `sni`
/// (`tests/envoy/tls-origination-client.yaml`), trusting the gateway's CA.
pub struct TlsOriginatingClient {
    pub envoy: Envoy,
    pub addr: SocketAddr,
}

impl TlsOriginatingClient {
    pub fn start(name: &str, gateway: &HttpGateway, sni: &str) -> Self {
        let work_dir = Envoy::work_dir(name).unwrap();
        let ca_path = work_dir.path().join("gateway-ca.crt");
        std::fs::write(&ca_path, gateway.ca.as_ref().expect("a TLS gateway").pem()).unwrap();
        let vars = Vars::new()
            .set("SNI", sni)
            .set("CA_PATH", ca_path.display())
            .set("GATEWAY_PORT", gateway.addr.port());
        let bootstrap = template::render_file(
            &paths::test_configs_dir().join("tls-origination-client.yaml"),
            &vars,
        )
        .unwrap();
        let envoy = Envoy::start_in(EnvoyOptions::new(name, bootstrap), work_dir).unwrap();
        let addr = envoy.listener_addr("client").unwrap();
        Self { envoy, addr }
    }

    /// Sends `GET /` for `authority` through the client and checks on the gateway that it met
    /// `expect`.
    pub fn check(&self, gateway: &HttpGateway, authority: &str, expect: Expect) {
        let before = gateway.upstream.requests().len();
        let response = client::send(
            self.addr,
            Protocol::Http1,
            None,
            &HttpRequest::get(authority, "/"),
        )
        .unwrap_or_else(|error| panic!("{authority}: {error}\n{}", self.envoy.log_tail()));
        assert_eq!(
            gateway.observe(&response, before),
            Observed::from(expect),
            "{authority}\ngateway:\n{}\nclient:\n{}",
            gateway.log_tail(),
            self.envoy.log_tail()
        );
    }
}

#[test]
fn istio_cluster_name_sni_is_not_a_mismatch() {
    let gateway = HttpGateway::tls(
        "allowlist-istio-sni",
        &json!({"hosts": ["www.google.com"], "on_sni_mismatch": "reject"}).to_string(),
        &[GATEWAY_SERVICE],
    );
    for sni in [
        format!("outbound|80|google|{GATEWAY_SERVICE}"),
        format!("outbound_.80_.google_.{GATEWAY_SERVICE}"),
    ] {
        let client = TlsOriginatingClient::start("allowlist-istio-sni-client", &gateway, &sni);
        client.check(&gateway, "www.google.com", Expect::Passes);
        client.check(
            &gateway,
            "evil.example.com",
            Expect::Denied("host_not_listed"),
        );
    }
    // The same client with a host name for SNI that is not allowed is misdirected: the SNI does
    // reach the comparison.
    let client =
        TlsOriginatingClient::start("allowlist-istio-sni-client", &gateway, "evil.example.com");
    client.check(&gateway, "www.google.com", Expect::Misdirected);
}
