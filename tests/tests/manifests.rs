//! The WasmPlugin manifests in `wasm-plugins-manifests/` carry configurations the filters accept,
//! and the settings the product promises (fail closed for the allowlist, network mode by name).

use std::path::PathBuf;

use gateway_core::access_log::AccessLogConfig;
use gateway_core::allowlist::Allowlist;
use gateway_core::subset::TaggerConfig;
use serde::Deserialize;

fn manifests_dir() -> PathBuf {
    e2e::paths::workspace_root().join("wasm-plugins-manifests")
}

struct Plugin {
    file: String,
    name: String,
    spec: serde_json::Value,
}

impl Plugin {
    /// The filter the plugin's image holds: the last path segment of `url`, without the tag.
    fn filter(&self) -> String {
        let url = self.spec["url"].as_str().unwrap_or_default();
        let image = url.rsplit('/').next().unwrap_or_default();
        image.split(':').next().unwrap_or_default().to_string()
    }

    fn field(&self, name: &str) -> &str {
        self.spec[name].as_str().unwrap_or_default()
    }
}

fn wasm_plugins() -> Vec<Plugin> {
    let mut plugins = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if value["kind"] == "WasmPlugin" {
                plugins.push(Plugin {
                    file: path.file_name().unwrap().to_string_lossy().into_owned(),
                    name: value["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    spec: value["spec"].clone(),
                });
            }
        }
    }
    plugins
}

#[test]
fn every_plugin_config_is_accepted_by_its_filter() {
    let plugins = wasm_plugins();
    assert!(
        plugins.len() >= 6,
        "expected the ingress and egress plugins, found {}",
        plugins.len()
    );
    for plugin in &plugins {
        let config = serde_json::to_vec(&plugin.spec["pluginConfig"]).unwrap();
        let result = match plugin.filter().as_str() {
            "host-allowlist" => Allowlist::from_json(&config).map(drop),
            "subset-tagger" => TaggerConfig::from_json(&config).map(drop),
            "access-log" => AccessLogConfig::from_json(&config).map(drop),
            other => panic!(
                "{}: {}: unknown filter image {other:?}",
                plugin.file, plugin.name
            ),
        };
        if let Err(errors) = result {
            panic!(
                "{}: {}: pluginConfig refused:\n{errors}",
                plugin.file, plugin.name
            );
        }
    }
}

#[test]
fn plugins_keep_the_promised_settings() {
    for plugin in wasm_plugins() {
        let at = format!("{}: {}", plugin.file, plugin.name);
        let network = plugin.field("type") == "NETWORK";
        // The stream Envoy creates chooses a dual-mode module's mode, not the root id; the shipped
        // manifests still name network plugins `network`, so that the name says what they are.
        assert_eq!(
            plugin.field("pluginName") == "network",
            network,
            "{at}: pluginName vs type"
        );
        let expected_fail_strategy = match plugin.filter().as_str() {
            "host-allowlist" => "FAIL_CLOSE",
            _ => "FAIL_RELOAD",
        };
        assert_eq!(plugin.field("failStrategy"), expected_fail_strategy, "{at}");
        assert!(plugin.field("url").starts_with("oci://"), "{at}: url");
        let phase = plugin.field("phase");
        match (plugin.filter().as_str(), network) {
            ("host-allowlist", _) => assert_eq!(phase, "AUTHN", "{at}"),
            ("subset-tagger", _) => assert_eq!(phase, "AUTHZ", "{at}"),
            ("access-log", false) => assert_eq!(phase, "STATS", "{at}"),
            // Logs a connection only if it saw its start: before the allowlist, which closes
            // denied connections at their start (same phase, higher priority runs first).
            ("access-log", true) => {
                assert_eq!(phase, "AUTHN", "{at}");
                assert!(
                    plugin.spec["priority"].as_i64() > Some(1000),
                    "{at}: priority"
                );
            }
            (other, _) => panic!("{at}: unknown filter {other}"),
        }
    }
}
