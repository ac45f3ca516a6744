//! host-allowlist: lets through only the destinations its configuration lists.
//! HTTP filter by default; a network (L4) filter, deciding on the TLS SNI, when its root id is
//! `network`. The decisions themselves are `gateway_core::allowlist`; this crate reads the proxy and
//! applies the verdict.

use std::rc::Rc;

use gateway_core::allowlist::{
    Action as VerdictAction, Allowlist, ConnectionHost, Outcome, RequestHost, Verdict,
};
use gateway_core::filter_state::ALLOWLIST_DECISION;
use proxy_host::{
    load_configuration, log, property_int, property_text, request_header, set_filter_state,
    Counter, FilterMode,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

const FILTER_NAME: &str = "host-allowlist";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AllowlistRoot::default()) });
}}

/// Envoy stats (shown as `wasmcustom.host_allowlist.*`).
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    allowed: Counter,
    denied: Counter,
    audit_denied: Counter,
}

impl Counters {
    fn define() -> Self {
        Self {
            allowed: Counter::define(FILTER_NAME, "host_allowlist.allowed"),
            denied: Counter::define(FILTER_NAME, "host_allowlist.denied"),
            audit_denied: Counter::define(FILTER_NAME, "host_allowlist.audit_denied"),
        }
    }
}

/// Counts, logs and publishes a verdict; the caller then applies its action.
fn record(verdict: &Verdict<'_>, counters: Counters) {
    match verdict.decision.outcome {
        Outcome::Allowed => counters.allowed.increment(),
        Outcome::Denied => {
            counters.denied.increment();
            // Every denial is also in the access log and the counters; this line is for debugging.
            log(
                LogLevel::Debug,
                &format!("{FILTER_NAME}: {}", verdict.log_message()),
            );
        }
        Outcome::AuditDenied => {
            counters.audit_denied.increment();
            log(
                LogLevel::Info,
                &format!("{FILTER_NAME}: {}", verdict.log_message()),
            );
        }
    }
    set_filter_state(FILTER_NAME, ALLOWLIST_DECISION, &verdict.decision.to_json());
}

#[derive(Default)]
struct AllowlistRoot {
    mode: FilterMode,
    /// Until a configuration is accepted this is the default allowlist, which denies everything; a
    /// refused update keeps the previous one, as Envoy does.
    allowlist: Rc<Allowlist>,
    counters: Counters,
}

impl Context for AllowlistRoot {}

impl RootContext for AllowlistRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mode = FilterMode::from_root_id();
        self.counters = Counters::define();
        let configuration = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten();
        match load_configuration(FILTER_NAME, configuration, Allowlist::from_json) {
            Some(allowlist) => {
                self.allowlist = Rc::new(allowlist);
                true
            }
            None => false,
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(self.mode.context_type())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AllowlistHttp {
            allowlist: Rc::clone(&self.allowlist),
            counters: self.counters,
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(AllowlistStream {
            allowlist: Rc::clone(&self.allowlist),
            counters: self.counters,
            closed: false,
        }))
    }
}

/// Reads an HTTP request through proxy-wasm host calls.
struct ProxyRequest;

impl RequestHost for ProxyRequest {
    fn authority(&self) -> Option<String> {
        request_header(":authority")
    }

    fn scheme(&self) -> Option<String> {
        request_header(":scheme")
    }

    fn requested_server_name(&self) -> Option<String> {
        property_text(&["connection", "requested_server_name"])
    }
}

/// Reads a downstream connection through proxy-wasm host calls.
struct ProxyConnection;

impl ConnectionHost for ProxyConnection {
    fn requested_server_name(&self) -> Option<String> {
        property_text(&["connection", "requested_server_name"])
    }

    fn destination_port(&self) -> Option<u16> {
        property_int(&["destination", "port"]).and_then(|port| u16::try_from(port).ok())
    }
}

struct AllowlistHttp {
    allowlist: Rc<Allowlist>,
    counters: Counters,
}

impl Context for AllowlistHttp {}

impl HttpContext for AllowlistHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        proxy_host::trap_if_requested(FILTER_NAME);
        let verdict = self.allowlist.decide_request(&ProxyRequest);
        record(&verdict, self.counters);
        match verdict.action {
            VerdictAction::Continue => {
                if let Some(authority) = &verdict.canonical_authority {
                    set_authority(authority);
                }
                Action::Continue
            }
            VerdictAction::Respond(response) => {
                let headers = response.headers().to_vec();
                if hostcalls::send_http_response(
                    response.status,
                    headers,
                    Some(response.body.as_bytes()),
                )
                .is_err()
                {
                    log(
                        LogLevel::Error,
                        &format!("{FILTER_NAME}: could not send the denial"),
                    );
                }
                // The local answer replaces the request: nothing of it goes upstream.
                Action::Pause
            }
            VerdictAction::Close => {
                let _ = hostcalls::close_downstream();
                Action::Pause
            }
        }
    }
}

/// Sets `:authority` to the spelling that was allowed and has Envoy choose the route again, so that
/// the route and the upstream see the host that was checked.
fn set_authority(authority: &str) {
    if let Err(status) =
        hostcalls::set_map_value(MapType::HttpRequestHeaders, ":authority", Some(authority))
    {
        log(
            LogLevel::Error,
            &format!("{FILTER_NAME}: cannot set :authority to {authority:?}: {status:?}"),
        );
        return;
    }
    // Envoy picked the route before this filter ran. ABI 0.2.1 happens to clear the route cache on
    // a header change; the explicit call keeps the re-route when that implicit behaviour goes.
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log(
            LogLevel::Error,
            &format!(
                "{FILTER_NAME}: clear_route_cache failed, the route may be the old one: {status:?}"
            ),
        );
    }
}

struct AllowlistStream {
    allowlist: Rc<Allowlist>,
    counters: Counters,
    /// Set once the connection is denied: any data that still arrives before Envoy has closed the
    /// connection stays here.
    closed: bool,
}

impl Context for AllowlistStream {}

impl StreamContext for AllowlistStream {
    fn on_new_connection(&mut self) -> Action {
        let verdict = self.allowlist.decide_connection(&ProxyConnection);
        record(&verdict, self.counters);
        match verdict.action {
            VerdictAction::Continue => Action::Continue,
            VerdictAction::Respond(_) | VerdictAction::Close => {
                self.closed = true;
                let _ = hostcalls::close_downstream();
                // Stops the filter chain here, so the TCP proxy behind never opens an upstream.
                Action::Pause
            }
        }
    }

    fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
        if self.closed {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}
