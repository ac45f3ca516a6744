//! subset-tagger's plugin configuration: the JSON document, its validation, and the compiled rules.
//!
//! Parsing happens in two steps: serde reads the document's structure (unknown fields and wrong
//! types are refused with their path), then `compile` checks what serde cannot (names, weights,
//! regexes, combinations) and collects every problem, each under its field's JSON path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::matching::{compile_regex, Conditions, HostCondition, StringMatch};
use super::split::{Fallback, SameSite, SetCookie, Split, StickyKey};
use crate::config::{parse_json, ConfigErrors, ErrorCollector};
use crate::host::{HostPatterns, HostRegexSet};

/// The header name used when the configuration names none; what the issue's VirtualServices match.
const DEFAULT_HEADER: &str = "x-route-subset";

/// Longest subset name: a Kubernetes label value, and what fits a DestinationRule subset name.
const MAX_SUBSET_LEN: usize = 63;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_header")]
    header: String,
    #[serde(default)]
    trust_client_header: bool,
    #[serde(default)]
    default_subset: Option<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

fn default_header() -> String {
    DEFAULT_HEADER.to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match", default)]
    conditions: RawMatch,
    #[serde(default)]
    subset: Option<String>,
    #[serde(default)]
    split: Option<Vec<RawShare>>,
    #[serde(default)]
    sticky: Option<RawSticky>,
    #[serde(default)]
    fallback: Option<Fallback>,
    #[serde(default)]
    set_cookie: Option<RawSetCookie>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    host_regex: Option<Vec<String>>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default)]
    path_exact: Option<String>,
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    method: Option<Vec<String>>,
    #[serde(default)]
    headers: RawStringMatches,
    #[serde(default)]
    query: RawStringMatches,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    subset: String,
    weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSticky {
    #[serde(default)]
    cookie: Option<String>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetCookie {
    #[serde(default = "default_cookie_path")]
    path: String,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(default)]
    secure: bool,
    #[serde(default = "default_true")]
    http_only: bool,
    #[serde(default)]
    same_site: SameSite,
}

fn default_cookie_path() -> String {
    "/".to_string()
}

fn default_true() -> bool {
    true
}

/// A header or query test as written: a bare string is an exact match, an object names its kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStringMatch {
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    present: Option<bool>,
}

impl<'de> Deserialize<'de> for RawStringMatchOrExact {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = RawStringMatchOrExact;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (exact value) or an object with one of exact, prefix, suffix, regex, present")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(RawStringMatchOrExact(RawStringMatch {
                    exact: Some(value.to_string()),
                    ..RawStringMatch::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawStringMatch::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawStringMatchOrExact)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Wrapper so that a bare string and an object both read as a `RawStringMatch`, with serde's own
/// precise errors (unknown field, wrong type) instead of an untagged enum's "did not match".
#[derive(Debug)]
struct RawStringMatchOrExact(RawStringMatch);

type RawStringMatches = BTreeMap<String, RawStringMatchOrExact>;

/// `"GET"` or `["GET", "HEAD"]`.
fn one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(vec![value.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut values = Vec::new();
            while let Some(value) = seq.next_element()? {
                values.push(value);
            }
            Ok(values)
        }
    }
    deserializer.deserialize_any(ListVisitor).map(Some)
}

/// How a rule is named in filter state: its `name`, or else its index in `rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleId {
    Index(usize),
    Name(String),
}

/// What a matching rule tags the request with.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Subset(String),
    Split(Split),
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: RuleId,
    pub(crate) conditions: Conditions,
    pub(crate) action: Action,
}

/// A validated subset-tagger configuration, ready to evaluate requests.
#[derive(Debug)]
pub struct TaggerConfig {
    /// The request header the filter owns, lowercase.
    pub header: String,
    /// When true, a request that already carries the header keeps it and no rule is evaluated.
    pub trust_client_header: bool,
    /// The tag when no rule matches; without it such a request leaves with no tag header.
    pub default_subset: Option<String>,
    pub(crate) rules: Vec<Rule>,
}

impl TaggerConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = parse_json(bytes)?;
        let mut errors = ErrorCollector::default();
        if !is_header_name(&raw.header) {
            errors.push(
                "header",
                format!("{:?} is not a lowercase HTTP header name", raw.header),
            );
        }
        if let Some(subset) = &raw.default_subset {
            check_subset(subset, "default_subset", &mut errors);
        }
        let mut names = BTreeSet::new();
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .filter_map(|(index, rule)| {
                compile_rule(index, rule, &raw.header, &mut names, &mut errors)
            })
            .collect();
        errors.finish(Self {
            header: raw.header,
            trust_client_header: raw.trust_client_header,
            default_subset: raw.default_subset,
            rules,
        })
    }

    /// Every subset the configuration can tag with, sorted and without repeats.
    pub fn subsets(&self) -> Vec<&str> {
        let mut subsets: BTreeSet<&str> = self.default_subset.iter().map(String::as_str).collect();
        for rule in &self.rules {
            match &rule.action {
                Action::Subset(subset) => {
                    subsets.insert(subset);
                }
                Action::Split(split) => subsets.extend(split.subsets()),
            }
        }
        subsets.into_iter().collect()
    }
}

fn compile_rule(
    index: usize,
    rule: RawRule,
    tag_header: &str,
    names: &mut BTreeSet<String>,
    errors: &mut ErrorCollector,
) -> Option<Rule> {
    let field = format!("rules[{index}]");
    let id = match rule.name {
        None => RuleId::Index(index),
        Some(name) => {
            if name.is_empty() {
                errors.push(format!("{field}.name"), "must not be empty");
            } else if !names.insert(name.clone()) {
                errors.push(
                    format!("{field}.name"),
                    format!("{name:?} names an earlier rule too"),
                );
            }
            RuleId::Name(name)
        }
    };
    let conditions = compile_match(
        rule.conditions,
        &format!("{field}.match"),
        tag_header,
        errors,
    );
    let action = match (rule.subset, rule.split) {
        (Some(_), Some(_)) => {
            errors.push(field.as_str(), "set either `subset` or `split`, not both");
            None
        }
        (None, None) => {
            errors.push(field.as_str(), "needs `subset` or `split`");
            None
        }
        (Some(subset), None) => {
            for option in [
                rule.sticky.as_ref().map(|_| "sticky"),
                rule.fallback.as_ref().map(|_| "fallback"),
                rule.set_cookie.as_ref().map(|_| "set_cookie"),
            ]
            .into_iter()
            .flatten()
            {
                errors.push(
                    format!("{field}.{option}"),
                    "applies only to a rule with `split`",
                );
            }
            check_subset(&subset, &format!("{field}.subset"), errors)
                .then_some(Action::Subset(subset))
        }
        (None, Some(shares)) => compile_split(
            &field,
            tag_header,
            shares,
            rule.sticky,
            rule.fallback,
            rule.set_cookie,
            errors,
        )
        .map(Action::Split),
    };
    Some(Rule {
        id,
        conditions: conditions?,
        action: action?,
    })
}

fn compile_match(
    raw: RawMatch,
    field: &str,
    tag_header: &str,
    errors: &mut ErrorCollector,
) -> Option<Conditions> {
    let mut valid = true;
    let mut fail = |name: &str, reason: String| {
        errors.push(format!("{field}.{name}"), reason);
        valid = false;
    };
    let hosts = compile_hosts(raw.hosts, raw.host_regex, field, &mut fail);
    for (name, path) in [
        ("path_prefix", &raw.path_prefix),
        ("path_exact", &raw.path_exact),
    ] {
        if let Some(path) = path {
            if !path.starts_with('/') {
                fail(name, format!("{path:?} does not start with `/`"));
            }
        }
    }
    let path_regex = raw.path_regex.as_deref().and_then(|pattern| {
        compile_regex(pattern)
            .map_err(|reason| fail("path_regex", reason))
            .ok()
    });
    let raw_method_given_empty = raw.method.as_ref().is_some_and(Vec::is_empty);
    let methods = raw.method.unwrap_or_default();
    for (index, method) in methods.iter().enumerate() {
        if !is_token(method) {
            fail(
                &format!("method[{index}]"),
                format!("{method:?} is not an HTTP method"),
            );
        }
    }
    if raw_method_given_empty {
        // `"method": []` would make the rule match nothing, which is never what was meant.
        fail("method", "must name at least one method".to_string());
    }
    let mut headers = Vec::new();
    for (name, test) in raw.headers {
        let lowercase = name.to_ascii_lowercase();
        let header_field = format!("headers.{name}");
        if !is_header_name(&lowercase) {
            fail(&header_field, "is not an HTTP header name (pseudo-headers are matched by hosts, path_* and method)".to_string());
        } else if lowercase == tag_header {
            // The tag header is the filter's output; matching on it would let the client steer.
            fail(
                &header_field,
                "is the tag header itself, which the filter writes".to_string(),
            );
        }
        match compile_string_match(test.0) {
            Ok(test) => headers.push((lowercase, test)),
            Err(reason) => fail(&header_field, reason),
        }
    }
    let mut query = Vec::new();
    for (name, test) in raw.query {
        let query_field = format!("query.{name}");
        if name.is_empty() {
            fail(
                &query_field,
                "a query parameter name must not be empty".to_string(),
            );
        }
        match compile_string_match(test.0) {
            Ok(test) => query.push((name, test)),
            Err(reason) => fail(&query_field, reason),
        }
    }
    valid.then_some(Conditions {
        hosts,
        path_exact: raw.path_exact,
        path_prefix: raw.path_prefix,
        path_regex,
        methods,
        headers,
        query,
    })
}

/// The host condition, in the host allowlist's syntax and through its implementation. Problems go
/// to `fail` as (field relative to `match`, reason).
fn compile_hosts(
    hosts: Option<Vec<String>>,
    host_regex: Option<Vec<String>>,
    field: &str,
    fail: &mut impl FnMut(&str, String),
) -> Option<HostCondition> {
    if hosts.is_none() && host_regex.is_none() {
        return None;
    }
    for (name, list) in [("hosts", &hosts), ("host_regex", &host_regex)] {
        if list.as_ref().is_some_and(Vec::is_empty) {
            // An empty list would make the rule match nothing, which is never what was meant.
            fail(name, "must list at least one entry".to_string());
        }
    }
    // The host module names fields from the root it is given; report them relative to `match`.
    let prefix = format!("{field}.");
    let mut relay = |errors: ConfigErrors| {
        for error in errors.iter() {
            let relative = error.field.strip_prefix(&prefix).unwrap_or(&error.field);
            fail(relative, error.reason.clone());
        }
    };
    let hosts = HostPatterns::compile(&format!("{field}.hosts"), &hosts.unwrap_or_default())
        .map_err(&mut relay)
        .ok();
    let host_regex = HostRegexSet::compile(
        &format!("{field}.host_regex"),
        &host_regex.unwrap_or_default(),
    )
    .map_err(&mut relay)
    .ok();
    Some(HostCondition {
        hosts: hosts?,
        host_regex: host_regex?,
    })
}

fn compile_string_match(raw: RawStringMatch) -> Result<StringMatch, String> {
    let mut kinds = Vec::new();
    if let Some(exact) = raw.exact {
        kinds.push(StringMatch::Exact(exact));
    }
    if let Some(prefix) = raw.prefix {
        kinds.push(StringMatch::Prefix(prefix));
    }
    if let Some(suffix) = raw.suffix {
        kinds.push(StringMatch::Suffix(suffix));
    }
    if let Some(pattern) = raw.regex {
        kinds.push(StringMatch::Regex(compile_regex(&pattern)?));
    }
    if let Some(present) = raw.present {
        kinds.push(StringMatch::Present(present));
    }
    match (kinds.pop(), kinds.is_empty()) {
        (Some(test), true) => Ok(test),
        _ => Err("set exactly one of exact, prefix, suffix, regex, present".to_string()),
    }
}

fn compile_split(
    field: &str,
    tag_header: &str,
    shares: Vec<RawShare>,
    sticky: Option<RawSticky>,
    fallback: Option<Fallback>,
    set_cookie: Option<RawSetCookie>,
    errors: &mut ErrorCollector,
) -> Option<Split> {
    let mut valid = true;
    if shares.is_empty() {
        errors.push(format!("{field}.split"), "must list at least one subset");
        valid = false;
    }
    let mut seen = BTreeSet::new();
    for (index, share) in shares.iter().enumerate() {
        let share_field = format!("{field}.split[{index}].subset");
        if !check_subset(&share.subset, &share_field, errors) {
            valid = false;
        } else if !seen.insert(share.subset.as_str()) {
            errors.push(share_field, format!("{:?} is listed twice", share.subset));
            valid = false;
        }
    }
    let total: u64 = shares.iter().map(|share| u64::from(share.weight)).sum();
    if !shares.is_empty() && total == 0 {
        errors.push(
            format!("{field}.split"),
            "weights sum to 0, so no subset could be chosen",
        );
        valid = false;
    }
    let sticky = match sticky.map(|raw| compile_sticky(raw, &format!("{field}.sticky"), errors)) {
        Some(None) => {
            valid = false;
            None
        }
        Some(Some(sticky)) => Some(sticky),
        None => None,
    };
    if let Some(StickyKey::Header(header)) = &sticky {
        if header == tag_header {
            // The tag header is the filter's output; keying on it would let the client steer.
            errors.push(
                format!("{field}.sticky.header"),
                "is the tag header itself, which the filter writes",
            );
            valid = false;
        }
    }
    let set_cookie = set_cookie.and_then(|raw| {
        let cookie_field = format!("{field}.set_cookie");
        if !matches!(sticky, Some(StickyKey::Cookie(_))) {
            errors.push(
                cookie_field.as_str(),
                "needs `sticky.cookie`: the cookie it sets is the key the client sends back",
            );
            valid = false;
        }
        compile_set_cookie(raw, &cookie_field, errors).or_else(|| {
            valid = false;
            None
        })
    });
    valid.then(|| {
        Split::new(
            shares
                .into_iter()
                .map(|share| (share.subset, share.weight))
                .collect(),
            sticky,
            fallback.unwrap_or_default(),
            set_cookie,
        )
    })
}

fn compile_sticky(raw: RawSticky, field: &str, errors: &mut ErrorCollector) -> Option<StickyKey> {
    let sources = [
        raw.cookie.map(|name| ("cookie", name)),
        raw.header.map(|name| ("header", name)),
        raw.query.map(|name| ("query", name)),
    ];
    let mut given = sources.into_iter().flatten();
    let (Some((source, name)), None) = (given.next(), given.next()) else {
        errors.push(field, "set exactly one of cookie, header, query");
        return None;
    };
    let key_field = format!("{field}.{source}");
    match source {
        "cookie" if is_token(&name) => Some(StickyKey::Cookie(name)),
        "cookie" => {
            errors.push(key_field, format!("{name:?} is not a cookie name"));
            None
        }
        "header" => {
            let lowercase = name.to_ascii_lowercase();
            if is_header_name(&lowercase) {
                Some(StickyKey::Header(lowercase))
            } else {
                errors.push(key_field, format!("{name:?} is not an HTTP header name"));
                None
            }
        }
        _ if name.is_empty() => {
            errors.push(key_field, "a query parameter name must not be empty");
            None
        }
        _ => Some(StickyKey::Query(name)),
    }
}

fn compile_set_cookie(
    raw: RawSetCookie,
    field: &str,
    errors: &mut ErrorCollector,
) -> Option<SetCookie> {
    let mut valid = true;
    // RFC 6265 path-value: any CHAR except controls and `;`.
    if !raw.path.starts_with('/')
        || raw
            .path
            .chars()
            .any(|c| c == ';' || c.is_control() || !c.is_ascii())
    {
        errors.push(
            format!("{field}.path"),
            format!("{:?} is not a cookie path starting with `/`", raw.path),
        );
        valid = false;
    }
    if raw.same_site == SameSite::None && !raw.secure {
        // Browsers drop a `SameSite=None` cookie that is not also `Secure`.
        errors.push(format!("{field}.same_site"), "`none` needs `secure: true`");
        valid = false;
    }
    valid.then_some(SetCookie {
        path: raw.path,
        max_age: raw.max_age,
        secure: raw.secure,
        http_only: raw.http_only,
        same_site: raw.same_site,
    })
}

/// A subset name becomes a header value, a stat name and, usually, a DestinationRule subset, so it
/// is kept to characters all three accept. Pushes an error and returns false when it is not one.
fn check_subset(subset: &str, field: &str, errors: &mut ErrorCollector) -> bool {
    let valid = !subset.is_empty()
        && subset.len() <= MAX_SUBSET_LEN
        && subset
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        errors.push(
            field,
            format!(
                "{subset:?} is not a subset name: use 1 to {MAX_SUBSET_LEN} letters, digits, `-`, `_` or `.`"
            ),
        );
    }
    valid
}

/// An RFC 9110 token: what a method, a cookie name and a header name are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A lowercase token that is not a pseudo-header: what Envoy accepts as a header name.
fn is_header_name(name: &str) -> bool {
    is_token(name) && !name.bytes().any(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    fn parse(config: serde_json::Value) -> Result<TaggerConfig, ConfigErrors> {
        TaggerConfig::from_json(config.to_string().as_bytes())
    }

    #[test]
    fn defaults() {
        let config = TaggerConfig::from_json(b"").unwrap();
        assert_eq!(config.header, "x-route-subset");
        assert!(!config.trust_client_header);
        assert_eq!(config.default_subset, None);
        assert!(config.rules.is_empty());
    }

    #[test]
    fn bad_header_names_the_field() {
        for bad in ["", "X-Upper", ":authority", "a b"] {
            let errors = parse(json!({ "header": bad })).unwrap_err();
            assert_eq!(errors.0[0].field, "header", "{bad:?}");
        }
    }

    #[test]
    fn the_issue_example_is_accepted() {
        let config = parse(json!({
          "header": "x-route-subset",
          "rules": [
            {"match": {"hosts": ["www.google.com", "google.com"]}, "subset": "google"},
            {"match": {"hosts": ["shop.example.com"], "path_prefix": "/api/", "headers": {"x-beta": "true"}}, "subset": "beta"},
            {"match": {"hosts": ["shop.example.com"]},
             "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
             "sticky": {"cookie": "session"}}
          ]
        }))
        .unwrap();
        assert_eq!(config.rules.len(), 3);
        assert_eq!(config.subsets(), ["beta", "google", "v1", "v2"]);
    }

    #[test]
    fn every_option_is_read() {
        let config = parse(json!({
            "header": "x-subset",
            "trust_client_header": true,
            "default_subset": "stable",
            "rules": [
                {"name": "beta", "match": {"path_prefix": "/api/", "headers": {"x-beta": "true"}}, "subset": "beta"},
                {"match": {
                    "path_exact": "/login", "path_regex": "/[a-z]+", "method": ["GET", "HEAD"],
                    "headers": {"X-Tier": {"regex": "gold|silver"}, "x-debug": {"present": false}},
                    "query": {"canary": {"prefix": "y"}}
                 },
                 "split": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}],
                 "sticky": {"cookie": "session"},
                 "fallback": "random",
                 "set_cookie": {"path": "/app", "max_age": 86400, "secure": true, "same_site": "strict"}},
                {"match": {"method": "POST"}, "split": [{"subset": "v1", "weight": 1}]}
            ]
        }))
        .unwrap();
        assert_eq!(config.header, "x-subset");
        assert!(config.trust_client_header);
        assert_eq!(config.default_subset.as_deref(), Some("stable"));
        assert_eq!(config.rules.len(), 3);
        assert_eq!(config.rules[0].id, RuleId::Name("beta".into()));
        assert_eq!(config.rules[1].id, RuleId::Index(1));
        let conditions = &config.rules[1].conditions;
        assert_eq!(conditions.methods, ["GET", "HEAD"]);
        // Header names are matched case-insensitively, so they are kept lowercase.
        let names: Vec<&str> = conditions.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-tier", "x-debug"]);
        assert_eq!(config.rules[2].conditions.methods, ["POST"]);
        assert_eq!(config.subsets(), ["beta", "stable", "v1", "v2"]);
    }

    #[test]
    fn errors_name_their_field() {
        let split = |weights: serde_json::Value| json!({"rules": [{"split": weights}]});
        let cases = [
            (
                json!({"default_subset": ""}),
                "default_subset",
                "is not a subset name",
            ),
            (
                json!({"default_subset": "a b"}),
                "default_subset",
                "is not a subset name",
            ),
            (
                json!({"default_subset": "x".repeat(64)}),
                "default_subset",
                "is not a subset name",
            ),
            (
                json!({"rules": [{"subset": "a\r\nx-evil: 1"}]}),
                "rules[0].subset",
                "is not a subset name",
            ),
            (
                json!({"rules": [{"subset": ""}]}),
                "rules[0].subset",
                "is not a subset name",
            ),
            (
                json!({"rules": [{}]}),
                "rules[0]",
                "needs `subset` or `split`",
            ),
            (
                json!({"rules": [{"subset": "a", "split": [{"subset": "b", "weight": 1}]}]}),
                "rules[0]",
                "not both",
            ),
            (split(json!([])), "rules[0].split", "at least one subset"),
            (
                split(json!([{"subset": "a", "weight": 0}, {"subset": "b", "weight": 0}])),
                "rules[0].split",
                "weights sum to 0",
            ),
            (
                split(json!([{"subset": "", "weight": 1}])),
                "rules[0].split[0].subset",
                "is not a subset name",
            ),
            (
                split(json!([{"subset": "a", "weight": 1}, {"subset": "a", "weight": 2}])),
                "rules[0].split[1].subset",
                "listed twice",
            ),
            (
                split(json!([{"subset": "a", "weight": -1}])),
                "rules[0].split[0].weight",
                "invalid value",
            ),
            (
                split(json!([{"subset": "a"}])),
                "rules[0].split[0]",
                "missing field `weight`",
            ),
            (
                json!({"rules": [{"subset": "a", "sticky": {"cookie": "s"}}]}),
                "rules[0].sticky",
                "applies only to a rule with `split`",
            ),
            (
                json!({"rules": [{"subset": "a", "fallback": "random"}]}),
                "rules[0].fallback",
                "applies only to a rule with `split`",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {}}]}),
                "rules[0].sticky",
                "exactly one of cookie, header, query",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"cookie": "s", "header": "x"}}]}),
                "rules[0].sticky",
                "exactly one of cookie, header, query",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"cookie": "a=b"}}]}),
                "rules[0].sticky.cookie",
                "not a cookie name",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"header": ":path"}}]}),
                "rules[0].sticky.header",
                "not an HTTP header name",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"query": ""}}]}),
                "rules[0].sticky.query",
                "must not be empty",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"header": "X-Route-Subset"}}]}),
                "rules[0].sticky.header",
                "the tag header itself",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "fallback": "coin"}]}),
                "rules[0].fallback",
                "unknown variant `coin`",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"header": "x-user"}, "set_cookie": {}}]}),
                "rules[0].set_cookie",
                "needs `sticky.cookie`",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "set_cookie": {}}]}),
                "rules[0].set_cookie",
                "needs `sticky.cookie`",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"cookie": "s"}, "set_cookie": {"path": "/a;b"}}]}),
                "rules[0].set_cookie.path",
                "not a cookie path",
            ),
            (
                json!({"rules": [{"split": [{"subset": "a", "weight": 1}], "sticky": {"cookie": "s"}, "set_cookie": {"same_site": "none"}}]}),
                "rules[0].set_cookie.same_site",
                "needs `secure: true`",
            ),
            (
                json!({"rules": [{"match": {"path_prefix": "api"}, "subset": "a"}]}),
                "rules[0].match.path_prefix",
                "does not start with `/`",
            ),
            (
                json!({"rules": [{"match": {"path_exact": ""}, "subset": "a"}]}),
                "rules[0].match.path_exact",
                "does not start with `/`",
            ),
            (
                json!({"rules": [{"match": {"path_regex": "(/a"}, "subset": "a"}]}),
                "rules[0].match.path_regex",
                "invalid regex: unclosed group",
            ),
            (
                json!({"rules": [{"match": {"path_regex": "(?:\\w{1000}){100}"}, "subset": "a"}]}),
                "rules[0].match.path_regex",
                "regex is too large",
            ),
            (
                json!({"rules": [{"match": {"method": []}, "subset": "a"}]}),
                "rules[0].match.method",
                "at least one method",
            ),
            (
                json!({"rules": [{"match": {"method": ["GET", "B D"]}, "subset": "a"}]}),
                "rules[0].match.method[1]",
                "not an HTTP method",
            ),
            (
                json!({"rules": [{"match": {"method": 7}, "subset": "a"}]}),
                "rules[0].match.method",
                "a string or an array of strings",
            ),
            (
                json!({"rules": [{"match": {"headers": {"x-a": {"regex": "[z-a]"}}}, "subset": "a"}]}),
                "rules[0].match.headers.x-a",
                "invalid regex",
            ),
            (
                json!({"rules": [{"match": {"headers": {"x-a": {}}}, "subset": "a"}]}),
                "rules[0].match.headers.x-a",
                "exactly one of exact",
            ),
            (
                json!({"rules": [{"match": {"headers": {"x-a": {"exact": "1", "prefix": "1"}}}, "subset": "a"}]}),
                "rules[0].match.headers.x-a",
                "exactly one of exact",
            ),
            (
                json!({"rules": [{"match": {"headers": {"x-a": {"contains": "1"}}}, "subset": "a"}]}),
                "rules[0].match.headers.x-a.contains",
                "unknown field `contains`",
            ),
            (
                json!({"rules": [{"match": {"headers": {"x-a": 1}}, "subset": "a"}]}),
                "rules[0].match.headers.x-a",
                "a string (exact value) or an object",
            ),
            (
                json!({"rules": [{"match": {"headers": {":authority": "x"}}, "subset": "a"}]}),
                "rules[0].match.headers.:authority",
                "pseudo-headers",
            ),
            (
                json!({"rules": [{"match": {"headers": {"X-Route-Subset": "x"}}, "subset": "a"}]}),
                "rules[0].match.headers.X-Route-Subset",
                "the tag header itself",
            ),
            (
                json!({"rules": [{"match": {"query": {"": "x"}}, "subset": "a"}]}),
                "rules[0].match.query.",
                "must not be empty",
            ),
            (
                json!({"rules": [{"match": {"query": {"q": {"regex": "("}}}, "subset": "a"}]}),
                "rules[0].match.query.q",
                "invalid regex",
            ),
            (
                json!({"rules": [{"match": {"host": ["a"]}, "subset": "a"}]}),
                "rules[0].match.host",
                "unknown field `host`",
            ),
            (
                json!({"rules": [{"match": {"hosts": []}, "subset": "a"}]}),
                "rules[0].match.hosts",
                "at least one entry",
            ),
            (
                json!({"rules": [{"match": {"host_regex": []}, "subset": "a"}]}),
                "rules[0].match.host_regex",
                "at least one entry",
            ),
            (
                json!({"rules": [{"match": {"hosts": ["ok.com", "*bad.com"]}, "subset": "a"}]}),
                "rules[0].match.hosts[1]",
                "wildcard",
            ),
            (
                json!({"rules": [{"match": {"hosts": ["https://a.com"]}, "subset": "a"}]}),
                "rules[0].match.hosts[0]",
                "not a URL",
            ),
            (
                json!({"rules": [{"subset": "a"}, {"match": {"host_regex": ["("]}, "subset": "a"}]}),
                "rules[1].match.host_regex[0]",
                "",
            ),
            (
                json!({"rules": [{"name": "", "subset": "a"}]}),
                "rules[0].name",
                "must not be empty",
            ),
            (
                json!({"rules": [{"name": "r", "subset": "a"}, {"name": "r", "subset": "b"}]}),
                "rules[1].name",
                "names an earlier rule too",
            ),
            (
                json!({"trust_client_header": "yes"}),
                "trust_client_header",
                "invalid type",
            ),
        ];
        for (config, field, reason) in cases {
            let errors = parse(config.clone()).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.field == field && e.reason.contains(reason)),
                "{config}: expected `{field}: …{reason}…`, got:\n{errors}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = parse(json!({
            "header": "Bad",
            "default_subset": "",
            "rules": [
                {"subset": "a", "split": [{"subset": "b", "weight": 1}]},
                {"match": {"path_regex": "("}, "split": [{"subset": "x", "weight": 0}]}
            ]
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "header",
                "default_subset",
                "rules[0]",
                "rules[1].match.path_regex",
                "rules[1].split"
            ],
            "{errors}"
        );
    }

    const SCHEMA: &str = include_str!("../../../../schemas/subset-tagger.schema.json");

    #[test]
    fn schema_examples_are_accepted() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let examples = schema["examples"].as_array().unwrap();
        assert!(!examples.is_empty());
        for example in examples {
            parse(example.clone()).unwrap_or_else(|errors| panic!("{example}: {errors}"));
        }
    }

    /// The schema documents exactly the fields the parser accepts: an unknown field's error lists
    /// the accepted ones, which must be the schema's properties for that object.
    #[test]
    fn schema_properties_are_the_accepted_fields() {
        let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
        let properties = |pointer: &str| -> BTreeSet<String> {
            let object = schema.pointer(pointer).unwrap().as_object().unwrap();
            object.keys().cloned().collect()
        };
        let split = json!([{"subset": "a", "weight": 1}]);
        let cases = [
            ("/properties", json!({"zzz": 1})),
            ("/$defs/rule/properties", json!({"rules": [{"zzz": 1}]})),
            (
                "/$defs/match/properties",
                json!({"rules": [{"match": {"zzz": 1}}]}),
            ),
            (
                "/$defs/share/properties",
                json!({"rules": [{"split": [{"zzz": 1}]}]}),
            ),
            (
                "/$defs/sticky/properties",
                json!({"rules": [{"split": split, "sticky": {"zzz": 1}}]}),
            ),
            (
                "/$defs/setCookie/properties",
                json!({"rules": [{"split": split, "set_cookie": {"zzz": 1}}]}),
            ),
            (
                "/$defs/stringMatch/oneOf/1/properties",
                json!({"rules": [{"match": {"headers": {"x": {"zzz": 1}}}}]}),
            ),
        ];
        for (pointer, config) in cases {
            let errors = parse(config).unwrap_err();
            let reason = &errors.0[0].reason;
            let accepted = crate::config::fields_expected_in(reason);
            assert_eq!(accepted, properties(pointer), "{pointer}: {reason}");
        }
    }
}
