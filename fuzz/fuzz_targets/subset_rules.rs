//! The subset rule evaluator through the core's request flow, over any request headers: it never
//! panics, tags only with a subset the configuration can choose (never a zero-weight one), and
//! a fixed-subset rule decides the same way every time.
#![no_main]

use std::sync::OnceLock;

use gateway_core::subset::{HeaderAction, Outcome, RuleId, TaggerConfig};
use gateway_fuzz::Headers;
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"{
  "header": "x-route-subset",
  "rules": [
    {"match": {"hosts": ["www.google.com", "google.com", "*.googleapis.com", "[::1]:8080"]}, "subset": "google"},
    {"match": {"host_regex": ["^api[0-9]*\\.example\\.com$"], "method": ["POST", "PUT"], "path_regex": "^/v[0-9]+/.*$"}, "subset": "api-write"},
    {"match": {"hosts": ["shop.example.com"], "path_prefix": "/api/", "headers": {"x-beta": "true", "x-tier": {"prefix": "gold"}}}, "subset": "beta"},
    {"match": {"query": {"debug": {"present": true}, "lang": {"regex": "[a-z]{2}"}}}, "subset": "debug"},
    {"name": "shop-canary", "match": {"hosts": ["shop.example.com"]},
     "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}, {"subset": "v3", "weight": 0}],
     "sticky": {"cookie": "session"}, "fallback": "request_id",
     "set_cookie": {"max_age": 86400, "path": "/", "secure": true}},
    {"name": "header-split", "match": {"path_exact": "/h"},
     "split": [{"subset": "a", "weight": 1}, {"subset": "b", "weight": 1}],
     "sticky": {"header": "x-user"}, "fallback": "random"},
    {"name": "query-split", "match": {"headers": {"x-q": {"present": true}}},
     "split": [{"subset": "q1", "weight": 3}, {"subset": "q2", "weight": 5}],
     "sticky": {"query": "user"}}
  ]
}"#;

fn config() -> &'static TaggerConfig {
    static CONFIG_ONCE: OnceLock<TaggerConfig> = OnceLock::new();
    CONFIG_ONCE.get_or_init(|| TaggerConfig::from_json(CONFIG.as_bytes()).expect("the fuzz configuration is valid"))
}

fuzz_target!(|input: Headers| {
    let config = config();
    let subsets = config.subsets();
    let mut request = input;
    let decision = config.decide(&mut request);
    match &decision.outcome {
        Outcome::Rule { subset, .. } | Outcome::Default { subset } => {
            assert!(subsets.contains(&subset.as_str()), "{subset:?} not in {subsets:?}");
            assert_ne!(subset, "v3", "a zero-weight subset was chosen");
            assert_eq!(decision.header, HeaderAction::Set(subset.clone()), "{decision:?}");
        }
        Outcome::Untagged => assert!(
            matches!(decision.header, HeaderAction::Unchanged | HeaderAction::Remove),
            "{decision:?}"
        ),
        Outcome::ClientTrusted { .. } => panic!("trust_client_header is off: {decision:?}"),
    }
    if let Some(cookie) = &decision.set_cookie {
        assert!(!cookie.contains(['\r', '\n']), "header injection through set-cookie: {cookie:?}");
    }
    assert_eq!(decision.published_subset().is_some(), !matches!(decision.outcome, Outcome::Untagged), "{decision:?}");
    // No hidden state: a fixed-subset rule (reported by index) decides the same way again, whatever
    // the randomness.
    if matches!(decision.outcome, Outcome::Rule { rule: RuleId::Index(_), .. }) {
        request.random = request.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let again = config.decide(&mut request);
        assert_eq!(again.outcome, decision.outcome, "{request:?}");
    }
});
