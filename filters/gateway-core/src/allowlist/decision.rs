//! The allowlist's decision about one request or connection, and its filter-state encoding, which the
//! access-log filter and Envoy's native access logger read.

use crate::filter_state::{ALLOWLIST_DECISION, ALLOWLIST_REASON, ALLOWLIST_RULE};

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

impl<'a> Decision<'a> {
    /// The filter-state entries published for this decision ([`crate::filter_state`]): the
    /// decision and its reason, and the rule when one allowed the host.
    pub fn filter_state(&self) -> impl Iterator<Item = (&'static str, &'a str)> {
        [
            (ALLOWLIST_DECISION, Some(self.outcome.as_str())),
            (ALLOWLIST_REASON, Some(self.reason.as_str())),
            (ALLOWLIST_RULE, self.rule),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn filter_state_entries_are_the_contract() {
        let allowed = Decision {
            outcome: Outcome::Allowed,
            reason: Reason::HostListed,
            rule: Some("*.googleapis.com"),
        };
        assert_eq!(
            allowed.filter_state().collect::<Vec<_>>(),
            [
                ("gateway_wasm.allowlist.decision", "allowed"),
                ("gateway_wasm.allowlist.reason", "host_listed"),
                ("gateway_wasm.allowlist.rule", "*.googleapis.com"),
            ]
        );
        let audit_denied = Decision {
            outcome: Outcome::AuditDenied,
            reason: Reason::SniMismatch,
            rule: None,
        };
        // No rule decided: the rule is left out, not published empty.
        assert_eq!(
            audit_denied.filter_state().collect::<Vec<_>>(),
            [
                ("gateway_wasm.allowlist.decision", "audit_denied"),
                ("gateway_wasm.allowlist.reason", "sni_mismatch"),
            ]
        );
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
