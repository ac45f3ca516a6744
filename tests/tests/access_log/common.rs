//! A gateway for access-log tests: Envoy with the filters under test, a native file access logger
//! that prints the access-log record from filter state, and a collector cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use e2e::client::{self, HttpRequest, HttpResponse, Protocol};
use e2e::envoy::{Envoy, EnvoyOptions};
use e2e::json_lines;
use e2e::paths;
use e2e::template::{self, Vars};
use e2e::wasm_filter::{http_filters_yaml, WasmFilter};
use gateway_core::access_log::ENVOY_LOG_PREFIX;
use serde_json::Value;

/// How long a test waits for something Envoy does in the background (a record written, a batch
/// sent): generous, since the machine is shared; every wait ends as soon as the thing happens.
pub const WAIT: Duration = Duration::from_secs(20);

/// Records whose attributes Envoy could not hand over in one evaluation.
pub const ATTRIBUTES_READ_ONE_BY_ONE: &str = "wasmcustom.access_log.attributes_read_one_by_one";

pub struct Gateway {
    pub envoy: Envoy,
    pub addr: SocketAddr,
    /// Where the native file access logger writes `%FILTER_STATE(wasm.gateway_wasm.access_log:PLAIN)%`.
    pub access_log: PathBuf,
    /// Where a second native logger writes Envoy's own view of each request (Istio's JSON format).
    pub envoy_view: PathBuf,
}

impl Gateway {
    /// Starts Envoy with `filters` in front of the upstream on `upstream_port`, with the
    /// `collector` cluster on `collector_port`.
    pub fn start(
        name: &str,
        filters: &[WasmFilter],
        upstream_port: u16,
        collector_port: u16,
    ) -> Gateway {
        let work_dir = Envoy::work_dir(name).unwrap();
        let access_log = work_dir.path().join("access.log");
        let envoy_view = work_dir.path().join("envoy-view.log");
        let vars = Vars::new()
            .set("HTTP_FILTERS", http_filters_yaml(filters))
            .set("UPSTREAM_PORT", upstream_port)
            .set("COLLECTOR_PORT", collector_port)
            .set(
                "ACCESS_LOG_PATH",
                json_string(&access_log.display().to_string()),
            )
            .set(
                "ENVOY_VIEW_PATH",
                json_string(&envoy_view.display().to_string()),
            );
        let bootstrap = template::render_file(
            &paths::test_configs_dir().join("access-log-gateway.yaml"),
            &vars,
        )
        .unwrap();
        let envoy = Envoy::start_in(EnvoyOptions::new(name, bootstrap), work_dir).unwrap();
        let addr = envoy.listener_addr("gateway").unwrap();
        Gateway {
            envoy,
            addr,
            access_log,
            envoy_view,
        }
    }

    pub fn send(&self, protocol: Protocol, request: &HttpRequest) -> HttpResponse {
        client::send(self.addr, protocol, None, request).unwrap_or_else(|error| {
            panic!(
                "{protocol:?} {}: {error}\n{}",
                request.path,
                self.log_tail()
            )
        })
    }

    /// Waits until the native logger's file holds `count` records; every line must be JSON.
    pub fn file_records(&self, count: usize) -> Vec<Value> {
        json_lines::wait_for_file(&self.access_log, count, WAIT)
            .unwrap_or_else(|error| panic!("{error}\n{}", self.log_tail()))
    }

    /// Envoy's own view of the first `count` requests, from its native JSON logger.
    pub fn envoy_view(&self, count: usize) -> Vec<Value> {
        json_lines::wait_for_file(&self.envoy_view, count, WAIT)
            .unwrap_or_else(|error| panic!("{error}\n{}", self.log_tail()))
    }

    /// The `envoy_log` sink's records in Envoy's log so far.
    pub fn envoy_log_records(&self) -> Vec<Value> {
        json_lines::after_prefix(&self.envoy.log(), ENVOY_LOG_PREFIX)
            .unwrap_or_else(|error| panic!("{error}\n{}", self.log_tail()))
    }

    /// Waits until `wasmcustom.access_log.records` reaches `count`, then returns the `envoy_log`
    /// sink's records.
    pub fn wait_for_envoy_log_records(&self, count: u64) -> Vec<Value> {
        self.wait_for_stat("wasmcustom.access_log.records", |n| n >= count);
        // The counter is bumped after the line is logged; the log file may lag a moment.
        self.envoy
            .wait_for_log(ENVOY_LOG_PREFIX, WAIT)
            .unwrap_or_else(|error| panic!("{error}"));
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let records = self.envoy_log_records();
            if records.len() as u64 >= count || std::time::Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the stat satisfies `done`; its value.
    pub fn wait_for_stat(&self, name: &str, done: impl Fn(u64) -> bool) -> u64 {
        self.envoy
            .wait_for_stat(name, WAIT, done)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Polls `done` until it holds; fails with `what` and Envoy's log when [`WAIT`] has passed.
    pub fn wait_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "waited {WAIT:?} for {what}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Envoy handed every record's attributes over in one evaluation of the attribute list: none
    /// was read one by one. The counter must exist, so a misspelt name cannot pass.
    pub fn assert_attributes_read_together(&self) {
        let one_by_one = self.envoy.stat(ATTRIBUTES_READ_ONE_BY_ONE).unwrap();
        assert_eq!(one_by_one, Some(0), "{}", self.log_tail());
    }

    /// A stat's current value, 0 when Envoy has not defined it.
    pub fn stat(&self, name: &str) -> u64 {
        self.envoy.stat(name).unwrap().unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        self.envoy.log_tail()
    }
}

/// Field `key` of a record as text, failing with the record when it is missing or not a string.
pub fn text<'a>(record: &'a Value, key: &str) -> &'a str {
    record[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {record}"))
}

/// Field `key` of a record as a number, failing with the record when it is missing or not one.
pub fn number(record: &Value, key: &str) -> u64 {
    record[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a non-negative integer in {record}"))
}

/// No field is written as Envoy's `-` placeholder or as null: absent values are left out.
pub fn assert_no_placeholders(record: &Value) {
    let object = record
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {record}"));
    for (key, value) in object {
        assert!(
            value != "-" && !value.is_null() && value != "",
            "{key} is {value} in {record}"
        );
    }
}

/// The record says what Envoy's own access logger says about the same request, field for field
/// (Istio's JSON format, so the names are the same): each value Envoy has is in the record, equal,
/// and each value Envoy has not (`null` or `-`) is absent from it. `skip` names fields a test
/// changes on purpose (redaction).
pub fn assert_agrees_with_envoy(record: &Value, envoy: &Value, skip: &[&str]) {
    let fields = envoy
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {envoy}"));
    for (key, expected) in fields {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let actual = record.get(key);
        let context = format!("{key}: record {record}\nEnvoy {envoy}");
        match expected {
            Value::Null => assert!(actual.is_none(), "{context}"),
            Value::String(text) if text == "-" => assert!(actual.is_none(), "{context}"),
            // Envoy's JSON logger writes some numbers as text (upstream_service_time); compare values.
            Value::String(text) => {
                let actual = actual.unwrap_or_else(|| panic!("missing, {context}"));
                let actual_text = actual
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| actual.to_string());
                assert_eq!(&actual_text, text, "{context}");
            }
            Value::Number(number) => {
                assert_eq!(actual.and_then(Value::as_u64), number.as_u64(), "{context}")
            }
            other => panic!("unexpected {other} from Envoy, {context}"),
        }
    }
}

fn json_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}
