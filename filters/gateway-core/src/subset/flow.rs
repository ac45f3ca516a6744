//! The request flow: read the request once through [`RequestHost`], evaluate the rules (first match
//! wins), and say what the filter must do: the tag header, the cookie, the filter state, the stats.

use super::config::{Action, RuleId, TaggerConfig};
use super::request::Request;

/// What the flow needs from the proxy. The filter implements it over proxy-wasm host calls; tests
/// implement it over a plain list of headers.
pub trait RequestHost {
    /// Every request header, pseudo-headers (`:authority`, `:path`, `:method`) included, with
    /// lowercase names, in the order the proxy holds them. Called once per request.
    fn request_headers(&self) -> Vec<(String, String)>;

    /// 64 bits of randomness, for the `random` fallback of a split (called only then).
    fn random_u64(&mut self) -> u64;
}

/// What to do with the tag header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderAction {
    /// The request already carries exactly the right header (or none, and none is wanted).
    Unchanged,
    /// Replace every copy of the header by this one value.
    Set(String),
    /// Remove every copy of the header.
    Remove,
}

/// Why the request got the tag it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A rule matched.
    Rule { rule: RuleId, subset: String },
    /// No rule matched; `default_subset` applied.
    Default { subset: String },
    /// `trust_client_header` is on and the client sent the header: its value stands. It may be any
    /// value, so it is not counted per subset.
    ClientTrusted { value: String },
    /// No rule matched and there is no default: the request leaves without a tag.
    Untagged,
}

/// The filter's instructions for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub header: HeaderAction,
    pub outcome: Outcome,
    /// A `Set-Cookie` value for the response, giving a client without a sticky key the key that
    /// chose its subset.
    pub set_cookie: Option<String>,
    /// The client sent the tag header and the filter overwrote or removed it.
    pub client_header_replaced: bool,
}

impl Decision {
    /// The subset to count under `subset_tagger.tagged.<subset>`, when the configuration chose one.
    pub fn tagged_subset(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Rule { subset, .. } | Outcome::Default { subset } => Some(subset),
            Outcome::ClientTrusted { .. } | Outcome::Untagged => None,
        }
    }

    /// The filter-state value under [`crate::filter_state::SUBSET_TAG`]:
    /// `{"subset": <tag or null>, "rule": <index, name, or null when no rule chose the tag>}`.
    pub fn filter_state(&self) -> String {
        let (subset, rule) = match &self.outcome {
            Outcome::Rule { rule, subset } => (Some(subset.as_str()), rule.to_json()),
            Outcome::Default { subset } => (Some(subset.as_str()), serde_json::Value::Null),
            Outcome::ClientTrusted { value } => (Some(value.as_str()), serde_json::Value::Null),
            Outcome::Untagged => (None, serde_json::Value::Null),
        };
        serde_json::json!({ "subset": subset, "rule": rule }).to_string()
    }
}

impl TaggerConfig {
    /// Decides the tag for the request `host` is serving.
    pub fn decide(&self, host: &mut impl RequestHost) -> Decision {
        let request = Request::new(host.request_headers());
        let sent: Vec<&str> = request.values(&self.header).collect();

        if self.trust_client_header && !sent.is_empty() {
            return Decision {
                header: HeaderAction::Unchanged,
                outcome: Outcome::ClientTrusted {
                    value: sent.join(","),
                },
                set_cookie: None,
                client_header_replaced: false,
            };
        }

        let (outcome, set_cookie) = self.evaluate(&request, host);
        let header = match (&outcome, sent.as_slice()) {
            (Outcome::Rule { subset, .. } | Outcome::Default { subset }, [only])
                if only == subset =>
            {
                HeaderAction::Unchanged
            }
            (Outcome::Rule { subset, .. } | Outcome::Default { subset }, _) => {
                HeaderAction::Set(subset.clone())
            }
            (_, []) => HeaderAction::Unchanged,
            (_, _) => HeaderAction::Remove,
        };
        Decision {
            client_header_replaced: !sent.is_empty() && header != HeaderAction::Unchanged,
            header,
            outcome,
            set_cookie,
        }
    }

    fn evaluate(
        &self,
        request: &Request,
        host: &mut impl RequestHost,
    ) -> (Outcome, Option<String>) {
        for rule in &self.rules {
            if !rule.conditions.matches(request) {
                continue;
            }
            let (subset, set_cookie) = match &rule.action {
                Action::Subset(subset) => (subset.as_str(), None),
                Action::Split(split) => match split.pick(request, || host.random_u64()) {
                    Some(pick) => (pick.subset, pick.set_cookie),
                    // Validation refuses an empty split; should one slip through, the rule is
                    // skipped rather than the request failed.
                    None => continue,
                },
            };
            let outcome = Outcome::Rule {
                rule: rule.id.clone(),
                subset: subset.to_string(),
            };
            return (outcome, set_cookie);
        }
        let outcome = match &self.default_subset {
            Some(subset) => Outcome::Default {
                subset: subset.clone(),
            },
            None => Outcome::Untagged,
        };
        (outcome, None)
    }
}
