//! The `http` sink: NDJSON batches POSTed to a collector cluster, and a collector that is down,
//! slow or failing never fails a request, while every record is either delivered or counted.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use e2e::client::{HttpRequest, Protocol};
use e2e::json_lines;
use e2e::modules::Module;
use e2e::upstream::{closed_port, fixed_status, Reply, Responder, Upstream};
use e2e::wasm_filter::WasmFilter;
use serde_json::Value;

use crate::common::{text, Gateway};

const SENT: &str = "wasmcustom.access_log.sent";
const DROPPED: &str = "wasmcustom.access_log.dropped";
const FAILED_BATCHES: &str = "wasmcustom.access_log.failed_batches";
const RECORDS: &str = "wasmcustom.access_log.records";

fn config(http_sink: &str) -> String {
    format!(r#"{{"gateway": "egress", "sinks": {{"http": {http_sink}}}}}"#)
}

/// Sends `count` requests, alternating HTTP/1.1 and HTTP/2; each must get the upstream's 200.
fn send_requests(gateway: &Gateway, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let path = format!("/{prefix}/{n}");
            let protocol = if n % 2 == 0 {
                Protocol::Http1
            } else {
                Protocol::Http2
            };
            let response = gateway.send(protocol, &HttpRequest::get("app.example.com", &path));
            assert_eq!(
                response.status,
                200,
                "{path}: {}\n{}",
                response.body_text(),
                gateway.log_tail()
            );
            assert_eq!(response.header("x-upstream"), Some("app"), "{path}");
            path
        })
        .collect()
}

/// Every record the collector received, each line parsed as JSON, after checking each POST.
fn received_records(collector: &Upstream) -> Vec<Value> {
    let mut records = Vec::new();
    for post in collector.requests() {
        assert_eq!(post.method, "POST");
        assert_eq!(post.path, "/v1/logs");
        assert_eq!(post.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(post.authority(), Some("collector"));
        let body = String::from_utf8(post.body.clone()).expect("UTF-8 batch");
        assert!(body.ends_with('\n'), "NDJSON ends each line: {body:?}");
        records.extend(json_lines::parse(&body).unwrap_or_else(|error| panic!("{error}")));
    }
    records
}

/// Every record built was sent, dropped, or in a failed batch of one record.
fn assert_every_record_accounted(gateway: &Gateway, requests: u64) {
    gateway.wait_for_stat(RECORDS, |n| n == requests);
    gateway.wait_until(
        "sent + dropped + failed_batches to reach the records",
        || gateway.stat(SENT) + gateway.stat(DROPPED) + gateway.stat(FAILED_BATCHES) == requests,
    );
}

/// Holds a responder's answers until opened (or a minute has passed), as a collector that does not
/// answer in time.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn responder(&self) -> Responder {
        let gate = self.clone();
        Arc::new(move |_| {
            let (open, changed) = &*gate.0;
            let guard = open.lock().unwrap();
            let _ = changed.wait_timeout_while(guard, Duration::from_secs(60), |open| !*open);
            Reply::new(200, "")
        })
    }

    fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}

#[test]
fn the_collector_receives_every_record_in_ndjson_batches() {
    let upstream = Upstream::start("app").unwrap();
    let collector =
        Upstream::start_with("collector", fixed_status("collector", 204), None).unwrap();
    let sink = r#"{"cluster": "collector", "path": "/v1/logs", "batch_size": 3, "flush_interval_ms": 100}"#;
    let gateway = Gateway::start(
        "access-log-collector",
        &[WasmFilter::http(Module::AccessLog, config(sink))],
        upstream.port(),
        collector.port(),
    );
    let paths = send_requests(&gateway, "collected", 7);
    gateway.wait_for_stat(SENT, |n| n >= 7);

    let records = received_records(&collector);
    let batches = collector.requests();
    assert!(batches
        .iter()
        .all(|post| post.body.iter().filter(|&&b| b == b'\n').count() <= 3));
    assert!(
        batches.len() >= 3,
        "7 records in batches of at most 3: {} POSTs",
        batches.len()
    );
    let received_paths: BTreeSet<&str> = records.iter().map(|r| text(r, "path")).collect();
    assert_eq!(received_paths, paths.iter().map(String::as_str).collect());
    assert_eq!(records.len(), 7, "each record once: {records:#?}");
    let request_ids: BTreeSet<&str> = records.iter().map(|r| text(r, "request_id")).collect();
    let upstream_ids: BTreeSet<String> = upstream
        .requests()
        .iter()
        .filter_map(|r| r.header("x-request-id").map(str::to_string))
        .collect();
    assert_eq!(
        request_ids,
        upstream_ids.iter().map(String::as_str).collect()
    );
    for record in &records {
        assert_eq!(text(record, "gateway"), "egress", "{record}");
        assert_eq!(record["response_code"], 200, "{record}");
    }
    assert_eq!(gateway.stat(SENT), 7);
    assert_eq!(gateway.stat(DROPPED), 0);
    assert_eq!(gateway.stat(FAILED_BATCHES), 0);
}

#[test]
fn a_collector_that_is_down_fails_no_request_and_its_batches_are_counted() {
    let upstream = Upstream::start("app").unwrap();
    let sink = r#"{"cluster": "collector", "path": "/v1/logs", "batch_size": 1, "flush_interval_ms": 50, "timeout_ms": 2000}"#;
    let gateway = Gateway::start(
        "access-log-collector-down",
        &[WasmFilter::http(Module::AccessLog, config(sink))],
        upstream.port(),
        closed_port().unwrap(),
    );
    send_requests(&gateway, "down", 5);
    assert_every_record_accounted(&gateway, 5);
    assert_eq!(gateway.stat(SENT), 0, "{}", gateway.log_tail());
    assert_eq!(gateway.stat(FAILED_BATCHES), 5, "{}", gateway.log_tail());
    assert_eq!(upstream.requests().len(), 5);
}

#[test]
fn a_collector_answering_5xx_fails_no_request_and_its_batches_are_counted() {
    let upstream = Upstream::start("app").unwrap();
    let collector =
        Upstream::start_with("collector", fixed_status("collector", 503), None).unwrap();
    let sink =
        r#"{"cluster": "collector", "path": "/v1/logs", "batch_size": 1, "flush_interval_ms": 50}"#;
    let gateway = Gateway::start(
        "access-log-collector-5xx",
        &[WasmFilter::http(Module::AccessLog, config(sink))],
        upstream.port(),
        collector.port(),
    );
    let paths = send_requests(&gateway, "refused", 4);
    assert_every_record_accounted(&gateway, 4);
    assert_eq!(gateway.stat(SENT), 0, "{}", gateway.log_tail());
    assert_eq!(gateway.stat(FAILED_BATCHES), 4, "{}", gateway.log_tail());
    // The collector got every batch; it just did not take them.
    let received: BTreeSet<String> = received_records(&collector)
        .iter()
        .map(|r| text(r, "path").to_string())
        .collect();
    assert_eq!(received, paths.into_iter().collect());
}

#[test]
fn a_collector_slower_than_the_timeout_fails_no_request_and_its_batches_are_counted() {
    let upstream = Upstream::start("app").unwrap();
    let gate = Gate::default();
    let collector = Upstream::start_with("collector", gate.responder(), None).unwrap();
    let sink = r#"{"cluster": "collector", "path": "/v1/logs", "batch_size": 1, "flush_interval_ms": 50, "timeout_ms": 200}"#;
    let gateway = Gateway::start(
        "access-log-collector-slow",
        &[WasmFilter::http(Module::AccessLog, config(sink))],
        upstream.port(),
        collector.port(),
    );
    send_requests(&gateway, "slow", 3);
    assert_every_record_accounted(&gateway, 3);
    gate.open();
    assert_eq!(gateway.stat(SENT), 0, "{}", gateway.log_tail());
    assert_eq!(gateway.stat(FAILED_BATCHES), 3, "{}", gateway.log_tail());
    assert_eq!(gateway.stat(DROPPED), 0, "{}", gateway.log_tail());
}

#[test]
fn a_collector_that_holds_its_answers_fills_the_buffer_and_drops_are_counted() {
    let upstream = Upstream::start("app").unwrap();
    let gate = Gate::default();
    let collector = Upstream::start_with("collector", gate.responder(), None).unwrap();
    // One POST open at a time, one record waiting: the rest cannot fit while the collector holds.
    let sink = r#"{"cluster": "collector", "path": "/v1/logs", "batch_size": 1, "max_buffered_records": 1, "max_in_flight": 1, "flush_interval_ms": 50, "timeout_ms": 600000}"#;
    let gateway = Gateway::start(
        "access-log-collector-held",
        &[WasmFilter::http(Module::AccessLog, config(sink))],
        upstream.port(),
        collector.port(),
    );
    let requests = 10;
    send_requests(&gateway, "held", requests);
    gateway.wait_for_stat(RECORDS, |n| n == requests as u64);
    // At most one record in the open POST and one in the buffer.
    let dropped = gateway.wait_for_stat(DROPPED, |n| n >= requests as u64 - 2);
    assert_eq!(gateway.stat(SENT), 0, "{}", gateway.log_tail());

    gate.open();
    let sent = gateway.wait_for_stat(SENT, |n| n + dropped == requests as u64);
    assert!(
        sent >= 1,
        "the held record is delivered once the collector answers"
    );
    assert_eq!(gateway.stat(DROPPED), dropped, "{}", gateway.log_tail());
    assert_eq!(gateway.stat(FAILED_BATCHES), 0, "{}", gateway.log_tail());
    assert_eq!(received_records(&collector).len() as u64, sent);
}
