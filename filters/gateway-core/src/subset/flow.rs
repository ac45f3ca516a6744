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

    /// The subset published under [`crate::filter_state::SUBSET`]: the one the request now carries,
    /// chosen or a trusted client's.
    pub fn published_subset(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Rule { subset, .. } | Outcome::Default { subset } => Some(subset),
            Outcome::ClientTrusted { value } => Some(value),
            Outcome::Untagged => None,
        }
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

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;
    use crate::subset::sticky_hash;

    /// The test implementation of [`RequestHost`]: fixed headers, and a fixed "random" value whose
    /// uses are counted.
    struct TestHost {
        headers: Vec<(String, String)>,
        random: u64,
        random_calls: usize,
    }

    impl TestHost {
        fn new(headers: &[(&str, &str)]) -> Self {
            Self {
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                random: 7,
                random_calls: 0,
            }
        }
    }

    impl RequestHost for TestHost {
        fn request_headers(&self) -> Vec<(String, String)> {
            self.headers.clone()
        }
        fn random_u64(&mut self) -> u64 {
            self.random_calls += 1;
            self.random
        }
    }

    fn config(config: serde_json::Value) -> TaggerConfig {
        TaggerConfig::from_json(config.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The example, plus a named rule and a default.
    fn example(trust_client_header: bool, default_subset: Option<&str>) -> TaggerConfig {
        config(json!({
          "header": "x-route-subset",
          "trust_client_header": trust_client_header,
          "default_subset": default_subset,
          "rules": [
            {"match": {"hosts": ["www.google.com", "google.com"]}, "subset": "google"},
            {"match": {"hosts": ["shop.example.com"], "path_prefix": "/api/", "headers": {"x-beta": "true"}}, "subset": "beta"},
            {"name": "shop-canary", "match": {"hosts": ["shop.example.com"]},
             "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
             "sticky": {"cookie": "session"}, "fallback": "random",
             "set_cookie": {"max_age": 600}}
          ]
        }))
    }

    fn shop_subset_for(key: &str) -> &'static str {
        // 90/10 over 100 buckets, by the documented hash.
        if (u128::from(sticky_hash(key)) * 100) >> 64 < 90 {
            "v1"
        } else {
            "v2"
        }
    }

    #[test]
    fn decisions_table() {
        let untrusting = example(false, None);
        let trusting = example(true, None);
        let defaulting = example(false, Some("stable"));
        let set = |s: &str| HeaderAction::Set(s.to_string());
        let rule = |index: usize, subset: &str| Outcome::Rule {
            rule: RuleId::Index(index),
            subset: subset.to_string(),
        };
        let canary = |subset: &str| Outcome::Rule {
            rule: RuleId::Name("shop-canary".into()),
            subset: subset.to_string(),
        };
        let alice = shop_subset_for("alice");
        type Case<'a> = (
            &'a str,
            &'a TaggerConfig,
            &'a [(&'a str, &'a str)],
            HeaderAction,
            Outcome,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "egress to google",
                &untrusting,
                &[(":authority", "google.com"), (":path", "/")],
                set("google"),
                rule(0, "google"),
                false,
            ),
            (
                "google, any spelling",
                &untrusting,
                &[(":authority", "WWW.GOOGLE.COM.:80")],
                set("google"),
                rule(0, "google"),
                false,
            ),
            (
                "first match wins",
                &untrusting,
                &[
                    (":authority", "shop.example.com"),
                    (":path", "/api/x"),
                    ("x-beta", "true"),
                ],
                set("beta"),
                rule(1, "beta"),
                false,
            ),
            (
                "beta needs every condition",
                &untrusting,
                &[
                    (":authority", "shop.example.com"),
                    (":path", "/web"),
                    ("x-beta", "true"),
                    ("cookie", "session=alice"),
                ],
                set(alice),
                canary(alice),
                false,
            ),
            (
                "spoofed header is overwritten",
                &untrusting,
                &[(":authority", "google.com"), ("x-route-subset", "v2")],
                set("google"),
                rule(0, "google"),
                true,
            ),
            (
                "right header already there",
                &untrusting,
                &[(":authority", "google.com"), ("x-route-subset", "google")],
                HeaderAction::Unchanged,
                rule(0, "google"),
                false,
            ),
            (
                "two copies, one right, are replaced",
                &untrusting,
                &[
                    (":authority", "google.com"),
                    ("x-route-subset", "google"),
                    ("x-route-subset", "v2"),
                ],
                set("google"),
                rule(0, "google"),
                true,
            ),
            (
                "spoofed header removed when nothing matches",
                &untrusting,
                &[(":authority", "other.net"), ("x-route-subset", "v2")],
                HeaderAction::Remove,
                Outcome::Untagged,
                true,
            ),
            (
                "nothing to do",
                &untrusting,
                &[(":authority", "other.net")],
                HeaderAction::Unchanged,
                Outcome::Untagged,
                false,
            ),
            (
                "default subset",
                &defaulting,
                &[(":authority", "other.net"), ("x-route-subset", "v2")],
                set("stable"),
                Outcome::Default {
                    subset: "stable".into(),
                },
                true,
            ),
            (
                "trusted client keeps its header",
                &trusting,
                &[(":authority", "google.com"), ("x-route-subset", "v2")],
                HeaderAction::Unchanged,
                Outcome::ClientTrusted { value: "v2".into() },
                false,
            ),
            (
                "trusted client without header gets rules",
                &trusting,
                &[(":authority", "google.com")],
                set("google"),
                rule(0, "google"),
                false,
            ),
        ];
        for (name, config, headers, header, outcome, replaced) in cases {
            let decision = config.decide(&mut TestHost::new(headers));
            assert_eq!(decision.header, header, "{name}");
            assert_eq!(decision.outcome, outcome, "{name}");
            assert_eq!(decision.client_header_replaced, replaced, "{name}");
        }
    }

    #[test]
    fn sticky_cookie_keeps_a_client_on_its_subset() {
        let config = example(false, None);
        for n in 0..200 {
            let cookie = format!("lang=en; session=user-{n}");
            let headers = [
                (":authority", "shop.example.com"),
                ("cookie", cookie.as_str()),
            ];
            let expected = shop_subset_for(&format!("user-{n}"));
            for _ in 0..3 {
                let mut host = TestHost::new(&headers);
                let decision = config.decide(&mut host);
                assert_eq!(decision.tagged_subset(), Some(expected));
                assert_eq!(decision.set_cookie, None, "the client has its key");
                assert_eq!(host.random_calls, 0);
            }
        }
    }

    #[test]
    fn a_client_without_a_key_gets_one_that_keeps_its_subset() {
        let config = example(false, None);
        for seed in 0..50u64 {
            let mut host = TestHost::new(&[(":authority", "shop.example.com")]);
            host.random = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let first = config.decide(&mut host);
            assert_eq!(host.random_calls, 1);
            let set_cookie = first.set_cookie.clone().unwrap();
            assert!(
                set_cookie.ends_with("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"),
                "{set_cookie}"
            );
            let pair = set_cookie.split(';').next().unwrap();
            let mut again = TestHost::new(&[(":authority", "shop.example.com"), ("cookie", pair)]);
            let second = config.decide(&mut again);
            assert_eq!(second.tagged_subset(), first.tagged_subset(), "{pair}");
            assert_eq!(second.set_cookie, None);
        }
    }

    #[test]
    fn rules_without_a_split_never_draw_randomness() {
        let config = example(false, Some("stable"));
        let mut host = TestHost::new(&[(":authority", "google.com")]);
        config.decide(&mut host);
        let mut host_default = TestHost::new(&[(":authority", "nowhere.net")]);
        config.decide(&mut host_default);
        assert_eq!(host.random_calls + host_default.random_calls, 0);
    }

    #[test]
    fn request_id_fallback_follows_the_request_id() {
        let config = config(json!({"rules": [
            {"split": [{"subset": "a", "weight": 1}, {"subset": "b", "weight": 1}, {"subset": "c", "weight": 1}]}
        ]}));
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..60 {
            let id = format!("9b1c-{n}");
            let subsets: Vec<Option<String>> = (0..2)
                .map(|_| {
                    let mut host = TestHost::new(&[("x-request-id", id.as_str())]);
                    let decision = config.decide(&mut host);
                    assert_eq!(host.random_calls, 0);
                    assert_eq!(decision.set_cookie, None);
                    decision.tagged_subset().map(str::to_string)
                })
                .collect();
            assert_eq!(subsets[0], subsets[1], "{id}");
            seen.insert(subsets[0].clone().unwrap());
        }
        assert_eq!(seen.len(), 3, "60 request ids reach every subset");
    }

    #[test]
    fn published_subset_is_the_one_the_request_carries() {
        let config = example(true, Some("stable"));
        let cases = [
            (&[(":authority", "google.com")][..], Some("google")),
            (
                &[
                    (":authority", "shop.example.com"),
                    ("cookie", "session=alice"),
                ][..],
                Some(shop_subset_for("alice")),
            ),
            (&[(":authority", "nowhere.net")][..], Some("stable")),
            // A trusted client's tag: published, though not counted as tagged.
            (&[("x-route-subset", "mine")][..], Some("mine")),
        ];
        for (headers, expected) in cases {
            let decision = config.decide(&mut TestHost::new(headers));
            assert_eq!(decision.published_subset(), expected, "{headers:?}");
        }
        let untagged = example(false, None).decide(&mut TestHost::new(&[]));
        assert_eq!(untagged.published_subset(), None);
        assert_eq!(untagged.tagged_subset(), None);
    }
}
