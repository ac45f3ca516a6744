//! The record of an allowed request, field by field, and the native logger's pure-JSON lines.

use e2e::client::{HttpRequest, Protocol};
use e2e::modules::Module;
use e2e::upstream::{closed_port, Reply, Upstream};
use e2e::wasm_filter::WasmFilter;
use std::sync::Arc;

use crate::common::{assert_agrees_with_envoy, assert_no_placeholders, number, text, Gateway};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn is_rfc3339_millis(time: &str) -> bool {
    let bytes = time.as_bytes();
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    bytes.len() == shape.len()
        && shape
            .bytes()
            .zip(bytes)
            .all(|(expected, &actual)| match expected {
                b'd' => actual.is_ascii_digit(),
                other => other == actual,
            })
}

#[test]
fn an_allowed_request_is_recorded_field_by_field_over_http1_and_http2() {
    let upstream = Upstream::start("app").unwrap();
    let config = r#"{"gateway": "egress", "sinks": {"envoy_log": true, "filter_state": true}}"#;
    let gateway = Gateway::start(
        "access-log-record",
        &[WasmFilter::http(Module::AccessLog, config)],
        upstream.port(),
        closed_port().unwrap(),
    );
    let body = b"twelve bytes".to_vec();
    let cases = [(Protocol::Http1, "HTTP/1.1"), (Protocol::Http2, "HTTP/2")];
    let mut responses = Vec::new();
    for (index, (protocol, _)) in cases.iter().enumerate() {
        let mut request = HttpRequest::get("app.example.com", &format!("/orders/{index}?page=2"))
            .header("user-agent", "e2e-client/1.0")
            .header("x-forwarded-for", "203.0.113.7")
            .header("traceparent", &format!("00-{TRACE_ID}-00f067aa0ba902b7-01"));
        request.method = "POST".to_string();
        request.body = body.clone();
        let response = gateway.send(*protocol, &request);
        assert_eq!(
            response.status,
            200,
            "{protocol:?}: {}",
            response.body_text()
        );
        responses.push(response);
    }

    let file = gateway.file_records(cases.len());
    let logged = gateway.wait_for_envoy_log_records(cases.len() as u64);
    assert_eq!(file.len(), cases.len(), "{file:#?}");
    assert_eq!(file, logged, "both sinks carry the same records");
    let seen = upstream.requests();
    assert_eq!(seen.len(), cases.len(), "{seen:#?}");
    let envoy_view = gateway.envoy_view(cases.len());

    for (index, ((((record, upstream_saw), response), envoy), (protocol, version))) in file
        .iter()
        .zip(&seen)
        .zip(&responses)
        .zip(&envoy_view)
        .zip(cases)
        .enumerate()
    {
        let context = format!("{protocol:?}: {record}\n{}", gateway.log_tail());
        assert_no_placeholders(record);
        assert_agrees_with_envoy(record, envoy, &[]);
        assert_eq!(text(record, "method"), "POST", "{context}");
        assert_eq!(
            text(record, "path"),
            format!("/orders/{index}?page=2"),
            "{context}"
        );
        assert_eq!(text(record, "path"), upstream_saw.path, "{context}");
        assert_eq!(text(record, "protocol"), version, "{context}");
        assert_eq!(number(record, "response_code"), 200, "{context}");
        assert_eq!(
            text(record, "response_code_details"),
            "via_upstream",
            "{context}"
        );
        assert_eq!(
            number(record, "bytes_received"),
            body.len() as u64,
            "{context}"
        );
        assert_eq!(
            number(record, "bytes_received"),
            upstream_saw.body.len() as u64,
            "{context}"
        );
        assert_eq!(
            number(record, "bytes_sent"),
            response.body.len() as u64,
            "{context}"
        );
        assert_eq!(text(record, "authority"), "app.example.com", "{context}");
        assert_eq!(
            Some(text(record, "authority")),
            upstream_saw.authority(),
            "{context}"
        );
        let request_id = upstream_saw
            .header("x-request-id")
            .expect("Envoy sets x-request-id");
        assert_eq!(text(record, "request_id"), request_id, "{context}");
        assert_eq!(
            text(record, "upstream_host"),
            upstream.addr().to_string(),
            "{context}"
        );
        assert_eq!(text(record, "upstream_cluster"), "upstream", "{context}");
        assert_eq!(text(record, "route_name"), "to_upstream", "{context}");
        assert_eq!(
            text(record, "downstream_local_address"),
            gateway.addr.to_string(),
            "{context}"
        );
        // Envoy's %DOWNSTREAM_REMOTE_ADDRESS%: without `use_remote_address`, the client address
        // is the last x-forwarded-for entry, with no port.
        assert_eq!(
            text(record, "downstream_remote_address"),
            "203.0.113.7:0",
            "{context}"
        );
        assert_eq!(text(record, "user_agent"), "e2e-client/1.0", "{context}");
        assert_eq!(
            Some(text(record, "user_agent")),
            upstream_saw.header("user-agent"),
            "{context}"
        );
        assert_eq!(text(record, "x_forwarded_for"), "203.0.113.7", "{context}");
        assert_eq!(
            Some(text(record, "x_forwarded_for")),
            upstream_saw.header("x-forwarded-for"),
            "{context}"
        );
        assert_eq!(text(record, "trace_id"), TRACE_ID, "{context}");
        assert_eq!(text(record, "gateway"), "egress", "{context}");
        assert!(is_rfc3339_millis(text(record, "start_time")), "{context}");
        number(record, "duration");
        let service_time = response
            .header("x-envoy-upstream-service-time")
            .expect("Envoy's router sets x-envoy-upstream-service-time");
        assert_eq!(
            text(record, "upstream_service_time"),
            service_time,
            "{context}"
        );
        // Neither filter that publishes these is loaded, and the plain request is not TLS.
        for absent in [
            "allowlist",
            "subset",
            "requested_server_name",
            "response_flags",
            "upstream_transport_failure_reason",
            "request_headers",
            "response_headers",
        ] {
            assert!(record.get(absent).is_none(), "{absent} present: {context}");
        }
    }
    assert_eq!(
        gateway.stat("wasmcustom.access_log.records"),
        cases.len() as u64
    );
    gateway.assert_attributes_read_together();
}

#[test]
fn the_native_logger_prints_one_pure_json_line_per_request() {
    // Answers with the status the path names, so records differ in more than their path.
    let upstream = Upstream::start_with(
        "app",
        Arc::new(|request| {
            let status = request
                .path
                .trim_start_matches("/status/")
                .parse()
                .unwrap_or(200);
            Reply::new(status, format!("status {status}\n"))
        }),
        None,
    )
    .unwrap();
    let config = r#"{"sinks": {"filter_state": true}, "request_headers": ["x-note"]}"#;
    let gateway = Gateway::start(
        "access-log-native",
        &[WasmFilter::http(Module::AccessLog, config)],
        upstream.port(),
        closed_port().unwrap(),
    );
    // Values that a naive writer would break JSON with: quotes, backslashes, non-ASCII text.
    let note = r#"say "hi" \ tschüß"#;
    let statuses = [200u16, 404, 503, 201];
    for (index, status) in statuses.iter().enumerate() {
        let protocol = if index % 2 == 0 {
            Protocol::Http1
        } else {
            Protocol::Http2
        };
        let request = HttpRequest::get("app.example.com", &format!("/status/{status}"))
            .header("x-note", note)
            .header("user-agent", r#"agent "quoted" \ back"#);
        let response = gateway.send(protocol, &request);
        assert_eq!(response.status, *status, "{}", response.body_text());
    }
    let records = gateway.file_records(statuses.len());
    let text_of_file = std::fs::read_to_string(&gateway.access_log).unwrap();
    assert_eq!(
        text_of_file.lines().count(),
        statuses.len(),
        "one line per request:\n{text_of_file}"
    );
    let envoy_view = gateway.envoy_view(statuses.len());
    for ((record, envoy), status) in records.iter().zip(&envoy_view).zip(statuses) {
        assert_no_placeholders(record);
        assert_agrees_with_envoy(record, envoy, &[]);
        // No x-forwarded-for: the client's own socket address.
        let remote: std::net::SocketAddr =
            text(record, "downstream_remote_address").parse().unwrap();
        assert!(remote.ip().is_loopback() && remote.port() != 0, "{record}");
        assert_ne!(remote, gateway.addr, "{record}");
        assert_eq!(
            text(record, "path"),
            format!("/status/{status}"),
            "{record}"
        );
        assert_eq!(
            number(record, "response_code"),
            u64::from(status),
            "{record}"
        );
        assert_eq!(record["request_headers"]["x-note"], note, "{record}");
        assert_eq!(
            text(record, "user_agent"),
            r#"agent "quoted" \ back"#,
            "{record}"
        );
    }
    // No envoy_log sink configured: nothing in Envoy's own log.
    assert!(
        gateway.envoy_log_records().is_empty(),
        "{}",
        gateway.log_tail()
    );
}
