//! Hot reload: the allowlist's configuration pushed as a new listener through file-based LDS while
//! clients keep sending requests. A valid configuration takes effect without failing a request; an
//! invalid one is rejected by Envoy and the previous configuration keeps serving and denying.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use e2e::client::{self, HttpRequest, Protocol};
use e2e::envoy::Envoy;
use e2e::lds;
use e2e::modules::Module;
use e2e::upstream::Upstream;
use e2e::wasm_filter::WasmFilter;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Requests the client loop sends before the swap, so the swap happens while it runs.
const REQUESTS_BEFORE_SWAP: usize = 50;
/// Requests the client loop sends at least after the swap, so the swap happened while it ran.
const REQUESTS_AFTER_SWAP: usize = 100;

fn suite(hosts: &str) -> Vec<WasmFilter> {
    vec![
        WasmFilter::http(Module::HostAllowlist, format!(r#"{{"hosts": {hosts}}}"#)),
        WasmFilter::http(
            Module::SubsetTagger,
            r#"{"rules": [{"match": {"hosts": ["app.example.com"]}, "subset": "app"}]}"#,
        ),
        WasmFilter::http(
            Module::AccessLog,
            r#"{"gateway": "egress", "sinks": {"filter_state": true}}"#,
        ),
    ]
}

fn status(envoy: &Envoy, protocol: Protocol, host: &str) -> Result<u16, String> {
    let addr = envoy.listener_addr("gateway")?;
    client::send(addr, protocol, None, &HttpRequest::get(host, "/")).map(|r| r.status)
}

/// Waits (bounded) until `host` gets `expected` over HTTP/1.1.
fn wait_for_status(envoy: &Envoy, host: &str, expected: u16) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if status(envoy, Protocol::Http1, host) == Ok(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host} never got {expected}:\n{}",
            e2e::envoy::tail(&envoy.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients sending, in turn over HTTP/1.1 and HTTP/2, a request the allowlist allows and one it
/// denies under both configurations, recording every answer that is not the expected one.
struct ClientLoop {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<usize>>,
    failures: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl ClientLoop {
    fn start(addr: std::net::SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, sent, failures) =
                (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&failures));
            std::thread::spawn(move || {
                let cases = [("app.example.com", 200), ("evil.example.com", 403)];
                let mut n = 0usize;
                // Bounded: the test stops it long before this many.
                while !stop.load(Ordering::Relaxed) && n < 200_000 {
                    let (host, expected) = cases[n % 2];
                    let protocol = if (n / 2).is_multiple_of(2) {
                        Protocol::Http1
                    } else {
                        Protocol::Http2
                    };
                    match client::send(addr, protocol, None, &HttpRequest::get(host, "/loop")) {
                        Ok(response) if response.status == expected => {}
                        Ok(response) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{protocol:?} {host}: {}", response.status)),
                        Err(error) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{protocol:?} {host}: {error}")),
                    }
                    n += 1;
                    *sent.lock().unwrap() = n;
                }
            })
        };
        Self {
            stop,
            sent,
            failures,
            thread: Some(thread),
        }
    }

    fn sent(&self) -> usize {
        *self.sent.lock().unwrap()
    }

    /// Waits (bounded) until `count` requests have been sent.
    fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.sent() < count {
            assert!(
                Instant::now() < deadline,
                "the client loop sent only {}",
                self.sent()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets at least `more` further requests go, then stops; every failure seen.
    fn finish(mut self, more: usize) -> (usize, Vec<String>) {
        let target = self.sent() + more;
        let deadline = Instant::now() + TIMEOUT;
        while self.sent() < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        (self.sent(), self.failures.lock().unwrap().clone())
    }
}

#[test]
fn a_new_valid_allowlist_takes_effect_without_failing_a_request() {
    let upstream = Upstream::start("app").unwrap();
    let (envoy, mut listeners) = lds::start(
        "reload-valid",
        &suite(r#"["app.example.com", "old.example.com"]"#),
        upstream.port(),
    )
    .unwrap();
    let addr = envoy.listener_addr("gateway").unwrap();
    assert_eq!(status(&envoy, Protocol::Http1, "old.example.com"), Ok(200));
    assert_eq!(status(&envoy, Protocol::Http1, "new.example.com"), Ok(403));
    let updates = envoy
        .stat("listener_manager.lds.update_success")
        .unwrap()
        .unwrap_or(0);

    let clients = ClientLoop::start(addr);
    clients.wait_for(REQUESTS_BEFORE_SWAP);
    let before_swap = clients.sent();
    let swapped = Instant::now();
    listeners
        .write(&suite(r#"["app.example.com", "new.example.com"]"#))
        .unwrap();
    let accepted = lds::wait_for_stat(
        &envoy,
        "listener_manager.lds.update_success",
        updates + 1,
        TIMEOUT,
    )
    .unwrap();
    wait_for_status(&envoy, "new.example.com", 200);
    let effective = swapped.elapsed();
    wait_for_status(&envoy, "old.example.com", 403);
    let (sent, failures) = clients.finish(REQUESTS_AFTER_SWAP);

    println!(
        "valid swap: accepted by Envoy {accepted:?} after the rename, in effect after {effective:?}; \
         {} requests after the rename ({sent} in all), {} failed",
        sent - before_swap,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "requests failed during the swap: {failures:#?}"
    );
    assert!(
        sent >= before_swap + REQUESTS_AFTER_SWAP,
        "the client loop stalled: {sent}"
    );
    // Same socket: the listener was updated in place, not re-bound elsewhere.
    assert_eq!(envoy.listener_addr("gateway").unwrap(), addr);
    assert_eq!(
        envoy
            .stat("listener_manager.lds.update_rejected")
            .unwrap()
            .unwrap_or(0),
        0
    );
    // Nothing but the allowed hosts reached the upstream.
    for request in upstream.requests() {
        let host = request.authority().unwrap_or_default().to_string();
        assert!(
            ["app.example.com", "old.example.com", "new.example.com"].contains(&host.as_str()),
            "{host} reached the upstream"
        );
    }
}

#[test]
fn an_invalid_allowlist_is_rejected_and_the_previous_one_keeps_serving_and_denying() {
    let upstream = Upstream::start("app").unwrap();
    let (envoy, mut listeners) = lds::start(
        "reload-invalid",
        &suite(r#"["app.example.com"]"#),
        upstream.port(),
    )
    .unwrap();
    let addr = envoy.listener_addr("gateway").unwrap();
    let rejected_before = envoy
        .stat("listener_manager.lds.update_rejected")
        .unwrap()
        .unwrap_or(0);

    let clients = ClientLoop::start(addr);
    clients.wait_for(REQUESTS_BEFORE_SWAP);
    // Valid entries next to an invalid one: applying half of it would let leak.example.com out.
    listeners
        .write(&suite(
            r#"["app.example.com", "leak.example.com", "*foo.example.com"]"#,
        ))
        .unwrap();
    let rejected = lds::wait_for_stat(
        &envoy,
        "listener_manager.lds.update_rejected",
        rejected_before + 1,
        TIMEOUT,
    )
    .unwrap();
    let (sent, failures) = clients.finish(REQUESTS_AFTER_SWAP);
    println!(
        "invalid swap: rejected by Envoy {rejected:?} after the rename; {sent} requests, {} failed",
        failures.len()
    );

    let log = envoy.log();
    let reason = r#"host-allowlist: invalid configuration: hosts[2]: "*foo.example.com": a wildcard must be a whole leading "*." label"#;
    assert!(
        log.contains(reason),
        "{reason:?} not in Envoy's log:\n{}",
        e2e::envoy::tail(&log, 30)
    );
    assert!(
        failures.is_empty(),
        "requests failed around the rejected update: {failures:#?}"
    );
    for protocol in [Protocol::Http1, Protocol::Http2] {
        assert_eq!(status(&envoy, protocol, "app.example.com"), Ok(200));
        assert_eq!(
            status(&envoy, protocol, "leak.example.com"),
            Ok(403),
            "half-applied configuration"
        );
        assert_eq!(status(&envoy, protocol, "evil.example.com"), Ok(403));
    }
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.authority() == Some("app.example.com")));
    assert_eq!(envoy.listener_addr("gateway").unwrap(), addr);
}
