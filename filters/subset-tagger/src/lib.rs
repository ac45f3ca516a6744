//! subset-tagger: sets the header that VirtualService routes match, so traffic lands on a
//! DestinationRule subset.

use gateway_core::subset::TaggerConfig;
use proxy_host::load_configuration;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

const FILTER_NAME: &str = "subset-tagger";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TaggerRoot::default()) });
}}

#[derive(Default)]
struct TaggerRoot {
    config: Option<TaggerConfig>,
}

impl Context for TaggerRoot {}

impl RootContext for TaggerRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.config = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            TaggerConfig::from_json,
        );
        self.config.is_some()
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TaggerHttp))
    }
}

struct TaggerHttp;

impl Context for TaggerHttp {}
impl HttpContext for TaggerHttp {}
