//! YAML for loading a module into Envoy as an HTTP or network Wasm filter, the way Istio does
//! for a WasmPlugin: the V8 runtime, the plugin configuration as a JSON string, and the root id
//! Istio takes from `pluginName`.

use std::path::Path;

use crate::modules::Module;

/// One Wasm filter in a filter chain.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    pub module: Module,
    /// Istio's `pluginName`; `network` selects the network (L4) mode of a dual-mode module.
    pub root_id: String,
    /// The plugin configuration (Istio's `pluginConfig`), JSON.
    pub configuration: String,
    /// Load the module's `test-trap` build instead of the shipped one.
    pub test_trap: bool,
    /// Envoy's `PluginConfig.failure_policy` (`FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`); Envoy's
    /// default when `None`.
    pub failure_policy: Option<String>,
}

impl WasmFilter {
    pub fn http(module: Module, configuration: impl Into<String>) -> Self {
        Self {
            module,
            root_id: module.package().to_string(),
            configuration: configuration.into(),
            test_trap: false,
            failure_policy: None,
        }
    }

    pub fn network(module: Module, configuration: impl Into<String>) -> Self {
        Self {
            module,
            root_id: "network".to_string(),
            configuration: configuration.into(),
            test_trap: false,
            failure_policy: None,
        }
    }

    /// The same filter from the module's `test-trap` build ([`Module::test_trap_path`]).
    pub fn with_test_trap(mut self) -> Self {
        self.test_trap = true;
        self
    }

    /// The same filter with Envoy's `failure_policy` set (`FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`).
    pub fn with_failure_policy(mut self, policy: &str) -> Self {
        self.failure_policy = Some(policy.to_string());
        self
    }

    /// An `http_filters` entry.
    pub fn http_yaml(&self) -> String {
        self.yaml(HTTP_FILTER, HTTP_TYPE_URL)
    }

    /// A network `filters` entry.
    pub fn network_yaml(&self) -> String {
        self.yaml(
            "envoy.filters.network.wasm",
            "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
        )
    }

    fn yaml(&self, filter_name: &str, type_url: &str) -> String {
        let module_path = if self.test_trap {
            self.module.test_trap_path()
        } else {
            self.module.path()
        };
        render(
            filter_name,
            type_url,
            &format!("{}.{}", self.module.package(), self.root_id),
            &self.root_id,
            &module_path,
            self.failure_policy.as_deref(),
            &self.configuration,
        )
    }
}

const HTTP_FILTER: &str = "envoy.filters.http.wasm";
const HTTP_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// An `http_filters` entry for a module file that is not one of the filters (the benchmark's
/// probe), named `name`, which is also its root id.
pub fn http_yaml_for_file(name: &str, module_path: &Path, configuration: &str) -> String {
    render(
        HTTP_FILTER,
        HTTP_TYPE_URL,
        name,
        name,
        module_path,
        None,
        configuration,
    )
}

fn render(
    filter_name: &str,
    type_url: &str,
    name: &str,
    root_id: &str,
    module_path: &Path,
    failure_policy: Option<&str>,
    configuration: &str,
) -> String {
    // A JSON string literal is a valid YAML double-quoted scalar.
    let path = json_string(&module_path.display().to_string());
    let failure_policy = match failure_policy {
        Some(policy) => format!("      failure_policy: {policy}\n"),
        None => String::new(),
    };
    format!(
        "- name: {filter_name}\n  typed_config:\n    \"@type\": {type_url}\n    config:\n      name: {name}\n      root_id: {root_id}\n{failure_policy}      vm_config:\n        vm_id: {name}\n        runtime: envoy.wasm.runtime.v8\n        code:\n          local:\n            filename: {path}\n      configuration:\n        \"@type\": type.googleapis.com/google.protobuf.StringValue\n        value: {configuration}\n",
        configuration = json_string(configuration),
    )
}

/// The three filters as an egress gateway with the opt-in Wasm access log runs them
/// (kustomize/wasm-access-log), for one allowed host: the allowlist, the tagger sending that host to
/// subset `app`, and the access log configured by `access_log`.
pub fn egress_suite(allowed_host: &str, access_log: &str) -> Vec<WasmFilter> {
    vec![
        WasmFilter::http(
            Module::HostAllowlist,
            format!(r#"{{"hosts": ["{allowed_host}"]}}"#),
        ),
        WasmFilter::http(
            Module::SubsetTagger,
            format!(
                r#"{{"rules": [{{"match": {{"hosts": ["{allowed_host}"]}}, "subset": "app"}}]}}"#
            ),
        ),
        WasmFilter::http(Module::AccessLog, access_log),
    ]
}

/// Several `http_filters` entries, in order.
pub fn http_filters_yaml(filters: &[WasmFilter]) -> String {
    filters.iter().map(WasmFilter::http_yaml).collect()
}

/// Several network `filters` entries, in order.
pub fn network_filters_yaml(filters: &[WasmFilter]) -> String {
    filters.iter().map(WasmFilter::network_yaml).collect()
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}
