//! The core's [`Sinks`] over proxy-wasm: Envoy's log, filter state, and the worker's batch buffer
//! that the root context sends to the collector.

use std::cell::RefCell;
use std::rc::Rc;

use gateway_core::access_log::{BatchBuffer, Sinks};
use gateway_core::filter_state::ACCESS_LOG_RECORD;
use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::metrics::Metrics;

pub struct ProxySinks {
    /// The root context's buffer, present when the `http` sink is configured.
    pub collector: Option<Rc<RefCell<BatchBuffer>>>,
    pub metrics: Metrics,
}

impl Sinks for ProxySinks {
    fn envoy_log(&mut self, line: &str) {
        proxy_host::log(LogLevel::Info, line);
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
