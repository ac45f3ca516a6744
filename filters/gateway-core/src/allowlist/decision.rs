//! The allowlist's decision about one request or connection, and its filter-state encoding, which the
//! access-log filter and Envoy's native access logger read.

use crate::json::JsonObject;

/// Whether the destination may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    /// Audit mode: passed, but enforce mode would have denied it.
    AuditDenied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::AuditDenied => "audit_denied",
        }
    }
}

/// Why: a stable code, used in filter state, the reason header and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The host matched a `hosts` or `host_regex` entry.
    HostListed,
    /// The host parsed but matched no entry.
    HostNotListed,
    /// The request has no (or an empty) `:authority`.
    MissingHost,
    /// The authority is not a valid host (user info, percent-encoding, bad port, ...).
    InvalidHost,
    /// A TLS-terminating listener's SNI names another host than the authority, and not an allowed one.
    SniMismatch,
    /// A TLS passthrough connection without an SNI.
    MissingSni,
    /// A TLS passthrough connection whose SNI is not a valid host name.
    InvalidSni,
}

impl Reason {
    /// Every reason a request or connection is denied for (each but `HostListed`).
    pub const DENIALS: [Reason; 6] = [
        Self::HostNotListed,
        Self::MissingHost,
        Self::InvalidHost,
        Self::SniMismatch,
        Self::MissingSni,
        Self::InvalidSni,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostListed => "host_listed",
            Self::HostNotListed => "host_not_listed",
            Self::MissingHost => "missing_host",
            Self::InvalidHost => "invalid_host",
            Self::SniMismatch => "sni_mismatch",
            Self::MissingSni => "missing_sni",
            Self::InvalidSni => "invalid_sni",
        }
    }
}

/// The decision about one request or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    pub outcome: Outcome,
    pub reason: Reason,
    /// The configured entry (a `hosts` entry or a `host_regex` pattern, as written) that allowed the
    /// host, if one did.
    pub rule: Option<&'a str>,
}

impl Decision<'_> {
    /// The value published under [`crate::filter_state::ALLOWLIST_DECISION`]:
    /// `{"decision":"allowed|denied|audit_denied","reason":"host_listed|…","rule":"*.example.com"|null}`.
    pub fn to_json(&self) -> String {
        let mut json = JsonObject::with_capacity(96);
        json.string("decision", self.outcome.as_str());
        json.string("reason", self.reason.as_str());
        match self.rule {
            Some(rule) => json.string("rule", rule),
            None => json.null("rule"),
        }
        json.finish()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn json_encoding_is_the_filter_state_contract() {
        let cases = [
            (
                Decision {
                    outcome: Outcome::Allowed,
                    reason: Reason::HostListed,
                    rule: Some("*.googleapis.com"),
                },
                r#"{"decision":"allowed","reason":"host_listed","rule":"*.googleapis.com"}"#,
            ),
            (
                Decision {
                    outcome: Outcome::Denied,
                    reason: Reason::HostNotListed,
                    rule: None,
                },
                r#"{"decision":"denied","reason":"host_not_listed","rule":null}"#,
            ),
            (
                Decision {
                    outcome: Outcome::AuditDenied,
                    reason: Reason::SniMismatch,
                    rule: None,
                },
                r#"{"decision":"audit_denied","reason":"sni_mismatch","rule":null}"#,
            ),
            (
                Decision {
                    outcome: Outcome::Allowed,
                    reason: Reason::HostListed,
                    rule: Some("^a\"b\\.c$"),
                },
                r#"{"decision":"allowed","reason":"host_listed","rule":"^a\"b\\.c$"}"#,
            ),
        ];
        for (decision, expected) in cases {
            let json = decision.to_json();
            assert_eq!(json, expected);
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(parsed.as_object().unwrap().len(), 3);
        }
    }

    #[test]
    fn codes_are_distinct() {
        let reasons: Vec<Reason> = [Reason::HostListed]
            .into_iter()
            .chain(Reason::DENIALS)
            .collect();
        let mut codes: Vec<&str> = reasons.iter().map(|reason| reason.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), reasons.len());
    }
}
