//! gateway: host-allowlist, subset-tagger and access-log in one HTTP filter, configured by sections
//! (`{"allowlist": {...}, "subset": {...}, "access_log": {...}}`, each optional).
//!
//! Each Wasm filter pays the VM boundary on every callback of every request; one filter pays it
//! once. The features are the same core code the separate modules run, carried out by the same
//! `proxy_host` pieces; what the combined module saves is host calls: the request headers are read
//! once for the allowlist and the tagger (and once more in `on_log` for the record), and the
//! record takes the decision and the tag from memory instead of reading them back from filter
//! state. Filter state, stats and responses are those of the separate modules.

mod stream_host;

use std::cell::RefCell;
use std::rc::Rc;

use gateway_core::access_log::{log_http_request, AccessLogConfig, BatchBuffer};
use gateway_core::allowlist::{Allowlist, RequestHost as AllowlistRequest};
use gateway_core::filter_state::SUBSET;
use gateway_core::gateway::GatewayConfig;
use gateway_core::subset::{RequestHost as SubsetRequest, TaggerConfig};
use proxy_host::access_log::{
    Collector, Metrics, ProxySinks, RecordAttributes, RecordAttributesSlot,
};
use proxy_host::{
    allowlist, load_configuration, log_configuration_warnings, property_text, set_filter_state,
    subset, FilterMode,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::stream_host::StreamHost;

const FILTER_NAME: &str = "gateway";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(GatewayRoot::default()) });
}}

/// One accepted configuration with its counters, shared by the worker's streams.
struct Features {
    allowlist: Option<(Allowlist, allowlist::Counters)>,
    subset: Option<(TaggerConfig, subset::Stats)>,
    access_log: Option<(AccessLogConfig, Metrics)>,
}

impl Features {
    /// What a stream runs before any configuration has been accepted: the empty allowlist, which
    /// denies every request, as the standalone host-allowlist does. The module fails closed: a
    /// gateway whose configuration did not load must not become an open proxy.
    fn until_configured() -> Self {
        Self {
            allowlist: Some((
                Allowlist::default(),
                allowlist::Counters::define(FILTER_NAME),
            )),
            subset: None,
            access_log: None,
        }
    }
}

#[derive(Default)]
struct GatewayRoot {
    features: Option<Rc<Features>>,
    collector: Option<Collector>,
    /// The access log's record attributes in Envoy; none reads them one by one.
    attributes: RecordAttributesSlot,
}

impl Context for GatewayRoot {
    fn on_http_call_response(&mut self, token_id: u32, _: usize, _: usize, _: usize) {
        if let (Some(collector), Some(metrics)) = (self.collector.as_ref(), self.metrics()) {
            collector.completed(token_id, metrics);
        }
    }
}

impl GatewayRoot {
    fn metrics(&self) -> Option<Metrics> {
        self.features
            .as_ref()?
            .access_log
            .as_ref()
            .map(|(_, metrics)| *metrics)
    }
}

impl RootContext for GatewayRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            GatewayConfig::from_json,
        ) else {
            // Refused: Envoy keeps the previous configuration, and so does this root context; with
            // none before, streams deny until one loads.
            if self.features.is_none() {
                self.features = Some(Rc::new(Features::until_configured()));
            }
            return false;
        };
        log_configuration_warnings(FILTER_NAME, &config.warnings());
        // A new configuration starts a new buffer; answers to the old one's calls are ignored.
        self.collector = config
            .access_log
            .as_ref()
            .and_then(|access_log| access_log.sinks.http.clone())
            .map(Collector::new);
        // Zero stops the tick of a previous configuration that had an `http` sink.
        let tick = self
            .collector
            .as_ref()
            .map(Collector::tick_period)
            .unwrap_or_default();
        let _ = hostcalls::set_tick_period(tick);
        self.attributes.replace(
            config
                .access_log
                .as_ref()
                .and_then(|config| RecordAttributes::create(FILTER_NAME, FilterMode::Http, config)),
        );
        self.features = Some(Rc::new(Features {
            allowlist: config
                .allowlist
                .map(|allowlist| (allowlist, allowlist::Counters::define(FILTER_NAME))),
            subset: config.subset.map(|tagger| {
                let stats = subset::Stats::define(FILTER_NAME, &tagger);
                (tagger, stats)
            }),
            access_log: config.access_log.map(|access_log| {
                let metrics = Metrics::define(FILTER_NAME, access_log.gateway.as_deref());
                (access_log, metrics)
            }),
        }));
        true
    }

    fn on_tick(&mut self) {
        if let Some(metrics) = self.metrics() {
            if let Some(collector) = self.collector.as_mut() {
                collector.flush(FILTER_NAME, metrics);
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK traps on `None`, so a stream is always created; without an accepted
        // configuration it denies every request (fail closed).
        let features = self
            .features
            .clone()
            .unwrap_or_else(|| Rc::new(Features::until_configured()));
        Some(Box::new(GatewayHttp {
            features,
            collector: self.collector.as_ref().map(Collector::buffer),
            attributes: self.attributes.get(),
            context_id,
            published: Vec::new(),
            set_cookie: None,
        }))
    }
}

struct GatewayHttp {
    features: Rc<Features>,
    /// The worker's `http` sink buffer, when configured.
    collector: Option<Rc<RefCell<BatchBuffer>>>,
    attributes: Option<RecordAttributes>,
    context_id: u32,
    /// What this stream published in filter state, kept for its record when the access log runs.
    published: Vec<(&'static str, String)>,
    /// The `Set-Cookie` to add to the response, decided with the request.
    set_cookie: Option<String>,
}

impl Context for GatewayHttp {}

impl HttpContext for GatewayHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        proxy_host::trap_if_requested(FILTER_NAME);
        let features = Rc::clone(&self.features);
        if features.allowlist.is_none() && features.subset.is_none() {
            return Action::Continue;
        }
        let headers = subset::request_headers(FILTER_NAME);
        if let Some((allowlist, counters)) = &features.allowlist {
            let verdict = allowlist.decide_request(&Headers(&headers));
            allowlist::record(FILTER_NAME, &verdict, *counters);
            if features.access_log.is_some() {
                self.published.extend(
                    verdict
                        .decision
                        .filter_state()
                        .map(|(key, value)| (key, value.to_string())),
                );
            }
            if let Action::Pause = allowlist::apply_to_request(FILTER_NAME, &verdict) {
                // Denied: answered locally, so no tag, as when the allowlist filter stops the chain.
                return Action::Pause;
            }
        }
        if let Some((tagger, stats)) = &features.subset {
            let decision = tagger.decide(&mut TaggerRequest {
                headers: RefCell::new(headers),
                context_id: self.context_id,
            });
            subset::apply_header(FILTER_NAME, &tagger.header, &decision.header);
            if let Some(subset) = decision.published_subset() {
                set_filter_state(FILTER_NAME, SUBSET, subset);
                if features.access_log.is_some() {
                    self.published.push((SUBSET, subset.to_string()));
                }
            }
            stats.count(&decision);
            self.set_cookie = decision.set_cookie;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(cookie) = self.set_cookie.take() {
            subset::add_set_cookie(FILTER_NAME, &cookie);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let features = Rc::clone(&self.features);
        let Some((config, metrics)) = &features.access_log else {
            return;
        };
        let host = StreamHost::new(
            features.allowlist.is_some(),
            features.subset.is_some(),
            std::mem::take(&mut self.published),
            self.attributes.clone(),
        );
        let mut sinks = ProxySinks {
            collector: self.collector.clone(),
            metrics: *metrics,
        };
        let outcome = log_http_request(config, &host, &mut sinks);
        metrics.count(outcome, host.proxy());
    }
}

/// The allowlist's view of the request: the headers already read, and the SNI.
struct Headers<'a>(&'a [(String, String)]);

impl Headers<'_> {
    fn first(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
    }
}

impl AllowlistRequest for Headers<'_> {
    fn authority(&self) -> Option<String> {
        self.first(":authority")
    }

    fn downstream_is_tls(&self) -> bool {
        proxy_host::downstream_is_tls()
    }

    fn requested_server_name(&self) -> Option<String> {
        property_text(&["connection", "requested_server_name"])
    }
}

/// The tagger's view of the request: the same headers, handed over once.
struct TaggerRequest {
    headers: RefCell<Vec<(String, String)>>,
    context_id: u32,
}

impl SubsetRequest for TaggerRequest {
    fn request_headers(&self) -> Vec<(String, String)> {
        // The core reads them once per request; a second read would get none.
        std::mem::take(&mut *self.headers.borrow_mut())
    }

    fn random_u64(&mut self) -> u64 {
        subset::random_u64(self.context_id)
    }
}
