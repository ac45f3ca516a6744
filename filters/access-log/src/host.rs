//! The core's [`Host`] over proxy-wasm host calls, for the context whose callback is running.
//!
//! The SDK's `Context` methods unwrap host errors, and a panic traps the VM; these calls read the
//! raw results and treat an error as an absent value.

use std::time::UNIX_EPOCH;

use gateway_core::access_log::Host;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

pub struct ProxyHost;

impl Host for ProxyHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
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
