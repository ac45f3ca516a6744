//! The access-log flow end to end, natively: a test host stands in for Envoy's host calls (which
//! cannot run outside Envoy) with the values Envoy 1.40 actually returned for a proxied request.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;
use crate::filter_state::{ALLOWLIST_DECISION, ALLOWLIST_REASON, ALLOWLIST_RULE, SUBSET};

/// The host of one stream, as maps; it remembers every read so tests can check that each value is
/// read at most once and that a sampled-out record costs only the reads sampling needs.
#[derive(Default)]
struct TestHost {
    properties: HashMap<String, Vec<u8>>,
    request_headers: HashMap<String, Vec<u8>>,
    response_headers: HashMap<String, Vec<u8>>,
    now_nanos: Option<i64>,
    reads: RefCell<Vec<String>>,
}

impl Host for TestHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key = path.join(".");
        self.reads.borrow_mut().push(key.clone());
        self.properties.get(&key).cloned()
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.reads
            .borrow_mut()
            .push(format!("request header {name}"));
        self.request_headers.get(name).cloned()
    }
    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.reads
            .borrow_mut()
            .push(format!("response header {name}"));
        self.response_headers.get(name).cloned()
    }
    fn now_nanos(&self) -> Option<i64> {
        self.reads.borrow_mut().push("now".into());
        self.now_nanos
    }
}

impl TestHost {
    fn with(mut self, path: &str, value: impl Into<Vec<u8>>) -> Self {
        self.properties.insert(path.into(), value.into());
        self
    }
    fn with_int(self, path: &str, value: i64) -> Self {
        self.with(path, value.to_le_bytes())
    }
    fn without(mut self, path: &str) -> Self {
        self.properties.remove(path);
        self
    }
    fn with_request_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.request_headers.insert(name.into(), value.into());
        self
    }
    fn with_response_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.response_headers.insert(name.into(), value.into());
        self
    }

    /// A GET proxied to an upstream, with the values Envoy 1.40 gave for it.
    fn proxied_request() -> Self {
        TestHost::default()
            .with_int(
                "request.time",
                i64::from_le_bytes([48, 27, 44, 249, 46, 132, 235, 24]),
            )
            .with("request.method", "GET")
            .with("request.path", "/up/envoy.yaml?a=1")
            .with("request.protocol", "HTTP/1.1")
            .with("request.id", "ae1828af-fa79-4273-81b1-7b08b1c7d2f8")
            .with("request.useragent", "curl/7.88.1")
            .with_int("request.duration", 13_141_752)
            .with_int("request.size", 0)
            .with_int("response.code", 404)
            .with_int("response.flags", 0)
            .with("response.code_details", "via_upstream")
            .with_int("response.size", 335)
            .with("upstream.address", "127.0.0.1:28982")
            .with("xds.cluster_name", "upstream")
            .with("xds.route_name", "up")
            .with("source.address", "1.2.3.4:0")
            .with("destination.address", "127.0.0.1:28980")
            .with_int("connection.id", 2)
            .with_request_header(":authority", "127.0.0.1:28980")
            .with_request_header("x-forwarded-for", "1.2.3.4")
            .with_request_header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .with_response_header("x-envoy-upstream-service-time", "10")
    }

    /// A TCP connection through tcp_proxy, with the values Envoy 1.40 gave for it.
    fn tcp_connection() -> Self {
        TestHost::default()
            .with_int("request.time", 1_795_674_231_222_372_000)
            .with_int("request.size", 18)
            .with_int("response.flags", 0)
            .with_int("response.size", 763)
            .with("upstream.address", "127.0.0.1:28982")
            .with("xds.cluster_name", "upstream")
            .with("source.address", "127.0.0.1:46432")
            .with("destination.address", "127.0.0.1:28981")
            .with("connection.requested_server_name", "api.example.com")
            .with_int("connection.id", 2)
    }

    fn reads(&self) -> Vec<String> {
        self.reads.borrow().clone()
    }
}

#[derive(Default, Debug, PartialEq)]
struct RecordingSinks {
    envoy_log: Vec<String>,
    filter_state: Vec<String>,
    http: Vec<String>,
}

impl Sinks for RecordingSinks {
    fn envoy_log(&mut self, line: &str) {
        self.envoy_log.push(line.into());
    }
    fn filter_state(&mut self, record: &str) {
        self.filter_state.push(record.into());
    }
    fn http(&mut self, record: String) {
        self.http.push(record);
    }
}

fn config(json: &str) -> AccessLogConfig {
    AccessLogConfig::from_json(json.as_bytes()).unwrap()
}

/// The record the flow delivers, with the configuration's sinks replaced by filter state only.
fn http_record_for(config_json: &str, host: &TestHost) -> Option<String> {
    let mut config = config(config_json);
    config.sinks = SinksConfig {
        envoy_log: false,
        filter_state: true,
        http: None,
    };
    let mut sinks = RecordingSinks::default();
    let outcome = log_http_request(&config, host, &mut sinks);
    assert_eq!(outcome == Outcome::Logged, sinks.filter_state.len() == 1);
    let record = sinks.filter_state.pop()?;
    serde_json::from_str::<serde_json::Value>(&record).expect("record is JSON");
    Some(record)
}

fn http_fields(config_json: &str, host: &TestHost) -> serde_json::Map<String, serde_json::Value> {
    let record = http_record_for(config_json, host).expect("record kept");
    serde_json::from_str(&record).unwrap()
}

#[test]
fn a_proxied_request_gives_every_field_in_istio_order() {
    let host = TestHost::proxied_request()
        .with(ALLOWLIST_DECISION, "allowed")
        .with(ALLOWLIST_REASON, "exact")
        .with(ALLOWLIST_RULE, "api.example.com")
        .with(SUBSET, "v2")
        .with("upstream.transport_failure_reason", "none")
        .with("connection.requested_server_name", "api.example.com");
    let record = http_record_for(r#"{"gateway":"egress"}"#, &host).unwrap();
    assert_eq!(
        record,
        concat!(
            r#"{"start_time":"2026-11-26T06:23:33.721Z","method":"GET","path":"/up/envoy.yaml?a=1","#,
            r#""protocol":"HTTP/1.1","response_code":404,"response_code_details":"via_upstream","#,
            r#""bytes_received":0,"bytes_sent":335,"duration":13,"upstream_service_time":"10","#,
            r#""x_forwarded_for":"1.2.3.4","user_agent":"curl/7.88.1","#,
            r#""request_id":"ae1828af-fa79-4273-81b1-7b08b1c7d2f8","authority":"127.0.0.1:28980","#,
            r#""upstream_host":"127.0.0.1:28982","upstream_cluster":"upstream","#,
            r#""upstream_transport_failure_reason":"none","#,
            r#""downstream_local_address":"127.0.0.1:28980","downstream_remote_address":"1.2.3.4:0","#,
            r#""requested_server_name":"api.example.com","route_name":"up","gateway":"egress","#,
            r#""allowlist":{"decision":"allowed","reason":"exact","rule":"api.example.com"},"#,
            r#""subset":"v2","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#
        )
    );
}

#[test]
fn absent_values_are_omitted() {
    assert_eq!(http_record_for("{}", &TestHost::default()).unwrap(), "{}");
    assert_eq!(
        http_record_for(r#"{"gateway":"ingress"}"#, &TestHost::default()).unwrap(),
        r#"{"gateway":"ingress"}"#
    );
    let fields = http_fields("{}", &TestHost::proxied_request());
    for absent in [
        "response_flags",
        "upstream_transport_failure_reason",
        "requested_server_name",
        "gateway",
        "allowlist",
        "subset",
        "request_headers",
        "response_headers",
    ] {
        assert!(!fields.contains_key(absent), "{absent}: {fields:?}");
    }
}

#[test]
fn each_value_is_read_once() {
    let host = TestHost::proxied_request();
    http_record_for(
        r#"{"request_headers":["x-tenant"],"response_headers":["content-type"]}"#,
        &host,
    )
    .unwrap();
    let reads = host.reads();
    let mut unique = reads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(reads.len(), unique.len(), "{reads:?}");
    assert!(
        !reads.contains(&"now".to_string()),
        "request.duration was there"
    );
}

#[test]
fn a_sampled_out_request_costs_only_the_reads_sampling_needs() {
    let host = TestHost::proxied_request().with_int("response.code", 200);
    assert_eq!(http_record_for(r#"{"sample_rate":0}"#, &host), None);
    assert_eq!(
        host.reads(),
        [ALLOWLIST_DECISION, "request.id", "response.code"]
    );
}

#[test]
fn sampling_keeps_denials_errors_and_the_sampled_share() {
    let sampled_out_id = "ae1828af-fa79-4273-81b1-7b08b1c7d2f8";
    let share = sampling::fraction(sampled_out_id.as_bytes());
    // (configuration, allowlist decision, response code, request id, kept)
    type Case<'a> = (&'a str, Option<&'a str>, Option<i64>, Option<&'a str>, bool);
    let cases: &[Case] = &[
        (
            r#"{"sample_rate":0}"#,
            None,
            Some(200),
            Some(sampled_out_id),
            false,
        ),
        (
            r#"{"sample_rate":1}"#,
            None,
            Some(200),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0}"#,
            Some("denied"),
            Some(403),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0}"#,
            Some("audit_denied"),
            Some(200),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0}"#,
            Some("allowed"),
            Some(200),
            Some(sampled_out_id),
            false,
        ),
        (
            r#"{"sample_rate":0}"#,
            None,
            Some(500),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0}"#,
            None,
            Some(503),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0}"#,
            None,
            Some(499),
            Some(sampled_out_id),
            false,
        ),
        (
            r#"{"sample_rate":0,"always_log_response_code_at_least":400}"#,
            None,
            Some(404),
            Some(sampled_out_id),
            true,
        ),
        (
            r#"{"sample_rate":0,"always_log_response_code_at_least":600}"#,
            None,
            Some(599),
            Some(sampled_out_id),
            false,
        ),
        (
            r#"{"sample_rate":0}"#,
            None,
            None,
            Some(sampled_out_id),
            false,
        ),
        (r#"{"sample_rate":0}"#, None, Some(200), None, true),
    ];
    for (config_json, decision, code, id, kept) in cases {
        let mut host = TestHost::proxied_request()
            .without("request.id")
            .without("response.code");
        if let Some(decision) = decision {
            host = host.with(ALLOWLIST_DECISION, *decision);
        }
        if let Some(code) = code {
            host = host.with_int("response.code", *code);
        }
        if let Some(id) = id {
            host = host.with("request.id", *id);
        }
        let record = http_record_for(config_json, &host);
        assert_eq!(
            record.is_some(),
            *kept,
            "{config_json} {decision:?} {code:?} {id:?}"
        );
    }
    // Around the request id's own place in [0, 1).
    let host = TestHost::proxied_request().with_int("response.code", 200);
    for (rate, kept) in [(share, false), ((share + 1e-6).min(1.0), true)] {
        let json = format!(r#"{{"sample_rate":{rate}}}"#);
        assert_eq!(http_record_for(&json, &host).is_some(), kept, "{json}");
    }
}

#[test]
fn records_go_to_every_configured_sink() {
    let cases: &[(&str, usize, usize, usize)] = &[
        ("{}", 1, 0, 0),
        (r#"{"sinks":{"envoy_log":true}}"#, 1, 0, 0),
        (r#"{"sinks":{"filter_state":true}}"#, 0, 1, 0),
        (r#"{"sinks":{"http":{"cluster":"c"}}}"#, 0, 0, 1),
        (
            r#"{"sinks":{"envoy_log":true,"filter_state":true,"http":{"cluster":"c"}}}"#,
            1,
            1,
            1,
        ),
    ];
    for (config_json, envoy_log, filter_state, http) in cases {
        let mut sinks = RecordingSinks::default();
        let outcome = log_http_request(
            &config(config_json),
            &TestHost::proxied_request(),
            &mut sinks,
        );
        assert_eq!(outcome, Outcome::Logged);
        assert_eq!(
            (
                sinks.envoy_log.len(),
                sinks.filter_state.len(),
                sinks.http.len()
            ),
            (*envoy_log, *filter_state, *http),
            "{config_json}"
        );
        let record = sinks.filter_state.iter().chain(&sinks.http).next();
        for line in &sinks.envoy_log {
            let json = line
                .strip_prefix("gateway-wasm access-log: ")
                .expect("prefixed");
            assert!(json.starts_with("{\"start_time\":"), "{line}");
            if let Some(record) = record {
                assert_eq!(json, record);
            }
        }
    }
}

#[test]
fn headers_and_query_parameters_are_redacted() {
    let host = TestHost::proxied_request()
        .with("request.path", "/login?user=ann&token=s3cr3t&API_KEY=k")
        .with_request_header("authorization", "Bearer abc")
        .with_request_header("cookie", "session=1")
        .with_request_header("proxy-authorization", "Basic x")
        .with_request_header("x-api-key", "k")
        .with_request_header("x-tenant", "blue")
        .with_response_header("set-cookie", "session=2")
        .with_response_header("content-type", "text/plain");
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            r#"{"request_headers":["Authorization","cookie","proxy-authorization","x-tenant","x-missing"],
                "response_headers":["set-cookie","content-type"]}"#,
            &[
                ("path", r#""/login?user=ann&token=s3cr3t&API_KEY=k""#),
                (
                    "request_headers",
                    r#"{"authorization":"[REDACTED]","cookie":"[REDACTED]","proxy-authorization":"[REDACTED]","x-tenant":"blue"}"#,
                ),
                (
                    "response_headers",
                    r#"{"set-cookie":"[REDACTED]","content-type":"text/plain"}"#,
                ),
                ("user_agent", r#""curl/7.88.1""#),
                ("x_forwarded_for", r#""1.2.3.4""#),
            ],
        ),
        (
            r#"{"redact_headers":["X-Api-Key","user-agent","x-forwarded-for"],
                "redact_query_params":["token","api_key"],
                "request_headers":["x-api-key"]}"#,
            &[
                (
                    "path",
                    r#""/login?user=ann&token=[REDACTED]&API_KEY=[REDACTED]""#,
                ),
                ("request_headers", r#"{"x-api-key":"[REDACTED]"}"#),
                ("user_agent", r#""[REDACTED]""#),
                ("x_forwarded_for", r#""[REDACTED]""#),
            ],
        ),
    ];
    for (config_json, expected) in cases {
        let fields = http_fields(config_json, &host);
        for (key, value) in *expected {
            let value: serde_json::Value = serde_json::from_str(value).unwrap();
            assert_eq!(fields[*key], value, "{key} with {config_json}");
        }
    }
}

#[test]
fn what_other_filters_publish_is_embedded_as_json_strings() {
    // (allowlist decision, reason, rule, subset; the record's allowlist and subset fields)
    type Case<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        (None, None, None, None, None, None),
        (
            Some(b"denied"),
            Some(b"host_not_listed"),
            None,
            Some(b"canary"),
            Some(r#"{"decision":"denied","reason":"host_not_listed","rule":null}"#),
            Some(r#""canary""#),
        ),
        (
            Some(b"allowed"),
            Some(b"host_listed"),
            Some(b"*.example.com"),
            None,
            Some(r#"{"decision":"allowed","reason":"host_listed","rule":"*.example.com"}"#),
            None,
        ),
        // Without a decision, a reason or rule alone is not the allowlist's: left out.
        (None, Some(b"host_listed"), Some(b"r"), None, None, None),
        // Empty values count as absent, as the filters never publish one.
        (Some(b""), None, None, Some(b""), None, None),
        // Whatever the bytes, the record stays valid JSON on one line: escaped, invalid UTF-8
        // replaced.
        (
            Some(b"d\xffnied"),
            Some(b"a\nb"),
            Some(b"quo\"te"),
            Some(b"quo\"te\r\n"),
            Some("{\"decision\":\"d\u{fffd}nied\",\"reason\":\"a\\nb\",\"rule\":\"quo\\\"te\"}"),
            Some(r#""quo\"te\r\n""#),
        ),
    ];
    for (decision, reason, rule, subset, allowlist_field, subset_field) in cases {
        let mut host = TestHost::proxied_request();
        for (key, value) in [
            (ALLOWLIST_DECISION, decision),
            (ALLOWLIST_REASON, reason),
            (ALLOWLIST_RULE, rule),
            (SUBSET, subset),
        ] {
            if let Some(value) = value {
                host = host.with(key, *value);
            }
        }
        let record = http_record_for("{}", &host).expect("record kept");
        assert!(!record.contains(['\n', '\r']), "{record:?}");
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&record).unwrap();
        let field = |key: &str| fields.get(key).map(|value| value.to_string());
        assert_eq!(
            field("allowlist").as_deref(),
            *allowlist_field,
            "{decision:?} {reason:?} {rule:?}"
        );
        assert_eq!(field("subset").as_deref(), *subset_field, "{subset:?}");
    }
}

#[test]
fn response_flags_trace_ids_and_odd_bytes() {
    let cases: &[(TestHost, &str, Option<&str>)] = &[
        (
            TestHost::proxied_request().with_int("response.flags", 0x8020),
            "response_flags",
            Some(r#""UF,URX""#),
        ),
        (
            TestHost::proxied_request().with_int("response.flags", 1 << 1),
            "response_flags",
            Some(r#""UH""#),
        ),
        (
            TestHost::proxied_request().with("response.flags", "UF"),
            "response_flags",
            None,
        ),
        (
            TestHost::proxied_request().with_request_header("traceparent", "00-0-0-01"),
            "trace_id",
            None,
        ),
        (
            TestHost::proxied_request().with("request.useragent", b"bot\xff\"\n".to_vec()),
            "user_agent",
            Some(r#""bot�\"\n""#),
        ),
        (
            TestHost::proxied_request().with("request.path", b"/caf\xe9?token=x".to_vec()),
            "path",
            Some(r#""/caf�?token=x""#),
        ),
        (
            TestHost::proxied_request().with_int("response.code", -1),
            "response_code",
            None,
        ),
        (
            TestHost::proxied_request().with("request.time", "yesterday"),
            "start_time",
            None,
        ),
        (
            TestHost::proxied_request().with(
                "upstream.transport_failure_reason",
                "delayed connect error: Connection refused",
            ),
            "upstream_transport_failure_reason",
            Some(r#""delayed_connect_error:_Connection_refused""#),
        ),
    ];
    for (host, key, expected) in cases {
        let fields = http_fields("{}", host);
        assert_eq!(
            fields.get(*key).map(|value| value.to_string()).as_deref(),
            *expected,
            "{key}"
        );
    }
}

#[test]
fn without_request_duration_the_duration_runs_to_now() {
    let start = 1_795_674_231_222_372_000;
    let cases: &[(Option<i64>, Option<i64>, Option<u64>)] = &[
        // (request.duration, now, duration in ms)
        (Some(2_999_999), Some(start + 50_000_000_000), Some(2)),
        (None, Some(start + 6_400_000), Some(6)),
        (None, None, None),
        (None, Some(start - 1_000_000), None),
    ];
    for (duration, now, expected) in cases {
        let mut host = TestHost::proxied_request().without("request.duration");
        host.now_nanos = *now;
        if let Some(duration) = duration {
            host = host.with_int("request.duration", *duration);
        }
        host = host.with_int("request.time", start);
        let fields = http_fields("{}", &host);
        assert_eq!(
            fields.get("duration").and_then(|d| d.as_u64()),
            *expected,
            "{duration:?} {now:?}"
        );
    }
}

#[test]
fn a_tcp_connection_record() {
    let mut host = TestHost::tcp_connection()
        .with(ALLOWLIST_DECISION, "allowed")
        .with(ALLOWLIST_REASON, "sni")
        .with(ALLOWLIST_RULE, "api.example.com");
    host.now_nanos = Some(1_795_674_231_228_999_999);
    let config = config(r#"{"gateway":"egress","sinks":{"envoy_log":true,"filter_state":true}}"#);
    let mut sinks = RecordingSinks::default();
    assert_eq!(log_connection(&config, &host, &mut sinks), Outcome::Logged);
    let expected = concat!(
        r#"{"start_time":"2026-11-26T06:23:51.222Z","bytes_received":18,"bytes_sent":763,"duration":6,"#,
        r#""upstream_host":"127.0.0.1:28982","upstream_cluster":"upstream","#,
        r#""downstream_local_address":"127.0.0.1:28981","downstream_remote_address":"127.0.0.1:46432","#,
        r#""requested_server_name":"api.example.com","gateway":"egress","#,
        r#""allowlist":{"decision":"allowed","reason":"sni","rule":"api.example.com"}}"#
    );
    assert_eq!(sinks.filter_state, [expected]);
    assert_eq!(sinks.envoy_log, [format!("{ENVOY_LOG_PREFIX}{expected}")]);
    let reads = host.reads();
    for http_only in [
        "request.method",
        "request.path",
        "request.id",
        "response.code",
    ] {
        assert!(
            !reads.contains(&http_only.to_string()),
            "{http_only} read for TCP"
        );
    }
    assert!(
        !reads.iter().any(|read| read.contains("header")),
        "no headers on TCP: {reads:?}"
    );
}

#[test]
fn tcp_connections_are_sampled_by_connection_id() {
    let kept: Vec<bool> = (0..200i64)
        .map(|id| {
            let host = TestHost::tcp_connection().with_int("connection.id", id);
            let mut sinks = RecordingSinks::default();
            log_connection(&config(r#"{"sample_rate":0.5}"#), &host, &mut sinks) == Outcome::Logged
        })
        .collect();
    let share = kept.iter().filter(|k| **k).count();
    assert!((70..130).contains(&share), "{share} of 200 kept at 0.5");
    let denied = TestHost::tcp_connection().with(ALLOWLIST_DECISION, "denied");
    let mut sinks = RecordingSinks::default();
    assert_eq!(
        log_connection(&config(r#"{"sample_rate":0}"#), &denied, &mut sinks),
        Outcome::Logged
    );
    let allowed = TestHost::tcp_connection();
    assert_eq!(
        log_connection(&config(r#"{"sample_rate":0}"#), &allowed, &mut sinks),
        Outcome::SampledOut
    );
    assert_eq!(sinks.envoy_log.len(), 1);
}
