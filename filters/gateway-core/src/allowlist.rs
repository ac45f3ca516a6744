//! host-allowlist: configuration.

use serde::Deserialize;

use crate::config::{parse_json, ConfigErrors, ErrorCollector};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denied requests are answered by the filter and never reach the upstream.
    #[default]
    Enforce,
    /// Everything passes; denials are only recorded as "would deny".
    Audit,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    #[serde(default = "Denial::default_status")]
    pub status: u32,
    #[serde(default = "Denial::default_body")]
    pub body: String,
}

impl Denial {
    fn default_status() -> u32 {
        403
    }
    fn default_body() -> String {
        "host not allowed".to_string()
    }
}

impl Default for Denial {
    fn default() -> Self {
        Self {
            status: Self::default_status(),
            body: Self::default_body(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSniMismatch {
    #[default]
    Reject,
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub host_regex: Vec<String>,
    #[serde(default)]
    pub deny: Denial,
    #[serde(default)]
    pub on_sni_mismatch: OnSniMismatch,
}

impl AllowlistConfig {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let config: Self = parse_json(bytes)?;
        let mut errors = ErrorCollector::default();
        if !(200..=599).contains(&config.deny.status) {
            errors.push(
                "deny.status",
                format!("{} is not an HTTP status from 200 to 599", config.deny.status),
            );
        }
        errors.finish(config)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn defaults_enforce_with_403() {
        let config = AllowlistConfig::from_json(b"{}").unwrap();
        assert_eq!(config.mode, Mode::Enforce);
        assert_eq!(config.deny.status, 403);
    }

    #[test]
    fn status_out_of_range_names_the_field() {
        let errors = AllowlistConfig::from_json(br#"{"deny":{"status":99}}"#).unwrap_err();
        assert_eq!(errors.to_string(), "deny.status: 99 is not an HTTP status from 200 to 599");
    }

    #[test]
    fn unknown_mode_names_the_field() {
        let errors = AllowlistConfig::from_json(br#"{"mode":"log"}"#).unwrap_err();
        assert_eq!(errors.0[0].field, "mode");
    }
}
