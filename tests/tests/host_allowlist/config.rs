//! A bad configuration is refused: Envoy exits at start-up, logging one line per problem that
//! names the entry and the reason, as an HTTP filter and as a network filter.

use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::Module;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{http_filters_yaml, network_filters_yaml, WasmFilter};
use serde_json::json;

use crate::support::{Expect, HttpGateway};

const PREFIX: &str = "host-allowlist: invalid configuration: ";

fn bad_configuration() -> String {
    json!({
        "hosts": ["*foo.com", "ok.example.com", "a:0", "*.10.0.0.7", "bücher.de", "2001:db8::7"],
        "host_regex": ["^fine\\.example\\.com$", "(x"],
        "deny": {"status": 200}
    })
    .to_string()
}

/// Every problem of [`bad_configuration`], as the filter reports it.
const PROBLEMS: [&str; 7] = [
    r#"deny.status: 200 is not an HTTP error status from 400 to 599"#,
    r#"hosts[0]: "*foo.com": a wildcard must be a whole leading "*." label"#,
    r#"hosts[2]: "a:0": the port must be a number from 1 to 65535"#,
    r#"hosts[3]: "*.10.0.0.7": a wildcard covers names under a domain, not an IP address"#,
    r#"hosts[4]: "bücher.de": internationalised names must be written as punycode A-labels: use "xn--bcher-kva.de""#,
    r#"hosts[5]: "2001:db8::7": an IPv6 address must be written in brackets"#,
    r#"host_regex[1]: "(x": unclosed group"#,
];

fn assert_refused(name: &str, bootstrap: String, problems: &[&str]) {
    let failure = Envoy::start_expecting_failure(EnvoyOptions::new(name, bootstrap)).unwrap();
    assert!(!failure.status.success());
    let reported: Vec<&str> = failure
        .log
        .lines()
        .filter_map(|line| line.split_once(PREFIX).map(|(_, problem)| problem))
        .collect();
    for problem in problems {
        assert!(
            reported.contains(problem),
            "{problem:?} not reported; reported: {reported:#?}\n{}",
            failure.log
        );
    }
    // Nothing else is reported: the valid entries are not blamed.
    for line in &reported {
        assert!(problems.contains(line), "unexpected problem {line:?}");
    }
    assert!(
        !failure.log.contains("configuration accepted"),
        "{}",
        failure.log
    );
}

#[test]
fn a_bad_configuration_makes_envoy_refuse_the_http_filter_naming_each_problem() {
    let upstream = Upstream::start("unused").unwrap();
    let vars = Vars::new()
        .set(
            "HTTP_FILTERS",
            http_filters_yaml(&[WasmFilter::http(Module::HostAllowlist, bad_configuration())]),
        )
        .set("UPSTREAM_PORT", upstream.port());
    let bootstrap =
        template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars).unwrap();
    assert_refused("allowlist-bad-http", bootstrap, &PROBLEMS);

    // A field that does not exist is refused too, not ignored (a typo must not allow everything).
    let vars = Vars::new()
        .set(
            "HTTP_FILTERS",
            http_filters_yaml(&[WasmFilter::http(
                Module::HostAllowlist,
                r#"{"host": ["www.google.com"]}"#,
            )]),
        )
        .set("UPSTREAM_PORT", upstream.port());
    let bootstrap =
        template::render_file(&paths::test_configs_dir().join("http-gateway.yaml"), &vars).unwrap();
    let failure =
        Envoy::start_expecting_failure(EnvoyOptions::new("allowlist-typo", bootstrap)).unwrap();
    assert!(
        failure
            .log
            .lines()
            .any(|line| line.contains(PREFIX) && line.contains("unknown field `host`")),
        "{}",
        failure.log
    );
    assert!(upstream.requests().is_empty());
}

#[test]
fn a_bad_configuration_makes_envoy_refuse_the_network_filter_naming_each_problem() {
    let upstream = Upstream::start("unused").unwrap();
    let vars = Vars::new()
        .set(
            "NETWORK_FILTERS",
            network_filters_yaml(&[WasmFilter::network(
                Module::HostAllowlist,
                bad_configuration(),
            )]),
        )
        .set("UPSTREAM_PORT", upstream.port());
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("tls-passthrough.yaml"),
        &vars,
    )
    .unwrap();
    assert_refused("allowlist-bad-network", bootstrap, &PROBLEMS);
    assert_eq!(upstream.connections(), 0);
}

#[test]
fn a_regex_with_an_unescaped_dot_loads_with_a_warning_in_envoys_log() {
    let gateway = HttpGateway::plain(
        "allowlist-regex-warning",
        &json!({"host_regex": ["^api.example.com$", "^ok\\.example\\.com$"]}).to_string(),
    );
    let warning = r#"host-allowlist: configuration warning: host_regex[0]: "^api.example.com$": the unescaped "." in "api.example" matches any character, so "apixexample" is allowed too; write "\." for a literal dot"#;
    let log = gateway.envoy.log();
    assert!(log.contains(warning), "{}", gateway.log_tail());
    assert_eq!(
        log.matches("configuration warning").count(),
        log.matches("host-allowlist: configuration accepted")
            .count(),
        "one warning per loaded configuration, none for the escaped pattern\n{log}"
    );
    // It is a warning, not an error: the configuration is in force, slip included.
    gateway.check_authorities(&[
        ("api.example.com", Expect::Passes),
        ("apixexample.com", Expect::Passes),
        ("ok.example.com", Expect::Passes),
        ("okxexample.com", Expect::Denied("host_not_listed")),
    ]);
}
