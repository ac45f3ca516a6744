//! Upstream failures in the record: `response_flags` and `upstream_transport_failure_reason`.

use e2e::client::{self, HttpRequest, Protocol};
use e2e::modules::Module;
use e2e::upstream::{closed_port, ResettingUpstream};
use e2e::wasm_filter::WasmFilter;

use crate::common::{assert_agrees_with_envoy, assert_no_placeholders, number, text, Gateway};

const CONFIG: &str = r#"{"gateway": "egress", "sinks": {"filter_state": true}}"#;

fn flags(record: &serde_json::Value) -> Vec<&str> {
    text(record, "response_flags").split(',').collect()
}

#[test]
fn an_upstream_that_is_down_is_recorded_with_uf() {
    let down = closed_port().unwrap();
    let gateway = Gateway::start(
        "access-log-upstream-down",
        &[WasmFilter::http(Module::AccessLog, CONFIG)],
        down,
        closed_port().unwrap(),
    );
    let response = gateway.send(
        Protocol::Http1,
        &HttpRequest::get("app.example.com", "/down"),
    );
    assert_eq!(response.status, 503, "{}", response.body_text());

    let records = gateway.file_records(1);
    let record = &records[0];
    let context = format!("{record}\n{}", gateway.log_tail());
    assert_no_placeholders(record);
    assert_agrees_with_envoy(record, &gateway.envoy_view(1)[0], &[]);
    assert_eq!(number(record, "response_code"), 503, "{context}");
    assert!(flags(record).contains(&"UF"), "{context}");
    assert_eq!(text(record, "upstream_cluster"), "upstream", "{context}");
    assert_eq!(
        text(record, "upstream_host"),
        format!("127.0.0.1:{down}"),
        "{context}"
    );
    let reason = text(record, "upstream_transport_failure_reason");
    assert_eq!(
        reason, "delayed_connect_error:_Connection_refused",
        "{context}"
    );
    assert!(
        record.get("upstream_service_time").is_none(),
        "no upstream answered: {context}"
    );
    gateway.assert_attributes_read_together();
}

#[test]
fn an_upstream_that_resets_before_answering_is_recorded_with_uc() {
    let broken = ResettingUpstream::start(Vec::new()).unwrap();
    let gateway = Gateway::start(
        "access-log-upstream-reset-early",
        &[WasmFilter::http(Module::AccessLog, CONFIG)],
        broken.port(),
        closed_port().unwrap(),
    );
    let response = gateway.send(
        Protocol::Http1,
        &HttpRequest::get("app.example.com", "/reset"),
    );
    assert_eq!(response.status, 503, "{}", response.body_text());

    let records = gateway.file_records(1);
    let record = &records[0];
    let context = format!("{record}\n{}", gateway.log_tail());
    assert!(broken.connections() >= 1, "{context}");
    assert_no_placeholders(record);
    assert_agrees_with_envoy(record, &gateway.envoy_view(1)[0], &[]);
    assert_eq!(number(record, "response_code"), 503, "{context}");
    assert!(flags(record).contains(&"UC"), "{context}");
    assert_eq!(
        text(record, "upstream_host"),
        broken.addr().to_string(),
        "{context}"
    );
    gateway.assert_attributes_read_together();
}

#[test]
fn an_upstream_that_resets_mid_response_is_recorded_with_envoys_flags() {
    // Headers promise 1000 bytes; 10 arrive, then the connection is reset.
    let broken = ResettingUpstream::start(
        &b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\ncontent-type: text/plain\r\n\r\n0123456789"[..],
    )
    .unwrap();
    let gateway = Gateway::start(
        "access-log-upstream-reset",
        &[WasmFilter::http(Module::AccessLog, CONFIG)],
        broken.port(),
        closed_port().unwrap(),
    );
    // The response has begun when the upstream breaks: the client sees a truncated response or a
    // reset stream, depending on the protocol, never a complete one.
    let http1 = client::send(
        gateway.addr,
        Protocol::Http1,
        None,
        &HttpRequest::get("app.example.com", "/reset/1"),
    );
    if let Ok(response) = &http1 {
        assert!(
            response.body.len() < 1000,
            "complete response from a reset upstream: {response:?}"
        );
    }
    let http2 = client::send(
        gateway.addr,
        Protocol::Http2,
        None,
        &HttpRequest::get("app.example.com", "/reset/2"),
    );
    assert!(
        http2.is_err(),
        "HTTP/2 stream completed although the upstream reset: {http2:?}"
    );

    let records = gateway.file_records(2);
    let envoy_view = gateway.envoy_view(2);
    assert!(broken.connections() >= 2, "{}", gateway.log_tail());
    for ((record, envoy), path) in records
        .iter()
        .zip(&envoy_view)
        .zip(["/reset/1", "/reset/2"])
    {
        let context = format!("{record}\n{}", gateway.log_tail());
        assert_no_placeholders(record);
        assert_agrees_with_envoy(record, envoy, &[]);
        assert_eq!(text(record, "path"), path, "{context}");
        assert_eq!(number(record, "response_code"), 200, "{context}");
        // Envoy 1.40 reads a body cut short by a reset as an upstream protocol error (UPE);
        // UC and UR are the other ways it reports a broken upstream.
        assert!(
            flags(record)
                .iter()
                .any(|flag| ["UC", "UR", "UPE"].contains(flag)),
            "{context}"
        );
        assert!(
            text(record, "response_code_details")
                .starts_with("upstream_reset_after_response_started"),
            "{context}"
        );
        assert_eq!(
            text(record, "upstream_host"),
            broken.addr().to_string(),
            "{context}"
        );
        assert_eq!(number(record, "bytes_sent"), 10, "{context}");
    }
    gateway.assert_attributes_read_together();
}
