//! access-log: one structured JSON record per request or connection.
//! HTTP filter by default; a network (L4) filter when its root id is `network`.

use gateway_core::access_log::AccessLogConfig;
use proxy_host::{load_configuration, FilterMode};
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

const FILTER_NAME: &str = "access-log";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AccessLogRoot::default()) });
}}

#[derive(Default)]
struct AccessLogRoot {
    mode: FilterMode,
    config: Option<AccessLogConfig>,
}

impl Context for AccessLogRoot {}

impl RootContext for AccessLogRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mode = FilterMode::from_root_id();
        self.config = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            AccessLogConfig::from_json,
        );
        self.config.is_some()
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(self.mode.context_type())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AccessLogHttp))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(AccessLogStream))
    }
}

struct AccessLogHttp;

impl Context for AccessLogHttp {}
impl HttpContext for AccessLogHttp {}

struct AccessLogStream;

impl Context for AccessLogStream {}
impl StreamContext for AccessLogStream {}
