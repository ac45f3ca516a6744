//! The connection record of TLS passthrough: access-log as a network filter (root id `network`)
//! in a tcp_proxy chain behind tls_inspector, as on an Istio egress gateway's port 443.

use e2e::client::{self, HttpRequest, Protocol, TlsClient};
use e2e::envoy::{tail, Envoy, EnvoyOptions};
use e2e::json_lines;
use e2e::modules::Module;
use e2e::paths;
use e2e::pki::CertificateAuthority;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{network_filters_yaml, WasmFilter};
use gateway_core::access_log::ENVOY_LOG_PREFIX;

use crate::common::{assert_no_placeholders, number, text, ATTRIBUTES_READ_ONE_BY_ONE, WAIT};

#[test]
fn a_tls_passthrough_connection_is_recorded_with_its_sni() {
    let ca = CertificateAuthority::new().unwrap();
    let certificate = ca.issue(&["secure.example.com"]).unwrap();
    let upstream =
        Upstream::start_tls("secure", certificate.server_config(&[b"http/1.1"]).unwrap()).unwrap();
    let filters = network_filters_yaml(&[WasmFilter::network(
        Module::AccessLog,
        r#"{"gateway": "egress", "sinks": {"envoy_log": true}}"#,
    )]);
    let vars = Vars::new()
        .set("NETWORK_FILTERS", filters)
        .set("UPSTREAM_PORT", upstream.port());
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("tls-passthrough.yaml"),
        &vars,
    )
    .unwrap();
    let envoy = Envoy::start(EnvoyOptions::new("access-log-passthrough", bootstrap)).unwrap();
    let listener = envoy.listener_addr("passthrough").unwrap();

    let tls = TlsClient {
        config: ca.client_config(&[b"http/1.1"]).unwrap(),
        sni: Some("secure.example.com".to_string()),
    };
    let request = HttpRequest::get("secure.example.com", "/through-the-tunnel");
    let response = client::send(listener, Protocol::Http1, Some(&tls), &request)
        .unwrap_or_else(|error| panic!("{error}\n{}", tail(&envoy.log(), 40)));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-upstream"), Some("secure"));
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].sni.as_deref(),
        Some("secure.example.com"),
        "Envoy passed TLS through untouched"
    );

    // The record is written when the connection closes, from either side.
    envoy
        .wait_for_stat("wasmcustom.access_log.records", WAIT, |n| n >= 1)
        .unwrap_or_else(|error| panic!("{error}"));
    let log = envoy
        .wait_for_log(ENVOY_LOG_PREFIX, WAIT)
        .unwrap_or_else(|error| panic!("{error}"));
    let records =
        json_lines::after_prefix(&log, ENVOY_LOG_PREFIX).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    let context = format!("{record}\n{}", tail(&log, 40));
    assert_no_placeholders(record);
    assert_eq!(
        text(record, "requested_server_name"),
        "secure.example.com",
        "{context}"
    );
    assert_eq!(
        text(record, "upstream_host"),
        upstream.addr().to_string(),
        "{context}"
    );
    assert_eq!(
        text(record, "downstream_local_address"),
        listener.to_string(),
        "{context}"
    );
    assert_eq!(text(record, "gateway"), "egress", "{context}");
    // Encrypted bytes each way: a TLS handshake and a request are far more than the plaintext.
    let received = number(record, "bytes_received");
    let sent = number(record, "bytes_sent");
    assert!(received > request.path.len() as u64, "{context}");
    assert!(sent > response.body.len() as u64, "{context}");
    number(record, "duration");
    // Nothing of HTTP is visible in a passthrough connection.
    for absent in [
        "method",
        "path",
        "authority",
        "response_code",
        "request_id",
        "user_agent",
    ] {
        assert!(record.get(absent).is_none(), "{absent} present: {context}");
    }
    // The connection's own list (no request) evaluated too.
    let one_by_one = envoy.stat(ATTRIBUTES_READ_ONE_BY_ONE).unwrap();
    assert_eq!(one_by_one, Some(0), "{context}");
}
