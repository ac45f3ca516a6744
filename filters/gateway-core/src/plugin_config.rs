//! Which filter a plugin configuration is for, and its check by that filter's own parser: what
//! `cargo xtask check-config` runs, so an operator sees before deploying exactly the errors that
//! would make Envoy refuse the plugin, and the warnings the filter would log.

use crate::access_log::AccessLogConfig;
use crate::allowlist::Allowlist;
use crate::config::{ConfigErrors, ConfigWarning};
use crate::gateway::GatewayConfig;
use crate::subset::TaggerConfig;

/// The filter modules, by the name of their image and `.wasm` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFilter {
    HostAllowlist,
    SubsetTagger,
    AccessLog,
    Gateway,
}

impl PluginFilter {
    pub const ALL: [Self; 4] = [
        Self::HostAllowlist,
        Self::SubsetTagger,
        Self::AccessLog,
        Self::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::HostAllowlist => "host-allowlist",
            Self::SubsetTagger => "subset-tagger",
            Self::AccessLog => "access-log",
            Self::Gateway => "gateway",
        }
    }

    /// The filter named `name`, written with `-` or `_` (`host-allowlist`, `host_allowlist`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.replace('_', "-");
        Self::ALL.into_iter().find(|filter| filter.name() == name)
    }

    /// The filter whose image or module a WasmPlugin `url` names: its last path segment without
    /// tag, digest or `.wasm` (`oci://…/host-allowlist:0.1.0`, `file:///…/host_allowlist.wasm`).
    pub fn of_url(url: &str) -> Option<Self> {
        let last = url.rsplit('/').next()?;
        let name = last.split(['@', ':']).next()?;
        Self::from_name(name.strip_suffix(".wasm").unwrap_or(name))
    }

    /// Parses and validates `json` as this filter's plugin configuration: the warnings of an
    /// accepted configuration, or every error, each naming its field.
    pub fn check(self, json: &[u8]) -> Result<Vec<ConfigWarning>, ConfigErrors> {
        match self {
            Self::HostAllowlist => Allowlist::from_json(json).map(|a| a.warnings().to_vec()),
            Self::SubsetTagger => TaggerConfig::from_json(json).map(|_| Vec::new()),
            Self::AccessLog => AccessLogConfig::from_json(json).map(|_| Vec::new()),
            Self::Gateway => GatewayConfig::from_json(json).map(|config| config.warnings()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn names_round_trip_in_either_spelling() {
        for filter in PluginFilter::ALL {
            assert_eq!(PluginFilter::from_name(filter.name()), Some(filter));
            let underscored = filter.name().replace('-', "_");
            assert_eq!(PluginFilter::from_name(&underscored), Some(filter));
        }
        assert_eq!(PluginFilter::from_name("network"), None);
    }

    #[test]
    fn each_filter_checks_with_its_own_parser() {
        let allowlist = PluginFilter::HostAllowlist;
        assert_eq!(allowlist.check(b"{}"), Ok(Vec::new()));
        let warnings = allowlist.check(br#"{"host_regex": ["a.b"]}"#).unwrap();
        assert_eq!(warnings[0].field, "host_regex[0]");
        let errors = allowlist
            .check(br#"{"deny": {"status": 200}}"#)
            .unwrap_err();
        assert_eq!(errors.0[0].field, "deny.status");
        let errors = PluginFilter::SubsetTagger
            .check(br#"{"header": "X Bad"}"#)
            .unwrap_err();
        assert_eq!(errors.0[0].field, "header");
        let errors = PluginFilter::AccessLog
            .check(br#"{"sample_rate": 2}"#)
            .unwrap_err();
        assert_eq!(errors.0[0].field, "sample_rate");
        let warnings = PluginFilter::Gateway
            .check(br#"{"allowlist": {"host_regex": ["a.b"]}}"#)
            .unwrap();
        assert_eq!(warnings[0].field, "allowlist.host_regex[0]");
    }
}
