//! The `http` sink's per-worker buffer: records wait here as NDJSON lines until the root context
//! sends them as one POST. Everything is bounded (records held, POSTs open) so that a collector
//! that is down or slow costs dropped records, counted, and never memory or request latency.

use std::collections::VecDeque;

use super::config::HttpSinkConfig;

/// The root context checks the buffer at least this often, so a full batch waits at most this long.
const MAX_CHECK_PERIOD_MS: u64 = 100;

/// Record counts since the filter last reported them to Envoy's stats.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    /// Records in batches the collector answered with a 2xx.
    pub sent: u64,
    /// Records refused because the buffer was full.
    pub dropped: u64,
    /// Batches not delivered: the call could not start, timed out, failed or got a non-2xx status.
    pub failed_batches: u64,
}

/// One POST body and how many records it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch {
    pub body: String,
    pub records: usize,
}

#[derive(Debug)]
pub struct BatchBuffer {
    batch_size: usize,
    max_buffered_records: usize,
    flush_interval_ms: u64,
    max_in_flight: usize,
    records: VecDeque<String>,
    /// Open POSTs: the host's call token and the number of records in it.
    in_flight: Vec<(u32, usize)>,
    last_flush_ms: Option<u64>,
    counts: BatchCounts,
}

impl BatchBuffer {
    pub fn new(config: &HttpSinkConfig) -> Self {
        Self {
            batch_size: config.batch_size.max(1),
            max_buffered_records: config.max_buffered_records,
            flush_interval_ms: config.flush_interval_ms,
            max_in_flight: config.max_in_flight,
            records: VecDeque::new(),
            in_flight: Vec::new(),
            last_flush_ms: None,
            counts: BatchCounts::default(),
        }
    }

    /// How often the root context should call [`BatchBuffer::next_batch`]: often enough that a
    /// full batch does not wait for the flush interval.
    pub fn check_period_ms(&self) -> u64 {
        self.flush_interval_ms.clamp(1, MAX_CHECK_PERIOD_MS)
    }

    /// Adds one record; `false` when the buffer is full and the record was dropped.
    pub fn push(&mut self, record: String) -> bool {
        if self.records.len() >= self.max_buffered_records {
            self.counts.dropped += 1;
            return false;
        }
        self.records.push_back(record);
        true
    }

    pub fn buffered(&self) -> usize {
        self.records.len()
    }

    /// The next POST to send at `now_ms`, if one is due and the in-flight bound allows it: a full
    /// batch at once, a partial one when the flush interval has passed since the last flush. The
    /// caller sends it and reports [`BatchBuffer::dispatched`] or [`BatchBuffer::dispatch_failed`].
    pub fn next_batch(&mut self, now_ms: u64) -> Option<Batch> {
        if self.records.is_empty() || self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        let interval_passed = self
            .last_flush_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.flush_interval_ms);
        if self.records.len() < self.batch_size && !interval_passed {
            return None;
        }
        self.last_flush_ms = Some(now_ms);
        let records = self.records.len().min(self.batch_size);
        let mut body =
            String::with_capacity(self.records.iter().take(records).map(|r| r.len() + 1).sum());
        for record in self.records.drain(..records) {
            body.push_str(&record);
            body.push('\n');
        }
        Some(Batch { body, records })
    }

    /// The batch is on its way under the host's call `token`.
    pub fn dispatched(&mut self, token: u32, records: usize) {
        self.in_flight.push((token, records));
    }

    /// The host refused to start the call (unknown cluster, for instance).
    pub fn dispatch_failed(&mut self) {
        self.counts.failed_batches += 1;
    }

    /// The call `token` ended with HTTP `status`, or `None` when it got no response (connection
    /// refused, reset, timeout). Returns `false` for a token this buffer did not send, such as one
    /// from before a configuration change.
    pub fn completed(&mut self, token: u32, status: Option<u32>) -> bool {
        let Some(position) = self.in_flight.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, records) = self.in_flight.swap_remove(position);
        match status {
            Some(200..=299) => self.counts.sent += records as u64,
            _ => self.counts.failed_batches += 1,
        }
        true
    }

    /// The counts since the last call, which start again from zero.
    pub fn take_counts(&mut self) -> BatchCounts {
        std::mem::take(&mut self.counts)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn buffer(
        batch_size: usize,
        max_buffered: usize,
        interval: u64,
        in_flight: usize,
    ) -> BatchBuffer {
        BatchBuffer::new(&HttpSinkConfig {
            cluster: "collector".into(),
            authority: None,
            path: "/".into(),
            flush_interval_ms: interval,
            batch_size,
            max_buffered_records: max_buffered,
            timeout_ms: 1000,
            max_in_flight: in_flight,
        })
    }

    fn push(buffer: &mut BatchBuffer, names: &[&str]) {
        for name in names {
            assert!(buffer.push(format!("{{\"r\":\"{name}\"}}")));
        }
    }

    #[test]
    fn check_period_is_the_interval_up_to_100_ms() {
        for (interval, period) in [(1, 1), (50, 50), (100, 100), (1000, 100), (60_000, 100)] {
            assert_eq!(
                buffer(1, 1, interval, 1).check_period_ms(),
                period,
                "{interval}"
            );
        }
    }

    #[test]
    fn full_batches_go_at_once_and_partial_ones_after_the_interval() {
        let mut buffer = buffer(2, 10, 1000, 5);
        assert_eq!(buffer.next_batch(0), None, "nothing buffered");
        push(&mut buffer, &["a"]);
        // The first check has no previous flush to wait for.
        let first = buffer.next_batch(0).unwrap();
        assert_eq!(
            first,
            Batch {
                body: "{\"r\":\"a\"}\n".into(),
                records: 1
            }
        );
        push(&mut buffer, &["b"]);
        assert_eq!(
            buffer.next_batch(999),
            None,
            "partial batch within the interval"
        );
        push(&mut buffer, &["c", "d"]);
        let full = buffer.next_batch(10).unwrap();
        assert_eq!(full.body, "{\"r\":\"b\"}\n{\"r\":\"c\"}\n");
        assert_eq!(full.records, 2);
        assert_eq!(
            buffer.next_batch(1009),
            None,
            "a full batch restarts the interval"
        );
        let late = buffer.next_batch(1010).unwrap();
        assert_eq!(late.body, "{\"r\":\"d\"}\n");
        assert_eq!(buffer.buffered(), 0);
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let mut buffer = buffer(2, 3, 1000, 1);
        push(&mut buffer, &["a", "b", "c"]);
        assert!(!buffer.push("d".into()));
        assert!(!buffer.push("e".into()));
        assert_eq!(buffer.buffered(), 3);
        assert_eq!(
            buffer.take_counts(),
            BatchCounts {
                sent: 0,
                dropped: 2,
                failed_batches: 0
            }
        );
        assert_eq!(
            buffer.take_counts(),
            BatchCounts::default(),
            "counts restart"
        );
    }

    #[test]
    fn open_posts_are_bounded() {
        let mut buffer = buffer(1, 10, 1000, 2);
        push(&mut buffer, &["a", "b", "c"]);
        let first = buffer.next_batch(0).unwrap();
        buffer.dispatched(7, first.records);
        let second = buffer.next_batch(0).unwrap();
        buffer.dispatched(8, second.records);
        assert_eq!(buffer.next_batch(5000), None, "two POSTs open");
        assert!(buffer.completed(7, Some(204)));
        let third = buffer.next_batch(5000).unwrap();
        assert_eq!(third.body, "{\"r\":\"c\"}\n");
    }

    #[test]
    fn responses_count_sent_records_or_failed_batches() {
        let cases: &[(Option<u32>, BatchCounts)] = &[
            (
                Some(200),
                BatchCounts {
                    sent: 3,
                    dropped: 0,
                    failed_batches: 0,
                },
            ),
            (
                Some(202),
                BatchCounts {
                    sent: 3,
                    dropped: 0,
                    failed_batches: 0,
                },
            ),
            (
                Some(299),
                BatchCounts {
                    sent: 3,
                    dropped: 0,
                    failed_batches: 0,
                },
            ),
            (
                Some(199),
                BatchCounts {
                    sent: 0,
                    dropped: 0,
                    failed_batches: 1,
                },
            ),
            (
                Some(301),
                BatchCounts {
                    sent: 0,
                    dropped: 0,
                    failed_batches: 1,
                },
            ),
            (
                Some(429),
                BatchCounts {
                    sent: 0,
                    dropped: 0,
                    failed_batches: 1,
                },
            ),
            (
                Some(503),
                BatchCounts {
                    sent: 0,
                    dropped: 0,
                    failed_batches: 1,
                },
            ),
            (
                None,
                BatchCounts {
                    sent: 0,
                    dropped: 0,
                    failed_batches: 1,
                },
            ),
        ];
        for (status, counts) in cases {
            let mut buffer = buffer(3, 10, 1000, 1);
            push(&mut buffer, &["a", "b", "c"]);
            let batch = buffer.next_batch(0).unwrap();
            buffer.dispatched(1, batch.records);
            assert!(buffer.completed(1, *status));
            assert_eq!(buffer.take_counts(), *counts, "{status:?}");
            assert!(!buffer.completed(1, *status), "a token completes once");
        }
    }

    #[test]
    fn unknown_tokens_and_refused_calls() {
        let mut buffer = buffer(1, 10, 1000, 1);
        assert!(!buffer.completed(42, Some(200)));
        push(&mut buffer, &["a", "b"]);
        assert!(buffer.next_batch(0).is_some());
        buffer.dispatch_failed();
        assert_eq!(buffer.take_counts().failed_batches, 1);
        assert!(
            buffer.next_batch(0).is_some(),
            "a refused call holds no slot"
        );
    }

    #[test]
    fn a_down_collector_drops_instead_of_growing() {
        let mut buffer = buffer(10, 50, 1000, 1);
        let mut accepted = 0;
        for second in 0..20u64 {
            for n in 0..100 {
                if buffer.push(format!("{{\"n\":{n}}}")) {
                    accepted += 1;
                }
            }
            if let Some(batch) = buffer.next_batch(second * 1000) {
                // The collector never answers: the one POST stays open.
                buffer.dispatched(1, batch.records);
            }
            assert!(buffer.buffered() <= 50);
        }
        let counts = buffer.take_counts();
        assert_eq!(
            accepted, 60,
            "one batch of 10 left, then the buffer stayed full"
        );
        assert_eq!(counts.dropped, 2000 - 60);
        assert_eq!(counts.sent, 0);
    }
}
