//! What a client says it wants to reach, made canonical and matched against configured hosts.
//!
//! Every filter that decides by destination (host-allowlist, subset-tagger) parses hosts here, so one
//! spelling rule holds everywhere: an HTTP authority or a TLS SNI is normalised once ([`Authority`],
//! [`Host`]) and then looked up in a compiled set of configured entries ([`HostPatterns`] for exact
//! names, `*.suffix` wildcards, ports and IP literals; [`HostRegexSet`] for anchored regexes).
//! Whatever does not parse is an error, so callers can deny it rather than guess.

mod authority;
mod idn;
mod patterns;
mod punycode;
mod regex_lint;
mod regex_set;

pub use authority::{Authority, AuthorityError, Host, MAX_LABEL_LENGTH, MAX_NAME_LENGTH};
pub use patterns::{HostPatterns, MatchKind, MatchedEntry, DEFAULT_WEB_PORTS};
pub use regex_lint::unescaped_dot_warnings;
pub use regex_set::{HostRegexSet, REGEX_SET_SIZE_LIMIT, REGEX_SIZE_LIMIT};
