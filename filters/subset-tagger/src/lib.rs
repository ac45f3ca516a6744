//! subset-tagger: sets the header that VirtualService routes match, so traffic lands on a
//! DestinationRule subset.
//!
//! A thin adapter: `gateway_core::subset` decides, this crate reads the request for it and carries
//! out the decision through proxy-wasm host calls.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use gateway_core::filter_state::SUBSET_TAG;
use gateway_core::stable_hash::fmix64;
use gateway_core::subset::{Decision, HeaderAction, Outcome, RequestHost, TaggerConfig};
use proxy_host::{load_configuration, log, set_filter_state, Counter};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

const FILTER_NAME: &str = "subset-tagger";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TaggerRoot::default()) });
}}

/// The counters of one configuration, defined at configure time so a request only increments.
struct Stats {
    /// `subset_tagger.tagged.<subset>`, one per subset the configuration can choose.
    tagged: HashMap<String, Counter>,
    /// `subset_tagger.untagged`: no rule matched and there is no default subset.
    untagged: Counter,
    /// `subset_tagger.client_trusted`: `trust_client_header` let a client-sent tag stand.
    client_trusted: Counter,
    /// `subset_tagger.client_header_replaced`: a client-sent tag was overwritten or removed.
    client_header_replaced: Counter,
}

impl Stats {
    fn define(config: &TaggerConfig) -> Self {
        let counter = |name: &str| Counter::define(FILTER_NAME, &format!("subset_tagger.{name}"));
        Self {
            tagged: config
                .subsets()
                .into_iter()
                .map(|subset| (subset.to_string(), counter(&format!("tagged.{subset}"))))
                .collect(),
            untagged: counter("untagged"),
            client_trusted: counter("client_trusted"),
            client_header_replaced: counter("client_header_replaced"),
        }
    }

    fn count(&self, decision: &Decision) {
        let counter = match decision.tagged_subset() {
            Some(subset) => self.tagged.get(subset).copied(),
            None if matches!(decision.outcome, Outcome::ClientTrusted { .. }) => {
                Some(self.client_trusted)
            }
            None => Some(self.untagged),
        };
        counter.into_iter().for_each(Counter::increment);
        if decision.client_header_replaced {
            self.client_header_replaced.increment();
        }
    }
}

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
        let stats = Stats::define(&config);
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
        apply_header(&tagger.config.header, &decision.header);
        set_filter_state(FILTER_NAME, SUBSET_TAG, &decision.filter_state());
        tagger.stats.count(&decision);
        self.set_cookie = decision.set_cookie;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(cookie) = self.set_cookie.take() {
            // Added, not replaced: the upstream's own cookies must reach the client too.
            if let Err(status) =
                hostcalls::add_map_value(MapType::HttpResponseHeaders, "set-cookie", &cookie)
            {
                log(
                    LogLevel::Warn,
                    &format!("{FILTER_NAME}: cannot add set-cookie: {status:?}"),
                );
            }
        }
        Action::Continue
    }
}

/// Writes or removes the tag header, then has Envoy choose the route again.
fn apply_header(header: &str, action: &HeaderAction) {
    let value = match action {
        HeaderAction::Unchanged => return,
        HeaderAction::Set(value) => Some(value.as_str()),
        HeaderAction::Remove => None,
    };
    // Replacing sets one value in place of every copy; `None` removes every copy.
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, header, value) {
        log(
            LogLevel::Error,
            &format!("{FILTER_NAME}: cannot write request header {header}: {status:?}"),
        );
        return;
    }
    // Envoy picked the route before this filter ran. ABI 0.2.1 happens to clear the route cache on
    // a header change; the explicit call keeps the re-route when that implicit behaviour goes.
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log(
            LogLevel::Error,
            &format!(
                "{FILTER_NAME}: clear_route_cache failed, the route may ignore the tag: {status:?}"
            ),
        );
    }
}

/// The core's view of the request, over proxy-wasm host calls.
struct ProxyRequest {
    context_id: u32,
}

impl RequestHost for ProxyRequest {
    fn request_headers(&self) -> Vec<(String, String)> {
        // The byte form: the string form of the SDK traps on a header value that is not UTF-8,
        // which any client can send. Such a value is read lossily; it can only fail to match.
        match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
            Ok(headers) => headers
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("{FILTER_NAME}: cannot read request headers: {status:?}"),
                );
                Vec::new()
            }
        }
    }

    /// Wasm has no entropy source here (no getrandom in Envoy's VM), and a canary split needs
    /// spread, not secrecy: the host clock in nanoseconds and this stream's id, mixed.
    fn random_u64(&mut self) -> u64 {
        let nanos = hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            // Truncation keeps the low bits, the ones that change from request to request.
            .map_or(0, |since| since.as_nanos() as u64);
        fmix64(nanos ^ fmix64(u64::from(self.context_id)))
    }
}
