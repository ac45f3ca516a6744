//! A rule's conditions, compiled, and how a request is held against them.

use regex::bytes::{Regex, RegexBuilder};

use super::request::Request;
use crate::host::{HostPatterns, HostRegexSet};

/// Upper bound, in bytes, on one compiled rule regex and on its lazy DFA cache (that cache exists
/// only if the regex crate's `perf-dfa` feature is turned back on; it is off for module size). Every
/// worker's VM holds its own copy, so a pathological pattern is refused at configuration time instead
/// of costing memory on every worker.
pub(crate) const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Compiles `pattern` so that it must match a whole value, as Envoy's and Istio's regex matchers
/// do. The error is one line, fit for a field-named configuration error.
///
/// Patterns are compiled in ASCII mode (`unicode(false)`), over the value's bytes: `\d`, `\w`, `\s`,
/// `\b` and `[[:alpha:]]` are ASCII classes, `(?i)` folds ASCII letters, and `.` or a negated class
/// matches one byte. Unicode-aware classes and case folding would need regex-syntax's Unicode
/// tables, several hundred KiB in every module, for paths and header values that are ASCII in
/// practice (Envoy passes paths percent-encoded).
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|error| describe_regex_error(&error))
    };
    // The pattern must stand alone first: otherwise `a)|(b` would turn the anchoring wrapper into a
    // different, valid regex.
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

fn describe_regex_error(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => {
            let reason = text
                .lines()
                .rev()
                .find_map(|line| line.trim().strip_prefix("error: "))
                .unwrap_or(text);
            format!("invalid regex: {reason}")
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("regex is too large: it compiles to more than {limit} bytes")
        }
        other => format!("invalid regex: {other}"),
    }
}

/// A test on one header or query parameter value.
#[derive(Debug, Clone)]
pub(crate) enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// Must match the whole value.
    Regex(Regex),
    /// `true`: the value is there (even empty); `false`: it is absent.
    Present(bool),
}

impl StringMatch {
    fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (StringMatch::Present(wanted), value) => *wanted == value.is_some(),
            (_, None) => false,
            (StringMatch::Exact(expected), Some(value)) => value == expected,
            (StringMatch::Prefix(prefix), Some(value)) => value.starts_with(prefix.as_str()),
            (StringMatch::Suffix(suffix), Some(value)) => value.ends_with(suffix.as_str()),
            (StringMatch::Regex(regex), Some(value)) => regex.is_match(value.as_bytes()),
        }
    }
}

/// The destination test of a rule: `hosts` entries and `host_regex` patterns in the host
/// allowlist's syntax, matched against the normalised `:authority`. Either list may match.
#[derive(Debug)]
pub(crate) struct HostCondition {
    pub(crate) hosts: HostPatterns,
    pub(crate) host_regex: HostRegexSet,
}

impl HostCondition {
    fn matches(&self, request: &Request) -> bool {
        request.authority().is_some_and(|authority| {
            self.hosts.matches(authority).is_some()
                || self.host_regex.matches(authority.host()).is_some()
        })
    }
}

/// Every condition of one rule's `match`; an absent condition holds for every request.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub(crate) hosts: Option<HostCondition>,
    pub(crate) path_exact: Option<String>,
    pub(crate) path_prefix: Option<String>,
    pub(crate) path_regex: Option<Regex>,
    /// Any of these; empty means any method.
    pub(crate) methods: Vec<String>,
    /// Lowercase header names.
    pub(crate) headers: Vec<(String, StringMatch)>,
    pub(crate) query: Vec<(String, StringMatch)>,
}

impl Conditions {
    /// Whether every present condition holds. Cheap tests run first; host parsing and regexes last.
    pub(crate) fn matches(&self, request: &Request) -> bool {
        let path = request.path();
        self.path_exact.as_ref().is_none_or(|exact| path == exact)
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| path.starts_with(prefix.as_str()))
            && (self.methods.is_empty()
                || request
                    .method()
                    .is_some_and(|method| self.methods.iter().any(|m| m == method)))
            && self
                .headers
                .iter()
                .all(|(name, test)| test.matches(request.header(name).as_deref()))
            && self
                .query
                .iter()
                .all(|(name, test)| test.matches(request.query(name)))
            && self
                .hosts
                .as_ref()
                .is_none_or(|hosts| hosts.matches(request))
            && self
                .path_regex
                .as_ref()
                .is_none_or(|regex| regex.is_match(path.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Request {
        Request::new(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    fn regex(pattern: &str) -> Regex {
        compile_regex(pattern).unwrap()
    }

    #[test]
    fn string_matches() {
        let cases = [
            (StringMatch::Exact("true".into()), Some("true"), true),
            (StringMatch::Exact("true".into()), Some("TRUE"), false),
            (StringMatch::Exact("".into()), Some(""), true),
            (StringMatch::Exact("true".into()), None, false),
            (StringMatch::Prefix("be".into()), Some("beta"), true),
            (StringMatch::Prefix("be".into()), Some("abe"), false),
            (StringMatch::Suffix("ta".into()), Some("beta"), true),
            (StringMatch::Suffix("ta".into()), None, false),
            (StringMatch::Regex(regex("b.t")), Some("bat"), true),
            (StringMatch::Regex(regex("b.t")), Some("abat"), false),
            (StringMatch::Regex(regex("b.t")), Some("bats"), false),
            (StringMatch::Regex(regex("a|b")), Some("b"), true),
            (StringMatch::Regex(regex("a|b")), Some("ab"), false),
            (StringMatch::Regex(regex(".*")), None, false),
            (StringMatch::Present(true), Some(""), true),
            (StringMatch::Present(true), None, false),
            (StringMatch::Present(false), None, true),
            (StringMatch::Present(false), Some("x"), false),
        ];
        for (test, value, expected) in cases {
            assert_eq!(test.matches(value), expected, "{test:?} on {value:?}");
        }
    }

    #[test]
    fn regexes_use_ascii_classes_over_bytes() {
        let cases = [
            ("/v\\d+/.*", "/v12/items", true),
            ("/v\\d+/.*", "/vx/items", false),
            ("\\w+", "user_42", true),
            ("\\w+", "user-42", false),
            ("\\s*gold\\s*", " gold\t", true),
            ("(?i)GOLD|platinum", "Gold", true),
            ("(?i)GOLD|platinum", "PLATINUM", true),
            ("[[:alpha:]]+", "beta", true),
            // `.` and negated classes are one byte: "é" is two.
            ("caf.", "café", false),
            ("caf..", "café", true),
            ("caf[^x]+", "café", true),
            // A literal non-ASCII character matches itself.
            ("café", "café", true),
            // Unicode case folding and classes are not applied.
            ("(?i)É", "é", false),
            ("\\w+", "é", false),
        ];
        for (pattern, value, expected) in cases {
            assert_eq!(
                regex(pattern).is_match(value.as_bytes()),
                expected,
                "{pattern:?} on {value:?}"
            );
        }
    }

    #[test]
    fn regex_errors_are_one_line() {
        let cases = [
            ("(a", "invalid regex: unclosed group"),
            ("a)|(b", "invalid regex: unopened group"),
            ("\\p{L}+", "invalid regex: Unicode not allowed here"),
            ("(?:\\w{1000}){100}", "regex is too large"),
        ];
        for (pattern, reason) in cases {
            let error = compile_regex(pattern).unwrap_err();
            assert!(error.starts_with(reason), "{pattern}: {error}");
            assert!(!error.contains('\n'), "{pattern}: {error}");
        }
    }

    #[test]
    fn conditions_table() {
        let beta_api = Conditions {
            path_prefix: Some("/api/".into()),
            headers: vec![("x-beta".into(), StringMatch::Exact("true".into()))],
            ..Conditions::default()
        };
        let exact_get = Conditions {
            path_exact: Some("/login".into()),
            methods: vec!["GET".into(), "HEAD".into()],
            ..Conditions::default()
        };
        let versioned = Conditions {
            path_regex: Some(regex("/v[0-9]+/.*")),
            query: vec![
                ("canary".into(), StringMatch::Exact("1".into())),
                ("debug".into(), StringMatch::Present(false)),
            ],
            ..Conditions::default()
        };
        type Case<'a> = (&'a Conditions, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (&Conditions::default(), &[], true),
            (&beta_api, &[(":path", "/api/x"), ("x-beta", "true")], true),
            (
                &beta_api,
                &[(":path", "/api/x?q=1"), ("x-beta", "true")],
                true,
            ),
            (&beta_api, &[(":path", "/api"), ("x-beta", "true")], false),
            (&beta_api, &[(":path", "/api/x")], false),
            (
                &beta_api,
                &[(":path", "/api/x"), ("x-beta", "false")],
                false,
            ),
            // A repeated header is read joined, so `true,true` is not `true`.
            (
                &beta_api,
                &[(":path", "/api/x"), ("x-beta", "true"), ("x-beta", "true")],
                false,
            ),
            (&exact_get, &[(":path", "/login"), (":method", "GET")], true),
            (
                &exact_get,
                &[(":path", "/login?next=/"), (":method", "HEAD")],
                true,
            ),
            (
                &exact_get,
                &[(":path", "/login/"), (":method", "GET")],
                false,
            ),
            (
                &exact_get,
                &[(":path", "/login"), (":method", "POST")],
                false,
            ),
            (
                &exact_get,
                &[(":path", "/login"), (":method", "get")],
                false,
            ),
            (&exact_get, &[(":path", "/login")], false),
            (&versioned, &[(":path", "/v2/items?canary=1")], true),
            (&versioned, &[(":path", "/v2/items?canary=1&debug")], false),
            (&versioned, &[(":path", "/v2/items?canary=0")], false),
            (&versioned, &[(":path", "/x/v2/items?canary=1")], false),
            (&versioned, &[(":path", "/v2/items")], false),
        ];
        for (conditions, headers, expected) in cases {
            assert_eq!(
                conditions.matches(&request(headers)),
                *expected,
                "{conditions:?} on {headers:?}"
            );
        }
    }

    fn host_condition(hosts: &[&str], host_regex: &[&str]) -> Conditions {
        let owned = |list: &[&str]| list.iter().map(|e| e.to_string()).collect::<Vec<_>>();
        Conditions {
            hosts: Some(HostCondition {
                hosts: HostPatterns::compile("hosts", &owned(hosts)).unwrap(),
                host_regex: HostRegexSet::compile("host_regex", &owned(host_regex)).unwrap(),
            }),
            ..Conditions::default()
        }
    }

    #[test]
    fn hosts_use_the_allowlist_normalisation() {
        let google = host_condition(&["www.google.com", "google.com"], &[]);
        let shop_tls = host_condition(&["shop.example.com:443"], &[]);
        let wildcard = host_condition(&["*.example.com"], &["api-[0-9]+\\.internal"]);
        type Case<'a> = (&'a Conditions, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (&google, &[(":authority", "google.com")], true),
            (&google, &[(":authority", "WWW.Google.COM.")], true),
            (&google, &[(":authority", "google.com:8080")], true),
            (&google, &[(":authority", "mail.google.com")], false),
            (&google, &[(":authority", "google.com.evil.net")], false),
            (&google, &[(":authority", "user@google.com")], false),
            (&google, &[], false),
            (
                &shop_tls,
                &[(":authority", "shop.example.com"), (":scheme", "https")],
                true,
            ),
            (&shop_tls, &[(":authority", "shop.example.com:443")], true),
            (
                &shop_tls,
                &[(":authority", "shop.example.com"), (":scheme", "http")],
                false,
            ),
            (&shop_tls, &[(":authority", "shop.example.com")], false),
            (&wildcard, &[(":authority", "a.b.example.com")], true),
            (&wildcard, &[(":authority", "example.com")], false),
            (&wildcard, &[(":authority", "api-7.internal")], true),
            (&wildcard, &[(":authority", "api-x.internal")], false),
        ];
        for (conditions, headers, expected) in cases {
            assert_eq!(
                conditions.matches(&request(headers)),
                *expected,
                "{conditions:?} on {headers:?}"
            );
        }
    }
}
