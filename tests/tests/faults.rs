//! Faults around the gateway: the upstream down, resetting mid-response or slow; the log collector
//! down, slow or failing; allowlists of 10k and 100k entries at start-up and on reload. In every case
//! requests get what the configuration says, no denied request reaches the upstream, and every
//! access-log record is delivered or counted as dropped or failed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::client::{self, HttpRequest, HttpResponse, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::lds;
use e2e::modules::Module;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::upstream::{fixed_status, Reply, Responder, Upstream};
use e2e::wasm_filter::{egress_suite, http_filters_yaml, WasmFilter};

const ALLOWED: &str = "app.example.com";
const DENIED: &str = "evil.example.com";
const WAIT: Duration = Duration::from_secs(30);

const LOG_TO_ENVOY: &str = r#"{"gateway": "egress", "sinks": {"envoy_log": true}}"#;

fn start(
    name: &str,
    filters: &[WasmFilter],
    upstream_port: u16,
    collector_port: u16,
    route_timeout: &str,
) -> Envoy {
    let vars = Vars::new()
        .set("HTTP_FILTERS", http_filters_yaml(filters))
        .set("ROUTE_TIMEOUT", route_timeout)
        .set("UPSTREAM_PORT", upstream_port)
        .set("COLLECTOR_PORT", collector_port);
    let bootstrap = template::render_file(
        &paths::test_configs_dir().join("reliability-gateway.yaml"),
        &vars,
    )
    .unwrap();
    Envoy::start(EnvoyOptions::new(name, bootstrap)).unwrap()
}

/// A port on 127.0.0.1 that nothing listens on (bound by the kernel, then closed).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn send(envoy: &Envoy, n: usize, host: &str, path: &str) -> Result<HttpResponse, String> {
    let protocol = if n.is_multiple_of(2) {
        Protocol::Http1
    } else {
        Protocol::Http2
    };
    client::send(
        envoy.listener_addr("gateway")?,
        protocol,
        None,
        &HttpRequest::get(host, path),
    )
}

/// A denied request's answer: the configured denial, from the allowlist.
fn assert_denied(response: &HttpResponse) {
    assert_eq!(response.status, 403, "{}", response.body_text());
    assert_eq!(
        response.header("x-gateway-wasm-denied-reason"),
        Some("host_not_listed")
    );
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap().unwrap_or(0)
}

/// Waits (bounded) until the access log has counted `records` records.
fn wait_for_records(envoy: &Envoy, records: u64) {
    lds::wait_for_stat(envoy, "wasmcustom.access_log.records", records, WAIT).unwrap();
}

#[test]
fn the_allowlist_holds_when_the_upstream_is_down() {
    let envoy = start(
        "upstream-down",
        &egress_suite(ALLOWED, LOG_TO_ENVOY),
        closed_port(),
        closed_port(),
        "5s",
    );
    for n in 0..10 {
        let allowed = send(&envoy, n, ALLOWED, "/down").unwrap();
        assert_eq!(
            allowed.status,
            503,
            "allowed, upstream down: {}",
            allowed.body_text()
        );
        assert_eq!(allowed.header("x-gateway-wasm-denied-reason"), None);
        assert_denied(&send(&envoy, n, DENIED, "/down").unwrap());
    }
    wait_for_records(&envoy, 20);
    assert_eq!(counter(&envoy, "wasmcustom.host_allowlist.allowed"), 10);
    assert_eq!(counter(&envoy, "wasmcustom.host_allowlist.denied"), 10);
    assert_eq!(
        counter(&envoy, "cluster.upstream.upstream_cx_connect_fail"),
        10,
        "only allowed requests try the upstream"
    );
}

/// An upstream that answers headers and half the promised body, then resets the connection (RST).
struct ResettingUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ResettingUpstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        std::thread::spawn(move || reset_mid_response(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            accepted,
            stop,
        }
    }
}

impl Drop for ResettingUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn reset_mid_response(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\nonly part of the body");
    let _ = stream.flush();
    std::thread::sleep(Duration::from_millis(50));
    // SO_LINGER 0: close() sends a RST instead of a FIN.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[test]
fn the_allowlist_holds_when_the_upstream_resets_mid_response() {
    let upstream = ResettingUpstream::start();
    let envoy = start(
        "upstream-reset",
        &egress_suite(ALLOWED, LOG_TO_ENVOY),
        upstream.addr.port(),
        closed_port(),
        "5s",
    );
    for n in 0..10 {
        // The client gets the headers and part of the body, then the connection or stream ends:
        // never the whole 1000 bytes.
        match send(&envoy, n, ALLOWED, "/reset") {
            Ok(response) => assert!(response.body.len() < 1000, "a reset response arrived whole"),
            Err(error) => assert!(!error.is_empty()),
        }
        assert_denied(&send(&envoy, n, DENIED, "/reset").unwrap());
    }
    wait_for_records(&envoy, 20);
    assert_eq!(
        upstream.accepted.load(Ordering::SeqCst),
        10,
        "denied requests must never reach the upstream"
    );
    assert_eq!(counter(&envoy, "wasmcustom.host_allowlist.denied"), 10);
    // Envoy answered denials itself and logged every request, the reset ones included.
    let log = envoy.log();
    let records = log
        .lines()
        .filter(|line| line.contains("gateway-wasm access-log: "))
        .count();
    assert_eq!(records, 20, "one record per request");
}

#[test]
fn the_allowlist_holds_with_a_slow_upstream() {
    // Slower than the route timeout.
    let slow: Responder = Arc::new(|_| {
        std::thread::sleep(Duration::from_secs(2));
        Reply::new(200, "late\n")
    });
    let upstream = Upstream::start_with("slow", slow, None).unwrap();
    let envoy = Arc::new(start(
        "upstream-slow",
        &egress_suite(ALLOWED, LOG_TO_ENVOY),
        upstream.port(),
        closed_port(),
        "0.5s",
    ));
    // Allowed requests wait on the slow upstream while denied ones are answered.
    let waiting: Vec<_> = (0..4)
        .map(|n| {
            let envoy = Arc::clone(&envoy);
            std::thread::spawn(move || send(&envoy, n, ALLOWED, &format!("/slow/{n}")))
        })
        .collect();
    for n in 0..10 {
        assert_denied(&send(&envoy, n, DENIED, "/slow").unwrap());
    }
    for thread in waiting {
        let response = thread.join().unwrap().unwrap();
        assert_eq!(
            response.status,
            504,
            "allowed, upstream slower than the route timeout: {}",
            response.body_text()
        );
    }
    wait_for_records(&envoy, 14);
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.authority() == Some(ALLOWED)));
    assert_eq!(upstream.requests().len(), 4);
}

#[test]
fn collector_faults_leave_requests_alone_and_every_record_is_sent_dropped_or_failed() {
    let slow: Responder = Arc::new(|_| {
        std::thread::sleep(Duration::from_secs(1));
        Reply::new(200, "")
    });
    // (case, collector responder or none for a collector that is down, healthy)
    let cases: [(&str, Option<Responder>, bool); 4] = [
        ("healthy", Some(fixed_status("collector", 200)), true),
        ("down", None, false),
        ("slow", Some(slow), false),
        ("5xx", Some(fixed_status("collector", 503)), false),
    ];
    // One record per batch, so failed batches count records; a small buffer, so records also drop.
    let access_log = r#"{"gateway": "egress", "sinks": {"http": {"cluster": "log_collector", "path": "/logs",
        "flush_interval_ms": 100, "batch_size": 1, "max_buffered_records": 5, "timeout_ms": 300, "max_in_flight": 1}}}"#;
    const REQUESTS: usize = 30;
    for (case, responder, healthy) in cases {
        let app = Upstream::start("app").unwrap();
        let collector =
            responder.map(|responder| Upstream::start_with("collector", responder, None).unwrap());
        let collector_port = collector.as_ref().map_or_else(closed_port, Upstream::port);
        let envoy = start(
            &format!("collector-{case}"),
            &egress_suite(ALLOWED, access_log),
            app.port(),
            collector_port,
            "5s",
        );
        for n in 0..REQUESTS {
            if n % 3 == 0 {
                assert_denied(&send(&envoy, n, DENIED, "/c").unwrap());
            } else {
                assert_eq!(
                    send(&envoy, n, ALLOWED, "/c").unwrap().status,
                    200,
                    "{case}"
                );
            }
        }
        wait_for_records(&envoy, REQUESTS as u64);
        // Every record ends up sent, dropped (buffer full) or in a failed batch of one.
        let deadline = Instant::now() + WAIT;
        let (sent, dropped, failed) = loop {
            let counts = (
                counter(&envoy, "wasmcustom.access_log.sent"),
                counter(&envoy, "wasmcustom.access_log.dropped"),
                counter(&envoy, "wasmcustom.access_log.failed_batches"),
            );
            if counts.0 + counts.1 + counts.2 == REQUESTS as u64 {
                break counts;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: records {REQUESTS}, sent + dropped + failed {counts:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        println!(
            "collector {case}: {REQUESTS} records: {sent} sent, {dropped} dropped, {failed} failed"
        );
        if healthy {
            // A healthy collector fails nothing; what the small buffer could not hold is dropped.
            assert_eq!(failed, 0, "{case}");
            assert!(sent > 0, "{case}: nothing reached a healthy collector");
        } else {
            assert_eq!(sent, 0, "{case}: the collector took nothing");
        }
        assert_eq!(
            counter(&envoy, "wasmcustom.access_log.records"),
            REQUESTS as u64,
            "{case}"
        );
        assert!(
            app.requests()
                .iter()
                .all(|r| r.authority() == Some(ALLOWED)),
            "{case}"
        );
        assert_eq!(
            app.requests().len(),
            REQUESTS - REQUESTS.div_ceil(3),
            "{case}"
        );
    }
}

/// `size` entries: exact names, every tenth a wildcard, every seventh with a port.
fn large_allowlist(size: usize) -> String {
    let hosts: Vec<String> = (0..size)
        .map(|i| match (i % 10, i % 7) {
            (0, _) => format!("*.zone-{i}.example.net"),
            (_, 0) => format!("svc-{i}.example.com:8080"),
            _ => format!("svc-{i}.example.com"),
        })
        .collect();
    serde_json::json!({ "hosts": hosts }).to_string()
}

fn allowlist_of(size: usize) -> Vec<WasmFilter> {
    vec![WasmFilter::http(
        Module::HostAllowlist,
        large_allowlist(size),
    )]
}

fn status(envoy: &Envoy, host: &str) -> u16 {
    send(envoy, 0, host, "/").unwrap().status
}

#[test]
fn allowlists_of_10k_and_100k_entries_load_at_start_up_and_on_reload() {
    let upstream = Upstream::start("app").unwrap();
    e2e::modules::build_once().unwrap();
    // Start-up, side by side: Envoy process start until the listener serves.
    let mut startup = Vec::new();
    for size in [10, 10_000, 100_000] {
        let started = Instant::now();
        let (envoy, _listeners) = lds::start(
            &format!("allowlist-{size}"),
            &allowlist_of(size),
            upstream.port(),
        )
        .unwrap();
        startup.push((size, started.elapsed()));
        let last = size - 1;
        assert_eq!(
            status(&envoy, &format!("svc-{last}.example.com")),
            200,
            "{size}: last entry"
        );
        assert_eq!(
            status(&envoy, &format!("a.b.zone-{}.example.net", size - 10)),
            200,
            "{size}: wildcard"
        );
        assert_eq!(
            status(&envoy, &format!("zone-{}.example.net", size - 10)),
            403,
            "{size}: wildcard parent"
        );
        assert_eq!(
            status(&envoy, &format!("svc-{size}.example.com")),
            403,
            "{size}: one past the end"
        );
        assert_eq!(
            status(&envoy, "svc-7.example.com"),
            403,
            "{size}: port-only entry on port 80"
        );
    }

    // Reload: 10k → 100k → 10k through LDS, timed from the rename to Envoy's acceptance.
    let (envoy, mut listeners) =
        lds::start("allowlist-reload", &allowlist_of(10_000), upstream.port()).unwrap();
    let mut reloads = Vec::new();
    for (n, size) in [100_000, 10_000].into_iter().enumerate() {
        let renamed = Instant::now();
        listeners.write(&allowlist_of(size)).unwrap();
        lds::wait_for_stat(
            &envoy,
            "listener_manager.lds.update_success",
            2 + n as u64,
            WAIT,
        )
        .unwrap();
        reloads.push((size, renamed.elapsed()));
        let deadline = Instant::now() + WAIT;
        let (inside, outside) = if size == 100_000 {
            (200, 200)
        } else {
            (200, 403)
        };
        // While Envoy swaps the listener, a connection the old one accepted may be reset: that is
        // "not yet", as is the old answer.
        while send(&envoy, 0, "svc-99999.example.com", "/")
            .ok()
            .map(|r| r.status)
            != Some(outside)
        {
            assert!(
                Instant::now() < deadline,
                "the {size}-entry allowlist did not take effect"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(status(&envoy, "svc-9999.example.com"), inside);
        assert_eq!(status(&envoy, DENIED), 403);
    }
    assert_eq!(counter(&envoy, "listener_manager.lds.update_rejected"), 0);
    for (size, took) in &startup {
        println!("start-up with {size} entries: ready and serving in {took:?}");
    }
    for (size, took) in &reloads {
        println!("reload to {size} entries: accepted {took:?} after the rename");
    }
    assert!(upstream.requests().iter().all(|r| r
        .authority()
        .is_some_and(|a| a.starts_with("svc-") || a.contains(".zone-"))));
}
