//! Configured host regexes, compiled once into one `RegexSet` so that a request is matched against all
//! of them in a single pass.
//!
//! Names are matched in ASCII mode (`unicode(false)`): a normalised name is lowercase ASCII, so
//! Unicode-aware classes and case folding could not match anything more, and leaving them out keeps
//! regex-syntax's Unicode tables out of the module. ASCII mode lets `.` match any byte, which only
//! the byte-oriented `regex::bytes` API accepts; on an ASCII name a byte is a character.

use regex::bytes::{RegexBuilder, RegexSet, RegexSetBuilder};

use super::authority::Host;
use super::patterns::{MatchKind, MatchedEntry};
use crate::config::{ConfigErrors, ErrorCollector};

/// Compiled size limit of one entry. Envoy gives each Wasm VM its own memory; a configuration must not
/// be able to exhaust it, and a host pattern that needs more than this is a mistake.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Compiled size limit of all entries together.
pub const REGEX_SET_SIZE_LIMIT: usize = 16 << 20;

/// Host regexes. Each is anchored on the whole normalised name (`^(?:…)$`), so `example\.com` cannot
/// match `example.com.evil.net`. They match case-insensitively because names are lowercased before
/// matching, so a pattern written with capitals still means what it says. They apply to DNS names
/// only: IP addresses and numeric spellings match only exact host entries. Classes such as `\d`,
/// `\w` and `[[:alpha:]]` are ASCII classes.
#[derive(Debug)]
pub struct HostRegexSet {
    patterns: Vec<String>,
    set: RegexSet,
}

impl HostRegexSet {
    /// Validates and compiles `patterns`; every invalid pattern gives one error named
    /// `{field}[{index}]`.
    pub fn compile(field: &str, patterns: &[String]) -> Result<Self, ConfigErrors> {
        let mut errors = ErrorCollector::default();
        for (index, pattern) in patterns.iter().enumerate() {
            // Each pattern is compiled alone first: that names the entry at fault, and it proves the
            // pattern's groups are balanced, so wrapping it in `^(?:…)$` below really anchors it
            // (`a)|(b` alone is an error; wrapped, it would be a valid, unanchored alternation).
            if let Err(error) = RegexBuilder::new(pattern)
                .unicode(false)
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                errors.push(
                    format!("{field}[{index}]"),
                    format!("{pattern:?}: {}", describe(&error)),
                );
            }
        }
        errors.finish(())?;
        let anchored = patterns.iter().map(|pattern| format!("^(?:{pattern})$"));
        let set = RegexSetBuilder::new(anchored)
            .unicode(false)
            .case_insensitive(true)
            .size_limit(REGEX_SET_SIZE_LIMIT)
            .build()
            .map_err(|error| ConfigErrors::single(field, describe(&error)))?;
        Ok(Self {
            patterns: patterns.to_vec(),
            set,
        })
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The first pattern, in configuration order, that matches this host's name.
    pub fn matches(&self, host: &Host) -> Option<MatchedEntry<'_>> {
        let name = host.name()?;
        let index = self.set.matches(name.as_bytes()).iter().next()?;
        self.patterns.get(index).map(|entry| MatchedEntry {
            index,
            entry,
            kind: MatchKind::Regex,
        })
    }
}

impl Default for HostRegexSet {
    /// No patterns: matches nothing.
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            set: RegexSet::empty(),
        }
    }
}

/// One line for Envoy's log: the regex crate's syntax errors span several lines (pattern, caret,
/// message), of which the message is the useful part.
fn describe(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled regex is larger than the limit of {limit} bytes")
        }
        error => {
            let text = error.to_string();
            let message = text
                .lines()
                .rev()
                .find_map(|line| line.strip_prefix("error: "));
            message.map_or_else(
                || text.split_whitespace().collect::<Vec<_>>().join(" "),
                str::to_string,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn compile(patterns: &[&str]) -> Result<HostRegexSet, ConfigErrors> {
        let patterns: Vec<String> = patterns.iter().map(|pattern| pattern.to_string()).collect();
        HostRegexSet::compile("host_regex", &patterns)
    }

    fn matched(set: &HostRegexSet, host: &str) -> Option<usize> {
        set.matches(&Host::parse(host).unwrap())
            .map(|entry| entry.index)
    }

    #[test]
    fn patterns_are_anchored_on_the_whole_name() {
        let set = compile(&[
            "^bucket-[0-9]+\\.storage\\.example\\.com$",
            "example\\.net",
            "a|b",
            "[a-z]+\\.internal",
        ])
        .unwrap();
        let cases: &[(&str, Option<usize>)] = &[
            ("bucket-1.storage.example.com", Some(0)),
            ("BUCKET-42.storage.example.com.", Some(0)),
            ("bucket-.storage.example.com", None),
            ("bucket-1.storage.example.com.evil.net", None),
            ("xbucket-1.storage.example.com", None),
            ("example.net", Some(1)),
            ("www.example.net", None),
            ("example.net.evil", None),
            ("a", Some(2)),
            ("b", Some(2)),
            ("ab", None),
            ("db.internal", Some(3)),
            ("db.internal.example", None),
            ("d-b.internal", None),
        ];
        for (host, expected) in cases {
            assert_eq!(matched(&set, host), *expected, "{host:?}");
        }
    }

    #[test]
    fn capitals_in_patterns_still_match_lowercased_names() {
        let set = compile(&["API\\.Example\\.com"]).unwrap();
        assert_eq!(matched(&set, "api.example.com"), Some(0));
    }

    #[test]
    fn first_matching_pattern_is_reported() {
        let set = compile(&["x", ".*\\.example", "a\\.example"]).unwrap();
        assert_eq!(matched(&set, "a.example"), Some(1));
    }

    #[test]
    fn names_only_never_addresses() {
        let set = compile(&["[0-9.]+", ".*"]).unwrap();
        let cases = ["10.0.0.7", "[::1]", "127.1", "2130706433"];
        for host in cases {
            assert_eq!(matched(&set, host), None, "{host:?}");
        }
        assert_eq!(matched(&set, "anything"), Some(1));
    }

    #[test]
    fn matches_the_punycode_form() {
        let set = compile(&["xn--bcher-kva\\.de"]).unwrap();
        assert_eq!(matched(&set, "XN--BCHER-KVA.de"), Some(0));
    }

    #[test]
    fn perl_classes_and_case_insensitivity_work_in_ascii_mode() {
        let set = compile(&[
            "api-\\d+\\.example",
            "\\w+\\.internal",
            "(?i)MIXED\\.example",
            "[[:alpha:]]+-[[:digit:]]\\.example",
            "any.\\.example",
        ])
        .unwrap();
        let cases: &[(&str, Option<usize>)] = &[
            ("api-42.example", Some(0)),
            ("api-x.example", None),
            ("db_1.internal", Some(1)),
            ("db-1.internal", None),
            ("mixed.example", Some(2)),
            ("ab-7.example", Some(3)),
            ("anyz.example", Some(4)),
        ];
        for (host, expected) in cases {
            assert_eq!(matched(&set, host), *expected, "{host:?}");
        }
    }

    #[test]
    fn empty_set_matches_nothing() {
        let set = compile(&[]).unwrap();
        assert!(set.is_empty());
        assert_eq!(matched(&set, "example.com"), None);
    }

    #[test]
    fn invalid_patterns_give_one_line_each() {
        let errors =
            compile(&["ok", "a)|(b", "[z-a]", "fine", "(unclosed", "\\p{L}+"]).unwrap_err();
        let lines: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
        assert_eq!(
            lines,
            [
                "host_regex[1]: \"a)|(b\": unopened group",
                "host_regex[2]: \"[z-a]\": invalid character class range, the start must be <= the end",
                "host_regex[4]: \"(unclosed\": unclosed group",
                "host_regex[5]: \"\\\\p{L}+\": Unicode not allowed here",
            ]
        );
    }

    #[test]
    fn oversized_pattern_is_refused() {
        let errors = compile(&["ok", "(?:\\w{1000}){200}"]).unwrap_err();
        let text = errors.to_string();
        assert!(text.starts_with("host_regex[1]: "), "{text}");
        assert!(
            text.contains("larger than the limit of 1048576 bytes"),
            "{text}"
        );
    }
}
