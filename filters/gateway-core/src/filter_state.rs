//! Filter-state keys through which the filters talk to each other and to Envoy's native access
//! logger. Envoy stores a Wasm `set_property(KEY)` as filter state `wasm.KEY`, so the native logger
//! prints one with `%FILTER_STATE(wasm.KEY:PLAIN)%`. These names are a public contract.
//!
//! Each value is one plain string, not a JSON document: the native logger's `json_format` writes a
//! `PLAIN` value as a JSON string (escaped), so a JSON object published under one key would print as
//! a string holding JSON. Flat values print as clean fields, and the format nests them where the
//! record wants an object (`"allowlist": {"decision": "%FILTER_STATE(…decision:PLAIN)%", …}`). A
//! value that does not apply (no rule decided, no subset chosen) is not published: the native
//! logger prints it as `null`.

/// host-allowlist's decision: `allowed`, `denied` or `audit_denied`.
pub const ALLOWLIST_DECISION: &str = "gateway_wasm.allowlist.decision";

/// Why, a stable code: `host_listed`, `host_not_listed`, `sni_mismatch`, … (`allowlist::Reason`).
pub const ALLOWLIST_REASON: &str = "gateway_wasm.allowlist.reason";

/// The configured entry (a `hosts` entry or a `host_regex` pattern, as written) that allowed the
/// host; published only when one did.
pub const ALLOWLIST_RULE: &str = "gateway_wasm.allowlist.rule";

/// subset-tagger's subset: the tag it set (or let a trusted client's stand); published only when
/// the request carries one.
pub const SUBSET: &str = "gateway_wasm.subset.name";

/// access-log's record, one JSON object, for the native access logger (`sinks.filter_state`).
pub const ACCESS_LOG_RECORD: &str = "gateway_wasm.access_log";

/// Every key host-allowlist publishes under.
pub const ALLOWLIST_KEYS: [&str; 3] = [ALLOWLIST_DECISION, ALLOWLIST_REASON, ALLOWLIST_RULE];
