//! The manifests in `wasm-plugins-manifests/` (every file, components included) and their Kustomize
//! renderings (the base, the seed overlay in `deploy/seed/`, the component fixtures in
//! `tests/kustomize/`) carry configurations the filters accept, and the settings the product
//! promises (fail closed for the allowlist, network plugins named `network`).

use std::path::{Path, PathBuf};

use gateway_core::plugin_config::PluginFilter;
use serde::Deserialize;
use serde_json::Value;

fn manifests_dir() -> PathBuf {
    e2e::paths::workspace_root().join("wasm-plugins-manifests")
}

/// A Wasm plugin as a manifest states it. A TrafficExtension's `spec.wasm` fields are lifted next
/// to its placement fields, so both kinds read alike.
struct Plugin {
    /// The file or rendering it comes from, and its kind and name, for messages.
    at: String,
    kind: String,
    name: String,
    spec: Value,
}

impl Plugin {
    /// The filter the plugin's image holds, as `cargo xtask check-config` reads it from `url`.
    fn filter(&self) -> PluginFilter {
        let url = self.spec["url"].as_str().unwrap_or_default();
        PluginFilter::of_url(url)
            .unwrap_or_else(|| panic!("{}: unknown filter image {url:?}", self.at))
    }

    fn field(&self, name: &str) -> &str {
        self.spec[name].as_str().unwrap_or_default()
    }
}

/// Every document of a multi-document YAML text; `source` names it in a parse error.
fn documents(source: &str, text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{source}: {e}")))
        .filter(|value| !value.is_null())
        .collect()
}

fn plugins_in(source: &str, documents: &[Value]) -> Vec<Plugin> {
    documents
        .iter()
        .filter_map(|value| {
            let spec = match value["kind"].as_str()? {
                "WasmPlugin" => value["spec"].clone(),
                "TrafficExtension" => {
                    let mut spec = value["spec"].as_object().cloned().unwrap_or_default();
                    let wasm = spec.remove("wasm");
                    spec.extend(wasm.and_then(|wasm| wasm.as_object().cloned())?);
                    Value::Object(spec)
                }
                _ => return None,
            };
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Some(Plugin {
                at: format!("{source}: {kind}/{name}"),
                kind,
                name,
                spec,
            })
        })
        .collect()
}

/// The YAML files under `dir`, at any depth, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The documents of each manifest file, named by its path under `wasm-plugins-manifests/`.
fn manifest_files() -> Vec<(String, Vec<Value>)> {
    let dir = manifests_dir();
    yaml_files(&dir)
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(&dir).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let documents = documents(&name, &text);
            (name, documents)
        })
        .collect()
}

/// `kubectl kustomize DIR`, the rendering CI validates against Istio's CRD schemas.
fn kustomize(dir: &Path) -> Vec<Value> {
    let text = e2e::kustomize::build(dir).unwrap_or_else(|error| panic!("{error}"));
    documents(&dir.display().to_string(), &text)
}

/// Every kustomization there is to render: the base, the seed overlay and the component fixtures,
/// each named by its directory.
fn renderings() -> Vec<(String, Vec<Value>)> {
    let root = e2e::paths::workspace_root();
    let mut dirs = vec![manifests_dir(), root.join("deploy/seed")];
    let mut fixtures: Vec<_> = std::fs::read_dir(root.join("tests/kustomize"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    fixtures.sort();
    dirs.extend(fixtures);
    dirs.into_iter()
        .map(|dir| {
            let name = dir.strip_prefix(&root).unwrap().display().to_string();
            (name, kustomize(&dir))
        })
        .collect()
}

/// Every plugin of the manifest files and of the renderings.
fn every_plugin() -> Vec<Plugin> {
    manifest_files()
        .into_iter()
        .chain(renderings())
        .flat_map(|(source, documents)| plugins_in(&source, &documents))
        .collect()
}

#[test]
fn every_plugin_config_is_accepted_by_its_filter() {
    let plugins = every_plugin();
    assert!(
        plugins.len() >= 6,
        "expected the ingress and egress plugins, found {}",
        plugins.len()
    );
    for plugin in &plugins {
        let config = serde_json::to_vec(&plugin.spec["pluginConfig"]).unwrap();
        if let Err(errors) = plugin.filter().check(&config) {
            panic!("{}: pluginConfig refused:\n{errors}", plugin.at);
        }
    }
}

#[test]
fn plugins_keep_the_promised_settings() {
    for plugin in every_plugin() {
        let at = &plugin.at;
        let network = plugin.field("type") == "NETWORK";
        // The stream Envoy creates chooses a dual-mode module's mode, not the root id; the shipped
        // manifests still name network plugins `network`, so that the name says what they are.
        assert_eq!(
            plugin.field("pluginName") == "network",
            network,
            "{at}: pluginName vs type"
        );
        // Before Istio 1.27 there is no FAIL_RELOAD: the fixtures with the older-Istio component
        // fail open instead.
        let older_istio = [
            "fail-open-before-istio-1.27",
            "combined-gateway-with-every-amendment",
        ]
        .iter()
        .any(|fixture| at.starts_with(&format!("tests/kustomize/{fixture}:")));
        let reloading = if older_istio {
            "FAIL_OPEN"
        } else {
            "FAIL_RELOAD"
        };
        let expected_fail_strategy = match plugin.filter() {
            PluginFilter::HostAllowlist | PluginFilter::Gateway => "FAIL_CLOSE",
            _ => reloading,
        };
        assert_eq!(plugin.field("failStrategy"), expected_fail_strategy, "{at}");
        assert!(plugin.field("url").starts_with("oci://"), "{at}: url");
        // Exactly one way to choose the gateway.
        assert_ne!(
            plugin.spec.get("selector").is_some(),
            plugin.spec.get("targetRefs").is_some(),
            "{at}: selector or targetRefs"
        );
        let phase = plugin.field("phase");
        match (plugin.filter(), network) {
            (PluginFilter::HostAllowlist | PluginFilter::Gateway, _) => {
                assert_eq!(phase, "AUTHN", "{at}")
            }
            (PluginFilter::SubsetTagger, _) => assert_eq!(phase, "AUTHZ", "{at}"),
            (PluginFilter::AccessLog, false) => assert_eq!(phase, "STATS", "{at}"),
            // Logs a connection only if it saw its start: before the allowlist, which closes
            // denied connections at their start (same phase, higher priority runs first).
            (PluginFilter::AccessLog, true) => {
                assert_eq!(phase, "AUTHN", "{at}");
                assert!(
                    plugin.spec["priority"].as_i64() > Some(1000),
                    "{at}: priority"
                );
            }
        }
    }
}

#[test]
fn each_traffic_extension_is_its_wasm_plugin_in_the_newer_form() {
    let files = manifest_files();
    let plugins: Vec<Plugin> = files
        .iter()
        .flat_map(|(source, documents)| plugins_in(source, documents))
        .collect();
    let extensions: Vec<&Plugin> = plugins
        .iter()
        .filter(|plugin| plugin.kind == "TrafficExtension")
        .collect();
    assert!(!extensions.is_empty(), "no TrafficExtension found");
    for extension in extensions {
        let wasm_plugin = plugins
            .iter()
            .find(|plugin| plugin.kind == "WasmPlugin" && plugin.name == extension.name)
            .unwrap_or_else(|| panic!("{}: no WasmPlugin of that name", extension.at));
        assert_eq!(
            extension.spec, wasm_plugin.spec,
            "{} differs from {}",
            extension.at, wasm_plugin.at
        );
    }
}

/// The resources of the manifest files that the base lists, as (kind, name) and document.
fn listed_resources() -> Vec<((String, String), Value)> {
    let base = std::fs::read_to_string(manifests_dir().join("kustomization.yaml")).unwrap();
    let base = &documents("kustomization.yaml", &base)[0];
    let mut resources: Vec<_> = base["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|file| {
            let file = file.as_str().unwrap();
            let text = std::fs::read_to_string(manifests_dir().join(file)).unwrap();
            documents(file, &text)
        })
        // The settings are Kustomize's own (local-config): never in a rendering.
        .filter(|document| document["kind"] != "Settings")
        .map(|document| (key(&document), document))
        .collect();
    resources.sort_by(|a, b| a.0.cmp(&b.0));
    resources
}

fn key(document: &Value) -> (String, String) {
    let field = |value: &Value| value.as_str().unwrap_or_default().to_string();
    (
        field(&document["kind"]),
        format!(
            "{}/{}",
            field(&document["metadata"]["namespace"]),
            field(&document["metadata"]["name"])
        ),
    )
}

/// settings.yaml and deploy/seed's settings say what the manifest files say: rendering the base,
/// or the seed overlay, changes nothing, so the files, the base and the seed are one deployment.
#[test]
fn the_base_and_the_seed_overlay_render_the_manifests_as_written() {
    let expected = listed_resources();
    let root = e2e::paths::workspace_root();
    for dir in [manifests_dir(), root.join("deploy/seed")] {
        let mut rendered: Vec<_> = kustomize(&dir)
            .into_iter()
            .map(|document| (key(&document), document))
            .collect();
        rendered.sort_by(|a, b| a.0.cmp(&b.0));
        let keys = |resources: &[((String, String), Value)]| {
            resources
                .iter()
                .map(|(key, _)| key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&rendered), keys(&expected), "{}", dir.display());
        for ((key, rendered), (_, written)) in rendered.iter().zip(&expected) {
            assert_eq!(rendered, written, "{}: {key:?}", dir.display());
        }
    }
}

/// The settings reach every resource that repeats them: an overlay with other values leaves none
/// of the seed's values behind in the resources the settings cover.
#[test]
fn an_overlay_with_other_settings_changes_every_place_they_appear() {
    let root = e2e::paths::workspace_root();
    let overlay = tempfile::Builder::new()
        .prefix("kustomize-overlay")
        .tempdir_in(e2e::paths::target_dir())
        .unwrap();
    // Kustomize takes only relative paths to other kustomizations.
    let up = "../".repeat(
        overlay
            .path()
            .strip_prefix(&root)
            .unwrap()
            .components()
            .count(),
    );
    std::fs::create_dir(overlay.path().join("settings")).unwrap();
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "resources: [{up}wasm-plugins-manifests]\n\
             components: [settings, {up}wasm-plugins-manifests/kustomize/combined-gateway, \
             {up}wasm-plugins-manifests/kustomize/settings]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        overlay.path().join("settings/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1alpha1\n\
         kind: Component\n\
         patches:\n\
         - patch: |\n    \
             apiVersion: gateway-wasm.dev/v1\n    \
             kind: Settings\n    \
             metadata: {name: gateway-wasm}\n    \
             spec:\n      \
               gatewayNamespace: gateways\n      \
               egressGatewayLabel: egress-gw\n      \
               ingressGatewayLabel: ingress-gw\n      \
               registry: ghcr.io\n      \
               repository: acme/wasm\n      \
               egressHosts: [api.example.org, cdn.example.org]\n      \
               ingressHosts: [app.example.org]\n",
    )
    .unwrap();
    let rendered = kustomize(overlay.path());
    for plugin in plugins_in("overlay", &rendered) {
        assert!(
            plugin.field("url").starts_with("oci://ghcr.io/acme/wasm/"),
            "{}: url {}",
            plugin.at,
            plugin.field("url")
        );
        let label = &plugin.spec["selector"]["matchLabels"]["istio"];
        let expected = if plugin.name.starts_with("egress-") {
            "egress-gw"
        } else {
            "ingress-gw"
        };
        assert_eq!(label, expected, "{}: selector", plugin.at);
    }
    // The values the seed's files carry, which the settings replace everywhere but in the
    // gateway-side routes (one per host; the base's kustomization.yaml says so).
    let covered: Vec<&Value> = rendered
        .iter()
        .filter(|document| document["metadata"]["name"] != "direct-google-through-egress-gateway")
        .collect();
    let text = serde_json::to_string(&covered).unwrap();
    for seed_value in [
        "istio-system",
        "\"egressgateway\"",
        "\"ingressgateway\"",
        "registry.example.com",
        "www.google.com",
        "command-runner.example.com",
    ] {
        assert!(
            !text.contains(seed_value),
            "the overlay's rendering still has the seed's {seed_value}"
        );
    }
    let routes = serde_json::to_string(
        rendered
            .iter()
            .find(|document| document["metadata"]["name"] == "direct-google-through-egress-gateway")
            .unwrap(),
    )
    .unwrap();
    assert!(routes.contains("api.example.org") && routes.contains("gateways.svc"));
}
