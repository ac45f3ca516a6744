//! The benchmark's instrument for the cost of Wasm itself. With an empty configuration it is an HTTP
//! filter with no logic: Envoy still creates a context per request and calls into the VM for every
//! stream event (request and response headers, log, done, delete), so its cost is what any Rust
//! proxy-wasm filter pays before doing anything. Configured as `<call> <times>`, it also makes that
//! host call `times` times per request, so the difference over the empty probe, divided by `times`,
//! is what one such call costs: the figures to weigh a filter's design with.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

/// Filter state keys for `set_filter_state`, one per call (the bench makes ten).
const FILTER_STATE_KEYS: [&str; 10] = [
    "bench.probe.0",
    "bench.probe.1",
    "bench.probe.2",
    "bench.probe.3",
    "bench.probe.4",
    "bench.probe.5",
    "bench.probe.6",
    "bench.probe.7",
    "bench.probe.8",
    "bench.probe.9",
];

/// One kind of host call, as a filter makes it.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `:authority`, by name (`proxy_get_header_map_value`).
    RequestHeader,
    /// Every request header in one call (`proxy_get_header_map_pairs`).
    RequestHeaders,
    /// An attribute during the request (`connection.requested_server_name`).
    Property,
    /// An attribute in `on_log` (`xds.route_name`), where the access log reads its fields.
    LogProperty,
    /// Filter state (`proxy_set_property`), as the filters publish decisions.
    SetFilterState,
    /// A counter (`proxy_increment_metric`).
    IncrementCounter,
    /// A request header written (`proxy_replace_header_map_value`).
    SetRequestHeader,
    /// The `clear_route_cache` foreign function, which has Envoy choose the route again.
    ClearRouteCache,
}

impl Call {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "request_header" => Self::RequestHeader,
            "request_headers" => Self::RequestHeaders,
            "property" => Self::Property,
            "log_property" => Self::LogProperty,
            "set_filter_state" => Self::SetFilterState,
            "increment_counter" => Self::IncrementCounter,
            "set_request_header" => Self::SetRequestHeader,
            "clear_route_cache" => Self::ClearRouteCache,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    call: Option<Call>,
    times: u32,
    counter: u32,
}

impl Probe {
    fn repeat(&self, during_log: bool) {
        let Some(call) = self.call else { return };
        if matches!(call, Call::LogProperty) != during_log {
            return;
        }
        for index in 0..self.times {
            // Results are dropped: only the cost of making the call is measured.
            let _ = match call {
                Call::RequestHeader => {
                    hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":authority")
                        .map(drop)
                }
                Call::RequestHeaders => {
                    hostcalls::get_map_bytes(MapType::HttpRequestHeaders).map(drop)
                }
                Call::Property => {
                    hostcalls::get_property(vec!["connection", "requested_server_name"]).map(drop)
                }
                Call::LogProperty => hostcalls::get_property(vec!["xds", "route_name"]).map(drop),
                // A key of its own each time: Envoy creates the filter state object on the first
                // write of a key, which is what a filter publishing a decision pays.
                Call::SetFilterState => hostcalls::set_property(
                    vec![FILTER_STATE_KEYS
                        .get(index as usize)
                        .copied()
                        .unwrap_or("bench.probe")],
                    Some(br#"{"decision":"allowed"}"#),
                ),
                Call::IncrementCounter => hostcalls::increment_metric(self.counter, 1),
                Call::SetRequestHeader => {
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-probe", Some("1"))
                }
                Call::ClearRouteCache => {
                    hostcalls::call_foreign_function("clear_route_cache", None).map(drop)
                }
            };
        }
    }
}

#[derive(Default)]
struct ProbeRoot {
    probe: Probe,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configuration = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let configuration = String::from_utf8_lossy(&configuration);
        let mut words = configuration.split_whitespace();
        let (call, times) = match (words.next(), words.next().map(str::parse::<u32>)) {
            (None, _) => (None, 0),
            (Some(name), Some(Ok(times))) => match Call::parse(name) {
                Some(call) => (Some(call), times),
                None => return refuse(&configuration),
            },
            _ => return refuse(&configuration),
        };
        let counter = hostcalls::define_metric(MetricType::Counter, "bench.probe").unwrap_or(0);
        self.probe = Probe {
            call,
            times,
            counter,
        };
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeHttp(self.probe)))
    }
}

fn refuse(configuration: &str) -> bool {
    let _ = hostcalls::log(
        LogLevel::Error,
        &format!("wasm-probe: configuration {configuration:?} is not empty nor `<call> <times>`"),
    );
    false
}

struct ProbeHttp(Probe);

impl Context for ProbeHttp {}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(
        &mut self,
        _num_headers: usize,
        _end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        self.0.repeat(false);
        proxy_wasm::types::Action::Continue
    }

    fn on_log(&mut self) {
        self.0.repeat(true);
    }
}
