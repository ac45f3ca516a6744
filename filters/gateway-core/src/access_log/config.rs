//! access-log: the plugin configuration, its defaults and its validation.
//!
//! ```json
//! {
//!   "gateway": "egress",
//!   "sinks": {
//!     "envoy_log": false,
//!     "filter_state": true,
//!     "http": {"cluster": "outbound|4318||collector.observability.svc.cluster.local", "path": "/logs"}
//!   },
//!   "sample_rate": 0.1,
//!   "always_log_response_code_at_least": 500,
//!   "redact_headers": ["x-api-key"],
//!   "redact_query_params": ["token"],
//!   "request_headers": ["x-tenant"],
//!   "response_headers": ["content-type"]
//! }
//! ```

use serde::Deserialize;

use crate::config::{parse_json, ConfigErrors, ErrorCollector};

/// Headers that carry credentials: whatever the configuration says, they are never logged in clear.
pub const ALWAYS_REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Label written into every record, such as `ingress` or `egress`.
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub sinks: SinksConfig,
    /// Share of records kept, decided by a hash of the request id (of the connection id for TCP).
    #[serde(default = "AccessLogConfig::default_sample_rate")]
    pub sample_rate: f64,
    /// Responses with this code or above are logged whatever the sample rate; 600 turns it off.
    #[serde(default = "AccessLogConfig::default_always_log_response_code_at_least")]
    pub always_log_response_code_at_least: u32,
    /// Headers written as `"[REDACTED]"`, on top of [`ALWAYS_REDACTED_HEADERS`]; any case.
    #[serde(default)]
    pub redact_headers: Vec<String>,
    /// Query parameters whose value is replaced by `[REDACTED]` inside `path`; any case.
    #[serde(default)]
    pub redact_query_params: Vec<String>,
    /// Extra request headers written into the record's `request_headers` object.
    #[serde(default)]
    pub request_headers: Vec<String>,
    /// Extra response headers written into the record's `response_headers` object.
    #[serde(default)]
    pub response_headers: Vec<String>,
}

/// Where records go; any combination. Without a `sinks` object, records go to Envoy's log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    #[serde(default)]
    pub envoy_log: bool,
    #[serde(default)]
    pub filter_state: bool,
    #[serde(default)]
    pub http: Option<HttpSinkConfig>,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            envoy_log: true,
            filter_state: false,
            http: None,
        }
    }
}

/// NDJSON batches POSTed to an Envoy cluster by the root context of each worker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The Envoy cluster of the collector (in Istio, `outbound|PORT||HOST`).
    pub cluster: String,
    /// `:authority` of the POST; the cluster name when absent.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "HttpSinkConfig::default_path")]
    pub path: String,
    /// A partial batch waits at most this long.
    #[serde(default = "HttpSinkConfig::default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Records per POST; a batch this full is sent at the next check without waiting.
    #[serde(default = "HttpSinkConfig::default_batch_size")]
    pub batch_size: usize,
    /// Records a worker holds at most; what does not fit is dropped and counted.
    #[serde(default = "HttpSinkConfig::default_max_buffered_records")]
    pub max_buffered_records: usize,
    #[serde(default = "HttpSinkConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// POSTs a worker has open at most; a slow collector makes records wait, then drop.
    #[serde(default = "HttpSinkConfig::default_max_in_flight")]
    pub max_in_flight: usize,
}

impl HttpSinkConfig {
    fn default_path() -> String {
        "/".to_string()
    }
    fn default_flush_interval_ms() -> u64 {
        1000
    }
    fn default_batch_size() -> usize {
        100
    }
    fn default_max_buffered_records() -> usize {
        1000
    }
    fn default_timeout_ms() -> u64 {
        5000
    }
    fn default_max_in_flight() -> usize {
        2
    }

    pub fn authority(&self) -> &str {
        self.authority.as_deref().unwrap_or(&self.cluster)
    }

    fn validate(&self, errors: &mut ErrorCollector) {
        if self.cluster.is_empty() {
            errors.push("sinks.http.cluster", "must not be empty");
        }
        if let Some(authority) = &self.authority {
            if authority.is_empty() || !is_visible_ascii(authority) {
                errors.push(
                    "sinks.http.authority",
                    format!("{authority:?} is not a host[:port]"),
                );
            }
        }
        if !self.path.starts_with('/') || !is_visible_ascii(&self.path) {
            errors.push(
                "sinks.http.path",
                format!("{:?} is not an absolute path of visible ASCII", self.path),
            );
        }
        for (field, value, max) in [
            ("flush_interval_ms", self.flush_interval_ms, 3_600_000),
            ("timeout_ms", self.timeout_ms, 600_000),
        ] {
            if !(1..=max).contains(&value) {
                errors.push(
                    format!("sinks.http.{field}"),
                    format!("{value} is not between 1 and {max}"),
                );
            }
        }
        if self.batch_size == 0 {
            errors.push("sinks.http.batch_size", "must be at least 1");
        }
        if self.max_buffered_records < self.batch_size {
            errors.push(
                "sinks.http.max_buffered_records",
                format!(
                    "{} is smaller than batch_size ({})",
                    self.max_buffered_records, self.batch_size
                ),
            );
        }
        if self.max_in_flight == 0 {
            errors.push("sinks.http.max_in_flight", "must be at least 1");
        }
    }
}

impl AccessLogConfig {
    fn default_sample_rate() -> f64 {
        1.0
    }
    fn default_always_log_response_code_at_least() -> u32 {
        500
    }

    /// Whether sampling keeps every record (`sample_rate` 1, the default): then nothing needs to be
    /// read before the record to decide.
    pub fn keeps_every_record(&self) -> bool {
        // Sampling keeps a record when its key's fraction, in [0, 1), is below the rate.
        self.sample_rate >= 1.0
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let mut config: Self = parse_json(bytes)?;
        let mut errors = ErrorCollector::default();
        if let Some(gateway) = &config.gateway {
            if gateway.is_empty() {
                errors.push("gateway", "must not be empty");
            }
        }
        let sinks = &config.sinks;
        if !sinks.envoy_log && !sinks.filter_state && sinks.http.is_none() {
            errors.push("sinks", "no sink is enabled: records would go nowhere");
        }
        if let Some(http) = &sinks.http {
            http.validate(&mut errors);
        }
        if !(0.0..=1.0).contains(&config.sample_rate) {
            errors.push(
                "sample_rate",
                format!("{} is not between 0 and 1", config.sample_rate),
            );
        }
        if !(100..=600).contains(&config.always_log_response_code_at_least) {
            errors.push(
                "always_log_response_code_at_least",
                format!(
                    "{} is not between 100 and 600",
                    config.always_log_response_code_at_least
                ),
            );
        }
        for (field, names) in [
            ("redact_headers", &mut config.redact_headers),
            ("request_headers", &mut config.request_headers),
            ("response_headers", &mut config.response_headers),
        ] {
            normalise_header_names(field, names, &mut errors);
        }
        for (index, name) in config.redact_query_params.iter_mut().enumerate() {
            if name.is_empty() {
                errors.push(format!("redact_query_params[{index}]"), "must not be empty");
            }
            name.make_ascii_lowercase();
        }
        errors.finish(config)
    }

    /// Whether `name` (lowercase) is written as `"[REDACTED]"`.
    pub fn redacts_header(&self, name: &str) -> bool {
        ALWAYS_REDACTED_HEADERS.contains(&name) || self.redact_headers.iter().any(|h| h == name)
    }

    /// Whether the query parameter `name` (decoded) is redacted inside `path`.
    pub fn redacts_query_param(&self, name: &str) -> bool {
        self.redact_query_params
            .iter()
            .any(|param| param.eq_ignore_ascii_case(name))
    }
}

/// Lowercases header names (Envoy stores them lowercase, users write `X-Api-Key`) and rejects what
/// cannot be a header name, pseudo-headers included: their values are already record fields.
fn normalise_header_names(field: &str, names: &mut [String], errors: &mut ErrorCollector) {
    for (index, name) in names.iter_mut().enumerate() {
        if !is_header_name(name) {
            errors.push(
                format!("{field}[{index}]"),
                format!("{name:?} is not an HTTP header name"),
            );
        }
        name.make_ascii_lowercase();
    }
}

/// An RFC 9110 token: what Envoy accepts as a (non-pseudo) header name.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_visible_ascii(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn errors_of(json: &str) -> Vec<(String, String)> {
        AccessLogConfig::from_json(json.as_bytes())
            .unwrap_err()
            .iter()
            .map(|e| (e.field.clone(), e.reason.clone()))
            .collect()
    }

    #[test]
    fn empty_configuration_has_the_documented_defaults() {
        let config = AccessLogConfig::from_json(b"").unwrap();
        assert_eq!(config.gateway, None);
        assert_eq!(
            config.sinks,
            SinksConfig {
                envoy_log: true,
                filter_state: false,
                http: None
            }
        );
        assert_eq!(config.sample_rate, 1.0);
        assert_eq!(config.always_log_response_code_at_least, 500);
        assert!(config.redact_headers.is_empty() && config.redact_query_params.is_empty());
        assert!(config.request_headers.is_empty() && config.response_headers.is_empty());
    }

    #[test]
    fn http_sink_defaults() {
        let config =
            AccessLogConfig::from_json(br#"{"sinks":{"http":{"cluster":"collector"}}}"#).unwrap();
        let http = config.sinks.http.unwrap();
        assert!(!config.sinks.envoy_log, "naming sinks replaces the default");
        assert_eq!(http.authority(), "collector");
        assert_eq!(http.path, "/");
        assert_eq!(
            (
                http.flush_interval_ms,
                http.batch_size,
                http.max_buffered_records,
                http.timeout_ms,
                http.max_in_flight
            ),
            (1000, 100, 1000, 5000, 2)
        );
    }

    #[test]
    fn gateway_label_is_read() {
        let config = AccessLogConfig::from_json(br#"{"gateway":"egress"}"#).unwrap();
        assert_eq!(config.gateway.as_deref(), Some("egress"));
    }

    #[test]
    fn invalid_values_name_their_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"sample_rate": 1.5}"#,
                "sample_rate",
                "1.5 is not between 0 and 1",
            ),
            (
                r#"{"sample_rate": -0.1}"#,
                "sample_rate",
                "-0.1 is not between 0 and 1",
            ),
            (r#"{"gateway": ""}"#, "gateway", "must not be empty"),
            (
                r#"{"sinks": {}}"#,
                "sinks",
                "no sink is enabled: records would go nowhere",
            ),
            (
                r#"{"always_log_response_code_at_least": 99}"#,
                "always_log_response_code_at_least",
                "99 is not between 100 and 600",
            ),
            (
                r#"{"redact_headers": ["ok", "bad name"]}"#,
                "redact_headers[1]",
                "\"bad name\" is not an HTTP header name",
            ),
            (
                r#"{"request_headers": [":authority"]}"#,
                "request_headers[0]",
                "\":authority\" is not an HTTP header name",
            ),
            (
                r#"{"response_headers": [""]}"#,
                "response_headers[0]",
                "\"\" is not an HTTP header name",
            ),
            (
                r#"{"redact_query_params": ["a", ""]}"#,
                "redact_query_params[1]",
                "must not be empty",
            ),
            (
                r#"{"sinks": {"http": {"cluster": ""}}}"#,
                "sinks.http.cluster",
                "must not be empty",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "path": "logs"}}}"#,
                "sinks.http.path",
                "\"logs\" is not an absolute path of visible ASCII",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "authority": "a b"}}}"#,
                "sinks.http.authority",
                "\"a b\" is not a host[:port]",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "flush_interval_ms": 0}}}"#,
                "sinks.http.flush_interval_ms",
                "0 is not between 1 and 3600000",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "timeout_ms": 600001}}}"#,
                "sinks.http.timeout_ms",
                "600001 is not between 1 and 600000",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "batch_size": 0}}}"#,
                "sinks.http.batch_size",
                "must be at least 1",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "batch_size": 10, "max_buffered_records": 9}}}"#,
                "sinks.http.max_buffered_records",
                "9 is smaller than batch_size (10)",
            ),
            (
                r#"{"sinks": {"http": {"cluster": "c", "max_in_flight": 0}}}"#,
                "sinks.http.max_in_flight",
                "must be at least 1",
            ),
        ];
        for (json, field, reason) in cases {
            assert_eq!(
                errors_of(json),
                vec![(field.to_string(), reason.to_string())],
                "{json}"
            );
        }
    }

    #[test]
    fn structural_errors_name_their_field() {
        let cases = [
            (r#"{"sinks": {"http": {}}}"#, "sinks.http"),
            (r#"{"sinks": {"syslog": true}}"#, "sinks.syslog"),
            (r#"{"sample_rate": "all"}"#, "sample_rate"),
            (r#"{"redact_headers": "cookie"}"#, "redact_headers"),
        ];
        for (json, field) in cases {
            let errors = errors_of(json);
            assert_eq!(errors.len(), 1, "{json}: {errors:?}");
            assert_eq!(errors[0].0, field, "{json}: {errors:?}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let fields: Vec<String> = errors_of(
            r#"{"sample_rate": 2, "gateway": "", "sinks": {"http": {"cluster": "", "batch_size": 0}}}"#,
        )
        .into_iter()
        .map(|(field, _)| field)
        .collect();
        assert_eq!(
            fields,
            [
                "gateway",
                "sinks.http.cluster",
                "sinks.http.batch_size",
                "sample_rate"
            ]
        );
    }

    #[test]
    fn header_names_are_lowercased_and_credentials_always_redacted() {
        let config = AccessLogConfig::from_json(
            br#"{"redact_headers": ["X-Api-Key"], "request_headers": ["X-Tenant"]}"#,
        )
        .unwrap();
        assert_eq!(config.request_headers, ["x-tenant"]);
        let cases = [
            ("x-api-key", true),
            ("authorization", true),
            ("cookie", true),
            ("set-cookie", true),
            ("proxy-authorization", true),
            ("x-tenant", false),
            ("user-agent", false),
        ];
        for (name, redacted) in cases {
            assert_eq!(config.redacts_header(name), redacted, "{name}");
        }
    }

    #[test]
    fn query_params_match_without_case() {
        let config = AccessLogConfig::from_json(br#"{"redact_query_params": ["Token"]}"#).unwrap();
        for (name, redacted) in [
            ("token", true),
            ("TOKEN", true),
            ("tokens", false),
            ("", false),
        ] {
            assert_eq!(config.redacts_query_param(name), redacted, "{name}");
        }
    }
}

#[cfg(test)]
mod schema_tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use std::collections::BTreeSet;

    use super::*;

    const SCHEMA: &str = include_str!("../../../../schemas/access-log.schema.json");

    fn schema() -> serde_json::Value {
        serde_json::from_str(SCHEMA).unwrap()
    }

    #[test]
    fn schema_examples_are_accepted() {
        for example in schema()["examples"].as_array().unwrap() {
            AccessLogConfig::from_json(example.to_string().as_bytes())
                .unwrap_or_else(|errors| panic!("{example}: {errors}"));
        }
    }

    /// The schema lists exactly the fields the parser accepts: an unknown field's error names the
    /// accepted ones, which must be the schema's properties for that object.
    #[test]
    fn schema_properties_are_the_accepted_fields() {
        let schema = schema();
        let cases = [
            ("/properties", serde_json::json!({"zzz": 1})),
            (
                "/properties/sinks/properties",
                serde_json::json!({"sinks": {"zzz": 1}}),
            ),
            (
                "/properties/sinks/properties/http/properties",
                serde_json::json!({"sinks": {"http": {"cluster": "c", "zzz": 1}}}),
            ),
        ];
        for (pointer, config) in cases {
            let listed: BTreeSet<String> = schema
                .pointer(pointer)
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            let errors = AccessLogConfig::from_json(config.to_string().as_bytes()).unwrap_err();
            let reason = &errors.0[0].reason;
            let accepted = crate::config::fields_expected_in(reason);
            assert_eq!(accepted, listed, "{pointer}: {reason}");
        }
    }

    /// Every default the schema states is the parser's default.
    #[test]
    fn schema_defaults_are_the_parsers() {
        let schema = schema();
        let defaults = AccessLogConfig::from_json(b"{}").unwrap();
        let top = &schema["properties"];
        assert_eq!(top["sample_rate"]["default"], defaults.sample_rate);
        assert_eq!(
            top["always_log_response_code_at_least"]["default"],
            defaults.always_log_response_code_at_least
        );
        assert_eq!(
            top["sinks"]["default"]["envoy_log"],
            defaults.sinks.envoy_log
        );
        let http = AccessLogConfig::from_json(br#"{"sinks": {"http": {"cluster": "c"}}}"#)
            .unwrap()
            .sinks
            .http
            .unwrap();
        let listed = &top["sinks"]["properties"]["http"]["properties"];
        assert_eq!(listed["path"]["default"], http.path);
        assert_eq!(
            listed["flush_interval_ms"]["default"],
            http.flush_interval_ms
        );
        assert_eq!(listed["batch_size"]["default"], http.batch_size);
        assert_eq!(
            listed["max_buffered_records"]["default"],
            http.max_buffered_records
        );
        assert_eq!(listed["timeout_ms"]["default"], http.timeout_ms);
        assert_eq!(listed["max_in_flight"]["default"], http.max_in_flight);
    }
}
