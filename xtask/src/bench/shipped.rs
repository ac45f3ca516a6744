//! The configurations the manifests ship, read from them, so that the bench's `suite` and `gateway`
//! rows measure what an egress gateway runs rather than a hand-written imitation that drifts: the
//! `pluginConfig` of the HTTP host-allowlist and subset-tagger plugins of
//! `wasm-plugins-manifests/egress-gateway.yaml`, and the JSON access-log format of the
//! `gateway-wasm-json-egress` provider in `wasm-plugins-manifests/mesh-config.yaml`.

use serde::Deserialize as _;
use serde_json::{Map, Value};

use e2e::paths;

use super::variants::ALLOWED_HOST;

const PLUGINS: &str = "egress-gateway.yaml";
const MESH_CONFIG: &str = "mesh-config.yaml";
/// The provider whose format the egress gateway's access log uses (telemetry.yaml selects it).
const LOG_PROVIDER: &str = "gateway-wasm-json-egress";

/// What the egress gateway ships, with the bench's host in place of the listed hosts.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// host-allowlist's `pluginConfig` (the HTTP plugin, not the `network` one).
    pub allowlist: Value,
    /// subset-tagger's `pluginConfig`.
    pub tagger: Value,
    /// The subset the tagger's first rule sets: what the upstream must see.
    pub tag: String,
    /// The access log's `logFormat.labels`: Envoy's `json_format`, nested objects included.
    pub log_labels: Map<String, Value>,
}

pub fn read() -> Result<Shipped, String> {
    let dir = paths::workspace_root().join("wasm-plugins-manifests");
    let plugins = documents(&dir.join(PLUGINS))?;
    let mut allowlist = plugin_config(&plugins, "host-allowlist")?;
    let mut tagger = plugin_config(&plugins, "subset-tagger")?;
    with_bench_host(&mut allowlist);
    with_bench_host(&mut tagger);
    let tag = tagger
        .pointer("/rules/0/subset")
        .and_then(Value::as_str)
        .ok_or(format!(
            "{PLUGINS}: subset-tagger's rules[0].subset is not a string"
        ))?
        .to_string();
    let log_labels = documents(&dir.join(MESH_CONFIG))?
        .iter()
        .filter_map(|document| document.pointer("/spec/meshConfig/extensionProviders"))
        .filter_map(Value::as_array)
        .flatten()
        .find(|provider| provider.get("name").and_then(Value::as_str) == Some(LOG_PROVIDER))
        .and_then(|provider| provider.pointer("/envoyFileAccessLog/logFormat/labels"))
        .and_then(Value::as_object)
        .cloned()
        .ok_or(format!(
            "{MESH_CONFIG}: no extension provider {LOG_PROVIDER} with envoyFileAccessLog.logFormat.labels"
        ))?;
    Ok(Shipped {
        allowlist,
        tagger,
        tag,
        log_labels,
    })
}

fn documents(path: &std::path::Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document).map_err(|error| format!("{}: {error}", path.display()))
        })
        .collect()
}

/// The `pluginConfig` of the HTTP WasmPlugin (no `type: NETWORK`) named `plugin_name`.
fn plugin_config(documents: &[Value], plugin_name: &str) -> Result<Value, String> {
    documents
        .iter()
        .filter(|document| document.get("kind").and_then(Value::as_str) == Some("WasmPlugin"))
        .filter_map(|document| document.get("spec"))
        .find(|spec| {
            spec.get("pluginName").and_then(Value::as_str) == Some(plugin_name)
                && spec.get("type").and_then(Value::as_str) != Some("NETWORK")
        })
        .and_then(|spec| spec.get("pluginConfig"))
        .cloned()
        .ok_or(format!(
            "{PLUGINS}: no HTTP WasmPlugin with pluginName {plugin_name} and a pluginConfig"
        ))
}

/// Every `hosts` list (the allowlist's, each tagger rule's match) becomes the bench's one host.
fn with_bench_host(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "hosts" && child.is_array() {
                    *child = Value::from(vec![ALLOWED_HOST]);
                } else {
                    with_bench_host(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(with_bench_host),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_reads_with_the_bench_host() {
        let shipped = read().unwrap();
        assert_eq!(
            shipped.allowlist["hosts"],
            serde_json::json!([ALLOWED_HOST])
        );
        assert_eq!(
            shipped.tagger["rules"][0]["match"]["hosts"],
            serde_json::json!([ALLOWED_HOST])
        );
        assert!(!shipped.tag.is_empty());
        assert!(shipped.log_labels.contains_key("allowlist"));
    }
}
