//! The access-log record builder over any property and header values (any bytes, integers, text,
//! foreign filter state): the HTTP and the connection record are always one line holding one JSON
//! object, and configured redaction holds.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use gateway_core::access_log::{log_connection, log_http_request, AccessLogConfig};
use gateway_fuzz::{assert_record, Sinks, Stream};
use libfuzzer_sys::fuzz_target;

const CONFIGS: [&str; 3] = [
    r#"{"gateway": "egress", "sinks": {"envoy_log": true, "filter_state": true, "http": {"cluster": "c"}},
        "redact_headers": ["x-api-key"], "redact_query_params": ["token", "key"],
        "request_headers": ["x-tenant", "x-api-key", "authorization"], "response_headers": ["content-type", "x-api-key"]}"#,
    r#"{"gateway": "ingress", "sample_rate": 0.5, "always_log_response_code_at_least": 400}"#,
    r#"{"sinks": {"filter_state": true}, "sample_rate": 0}"#,
];

fn configs() -> &'static [AccessLogConfig] {
    static PARSED: OnceLock<Vec<AccessLogConfig>> = OnceLock::new();
    PARSED.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|c| AccessLogConfig::from_json(c.as_bytes()).expect("the fuzz configurations are valid"))
            .collect()
    })
}

#[derive(Debug, Arbitrary)]
struct Input {
    config: u8,
    stream: Stream,
}

fuzz_target!(|input: Input| {
    let config = &configs()[usize::from(input.config) % CONFIGS.len()];
    for connection in [false, true] {
        let mut sinks = Sinks::default();
        if connection {
            log_connection(config, &input.stream, &mut sinks);
        } else {
            log_http_request(config, &input.stream, &mut sinks);
        }
        for record in &sinks.records {
            let record = assert_record(record);
            if let Some(serde_json::Value::Object(headers)) = record.get("request_headers") {
                for name in ["x-api-key", "authorization"] {
                    if let Some(value) = headers.get(name) {
                        assert_eq!(value, "[REDACTED]", "{name} logged in clear: {record:?}");
                    }
                }
            }
        }
    }
});
