//! What every gateway-wasm filter needs from the proxy-wasm host, written once: loading and
//! validating the plugin configuration (fail closed), choosing HTTP or network (L4) mode, counters,
//! filter state, and reading headers and attributes without the SDK's panics.

pub mod access_log;
pub mod allowlist;
pub mod subset;

use gateway_core::config::{ConfigErrors, ConfigWarning};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{ContextType, LogLevel, MapType, MetricType};

/// Which kind of filter Envoy runs the module as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterMode {
    #[default]
    Http,
    Network,
}

impl FilterMode {
    /// The kind of stream Envoy is creating a context for; called from `RootContext::get_type`,
    /// while Envoy creates the context and has made it the current one. The root id cannot be
    /// trusted for this (Istio passes any `pluginName`, and a wrong guess makes the SDK trap on
    /// every stream); the stream itself can: Envoy creates an HTTP filter's context when the request
    /// headers arrive, after its HTTP codec has set the request protocol, and a network filter's
    /// context when the connection opens, before any protocol or response is known. A context Envoy
    /// creates only to log an HTTP request it refused before decoding its headers (a codec error)
    /// may have no protocol, but has the local reply's response code.
    pub fn of_new_context() -> Self {
        let present = |path: Vec<&str>| {
            hostcalls::get_property(path).is_ok_and(|value| value.is_some_and(|v| !v.is_empty()))
        };
        if present(vec!["request", "protocol"]) || present(vec!["response", "code"]) {
            FilterMode::Http
        } else {
            FilterMode::Network
        }
    }

    pub fn context_type(self) -> ContextType {
        match self {
            FilterMode::Http => ContextType::HttpContext,
            FilterMode::Network => ContextType::StreamContext,
        }
    }
}

/// Parses the plugin configuration with `parse`. On error, logs one line per problem, prefixed with
/// the filter's name, and returns `None`: the root context then answers `false` from
/// `on_configure`, so Envoy refuses the plugin rather than run it half-configured.
pub fn load_configuration<T>(
    filter: &str,
    configuration: Option<Vec<u8>>,
    parse: impl FnOnce(&[u8]) -> Result<T, ConfigErrors>,
) -> Option<T> {
    let bytes = configuration.unwrap_or_default();
    match parse(&bytes) {
        Ok(config) => {
            log(LogLevel::Info, &format!("{filter}: configuration accepted"));
            Some(config)
        }
        Err(errors) => {
            for error in errors.iter() {
                log(
                    LogLevel::Error,
                    &format!("{filter}: invalid configuration: {error}"),
                );
            }
            None
        }
    }
}

/// Logs each warning of an accepted configuration, prefixed with the filter's name, at warn level:
/// the configuration loads, but its author should look (`host_regex[0]: "^api.example.com$": …`).
pub fn log_configuration_warnings(filter: &str, warnings: &[ConfigWarning]) {
    for warning in warnings {
        log(
            LogLevel::Warn,
            &format!("{filter}: configuration warning: {warning}"),
        );
    }
}

/// Logs through Envoy; a failing log call has nowhere better to go, so it is dropped.
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// A counter in Envoy's stats, where it shows as `wasmcustom.<name>` (in Prometheus: `<name>` with
/// `_` for `.`, Envoy's conversion of its custom stat namespaces). Every worker's VM defines it
/// under the same name and Envoy adds them up. Defined once (at configure time), then only
/// incremented. A counter the host refused to define is logged and counts nothing: stats are not
/// worth failing a request for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter(Option<u32>);

impl Counter {
    /// Defines, or finds again after a reconfiguration, the counter `name`.
    pub fn define(filter: &str, name: &str) -> Self {
        match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => Self(Some(id)),
            Err(status) => {
                log(
                    LogLevel::Warn,
                    &format!("{filter}: cannot define counter {name}: {status:?}"),
                );
                Self(None)
            }
        }
    }

    /// Defines the counter `name` for one value of each tag, in Istio's encoding:
    /// `wasmcustom.<tag>=.=<value>;.;<name>`. Envoy's tag extraction with Istio's regex
    /// `(<tag>=\.=(.+?);\.;)` takes each tag out of the name, so Prometheus sees one metric
    /// `<name>{<tag>="<value>"}` rather than a metric name per value. A value keeps letters, digits,
    /// `-`, `_` and `.`; any other character (which could end the tag early) becomes `_`.
    pub fn define_tagged(filter: &str, tags: &[(&str, &str)], name: &str) -> Self {
        let mut tagged = String::new();
        for (tag, value) in tags {
            let value: String = value
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            tagged.push_str(&format!("{tag}=.={value};.;"));
        }
        tagged.push_str(name);
        Self::define(filter, &tagged)
    }

    pub fn increment(self) {
        self.add(1);
    }

    /// Adds `amount`; a failed stat update is dropped rather than allowed to fail the request.
    pub fn add(self, amount: u64) {
        if let (Some(id), Ok(amount @ 1..)) = (self.0, i64::try_from(amount)) {
            let _ = hostcalls::increment_metric(id, amount);
        }
    }
}

/// A request header as text. The SDK's `get_http_request_header` panics (trapping the VM) on a value
/// that is not UTF-8, which any client can send; here invalid bytes become U+FFFD instead, which no
/// name or token matches.
pub fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
        .map(text)
}

/// An Envoy attribute (`connection.requested_server_name`, ...) as text; `None` when absent.
pub fn property_text(path: &[&str]) -> Option<String> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .map(text)
}

/// Whether the client's connection to Envoy is TLS: Envoy sets `connection.tls_version` only then.
pub fn downstream_is_tls() -> bool {
    property_text(&["connection", "tls_version"]).is_some_and(|version| !version.is_empty())
}

/// An integer Envoy attribute (`destination.port`, ...), which Envoy passes as 8 little-endian bytes.
pub fn property_int(path: &[&str]) -> Option<i64> {
    let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
    <[u8; 8]>::try_from(bytes.as_slice())
        .ok()
        .map(i64::from_le_bytes)
}

/// Publishes `value` as filter state under `key`; Envoy stores it as `wasm.<key>`, where later
/// filters and the native access logger (`%FILTER_STATE(wasm.<key>:PLAIN)%`) read it. A refusal is
/// logged: the request goes on, only its log record lacks the value.
pub fn set_filter_state(filter: &str, key: &str, value: &str) {
    if let Err(status) = hostcalls::set_property(vec![key], Some(value.as_bytes())) {
        log(
            LogLevel::Warn,
            &format!("{filter}: cannot set filter state {key}: {status:?}"),
        );
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Test builds only: the request header that makes the filter it names panic.
#[cfg(feature = "test-trap")]
pub const TEST_TRAP_HEADER: &str = "x-gateway-wasm-test-trap";

/// Test builds only: panics, trapping the VM, when the request's [`TEST_TRAP_HEADER`] names
/// `filter`. Compiled only with the `test-trap` feature, which the shipped modules never have.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
pub fn trap_if_requested(filter: &str) {
    if request_header(TEST_TRAP_HEADER).as_deref() == Some(filter) {
        panic!("{filter}: trap requested by {TEST_TRAP_HEADER} (test build)");
    }
}

/// Has Envoy choose the route again after a request header changed. Envoy picked the route before
/// our filters ran; ABI 0.2.1 happens to clear the route cache on a header change, and the explicit
/// call keeps the re-route when that implicit behaviour goes.
pub fn clear_route_cache(filter: &str) {
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log(
            LogLevel::Error,
            &format!(
                "{filter}: clear_route_cache failed, the route may be the old one: {status:?}"
            ),
        );
    }
}
