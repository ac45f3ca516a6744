//! access-log: configuration.

use serde::Deserialize;

use crate::config::{parse_json, ConfigErrors, ErrorCollector};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Label written into every record, such as `ingress` or `egress`.
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default = "AccessLogConfig::default_sample_rate")]
    pub sample_rate: f64,
}

impl AccessLogConfig {
    fn default_sample_rate() -> f64 {
        1.0
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let config: Self = parse_json(bytes)?;
        let mut errors = ErrorCollector::default();
        if !(0.0..=1.0).contains(&config.sample_rate) {
            errors.push(
                "sample_rate",
                format!("{} is not between 0 and 1", config.sample_rate),
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
    fn sample_rate_out_of_range_names_the_field() {
        let errors = AccessLogConfig::from_json(br#"{"sample_rate": 1.5}"#).unwrap_err();
        assert_eq!(errors.to_string(), "sample_rate: 1.5 is not between 0 and 1");
    }

    #[test]
    fn gateway_label_is_read() {
        let config = AccessLogConfig::from_json(br#"{"gateway":"egress"}"#).unwrap();
        assert_eq!(config.gateway.as_deref(), Some("egress"));
    }
}
