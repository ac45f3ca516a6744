//! access-log: one structured JSON record per HTTP request or TCP connection, sampled and
//! redacted as configured, for Envoy's log, filter state (Envoy's native access logger) and an
//! HTTP collector.
//!
//! The filter crate only implements [`Host`] and [`Sinks`] over proxy-wasm and calls
//! [`log_http_request`] or [`log_connection`] in `on_log`; the `http` sink's [`BatchBuffer`] lives
//! in its root context.

mod attribute_list;
mod batch;
mod config;
mod flow;
mod host;
mod published;
mod record;
mod redaction;
mod response_flags;
mod sampling;
mod time;
mod traceparent;

#[cfg(test)]
mod flow_tests;

pub use attribute_list::{AttributeList, AttributeValues};
pub use batch::{Batch, BatchBuffer, BatchCounts};
pub use config::{AccessLogConfig, HttpSinkConfig, SinksConfig};
pub use flow::{log_connection, log_http_request, Outcome, Sinks, ENVOY_LOG_PREFIX};
pub use host::{property, Host};
