//! access-log: one structured JSON record per request or connection.
//! HTTP filter by default; a network (L4) filter when its root id is `network`.
//!
//! A thin adapter: each stream context calls the core's flow in `on_log`, where Envoy has every
//! request property back, with proxy-wasm implementations of the core's `Host` and `Sinks`. The
//! root context owns the `http` sink's per-worker buffer and sends it from its tick.

mod host;
mod metrics;
mod sinks;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gateway_core::access_log::{
    log_connection, log_http_request, AccessLogConfig, BatchBuffer, HttpSinkConfig,
};
use proxy_host::{load_configuration, FilterMode};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel, MapType};

use crate::host::{now_millis, ProxyHost};
use crate::metrics::Metrics;
use crate::sinks::ProxySinks;

const FILTER_NAME: &str = "access-log";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(AccessLogRoot::default()) });
}}

#[derive(Default)]
struct AccessLogRoot {
    mode: FilterMode,
    config: Option<Rc<AccessLogConfig>>,
    metrics: Option<Metrics>,
    collector: Option<Collector>,
}

/// The `http` sink of one worker: its settings and the buffer that its stream contexts fill.
struct Collector {
    config: HttpSinkConfig,
    buffer: Rc<RefCell<BatchBuffer>>,
    /// A refused dispatch (an unknown cluster, typically) is logged once, not at every tick.
    refusal_logged: bool,
}

impl AccessLogRoot {
    /// Sends every batch that is due, as far as the in-flight bound allows.
    fn flush(&mut self) {
        let (Some(collector), Some(metrics), Some(now_ms)) =
            (self.collector.as_mut(), self.metrics, now_millis())
        else {
            return;
        };
        let Ok(mut buffer) = collector.buffer.try_borrow_mut() else {
            return;
        };
        let http = &collector.config;
        let path = http.path.as_str();
        while let Some(batch) = buffer.next_batch(now_ms) {
            let headers = vec![
                (":method", "POST"),
                (":path", path),
                (":authority", http.authority()),
                ("content-type", "application/x-ndjson"),
            ];
            let timeout = Duration::from_millis(http.timeout_ms);
            match hostcalls::dispatch_http_call(
                &http.cluster,
                headers,
                Some(batch.body.as_bytes()),
                vec![],
                timeout,
            ) {
                Ok(token) => buffer.dispatched(token, batch.records),
                Err(status) => {
                    buffer.dispatch_failed();
                    if !collector.refusal_logged {
                        collector.refusal_logged = true;
                        proxy_host::log(
                            LogLevel::Warn,
                            &format!(
                                "{FILTER_NAME}: cannot send to cluster {:?} ({status:?}); \
                                 batches are dropped and counted in access_log.failed_batches",
                                http.cluster
                            ),
                        );
                    }
                }
            }
        }
        metrics.report(&mut buffer);
    }
}

impl Context for AccessLogRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        // No `:status` means no response at all: connection refused, reset or timeout.
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|status| status.parse::<u32>().ok());
        let (Some(collector), Some(metrics)) = (self.collector.as_ref(), self.metrics) else {
            return;
        };
        if let Ok(mut buffer) = collector.buffer.try_borrow_mut() {
            buffer.completed(token_id, status);
            metrics.report(&mut buffer);
        }
    }
}

impl RootContext for AccessLogRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.mode = FilterMode::from_root_id();
        let Some(config) = load_configuration(
            FILTER_NAME,
            self.get_plugin_configuration(),
            AccessLogConfig::from_json,
        ) else {
            return false;
        };
        self.metrics.get_or_insert_with(Metrics::define);
        // A new configuration starts a new buffer; answers to the old one's calls are ignored.
        self.collector = config.sinks.http.clone().map(|http| Collector {
            buffer: Rc::new(RefCell::new(BatchBuffer::new(&http))),
            config: http,
            refusal_logged: false,
        });
        let tick = self.collector.as_ref().map_or(0, |c| {
            c.buffer
                .try_borrow()
                .map_or(0, |buffer| buffer.check_period_ms())
        });
        // Zero stops the tick of a previous configuration that had an `http` sink.
        let _ = hostcalls::set_tick_period(Duration::from_millis(tick));
        self.config = Some(Rc::new(config));
        true
    }

    fn on_tick(&mut self) {
        self.flush();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(self.mode.context_type())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AccessLogHttp(self.logger())))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(AccessLogStream(self.logger())))
    }
}

impl AccessLogRoot {
    /// What a stream context needs; `None` before a valid configuration, when Envoy creates no
    /// stream contexts anyway (the SDK requires one to be returned all the same).
    fn logger(&self) -> Option<Logger> {
        Some(Logger {
            config: Rc::clone(self.config.as_ref()?),
            sinks: ProxySinks {
                collector: self.collector.as_ref().map(|c| Rc::clone(&c.buffer)),
                metrics: self.metrics?,
            },
        })
    }
}

struct Logger {
    config: Rc<AccessLogConfig>,
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
            let outcome = log_http_request(&logger.config, &ProxyHost, &mut logger.sinks);
            logger.sinks.metrics.count(outcome);
        }
    }
}

/// One TCP connection; Envoy calls `on_log` once when it closes, from either side.
struct AccessLogStream(Option<Logger>);

impl Context for AccessLogStream {}

impl StreamContext for AccessLogStream {
    fn on_log(&mut self) {
        if let Some(logger) = &mut self.0 {
            let outcome = log_connection(&logger.config, &ProxyHost, &mut logger.sinks);
            logger.sinks.metrics.count(outcome);
        }
    }
}
