//! The access log's proxy-wasm side, shared by the access-log filter and the combined gateway
//! module: the core's [`Host`] and [`Sinks`] over host calls, the counters, and the `http` sink's
//! per-worker buffer that the root context sends from its tick.
//!
//! The SDK's `Context` methods unwrap host errors, and a panic traps the VM; these calls read the
//! raw results and treat an error as an absent value.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use gateway_core::access_log::{
    property, AccessLogConfig, AttributeList, AttributeValues, BatchBuffer, Host, HttpSinkConfig,
    Outcome, Sinks,
};
use gateway_core::filter_state::ACCESS_LOG_RECORD;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType};

use crate::{Counter, FilterMode};

/// The record's attributes as one CEL expression that Envoy holds for the configuration
/// ([`AttributeList`]); the streams evaluate it.
#[derive(Debug, Clone)]
pub struct RecordAttributes {
    token: u32,
    list: Rc<AttributeList>,
}

impl RecordAttributes {
    /// Has Envoy create the expression for the records of `mode`'s streams under `config`. `None`,
    /// and the attributes are read one by one, when Envoy has no `expr_create` or refuses the
    /// expression.
    pub fn create(filter: &str, mode: FilterMode, config: &AccessLogConfig) -> Option<Self> {
        let list = match mode {
            FilterMode::Http => AttributeList::http_record(config),
            FilterMode::Network => AttributeList::connection_record(),
        };
        let expression = list.cel_expression();
        let answer = hostcalls::call_foreign_function("expr_create", Some(expression.as_bytes()));
        match answer.ok().flatten().as_deref().map(<[u8; 4]>::try_from) {
            Some(Ok(token)) => Some(Self {
                token: u32::from_le_bytes(token),
                list: Rc::new(list),
            }),
            _ => {
                crate::log(
                    LogLevel::Info,
                    &format!(
                        "{filter}: Envoy cannot evaluate CEL expressions (expr_create); \
                         the record's attributes are read one by one"
                    ),
                );
                None
            }
        }
    }

    fn delete(&self) {
        let _ = hostcalls::call_foreign_function("expr_delete", Some(&self.token.to_le_bytes()));
    }

    /// The values for the running stream; `None` when the evaluation fails (an attribute missing
    /// that the list expects, typically), and the attributes are read one by one.
    fn evaluate(&self) -> Option<AttributeValues> {
        let answer =
            hostcalls::call_foreign_function("expr_evaluate", Some(&self.token.to_le_bytes()));
        let values = answer
            .ok()
            .flatten()
            .and_then(|answer| self.list.values(answer));
        if values.is_none() {
            crate::log(
                LogLevel::Debug,
                "access log: the attribute list did not evaluate; reading them one by one",
            );
        }
        values
    }
}

/// A root context's [`RecordAttributes`], replaced with each configuration and freed in Envoy with
/// the root context: Envoy deletes a root context when a new configuration replaces it, but keeps
/// the VM, and the expressions created in it.
#[derive(Debug, Default)]
pub struct RecordAttributesSlot(Option<RecordAttributes>);

impl RecordAttributesSlot {
    pub fn replace(&mut self, attributes: Option<RecordAttributes>) {
        if let Some(previous) = std::mem::replace(&mut self.0, attributes) {
            previous.delete();
        }
    }

    /// The handle for a stream context.
    pub fn get(&self) -> Option<RecordAttributes> {
        self.0.clone()
    }
}

impl Drop for RecordAttributesSlot {
    fn drop(&mut self) {
        self.replace(None);
    }
}

/// Reads the stream whose callback is running. Each value Envoy hands over costs a call into the VM
/// to allocate it (about a microsecond a read, BENCHMARKS.md), so:
/// - the record's attributes come from one evaluation of [`RecordAttributes`], made when the first
///   is needed: after the sampling decision if sampling may leave the record out (what it reads is
///   then not in the list), at the first read if every record is kept;
/// - the request headers come from one read of the whole map, made when the first is needed, and
///   so do `request.method`, `request.path`, `request.useragent` and `request.id`, which Envoy
///   itself derives from those headers (`:method`, `:path`, `user-agent`, `x-request-id`);
/// - every other property is one read.
#[derive(Debug, Default)]
pub struct ProxyHost {
    attributes: Option<RecordAttributes>,
    attribute_values: OnceCell<Option<AttributeValues>>,
    request_headers: OnceCell<Vec<(String, Vec<u8>)>>,
}

impl ProxyHost {
    pub fn new(attributes: Option<RecordAttributes>) -> Self {
        Self {
            attributes,
            ..Self::default()
        }
    }

    /// Whether the record's attributes were read one by one, not from the list's evaluation.
    pub fn read_attributes_one_by_one(&self) -> bool {
        self.attributes.is_none() || matches!(self.attribute_values.get(), Some(None))
    }

    /// `Some` with the attribute's value if the evaluated list has it.
    fn listed_attribute(&self, path: &[&str]) -> Option<Option<Vec<u8>>> {
        let attributes = self.attributes.as_ref().filter(|a| a.list.covers(path))?;
        self.attribute_values
            .get_or_init(|| attributes.evaluate())
            .as_ref()?
            .get(path)
    }

    /// The first value of a request header, as `get_header_map_value` would answer it.
    fn first_request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.request_headers
            .get_or_init(|| {
                hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
            })
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
    }
}

impl Host for ProxyHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            _ if path == property::REQUEST_METHOD => self.first_request_header(":method"),
            _ if path == property::REQUEST_PATH => self.first_request_header(":path"),
            _ if path == property::REQUEST_USER_AGENT => self.first_request_header("user-agent"),
            _ if path == property::REQUEST_ID => self.first_request_header("x-request-id"),
            _ => self
                .listed_attribute(path)
                .unwrap_or_else(|| hostcalls::get_property(path.to_vec()).ok().flatten()),
        }
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.first_request_header(name)
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.listed_attribute(&["response", "headers", name])
            .unwrap_or_else(|| {
                hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
                    .ok()
                    .flatten()
            })
    }

    fn now_nanos(&self) -> Option<i64> {
        let since_epoch = hostcalls::get_current_time()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?;
        i64::try_from(since_epoch.as_nanos()).ok()
    }
}

/// The host's clock in milliseconds since the Unix epoch, for the batch buffer's flush interval.
pub fn now_millis() -> Option<u64> {
    let since_epoch = hostcalls::get_current_time()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?;
    u64::try_from(since_epoch.as_millis()).ok()
}

/// The access log's counters in Envoy's stats (`wasmcustom.access_log.*`).
#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    /// Records built and handed to the sinks.
    records: Counter,
    /// Records whose attributes were read one by one: Envoy could not evaluate the attribute list
    /// (see [`RecordAttributes`]). The same record, at a higher cost.
    attributes_read_one_by_one: Counter,
    /// Requests and connections that sampling left out.
    sampled_out: Counter,
    /// Records in batches the collector answered with a 2xx.
    sent: Counter,
    /// Records the `http` sink's full buffer refused.
    dropped: Counter,
    /// Batches the collector did not take: refused call, no answer, timeout, non-2xx.
    failed_batches: Counter,
}

impl Metrics {
    /// Defines the counters `access_log.*`, tagged with the configuration's `gateway` when it
    /// names one (see [`Counter::define_tagged`]).
    pub fn define(filter: &str, gateway: Option<&str>) -> Self {
        let tags: Vec<(&str, &str)> = gateway
            .map(|gateway| ("gateway", gateway))
            .into_iter()
            .collect();
        let counter = |name: &str| Counter::define_tagged(filter, &tags, name);
        Self {
            records: counter("access_log.records"),
            attributes_read_one_by_one: counter("access_log.attributes_read_one_by_one"),
            sampled_out: counter("access_log.sampled_out"),
            sent: counter("access_log.sent"),
            dropped: counter("access_log.dropped"),
            failed_batches: counter("access_log.failed_batches"),
        }
    }

    /// Counts the outcome of one record's flow, which read the stream through `host`.
    pub fn count(self, outcome: Outcome, host: &ProxyHost) {
        match outcome {
            Outcome::Logged => {
                self.records.add(1);
                if host.read_attributes_one_by_one() {
                    self.attributes_read_one_by_one.add(1);
                }
            }
            Outcome::SampledOut => self.sampled_out.add(1),
        }
    }

    /// Moves what the buffer counted since the last report into Envoy's stats.
    pub fn report(self, buffer: &mut BatchBuffer) {
        let counts = buffer.take_counts();
        self.sent.add(counts.sent);
        self.dropped.add(counts.dropped);
        self.failed_batches.add(counts.failed_batches);
    }
}

/// The core's [`Sinks`] over proxy-wasm: Envoy's log, filter state, and the worker's batch buffer.
pub struct ProxySinks {
    /// The root context's buffer, present when the `http` sink is configured.
    pub collector: Option<Rc<RefCell<BatchBuffer>>>,
    pub metrics: Metrics,
}

impl Sinks for ProxySinks {
    fn envoy_log(&mut self, line: &str) {
        crate::log(LogLevel::Info, line);
    }

    fn filter_state(&mut self, record: &str) {
        // Envoy stores it as `wasm.gateway_wasm.access_log`; a refusal leaves the native logger a
        // `-`, which is all it could print anyway.
        let _ = hostcalls::set_property(vec![ACCESS_LOG_RECORD], Some(record.as_bytes()));
    }

    fn http(&mut self, record: String) {
        // Sending happens in the root context's tick: a call dispatched from `on_log` would never
        // get its response.
        if let Some(Ok(mut buffer)) = self.collector.as_ref().map(|c| c.try_borrow_mut()) {
            buffer.push(record);
            self.metrics.report(&mut buffer);
        }
    }
}

/// The `http` sink of one worker: its settings and the buffer that its stream contexts fill.
pub struct Collector {
    config: HttpSinkConfig,
    buffer: Rc<RefCell<BatchBuffer>>,
    /// A refused dispatch (an unknown cluster, typically) is logged once, not at every tick.
    refusal_logged: bool,
}

impl Collector {
    pub fn new(config: HttpSinkConfig) -> Self {
        Self {
            buffer: Rc::new(RefCell::new(BatchBuffer::new(&config))),
            config,
            refusal_logged: false,
        }
    }

    /// The buffer, for the stream contexts' [`ProxySinks`].
    pub fn buffer(&self) -> Rc<RefCell<BatchBuffer>> {
        Rc::clone(&self.buffer)
    }

    /// How often the root context must tick to flush on time.
    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(
            self.buffer
                .try_borrow()
                .map_or(0, |buffer| buffer.check_period_ms()),
        )
    }

    /// Sends every batch that is due, as far as the in-flight bound allows.
    pub fn flush(&mut self, filter: &str, metrics: Metrics) {
        let Some(now_ms) = now_millis() else {
            return;
        };
        let Ok(mut buffer) = self.buffer.try_borrow_mut() else {
            return;
        };
        let http = &self.config;
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
                    if !self.refusal_logged {
                        self.refusal_logged = true;
                        crate::log(
                            LogLevel::Warn,
                            &format!(
                                "{filter}: cannot send to cluster {:?} ({status:?}); \
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

    /// The collector's answer to the call `token_id`.
    pub fn completed(&self, token_id: u32, metrics: Metrics) {
        // No `:status` means no response at all: connection refused, reset or timeout.
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|status| status.parse::<u32>().ok());
        if let Ok(mut buffer) = self.buffer.try_borrow_mut() {
            buffer.completed(token_id, status);
            metrics.report(&mut buffer);
        }
    }
}
