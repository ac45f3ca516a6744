//! `cargo xtask check-config [--filter NAME] FILE`: validates plugin configurations with the filters'
//! own parsers (`gateway_core::plugin_config`), so an operator finds a mistake before Envoy refuses
//! the plugin (or, for a warning, before it loads with a slip in it).
//!
//! FILE is a JSON plugin configuration (`--filter` says for which filter), or YAML holding one or
//! more `WasmPlugin` resources: each one's `pluginConfig` is checked, for the filter its `url` names
//! (`oci://…/host-allowlist:0.1.0`, `file:///…/host_allowlist.wasm`) unless `--filter` is given.
//! Other resources in the YAML are skipped. Exits non-zero when any configuration has an error.

use std::path::Path;

use gateway_core::config::{ConfigErrors, ConfigWarning};
use gateway_core::plugin_config::PluginFilter;
use serde::Deserialize;

pub const USAGE: &str = "usage: cargo xtask check-config [--filter host-allowlist|subset-tagger|access-log|gateway] FILE";

pub fn run(args: &[String]) -> Result<(), String> {
    let (filter, path) = parse_args(args)?;
    let text = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    let checks = check_file(Path::new(&path), &text, filter)?;
    print!("{}", render(&checks));
    let failed = checks.iter().filter(|check| check.result.is_err()).count();
    if failed > 0 {
        return Err(format!(
            "{failed} of {} configuration(s) in {path} would be refused",
            checks.len()
        ));
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Option<PluginFilter>, String), String> {
    let mut filter = None;
    let mut path = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--filter" => {
                let name = args
                    .next()
                    .ok_or(format!("--filter needs a value\n{USAGE}"))?;
                filter = Some(
                    PluginFilter::from_name(name)
                        .ok_or(format!("--filter: unknown filter {name:?}\n{USAGE}"))?,
                );
            }
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other:?}\n{USAGE}"))
            }
            other if path.is_none() => path = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let path = path.ok_or(format!("FILE is missing\n{USAGE}"))?;
    Ok((filter, path))
}

/// One checked configuration: what it is, and the filter's verdict on it.
#[derive(Debug)]
pub struct Check {
    /// `WasmPlugin istio-system/egress-host-allowlist`, or the JSON file's path.
    pub source: String,
    pub filter: PluginFilter,
    pub result: Result<Vec<ConfigWarning>, ConfigErrors>,
}

/// Checks the configurations in `text`, read as JSON when `path` ends in `.json`, else as YAML.
pub fn check_file(
    path: &Path,
    text: &str,
    filter: Option<PluginFilter>,
) -> Result<Vec<Check>, String> {
    if path
        .extension()
        .is_some_and(|extension| extension == "json")
    {
        let filter = filter.ok_or(format!(
            "{}: a JSON configuration needs --filter to say which filter it is for\n{USAGE}",
            path.display()
        ))?;
        return Ok(vec![Check {
            source: path.display().to_string(),
            filter,
            result: filter.check(text.as_bytes()),
        }]);
    }
    check_wasm_plugins(text, filter).map_err(|error| format!("{}: {error}", path.display()))
}

/// Checks the `pluginConfig` of every `WasmPlugin` in a (multi-document) YAML text.
pub fn check_wasm_plugins(text: &str, filter: Option<PluginFilter>) -> Result<Vec<Check>, String> {
    let mut checks = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(document)
            .map_err(|error| format!("YAML document {}: {error}", index + 1))?;
        if value["kind"] != "WasmPlugin" {
            continue;
        }
        let metadata = &value["metadata"];
        let name = metadata["name"].as_str().unwrap_or("(unnamed)");
        let source = match metadata["namespace"].as_str() {
            Some(namespace) => format!("WasmPlugin {namespace}/{name}"),
            None => format!("WasmPlugin {name}"),
        };
        let spec = &value["spec"];
        let filter = match filter {
            Some(filter) => filter,
            None => PluginFilter::of_url(spec["url"].as_str().unwrap_or("")).ok_or(format!(
                "{source}: spec.url {:?} names none of the filters {}; say which with --filter",
                spec["url"].as_str().unwrap_or(""),
                filter_names()
            ))?,
        };
        // Istio sends no bytes for a WasmPlugin without pluginConfig; the filters read that as `{}`.
        let json = match &spec["pluginConfig"] {
            serde_json::Value::Null => String::new(),
            config => config.to_string(),
        };
        checks.push(Check {
            source,
            filter,
            result: filter.check(json.as_bytes()),
        });
    }
    if checks.is_empty() {
        return Err("no WasmPlugin resource found".to_string());
    }
    Ok(checks)
}

fn filter_names() -> String {
    let names: Vec<&str> = PluginFilter::ALL
        .iter()
        .map(|filter| filter.name())
        .collect();
    names.join(", ")
}

/// Per configuration: its source, filter and verdict, then its `errors` and `warnings`, one per
/// line, each naming its field.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let (errors, warnings): (Vec<String>, Vec<String>) = match &check.result {
            Ok(warnings) => (
                Vec::new(),
                warnings.iter().map(ToString::to_string).collect(),
            ),
            Err(errors) => (errors.iter().map(ToString::to_string).collect(), Vec::new()),
        };
        let verdict = if errors.is_empty() {
            "accepted"
        } else {
            "refused"
        };
        out.push_str(&format!(
            "{} ({}): {verdict}\n",
            check.source,
            check.filter.name()
        ));
        for (heading, lines) in [("errors", errors), ("warnings", warnings)] {
            if lines.is_empty() {
                continue;
            }
            out.push_str(&format!("  {heading}:\n"));
            for line in lines {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGINS: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: egress-host-allowlist, namespace: istio-system}
spec:
  url: oci://registry.example.com/gateway-wasm/host-allowlist:0.1.0
  pluginConfig:
    hosts: ["www.google.com", "*foo.com"]
    host_regex: ["^api.example.com$"]
    deny: {status: 200}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: egress-regex, namespace: istio-system}
spec:
  url: file:///opt/filters/host_allowlist.wasm
  pluginConfig:
    host_regex: ["^api.example.com$", "^ok\\.example\\.com$"]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: egress-subset-tagger, namespace: istio-system}
spec:
  url: oci://registry.example.com/gateway-wasm/subset-tagger@sha256:0123
"#;

    #[test]
    fn each_wasm_plugin_is_reported_with_its_errors_and_warnings() {
        let checks = check_wasm_plugins(PLUGINS, None).unwrap();
        assert_eq!(
            render(&checks),
            r#"WasmPlugin istio-system/egress-host-allowlist (host-allowlist): refused
  errors:
    deny.status: 200 is not an HTTP error status from 400 to 599
    hosts[1]: "*foo.com": a wildcard must be a whole leading "*." label
WasmPlugin istio-system/egress-regex (host-allowlist): accepted
  warnings:
    host_regex[0]: "^api.example.com$": the unescaped "." in "api.example" matches any character, so "apixexample" is allowed too; write "\." for a literal dot
WasmPlugin istio-system/egress-subset-tagger (subset-tagger): accepted
"#
        );
    }

    #[test]
    fn a_json_configuration_needs_the_filter_named() {
        let path = Path::new("allowlist.json");
        let error = check_file(path, "{}", None).unwrap_err();
        assert!(
            error.starts_with("allowlist.json: a JSON configuration needs --filter"),
            "{error}"
        );
        let checks = check_file(
            path,
            r#"{"mode": "log"}"#,
            Some(PluginFilter::HostAllowlist),
        )
        .unwrap();
        let rendered = render(&checks);
        assert!(
            rendered.starts_with("allowlist.json (host-allowlist): refused\n  errors:\n    mode: unknown variant `log`"),
            "{rendered}"
        );
    }

    #[test]
    fn a_wasm_plugin_of_an_unknown_module_asks_for_the_filter() {
        let yaml = "kind: WasmPlugin\nmetadata: {name: other}\nspec: {url: oci://r/x/other:1}\n";
        assert_eq!(
            check_wasm_plugins(yaml, None).unwrap_err(),
            "WasmPlugin other: spec.url \"oci://r/x/other:1\" names none of the filters host-allowlist, subset-tagger, access-log, gateway; say which with --filter"
        );
        let checks = check_wasm_plugins(yaml, Some(PluginFilter::AccessLog)).unwrap();
        assert_eq!(render(&checks), "WasmPlugin other (access-log): accepted\n");
        assert_eq!(
            check_wasm_plugins("kind: Gateway\n", None).unwrap_err(),
            "no WasmPlugin resource found"
        );
    }

    #[test]
    fn the_shipped_wasm_plugins_are_accepted_without_warnings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-plugins-manifests");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The variant folders (local-only/, mtls/, kustomize/) are checked by tests/tests/manifests.rs.
            if path.extension().is_none_or(|extension| extension != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if !text.contains("kind: WasmPlugin") {
                continue;
            }
            for check in check_file(&path, &text, None).unwrap() {
                assert!(
                    matches!(&check.result, Ok(warnings) if warnings.is_empty()),
                    "{}",
                    render(&[check])
                );
                checked += 1;
            }
        }
        // The allowlists (HTTP and TLS on the egress gateway, HTTP on the ingress) and the tagger;
        // the opt-in access-log plugins are a component's.
        assert!(
            checked >= 4,
            "only {checked} WasmPlugins found in {}",
            dir.display()
        );
    }
}
