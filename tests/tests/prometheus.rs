//! The filters' metrics as Prometheus sees them on an Istio gateway: real Envoy with the tag
//! extraction istio-agent configures for `extraStatTags` (tests/envoy/istio-stats-gateway.yaml),
//! read from `/stats/prometheus`: one metric per concept, reason, subset and gateway as labels, no
//! `wasmcustom` prefix. The access-log module's metric is the opt-in Wasm access log's
//! (kustomize/wasm-access-log); the shipped gateways run the allowlist and the tagger.

use std::time::Duration;

use e2e::client::{self, HttpRequest, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::lds;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{egress_suite, http_filters_yaml};

const ALLOWED: &str = "app.example.com";
const WAIT: Duration = Duration::from_secs(30);

fn start(upstream: &Upstream) -> Envoy {
    let filters = egress_suite(
        ALLOWED,
        r#"{"gateway": "egress", "sinks": {"envoy_log": true}}"#,
    );
    let vars = Vars::new()
        .set("HTTP_FILTERS", http_filters_yaml(&filters))
        .set("ROUTE_TIMEOUT", "5s")
        .set("UPSTREAM_PORT", upstream.port())
        // No collector: the access log writes to Envoy's log only.
        .set("COLLECTOR_PORT", upstream.port());
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("istio-stats-gateway.yaml"),
        &vars,
    )
    .unwrap();
    Envoy::start(EnvoyOptions::new("istio-stats", bootstrap)).unwrap()
}

fn get(envoy: &Envoy, authority: &str) -> u16 {
    client::send(
        envoy.listener_addr("gateway").unwrap(),
        Protocol::Http1,
        None,
        &HttpRequest::get(authority, "/"),
    )
    .unwrap()
    .status
}

#[test]
fn prometheus_sees_one_metric_per_concept_with_reason_subset_and_gateway_as_labels() {
    let upstream = Upstream::start("app").unwrap();
    let envoy = start(&upstream);
    assert_eq!(get(&envoy, ALLOWED), 200);
    assert_eq!(get(&envoy, "evil.example.com"), 403);
    lds::wait_for_stat(&envoy, "wasmcustom.access_log.records", 2, WAIT).unwrap();

    let scrape = String::from_utf8(envoy.admin_get("/stats/prometheus").unwrap()).unwrap();
    let samples: Vec<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect();
    for expected in [
        r#"host_allowlist_allowed{reason="host_listed"} 1"#,
        r#"host_allowlist_denied{reason="host_not_listed"} 1"#,
        // Every reason is a series from the start, at 0 until it happens.
        r#"host_allowlist_denied{reason="missing_host"} 0"#,
        r#"subset_tagger_tagged{subset="app"} 1"#,
        r#"access_log_records{gateway="egress"} 2"#,
    ] {
        assert!(
            samples.contains(&expected),
            "no sample {expected} in:\n{}",
            samples
                .iter()
                .filter(|line| !line.starts_with("envoy_"))
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        scrape.contains("# TYPE host_allowlist_denied counter"),
        "one metric host_allowlist_denied"
    );
    assert!(
        !scrape.contains("wasmcustom") && !scrape.contains("=.="),
        "a name keeps Envoy's namespace or a tag:\n{scrape}"
    );
}
