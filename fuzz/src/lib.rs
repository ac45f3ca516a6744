//! Test hosts for the fuzz targets: the core reads the proxy only through small traits, so each
//! flow runs here natively over values the fuzzer chooses, and the targets check invariants on what
//! comes out (no panic, valid JSON, nothing allowed that the configuration does not list).

use std::collections::HashMap;

use arbitrary::Arbitrary;
use gateway_core::access_log;
use gateway_core::allowlist;
use gateway_core::filter_state::{ALLOWLIST_DECISION, ALLOWLIST_REASON, ALLOWLIST_RULE, SUBSET};
use gateway_core::subset;

/// An HTTP request as the allowlist's request flow reads it.
#[derive(Debug, Arbitrary)]
pub struct Request {
    pub authority: Option<String>,
    pub downstream_tls: bool,
    pub sni: Option<String>,
}

impl allowlist::RequestHost for Request {
    fn authority(&self) -> Option<String> {
        self.authority.clone()
    }
    fn downstream_is_tls(&self) -> bool {
        self.downstream_tls
    }
    fn requested_server_name(&self) -> Option<String> {
        self.sni.clone()
    }
}

/// A TLS passthrough connection as the allowlist's connection flow reads it.
#[derive(Debug, Arbitrary)]
pub struct Connection {
    pub sni: Option<String>,
    pub port: Option<u16>,
}

impl allowlist::ConnectionHost for Connection {
    fn requested_server_name(&self) -> Option<String> {
        self.sni.clone()
    }
    fn destination_port(&self) -> Option<u16> {
        self.port
    }
}

/// Request headers as the subset tagger's flow reads them.
#[derive(Debug, Arbitrary)]
pub struct Headers {
    pub headers: Vec<(String, String)>,
    pub random: u64,
}

impl subset::RequestHost for Headers {
    fn request_headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }
    fn random_u64(&mut self) -> u64 {
        self.random
    }
}

/// Every property and filter-state key the access log reads (the core's `access_log::host::property`
/// paths, which the core does not export).
pub const PROPERTIES: &[&[&str]] = &[
    &["request", "time"],
    &["request", "method"],
    &["request", "path"],
    &["request", "protocol"],
    &["request", "id"],
    &["request", "useragent"],
    &["request", "duration"],
    &["request", "size"],
    &["response", "code"],
    &["response", "flags"],
    &["response", "code_details"],
    &["response", "size"],
    &["upstream", "address"],
    &["upstream", "transport_failure_reason"],
    &["xds", "cluster_name"],
    &["xds", "route_name"],
    &["source", "address"],
    &["destination", "address"],
    &["connection", "requested_server_name"],
    &["connection", "id"],
    &[ALLOWLIST_DECISION],
    &[ALLOWLIST_REASON],
    &[ALLOWLIST_RULE],
    &[SUBSET],
];

/// Request and response headers the record reads, besides configured ones.
pub const HEADERS: &[&str] = &[
    ":authority",
    "x-forwarded-for",
    "traceparent",
    "x-envoy-upstream-service-time",
    "x-tenant",
    "x-api-key",
    "authorization",
    "content-type",
];

/// One stream's facts, chosen by the fuzzer: a property or header is either absent or any bytes,
/// and integer properties are often the 8 little-endian bytes Envoy really hands over.
#[derive(Debug, Default)]
pub struct Stream {
    pub properties: HashMap<String, Vec<u8>>,
    pub request_headers: HashMap<String, Vec<u8>>,
    pub response_headers: HashMap<String, Vec<u8>>,
    pub now_nanos: Option<i64>,
}

#[derive(Debug, Arbitrary)]
enum Value {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
    /// A JSON object such as another filter publishes, with JSON whitespace (line breaks
    /// included) where a foreign writer may put it.
    Object { whitespace: Vec<u8>, key: String, value: String },
}

impl Value {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Value::Bytes(bytes) => bytes,
            Value::Int(value) => value.to_le_bytes().to_vec(),
            Value::Text(text) => text.into_bytes(),
            Value::Object { whitespace, key, value } => {
                let space: String = whitespace.iter().map(|b| [' ', '\n', '\t', '\r'][usize::from(b % 4)]).collect();
                let key = if key.is_empty() { "decision".to_string() } else { key };
                let (key, value) = (serde_json::Value::from(key), serde_json::Value::from(value));
                format!("{{{space}{key}{space}:{space}{value}{space}}}").into_bytes()
            }
        }
    }
}

impl<'a> Arbitrary<'a> for Stream {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut stream = Stream::default();
        for path in PROPERTIES {
            if u.arbitrary()? {
                let value: Value = u.arbitrary()?;
                stream.properties.insert(path.join("."), value.into_bytes());
            }
        }
        for name in HEADERS {
            if u.arbitrary()? {
                let value: Value = u.arbitrary()?;
                stream.request_headers.insert(name.to_string(), value.into_bytes());
            }
            if u.arbitrary()? {
                let value: Value = u.arbitrary()?;
                stream.response_headers.insert(name.to_string(), value.into_bytes());
            }
        }
        stream.now_nanos = u.arbitrary()?;
        Ok(stream)
    }
}

impl access_log::Host for Stream {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties.get(&path.join(".")).cloned()
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.request_headers.get(name).cloned()
    }
    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.response_headers.get(name).cloned()
    }
    fn now_nanos(&self) -> Option<i64> {
        self.now_nanos
    }
}

/// Collects what the access log hands to its sinks.
#[derive(Debug, Default)]
pub struct Sinks {
    pub records: Vec<String>,
}

impl access_log::Sinks for Sinks {
    fn envoy_log(&mut self, line: &str) {
        let record = line
            .strip_prefix(access_log::ENVOY_LOG_PREFIX)
            .unwrap_or_else(|| panic!("envoy log line without the prefix: {line:?}"));
        self.records.push(record.to_string());
    }
    fn filter_state(&mut self, record: &str) {
        self.records.push(record.to_string());
    }
    fn http(&mut self, record: String) {
        self.records.push(record);
    }
}

/// A record is one line of NDJSON: a JSON object, with no raw line break anywhere in it.
pub fn assert_record(record: &str) -> serde_json::Map<String, serde_json::Value> {
    assert!(
        !record.contains('\n') && !record.contains('\r'),
        "a record must be one line: {record:?}"
    );
    match serde_json::from_str::<serde_json::Value>(record) {
        Ok(serde_json::Value::Object(object)) => object,
        other => panic!("a record must be a JSON object: {record:?}: {other:?}"),
    }
}
