//! Sampling (by request id, with responses at the threshold always kept) and redaction.

use std::sync::Arc;

use e2e::client::{HttpRequest, Protocol};
use e2e::modules::Module;
use e2e::upstream::{closed_port, Reply, Upstream};
use e2e::wasm_filter::WasmFilter;

use crate::common::{number, text, Gateway};

const RECORDS: &str = "wasmcustom.access_log.records";
const SAMPLED_OUT: &str = "wasmcustom.access_log.sampled_out";

/// An upstream answering `/status/N` with N.
fn status_upstream() -> Upstream {
    Upstream::start_with(
        "app",
        Arc::new(|request| {
            let status = request
                .path
                .strip_prefix("/status/")
                .and_then(|code| code.parse().ok())
                .unwrap_or(200);
            Reply::new(status, format!("status {status}\n"))
        }),
        None,
    )
    .unwrap()
}

fn send_statuses(gateway: &Gateway, statuses: &[u16]) {
    for (index, status) in statuses.iter().enumerate() {
        let protocol = if index % 2 == 0 {
            Protocol::Http1
        } else {
            Protocol::Http2
        };
        let request = HttpRequest::get("app.example.com", &format!("/status/{status}"))
            .header("x-request-id", &format!("sampling-{index}"));
        let response = gateway.send(protocol, &request);
        assert_eq!(response.status, *status, "{}", response.body_text());
    }
}

#[test]
fn sample_rate_zero_logs_only_responses_at_the_threshold() {
    let upstream = status_upstream();
    let config = r#"{"sinks": {"envoy_log": true}, "sample_rate": 0, "always_log_response_code_at_least": 500}"#;
    let gateway = Gateway::start(
        "access-log-sample-zero",
        &[WasmFilter::http(Module::AccessLog, config)],
        upstream.port(),
        closed_port().unwrap(),
    );
    let statuses = [200, 404, 503, 201, 499, 500];
    send_statuses(&gateway, &statuses);
    gateway.wait_for_stat(SAMPLED_OUT, |n| n == 4);
    let records = gateway.wait_for_envoy_log_records(2);
    let codes: Vec<u64> = records.iter().map(|r| number(r, "response_code")).collect();
    assert_eq!(codes, [503, 500], "{records:#?}\n{}", gateway.log_tail());
    assert_eq!(gateway.stat(RECORDS), 2);
    assert_eq!(
        upstream.requests().len(),
        statuses.len(),
        "sampling decides logging, not traffic"
    );
}

#[test]
fn sample_rate_one_logs_every_request() {
    let upstream = status_upstream();
    let config = r#"{"sinks": {"envoy_log": true}, "sample_rate": 1}"#;
    let gateway = Gateway::start(
        "access-log-sample-one",
        &[WasmFilter::http(Module::AccessLog, config)],
        upstream.port(),
        closed_port().unwrap(),
    );
    let statuses = [200, 404, 503, 201, 499, 500];
    send_statuses(&gateway, &statuses);
    let records = gateway.wait_for_envoy_log_records(statuses.len() as u64);
    let codes: Vec<u64> = records.iter().map(|r| number(r, "response_code")).collect();
    assert_eq!(codes, statuses.map(u64::from), "{records:#?}");
    let ids: Vec<&str> = records.iter().map(|r| text(r, "request_id")).collect();
    let sent_ids: Vec<String> = (0..statuses.len())
        .map(|index| format!("sampling-{index}"))
        .collect();
    assert_eq!(ids, sent_ids);
    assert_eq!(gateway.stat(SAMPLED_OUT), 0);
}

#[test]
fn credentials_and_configured_secrets_are_never_logged_in_clear() {
    let upstream = Upstream::start_with(
        "app",
        Arc::new(|_| {
            let mut reply = Reply::new(200, "ok\n");
            reply
                .headers
                .push(("set-cookie".into(), "session=server-secret-cookie".into()));
            reply
                .headers
                .push(("x-trace-note".into(), "visible".into()));
            reply
        }),
        None,
    )
    .unwrap();
    let config = r#"{
        "sinks": {"envoy_log": true, "filter_state": true},
        "redact_headers": ["X-Api-Key", "x-forwarded-for"],
        "redact_query_params": ["token", "api_key"],
        "request_headers": ["authorization", "cookie", "proxy-authorization", "x-api-key", "x-tenant"],
        "response_headers": ["set-cookie", "x-trace-note"]
    }"#;
    let gateway = Gateway::start(
        "access-log-redaction",
        &[WasmFilter::http(Module::AccessLog, config)],
        upstream.port(),
        closed_port().unwrap(),
    );
    let secrets = [
        "Bearer client-secret-token",
        "sid=client-secret-cookie",
        "Basic cHJveHktc2VjcmV0",
        "key-secret-123",
        "query-secret-456",
        "api-secret-789",
        "server-secret-cookie",
    ];
    let path = "/search?q=shoes&token=query-secret-456&API_KEY=api-secret-789&page=2";
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let request = HttpRequest::get("app.example.com", path)
            .header("authorization", secrets[0])
            .header("cookie", secrets[1])
            .header("proxy-authorization", secrets[2])
            .header("x-api-key", secrets[3])
            .header("x-forwarded-for", "198.51.100.23")
            .header("x-tenant", "acme");
        let response = gateway.send(protocol, &request);
        assert_eq!(response.status, 200);
    }
    let records = gateway.file_records(2);
    assert_eq!(records, gateway.wait_for_envoy_log_records(2));
    for record in &records {
        let context = format!("{record}\n{}", gateway.log_tail());
        assert_eq!(
            text(record, "path"),
            "/search?q=shoes&token=[REDACTED]&API_KEY=[REDACTED]&page=2",
            "{context}"
        );
        let request_headers = &record["request_headers"];
        for name in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-api-key",
        ] {
            assert_eq!(request_headers[name], "[REDACTED]", "{name}: {context}");
        }
        assert_eq!(request_headers["x-tenant"], "acme", "{context}");
        assert_eq!(
            record["response_headers"]["set-cookie"], "[REDACTED]",
            "{context}"
        );
        assert_eq!(
            record["response_headers"]["x-trace-note"], "visible",
            "{context}"
        );
        assert_eq!(text(record, "x_forwarded_for"), "[REDACTED]", "{context}");
        // The header is redacted, not the address Envoy derives from it (as Istio logs it).
        assert_eq!(
            text(record, "downstream_remote_address"),
            "198.51.100.23:0",
            "{context}"
        );
    }
    // The upstream got the secrets (redaction is for the log only) ...
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|r| r.path == path && r.header("x-api-key") == Some(secrets[3])));
    // Envoy's own logger, which knows nothing of redaction, shows what would have leaked.
    let envoy_view = gateway.envoy_view(2);
    assert!(
        envoy_view.iter().all(|e| e["path"] == path),
        "{envoy_view:#?}"
    );
    // ... and no sink ever wrote one.
    let file = std::fs::read_to_string(&gateway.access_log).unwrap();
    let log = gateway.envoy.log();
    for secret in secrets {
        assert!(
            !file.contains(secret),
            "{secret:?} in the access log:\n{file}"
        );
        assert!(
            !log.contains(secret),
            "{secret:?} in Envoy's log:\n{}",
            gateway.log_tail()
        );
    }
}
