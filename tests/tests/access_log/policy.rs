//! What host-allowlist and subset-tagger publish in filter state, in the access-log record.
//!
//! These run the real filters ahead of access-log, against their documented contract: filter state
//! `gateway_wasm.allowlist.decision` / `.reason` / `.rule` (the record's `allowlist` object) with a
//! 403 denial by default, and `gateway_wasm.subset.name` (the record's `subset`).

use e2e::client::{HttpRequest, Protocol};
use e2e::modules::Module;
use e2e::upstream::{closed_port, Upstream};
use e2e::wasm_filter::WasmFilter;

use crate::common::{assert_no_placeholders, number, text, Gateway};

const ALLOWLIST: &str = r#"{"hosts": ["allowed.example.com"]}"#;

#[test]
fn a_denied_request_is_logged_with_the_decision_and_never_reaches_the_upstream() {
    let upstream = Upstream::start("app").unwrap();
    let gateway = Gateway::start(
        "access-log-denied",
        &[
            WasmFilter::http(Module::HostAllowlist, ALLOWLIST),
            WasmFilter::http(
                Module::AccessLog,
                r#"{"gateway": "egress", "sinks": {"filter_state": true}}"#,
            ),
        ],
        upstream.port(),
        closed_port().unwrap(),
    );
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let response = gateway.send(protocol, &HttpRequest::get("denied.example.com", "/secret"));
        assert_eq!(
            response.status,
            403,
            "{protocol:?}: {}\n{}",
            response.body_text(),
            gateway.log_tail()
        );
    }
    let allowed = gateway.send(
        Protocol::Http1,
        &HttpRequest::get("allowed.example.com", "/fine"),
    );
    assert_eq!(allowed.status, 200, "{}", allowed.body_text());

    let records = gateway.file_records(3);
    for record in &records[..2] {
        let context = format!("{record}\n{}", gateway.log_tail());
        assert_no_placeholders(record);
        assert_eq!(text(record, "authority"), "denied.example.com", "{context}");
        assert_eq!(number(record, "response_code"), 403, "{context}");
        assert_eq!(record["allowlist"]["decision"], "denied", "{context}");
        let reason = record["allowlist"]["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "a denial says why: {context}");
        assert!(
            record.get("upstream_host").is_none(),
            "no upstream was picked: {context}"
        );
    }
    let context = format!("{}\n{}", records[2], gateway.log_tail());
    assert_eq!(
        text(&records[2], "authority"),
        "allowed.example.com",
        "{context}"
    );
    assert_eq!(records[2]["allowlist"]["decision"], "allowed", "{context}");
    let seen = upstream.requests();
    assert_eq!(
        seen.len(),
        1,
        "only the allowed request reached the upstream: {seen:#?}"
    );
    assert_eq!(seen[0].authority(), Some("allowed.example.com"));
    // A local reply has no upstream: the list reads those attributes behind `has()`.
    gateway.assert_attributes_read_together();
}

#[test]
fn sample_rate_zero_still_logs_denials() {
    let upstream = Upstream::start("app").unwrap();
    let access_log = r#"{"sinks": {"filter_state": true, "envoy_log": true}, "sample_rate": 0}"#;
    let gateway = Gateway::start(
        "access-log-denied-sampled",
        &[
            WasmFilter::http(Module::HostAllowlist, ALLOWLIST),
            WasmFilter::http(Module::AccessLog, access_log),
        ],
        upstream.port(),
        closed_port().unwrap(),
    );
    for (host, status) in [
        ("allowed.example.com", 200),
        ("denied.example.com", 403),
        ("allowed.example.com", 200),
    ] {
        let response = gateway.send(Protocol::Http1, &HttpRequest::get(host, "/"));
        assert_eq!(
            response.status,
            status,
            "{host}: {}\n{}",
            response.body_text(),
            gateway.log_tail()
        );
    }
    gateway.wait_for_stat("wasmcustom.access_log.sampled_out", |n| n == 2);
    let records = gateway.wait_for_envoy_log_records(1);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        records[0]["allowlist"]["decision"], "denied",
        "{}",
        records[0]
    );
    assert_eq!(text(&records[0], "authority"), "denied.example.com");
}

#[test]
fn the_subset_tag_is_recorded() {
    let upstream = Upstream::start("app").unwrap();
    let tagger = r#"{"header":"x-route-subset","rules":[{"match":{"hosts":["www.google.com"]},"subset":"google"}]}"#;
    let gateway = Gateway::start(
        "access-log-subset",
        &[
            WasmFilter::http(Module::SubsetTagger, tagger),
            WasmFilter::http(Module::AccessLog, r#"{"sinks": {"filter_state": true}}"#),
        ],
        upstream.port(),
        closed_port().unwrap(),
    );
    for host in ["www.google.com", "example.org"] {
        let response = gateway.send(Protocol::Http2, &HttpRequest::get(host, "/"));
        assert_eq!(response.status, 200, "{host}: {}", response.body_text());
    }
    let records = gateway.file_records(2);
    let seen = upstream.requests();
    let context = format!("{records:#?}\n{seen:#?}\n{}", gateway.log_tail());
    assert_eq!(
        text(&records[0], "authority"),
        "www.google.com",
        "{context}"
    );
    assert_eq!(text(&records[0], "subset"), "google", "{context}");
    assert_eq!(
        seen[0].header("x-route-subset"),
        Some("google"),
        "{context}"
    );
    assert_eq!(text(&records[1], "authority"), "example.org", "{context}");
    assert!(
        records[1].get("subset").is_none(),
        "no rule matched: {context}"
    );
    assert_eq!(seen[1].header("x-route-subset"), None, "{context}");
}
