//! Istio mutual TLS between command-runner's sidecar and the egress gateway, on the configurations
//! `cargo xtask render` makes from `wasm-plugins-manifests/mtls/` (Gateway server `ISTIO_MUTUAL`,
//! DestinationRule subset `ISTIO_MUTUAL` on port 80): real Envoy on both sides, certificates made
//! at test time. Without the subset's `sni` the sidecar sends Istio's cluster name as SNI
//! (`outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local`); with it, that host.

use std::path::Path;
use std::time::Duration;

use e2e::client::{self, HttpRequest, Protocol, TlsClient};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::gateways::{common_vars, egress_gateway_vars, EgressUpstreamPorts};
use e2e::json_lines;
use e2e::modules;
use e2e::paths;
use e2e::pki::CertificateAuthority;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;

/// The SNI the sidecar sends without `sni`, Istio's cluster name
/// `outbound|80|google|istio-egressgateway.istio-system.svc.cluster.local`, as Envoy's access
/// logger prints it: `%REQUESTED_SERVER_NAME%` writes an SNI that is not a valid host name as
/// `invalid:` and the name with each character a host name cannot hold as `_`.
const ISTIO_SNI_AS_LOGGED: &str =
    "invalid:outbound_80_google_istio-egressgateway.istio-system.svc.cluster.local";

/// A workload's certificate as Istio's proxies read it from files: cert-chain.pem, key.pem and
/// root-cert.pem in one directory.
fn workload_certificates(ca: &CertificateAuthority, dir: &Path, name: &str) {
    let certificate = ca.issue(&[name]).unwrap();
    std::fs::write(dir.join("cert-chain.pem"), &certificate.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &certificate.key_pem).unwrap();
    std::fs::write(dir.join("root-cert.pem"), ca.pem()).unwrap();
}

struct MutualTls {
    google: Upstream,
    _internet: Upstream,
    ca: CertificateAuthority,
    egress: Envoy,
    sidecar: Envoy,
    _certs: tempfile::TempDir,
}

impl MutualTls {
    /// The mtls egress gateway and the sidecar rendered into `gateways/<sidecar>`.
    fn start(sidecar: &str) -> Self {
        modules::build_once().unwrap();
        let ca = CertificateAuthority::new().unwrap();
        let certs = tempfile::tempdir().unwrap();
        let gateway_certs = certs.path().join("egress");
        let sidecar_certs = certs.path().join("sidecar");
        std::fs::create_dir_all(&gateway_certs).unwrap();
        std::fs::create_dir_all(&sidecar_certs).unwrap();
        workload_certificates(
            &ca,
            &gateway_certs,
            "istio-egressgateway.istio-system.svc.cluster.local",
        );
        workload_certificates(
            &ca,
            &sidecar_certs,
            "command-runner.default.svc.cluster.local",
        );
        let google = Upstream::start("google").unwrap();
        let internet = Upstream::start("internet").unwrap();
        let egress_dir = Envoy::work_dir("egress-mtls").unwrap();
        let egress_vars = egress_gateway_vars(
            0,
            0,
            0,
            &egress_dir.path().join("access.log"),
            // No collector: only the opt-in Wasm access log has one.
            EgressUpstreamPorts::http_only(google.port(), internet.port(), 0),
        )
        .set("CERT_DIR", gateway_certs.display());
        let egress = Envoy::start_in(
            EnvoyOptions::new(
                "egress-mtls",
                render("mtls/egress-gateway.yaml", &egress_vars),
            ),
            egress_dir,
        )
        .unwrap();
        let sidecar_vars = common_vars(0)
            .set("CERT_DIR", sidecar_certs.display())
            .set("SIDECAR_HTTP_PORT", 0)
            .set("SIDECAR_TLS_PORT", 0)
            .set("EGRESS_GATEWAY_HOST", "127.0.0.1")
            .set(
                "EGRESS_GATEWAY_HTTP_PORT",
                egress.listener_addr("egress_http").unwrap().port(),
            )
            .set(
                "EGRESS_GATEWAY_TLS_PORT",
                egress.listener_addr("egress_tls").unwrap().port(),
            );
        let sidecar = Envoy::start(EnvoyOptions::new(
            "sidecar-mtls",
            render(sidecar, &sidecar_vars),
        ))
        .unwrap();
        Self {
            google,
            _internet: internet,
            ca,
            egress,
            sidecar,
            _certs: certs,
        }
    }

    /// `GET http://HOST/` as the app sends it, to its sidecar.
    fn fetch(&self, host: &str) -> client::HttpResponse {
        client::send(
            self.sidecar.listener_addr("sidecar_http").unwrap(),
            Protocol::Http1,
            None,
            &HttpRequest::get(host, "/"),
        )
        .unwrap()
    }

    /// `fetch`, answered 200: else the failure shows the body and both proxies' logs.
    fn fetch_ok(&self, host: &str) -> client::HttpResponse {
        let response = self.fetch(host);
        assert_eq!(
            response.status,
            200,
            "{host}: {}\n{}",
            response.body_text(),
            self.logs()
        );
        response
    }

    fn logs(&self) -> String {
        format!(
            "egress:\n{}\nsidecar:\n{}",
            self.egress.log_tail(),
            self.sidecar.log_tail()
        )
    }

    /// The egress gateway's JSON access-log records, once `count` are written.
    fn records(&self, count: usize) -> Vec<serde_json::Value> {
        json_lines::wait_for_file(
            &self.egress.work_path().join("access.log"),
            count,
            Duration::from_secs(5),
        )
        .unwrap()
    }
}

fn render(file: &str, vars: &Vars) -> String {
    template::render_file(&paths::gateway_configs_dir().join(file), vars).unwrap()
}

/// Without `sni`, the gateway sees Istio's cluster name as SNI: not a fronting attempt, and both
/// google hosts leave, each request logged once with the SNI it came with.
#[test]
fn istio_mutual_tls_without_sni_lets_both_google_hosts_out() {
    let mesh = MutualTls::start("mtls/sidecar.yaml");
    for host in ["www.google.com", "google.com"] {
        let response = mesh.fetch_ok(host);
        assert_eq!(response.header("x-upstream"), Some("google"), "{host}");
    }
    let arrived = mesh.google.requests();
    assert_eq!(arrived.len(), 2);
    assert!(arrived
        .iter()
        .all(|request| request.header("x-route-subset") == Some("google")));
    let records = mesh.records(2);
    assert_eq!(records.len(), 2, "{records:#?}");
    for (record, host) in records.iter().zip(["www.google.com", "google.com"]) {
        assert_eq!(record["authority"], host, "{record}");
        assert_eq!(
            record["requested_server_name"], ISTIO_SNI_AS_LOGGED,
            "{record}"
        );
        assert_eq!(record["allowlist"]["decision"], "allowed", "{record}");
    }
}

/// With `sni: www.google.com` on the subset, every host sent through it carries that SNI. Host
/// google.com then names another host than its SNI; both are allowed, so the shipped allowlist
/// (`on_sni_mismatch: reject`) lets it out (`strict` would answer 421: one subset per host then).
#[test]
fn istio_mutual_tls_with_sni_sends_that_host_for_every_request() {
    let mesh = MutualTls::start("mtls/with-sni/sidecar.yaml");
    for host in ["www.google.com", "google.com"] {
        mesh.fetch_ok(host);
    }
    assert_eq!(mesh.google.requests().len(), 2);
    let records = mesh.records(2);
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(
        records
            .iter()
            .all(|record| record["requested_server_name"] == "www.google.com"),
        "{records:#?}"
    );
}

/// The gateway's port-80 server is mutual TLS only: a client without a workload certificate gets
/// no HTTP through, and plaintext neither.
#[test]
fn the_istio_mutual_server_requires_a_workload_certificate() {
    let mesh = MutualTls::start("mtls/sidecar.yaml");
    let gateway = mesh.egress.listener_addr("egress_http").unwrap();
    let tls = TlsClient {
        config: mesh.ca.client_config(&[b"http/1.1"]).unwrap(),
        sni: Some("www.google.com".to_string()),
    };
    let without_certificate = client::send(
        gateway,
        Protocol::Http1,
        Some(&tls),
        &HttpRequest::get("www.google.com", "/"),
    );
    assert!(
        without_certificate.is_err(),
        "{:?}",
        without_certificate.map(|response| response.status)
    );
    let plaintext = client::send(
        gateway,
        Protocol::Http1,
        None,
        &HttpRequest::get("www.google.com", "/"),
    );
    assert!(
        plaintext.is_err(),
        "{:?}",
        plaintext.map(|response| response.status)
    );
    assert!(mesh.google.requests().is_empty());
}

/// The ALPN the sidecar offers on its mutual-TLS connection is Istio's for HTTP/1.1: a TLS server
/// in the gateway's place that accepts only `istio-http/1.1` gets the request (rustls refuses a
/// handshake whose offers it cannot accept). The sidecar with the subset's `sni`: rustls also
/// refuses Istio's `outbound|…` SNI, which is no DNS name.
#[test]
fn the_sidecar_offers_istios_alpn_for_http_1_1() {
    modules::build_once().unwrap();
    let ca = CertificateAuthority::new().unwrap();
    let certs = tempfile::tempdir().unwrap();
    workload_certificates(
        &ca,
        certs.path(),
        "command-runner.default.svc.cluster.local",
    );
    let gateway = Upstream::start_tls(
        "istio-alpn-only",
        ca.issue(&["istio-egressgateway.istio-system.svc.cluster.local"])
            .unwrap()
            .server_config(&[b"istio-http/1.1"])
            .unwrap(),
    )
    .unwrap();
    let vars = Vars::new()
        .set("BIND_ADDRESS", "127.0.0.1")
        .set("ADMIN_PORT", 0)
        .set("CERT_DIR", certs.path().display())
        .set("SIDECAR_HTTP_PORT", 0)
        .set("SIDECAR_TLS_PORT", 0)
        .set("EGRESS_GATEWAY_HOST", "127.0.0.1")
        .set("EGRESS_GATEWAY_HTTP_PORT", gateway.port())
        .set("EGRESS_GATEWAY_TLS_PORT", gateway.port());
    let sidecar = Envoy::start(EnvoyOptions::new(
        "sidecar-alpn",
        render("mtls/with-sni/sidecar.yaml", &vars),
    ))
    .unwrap();
    let response = client::send(
        sidecar.listener_addr("sidecar_http").unwrap(),
        Protocol::Http1,
        None,
        &HttpRequest::get("www.google.com", "/"),
    )
    .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.body_text(),
        sidecar.log_tail()
    );
    let seen = gateway.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("www.google.com"));
}
