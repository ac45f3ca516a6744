//! The W3C traceparent parser, through the access-log record builder: the record carries a
//! `trace_id` exactly when the header is a well-formed version-00 traceparent (checked against an
//! independent reading of the specification), and it is that header's trace id.
#![no_main]

use gateway_core::access_log::{log_http_request, AccessLogConfig};
use gateway_fuzz::{assert_record, Sinks, Stream};
use libfuzzer_sys::fuzz_target;

/// `00-<32 lowercase hex, not all zero>-<16 lowercase hex, not all zero>-<2 lowercase hex>`.
fn expected_trace_id(header: &[u8]) -> Option<String> {
    if header.len() != 55 || !header.starts_with(b"00-") || header[35] != b'-' || header[52] != b'-' {
        return None;
    }
    let hex = |range: std::ops::Range<usize>| header[range].iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let zero = |range: std::ops::Range<usize>| header[range].iter().all(|b| *b == b'0');
    if !(hex(3..35) && hex(36..52) && hex(53..55)) || zero(3..35) || zero(36..52) {
        return None;
    }
    Some(String::from_utf8_lossy(&header[3..35]).into_owned())
}

fuzz_target!(|header: &[u8]| {
    let config = AccessLogConfig::from_json(br#"{"sinks": {"filter_state": true}}"#).expect("valid");
    let mut stream = Stream::default();
    stream.properties.insert("request.id".into(), b"id".to_vec());
    stream.request_headers.insert("traceparent".into(), header.to_vec());
    let mut sinks = Sinks::default();
    let _ = log_http_request(&config, &stream, &mut sinks);
    assert_eq!(sinks.records.len(), 1);
    let record = assert_record(&sinks.records[0]);
    let trace_id = record.get("trace_id").map(|id| id.as_str().expect("trace_id is a string").to_string());
    assert_eq!(trace_id, expected_trace_id(header), "traceparent {:?}", String::from_utf8_lossy(header));
});
