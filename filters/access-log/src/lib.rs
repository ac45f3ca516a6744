//! access-log: one structured JSON record per request or connection.
//! An HTTP filter, or a network (L4) filter logging connections, as Envoy loads it (each new stream
//! tells which, [`FilterMode::of_new_context`]; the root id plays no part).
//!
//! A thin adapter: each stream context calls the core's flow in `on_log`, where Envoy has every
//! request property back, with proxy-wasm implementations of the core's `Host` and `Sinks`. The
//! root context owns the `http` sink's per-worker buffer and sends it from its tick.

use std::rc::Rc;

use gateway_core::access_log::{log_connection, log_http_request, AccessLogConfig};
use proxy_host::access_log::{
    Collector, Metrics, ProxyHost, ProxySinks, RecordAttributes, RecordAttributesSlot,
};
use proxy_host::{load_configuration, FilterMode};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

const FILTER_NAME: &str = "access-log";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AccessLogRoot::default()) });
}}

#[derive(Default)]
struct AccessLogRoot {
    config: Option<Rc<AccessLogConfig>>,
    metrics: Option<Metrics>,
    collector: Option<Collector>,
    /// The configuration's record attributes in Envoy, for HTTP requests and for connections; none
    /// reads them one by one. Both exist because the stream, not the configuration, says which kind
    /// of filter this is.
    http_attributes: RecordAttributesSlot,
    connection_attributes: RecordAttributesSlot,
}

impl Context for AccessLogRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        if let (Some(collector), Some(metrics)) = (self.collector.as_ref(), self.metrics) {
            collector.completed(token_id, metrics);
        }
    }
}

impl RootContext for AccessLogRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(config) = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            AccessLogConfig::from_json,
        ) else {
            return false;
        };
        // Defined again for each configuration: its `gateway` tags them.
        self.metrics = Some(Metrics::define(FILTER_NAME, config.gateway.as_deref()));
        // A new configuration starts a new buffer; answers to the old one's calls are ignored.
        self.collector = config.sinks.http.clone().map(Collector::new);
        // Zero stops the tick of a previous configuration that had an `http` sink.
        let tick = self
            .collector
            .as_ref()
            .map(Collector::tick_period)
            .unwrap_or_default();
        let _ = hostcalls::set_tick_period(tick);
        self.http_attributes.replace(RecordAttributes::create(
            FILTER_NAME,
            FilterMode::Http,
            &config,
        ));
        self.connection_attributes.replace(RecordAttributes::create(
            FILTER_NAME,
            FilterMode::Network,
            &config,
        ));
        self.config = Some(Rc::new(config));
        true
    }

    fn on_tick(&mut self) {
        if let (Some(collector), Some(metrics)) = (self.collector.as_mut(), self.metrics) {
            collector.flush(FILTER_NAME, metrics);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(FilterMode::of_new_context().context_type())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AccessLogHttp(self.logger(&self.http_attributes))))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(AccessLogStream(
            self.logger(&self.connection_attributes),
        )))
    }
}

impl AccessLogRoot {
    /// What a stream context needs; `None` before a valid configuration, when Envoy creates no
    /// stream contexts anyway (the SDK requires one to be returned all the same).
    fn logger(&self, attributes: &RecordAttributesSlot) -> Option<Logger> {
        Some(Logger {
            config: Rc::clone(self.config.as_ref()?),
            attributes: attributes.get(),
            sinks: ProxySinks {
                collector: self.collector.as_ref().map(Collector::buffer),
                metrics: self.metrics?,
            },
        })
    }
}

struct Logger {
    config: Rc<AccessLogConfig>,
    attributes: Option<RecordAttributes>,
    sinks: ProxySinks,
}

/// One HTTP request; its record is written in `on_log`, the only callback after the response
/// where `request.*` properties are available and sizes and duration are final.
struct AccessLogHttp(Option<Logger>);

impl Context for AccessLogHttp {}

impl HttpContext for AccessLogHttp {
    fn on_log(&mut self) {
        #[cfg(feature = "test-trap")]
        proxy_host::trap_if_requested(FILTER_NAME);
        if let Some(logger) = &mut self.0 {
            let host = ProxyHost::new(logger.attributes.clone());
            let outcome = log_http_request(&logger.config, &host, &mut logger.sinks);
            logger.sinks.metrics.count(outcome, &host);
        }
    }
}

/// One TCP connection; Envoy calls `on_log` once when it closes, from either side.
struct AccessLogStream(Option<Logger>);

impl Context for AccessLogStream {}

impl StreamContext for AccessLogStream {
    fn on_log(&mut self) {
        if let Some(logger) = &mut self.0 {
            let host = ProxyHost::new(logger.attributes.clone());
            let outcome = log_connection(&logger.config, &host, &mut logger.sinks);
            logger.sinks.metrics.count(outcome, &host);
        }
    }
}
