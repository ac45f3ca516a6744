//! The access log's [`Host`] in the combined module: what this filter decided comes from memory,
//! everything else from the proxy, as the access-log filter reads it.

use gateway_core::access_log::Host;
use gateway_core::filter_state::{ALLOWLIST_KEYS, SUBSET};
use proxy_host::access_log::{ProxyHost, RecordAttributes};

pub struct StreamHost {
    /// Whether the allowlist and the tagger run in this filter: the values of their filter-state
    /// keys then come from `published` (absent if not there), never from the proxy. The keys of a
    /// feature that does not run here are read from filter state, where a separate host-allowlist
    /// or subset-tagger may have put them.
    allowlist_runs: bool,
    subset_runs: bool,
    /// What this stream published under those keys.
    published: Vec<(&'static str, String)>,
    proxy: ProxyHost,
}

impl StreamHost {
    pub fn new(
        allowlist_runs: bool,
        subset_runs: bool,
        published: Vec<(&'static str, String)>,
        attributes: Option<RecordAttributes>,
    ) -> Self {
        Self {
            allowlist_runs,
            subset_runs,
            published,
            proxy: ProxyHost::new(attributes),
        }
    }

    fn owns(&self, key: &str) -> bool {
        (self.allowlist_runs && ALLOWLIST_KEYS.contains(&key))
            || (self.subset_runs && key == SUBSET)
    }

    /// What was read from the proxy, for the access log's counters.
    pub fn proxy(&self) -> &ProxyHost {
        &self.proxy
    }
}

impl Host for StreamHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            [key] if self.owns(key) => self
                .published
                .iter()
                .find(|(published, _)| published == key)
                .map(|(_, value)| value.clone().into_bytes()),
            _ => self.proxy.property(path),
        }
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.proxy.request_header(name)
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.proxy.response_header(name)
    }

    fn now_nanos(&self) -> Option<i64> {
        self.proxy.now_nanos()
    }
}
