//! The seed's story on the local gateways, step by step: client → ingress → app; app → its sidecar
//! → egress → external, over HTTP and TLS passthrough, with what is denied (at the sidecar, by
//! REGISTRY_ONLY, or at the egress gateway, by the allowlist) and what is logged. Each step
//! checks what happened, so `cargo xtask demo --once` and the tests can tell a gateway that
//! misbehaves.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client::{self, HttpRequest, HttpResponse, Protocol, TlsClient};
use crate::gateways::{GatewayVariant, LocalGateways, APP_HOST};
use crate::upstream::Upstream;

/// One step: what was done, what happened, whether it behaved.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: String,
    pub details: Vec<String>,
    pub ok: bool,
}

impl Step {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            details: Vec::new(),
            ok: true,
        }
    }

    pub(crate) fn note(&mut self, detail: impl Into<String>) {
        self.details.push(detail.into());
    }

    /// Records a check: its description, and whether it held.
    pub(crate) fn check(&mut self, holds: bool, what: impl Into<String>) {
        let what = what.into();
        self.details.push(if holds {
            format!("✓ {what}")
        } else {
            format!("✗ {what}")
        });
        self.ok &= holds;
    }

    pub(crate) fn failed(title: &str, error: String) -> Self {
        let mut step = Step::new(title);
        step.check(false, error);
        step
    }
}

/// Panics, with the step's checks, at the first step that misbehaved.
pub fn assert_every_step_ok(steps: &[Step]) {
    for step in steps {
        assert!(
            step.ok,
            "step {:?} misbehaved:\n{}",
            step.title,
            step.details.join("\n")
        );
    }
}

pub fn walkthrough(gateways: &LocalGateways) -> Vec<Step> {
    let (ingress, sidecar_tls) = match (gateways.ingress_http(), gateways.sidecar_tls()) {
        (Ok(ingress), Ok(sidecar_tls)) => (ingress, sidecar_tls),
        (Err(error), _) | (_, Err(error)) => return vec![Step::failed("find the gateways", error)],
    };
    let mut steps = vec![app_step(ingress), ingress_denial_step(gateways, ingress)];
    for host in ["www.google.com", "google.com"] {
        steps.push(egress_allowed_step(gateways, ingress, host));
    }
    steps.push(unregistered_host_step(ingress, "example.org"));
    steps.push(egress_denied_step(gateways, ingress, "evil.example.com"));
    steps.push(passthrough_allowed_step(
        gateways,
        sidecar_tls,
        "www.google.com",
    ));
    steps.push(passthrough_denied_step(
        gateways,
        sidecar_tls,
        Some("evil.example.com"),
    ));
    steps.push(passthrough_denied_step(gateways, sidecar_tls, None));
    steps.push(access_log_step(gateways));
    steps.push(ingress_access_log_step(gateways));
    if gateways.variant == GatewayVariant::WasmAccessLog {
        steps.push(collector_step(gateways));
    }
    steps
}

/// Sends `request` over HTTP/1.1, noting the exchange in `step`.
fn send(step: &mut Step, addr: SocketAddr, request: &HttpRequest) -> Option<HttpResponse> {
    step.note(format!(
        "GET http://{}{} (via {addr})",
        request.authority, request.path
    ));
    note_response(step, client::send(addr, Protocol::Http1, None, request))
}

/// Notes in `step` what came back, or checks off the request as failed.
pub(crate) fn note_response(
    step: &mut Step,
    outcome: crate::Result<HttpResponse>,
) -> Option<HttpResponse> {
    match outcome {
        Ok(response) => {
            step.note(format!(
                "→ {} {}",
                response.status,
                response.body_text().trim()
            ));
            Some(response)
        }
        Err(error) => {
            step.check(false, format!("request failed: {error}"));
            None
        }
    }
}

fn app_step(ingress: SocketAddr) -> Step {
    let mut step = Step::new("client → ingress gateway → command-runner app");
    if let Some(response) = send(&mut step, ingress, &HttpRequest::get(APP_HOST, "/")) {
        step.check(response.status == 200, "200 from the app");
        step.check(
            response.header("x-upstream") == Some("command-runner"),
            "served by command-runner",
        );
    }
    step
}

fn ingress_denial_step(gateways: &LocalGateways, ingress: SocketAddr) -> Step {
    let mut step = Step::new("client → ingress gateway with a name it does not serve: denied");
    let before = gateways.app.requests().len();
    if let Some(response) = send(
        &mut step,
        ingress,
        &HttpRequest::get("attacker.example.com", "/"),
    ) {
        check_ingress_denial(&mut step, &response);
    }
    step.check(
        gateways.app.requests().len() == before,
        "the app received nothing",
    );
    step
}

fn egress_allowed_step(gateways: &LocalGateways, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner app → sidecar → egress gateway → {host}: allowed, tagged `google`"
    ));
    let before = gateways.google.requests().len();
    let request = HttpRequest::get(APP_HOST, &format!("/fetch?host={host}"));
    if let Some(response) = send(&mut step, ingress, &request) {
        check_routed_to_google(&mut step, &response);
    }
    let arrived = new_requests(&gateways.google, before);
    let tagged = arrived
        .iter()
        .any(|r| r.authority() == Some(host) && r.header("x-route-subset") == Some("google"));
    step.check(
        tagged,
        format!("the {host} stand-in got it with Host {host} and x-route-subset: google"),
    );
    step
}

/// A host no ServiceEntry lists: the sidecar answers 502 itself (REGISTRY_ONLY).
fn unregistered_host_step(ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner app → sidecar → {host} (no ServiceEntry): stopped at the sidecar"
    ));
    let request = HttpRequest::get(APP_HOST, &format!("/fetch?host={host}"));
    if let Some(response) = send(&mut step, ingress, &request) {
        step.check(
            response.status == 502,
            "502 from the sidecar's block_all route (REGISTRY_ONLY)",
        );
    }
    step.note("(the egress gateway's log holds no record of it: see its access-log step)");
    step
}

fn egress_denied_step(gateways: &LocalGateways, ingress: SocketAddr, host: &str) -> Step {
    let mut step = Step::new(format!(
        "command-runner app → sidecar → egress gateway → {host} (a ServiceEntry, not allowlisted): denied"
    ));
    let before = gateways.internet.requests().len();
    let request = HttpRequest::get(APP_HOST, &format!("/fetch?host={host}"));
    if let Some(response) = send(&mut step, ingress, &request) {
        step.check(response.status == 403, "403 from the egress host-allowlist");
    }
    step.check(
        new_requests(&gateways.internet, before).is_empty(),
        "nothing reached the internet",
    );
    step
}

fn tls_client(gateways: &LocalGateways, sni: Option<&str>) -> Result<TlsClient, String> {
    Ok(TlsClient {
        config: gateways.ca.client_config(&[b"http/1.1"])?,
        sni: sni.map(str::to_string),
    })
}

fn passthrough_allowed_step(gateways: &LocalGateways, sidecar_tls: SocketAddr, host: &str) -> Step {
    let title =
        format!("app → sidecar → egress gateway → {host}:443 (TLS passthrough): allowed by SNI");
    let tls = match tls_client(gateways, Some(host)) {
        Ok(tls) => tls,
        Err(error) => return Step::failed(&title, error),
    };
    let mut step = Step::new(title);
    step.note(format!(
        "TLS to the sidecar's {sidecar_tls} with SNI {host}, end to end with the stand-in"
    ));
    let outcome = client::send(
        sidecar_tls,
        Protocol::Http1,
        Some(&tls),
        &HttpRequest::get(host, "/"),
    );
    if let Some(response) = note_response(&mut step, outcome) {
        step.check(
            response.status == 200,
            "200 from the stand-in, over TLS it terminated itself",
        );
    }
    let saw_sni = gateways
        .google_tls
        .requests()
        .iter()
        .any(|r| r.sni.as_deref() == Some(host));
    step.check(saw_sni, format!("the {host} stand-in saw SNI {host}"));
    step
}

/// TLS for evil.example.com (a ServiceEntry) reaches the egress gateway, whose allowlist closes
/// it; TLS without SNI matches no ServiceEntry and the sidecar sends it to the BlackHoleCluster.
fn passthrough_denied_step(
    gateways: &LocalGateways,
    sidecar_tls: SocketAddr,
    sni: Option<&str>,
) -> Step {
    let title = match sni {
        Some(sni) => {
            format!("app → sidecar → egress gateway, TLS with SNI {sni}: closed by the allowlist")
        }
        None => "app → sidecar, TLS without SNI: closed at the sidecar (REGISTRY_ONLY)".to_string(),
    };
    let tls = match tls_client(gateways, sni) {
        Ok(tls) => tls,
        Err(error) => return Step::failed(&title, error),
    };
    let mut step = Step::new(title);
    let before = gateways.internet_tls.requests().len();
    match client::tls_handshake(sidecar_tls, &tls) {
        Ok(()) => step.check(false, "the TLS handshake went through"),
        Err(error) => step.check(true, format!("the connection was closed: {error}")),
    }
    step.check(
        gateways.internet_tls.requests().len() == before,
        "nothing reached the internet",
    );
    step
}

/// Envoy's own access logger wrote the records as pure JSON lines: its native JSON record on the
/// shipped gateways, the access-log filter's with the Wasm access log.
fn access_log_step(gateways: &LocalGateways) -> Step {
    let mut step = Step::new("the egress gateway logged every request and connection as JSON");
    let path = LocalGateways::access_log_path(&gateways.egress);
    step.note(format!("{}:", path.display()));
    // A connection's record is written when it closes, just after the client sees it closed.
    let read = || json_lines(&std::fs::read_to_string(&path).unwrap_or_default());
    let records = read_until(Duration::from_secs(5), read, |records| records.len() >= 5);
    for record in &records {
        step.note(record.to_string());
    }
    check_egress_decisions(&mut step, &records, false);
    if gateways.variant != GatewayVariant::WasmAccessLog {
        check_native_fields(&mut step, &records);
    }
    step.check(
        records.iter().all(|r| r["authority"] != "example.org"),
        "no record of the unregistered host: it never left the sidecar",
    );
    check_egress_logged_once(&mut step, &records);
    step
}

/// Every request the walk-through sent to the ingress gateway is in its JSON log once: the app's
/// greeting, the denied name, and the four `/fetch` calls.
fn ingress_access_log_step(gateways: &LocalGateways) -> Step {
    let mut step = Step::new("the ingress gateway logged every request once, as JSON");
    let path = LocalGateways::access_log_path(&gateways.ingress);
    let read = || json_lines(&std::fs::read_to_string(&path).unwrap_or_default());
    let records = read_until(Duration::from_secs(5), read, |records| {
        records.len() >= HTTP_STEPS_SENT.len()
    });
    for record in &records {
        step.note(record.to_string());
    }
    check_each_logged_once(&mut step, &records, &HTTP_STEPS_SENT);
    if gateways.variant != GatewayVariant::WasmAccessLog {
        check_native_fields(&mut step, &records);
    }
    step
}

/// The Wasm access log's HTTP sink delivered NDJSON batches to the collector: one record for
/// each of the walk-through's three HTTP requests through the egress gateway.
fn collector_step(gateways: &LocalGateways) -> Step {
    let mut step =
        Step::new("the egress gateway's Wasm access log shipped batches to the log collector");
    let Some(collector) = &gateways.collector else {
        return Step::failed(&step.title, "no collector runs".to_string());
    };
    let collected = || -> Vec<serde_json::Value> {
        collector
            .requests()
            .iter()
            .flat_map(|batch| json_lines(&String::from_utf8_lossy(&batch.body)))
            .collect()
    };
    let records = read_until(Duration::from_secs(5), collected, |records| {
        records.len() >= EGRESS_HTTP_HOSTS.len()
    });
    let batches = collector.requests();
    let batches: Vec<(&str, &str)> = batches
        .iter()
        .map(|batch| (batch.method.as_str(), batch.path.as_str()))
        .collect();
    check_collected(&mut step, &batches, &records);
    step
}

/// Checks that the ingress gateway's host-allowlist denied `response`, with the reason in a header.
pub(crate) fn check_ingress_denial(step: &mut Step, response: &HttpResponse) {
    step.check(response.status == 403, "403 from the host-allowlist");
    let reason = response
        .header("x-gateway-wasm-denied-reason")
        .unwrap_or("-")
        .to_string();
    step.check(
        reason == "host_not_listed",
        format!("reason header: {reason}"),
    );
}

/// Checks that `response` came through both gateways from the egress gateway's `google` subset.
pub(crate) fn check_routed_to_google(step: &mut Step, response: &HttpResponse) {
    step.check(response.status == 200, "200 through both gateways");
    step.check(
        response.header("x-egress-upstream") == Some("google"),
        "the egress gateway routed it to the `google` subset",
    );
}

/// The fields of the native JSON record: Istio's default JSON access-log format
/// (pilot/pkg/model/telemetry_logging.go, `EnvoyJSONLogFormatIstio`), then ours
/// (wasm-plugins-manifests/mesh-config.yaml, the providers `gateway-wasm-json-*`).
pub const NATIVE_RECORD_FIELDS: [&str; 27] = [
    "start_time",
    "route_name",
    "method",
    "path",
    "protocol",
    "response_code",
    "response_flags",
    "response_code_details",
    "connection_termination_details",
    "upstream_transport_failure_reason",
    "bytes_received",
    "bytes_sent",
    "duration",
    "upstream_service_time",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
    "upstream_cluster",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
    "gateway",
    "allowlist",
    "subset",
];

/// Checks that every record has exactly the native record's fields, `allowlist` an object of
/// `decision`, `reason` and `rule`.
pub(crate) fn check_native_fields(step: &mut Step, records: &[serde_json::Value]) {
    let expected: BTreeSet<&str> = NATIVE_RECORD_FIELDS.into_iter().collect();
    let odd: Vec<String> = records
        .iter()
        .filter(|record| {
            object_keys(record) != expected
                || object_keys(&record["allowlist"])
                    != BTreeSet::from(["decision", "reason", "rule"])
        })
        .map(|record| record.to_string())
        .collect();
    step.check(
        !records.is_empty() && odd.is_empty(),
        format!(
            "every record has Istio's JSON fields, gateway, allowlist {{decision, reason, rule}} and subset{}",
            if odd.is_empty() {
                String::new()
            } else {
                format!("; not: {}", odd.join(" "))
            }
        ),
    );
}

/// The keys of a JSON object (none for anything else).
pub fn object_keys(value: &serde_json::Value) -> BTreeSet<&str> {
    value
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// What the HTTP steps of the walk-through send to the ingress gateway: (authority, path).
pub(crate) const HTTP_STEPS_SENT: [(&str, &str); 6] = [
    (APP_HOST, "/"),
    ("attacker.example.com", "/"),
    (APP_HOST, "/fetch?host=www.google.com"),
    (APP_HOST, "/fetch?host=google.com"),
    (APP_HOST, "/fetch?host=example.org"),
    (APP_HOST, "/fetch?host=evil.example.com"),
];

/// The hosts the walk-through's HTTP requests through the egress gateway were for.
pub(crate) const EGRESS_HTTP_HOSTS: [&str; 3] =
    ["www.google.com", "google.com", "evil.example.com"];

/// Checks the egress gateway's access-log decisions: an allowed request tagged google, the denied
/// request, the TLS passthrough connection and the closed one. `and_no_upstream_host`: also check
/// that the denied request's and connection's records name no upstream host.
pub(crate) fn check_egress_decisions(
    step: &mut Step,
    records: &[serde_json::Value],
    and_no_upstream_host: bool,
) {
    let decision =
        |record: &serde_json::Value| record["allowlist"]["decision"].as_str().map(str::to_string);
    let denied = |record: &serde_json::Value| {
        decision(record).as_deref() == Some("denied")
            && (!and_no_upstream_host || record["upstream_host"].is_null())
    };
    let with_upstream = if and_no_upstream_host {
        " and no upstream host"
    } else {
        ""
    };
    step.check(
        records
            .iter()
            .any(|r| r["subset"] == "google" && decision(r).as_deref() == Some("allowed")),
        "an allowed request, tagged google",
    );
    step.check(
        records
            .iter()
            .any(|r| r["authority"] == "evil.example.com" && denied(r)),
        format!("the denied request, with its decision{with_upstream}"),
    );
    step.check(
        records
            .iter()
            .any(|r| r["requested_server_name"] == "www.google.com" && r["method"].is_null()),
        "a TLS passthrough connection record",
    );
    step.check(
        records
            .iter()
            .any(|r| r["requested_server_name"] == "evil.example.com" && denied(r)),
        format!("the closed TLS connection's record, with its decision{with_upstream}"),
    );
}

/// Checks that the egress gateway logged once each of what reached it, and nothing else: three
/// HTTP requests, two TLS connections (the unregistered host and the SNI-less connection stopped
/// at the sidecar).
pub(crate) fn check_egress_logged_once(step: &mut Step, records: &[serde_json::Value]) {
    let requests = |host: &str| {
        records
            .iter()
            .filter(|r| r["authority"] == host && !r["method"].is_null())
            .count()
    };
    let connections = |sni: &str| {
        records
            .iter()
            .filter(|r| r["requested_server_name"] == sni && r["method"].is_null())
            .count()
    };
    step.check(
        records.len() == 5
            && EGRESS_HTTP_HOSTS.iter().all(|host| requests(host) == 1)
            && connections("www.google.com") == 1
            && connections("evil.example.com") == 1,
        format!(
            "each request and connection logged once, none for example.org ({} records)",
            records.len()
        ),
    );
}

/// Checks that the ingress gateway's `records` hold each request `sent` (authority, path) once,
/// and nothing else.
pub(crate) fn check_each_logged_once(
    step: &mut Step,
    records: &[serde_json::Value],
    sent: &[(&str, &str)],
) {
    let count = |authority: &str, path: &str| {
        records
            .iter()
            .filter(|r| r["authority"] == authority && r["path"] == path)
            .count()
    };
    step.check(
        records.len() == sent.len()
            && sent
                .iter()
                .all(|(authority, path)| count(authority, path) == 1),
        format!(
            "{} records, one per request ({} records)",
            sent.len(),
            records.len()
        ),
    );
}

/// Checks what the log collector received: NDJSON `batches` (method, path) POSTed to /logs, and
/// in their `records` one for each HTTP request through the egress gateway.
pub(crate) fn check_collected(
    step: &mut Step,
    batches: &[(&str, &str)],
    records: &[serde_json::Value],
) {
    step.note(format!(
        "{} POST(s) to the collector, {} record(s)",
        batches.len(),
        records.len()
    ));
    step.check(
        !batches.is_empty()
            && batches
                .iter()
                .all(|(method, path)| *method == "POST" && *path == "/logs"),
        "NDJSON POSTs to /logs",
    );
    for host in EGRESS_HTTP_HOSTS {
        step.check(
            records.iter().any(|r| r["authority"] == host),
            format!("the record of the request for {host}"),
        );
    }
}

pub(crate) fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn new_requests(upstream: &Upstream, before: usize) -> Vec<crate::upstream::RecordedRequest> {
    upstream.requests().into_iter().skip(before).collect()
}

/// Reads with `read` until `ready` holds for what it gives or `timeout` passes; then what it gives.
pub fn read_until<T>(
    timeout: Duration,
    mut read: impl FnMut() -> T,
    ready: impl Fn(&T) -> bool,
) -> T {
    wait_for(timeout, || Some(read()).filter(&ready)).unwrap_or_else(read)
}

/// Polls `probe` every 50 ms until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
