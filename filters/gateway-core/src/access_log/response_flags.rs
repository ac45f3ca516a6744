//! Envoy's `response.flags` attribute, a bitmask with bit N set for `StreamInfo::CoreResponseFlag`
//! number N, written as the short codes of `%RESPONSE_FLAGS%` (`UF,URX`).
//!
//! The table follows the enum's order in Envoy's `envoy/stream_info/stream_info.h`, written from
//! memory of that header: bits 5 (UF) and 15 (URX) were confirmed against Envoy 1.40, which set
//! `0x8020` for a refused upstream connection that was retried; the newest entries (DO, DR, UDO) are
//! the least certain. A bit beyond the table (a flag newer
//! than this list) is written `bit<N>` so that it is visible rather than lost.

const SHORT_CODES: [&str; 30] = [
    "LH",    // FailedLocalHealthCheck
    "UH",    // NoHealthyUpstream
    "UT",    // UpstreamRequestTimeout
    "LR",    // LocalReset
    "UR",    // UpstreamRemoteReset
    "UF",    // UpstreamConnectionFailure
    "UC",    // UpstreamConnectionTermination
    "UO",    // UpstreamOverflow
    "NR",    // NoRouteFound
    "DI",    // DelayInjected
    "FI",    // FaultInjected
    "RL",    // RateLimited
    "UAEX",  // UnauthorizedExternalService
    "RLSE",  // RateLimitServiceError
    "DC",    // DownstreamConnectionTermination
    "URX",   // UpstreamRetryLimitExceeded
    "SI",    // StreamIdleTimeout
    "IH",    // InvalidEnvoyRequestHeaders
    "DPE",   // DownstreamProtocolError
    "UMSDR", // UpstreamMaxStreamDurationReached
    "RFCF",  // ResponseFromCacheFilter
    "NFCF",  // NoFilterConfigFound
    "DT",    // DurationTimeout
    "UPE",   // UpstreamProtocolError
    "NC",    // NoClusterFound
    "OM",    // OverloadManager
    "DF",    // DnsResolutionFailed
    "DO",    // DropOverLoad
    "DR",    // DownstreamRemoteReset
    "UDO",   // UnconditionalDropOverload
];

/// The short codes of every set bit, lowest bit first, joined by commas; `None` when no flag is
/// set, so that the record omits the field where Envoy's own logger would print `-`.
pub fn short_codes(bits: u64) -> Option<String> {
    if bits == 0 {
        return None;
    }
    let codes: Vec<String> = (0..64u32)
        .filter(|bit| bits & (1u64 << bit) != 0)
        .map(
            |bit| match usize::try_from(bit).ok().and_then(|i| SHORT_CODES.get(i)) {
                Some(code) => (*code).to_string(),
                None => format!("bit{bit}"),
            },
        )
        .collect();
    Some(codes.join(","))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn bitmasks_become_short_codes() {
        let cases: &[(u64, Option<&str>)] = &[
            (0, None),
            (1 << 1, Some("UH")),
            (1 << 5, Some("UF")),
            // What Envoy 1.40 reported for a retried request to a port nobody listens on.
            (0x8020, Some("UF,URX")),
            (1 << 6, Some("UC")),
            (1 << 8, Some("NR")),
            (1 << 14, Some("DC")),
            (1 << 2 | 1 << 4, Some("UT,UR")),
            (1 << 24, Some("NC")),
            (1 << 28, Some("DR")),
            (1 << 40, Some("bit40")),
            (1 << 63 | 1, Some("LH,bit63")),
        ];
        for (bits, expected) in cases {
            assert_eq!(short_codes(*bits).as_deref(), *expected, "{bits:#x}");
        }
    }

    #[test]
    fn every_bit_has_a_distinct_name() {
        let names: std::collections::HashSet<String> =
            (0..64).filter_map(|bit| short_codes(1u64 << bit)).collect();
        assert_eq!(names.len(), 64);
    }
}
