//! The access log's [`Host`] in the combined module: what this filter decided comes from memory,
//! everything else from the proxy, as the access-log filter reads it.

use gateway_core::access_log::Host;
use gateway_core::filter_state::{ALLOWLIST_DECISION, SUBSET_TAG};
use proxy_host::access_log::{ProxyHost, RecordAttributes};

pub struct StreamHost {
    /// `Some` when the allowlist feature runs here: its decision (`None` if it did not decide).
    /// `None` leaves the value to filter state, where a separate host-allowlist may have put it.
    allowlist: Option<Option<String>>,
    /// The same for the subset tag.
    subset: Option<Option<String>>,
    proxy: ProxyHost,
}

impl StreamHost {
    pub fn new(
        allowlist: Option<Option<String>>,
        subset: Option<Option<String>>,
        attributes: Option<RecordAttributes>,
    ) -> Self {
        Self {
            allowlist,
            subset,
            proxy: ProxyHost::new(attributes),
        }
    }

    /// What was read from the proxy, for the access log's counters.
    pub fn proxy(&self) -> &ProxyHost {
        &self.proxy
    }
}

impl Host for StreamHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            [ALLOWLIST_DECISION] if self.allowlist.is_some() => {
                self.allowlist.clone().flatten().map(String::into_bytes)
            }
            [SUBSET_TAG] if self.subset.is_some() => {
                self.subset.clone().flatten().map(String::into_bytes)
            }
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
