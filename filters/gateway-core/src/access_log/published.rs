//! What the other gateway-wasm filters publish in filter state for this stream (see
//! [`crate::filter_state`]). Each is optional: a filter that is not loaded publishes nothing, and
//! the record then simply has no `allowlist` or `subset` field.

use super::host::Host;
use crate::filter_state::{ALLOWLIST_DECISION, ALLOWLIST_REASON, ALLOWLIST_RULE, SUBSET};
use crate::json::JsonObject;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// host-allowlist's decision (`allowed`, `denied`, `audit_denied`), when it published one.
    pub allowlist_decision: Option<Vec<u8>>,
    /// Whether that decision is a denial (enforced or audited): denials are always logged.
    pub denied: bool,
}

impl Published {
    /// Reads host-allowlist's decision, which sampling needs; its reason and rule are read only for
    /// a record that is kept ([`allowlist`]).
    pub fn read(host: &impl Host) -> Self {
        let allowlist_decision = published_entry(host, ALLOWLIST_DECISION);
        let denied = matches!(
            allowlist_decision.as_deref(),
            Some(b"denied" | b"audit_denied")
        );
        Self {
            allowlist_decision,
            denied,
        }
    }
}

/// The record's `allowlist` object, `{"decision":…,"reason":…,"rule":…|null}`, from the decision
/// already read and host-allowlist's other entries.
pub fn allowlist(host: &impl Host, published: &Published) -> Option<String> {
    let decision = published.allowlist_decision.as_deref()?;
    let mut object = JsonObject::with_capacity(96);
    object.bytes("decision", decision);
    if let Some(reason) = published_entry(host, ALLOWLIST_REASON) {
        object.bytes("reason", &reason);
    }
    match published_entry(host, ALLOWLIST_RULE) {
        Some(rule) => object.bytes("rule", &rule),
        None => object.null("rule"),
    }
    Some(object.finish())
}

/// subset-tagger's subset name; read only for a record that is kept.
pub fn subset(host: &impl Host) -> Option<Vec<u8>> {
    published_entry(host, SUBSET)
}

/// One published value; an empty one counts as absent, as the filters never publish one.
fn published_entry(host: &impl Host, key: &str) -> Option<Vec<u8>> {
    host.property(&[key]).filter(|value| !value.is_empty())
}
