//! The configurations the manifests ship, read from them, so that the bench's `suite` and `gateway`
//! rows measure what an egress gateway runs rather than a hand-written imitation that drifts: the
//! `pluginConfig` of the HTTP host-allowlist and subset-tagger plugins of
//! `wasm-plugins-manifests/egress-gateway.yaml`, and the JSON access-log format of the
//! `gateway-wasm-json-egress` provider in `wasm-plugins-manifests/mesh-config.yaml`.

use serde_json::{Map, Value};

use e2e::paths;

use super::variants::ALLOWED_HOST;
use crate::render::manifests::{self, ExtensionProvider, Manifests};

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

/// Read with the renderer's manifest reader, the one `cargo xtask render` builds the gateways from.
pub fn read() -> Result<Shipped, String> {
    let dir = paths::workspace_root().join("wasm-plugins-manifests");
    let mut shipped = Manifests::default();
    manifests::read_file(&dir.join(PLUGINS), &mut shipped)?;
    manifests::read_file(&dir.join(MESH_CONFIG), &mut shipped)?;
    let mut allowlist = plugin_config(&shipped, "host-allowlist")?;
    let mut tagger = plugin_config(&shipped, "subset-tagger")?;
    with_bench_host(&mut allowlist);
    with_bench_host(&mut tagger);
    let tag = tagger
        .pointer("/rules/0/subset")
        .and_then(Value::as_str)
        .ok_or(format!(
            "{PLUGINS}: subset-tagger's rules[0].subset is not a string"
        ))?
        .to_string();
    let log_labels = match shipped.extension_providers.get(LOG_PROVIDER) {
        Some(ExtensionProvider::EnvoyFileAccessLog(file)) => file
            .log_format
            .as_ref()
            .and_then(|format| format.labels.clone()),
        _ => None,
    }
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

/// The `pluginConfig` of the HTTP WasmPlugin (no `type: NETWORK`) named `plugin_name`.
fn plugin_config(shipped: &Manifests, plugin_name: &str) -> Result<Value, String> {
    shipped
        .plugins
        .iter()
        .find(|plugin| {
            plugin.spec.plugin_name == plugin_name
                && plugin.spec.plugin_type.as_deref() != Some("NETWORK")
        })
        .and_then(|plugin| plugin.spec.plugin_config.clone())
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
