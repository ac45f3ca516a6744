//! What the other gateway-wasm filters publish in filter state for this stream (see
//! [`crate::filter_state`]). Each is optional: a filter that is not loaded publishes nothing, and
//! the record then simply has no `allowlist` or `subset` field.

use serde::Deserialize;

use super::host::Host;
use crate::filter_state::{ALLOWLIST_DECISION, SUBSET_TAG};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// host-allowlist's decision object, checked to be one JSON object and embedded as it is.
    pub allowlist: Option<String>,
    /// Whether that decision is a denial (enforced or audited): denials are always logged.
    pub denied: bool,
}

#[derive(Deserialize)]
struct AllowlistDecision {
    #[serde(default)]
    decision: Option<String>,
}

#[derive(Deserialize)]
struct SubsetTag {
    subset: String,
}

impl Published {
    /// Reads host-allowlist's decision, which sampling needs.
    pub fn read(host: &impl Host) -> Self {
        let mut published = Self::default();
        if let Some((text, decision)) = host
            .property(&[ALLOWLIST_DECISION])
            .and_then(json_object::<AllowlistDecision>)
        {
            published.denied = matches!(
                decision.decision.as_deref(),
                Some("denied" | "audit_denied")
            );
            published.allowlist = Some(text);
        }
        published
    }
}

/// subset-tagger's subset name; read only for a record that is kept.
pub fn subset(host: &impl Host) -> Option<String> {
    host.property(&[SUBSET_TAG])
        .and_then(json_object::<SubsetTag>)
        .map(|(_, tag)| tag.subset)
}

/// The document as text and its fields of interest, when it is exactly one JSON object in UTF-8.
/// Anything else (a foreign or corrupted value) is ignored rather than written into the record,
/// which must stay valid JSON.
fn json_object<T: for<'de> Deserialize<'de>>(bytes: Vec<u8>) -> Option<(String, T)> {
    let text = String::from_utf8(bytes).ok()?;
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    // Starting with `{`, the document can only parse as an object; serde_json also refuses
    // anything after it, so the text is one complete JSON value. Parsed from bytes, as the
    // configuration is: `from_str` would build a second copy of serde_json's parser (1.2 KiB of
    // the gzipped access-log module) to skip a UTF-8 check the text has already passed.
    let fields = serde_json::from_slice::<T>(trimmed.as_bytes()).ok()?;
    // Inside a valid JSON text a raw line break can only be whitespace between tokens (strings must
    // escape theirs): made a space, the value is the same and the record stays one NDJSON line.
    Some((trimmed.replace(['\n', '\r'], " "), fields))
}
