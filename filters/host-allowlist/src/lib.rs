//! host-allowlist: lets through only the destinations its configuration lists.
//! HTTP filter by default; a network (L4) filter when its root id is `network`.

use gateway_core::allowlist::AllowlistConfig;
use proxy_host::{load_configuration, FilterMode};
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

const FILTER_NAME: &str = "host-allowlist";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AllowlistRoot::default()) });
}}

#[derive(Default)]
struct AllowlistRoot {
    mode: FilterMode,
    config: Option<AllowlistConfig>,
}

impl Context for AllowlistRoot {}

impl RootContext for AllowlistRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mode = FilterMode::from_root_id();
        self.config = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            AllowlistConfig::from_json,
        );
        self.config.is_some()
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(self.mode.context_type())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AllowlistHttp))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(AllowlistStream))
    }
}

struct AllowlistHttp;

impl Context for AllowlistHttp {}
impl HttpContext for AllowlistHttp {}

struct AllowlistStream;

impl Context for AllowlistStream {}
impl StreamContext for AllowlistStream {}
