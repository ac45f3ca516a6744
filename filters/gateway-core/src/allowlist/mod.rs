//! host-allowlist: only listed destinations pass.
//!
//! [`Allowlist::from_json`] validates and compiles the plugin configuration;
//! [`Allowlist::decide_request`] and [`Allowlist::decide_connection`] are the whole HTTP and TLS
//! passthrough flows, reading the proxy only through [`RequestHost`] and [`ConnectionHost`], so that
//! the filter crate is left with translating host calls and applying the returned [`Verdict`].

mod config;
mod decision;
mod flow;
mod istio_sni;
mod sni_mismatch;

pub use config::{AllowlistConfig, Denial, Mode, OnSniMismatch};
pub use decision::{Decision, Outcome, Reason};
pub use flow::{
    Action, ConnectionHost, DenyResponse, RequestHost, Verdict, MISDIRECTED_BODY,
    MISDIRECTED_STATUS, REASON_HEADER,
};

use crate::config::{parse_json, ConfigErrors, ConfigWarning, ErrorCollector};
use crate::host::{
    unescaped_dot_warnings, Host, HostPatterns, HostRegexSet, MatchedEntry, DEFAULT_WEB_PORTS,
};

/// A validated, compiled allowlist configuration. The default lists nothing, in enforce mode: it
/// denies everything, which is what a filter must do before it has a valid configuration.
#[derive(Debug, Default)]
pub struct Allowlist {
    mode: Mode,
    hosts: HostPatterns,
    host_regex: HostRegexSet,
    deny: Denial,
    on_sni_mismatch: OnSniMismatch,
    /// What in the accepted configuration is probably a mistake, for the filter to log.
    warnings: Vec<ConfigWarning>,
}

impl Allowlist {
    /// Parses, validates and compiles the plugin configuration, reporting every problem at once, one
    /// per entry, each naming its field (`hosts[3]`, `host_regex[0]`, `deny.status`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        Self::compile(parse_json(bytes)?)
    }

    pub fn compile(config: AllowlistConfig) -> Result<Self, ConfigErrors> {
        let mut errors = ErrorCollector::default();
        // A denial that looks like success (2xx) or a redirect (3xx) hides from clients and
        // monitors, which count errors by status class.
        if !(400..=599).contains(&config.deny.status) {
            errors.push(
                "deny.status",
                format!(
                    "{} is not an HTTP error status from 400 to 599",
                    config.deny.status
                ),
            );
        }
        let hosts = HostPatterns::compile("hosts", &config.hosts);
        let host_regex = HostRegexSet::compile("host_regex", &config.host_regex);
        for problem in [hosts.as_ref().err(), host_regex.as_ref().err()]
            .into_iter()
            .flatten()
        {
            for error in problem.iter() {
                errors.push(error.field.clone(), error.reason.clone());
            }
        }
        errors.finish(())?;
        Ok(Self {
            mode: config.mode,
            hosts: hosts?,
            host_regex: host_regex?,
            deny: config.deny,
            on_sni_mismatch: config.on_sni_mismatch,
            warnings: unescaped_dot_warnings("host_regex", &config.host_regex),
        })
    }

    /// Problems that do not invalidate the configuration but probably are mistakes, each naming its
    /// field: the filter logs them at configure time, `cargo xtask check-config` lists them.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The entry that allows a TLS passthrough connection to `host` arriving on `port`: exact hosts
    /// and wildcards first, then regexes. An entry without a port covers every listener port: the
    /// listener, not the client, chose it.
    pub fn find(&self, host: &Host, port: Option<u16>) -> Option<MatchedEntry<'_>> {
        self.hosts
            .matches_host(host, port)
            .or_else(|| self.host_regex.matches(host))
    }

    /// The entry that allows an HTTP request for `host` targeting `port` (see
    /// [`RequestHost::downstream_is_tls`] for which port that is): an entry without a port, and
    /// every `host_regex` pattern, covers only 80 and 443; `host:*` covers every port.
    pub fn find_request(&self, host: &Host, port: u16) -> Option<MatchedEntry<'_>> {
        self.hosts.matches_request(host, port).or_else(|| {
            DEFAULT_WEB_PORTS
                .contains(&port)
                .then(|| self.host_regex.matches(host))
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const ISSUE_EXAMPLE: &str = r#"{
        "mode": "enforce",
        "hosts": ["www.google.com", "google.com", "*.googleapis.com", "api.example.com:8443", "10.0.0.7", "[2001:db8::7]"],
        "host_regex": ["^bucket-[0-9]+\\.storage\\.example\\.com$"],
        "deny": {"status": 403, "body": "host not allowed"},
        "on_sni_mismatch": "reject"
    }"#;

    #[test]
    fn issue_example_compiles() {
        let allowlist = Allowlist::from_json(ISSUE_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(allowlist.mode(), Mode::Enforce);
        assert_eq!(allowlist.hosts.len(), 6);
        assert_eq!(allowlist.host_regex.len(), 1);
        assert_eq!(allowlist.on_sni_mismatch, OnSniMismatch::Reject);
    }

    #[test]
    fn defaults_enforce_with_403_and_reject_sni_mismatch() {
        let allowlist = Allowlist::from_json(b"").unwrap();
        assert_eq!(allowlist.mode(), Mode::Enforce);
        assert_eq!(
            allowlist.deny,
            Denial {
                status: 403,
                body: "host not allowed".to_string()
            }
        );
        assert_eq!(allowlist.on_sni_mismatch, OnSniMismatch::Reject);
        assert!(allowlist.hosts.is_empty() && allowlist.host_regex.is_empty());
    }

    #[test]
    fn default_denies_everything() {
        let host = Host::parse("example.com").unwrap();
        assert_eq!(Allowlist::default().find(&host, None), None);
        assert_eq!(Allowlist::default().mode(), Mode::Enforce);
    }

    #[test]
    fn find_prefers_hosts_then_regex() {
        let allowlist = Allowlist::from_json(
            br#"{"hosts":["a.example", "*.example"], "host_regex":["a\\.example", "b\\.example"]}"#,
        )
        .unwrap();
        let find = |host: &str| {
            allowlist
                .find(&Host::parse(host).unwrap(), None)
                .map(|entry| entry.entry)
        };
        assert_eq!(find("a.example"), Some("a.example"));
        assert_eq!(find("b.example"), Some("*.example"));
        assert_eq!(find("b.example.org"), None);
        assert_eq!(find("example"), None);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let json = br#"{
            "hosts": ["ok.example", "*foo.com", "a:0", "b\u00fccher.de"],
            "host_regex": ["ok", "(unclosed"],
            "deny": {"status": 99}
        }"#;
        let errors = Allowlist::from_json(json).unwrap_err();
        let lines: Vec<String> = errors.iter().map(|error| error.to_string()).collect();
        assert_eq!(
            lines,
            [
                "deny.status: 99 is not an HTTP error status from 400 to 599",
                "hosts[1]: \"*foo.com\": a wildcard must be a whole leading \"*.\" label",
                "hosts[2]: \"a:0\": the port must be a number from 1 to 65535",
                "hosts[3]: \"bücher.de\": internationalised names must be written as punycode A-labels: use \"xn--bcher-kva.de\"",
                "host_regex[1]: \"(unclosed\": unclosed group",
            ]
        );
    }

    #[test]
    fn structural_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"mode":"log"}"#, "mode"),
            (r#"{"hosts":"a.example"}"#, "hosts"),
            (r#"{"hosts":["a", 7]}"#, "hosts[1]"),
            (r#"{"deny":{"status":"403"}}"#, "deny.status"),
            (r#"{"deny":{"code":403}}"#, "deny.code"),
            (r#"{"on_sni_mismatch":"ignore"}"#, "on_sni_mismatch"),
            (r#"{"host":["a"]}"#, "host"),
        ];
        for (json, field) in cases {
            let errors = Allowlist::from_json(json.as_bytes()).unwrap_err();
            assert_eq!(errors.0.len(), 1, "{json}");
            assert_eq!(errors.0[0].field, *field, "{json}: {errors}");
        }
    }

    #[test]
    fn deny_status_bounds() {
        for (status, valid) in [
            (199, false),
            (200, false),
            (204, false),
            (302, false),
            (399, false),
            (400, true),
            (403, true),
            (421, true),
            (599, true),
            (600, false),
        ] {
            let json = format!(r#"{{"deny":{{"status":{status}}}}}"#);
            assert_eq!(
                Allowlist::from_json(json.as_bytes()).is_ok(),
                valid,
                "{status}"
            );
        }
    }

    #[test]
    fn a_regex_with_an_unescaped_dot_between_words_is_accepted_with_a_warning() {
        let allowlist = Allowlist::from_json(
            br#"{"host_regex": ["^bucket-[0-9]+\\.storage\\.example\\.com$", "^api.example.com$"]}"#,
        )
        .unwrap();
        let warnings: Vec<String> = allowlist
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            warnings,
            [
                r#"host_regex[1]: "^api.example.com$": the unescaped "." in "api.example" matches any character, so "apixexample" is allowed too; write "\." for a literal dot"#
            ]
        );
        assert!(Allowlist::from_json(br#"{"hosts": ["api.example.com"]}"#)
            .unwrap()
            .warnings()
            .is_empty());
    }

    /// The published JSON Schema must describe exactly what the filter accepts: its examples are valid
    /// configurations, every property and enum value it lists is accepted, and a property it does not
    /// list is refused.
    #[test]
    fn json_schema_agrees_with_the_parser() {
        let schema: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../schemas/host-allowlist.schema.json"
        ))
        .unwrap();
        for example in schema["examples"].as_array().unwrap() {
            Allowlist::from_json(example.to_string().as_bytes())
                .unwrap_or_else(|errors| panic!("{example}: {errors}"));
        }
        let properties = schema["properties"].as_object().unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["deny", "host_regex", "hosts", "mode", "on_sni_mismatch"]
        );
        for (name, property) in properties {
            let values = match property["enum"].as_array() {
                Some(values) => values.clone(),
                None => vec![property["default"].clone()],
            };
            for value in values {
                let document = serde_json::json!({ name.as_str(): value }).to_string();
                Allowlist::from_json(document.as_bytes())
                    .unwrap_or_else(|errors| panic!("{document}: {errors}"));
            }
        }
        assert_eq!(schema["additionalProperties"], false);
        assert!(Allowlist::from_json(br#"{"extra": 1}"#).is_err());
    }
}
