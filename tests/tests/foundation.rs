//! The foundation's end-to-end checks: the three modules load in Envoy 1.40's V8 runtime and pass
//! traffic, and a configuration a filter rejects makes Envoy refuse to start with a field-named error.

use e2e::client::{self, HttpRequest, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::Module;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{http_filters_yaml, WasmFilter};

fn gateway_bootstrap(filters: &[WasmFilter], upstream: &Upstream) -> String {
    let vars = Vars::new()
        .set("HTTP_FILTERS", http_filters_yaml(filters))
        .set("UPSTREAM_PORT", upstream.port());
    template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars).unwrap()
}

/// Configurations that each filter accepts.
fn all_three_filters() -> Vec<WasmFilter> {
    vec![
        WasmFilter::http(Module::HostAllowlist, r#"{"hosts": ["app.example.com"]}"#),
        WasmFilter::http(Module::SubsetTagger, r#"{"header": "x-route-subset"}"#),
        WasmFilter::http(Module::AccessLog, r#"{"gateway": "ingress"}"#),
    ]
}

#[test]
fn all_three_filters_pass_a_request_over_http1_and_http2() {
    let upstream = Upstream::start("app").unwrap();
    let envoy = Envoy::start(EnvoyOptions::new(
        "three-filters",
        gateway_bootstrap(&all_three_filters(), &upstream),
    ))
    .unwrap();
    let log = envoy.log();
    for module in [
        Module::HostAllowlist,
        Module::SubsetTagger,
        Module::AccessLog,
    ] {
        let accepted = format!(
            "wasm log {0} {0}.{0}: {0}: configuration accepted",
            module.package()
        );
        assert!(log.contains(&accepted), "{accepted:?} not in Envoy's log");
    }
    let gateway = envoy.listener_addr("gateway").unwrap();

    for (protocol, version) in [(Protocol::Http1, "HTTP/1.1"), (Protocol::Http2, "HTTP/2.0")] {
        let request = HttpRequest::get("app.example.com", &format!("/hello?via={version}"))
            .header("x-test", "foundation");
        let response = client::send(gateway, protocol, None, &request).unwrap();
        assert_eq!(
            response.status,
            200,
            "{protocol:?}: {}",
            response.body_text()
        );
        assert_eq!(response.header("x-upstream"), Some("app"));
        assert_eq!(response.body_text(), "upstream app\n");
    }

    let seen = upstream.requests();
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for (request, version) in seen.iter().zip(["HTTP/1.1", "HTTP/2.0"]) {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, format!("/hello?via={version}"));
        assert_eq!(request.authority(), Some("app.example.com"));
        assert_eq!(request.header("x-test"), Some("foundation"));
    }
    // Every Wasm filter ran in a V8 VM: Envoy counts created VMs per runtime.
    let v8_vms = envoy.stat("wasm.envoy.wasm.runtime.v8.created").unwrap();
    assert!(v8_vms.unwrap_or(0) >= 3, "V8 VMs created: {v8_vms:?}");
}

#[test]
fn a_rejected_configuration_makes_envoy_refuse_to_start() {
    let cases = [
        (
            WasmFilter::http(Module::HostAllowlist, r#"{"deny": {"status": 99}}"#),
            "host-allowlist: invalid configuration: deny.status: 99 is not an HTTP error status from 400 to 599",
        ),
        (
            WasmFilter::http(Module::SubsetTagger, r#"{"header": "X Bad"}"#),
            r#"subset-tagger: invalid configuration: header: "X Bad" is not a lowercase HTTP header name"#,
        ),
        (
            WasmFilter::http(Module::AccessLog, r#"{"sample_rate": 2}"#),
            "access-log: invalid configuration: sample_rate: 2 is not between 0 and 1",
        ),
    ];
    let upstream = Upstream::start("unused").unwrap();
    for (filter, expected) in cases {
        let failure = Envoy::start_expecting_failure(EnvoyOptions::new(
            "bad-config",
            gateway_bootstrap(&[filter], &upstream),
        ))
        .unwrap();
        assert!(!failure.status.success());
        assert!(
            failure.log.contains(expected),
            "{expected:?} not in:\n{}",
            failure.log
        );
    }
    assert!(upstream.requests().is_empty());
}
