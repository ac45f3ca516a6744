//! The combined `gateway` module end to end: allowlist, subset tagging and the JSON record from
//! one filter in a real Envoy 1.40, against real upstreams; configuration errors refuse the plugin
//! with the section and field named.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::client::{self, HttpRequest, HttpResponse, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::Module;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::WasmFilter;
use serde_json::Value;

const CONFIG: &str = r#"{
    "allowlist": {"hosts": ["shop.example.com", "*.api.example.com"]},
    "subset": {"rules": [{"match": {"hosts": ["shop.example.com"], "path_prefix": "/beta/"}, "subset": "canary"}],
               "default_subset": "stable"},
    "access_log": {"gateway": "egress", "sinks": {"filter_state": true}}
}"#;

struct Gateway {
    envoy: Envoy,
    access_log: PathBuf,
    stable: Upstream,
    canary: Upstream,
}

fn start(name: &str, configuration: &str) -> Gateway {
    let stable = Upstream::start("stable").unwrap();
    let canary = Upstream::start("canary").unwrap();
    let work_dir = Envoy::work_dir(name).unwrap();
    let access_log = work_dir.path().join("access.log");
    let filter = WasmFilter::http(Module::Gateway, configuration);
    let vars = Vars::new()
        .set("HTTP_FILTERS", filter.http_yaml())
        .set(
            "ACCESS_LOG_PATH",
            Value::String(access_log.display().to_string()),
        )
        .set("STABLE_PORT", stable.port())
        .set("CANARY_PORT", canary.port());
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("tagged-routes-gateway.yaml"),
        &vars,
    )
    .unwrap();
    let envoy = Envoy::start_in(EnvoyOptions::new(name, bootstrap), work_dir).unwrap();
    Gateway {
        envoy,
        access_log,
        stable,
        canary,
    }
}

impl Gateway {
    fn get(&self, protocol: Protocol, host: &str, path: &str) -> HttpResponse {
        let addr = self.envoy.listener_addr("gateway").unwrap();
        client::send(
            addr,
            protocol,
            None,
            &HttpRequest::get(host, path).header("x-request-id", path),
        )
        .unwrap()
    }

    /// Waits (bounded) for `count` records; every line must be one JSON object.
    fn records(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let records = read_records(&self.access_log);
            if records.len() >= count || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn read_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[test]
fn allows_listed_hosts_and_denies_the_rest() {
    let gateway = start("gateway-allow-deny", CONFIG);
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let allowed = gateway.get(protocol, "Shop.Example.COM.", "/a");
        assert_eq!(allowed.status, 200, "{protocol:?}: {}", allowed.body_text());
        let wildcard = gateway.get(protocol, "v1.api.example.com:443", "/b");
        assert_eq!(wildcard.status, 200, "{protocol:?}");
        // An entry without a port covers 80 and 443 only.
        let other_port = gateway.get(protocol, "v1.api.example.com:8443", "/c");
        assert_eq!(other_port.status, 403, "{protocol:?}");
        let denied = gateway.get(protocol, "evil.example.com", "/c");
        assert_eq!(denied.status, 403, "{protocol:?}");
        assert_eq!(
            denied.header("x-gateway-wasm-denied-reason"),
            Some("host_not_listed")
        );
        assert_eq!(denied.body_text(), "host not allowed");
    }
    let reached: Vec<String> = gateway
        .stable
        .requests()
        .iter()
        .chain(gateway.canary.requests().iter())
        .map(|request| request.path.clone())
        .collect();
    assert!(
        !reached.iter().any(|path| path == "/c"),
        "a denied request reached an upstream: {reached:?}"
    );
    assert_eq!(
        gateway
            .envoy
            .stat("wasmcustom.host_allowlist.allowed")
            .unwrap(),
        Some(4)
    );
    assert_eq!(
        gateway
            .envoy
            .stat("wasmcustom.host_allowlist.denied")
            .unwrap(),
        Some(4)
    );
}

#[test]
fn the_tag_routes_and_replaces_a_client_sent_one() {
    let gateway = start("gateway-tag", CONFIG);
    let beta = gateway.get(Protocol::Http1, "shop.example.com", "/beta/x");
    assert_eq!(beta.status, 200);
    assert_eq!(beta.body_text(), "upstream canary\n");
    let other = gateway.get(Protocol::Http2, "shop.example.com", "/other");
    assert_eq!(other.body_text(), "upstream stable\n");
    // A client cannot pick the canary by sending the tag itself.
    let addr = gateway.envoy.listener_addr("gateway").unwrap();
    let spoofed = client::send(
        addr,
        Protocol::Http1,
        None,
        &HttpRequest::get("shop.example.com", "/spoof").header("x-route-subset", "canary"),
    )
    .unwrap();
    assert_eq!(spoofed.body_text(), "upstream stable\n");
    let canary = gateway.canary.requests();
    assert_eq!(canary.len(), 1, "{canary:#?}");
    assert_eq!(canary[0].header("x-route-subset"), Some("canary"));
    assert!(gateway
        .stable
        .requests()
        .iter()
        .all(|r| r.header("x-route-subset") == Some("stable")));
    assert_eq!(
        gateway
            .envoy
            .stat("wasmcustom.subset=.=canary;.;subset_tagger.tagged")
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        gateway
            .envoy
            .stat("wasmcustom.subset_tagger.client_header_replaced")
            .unwrap(),
        Some(1)
    );
}

#[test]
fn one_json_record_per_request_with_decision_and_subset() {
    let gateway = start("gateway-record", CONFIG);
    assert_eq!(
        gateway
            .get(Protocol::Http1, "shop.example.com", "/beta/r?q=1")
            .status,
        200
    );
    assert_eq!(
        gateway
            .get(Protocol::Http1, "evil.example.com", "/denied")
            .status,
        403
    );
    let records = gateway.records(2);
    assert_eq!(records.len(), 2, "{records:#?}");
    let allowed = records
        .iter()
        .find(|r| r["path"] == "/beta/r?q=1")
        .expect("the allowed request's record");
    assert_eq!(allowed["gateway"], "egress");
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["authority"], "shop.example.com");
    assert_eq!(allowed["request_id"], "/beta/r?q=1");
    assert_eq!(allowed["response_code"], 200);
    assert_eq!(allowed["upstream_cluster"], "canary");
    assert_eq!(allowed["subset"], "canary");
    assert_eq!(
        allowed["allowlist"],
        serde_json::json!({"decision": "allowed", "reason": "host_listed", "rule": "shop.example.com"})
    );
    let denied = records
        .iter()
        .find(|r| r["path"] == "/denied")
        .expect("the denied request's record");
    assert_eq!(denied["response_code"], 403);
    assert_eq!(denied["allowlist"]["decision"], "denied");
    assert_eq!(denied["allowlist"]["reason"], "host_not_listed");
    assert!(
        denied.get("subset").is_none(),
        "a denied request is not tagged: {denied}"
    );
    assert_eq!(
        gateway.envoy.stat("wasmcustom.access_log.records").unwrap(),
        Some(2)
    );
    // Both records' attributes came from one evaluation, the denial's (no upstream) too.
    let one_by_one = gateway
        .envoy
        .stat("wasmcustom.access_log.attributes_read_one_by_one");
    assert_eq!(one_by_one.unwrap(), Some(0));
}

#[test]
fn configuration_errors_refuse_the_plugin_naming_section_and_field() {
    let upstream = Upstream::start("unused").unwrap();
    let cases = [
        (
            r#"{"allowlist": {"hosts": ["*foo.com"]}}"#,
            r#"gateway: invalid configuration: allowlist.hosts[0]: "*foo.com": a wildcard must be a whole leading "*." label"#,
        ),
        (
            r#"{"subset": {"header": "X Bad"}}"#,
            r#"gateway: invalid configuration: subset.header: "X Bad" is not a lowercase HTTP header name"#,
        ),
        (
            r#"{"access_log": {"sample_rate": 2}}"#,
            "gateway: invalid configuration: access_log.sample_rate: 2 is not between 0 and 1",
        ),
        (
            r#"{"allowlists": {}}"#,
            "gateway: invalid configuration: allowlists: unknown field `allowlists`, expected one of `allowlist`, `subset`, `access_log`",
        ),
        ("{}", "gateway: invalid configuration: at least one of the sections allowlist, subset, access_log is required"),
    ];
    for (configuration, expected) in cases {
        let vars = Vars::new()
            .set(
                "HTTP_FILTERS",
                WasmFilter::http(Module::Gateway, configuration).http_yaml(),
            )
            .set("UPSTREAM_PORT", upstream.port());
        let bootstrap =
            template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars)
                .unwrap();
        let failure =
            Envoy::start_expecting_failure(EnvoyOptions::new("gateway-bad-config", bootstrap))
                .unwrap();
        assert!(!failure.status.success());
        assert!(
            failure.log.contains(expected),
            "{expected:?} not in:\n{}",
            failure.log
        );
    }
}

#[test]
fn a_probable_mistake_loads_with_a_warning_naming_section_and_field() {
    let upstream = Upstream::start("unused").unwrap();
    let vars = Vars::new()
        .set(
            "HTTP_FILTERS",
            WasmFilter::http(
                Module::Gateway,
                r#"{"allowlist": {"host_regex": ["^api.example.com$"]}}"#,
            )
            .http_yaml(),
        )
        .set("UPSTREAM_PORT", upstream.port());
    let bootstrap =
        template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars).unwrap();
    let envoy = Envoy::start(EnvoyOptions::new("gateway-config-warning", bootstrap)).unwrap();
    let expected = r#"gateway: configuration warning: allowlist.host_regex[0]: "^api.example.com$": the unescaped "." in "api.example" matches any character"#;
    assert!(
        envoy.log().contains(expected),
        "{expected:?} not in:\n{}",
        envoy.log_tail()
    );
}

/// Audit mode in the combined module observes only, as in host-allowlist: an allowed authority
/// written otherwise than its canonical form reaches the upstream as sent.
#[test]
fn audit_mode_leaves_the_authority_as_sent() {
    let gateway = start(
        "gateway-audit",
        r#"{"allowlist": {"mode": "audit", "hosts": ["shop.example.com"]}}"#,
    );
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let response = gateway.get(protocol, "Shop.Example.COM:80", "/a");
        assert_eq!(
            response.status,
            200,
            "{protocol:?}: {}",
            response.body_text()
        );
        let reached = gateway
            .stable
            .requests()
            .pop()
            .unwrap_or_else(|| panic!("{protocol:?}: nothing reached the upstream"));
        assert_eq!(
            reached.authority(),
            Some("Shop.Example.COM:80"),
            "{protocol:?}"
        );
    }
}
