//! Renders Envoy configuration templates: `{{NAME}}` placeholders replaced by values.
//!
//! A placeholder alone on its line is replaced by a multi-line value indented to the placeholder's
//! column, so YAML fragments (a list of filters, a cluster) drop in at the right depth. A
//! placeholder left without a value is an error, never silently rendered.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, name: &str, value: impl ToString) -> Self {
        self.0.insert(name.to_string(), value.to_string());
        self
    }

    pub fn insert(&mut self, name: &str, value: impl ToString) {
        self.0.insert(name.to_string(), value.to_string());
    }
}

pub fn render_file(path: &Path, vars: &Vars) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read template {}: {error}", path.display()))?;
    render(&text, vars).map_err(|error| format!("{}: {error}", path.display()))
}

pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for (number, line) in template.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(name) = whole_line_placeholder(trimmed) {
            let value = lookup(vars, name, number)?;
            for value_line in value.lines() {
                out.push_str(&line[..indent]);
                out.push_str(value_line);
                out.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("line {}: unclosed placeholder", number + 1))?;
            out.push_str(lookup(vars, after[..end].trim(), number)?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    Ok(out)
}

fn whole_line_placeholder(trimmed: &str) -> Option<&str> {
    let inner = trimmed.trim_end().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

fn lookup<'a>(vars: &'a Vars, name: &str, number: usize) -> Result<&'a str, String> {
    vars.0.get(name).map(String::as_str).ok_or_else(|| {
        format!(
            "line {}: no value for placeholder {{{{{name}}}}}",
            number + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_block_placeholders() {
        let vars = Vars::new()
            .set("PORT", 8080)
            .set("FILTERS", "- a: 1\n- b: 2");
        let out = render(
            "port: {{PORT}}\nlist:\n  {{FILTERS}}\nend: {{ PORT }}x",
            &vars,
        )
        .unwrap();
        assert_eq!(out, "port: 8080\nlist:\n  - a: 1\n  - b: 2\nend: 8080x\n");
    }

    #[test]
    fn missing_value_is_an_error() {
        let error = render("a: {{NOPE}}", &Vars::new()).unwrap_err();
        assert!(error.contains("NOPE"), "{error}");
    }

    #[test]
    fn empty_block_value_removes_the_line() {
        let out = render("a:\n  {{EMPTY}}\nb: 1", &Vars::new().set("EMPTY", "")).unwrap();
        assert_eq!(out, "a:\nb: 1\n");
    }
}
