//! The access log's flow for one request or connection, as the filter runs it in `on_log`: read
//! what sampling needs, decide, and only for a kept record read the rest, build it and hand it to
//! the configured sinks.

use super::config::AccessLogConfig;
use super::host::{property, uint64, Host};
use super::published::Published;
use super::record::{connection_record, http_record, Read};
use super::sampling;

/// Every `envoy_log` line starts with this, so records can be told from Envoy's own lines.
pub const ENVOY_LOG_PREFIX: &str = "gateway-wasm access-log: ";

/// Where a finished record goes; the filter implements these over proxy-wasm.
pub trait Sinks {
    /// One line for Envoy's log: [`ENVOY_LOG_PREFIX`] and the record.
    fn envoy_log(&mut self, line: &str);
    /// The record, for filter state and so for Envoy's native access logger.
    fn filter_state(&mut self, record: &str);
    /// The record, for the worker's batch buffer.
    fn http(&mut self, record: String);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Logged,
    SampledOut,
}

pub fn log_http_request(
    config: &AccessLogConfig,
    host: &impl Host,
    sinks: &mut impl Sinks,
) -> Outcome {
    let read = Read {
        published: Published::read(host),
        request_id: host.property(property::REQUEST_ID),
        response_code: host
            .property(property::RESPONSE_CODE)
            .and_then(|b| uint64(&b)),
    };
    if !keeps(config, &read, read.request_id.as_deref()) {
        return Outcome::SampledOut;
    }
    deliver(config, http_record(config, host, &read), sinks);
    Outcome::Logged
}

/// A TCP connection has no request id; its connection id is the sampling key instead.
pub fn log_connection(
    config: &AccessLogConfig,
    host: &impl Host,
    sinks: &mut impl Sinks,
) -> Outcome {
    let read = Read {
        published: Published::read(host),
        ..Read::default()
    };
    let connection_id = host.property(property::CONNECTION_ID);
    if !keeps(config, &read, connection_id.as_deref()) {
        return Outcome::SampledOut;
    }
    deliver(config, connection_record(config, host, &read), sinks);
    Outcome::Logged
}

/// Denials and responses at or above the threshold are always kept; so is a record without a
/// sampling key, since no deterministic choice can be made for it and losing it would hide it.
fn keeps(config: &AccessLogConfig, read: &Read, key: Option<&[u8]>) -> bool {
    if read.published.denied {
        return true;
    }
    let threshold = u64::from(config.always_log_response_code_at_least);
    if read.response_code.is_some_and(|code| code >= threshold) {
        return true;
    }
    match key {
        Some(key) => sampling::keeps(config.sample_rate, key),
        None => true,
    }
}

fn deliver(config: &AccessLogConfig, record: String, sinks: &mut impl Sinks) {
    if config.sinks.envoy_log {
        sinks.envoy_log(&format!("{ENVOY_LOG_PREFIX}{record}"));
    }
    if config.sinks.filter_state {
        sinks.filter_state(&record);
    }
    if config.sinks.http.is_some() {
        sinks.http(record);
    }
}
