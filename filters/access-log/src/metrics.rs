//! The access log's counters in Envoy's stats (`wasmcustom.access_log.*`).

use gateway_core::access_log::{BatchBuffer, Outcome};
use proxy_host::Counter;

use crate::FILTER_NAME;

#[derive(Debug, Clone, Copy)]
pub struct Metrics {
    /// Records built and handed to the sinks.
    records: Counter,
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
    pub fn define() -> Self {
        Self {
            records: Counter::define(FILTER_NAME, "access_log.records"),
            sampled_out: Counter::define(FILTER_NAME, "access_log.sampled_out"),
            sent: Counter::define(FILTER_NAME, "access_log.sent"),
            dropped: Counter::define(FILTER_NAME, "access_log.dropped"),
            failed_batches: Counter::define(FILTER_NAME, "access_log.failed_batches"),
        }
    }

    pub fn count(self, outcome: Outcome) {
        match outcome {
            Outcome::Logged => self.records.add(1),
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
