//! What the access log reads from Envoy, behind a small trait: the filter crate implements it over
//! proxy-wasm host calls, the tests over maps, so the whole flow runs natively in unit tests.

/// Reads one stream's (request's or connection's) facts from the host. Every call is a host call:
/// the flow reads each property and header once.
pub trait Host {
    /// The raw bytes of a property (`["request", "path"]`) or of another filter's filter state
    /// (`["gateway_wasm.allowlist.decision"]`); `None` when absent.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// A request header by lowercase name, pseudo-headers included (`:authority`).
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// A response header by lowercase name.
    fn response_header(&self, name: &str) -> Option<Vec<u8>>;
    /// The host's clock, in nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> Option<i64>;
}

/// Envoy attribute paths (Envoy 1.40), each read at most once per record.
pub mod property {
    pub const REQUEST_TIME: &[&str] = &["request", "time"];
    pub const REQUEST_METHOD: &[&str] = &["request", "method"];
    pub const REQUEST_PATH: &[&str] = &["request", "path"];
    pub const REQUEST_PROTOCOL: &[&str] = &["request", "protocol"];
    pub const REQUEST_ID: &[&str] = &["request", "id"];
    pub const REQUEST_USER_AGENT: &[&str] = &["request", "useragent"];
    pub const REQUEST_DURATION: &[&str] = &["request", "duration"];
    /// Request body bytes; for a TCP connection, the bytes received from downstream.
    pub const REQUEST_SIZE: &[&str] = &["request", "size"];
    pub const RESPONSE_CODE: &[&str] = &["response", "code"];
    pub const RESPONSE_FLAGS: &[&str] = &["response", "flags"];
    pub const RESPONSE_CODE_DETAILS: &[&str] = &["response", "code_details"];
    /// Response body bytes; for a TCP connection, the bytes sent to downstream.
    pub const RESPONSE_SIZE: &[&str] = &["response", "size"];
    pub const UPSTREAM_ADDRESS: &[&str] = &["upstream", "address"];
    pub const UPSTREAM_TRANSPORT_FAILURE_REASON: &[&str] =
        &["upstream", "transport_failure_reason"];
    pub const CLUSTER_NAME: &[&str] = &["xds", "cluster_name"];
    pub const ROUTE_NAME: &[&str] = &["xds", "route_name"];
    pub const SOURCE_ADDRESS: &[&str] = &["source", "address"];
    pub const DESTINATION_ADDRESS: &[&str] = &["destination", "address"];
    pub const REQUESTED_SERVER_NAME: &[&str] = &["connection", "requested_server_name"];
    pub const CONNECTION_ID: &[&str] = &["connection", "id"];
}

/// Envoy's router sets it on a proxied response: the upstream's time in milliseconds.
pub const UPSTREAM_SERVICE_TIME_HEADER: &str = "x-envoy-upstream-service-time";

/// An integer, timestamp or duration property: proxy-wasm hands them over as 8 little-endian bytes
/// (timestamps and durations in nanoseconds). Anything else is treated as absent.
pub fn int64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

/// A count or code, which cannot be negative.
pub fn uint64(bytes: &[u8]) -> Option<u64> {
    u64::try_from(int64(bytes)?).ok()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn integers_are_eight_little_endian_bytes() {
        let cases: &[(&[u8], Option<i64>, Option<u64>)] = &[
            (&[148, 1, 0, 0, 0, 0, 0, 0], Some(404), Some(404)),
            (&[0; 8], Some(0), Some(0)),
            (&[0xff; 8], Some(-1), None),
            (&[0, 0, 0, 0, 0, 0, 0, 0x80], Some(i64::MIN), None),
            (&[1, 0, 0, 0], None, None),
            (&[1, 0, 0, 0, 0, 0, 0, 0, 0], None, None),
            (b"", None, None),
            (b"404", None, None),
        ];
        for (bytes, signed, unsigned) in cases {
            assert_eq!(int64(bytes), *signed, "{bytes:?}");
            assert_eq!(uint64(bytes), *unsigned, "{bytes:?}");
        }
    }
}
