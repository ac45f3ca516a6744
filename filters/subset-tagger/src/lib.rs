//! subset-tagger: sets the header that VirtualService routes match, so traffic lands on a
//! DestinationRule subset.
//!
//! A thin adapter: `gateway_core::subset` decides, this crate reads the request for it and carries
//! out the decision through proxy-wasm host calls (`proxy_host::subset`).

use std::rc::Rc;

use gateway_core::filter_state::SUBSET;
use gateway_core::subset::{RequestHost, TaggerConfig};
use proxy_host::subset::{add_set_cookie, apply_header, random_u64, request_headers, Stats};
use proxy_host::{load_configuration, set_filter_state};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

const FILTER_NAME: &str = "subset-tagger";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TaggerRoot::default()) });
}}

struct Tagger {
    config: TaggerConfig,
    stats: Stats,
}

#[derive(Default)]
struct TaggerRoot {
    tagger: Option<Rc<Tagger>>,
}

impl Context for TaggerRoot {}

impl RootContext for TaggerRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            TaggerConfig::from_json,
        ) else {
            // Refused: Envoy keeps the previous configuration, and so does this root context.
            return false;
        };
        let stats = Stats::define(FILTER_NAME, &config);
        self.tagger = Some(Rc::new(Tagger { config, stats }));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK traps on `None`, so a stream is always created; without a configuration (Envoy
        // does not send traffic to a plugin whose on_configure failed) it passes requests through.
        Some(Box::new(TaggerHttp {
            tagger: self.tagger.clone(),
            context_id,
            set_cookie: None,
        }))
    }
}

struct TaggerHttp {
    tagger: Option<Rc<Tagger>>,
    context_id: u32,
    /// The `Set-Cookie` to add to the response, decided with the request.
    set_cookie: Option<String>,
}

impl Context for TaggerHttp {}

impl HttpContext for TaggerHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        proxy_host::trap_if_requested(FILTER_NAME);
        let Some(tagger) = self.tagger.clone() else {
            return Action::Continue;
        };
        let decision = tagger.config.decide(&mut ProxyRequest {
            context_id: self.context_id,
        });
        apply_header(FILTER_NAME, &tagger.config.header, &decision.header);
        if let Some(subset) = decision.published_subset() {
            set_filter_state(FILTER_NAME, SUBSET, subset);
        }
        tagger.stats.count(&decision);
        self.set_cookie = decision.set_cookie;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(cookie) = self.set_cookie.take() {
            add_set_cookie(FILTER_NAME, &cookie);
        }
        Action::Continue
    }
}

/// The core's view of the request, over proxy-wasm host calls.
struct ProxyRequest {
    context_id: u32,
}

impl RequestHost for ProxyRequest {
    fn request_headers(&self) -> Vec<(String, String)> {
        request_headers(FILTER_NAME)
    }

    fn random_u64(&mut self) -> u64 {
        random_u64(self.context_id)
    }
}
