//! The record: one JSON object per HTTP request or TCP connection, with the field names of Istio's
//! JSON access log (so existing dashboards and parsers work) plus ours: `gateway`, `trace_id`,
//! `allowlist`, `subset`, and the configured `request_headers` / `response_headers`. A value the
//! host does not have is left out, never written as `"-"`.

use super::config::AccessLogConfig;
use super::host::{int64, property, uint64, Host, UPSTREAM_SERVICE_TIME_HEADER};
use super::published::{allowlist, subset, Published};
use super::redaction::{redact_query, REDACTED};
use super::response_flags::short_codes;
use super::time::rfc3339_millis;
use super::traceparent;
use crate::json::JsonObject;

/// Records are a few hundred bytes; one allocation up front covers most.
const RECORD_CAPACITY: usize = 768;

const NANOS_PER_MILLI: i64 = 1_000_000;

/// What the flow has already read to decide on sampling, handed over so nothing is read twice.
#[derive(Debug, Default)]
pub struct Read {
    pub published: Published,
    /// `request.id` for HTTP; absent for TCP.
    pub request_id: Option<Vec<u8>>,
    pub response_code: Option<u64>,
}

pub fn http_record(config: &AccessLogConfig, host: &impl Host, read: &Read) -> String {
    let mut record = JsonObject::with_capacity(RECORD_CAPACITY);
    let start = start_time(&mut record, host);
    string_property(&mut record, host, "method", property::REQUEST_METHOD);
    if let Some(path) = host.property(property::REQUEST_PATH) {
        let path = String::from_utf8_lossy(&path);
        record.string(
            "path",
            &redact_query(&path, |name| config.redacts_query_param(name)),
        );
    }
    string_property(&mut record, host, "protocol", property::REQUEST_PROTOCOL);
    if let Some(code) = read.response_code {
        record.number("response_code", code);
    }
    response_flags(&mut record, host);
    string_property(
        &mut record,
        host,
        "response_code_details",
        property::RESPONSE_CODE_DETAILS,
    );
    number_property(&mut record, host, "bytes_received", property::REQUEST_SIZE);
    number_property(&mut record, host, "bytes_sent", property::RESPONSE_SIZE);
    duration(&mut record, host, start);
    if let Some(time) = host.response_header(UPSTREAM_SERVICE_TIME_HEADER) {
        // Istio writes this header's value, a string of milliseconds.
        record.bytes("upstream_service_time", &time);
    }
    header_field(
        &mut record,
        config,
        "x_forwarded_for",
        "x-forwarded-for",
        || host.request_header("x-forwarded-for"),
    );
    header_field(&mut record, config, "user_agent", "user-agent", || {
        host.property(property::REQUEST_USER_AGENT)
    });
    if let Some(id) = &read.request_id {
        record.bytes("request_id", id);
    }
    if let Some(authority) = host.request_header(":authority") {
        record.bytes("authority", &authority);
    }
    upstream_and_connection(&mut record, host);
    string_property(&mut record, host, "route_name", property::ROUTE_NAME);
    ours(&mut record, config, host, &read.published);
    if let Some(trace_id) = host
        .request_header("traceparent")
        .as_deref()
        .and_then(traceparent::trace_id)
    {
        record.string("trace_id", trace_id);
    }
    extra_headers(
        &mut record,
        config,
        "request_headers",
        &config.request_headers,
        |name| host.request_header(name),
    );
    extra_headers(
        &mut record,
        config,
        "response_headers",
        &config.response_headers,
        |name| host.response_header(name),
    );
    record.finish()
}

/// Writes `start_time` from `request.time` (also set for TCP connections); returns the instant.
fn start_time(record: &mut JsonObject, host: &impl Host) -> Option<i64> {
    let start = host
        .property(property::REQUEST_TIME)
        .and_then(|b| int64(&b));
    if let Some(start) = start {
        record.string("start_time", &rfc3339_millis(start));
    }
    start
}

/// A TCP connection (TLS passthrough, for instance) as Istio logs one: no request, but bytes each
/// way, duration, upstream and SNI.
pub fn connection_record(config: &AccessLogConfig, host: &impl Host, read: &Read) -> String {
    let mut record = JsonObject::with_capacity(RECORD_CAPACITY);
    let start = start_time(&mut record, host);
    response_flags(&mut record, host);
    number_property(&mut record, host, "bytes_received", property::REQUEST_SIZE);
    number_property(&mut record, host, "bytes_sent", property::RESPONSE_SIZE);
    duration(&mut record, host, start);
    upstream_and_connection(&mut record, host);
    ours(&mut record, config, host, &read.published);
    record.finish()
}

fn string_property(record: &mut JsonObject, host: &impl Host, key: &str, path: &[&str]) {
    if let Some(value) = host.property(path) {
        record.bytes(key, &value);
    }
}

fn number_property(record: &mut JsonObject, host: &impl Host, key: &str, path: &[&str]) {
    if let Some(value) = host.property(path).and_then(|b| uint64(&b)) {
        record.number(key, value);
    }
}

fn response_flags(record: &mut JsonObject, host: &impl Host) {
    let flags = host
        .property(property::RESPONSE_FLAGS)
        .and_then(|b| uint64(&b));
    if let Some(codes) = flags.and_then(short_codes) {
        record.string("response_flags", &codes);
    }
}

/// Milliseconds, truncated as Envoy's `%DURATION%` does. Envoy sets `request.duration` when the
/// request completes; a TCP connection has none, so its duration runs from the start to now.
fn duration(record: &mut JsonObject, host: &impl Host, start: Option<i64>) {
    let nanos = host
        .property(property::REQUEST_DURATION)
        .and_then(|b| int64(&b))
        .or_else(|| Some(host.now_nanos()?.saturating_sub(start?)));
    if let Some(millis) = nanos.and_then(|n| u64::try_from(n / NANOS_PER_MILLI).ok()) {
        record.number("duration", millis);
    }
}

fn upstream_and_connection(record: &mut JsonObject, host: &impl Host) {
    string_property(record, host, "upstream_host", property::UPSTREAM_ADDRESS);
    string_property(record, host, "upstream_cluster", property::CLUSTER_NAME);
    if let Some(reason) = host.property(property::UPSTREAM_TRANSPORT_FAILURE_REASON) {
        // Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%`, which Istio logs, writes spaces as
        // underscores (`delayed_connect_error:_Connection_refused`); the attribute has spaces.
        // Dashboards and alerts match Istio's value, so the record writes it the same way.
        record.string(
            "upstream_transport_failure_reason",
            &String::from_utf8_lossy(&reason).replace(' ', "_"),
        );
    }
    string_property(
        record,
        host,
        "downstream_local_address",
        property::DESTINATION_ADDRESS,
    );
    string_property(
        record,
        host,
        "downstream_remote_address",
        property::SOURCE_ADDRESS,
    );
    string_property(
        record,
        host,
        "requested_server_name",
        property::REQUESTED_SERVER_NAME,
    );
}

fn ours(
    record: &mut JsonObject,
    config: &AccessLogConfig,
    host: &impl Host,
    published: &Published,
) {
    if let Some(gateway) = &config.gateway {
        record.string("gateway", gateway);
    }
    if let Some(allowlist) = allowlist(host, published) {
        record.raw("allowlist", &allowlist);
    }
    if let Some(subset) = subset(host) {
        record.bytes("subset", &subset);
    }
}

/// A record field that comes from a header the configuration may redact. A redacted header that
/// was sent still shows, as `"[REDACTED]"`, so the record tells it was there.
fn header_field(
    record: &mut JsonObject,
    config: &AccessLogConfig,
    key: &str,
    header: &str,
    read: impl FnOnce() -> Option<Vec<u8>>,
) {
    if let Some(value) = read() {
        if config.redacts_header(header) {
            record.string(key, REDACTED);
        } else {
            record.bytes(key, &value);
        }
    }
}

fn extra_headers(
    record: &mut JsonObject,
    config: &AccessLogConfig,
    key: &str,
    names: &[String],
    read: impl Fn(&str) -> Option<Vec<u8>>,
) {
    let mut headers = JsonObject::default();
    for name in names {
        header_field(&mut headers, config, name, name, || read(name));
    }
    if !headers.is_empty() {
        record.raw(key, &headers.finish());
    }
}
