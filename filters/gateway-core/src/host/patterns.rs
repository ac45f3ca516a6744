//! A compiled set of configured hosts: exact names, `*.suffix` wildcards, IP literals, each with or
//! without a port.
//!
//! Lookups cost the same with ten entries or a hundred thousand: exact hosts sit in a hash map, and a
//! wildcard is found by looking up each parent domain of the requested name (at most 127 of them).

use std::collections::HashMap;

use super::authority::{Authority, AuthorityError, Host};
use super::idn;
use crate::config::{ConfigErrors, ErrorCollector};

/// How a configured entry matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Wildcard,
    Regex,
}

/// The configured entry that matched a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedEntry<'a> {
    /// Position of the entry in its configuration list.
    pub index: usize,
    /// The entry as configured.
    pub entry: &'a str,
    pub kind: MatchKind,
}

/// The ports an entry names: `host:443`, `host` (no port) or `host:*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryPort {
    Exact(u16),
    Unwritten,
    Every,
}

/// The web's default ports: what an allowlist entry without a port covers for HTTP requests.
pub const DEFAULT_WEB_PORTS: [u16; 2] = [80, 443];

/// Which entries apply to one host, by port. The port list of one host is short in any real
/// configuration, so a linear scan beats a second hash map here.
#[derive(Debug, Default)]
struct PortEntries {
    /// An entry without a port.
    unwritten: Option<usize>,
    /// A `:*` entry.
    every: Option<usize>,
    by_port: Vec<(u16, usize)>,
}

impl PortEntries {
    /// Keeps the first entry for a host and port: a later duplicate adds nothing.
    fn insert(&mut self, port: EntryPort, index: usize) {
        match port {
            EntryPort::Unwritten => {
                self.unwritten.get_or_insert(index);
            }
            EntryPort::Every => {
                self.every.get_or_insert(index);
            }
            EntryPort::Exact(port) => {
                if !self.by_port.iter().any(|(listed, _)| *listed == port) {
                    self.by_port.push((port, index));
                }
            }
        }
    }

    /// For an HTTP request to `port`: an entry for exactly this port, else one without a port if
    /// `port` is 80 or 443, else a `:*` one. A port-less entry is not "every port": through a
    /// forward proxy `CONNECT host:22` would otherwise reach SSH on an allowed web host.
    fn find_request(&self, port: u16) -> Option<usize> {
        self.by_port
            .iter()
            .find(|(listed, _)| *listed == port)
            .map(|(_, index)| *index)
            .or(self.unwritten.filter(|_| DEFAULT_WEB_PORTS.contains(&port)))
            .or(self.every)
    }

    /// An entry for exactly this port wins over one for every port, so the reported rule is the most
    /// specific one. A request without a port matches only entries without one (or `:*`).
    fn find(&self, port: Option<u16>) -> Option<usize> {
        port.and_then(|port| {
            self.by_port
                .iter()
                .find(|(listed, _)| *listed == port)
                .map(|(_, index)| *index)
        })
        .or(self.unwritten)
        .or(self.every)
    }
}

/// Configured hosts, compiled for matching. Entries use this syntax (see [`HostPatterns::compile`]):
/// `name`, `name:port`, `*.suffix`, `*.suffix:port`, `10.0.0.7`, `[2001:db8::7]:443`, and numeric
/// IPv4 spellings (`127.1`) that then match only when the request spells them the same way.
#[derive(Debug, Default)]
pub struct HostPatterns {
    entries: Vec<String>,
    exact: HashMap<Host, PortEntries>,
    /// Keyed by the suffix after `*.`.
    wildcards: HashMap<String, PortEntries>,
    /// Some entry names a port, so a request's port (or its scheme's default) decides a match.
    has_port_entries: bool,
}

impl HostPatterns {
    /// Validates and compiles `entries`. Every invalid entry gives one error named
    /// `{field}[{index}]` that quotes the entry and says why, e.g.
    /// `hosts[3]: "*foo.com": a wildcard must be a whole leading "*." label`.
    ///
    /// Entries are normalised as requests are (case, one trailing dot, A-labels checked), and
    /// internationalised names must be written as punycode A-labels, so the configuration shows
    /// exactly what is matched; the error suggests the A-label form where it can be given reliably.
    pub fn compile(field: &str, entries: &[String]) -> Result<Self, ConfigErrors> {
        let mut patterns = Self {
            entries: entries.to_vec(),
            ..Self::default()
        };
        let mut errors = ErrorCollector::default();
        for (index, entry) in entries.iter().enumerate() {
            match parse_entry(entry) {
                Ok(Pattern::Exact { host, port }) => {
                    patterns.exact.entry(host).or_default().insert(port, index)
                }
                Ok(Pattern::Wildcard { suffix, port }) => patterns
                    .wildcards
                    .entry(suffix)
                    .or_default()
                    .insert(port, index),
                Err(reason) => {
                    errors.push(format!("{field}[{index}]"), format!("{entry:?}: {reason}"))
                }
            }
        }
        patterns.has_port_entries = patterns
            .exact
            .values()
            .chain(patterns.wildcards.values())
            .any(|ports| !ports.by_port.is_empty());
        errors.finish(patterns)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether any entry names a port: when none does, a request's port cannot change a match.
    pub fn has_port_entries(&self) -> bool {
        self.has_port_entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry that allows this authority, if any: an exact host first, then the wildcard with the
    /// longest suffix. An entry without a port matches every port.
    pub fn matches(&self, authority: &Authority) -> Option<MatchedEntry<'_>> {
        self.matches_host(authority.host(), authority.port())
    }

    /// As [`HostPatterns::matches`], for a host and port held separately (e.g. a TLS SNI).
    pub fn matches_host(&self, host: &Host, port: Option<u16>) -> Option<MatchedEntry<'_>> {
        self.find_by(host, |ports| ports.find(port))
    }

    /// The entry that allows an HTTP request for `host` on `port`, the port it targets: an entry
    /// without a port covers only 80 and 443 ([`DEFAULT_WEB_PORTS`]), `host:*` every port.
    pub fn matches_request(&self, host: &Host, port: u16) -> Option<MatchedEntry<'_>> {
        self.find_by(host, |ports| ports.find_request(port))
    }

    fn find_by(
        &self,
        host: &Host,
        find: impl Fn(&PortEntries) -> Option<usize>,
    ) -> Option<MatchedEntry<'_>> {
        if let Some(index) = self.exact.get(host).and_then(&find) {
            return self.matched(index, MatchKind::Exact);
        }
        let mut rest = host.name()?;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(index) = self.wildcards.get(parent).and_then(&find) {
                return self.matched(index, MatchKind::Wildcard);
            }
            rest = parent;
        }
        None
    }

    fn matched(&self, index: usize, kind: MatchKind) -> Option<MatchedEntry<'_>> {
        self.entries
            .get(index)
            .map(|entry| MatchedEntry { index, entry, kind })
    }
}

enum Pattern {
    Exact { host: Host, port: EntryPort },
    Wildcard { suffix: String, port: EntryPort },
}

const WILDCARD_SHAPE: &str = "a wildcard must be a whole leading \"*.\" label";

fn parse_entry(entry: &str) -> Result<Pattern, String> {
    if entry.contains("://") {
        return Err("write the host alone, not a URL".to_string());
    }
    let (is_wildcard, rest) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let (rest, every_port) = match rest.strip_suffix(":*") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    if rest.contains('*') {
        return Err(WILDCARD_SHAPE.to_string());
    }
    if is_wildcard && (rest.is_empty() || rest.starts_with(':')) {
        return Err("a wildcard needs a domain after \"*.\"".to_string());
    }
    let authority = match Authority::parse(rest) {
        Err(AuthorityError::InvalidIdn) if !rest.is_ascii() => {
            return Err(unicode_entry_error(rest, is_wildcard))
        }
        parsed => parsed.map_err(|error| error.to_string())?,
    };
    let port = match (authority.port(), every_port) {
        (Some(_), true) => return Err("write one port or \":*\", not both".to_string()),
        (Some(port), false) => EntryPort::Exact(port),
        (None, true) => EntryPort::Every,
        (None, false) => EntryPort::Unwritten,
    };
    if !is_wildcard {
        return Ok(Pattern::Exact {
            host: authority.host().clone(),
            port,
        });
    }
    match authority.host() {
        Host::Name(suffix) => Ok(Pattern::Wildcard {
            suffix: suffix.clone(),
            port,
        }),
        _ => Err("a wildcard covers names under a domain, not an IP address".to_string()),
    }
}

const A_LABELS_REQUIRED: &str = "internationalised names must be written as punycode A-labels";

/// The error for an entry written in Unicode: with the A-label form to use when it can be given
/// reliably, otherwise (or when that form is itself invalid) with why.
fn unicode_entry_error(rest: &str, is_wildcard: bool) -> String {
    let Some(suggestion) = idn::suggest_a_labels(rest) else {
        return format!(
            "{A_LABELS_REQUIRED}: write each label's \"xn--\" form as UTS 46 gives it (this name has \
             characters that UTS 46 maps or refuses, so no form is suggested)"
        );
    };
    match Authority::parse(&suggestion) {
        Ok(authority) => {
            let prefix = if is_wildcard { "*." } else { "" };
            format!("{A_LABELS_REQUIRED}: use \"{prefix}{authority}\"")
        }
        Err(error) => format!("{A_LABELS_REQUIRED}, and as {suggestion:?}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn compile(entries: &[&str]) -> HostPatterns {
        let entries: Vec<String> = entries.iter().map(|entry| entry.to_string()).collect();
        HostPatterns::compile("hosts", &entries).unwrap_or_else(|errors| panic!("{errors}"))
    }

    /// The matched entry for `request`, or `None` when denied.
    fn lookup<'a>(patterns: &'a HostPatterns, request: &str) -> Option<(&'a str, MatchKind)> {
        let authority =
            Authority::parse(request).unwrap_or_else(|error| panic!("{request:?}: {error}"));
        patterns
            .matches(&authority)
            .map(|matched| (matched.entry, matched.kind))
    }

    #[test]
    fn issue_example_matches_as_documented() {
        use MatchKind::*;
        let patterns = compile(&[
            "www.google.com",
            "google.com",
            "*.googleapis.com",
            "api.example.com:8443",
            "10.0.0.7",
            "[2001:db8::7]",
        ]);
        let cases: &[(&str, Option<(&str, MatchKind)>)] = &[
            ("www.google.com", Some(("www.google.com", Exact))),
            ("WWW.GOOGLE.COM.", Some(("www.google.com", Exact))),
            ("www.google.com:443", Some(("www.google.com", Exact))),
            ("www.google.com:1", Some(("www.google.com", Exact))),
            ("google.com", Some(("google.com", Exact))),
            ("mail.google.com", None),
            ("google.com.evil.com", None),
            ("evilgoogle.com", None),
            (
                "storage.googleapis.com",
                Some(("*.googleapis.com", Wildcard)),
            ),
            (
                "a.b.c.googleapis.com:443",
                Some(("*.googleapis.com", Wildcard)),
            ),
            ("googleapis.com", None),
            ("xgoogleapis.com", None),
            ("googleapis.com.evil", None),
            (
                "api.example.com:8443",
                Some(("api.example.com:8443", Exact)),
            ),
            ("api.example.com", None),
            ("api.example.com:443", None),
            ("10.0.0.7", Some(("10.0.0.7", Exact))),
            ("10.0.0.7:9000", Some(("10.0.0.7", Exact))),
            ("10.0.0.8", None),
            ("[2001:db8::7]", Some(("[2001:db8::7]", Exact))),
            ("[2001:db8:0:0:0:0:0:7]:443", Some(("[2001:db8::7]", Exact))),
            ("[2001:db8::8]", None),
            ("[::ffff:10.0.0.7]", None),
            ("167772167", None),
            ("0xa000007", None),
            ("012.0.0.7", None),
            ("10.7", None),
        ];
        for (request, expected) in cases {
            assert_eq!(lookup(&patterns, request), *expected, "{request:?}");
        }
    }

    #[test]
    fn requests_match_port_less_entries_on_80_and_443_only_and_star_on_every_port() {
        let patterns = compile(&[
            "a.example",
            "a.example:8443",
            "*.b.example:*",
            "c.example:*",
            "c.example",
        ]);
        let cases: &[(&str, u16, Option<&str>)] = &[
            ("a.example", 80, Some("a.example")),
            ("a.example", 443, Some("a.example")),
            ("a.example", 8443, Some("a.example:8443")),
            ("a.example", 22, None),
            ("x.b.example", 22, Some("*.b.example:*")),
            ("x.b.example", 443, Some("*.b.example:*")),
            // The port-less entry is reported where it applies, `:*` elsewhere.
            ("c.example", 443, Some("c.example")),
            ("c.example", 22, Some("c.example:*")),
        ];
        for (host, port, expected) in cases {
            let host = Host::parse(host).unwrap();
            assert_eq!(
                patterns.matches_request(&host, *port).map(|m| m.entry),
                *expected,
                "{host}:{port}"
            );
        }
        // Connections (and the subset tagger) keep "no port: every port", and `:*` is the same.
        let host = Host::parse("c.example").unwrap();
        assert_eq!(
            patterns.matches_host(&host, Some(22)).map(|m| m.entry),
            Some("c.example")
        );
        let host = Host::parse("x.b.example").unwrap();
        assert_eq!(
            patterns.matches_host(&host, Some(22)).map(|m| m.entry),
            Some("*.b.example:*")
        );
    }

    #[test]
    fn a_star_port_goes_alone() {
        let errors = HostPatterns::compile(
            "hosts",
            &["a.example:80:*".to_string(), "a.example:**".to_string()],
        )
        .unwrap_err();
        let lines: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
        assert_eq!(
            lines,
            [
                r#"hosts[0]: "a.example:80:*": write one port or ":*", not both"#,
                r#"hosts[1]: "a.example:**": a wildcard must be a whole leading "*." label"#,
            ]
        );
    }

    #[test]
    fn ports_select_entries() {
        let patterns = compile(&[
            "a.example:443",
            "a.example:8443",
            "*.b.example:80",
            "c.example",
            "c.example:9000",
        ]);
        let cases: &[(&str, Option<&str>)] = &[
            ("a.example:443", Some("a.example:443")),
            ("a.example:8443", Some("a.example:8443")),
            ("a.example:80", None),
            ("a.example", None),
            ("x.b.example:80", Some("*.b.example:80")),
            ("x.b.example:443", None),
            ("x.b.example", None),
            // The port-specific entry is reported when both apply.
            ("c.example:9000", Some("c.example:9000")),
            ("c.example:9001", Some("c.example")),
            ("c.example", Some("c.example")),
        ];
        for (request, expected) in cases {
            assert_eq!(
                lookup(&patterns, request).map(|(entry, _)| entry),
                *expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn most_specific_wildcard_wins_and_exact_beats_wildcard() {
        let patterns = compile(&["*.example.com", "*.deep.example.com", "x.deep.example.com"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("x.deep.example.com", Some("x.deep.example.com")),
            ("y.deep.example.com", Some("*.deep.example.com")),
            ("a.y.deep.example.com", Some("*.deep.example.com")),
            ("deep.example.com", Some("*.example.com")),
            ("example.com", None),
            ("com", None),
        ];
        for (request, expected) in cases {
            assert_eq!(
                lookup(&patterns, request).map(|(entry, _)| entry),
                *expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn numeric_spellings_match_only_when_listed_verbatim() {
        let patterns = compile(&["127.0.0.1", "127.1", "0X7F000001"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1")),
            ("127.1", Some("127.1")),
            ("0x7f000001", Some("0X7F000001")),
            ("0x7F000001:80", Some("0X7F000001")),
            ("2130706433", None),
            ("0177.0.0.1", None),
            ("127.0.1", None),
            ("0x7f.1", None),
            ("127.000.000.001", None),
            ("localhost", None),
        ];
        for (request, expected) in cases {
            assert_eq!(
                lookup(&patterns, request).map(|(entry, _)| entry),
                *expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn entries_are_normalised_like_requests() {
        let patterns = compile(&["WWW.Example.COM.", "*.Example.ORG.", "XN--BCHER-KVA.de"]);
        let cases: &[(&str, Option<&str>)] = &[
            ("www.example.com", Some("WWW.Example.COM.")),
            ("a.example.org", Some("*.Example.ORG.")),
            ("xn--bcher-kva.de", Some("XN--BCHER-KVA.de")),
            ("XN--bcher-KVA.DE.", Some("XN--BCHER-KVA.de")),
            ("bucher.de", None),
        ];
        for (request, expected) in cases {
            assert_eq!(
                lookup(&patterns, request).map(|(entry, _)| entry),
                *expected,
                "{request:?}"
            );
        }
    }

    #[test]
    fn duplicates_keep_the_first_entry() {
        let patterns = compile(&["a.example", "A.example.", "a.example:80", "a.example:80"]);
        let matched = patterns
            .matches(&Authority::parse("a.example").unwrap())
            .unwrap();
        assert_eq!((matched.index, matched.entry), (0, "a.example"));
        let matched = patterns
            .matches(&Authority::parse("a.example:80").unwrap())
            .unwrap();
        assert_eq!(matched.index, 2);
    }

    #[test]
    fn sni_style_lookup_by_host() {
        let patterns = compile(&["*.example.com", "10.0.0.7"]);
        let host = Host::parse("api.example.com").unwrap();
        assert_eq!(
            patterns.matches_host(&host, None).map(|m| m.entry),
            Some("*.example.com")
        );
        let ip = Host::parse("10.0.0.7").unwrap();
        assert_eq!(
            patterns.matches_host(&ip, None).map(|m| m.entry),
            Some("10.0.0.7")
        );
    }

    #[test]
    fn empty_set_matches_nothing() {
        let patterns = compile(&[]);
        assert!(patterns.is_empty());
        assert_eq!(lookup(&patterns, "example.com"), None);
    }

    #[test]
    fn invalid_entries_give_one_named_error_each() {
        let wildcard = "a wildcard must be a whole leading \"*.\" label";
        let needs_domain = "a wildcard needs a domain after \"*.\"";
        let not_ip = "a wildcard covers names under a domain, not an IP address";
        let cases: &[(&str, &str)] = &[
            ("*", wildcard),
            ("*.", needs_domain),
            ("*.:443", needs_domain),
            ("*foo.com", wildcard),
            ("a.*.b", wildcard),
            ("foo.*", wildcard),
            ("*.*.example.com", wildcard),
            ("**.example.com", wildcard),
            ("*.example.*", wildcard),
            ("*.10.0.0.7", not_ip),
            ("*.127.1", not_ip),
            ("*.[::1]", not_ip),
            ("", "the host is empty"),
            ("example.com:0", "the port must be a number from 1 to 65535"),
            ("example.com:http", "the port must be a number from 1 to 65535"),
            ("2001:db8::7", "an IPv6 address must be written in brackets"),
            ("user@example.com", "user information (\"user@\") is not allowed"),
            ("https://example.com", "write the host alone, not a URL"),
            ("example.com/path", "'/' is not allowed in a host name"),
            ("bücher.de", "internationalised names must be written as punycode A-labels: use \"xn--bcher-kva.de\""),
            ("*.bücher.de", "internationalised names must be written as punycode A-labels: use \"*.xn--bcher-kva.de\""),
            ("bücher.de:8443", "internationalised names must be written as punycode A-labels: use \"xn--bcher-kva.de:8443\""),
            ("Bücher.DE.", "internationalised names must be written as punycode A-labels: use \"xn--bcher-kva.de\""),
            ("ｇｏｏｇｌｅ.com", "internationalised names must be written as punycode A-labels: write each label's \"xn--\" form as UTS 46 gives it (this name has characters that UTS 46 maps or refuses, so no form is suggested)"),
            ("bücher.de:0", "internationalised names must be written as punycode A-labels, and as \"xn--bcher-kva.de:0\": the port must be a number from 1 to 65535"),
            ("bü\u{7f}cher.de", "control characters are not allowed"),
            ("xn--a.com", "not a valid internationalised domain name"),
            ("exa mple.com", "whitespace is not allowed"),
        ];
        for (index, (entry, reason)) in cases.iter().enumerate() {
            let entries = vec!["ok.example".to_string(), entry.to_string()];
            let errors = HostPatterns::compile("rules[2].hosts", &entries)
                .err()
                .unwrap_or_else(|| panic!("case {index}: {entry:?} should be refused"));
            assert_eq!(
                errors.to_string(),
                format!("rules[2].hosts[1]: {entry:?}: {reason}"),
                "case {index}"
            );
        }
    }

    #[test]
    fn every_invalid_entry_is_reported() {
        let entries: Vec<String> = ["ok.example", "*foo.com", "good.example", "*", "a:0"]
            .iter()
            .map(|entry| entry.to_string())
            .collect();
        let errors = HostPatterns::compile("hosts", &entries).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        assert_eq!(fields, ["hosts[1]", "hosts[3]", "hosts[4]"]);
        assert_eq!(
            errors.0[0].to_string(),
            "hosts[1]: \"*foo.com\": a wildcard must be a whole leading \"*.\" label"
        );
    }
}
