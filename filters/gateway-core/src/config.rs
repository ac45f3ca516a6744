//! Configuration errors shared by every filter.
//!
//! Envoy shows a plugin's refusal only through its log, so each problem becomes one line that names
//! the offending field by its JSON path (`hosts[3]`, `rules[0].split[1].weight`) and says why.

use std::fmt::{self, Write as _};

use serde::de::DeserializeOwned;

/// One problem in a plugin configuration: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value, such as `hosts[3]`; empty for the document itself.
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// One log line per problem: a field path or reason can quote configuration text (an unknown key
/// such as `"a\nb"`), whose control characters are written escaped so they cannot break the line.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write_escaping_controls(f, &self.field)?;
            f.write_str(": ")?;
        }
        write_escaping_controls(f, &self.reason)
    }
}

fn write_escaping_controls(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

/// Something in a valid configuration that is probably a mistake (`host_regex[0]: "^api.example.com$":
/// …`): same shape as an error, but the configuration is accepted and the filter only logs it.
pub type ConfigWarning = ConfigError;

/// Every problem found in one configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn single(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self(vec![ConfigError::new(field, reason)])
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for error in &self.0 {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while a configuration is validated, so the user sees all of them at once.
#[derive(Debug, Default)]
pub struct ErrorCollector(Vec<ConfigError>);

impl ErrorCollector {
    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError::new(field, reason));
    }

    /// `Ok(value)` when nothing was pushed, otherwise every pushed problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}

/// Parses a plugin configuration document into its raw (structural) form.
///
/// Empty input is read as `{}` because Istio sends no bytes for a WasmPlugin without `pluginConfig`.
/// Structural errors (unknown field, wrong type) name the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigErrors> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ConfigErrors::single(field, without_position(error.into_inner()))
    })?;
    deserializer
        .end()
        .map_err(|error| ConfigErrors::single("", without_position(error)))?;
    Ok(value)
}

/// serde_json appends "at line L column C"; keep it only when it helps (syntax errors), since the
/// field path already locates structural errors.
fn without_position(error: serde_json::Error) -> String {
    let text = error.to_string();
    if error.is_syntax() || error.is_eof() {
        return format!("invalid JSON: {text}");
    }
    match text.rfind(" at line ") {
        Some(cut) => text.get(..cut).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// The field names serde lists in an unknown-field error (`` unknown field `x`, expected one of
/// `a`, `b` ``), for the tests that hold a configuration's JSON Schema to its parser.
#[cfg(test)]
pub(crate) fn fields_expected_in(reason: &str) -> std::collections::BTreeSet<String> {
    reason
        .split('`')
        .skip(3)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        #[allow(dead_code)]
        weight: u32,
    }

    #[test]
    fn empty_document_reads_as_empty_object() {
        let sample: Sample = parse_json(b"  ").unwrap();
        assert!(sample.items.is_empty());
    }

    #[test]
    fn structural_error_names_the_field_path() {
        let errors =
            parse_json::<Sample>(br#"{"items":[{"weight":1},{"weight":"x"}]}"#).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "items[1].weight");
        assert!(errors.0[0].reason.contains("invalid type"), "{}", errors);
        assert!(!errors.to_string().contains("at line"), "{}", errors);
    }

    #[test]
    fn unknown_field_is_an_error() {
        let errors = parse_json::<Sample>(br#"{"itemz":[]}"#).unwrap_err();
        assert!(
            errors.to_string().contains("unknown field `itemz`"),
            "{}",
            errors
        );
    }

    #[test]
    fn syntax_error_keeps_its_position() {
        let errors = parse_json::<Sample>(b"{\"items\": [").unwrap_err();
        let text = errors.to_string();
        assert!(
            text.contains("invalid JSON") && text.contains("line 1 column 11"),
            "{text}"
        );
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        assert!(parse_json::<Sample>(b"{} x").is_err());
    }

    /// Found by the `access_log_config` and `allowlist_config` fuzz targets: an unknown key with a
    /// line break in it made one problem print as two log lines.
    #[test]
    fn a_problem_is_one_line_whatever_the_configuration_quotes() {
        let errors = parse_json::<Sample>(b"{\"ite\\nms\\u0000\\r\": []}").unwrap_err();
        let text = errors.to_string();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains(r"unknown field `ite\nms\u{0}\r`"), "{text}");
        let error = ConfigError::new("rules[0].match.headers.a\u{7}b", "bad\tvalue");
        assert_eq!(
            error.to_string(),
            r"rules[0].match.headers.a\u{7}b: bad\tvalue"
        );
    }

    #[test]
    fn collector_reports_every_problem() {
        let mut collector = ErrorCollector::default();
        collector.push("a", "first");
        collector.push("b[2]", "second");
        let errors = collector.finish(()).unwrap_err();
        assert_eq!(errors.to_string(), "a: first\nb[2]: second");
    }
}
