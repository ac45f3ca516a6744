//! subset-tagger: configuration.

use serde::Deserialize;

use crate::config::{parse_json, ConfigErrors, ErrorCollector};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaggerConfig {
    #[serde(default = "TaggerConfig::default_header")]
    pub header: String,
    #[serde(default)]
    pub rules: Vec<serde_json::Value>,
}

impl TaggerConfig {
    fn default_header() -> String {
        "x-route-subset".to_string()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let config: Self = parse_json(bytes)?;
        let mut errors = ErrorCollector::default();
        if !is_header_name(&config.header) {
            errors.push(
                "header",
                format!("{:?} is not a lowercase HTTP header name", config.header),
            );
        }
        errors.finish(config)
    }
}

/// A lowercase RFC 9110 token that is not a pseudo-header: what Envoy accepts as a header name.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn default_header() {
        assert_eq!(TaggerConfig::from_json(b"").unwrap().header, "x-route-subset");
    }

    #[test]
    fn bad_header_names_the_field() {
        for bad in ["", "X-Upper", ":authority", "a b"] {
            let json = serde_json::json!({ "header": bad }).to_string();
            let errors = TaggerConfig::from_json(json.as_bytes()).unwrap_err();
            assert_eq!(errors.0[0].field, "header", "{bad:?}");
        }
    }
}
