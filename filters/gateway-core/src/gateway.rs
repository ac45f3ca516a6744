//! The combined module's configuration: the three features as optional sections,
//! `{"allowlist": {...}, "subset": {...}, "access_log": {...}}`, each parsed and validated by that
//! feature's own parser, its errors named under the section (`allowlist.hosts[3]`).

use serde::Deserialize;

use crate::access_log::AccessLogConfig;
use crate::allowlist::Allowlist;
use crate::config::{parse_json, ConfigError, ConfigErrors, ConfigWarning};
use crate::subset::TaggerConfig;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSections {
    allowlist: Option<serde_json::Value>,
    subset: Option<serde_json::Value>,
    access_log: Option<serde_json::Value>,
}

/// The features one combined filter runs; a missing section is a feature that is off.
#[derive(Debug)]
pub struct GatewayConfig {
    pub allowlist: Option<Allowlist>,
    pub subset: Option<TaggerConfig>,
    pub access_log: Option<AccessLogConfig>,
}

impl GatewayConfig {
    /// Parses every section, reporting the problems of all of them at once. A configuration
    /// without any section is refused: the filter would do nothing.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigErrors> {
        let raw: RawSections = parse_json(bytes)?;
        let mut errors = Vec::new();
        let allowlist = section(
            "allowlist",
            raw.allowlist,
            Allowlist::from_json,
            &mut errors,
        );
        let subset = section("subset", raw.subset, TaggerConfig::from_json, &mut errors);
        let access_log = section(
            "access_log",
            raw.access_log,
            AccessLogConfig::from_json,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        if allowlist.is_none() && subset.is_none() && access_log.is_none() {
            return Err(ConfigErrors::single(
                "",
                "at least one of the sections allowlist, subset, access_log is required",
            ));
        }
        Ok(Self {
            allowlist,
            subset,
            access_log,
        })
    }

    /// The sections' warnings, named under their section (`allowlist.host_regex[0]`).
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        self.allowlist
            .iter()
            .flat_map(|allowlist| allowlist.warnings())
            .map(|warning| {
                ConfigWarning::new(format!("allowlist.{}", warning.field), &warning.reason)
            })
            .collect()
    }
}

fn section<T>(
    name: &str,
    value: Option<serde_json::Value>,
    parse: impl FnOnce(&[u8]) -> Result<T, ConfigErrors>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = value?;
    if !value.is_object() {
        errors.push(ConfigError::new(name, "must be an object"));
        return None;
    }
    match parse(value.to_string().as_bytes()) {
        Ok(config) => Some(config),
        Err(problems) => {
            errors.extend(problems.0.into_iter().map(|problem| {
                let field = if problem.field.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}.{}", problem.field)
                };
                ConfigError::new(field, problem.reason)
            }));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn section_warnings_are_named_under_their_section() {
        let config =
            GatewayConfig::from_json(br#"{"allowlist": {"host_regex": ["a.b", "c\\.d"]}}"#)
                .unwrap();
        let fields: Vec<String> = config.warnings().into_iter().map(|w| w.field).collect();
        assert_eq!(fields, ["allowlist.host_regex[0]"]);
    }

    #[test]
    fn sections_are_optional_and_parsed_by_their_feature() {
        let config = GatewayConfig::from_json(
            br#"{"allowlist": {"hosts": ["a.example"]}, "access_log": {"sinks": {"filter_state": true}}}"#,
        )
        .unwrap();
        assert!(
            config.allowlist.is_some() && config.subset.is_none() && config.access_log.is_some()
        );
    }

    #[test]
    fn errors_name_the_section_and_field() {
        let errors = GatewayConfig::from_json(
            br#"{"allowlist": {"hosts": ["*foo.com"]}, "subset": {"rules": [{"subset": "a b"}]}, "access_log": 3}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"allowlist.hosts[0]"), "{errors}");
        assert!(
            fields.iter().any(|f| f.starts_with("subset.rules[0]")),
            "{errors}"
        );
        assert!(fields.contains(&"access_log"), "{errors}");
    }

    #[test]
    fn unknown_sections_and_empty_configurations_are_refused() {
        let errors = GatewayConfig::from_json(br#"{"alowlist": {}}"#).unwrap_err();
        assert!(errors.to_string().contains("alowlist"), "{errors}");
        let errors = GatewayConfig::from_json(b"").unwrap_err();
        assert!(errors.to_string().contains("at least one"), "{errors}");
    }
}
