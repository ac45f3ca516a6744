//! The gateways' access log as shipped: Envoy's own JSON access logger (the Telemetry providers
//! `gateway-wasm-json-*` of wasm-plugins-manifests/mesh-config.yaml, rendered into `gateways/`)
//! writes each record, Istio's JSON fields plus `gateway`, `allowlist` and `subset` read from the
//! filter state host-allowlist and subset-tagger publish; no Wasm access-log module runs. Then the
//! opt-in variants: kustomize/sampled-access-log's CEL filter in real Envoy, and
//! kustomize/wasm-access-log's record and collector through the demo's walk-through.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::client::{self, HttpRequest, HttpResponse, Protocol, TlsClient};
use e2e::gateways::{GatewayPorts, GatewayVariant, LocalGateways, APP_HOST, UNAVAILABLE_PATH};
use e2e::json_lines;
use e2e::walkthrough::{
    assert_every_step_ok, object_keys, read_until, walkthrough, NATIVE_RECORD_FIELDS,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn get(addr: std::net::SocketAddr, host: &str, path: &str, request_id: &str) -> HttpResponse {
    client::send(
        addr,
        Protocol::Http1,
        None,
        &HttpRequest::get(host, path).header("x-request-id", request_id),
    )
    .unwrap()
}

fn tls_client(gateways: &LocalGateways, sni: &str) -> TlsClient {
    TlsClient {
        config: gateways.ca.client_config(&[b"http/1.1"]).unwrap(),
        sni: Some(sni.to_string()),
    }
}

/// A request for www.google.com through the egress gateway's TLS passthrough listener.
fn passthrough_to_google(gateways: &LocalGateways) -> HttpResponse {
    client::send(
        gateways.egress_tls().unwrap(),
        Protocol::Http1,
        Some(&tls_client(gateways, "www.google.com")),
        &HttpRequest::get("www.google.com", "/"),
    )
    .unwrap()
}

/// The records of `envoy`'s access log once `count` are written (every line one JSON object).
fn records(gateways_envoy: &e2e::envoy::Envoy, count: usize) -> Vec<Value> {
    json_lines::wait_for_file(&LocalGateways::access_log_path(gateways_envoy), count, WAIT).unwrap()
}

fn find<'a>(records: &'a [Value], what: &str, matches: impl Fn(&Value) -> bool) -> &'a Value {
    records
        .iter()
        .find(|record| matches(record))
        .unwrap_or_else(|| panic!("no record of {what} in {records:#?}"))
}

#[test]
fn the_shipped_gateways_write_istio_s_json_record_with_the_decision_and_the_subset() {
    let gateways = LocalGateways::start(GatewayPorts::any()).unwrap();
    let egress = gateways.egress_http().unwrap();
    let allowed = get(egress, "www.google.com", "/a?q=1", "native-allowed");
    assert_eq!(allowed.status, 200, "{}", allowed.body_text());
    let denied = get(egress, "evil.example.com", "/b", "native-denied");
    assert_eq!(denied.status, 403);
    assert_eq!(passthrough_to_google(&gateways).status, 200);
    let closed = client::tls_handshake(
        gateways.egress_tls().unwrap(),
        &tls_client(&gateways, "evil.example.com"),
    );
    assert!(
        closed.is_err(),
        "the allowlist let TLS for evil.example.com through"
    );
    let ingress = get(
        gateways.ingress_http().unwrap(),
        APP_HOST,
        "/",
        "native-ingress",
    );
    assert_eq!(ingress.status, 200);

    let egress_records = records(&gateways.egress, 4);
    assert_eq!(egress_records.len(), 4, "{egress_records:#?}");
    let ingress_records = records(&gateways.ingress, 1);
    assert_eq!(ingress_records.len(), 1, "{ingress_records:#?}");
    let expected_fields: BTreeSet<&str> = NATIVE_RECORD_FIELDS.into_iter().collect();
    for record in egress_records.iter().chain(&ingress_records) {
        assert_eq!(object_keys(record), expected_fields, "{record}");
        assert_eq!(
            object_keys(&record["allowlist"]),
            BTreeSet::from(["decision", "reason", "rule"]),
            "{record}"
        );
    }

    let allowed = find(&egress_records, "the allowed request", |r| {
        r["request_id"] == "native-allowed"
    });
    assert_eq!(allowed["gateway"], "egress");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["authority"], "www.google.com");
    assert_eq!(allowed["path"], "/a?q=1");
    assert_eq!(allowed["protocol"], "HTTP/1.1");
    assert_eq!(allowed["response_code"], 200);
    assert_eq!(allowed["upstream_cluster"], "outbound|80||www.google.com");
    assert_eq!(
        allowed["allowlist"],
        json!({"decision": "allowed", "reason": "host_listed", "rule": "www.google.com"})
    );
    assert_eq!(allowed["subset"], "google");

    let denied = find(&egress_records, "the denied request", |r| {
        r["request_id"] == "native-denied"
    });
    assert_eq!(denied["response_code"], 403);
    assert_eq!(
        denied["allowlist"],
        json!({"decision": "denied", "reason": "host_not_listed", "rule": null})
    );
    assert_eq!(
        denied["subset"],
        Value::Null,
        "a denied request is not tagged"
    );
    assert_eq!(denied["upstream_host"], Value::Null, "{denied}");

    let connection = find(&egress_records, "the TLS passthrough connection", |r| {
        r["requested_server_name"] == "www.google.com"
    });
    assert_eq!(
        connection["method"],
        Value::Null,
        "a connection has no request"
    );
    assert_eq!(
        connection["upstream_cluster"],
        "outbound|443||www.google.com"
    );
    assert_eq!(
        connection["allowlist"],
        json!({"decision": "allowed", "reason": "host_listed", "rule": "www.google.com"})
    );
    let closed = find(&egress_records, "the closed TLS connection", |r| {
        r["requested_server_name"] == "evil.example.com"
    });
    assert_eq!(
        closed["allowlist"],
        json!({"decision": "denied", "reason": "host_not_listed", "rule": null})
    );
    assert_eq!(closed["upstream_host"], Value::Null, "{closed}");

    let ingress = &ingress_records[0];
    assert_eq!(ingress["gateway"], "ingress");
    assert_eq!(ingress["request_id"], "native-ingress");
    assert_eq!(ingress["allowlist"]["decision"], "allowed");

    // No Wasm module built these records: the shipped gateways load no access-log module.
    for envoy in [&gateways.egress, &gateways.ingress] {
        assert_eq!(envoy.stat("wasmcustom.access_log.records").unwrap(), None);
    }
}

/// kustomize/sampled-access-log: Envoy's CEL filter keeps every denial, every 5xx and every TLS
/// connection, and of the rest the requests whose x-request-id sorts below "19a". The local
/// gateway keeps a client's x-request-id (it is not an edge proxy to Envoy: no
/// use_remote_address), so the test chooses which side of the threshold each request falls on.
#[test]
fn the_sampled_access_log_keeps_denials_5xx_connections_and_a_share_by_request_id() {
    let gateways =
        LocalGateways::start_variant(GatewayPorts::any(), GatewayVariant::SampledAccessLog)
            .unwrap();
    let egress = gateways.egress_http().unwrap();
    // (request id, host, path, status, logged)
    let requests = [
        (
            "ffffffff-0000-4000-8000-000000000001",
            "www.google.com",
            "/",
            200,
            false,
        ),
        (
            "19a00000-0000-4000-8000-000000000002",
            "www.google.com",
            "/",
            200,
            false,
        ),
        (
            "199fffff-0000-4000-8000-000000000003",
            "www.google.com",
            "/",
            200,
            true,
        ),
        (
            "00000000-0000-4000-8000-000000000004",
            "google.com",
            "/",
            200,
            true,
        ),
        (
            "ffffffff-0000-4000-8000-000000000005",
            "evil.example.com",
            "/",
            403,
            true,
        ),
        (
            "ffffffff-0000-4000-8000-000000000006",
            "www.google.com",
            UNAVAILABLE_PATH,
            503,
            true,
        ),
    ];
    for (id, host, path, status, _) in requests {
        let response = get(egress, host, path, id);
        assert_eq!(
            response.status,
            status,
            "{id} {host}{path}: {}",
            response.body_text()
        );
    }
    assert_eq!(passthrough_to_google(&gateways).status, 200);
    // An allowed ingress request above the threshold, and a denied one.
    let ingress = gateways.ingress_http().unwrap();
    assert_eq!(
        get(
            ingress,
            APP_HOST,
            "/",
            "ffffffff-0000-4000-8000-000000000007"
        )
        .status,
        200
    );
    assert_eq!(
        get(
            ingress,
            "attacker.example.com",
            "/",
            "ffffffff-0000-4000-8000-000000000008"
        )
        .status,
        403
    );

    let kept: Vec<&str> = requests
        .iter()
        .filter(|(.., logged)| *logged)
        .map(|(id, ..)| *id)
        .collect();
    // The connection's record is written when it closes, after the requests' records.
    let egress_records = records(&gateways.egress, kept.len() + 1);
    let logged_ids: BTreeSet<&str> = egress_records
        .iter()
        .filter_map(|record| record["request_id"].as_str())
        .collect();
    assert_eq!(
        logged_ids,
        kept.iter().copied().collect(),
        "Envoy kept each client's x-request-id, and the filter only these: {egress_records:#?}"
    );
    let connections: Vec<&Value> = egress_records
        .iter()
        .filter(|record| record["request_id"].is_null())
        .collect();
    assert_eq!(connections.len(), 1, "{egress_records:#?}");
    assert_eq!(connections[0]["requested_server_name"], "www.google.com");
    let failed = find(&egress_records, "the 503", |r| r["response_code"] == 503);
    assert_eq!(failed["allowlist"]["decision"], "allowed");

    let ingress_records = records(&gateways.ingress, 1);
    assert_eq!(ingress_records.len(), 1, "{ingress_records:#?}");
    assert_eq!(ingress_records[0]["allowlist"]["decision"], "denied");
    assert_eq!(
        ingress_records[0]["request_id"],
        "ffffffff-0000-4000-8000-000000000008"
    );
}

/// kustomize/wasm-access-log: the access-log module builds the records (printed by the provider
/// `gateway-wasm-record`) and ships the egress ones to the collector; the demo's story holds with
/// them, decisions, TLS connections and batches included.
#[test]
fn the_opt_in_wasm_access_log_keeps_its_record_and_its_collector() {
    let gateways =
        LocalGateways::start_variant(GatewayPorts::any(), GatewayVariant::WasmAccessLog).unwrap();
    let steps = walkthrough(&gateways);
    assert!(
        steps
            .iter()
            .any(|step| step.title.contains("log collector")),
        "{steps:#?}"
    );
    assert_every_step_ok(&steps);
    assert!(
        gateways
            .egress
            .stat("wasmcustom.access_log.records")
            .unwrap()
            .is_some_and(|records| records >= 3),
        "the Wasm module built the egress records"
    );
}

/// kustomize/sampled-access-log's `filter.expression`, as the component writes it.
fn sampling_expression() -> String {
    let path = e2e::paths::workspace_root()
        .join("wasm-plugins-manifests/kustomize/sampled-access-log/kustomization.yaml");
    let component: Value =
        serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let patch: Value =
        serde_norway::from_str(component["patches"][0]["patch"].as_str().unwrap()).unwrap();
    patch[0]["value"]["expression"]
        .as_str()
        .unwrap_or_else(|| panic!("no filter expression in {}", path.display()))
        .to_string()
}

/// The expression's guard in real Envoy: indexing a filter-state key that is absent is an error,
/// which makes Envoy's CEL filter drop the record; `in` tells first. A request no allowlist
/// decided on is kept, one the allowlist allowed is sampled by its id, and the decision compares
/// as bytes (a string comparison would keep every allowed request).
#[test]
fn the_sampling_expression_keeps_what_no_allowlist_decided_on() {
    let expression = sampling_expression();
    let cases = [
        ("no allowlist", String::new(), false),
        (
            "host-allowlist",
            e2e::wasm_filter::http_filters_yaml(&[e2e::wasm_filter::WasmFilter::http(
                e2e::modules::Module::HostAllowlist,
                r#"{"hosts": ["app.example.com"]}"#,
            )]),
            true,
        ),
    ];
    e2e::modules::build_once().unwrap();
    for (name, filters, decided) in cases {
        let dir = e2e::envoy::Envoy::work_dir("cel-filtered-log").unwrap();
        let log = dir.path().join("access.log");
        let vars = e2e::template::Vars::new()
            .set("ACCESS_LOG_PATH", log.display())
            .set("EXPRESSION", Value::String(expression.clone()))
            .set("HTTP_FILTERS", filters);
        let bootstrap = e2e::template::render_file(
            &e2e::paths::test_configs_dir().join("cel-filtered-log.yaml"),
            &vars,
        )
        .unwrap();
        let envoy = e2e::envoy::Envoy::start_in(
            e2e::envoy::EnvoyOptions::new("cel-filtered-log", bootstrap),
            dir,
        )
        .unwrap();
        let addr = envoy.listener_addr("gateway").unwrap();
        let above = "ffffffff-0000-4000-8000-000000000001";
        let below = "00000000-0000-4000-8000-000000000002";
        for id in [above, below] {
            assert_eq!(get(addr, "app.example.com", "/", id).status, 200, "{name}");
        }
        let expected = if decided {
            vec![below]
        } else {
            vec![above, below]
        };
        let logged = read_until(
            WAIT,
            || -> Vec<String> {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines().map(str::to_string).collect()
            },
            |logged| logged.len() >= expected.len(),
        );
        assert_eq!(logged, expected, "{name}");
    }
}
