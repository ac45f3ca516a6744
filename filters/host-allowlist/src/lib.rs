//! host-allowlist: lets through only the destinations its configuration lists.
//! An HTTP filter, or a network (L4) filter deciding on the TLS SNI, as Envoy loads it (each new
//! stream tells which, [`FilterMode::of_new_context`]; the root id plays no part). The decisions themselves are `gateway_core::allowlist`; this crate reads the proxy and
//! applies the verdict.

use std::rc::Rc;

use gateway_core::allowlist::{Action as VerdictAction, Allowlist, ConnectionHost, RequestHost};
use proxy_host::allowlist::{apply_to_request, record, Counters};
use proxy_host::{
    load_configuration, log_configuration_warnings, property_int, property_text, request_header,
    FilterMode,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

const FILTER_NAME: &str = "host-allowlist";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AllowlistRoot::default()) });
}}

#[derive(Default)]
struct AllowlistRoot {
    /// Until a configuration is accepted this is the default allowlist, which denies everything; a
    /// refused update keeps the previous one, as Envoy does.
    allowlist: Rc<Allowlist>,
    counters: Counters,
}

impl Context for AllowlistRoot {}

impl RootContext for AllowlistRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.counters = Counters::define(FILTER_NAME);
        let configuration = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten();
        match load_configuration(FILTER_NAME, configuration, Allowlist::from_json) {
            Some(allowlist) => {
                log_configuration_warnings(FILTER_NAME, allowlist.warnings());
                self.allowlist = Rc::new(allowlist);
                true
            }
            None => false,
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(FilterMode::of_new_context().context_type())
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

    fn downstream_is_tls(&self) -> bool {
        proxy_host::downstream_is_tls()
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
        record(FILTER_NAME, &verdict, self.counters);
        apply_to_request(FILTER_NAME, &verdict)
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
        record(FILTER_NAME, &verdict, self.counters);
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
