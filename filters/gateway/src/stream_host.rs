//! The access log's [`Host`] in the combined module: what this filter decided comes from memory,
//! the request headers from one read of the header map, the rest from the proxy.

use std::cell::OnceCell;

use gateway_core::access_log::{property, Host};
use gateway_core::filter_state::{ALLOWLIST_DECISION, SUBSET_TAG};
use proxy_host::access_log::ProxyHost;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

pub struct StreamHost {
    /// `Some` when the allowlist feature runs here: its decision (`None` if it did not decide).
    /// `None` leaves the value to filter state, where a separate host-allowlist may have put it.
    allowlist: Option<Option<String>>,
    /// The same for the subset tag.
    subset: Option<Option<String>>,
    request_headers: OnceCell<Vec<(String, Vec<u8>)>>,
}

impl StreamHost {
    pub fn new(allowlist: Option<Option<String>>, subset: Option<Option<String>>) -> Self {
        Self {
            allowlist,
            subset,
            request_headers: OnceCell::new(),
        }
    }

    /// The first value of a request header, as `get_header_map_value` answers it.
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.request_headers
            .get_or_init(|| {
                hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
            })
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
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
            // Envoy answers these attributes from the request headers (`:method`, `:path`,
            // `user-agent`, `x-request-id`), which one map read already holds.
            _ if path == property::REQUEST_METHOD => self.header(":method"),
            _ if path == property::REQUEST_PATH => self.header(":path"),
            _ if path == property::REQUEST_USER_AGENT => self.header("user-agent"),
            _ if path == property::REQUEST_ID => self.header("x-request-id"),
            _ => ProxyHost.property(path),
        }
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.header(name)
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        ProxyHost.response_header(name)
    }

    fn now_nanos(&self) -> Option<i64> {
        ProxyHost.now_nanos()
    }
}
