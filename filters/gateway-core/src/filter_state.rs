//! Filter-state keys through which the filters talk to each other and to Envoy's native access
//! logger. Envoy stores a Wasm `set_property(KEY)` as filter state `wasm.KEY`, so the native logger
//! prints one with `%FILTER_STATE(wasm.KEY:PLAIN)%`. These names are a public contract.

/// host-allowlist's decision, a JSON object: `{"decision":"allowed|denied|audit_denied","reason":…,"rule":…}`.
pub const ALLOWLIST_DECISION: &str = "gateway_wasm.allowlist";

/// subset-tagger's choice, a JSON object: `{"subset":…,"rule":…}`.
pub const SUBSET_TAG: &str = "gateway_wasm.subset";

/// access-log's record, one JSON object, for the native access logger.
pub const ACCESS_LOG_RECORD: &str = "gateway_wasm.access_log";
