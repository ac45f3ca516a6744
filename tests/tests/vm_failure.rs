//! A filter whose Wasm VM traps (panics), with each of Envoy's failure policies. The trap comes from
//! the modules' `test-trap` build (a request carrying `x-gateway-wasm-test-trap: <filter>`), which
//! the shipped modules do not contain.
//!
//! What Envoy 1.40 does, as these tests show: the trapping request is answered 503 by Envoy; with
//! fail-closed (the default, Istio's `FAIL_CLOSE`) every later request on that worker gets 503 and
//! none reaches the upstream; with `FAIL_RELOAD` Envoy creates a fresh VM for the next request, which
//! runs with the same configuration (so the allowlist still denies); with `FAIL_OPEN` the broken
//! filter is skipped, so a trapped allowlist lets everything through.

use std::time::{Duration, Instant};

use e2e::client::{self, HttpRequest, HttpResponse, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::modules::{Module, TEST_TRAP_HEADER};
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::Upstream;
use e2e::wasm_filter::{http_filters_yaml, WasmFilter};

const ALLOWED: &str = "app.example.com";
const DENIED: &str = "evil.example.com";
/// Requests sent after a trap to see how the gateway behaves while the filter is broken.
const REQUESTS_AFTER_TRAP: usize = 40;
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20);

fn allowlist() -> WasmFilter {
    WasmFilter::http(
        Module::HostAllowlist,
        format!(r#"{{"hosts": ["{ALLOWED}"]}}"#),
    )
}

fn tagger() -> WasmFilter {
    WasmFilter::http(
        Module::SubsetTagger,
        format!(r#"{{"rules": [{{"match": {{"hosts": ["{ALLOWED}"]}}, "subset": "app"}}]}}"#),
    )
}

fn access_log() -> WasmFilter {
    WasmFilter::http(
        Module::AccessLog,
        r#"{"gateway": "egress", "sinks": {"envoy_log": true}}"#,
    )
}

fn start(name: &str, filters: &[WasmFilter], upstream: &Upstream) -> Envoy {
    let vars = Vars::new()
        .set("HTTP_FILTERS", http_filters_yaml(filters))
        .set("ROUTE_TIMEOUT", "5s")
        .set("UPSTREAM_PORT", upstream.port())
        .set("COLLECTOR_PORT", upstream.port());
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("reliability-gateway.yaml"),
        &vars,
    )
    .unwrap();
    Envoy::start(EnvoyOptions::new(name, bootstrap)).unwrap()
}

fn send(envoy: &Envoy, protocol: Protocol, request: &HttpRequest) -> Result<HttpResponse, String> {
    client::send(envoy.listener_addr("gateway")?, protocol, None, request)
}

fn protocol(n: usize) -> Protocol {
    if n.is_multiple_of(2) {
        Protocol::Http1
    } else {
        Protocol::Http2
    }
}

/// Sends the trap to `filter`; the answer (Envoy answers the trapping request itself).
fn trap(envoy: &Envoy, filter: &str, path: &str) -> Result<HttpResponse, String> {
    send(
        envoy,
        Protocol::Http1,
        &HttpRequest::get(ALLOWED, path).header(TEST_TRAP_HEADER, filter),
    )
}

fn wasm_stats(envoy: &Envoy) -> String {
    String::from_utf8_lossy(&envoy.admin_get("/stats?filter=wasm").unwrap_or_default()).into_owned()
}

#[test]
fn a_trapped_allowlist_fails_closed_and_lets_nothing_through() {
    for policy in [None, Some("FAIL_CLOSED")] {
        let upstream = Upstream::start("app").unwrap();
        let mut filter = allowlist().with_test_trap();
        if let Some(policy) = policy {
            filter = filter.with_failure_policy(policy);
        }
        let envoy = start("trap-closed", &[filter, tagger(), access_log()], &upstream);
        assert_eq!(
            send(
                &envoy,
                Protocol::Http1,
                &HttpRequest::get(ALLOWED, "/before")
            )
            .unwrap()
            .status,
            200
        );
        assert_eq!(
            send(
                &envoy,
                Protocol::Http1,
                &HttpRequest::get(DENIED, "/before")
            )
            .unwrap()
            .status,
            403
        );
        let reached_before = upstream.requests().len();

        let trapped = trap(&envoy, "host-allowlist", "/trap").unwrap();
        assert_eq!(
            trapped.status,
            503,
            "{policy:?}: the trapping request: {}",
            trapped.body_text()
        );
        envoy
            .wait_for_log(
                "trap requested by x-gateway-wasm-test-trap",
                Duration::from_secs(10),
            )
            .unwrap();

        let mut statuses = Vec::new();
        for n in 0..REQUESTS_AFTER_TRAP {
            let host = if n % 4 < 2 { ALLOWED } else { DENIED };
            let response = send(
                &envoy,
                protocol(n),
                &HttpRequest::get(host, &format!("/after/{n}")),
            )
            .unwrap();
            assert_eq!(
                response.status,
                503,
                "{policy:?}: request {n} to {host} while the allowlist is broken: {}",
                response.body_text()
            );
            statuses.push(response.status);
        }
        assert_eq!(
            upstream.requests().len(),
            reached_before,
            "{policy:?}: a request reached the upstream past a broken allowlist: {:#?}",
            &upstream.requests()[reached_before..]
        );
        println!(
            "failure_policy {}: trapping request {}, then {} requests all {:?}; nothing reached the upstream\n{}",
            policy.unwrap_or("(default)"),
            trapped.status,
            statuses.len(),
            statuses.first(),
            wasm_stats(&envoy)
        );
    }
}

#[test]
fn a_trapped_allowlist_with_fail_reload_comes_back_and_still_denies() {
    let upstream = Upstream::start("app").unwrap();
    let filter = allowlist()
        .with_test_trap()
        .with_failure_policy("FAIL_RELOAD");
    let envoy = start(
        "trap-reload-allowlist",
        &[filter, tagger(), access_log()],
        &upstream,
    );
    let trapped = trap(&envoy, "host-allowlist", "/trap").unwrap();
    assert_eq!(trapped.status, 503, "{}", trapped.body_text());

    // Denied hosts stay denied through the reload; allowed ones come back.
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut failed_before_recovery = 0;
    let mut n = 0;
    loop {
        let denied = send(
            &envoy,
            protocol(n),
            &HttpRequest::get(DENIED, &format!("/denied/{n}")),
        )
        .unwrap();
        assert_ne!(denied.status, 200, "a denied host passed during the reload");
        let allowed = send(
            &envoy,
            protocol(n),
            &HttpRequest::get(ALLOWED, &format!("/allowed/{n}")),
        )
        .unwrap();
        if allowed.status == 200 && denied.status == 403 {
            break;
        }
        failed_before_recovery += 1;
        assert!(
            Instant::now() < deadline,
            "no recovery after {n} rounds: {} / {}",
            allowed.status,
            denied.status
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in 0..10 {
        assert_eq!(
            send(&envoy, protocol(n), &HttpRequest::get(DENIED, "/again"))
                .unwrap()
                .status,
            403
        );
        assert_eq!(
            send(&envoy, protocol(n), &HttpRequest::get(ALLOWED, "/again"))
                .unwrap()
                .status,
            200
        );
    }
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.authority() == Some(ALLOWED)));
    println!(
        "allowlist FAIL_RELOAD: recovered after {failed_before_recovery} failed rounds\n{}",
        wasm_stats(&envoy)
    );
}

#[test]
fn with_fail_reload_the_tagger_and_the_access_log_recover() {
    let upstream = Upstream::start("app").unwrap();
    let filters = [
        allowlist(),
        tagger().with_test_trap().with_failure_policy("FAIL_RELOAD"),
        access_log()
            .with_test_trap()
            .with_failure_policy("FAIL_RELOAD"),
    ];
    let envoy = start("trap-reload", &filters, &upstream);

    // The tagger traps in on_http_request_headers: Envoy answers that request 503.
    let trapped = trap(&envoy, "subset-tagger", "/trap-tagger").unwrap();
    assert_eq!(trapped.status, 503, "{}", trapped.body_text());
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut failed = 0;
    for n in 0.. {
        let path = format!("/after-tagger-trap/{n}");
        let response = send(&envoy, protocol(n), &HttpRequest::get(ALLOWED, &path)).unwrap();
        if response.status == 200 {
            let seen = upstream
                .requests()
                .into_iter()
                .find(|r| r.path == path)
                .unwrap();
            assert_eq!(
                seen.header("x-route-subset"),
                Some("app"),
                "the reloaded tagger does not tag"
            );
            break;
        }
        failed += 1;
        assert!(
            Instant::now() < deadline,
            "the tagger did not recover: {}",
            response.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("subset-tagger FAIL_RELOAD: recovered after {failed} failed requests");

    // The access log traps in on_log, after the response went out: the client sees its 200, the
    // record of that request is lost, later requests are logged again.
    let trapped = trap(&envoy, "access-log", "/trap-log").unwrap();
    println!(
        "access-log trap in on_log: the trapping request got {}",
        trapped.status
    );
    envoy
        .wait_for_log("access-log: trap requested", Duration::from_secs(10))
        .unwrap();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut unlogged = 0;
    for n in 0.. {
        let path = format!("/after-log-trap/{n}");
        let response = send(&envoy, protocol(n), &HttpRequest::get(ALLOWED, &path)).unwrap();
        assert_eq!(
            response.status, 200,
            "a request failed after the access log trapped"
        );
        let logged = format!("\"path\":\"{path}\"");
        if envoy.wait_for_log(&logged, Duration::from_secs(2)).is_ok() {
            break;
        }
        unlogged += 1;
        assert!(Instant::now() < deadline, "the access log did not recover");
    }
    assert!(
        !envoy.log().contains("\"path\":\"/trap-log\""),
        "the trapping request was logged after all"
    );
    println!(
        "access-log FAIL_RELOAD: logging again after {unlogged} unlogged requests\n{}",
        wasm_stats(&envoy)
    );
}

#[test]
fn with_fail_open_a_trapped_allowlist_is_skipped_so_never_use_it_for_the_allowlist() {
    let upstream = Upstream::start("app").unwrap();
    let filter = allowlist()
        .with_test_trap()
        .with_failure_policy("FAIL_OPEN");
    let envoy = start("trap-open", &[filter], &upstream);
    let trapped = trap(&envoy, "host-allowlist", "/trap").unwrap();
    let denied = send(&envoy, Protocol::Http1, &HttpRequest::get(DENIED, "/after")).unwrap();
    println!(
        "allowlist FAIL_OPEN: trapping request {}, then a denied host got {}",
        trapped.status, denied.status
    );
    assert_eq!(
        denied.status, 200,
        "Envoy's FAIL_OPEN no longer skips a broken filter: update the README"
    );
    assert!(upstream
        .requests()
        .iter()
        .any(|r| r.authority() == Some(DENIED)));
}
